"""Shared fixtures. ``unit/`` needs nothing built; ``engine/`` runs the real models from layers/models."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from alphacut_dev.data import EVAL
from alphacut_dev.template import load_sam
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# The suite checks the models on the engine Lambda runs, onnxruntime fp32 (the reference every
# tolerance is stated against); tests/engine/test_engines.py and test_int8.py check the others
# against it. The local stack's workers inherit this.
os.environ.setdefault("ALPHACUT_ENGINE", "onnxruntime")
# The in-process handlers and pipelines keep their last outputs as the template's functions do
# (alphacut.models.recent, its RecentOutputsMB): the suite sends a few photos many times, as a
# store does.
os.environ.setdefault(
    "ALPHACUT_RECENT_OUTPUTS_MB", str(load_sam()["Parameters"]["RecentOutputsMB"]["Default"])
)


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


# One local stack for the whole run: its warm functions hold the models (about 8 GB), and two
# stacks, one a worker, did not fit 24 GB (the OOM killer ended one). So under ``make test``'s two
# workers (pytest-xdist) the folders whose tests use the stack, and the one test whose five
# model-holding processes would not fit beside a stack on the other worker (tried: the machine's
# used memory peaked at 22.8 of 24 GB), run on one worker, in order, while the other worker takes
# the rest a test at a time. The scheduler sees test ids only (the markers live in the workers):
# hence folders, which the check below keeps true.
ON_THE_STACKS_WORKER = (
    "tests/browser/",
    "tests/contracts/",
    "tests/e2e/",
    "tests/integration/",
    "tests/api/test_credits_in_parallel.py",
)


def runs_on_the_stacks_worker(nodeid: str) -> bool:
    return nodeid.startswith(ON_THE_STACKS_WORKER)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's load scheduling with the stack's tests as one unit of work."""
    from xdist.scheduler import LoadScopeScheduling

    class OneStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "the stack's tests" if runs_on_the_stacks_worker(nodeid) else nodeid

    return OneStackScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The worker without the stack runs its models on one thread. The stack's worker is the
    suite's longest path (its tests in a row, their functions running two onnxruntime threads
    each) and waits whenever the other worker holds the cores: a second two-thread onnxruntime
    oversubscribes two cores (two ISNet runs at once measured 12 % more CPU than one after the
    other; two one-thread runs, none). onnxruntime's fp32 answers do not depend on the thread count
    (ISNet's matte at one and two threads: equal to the bit). A lower CPU priority as well was
    tried and refused: starved, an in-process cutout missed the API's 29 s deadline. Set before
    the worker's first model loads (a process keeps its sessions); xdist gives the stack's unit to
    its worker first, so that worker never runs a test of the other kind before the stack starts."""
    if (
        os.environ.get("PYTEST_XDIST_WORKER")
        and not runs_on_the_stacks_worker(item.nodeid)
        and "ALPHACUT_THREADS" not in os.environ
    ):
        os.environ["ALPHACUT_THREADS"] = "1"


# Last in the stack's row: its two Schemathesis runs want both cores (their own cases and checks, and
# the stack answering them), which the other worker has given back by then. Run in the middle of the
# row, beside the other worker's model runs, they took 288 s; at its end the row is shorter by most
# of what they wait there (docs/benchmarks.md, "The test suite's time").
LAST_ON_THE_STACKS_WORKER = "tests/integration/test_openapi_tools.py"


def pytest_collection_modifyitems(items):
    """Every test that uses the local stack (directly or through a fixture) is marked ``stack``:
    ``-m "not stack"`` runs what needs no stack. A stack test outside ``ON_THE_STACKS_WORKER``
    would start a second stack on the other worker: it is refused here. The Schemathesis module
    goes last (``LAST_ON_THE_STACKS_WORKER``), the others keep their order."""
    items.sort(key=lambda item: item.nodeid.startswith(LAST_ON_THE_STACKS_WORKER))  # stable
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
            if not runs_on_the_stacks_worker(item.nodeid):
                raise pytest.UsageError(
                    f"{item.nodeid} uses the local stack: put it in one of {', '.join(ON_THE_STACKS_WORKER)}"
                )


# The local stack and its helpers, shared by tests/integration and tests/e2e.
pytest_plugins = ["tests.stack_fixtures"]
