"""The costume head: ISNet decoder features and EfficientNet-Lite0's ImageNet feature maps (+ the
picture and the matte) -> 10 class scores at 128 x 128, in ISNet's square frame: the mean of a few
heads trained by ``alphacut_dev.costume.train`` on Clothing Co-Parsing, joined into one graph by
``alphacut_dev.costume.ensemble``; committed beside this file with its model card (``costume_head.md``).

Usage::

    output = store.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    maps = store.backbone.run(backbone.preprocess(rgb)) if store.costume.needs_backbone else None
    scores = store.costume.run(head_inputs(rgb, output, maps))     # 10 x 128 x 128 float32
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from alphacut.errors import ModelUnavailable
from alphacut.models.engines import ONNXRUNTIME, Engine, Session
from alphacut.models.isnet import IsnetOutput

HEAD_PATH = Path(__file__).with_name("costume_head.onnx")
SIDE = 128
# head input name -> ISNet decoder output
FEATURE_INPUTS = {"f128": "input.948", "f64": "input.832", "f32": "input.740", "f16": "input.656"}
# head input name -> EfficientNet-Lite0 output (``alphacut.models.backbone``), 64/32/16/16 px across
BACKBONE_INPUTS = {"b64": "s8", "b32": "s16", "b16": "s32", "bhead": "head"}


def small_picture(rgb: np.ndarray, matte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The picture (uint8) and the matte (float32) box-averaged to 128 x 128: what training cached."""
    picture = np.asarray(Image.fromarray(rgb).resize((SIDE, SIDE), Image.Resampling.BOX), np.uint8)
    matte = np.asarray(
        Image.fromarray(matte.astype(np.float32)).resize((SIDE, SIDE), Image.Resampling.BOX), np.float32
    )
    return picture, matte


def picture_input(picture: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """4 x 128 x 128: RGB normalised to about -2..2, then the matte in 0..1."""
    rgb = (picture.astype(np.float32) / 255.0 - 0.5) / 0.25
    return np.concatenate([rgb.transpose(2, 0, 1), matte[None].astype(np.float32)])


def head_inputs(
    rgb: np.ndarray, output: IsnetOutput, backbone_maps: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The head's feeds from one ISNet forward pass (features on) over ``rgb`` and, for a head that
    reads them, the backbone's maps of the same picture."""
    if output.features is None:
        raise ValueError("the costume head needs ISNet run with features")
    feeds = {
        name: output.features[source].astype(np.float32, copy=False)
        for name, source in FEATURE_INPUTS.items()
    }
    feeds["picture"] = picture_input(*small_picture(rgb, output.matte))[None]
    if backbone_maps is not None:
        feeds.update({name: backbone_maps[source] for name, source in BACKBONE_INPUTS.items()})
    return feeds


class CostumeModel:
    def __init__(self, session: Session):
        self.session = session
        self.input_names = list(session.input_names)

    @property
    def needs_backbone(self) -> bool:
        """Whether this head reads EfficientNet-Lite0's maps (heads trained before it did not)."""
        return any(name in BACKBONE_INPUTS for name in self.input_names)

    @classmethod
    def load(cls, path: Path = HEAD_PATH, engine: Engine = ONNXRUNTIME, threads: int = 0) -> CostumeModel:
        if not path.exists():
            raise ModelUnavailable(f"costume head missing: train it (make costume-train) (no {path})")
        return cls(engine.open(path, threads))

    def run(self, feeds: dict[str, np.ndarray], mirrored: bool = False) -> np.ndarray:
        """10 x 128 x 128 class scores. ``mirrored`` also scores the mirrored maps and averages (the
        heads were trained on mirrored maps too); off in the pipeline: after the guided filter it was
        worth +0.0002 held-out IoU for twice the head's time."""
        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise ValueError(f"the costume head needs {', '.join(missing)}: see head_inputs")
        feeds = {name: feeds[name] for name in self.input_names}
        scores: np.ndarray = self.session.run(["logits"], feeds)[0][0]
        if mirrored:
            flipped = {name: np.ascontiguousarray(value[..., ::-1]) for name, value in feeds.items()}
            scores = 0.5 * (scores + self.session.run(["logits"], flipped)[0][0][..., ::-1])
        return scores
