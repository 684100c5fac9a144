"""The costume head on real photos: one ISNet pass, class map cut by the matte, per-garment
results, the CLI class map and the costume eval."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from alphacut.costume import Garment
from alphacut.errors import InvalidOption
from alphacut.models.costume_head import HEAD_PATH
from alphacut.options import CutoutOptions, SubjectType
from PIL import Image

ALPHACUT = Path(sys.executable).with_name("alphacut")


@pytest.fixture(scope="module")
def look(eval_dir) -> Path:
    return min((eval_dir / "clothing" / "images").iterdir())


def test_head_is_small_and_takes_the_decoder_and_backbone_maps():
    assert HEAD_PATH.stat().st_size < 10_000_000
    session = ort.InferenceSession(str(HEAD_PATH), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes == {
        "f128": [1, 128, 128, 128],
        "f64": [1, 256, 64, 64],
        "f32": [1, 512, 32, 32],
        "f16": [1, 512, 16, 16],
        "picture": [1, 4, 128, 128],
        "b64": [1, 40, 64, 64],
        "b32": [1, 112, 32, 32],
        "b16": [1, 320, 16, 16],
        "bhead": [1, 1280, 16, 16],
    }
    assert session.get_outputs()[0].shape == [1, 10, 128, 128]


def test_head_refuses_feeds_without_the_backbone(pipeline, look):
    from alphacut.models import isnet
    from alphacut.models.costume_head import head_inputs

    rgb = np.asarray(Image.open(look).convert("RGB"))
    output = pipeline.models.isnet_features.run(isnet.preprocess(rgb), with_features=True)
    assert pipeline.models.costume.needs_backbone
    with pytest.raises(ValueError, match="bhead"):
        pipeline.models.costume.run(head_inputs(rgb, output))


def test_parse_cuts_the_class_map_by_the_matte(pipeline, look):
    image = pipeline.decode(look.read_bytes())
    parse = pipeline.parse_costume(image)
    assert parse.class_map.shape == parse.alpha.shape == (image.height, image.width)
    assert parse.class_map.max() <= 9
    assert (parse.class_map[parse.alpha < 128] == 0).all()
    assert (parse.class_map[parse.alpha >= 128] != 0).mean() > 0.9
    # a street-fashion photo: a person wearing clothes
    shares = parse.shares()
    assert sum(shares.values()) > 0.1
    outfit = parse.outfit_alpha()
    assert (outfit <= parse.alpha).all() and outfit.sum() < parse.alpha.astype(np.int64).sum()


def test_costume_results_per_garment(pipeline, look):
    result = pipeline.cut_out_garments(look.read_bytes(), CutoutOptions(output="both"), tuple(Garment))
    assert [g.garment for g in result.garments] == list(Garment)
    present = [g for g in result.garments if g.present]
    absent = [g for g in result.garments if not g.present]
    assert present and absent  # nobody wears all eight
    for item in present:
        mask = np.asarray(Image.open(io.BytesIO(item.result.mask)))
        assert mask.max() > 0 and (mask > 0).mean() == pytest.approx(item.share, abs=0.02)
    ids = np.asarray(Image.open(io.BytesIO(result.class_map)))
    assert ids.shape == (result.outfit.input_height, result.outfit.input_width) and ids.max() <= 9
    assert result.timings["inference"] > 0


def test_costume_crop_cuts_each_garment_to_its_box(pipeline, look):
    result = pipeline.cut_out_garments(look.read_bytes(), CutoutOptions(crop=True), tuple(Garment))
    for item in result.garments:
        if item.present:
            left, top, right, bottom = item.result.bbox
            assert (item.result.width, item.result.height) == (right - left, bottom - top)


def test_a_canvas_shapes_the_images_and_the_class_map_keeps_the_inputs_pixels(pipeline, look):
    result = pipeline.cut_out_garments(look.read_bytes(), CutoutOptions(output="both", target_width=300))
    class_map = Image.open(io.BytesIO(result.class_map))
    assert result.outfit.width == 300 and class_map.size == Image.open(look).size
    assert set(np.unique(np.asarray(class_map))) <= set(range(10))  # ids, never blended


def test_matte_refuses_costume(pipeline, look):
    with pytest.raises(InvalidOption):
        pipeline.matte(pipeline.decode(look.read_bytes()), SubjectType.COSTUME)


def test_cli_writes_the_class_map(tmp_path, look):
    result = subprocess.run(
        [str(ALPHACUT), "remove", str(look), "-o", str(tmp_path), "--type", "costume", "--output", "mask"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    ids = Image.open(tmp_path / f"{look.stem}.png")
    assert ids.mode == "L" and ids.size == Image.open(look).size
    values = set(np.unique(np.asarray(ids)))
    assert 0 in values and values <= set(range(10)) and len(values) >= 3


def test_cli_eval_costume_prints_per_class_iou(tmp_path, eval_dir):
    source = eval_dir / "clothing"
    for sub in ("images", "gt_coarse"):
        (tmp_path / sub).mkdir()
    for path in sorted((source / "images").iterdir())[:2]:
        shutil.copy(path, tmp_path / "images" / path.name)
        shutil.copy(source / "gt_coarse" / f"{path.stem}.png", tmp_path / "gt_coarse" / f"{path.stem}.png")
    result = subprocess.run(
        [str(ALPHACUT), "eval", str(tmp_path), "--type", "costume"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "n=2" in lines[0]
    for name in ("background", "tops", "coat", "dress", "skirt", "pants", "shoes", "bag", "hat", "person"):
        assert any(line.startswith(name) for line in lines), name
    seed = next(line for line in lines if line.startswith("seed mean"))
    assert 0.0 < float(seed.split()[-1]) <= 1.0
