"""The engine tests' model stores: module-scoped, so each module's stores go at its end and a
module holds only the engines it compares (the worker without the local stack shares the machine
with the stack's function processes: docs/benchmarks.md, "The test suite's time"). Without
onnxruntime's memory arena, and given back to the system at the module's end: a clean clone's run
peaked at 23.2 GB of the machine's 24 with the engines' arenas kept."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator

import numpy as np
import pytest
from alphacut.models import ModelStore
from alphacut.models.engines import choose_engine
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
from PIL import Image

MODELS = EngineSettings.from_env().models_dir


def given_back[T: (ModelStore, Pipeline)](models: T) -> Iterator[T]:
    """A store or a pipeline for a module, then its models unloaded and their memory given back to
    the system (pytest holds the fixture's value past its teardown; glibc keeps what is freed)."""
    yield models
    (models if isinstance(models, ModelStore) else models.models).unload()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


@pytest.fixture(scope="module")
def reference() -> Iterator[ModelStore]:
    yield from given_back(ModelStore(MODELS, engine=choose_engine("onnxruntime", memory_arena=False)))


@pytest.fixture(scope="module")
def openvino() -> Iterator[ModelStore]:
    yield from given_back(ModelStore(MODELS, engine=choose_engine("openvino")))


@pytest.fixture(scope="module")
def int8() -> Iterator[ModelStore]:
    yield from given_back(ModelStore(MODELS, engine=choose_engine("onnxruntime-int8", memory_arena=False)))


@pytest.fixture(scope="module")
def photos(eval_dir) -> list[np.ndarray]:
    paths = [
        *sorted((eval_dir / "general" / "images").iterdir())[:2],
        min((eval_dir / "person" / "images").iterdir()),
    ]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]
