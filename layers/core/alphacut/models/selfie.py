"""MediaPipe selfie segmentation (converted to ONNX at build time): person probability, 256 x 256."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from alphacut.models.engines import ONNXRUNTIME, Engine, Session

INPUT_SIZE = 256


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 256 x 256 x 3 float32 in 0..1 (NHWC, as the TFLite original)."""
    image = Image.fromarray(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return (np.asarray(image, dtype=np.float32) * (1.0 / 255.0))[None]


class SelfieModel:
    def __init__(self, session: Session):
        self.session = session
        self.input_name = session.input_names[0]

    @classmethod
    def load(cls, directory: Path, engine: Engine = ONNXRUNTIME, threads: int = 0) -> SelfieModel:
        # exact: in bf16 its person probability moved by up to 0.53 on the eval photos (f32: 0.000)
        return cls(engine.open(directory / "selfie.onnx", threads, exact=True))

    def run(self, batch: np.ndarray) -> np.ndarray:
        person: np.ndarray = self.session.run(None, {self.input_name: batch})[0][0, :, :, 0]
        return person.clip(0.0, 1.0)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return self.run(preprocess(rgb))
