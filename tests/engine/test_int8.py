"""ISNet's matte in static int8 (``ALPHACUT_ENGINE=onnxruntime-int8``) against onnxruntime fp32.

On the eval set's dev half the int8 graph's matte agrees with fp32's at 0.990 IoU (general photos)
and 0.998 (person), mean gap 0.0015 (docs/benchmarks.md, "The Lambda engine's levers"); the
tolerances below sit under that, on three eval photos. tests/engine/test_quality.py holds the dev
half's quality floors on int8 too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from alphacut.models import ModelStore, isnet
from alphacut.models.engines import choose_engine
from alphacut.settings import EngineSettings
from alphacut_dev import build_models, isnet_int8
from PIL import Image

MODELS = EngineSettings.from_env().models_dir
MATTE_IOU, MATTE_MEAN = 0.95, 0.01  # per photo: the subject at 0.5, and the mean gap


@pytest.fixture(scope="module")
def fp32() -> ModelStore:
    return ModelStore(MODELS, engine=choose_engine("onnxruntime"))


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


def test_the_int8_matte_agrees_with_fp32_on_eval_photos(fp32, int8, photos):
    for rgb in photos:
        expected, actual = fp32.isnet.predict(rgb), int8.isnet.predict(rgb)
        subject, found = expected > 0.5, actual > 0.5
        iou = (subject & found).sum() / max(1, (subject | found).sum())
        gap = np.abs(expected - actual).mean()
        assert iou >= MATTE_IOU and gap < MATTE_MEAN, (iou, gap)
        assert not np.array_equal(expected, actual)  # two graphs ran, not one twice


def test_the_int8_engine_runs_its_own_graph_without_reading_the_fp16_weights(int8):
    assert int8.engine.label == "onnxruntime int8"
    assert int8.isnet.side == isnet.INPUT_SIZE
    assert "_isnet_weights" not in int8.__dict__  # the int8 graph holds its weights
    assert int8.isnet_preview.side == isnet.PREVIEW_INPUT_SIZE  # the 768² graph stays fp32: it needs them
    assert "_isnet_weights" in int8.__dict__


def test_the_int8_graph_is_built_from_the_stored_ranges_and_listed_with_its_sha256():
    entry = json.loads((MODELS / "manifest.json").read_text())["models"]["isnet"]
    assert build_models.sha256_file(MODELS / "isnet" / isnet.INT8_GRAPH) == entry["files"][isnet.INT8_GRAPH]
    assert entry["int8_ranges_sha256"] == build_models.sha256_file(isnet_int8.RANGES)


def test_other_ranges_make_the_model_build_stale(tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    manifest["models"] = {"isnet": {**manifest["models"]["isnet"], "files": {}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build_models.manifest_is_current(out) is True
    manifest["models"]["isnet"]["int8_ranges_sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build_models.manifest_is_current(out) is False
