"""Every model on OpenVINO agrees with onnxruntime fp32 (the reference) within a stated tolerance;
the CLI names the engine it runs. ISNet's int8 graph has its own module (test_int8.py), so that its
store and OpenVINO's are never held at once (each module's stores go at its end).

On a CPU with bf16 (amx_bf16 or avx512_bf16) OpenVINO computes in bf16: the tolerances below are
what bf16 costs, measured on the eval photos (docs/benchmarks.md, "Engines"). Elsewhere it runs in
f32 and the differences are rounding.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from alphacut.models import backbone, costume_head, isnet, selfie
from alphacut.options import Quality, SubjectType
from alphacut.pipeline import Pipeline

# largest difference of a matte (0..1) anywhere in the picture, and on average
MATTE_MAX, MATTE_MEAN = 0.08, 0.002
# feature maps and scores: relative to the output's largest magnitude
MAPS_RELATIVE = 0.05


def assert_mattes_agree(expected: np.ndarray, actual: np.ndarray) -> None:
    gap = np.abs(expected - actual)
    assert gap.max() < MATTE_MAX and gap.mean() < MATTE_MEAN, (gap.max(), gap.mean())


def assert_maps_agree(expected: np.ndarray, actual: np.ndarray) -> None:
    assert np.abs(expected - actual).max() < MAPS_RELATIVE * np.abs(expected).max()


def test_isnet_mattes_on_openvino_agree_with_onnxruntime(reference, openvino, photos):
    for rgb in photos:
        batch = isnet.preprocess(rgb)
        assert_mattes_agree(reference.isnet.run(batch).matte, openvino.isnet.run(batch).matte)


def test_isnet_decoder_maps_on_openvino_agree_with_onnxruntime(reference, openvino, photos):
    batch = isnet.preprocess(photos[-1])
    expected = reference.isnet_features.run(batch, with_features=True)
    actual = openvino.isnet_features.run(batch, with_features=True)
    assert_mattes_agree(expected.matte, actual.matte)
    for name in isnet.FEATURE_OUTPUTS:
        assert_maps_agree(expected.features[name], actual.features[name])


def test_the_selfie_model_on_openvino_agrees_with_onnxruntime(reference, openvino, photos):
    for rgb in photos:
        batch = selfie.preprocess(rgb)
        assert_mattes_agree(reference.selfie.run(batch), openvino.selfie.run(batch))


def test_the_backbone_on_openvino_agrees_with_onnxruntime(reference, openvino, photos):
    batch = backbone.preprocess(photos[-1])
    expected, actual = reference.backbone.run(batch), openvino.backbone.run(batch)
    for name in backbone.FEATURE_OUTPUTS:
        assert_maps_agree(expected[name], actual[name])


def test_the_costume_head_on_openvino_agrees_with_onnxruntime(reference, openvino, photos):
    rgb = photos[-1]
    output = reference.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    maps = reference.backbone.run(backbone.preprocess(rgb)) if reference.costume.needs_backbone else None
    feeds = costume_head.head_inputs(rgb, output, maps)
    expected, actual = reference.costume.run(feeds), openvino.costume.run(feeds)
    assert_maps_agree(expected, actual)
    assert (expected.argmax(0) == actual.argmax(0)).mean() > 0.99  # the class per pixel, as the route uses it


def test_quality_auto_is_best_on_an_engine_that_makes_model_time_cheap(openvino, photo_bytes):
    pipeline = Pipeline(openvino)
    image = pipeline.decode(photo_bytes)
    auto = pipeline.matte(image, SubjectType.AUTO, quality=Quality.AUTO)
    expected = Quality.BEST if openvino.engine.cheap_model else Quality.FAST
    assert np.array_equal(auto, pipeline.matte(image, SubjectType.AUTO, quality=expected))


def remove_with_engine(engine: str, photo_bytes: bytes, folder: Path) -> subprocess.CompletedProcess:
    """``alphacut remove`` on one photo with ALPHACUT_ENGINE set, as a user runs it."""
    (folder / "in.jpg").write_bytes(photo_bytes)
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("alphacut")),
            "remove",
            str(folder / "in.jpg"),
            "-o",
            str(folder),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ALPHACUT_ENGINE": engine},
        timeout=300,
    )


@pytest.mark.parametrize("engine", ["onnxruntime", "onnxruntime-int8", "openvino"])
def test_the_cli_says_which_engine_runs_the_models_and_why(engine, photo_bytes, tmp_path):
    done = remove_with_engine(engine, photo_bytes, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"alphacut: models run on {engine.replace('-', ' ')}" in done.stderr
    assert f"(ALPHACUT_ENGINE={engine}" in done.stderr
    assert (tmp_path / "in.png").exists()


def test_an_unknown_engine_stops_the_cli_with_the_variable_named(photo_bytes, tmp_path):
    done = remove_with_engine("tensorflow", photo_bytes, tmp_path)
    assert done.returncode != 0
    assert "ALPHACUT_ENGINE must be one of auto, onnxruntime, onnxruntime-int8, openvino, cuda" in done.stderr
