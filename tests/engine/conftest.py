"""The engine tests' model stores: module-scoped, so each module's stores go at its end and a
module holds only the engines it compares (the worker without the local stack shares the machine
with the stack's function processes: docs/benchmarks.md, "The test suite's time")."""

from __future__ import annotations

import numpy as np
import pytest
from alphacut.models import ModelStore
from alphacut.models.engines import choose_engine
from alphacut.settings import EngineSettings
from PIL import Image

MODELS = EngineSettings.from_env().models_dir


@pytest.fixture(scope="module")
def reference() -> ModelStore:
    return ModelStore(MODELS, engine=choose_engine("onnxruntime"))


@pytest.fixture(scope="module")
def openvino() -> ModelStore:
    return ModelStore(MODELS, engine=choose_engine("openvino"))


@pytest.fixture(scope="module")
def int8() -> ModelStore:
    return ModelStore(MODELS, engine=choose_engine("onnxruntime-int8"))


@pytest.fixture(scope="module")
def photos(eval_dir) -> list[np.ndarray]:
    paths = [
        *sorted((eval_dir / "general" / "images").iterdir())[:2],
        min((eval_dir / "person" / "images").iterdir()),
    ]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]
