"""``alphacut remove`` and ``alphacut eval`` as a user runs them (a real subprocess)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ALPHACUT = Path(sys.executable).with_name("alphacut")


def run(*args):
    return subprocess.run([str(ALPHACUT), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_remove_writes_results_and_reports_failures(tmp_path, eval_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    photos = sorted((eval_dir / "person" / "images").iterdir())[:2]
    for photo in photos:
        shutil.copy(photo, inputs / photo.name)
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    out = tmp_path / "out"
    result = run("remove", inputs, "-o", out, "--format", "webp", "--crop")
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if "broken.jpg" in line]
    assert len(failures) == 1 and "image" in failures[0]
    for photo in photos:
        assert Image.open(out / f"{photo.stem}.webp").mode == "RGBA"


def test_remove_mask_writes_one_channel_png(tmp_path, eval_dir):
    photo = min((eval_dir / "general" / "images").iterdir())
    result = run("remove", photo, "-o", tmp_path, "--output", "mask")
    assert result.returncode == 0, result.stderr
    mask = Image.open(tmp_path / f"{photo.stem}.png")
    assert mask.mode == "L" and mask.size == Image.open(photo).size
    assert np.asarray(mask).max() == 255


def test_remove_takes_the_remove_bg_options(tmp_path, eval_dir):
    import zipfile

    photo, background = sorted((eval_dir / "general" / "images").iterdir())[:2]
    result = run(
        "remove",
        photo,
        "-o",
        tmp_path,
        "--size",
        "preview",
        "--bg-image",
        background,
        "--scale",
        "60%",
        "--position",
        "0% 100%",
        "--format",
        "zip",
    )
    assert result.returncode == 0, result.stderr
    archive = zipfile.ZipFile(tmp_path / f"{photo.stem}.zip")
    colour = Image.open(archive.open("color.jpg"))
    alpha = np.asarray(Image.open(archive.open("alpha.png")))
    assert colour.width * colour.height <= 250_000 and alpha.min() == 255  # a picture behind: all opaque
    matte = run("remove", photo, "-o", tmp_path / "roi", "--channels", "alpha", "--roi", "0% 0% 50% 100%")
    assert matte.returncode == 0, matte.stderr
    kept = np.asarray(Image.open(tmp_path / "roi" / f"{photo.stem}.png"))
    assert kept[:, kept.shape[1] // 2 + 1 :].max() == 0 and kept.max() == 255


def test_remove_refuses_a_missing_background_picture(tmp_path):
    result = run("remove", "x.jpg", "-o", tmp_path, "--bg-image", tmp_path / "nowhere.jpg")
    assert result.returncode == 2 and "bg_image" in result.stderr


def test_remove_refuses_bad_options(tmp_path):
    result = run("remove", "x.jpg", "-o", tmp_path, "--bg-color", "nope")
    assert result.returncode == 2 and "bg_color" in result.stderr


def test_eval_prints_the_table(tmp_path, eval_dir):
    subset = tmp_path / "subset"
    for folder in ("images", "gt"):
        (subset / folder).mkdir(parents=True)
    for photo in sorted((eval_dir / "general" / "images").iterdir())[:2]:
        shutil.copy(photo, subset / "images" / photo.name)
        shutil.copy(eval_dir / "general" / "gt" / f"{photo.stem}.png", subset / "gt" / f"{photo.stem}.png")
    result = run("eval", subset, "--type", "object")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().splitlines()[-2:]
    assert "mean IoU" in header and "median IoU" in header and "MAE" in header
    fields = row.split()
    assert fields[3] == "2" and 0.5 < float(fields[4]) <= 1.0


def test_remove_with_a_preset_and_a_shadow_writes_the_marketplace_picture(tmp_path, eval_dir):
    photo = eval_dir / "general" / "images" / "car-roundabout_00037.jpg"
    result = run("remove", "--preset", "amazon", "--shadow", "contact", photo, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    picture = Image.open(tmp_path / f"{photo.stem}.jpg")
    assert picture.format == "JPEG" and picture.size == (2000, 2000)
    assert np.asarray(picture)[:16, :16].min() == 255  # the preset's white, not the png default
    verdicts = [json.loads(line) for line in (tmp_path / "checks.jsonl").read_text().splitlines()]
    assert [(v["file"], v["preset"], v["passed"]) for v in verdicts] == [(str(photo), "amazon", True)]
    assert 0 <= verdicts[0]["verdict"]["confidence"] <= 1 and verdicts[0]["unsure"] is False
    assert f"{photo}: amazon passed" in result.stderr
    refused = run("remove", "--shadow", "drop", "--shadow-opacity", "120", photo, "-o", tmp_path)
    assert refused.returncode == 2 and "shadow_opacity" in refused.stderr and "100" in refused.stderr


def test_remove_with_a_preset_prints_each_failed_rule_writes_checks_jsonl_and_exits_3(tmp_path, eval_dir):
    photo = eval_dir / "general" / "images" / "car-roundabout_00037.jpg"
    result = run("remove", "--preset", "amazon", "--bg-color", "#f4f4f4", photo, "-o", tmp_path)
    assert result.returncode == 3, result.stderr
    (verdict,) = [json.loads(line) for line in (tmp_path / "checks.jsonl").read_text().splitlines()]
    failed = [rule["rule"] for rule in verdict["rules"] if not rule["passed"]]
    assert verdict["file"] == str(photo) and verdict["passed"] is False and failed
    assert f"{photo}: amazon failed: {failed[0]} (" in result.stderr
    assert "amazon check: 0 passed, 1 failed" in result.stderr
    assert (tmp_path / f"{photo.stem}.jpg").exists()  # written all the same: the store decides
