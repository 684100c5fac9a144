"""A test key's result is marked beyond repair (docs/security.md, "Test keys"): measured on a real photo
against the live result of the same call."""

from __future__ import annotations

import io

import numpy as np
from alphacut.caller_scope import caller_scope
from alphacut.options import CutoutOptions, OutputKind
from PIL import Image


def _cut(pipeline, data: bytes, test: bool, account: str = "k-test-mark") -> tuple[np.ndarray, np.ndarray]:
    with caller_scope(account, test=test):
        result = pipeline.run(data, CutoutOptions(output=OutputKind.BOTH))
    rgba = np.asarray(Image.open(io.BytesIO(result.image)).convert("RGBA"))
    mask = np.asarray(Image.open(io.BytesIO(result.mask)).convert("L"))
    return rgba, mask


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_a_test_keys_cutout_gives_neither_the_mask_nor_the_subjects_colours_back(pipeline, eval_dir):
    photo = min((eval_dir / "person" / "images").iterdir())  # about 550 x 830: over a preview's size
    data = photo.read_bytes()
    live_rgba, live_mask = _cut(pipeline, data, test=False)
    test_rgba, test_mask = _cut(pipeline, data, test=True)
    again_rgba, _ = _cut(pipeline, data, test=True)
    elsewhere_rgba, _ = _cut(pipeline, data, test=True, account="k-another-acct")
    height, width = test_mask.shape
    assert width * height <= 250_000 < live_mask.size  # a test result is at most a preview
    live_small = np.asarray(Image.fromarray(live_mask).resize((width, height), Image.Resampling.BILINEAR))
    truth = live_small >= 128
    for marked in (test_mask, test_rgba[..., 3]):  # the mask, and the picture's alpha
        found = marked >= 128
        iou = (found & truth).sum() / (found | truth).sum()
        assert iou < 0.9, iou
    live_small_rgba = Image.fromarray(live_rgba).resize((width, height), Image.Resampling.BILINEAR)
    live_rgb = np.asarray(live_small_rgba)[..., :3]
    subject = truth & (live_small == 255)
    assert subject.mean() > 0.1
    assert _psnr(test_rgba[..., :3][subject], live_rgb[subject]) < 30
    # one account's results of a photo lose the same pixels to the same noise: a per-pixel mode over
    # several calls gives nothing back; another account's mark lies elsewhere
    assert np.array_equal(test_rgba, again_rgba)
    assert (test_rgba[..., 3] != elsewhere_rgba[..., 3]).mean() > 0.1


def test_a_test_keys_task_result_is_a_marked_preview_too(pipeline, eval_dir, monkeypatch):
    import boto3
    from alphacut.aws.tasks.segment_step import _segment
    from alphacut.settings import ServiceSettings
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    photo = min((eval_dir / "person" / "images").iterdir())  # over a preview's size
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="tasks")
        s3.put_object(Bucket="tasks", Key="in", Body=photo.read_bytes())
        event = {
            "test": True,
            "options": {"output": "both", "size": "full"},
            "input_bucket": "tasks",
            "input_key": "in",
            "result_bucket": "tasks",
            "image_key": "out.png",
            "mask_key": "out-mask.png",
        }
        done = _segment(event, pipeline, None, s3, None, ServiceSettings())
    assert done["width"] * done["height"] <= 250_000  # at most a preview, as the sync routes answer
