"""Shared fixtures. ``unit/`` needs nothing built; ``engine/`` runs the real models from layers/models."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from alphacut_dev.data import EVAL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# The suite checks the models on the engine Lambda runs, onnxruntime fp32 (the reference every
# tolerance is stated against); tests/engine/test_engines.py checks the others against it. The
# local stack's workers inherit this.
os.environ.setdefault("ALPHACUT_ENGINE", "onnxruntime")


def image_bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def pipeline():
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline.from_settings()
    pipeline.warm_up(("isnet", "selfie"))
    return pipeline


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not EVAL.is_dir():
        pytest.fail(f"{EVAL} is missing: the tests read the eval photos (ALPHACUT_DATA: alphacut_dev.data)")
    return EVAL


@pytest.fixture
def photo_bytes(eval_dir) -> bytes:
    return (
        eval_dir / "person" / "images" / min((eval_dir / "person" / "images").iterdir()).name
    ).read_bytes()


@pytest.fixture
def gradient_rgb() -> np.ndarray:
    y, x = np.mgrid[0:120, 0:160]
    return np.dstack([x * 255 // 159, y * 255 // 119, np.full_like(x, 90)]).astype(np.uint8)


def pytest_collection_modifyitems(items):
    """Every test that uses the local stack (directly or through a fixture) is marked ``stack``:
    ``-m "not stack"`` runs what needs no stack."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


# The local stack and its helpers, shared by tests/integration and tests/e2e.
pytest_plugins = ["tests.stack_fixtures"]
