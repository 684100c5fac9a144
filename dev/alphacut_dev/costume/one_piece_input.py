"""What the dress/skirt decider sees: the picture stretched to 256 x 384, or (``crop``) the person
only: MediaPipe selfie's mask (the pipeline's 6 ms person model) boxes the person, the box grows
to the photos' 2:3 shape around them, and what is not the person turns mid grey, so that the
network spends its few hundred examples on the clothes rather than the street.

Usage::

    picture = decider_picture(rgb, person=pipeline.models.selfie.predict(rgb))   # 384 x 256 x 3 uint8
    batch = decider_batch([picture])                                             # 1 x 3 x 384 x 256
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]

HEIGHT, WIDTH = 384, 256
GREY = 127


def person_box(
    person: np.ndarray, height: int, width: int, margin: float = 0.04
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in picture pixels: the mask's box (probability >= 0.5), a margin
    around it, grown to 2:3 (width:height); the whole picture when the mask finds nobody."""
    rows, cols = np.nonzero(person >= 0.5)
    if rows.size == 0:
        return 0, 0, width, height
    scale_y, scale_x = height / person.shape[0], width / person.shape[1]
    top, bottom = rows.min() * scale_y, (rows.max() + 1) * scale_y
    left, right = cols.min() * scale_x, (cols.max() + 1) * scale_x
    pad = margin * (bottom - top)
    top, bottom, left, right = top - pad, bottom + pad, left - pad, right + pad
    box_h = max(bottom - top, (right - left) * HEIGHT / WIDTH)
    box_w = box_h * WIDTH / HEIGHT
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    return (
        round(centre_x - box_w / 2),
        round(centre_y - box_h / 2),
        round(centre_x + box_w / 2),
        round(centre_y + box_h / 2),
    )


def decider_picture(rgb: np.ndarray, person: np.ndarray | None = None) -> np.ndarray:
    """384 x 256 x 3 uint8: the whole picture stretched, or with ``person`` (a mask of any size
    over the picture, 0..1) the person cut out on grey, boxed and scaled."""
    if person is None:
        return np.asarray(Image.fromarray(rgb).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))
    height, width = rgb.shape[:2]
    mask = np.asarray(
        Image.fromarray(person.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    )
    cut = (rgb * mask[..., None] + GREY * (1 - mask[..., None])).astype(np.uint8)
    box = person_box(person, height, width)
    # crop() pads outside the picture with black: fill a grey canvas instead
    canvas = Image.new("RGB", (box[2] - box[0], box[3] - box[1]), (GREY,) * 3)
    canvas.paste(Image.fromarray(cut), (-box[0], -box[1]))
    return np.asarray(canvas.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))


def person_model() -> Any:
    """The model build's selfie model, opened without the package (the training venv is Python 3.11)."""
    import onnxruntime as ort
    from alphacut.models.selfie import SelfieModel

    return SelfieModel(
        ort.InferenceSession(
            str(ROOT / "layers" / "models" / "selfie" / "selfie.onnx"), providers=["CPUExecutionProvider"]
        )
    )


def decider_batch(pictures: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """N x 3 x 384 x 256 float32, ``(x - 127) / 128`` as EfficientNet-Lite was trained."""
    return ((np.asarray(pictures, np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
