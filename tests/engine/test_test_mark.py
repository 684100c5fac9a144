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

    from tests.unit.moto_table import offline_aws

    offline_aws(monkeypatch)
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
        marks = {}
        for account in ("k-task-a", "k-task-b"):  # each account's own mark, as its sync results carry
            _segment({**event, "test_account": account, "image_key": f"{account}.png"}, pipeline, None, s3,
                     None, ServiceSettings())  # fmt: skip
            body = s3.get_object(Bucket="tasks", Key=f"{account}.png")["Body"].read()
            marks[account] = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
    assert done["width"] * done["height"] <= 250_000  # at most a preview, as the sync routes answer
    sync_rgba, _ = _cut(pipeline, photo.read_bytes(), test=True, account="k-task-a")
    assert (marks["k-task-a"][..., 3] != marks["k-task-b"][..., 3]).mean() > 0.05  # not one mark for all
    assert sync_rgba.shape == marks["k-task-a"].shape
    assert (sync_rgba[..., 3] != marks["k-task-a"][..., 3]).mean() < 0.02  # the account's own


def test_the_same_photo_moved_on_its_canvas_gives_no_more_of_its_subject_back(pipeline, eval_dir):
    """The attack that took a mark fixed to the picture off (a photo padded at eight offsets, each
    result shifted back; benchmarks/bench_test_mark.py): laid on the subject, the results of every
    offset lose the same pixels of it, so together they give back what one does."""
    photo = np.asarray(
        Image.open(min((eval_dir / "general" / "images").iterdir())).convert("RGB").resize((280, 160))
    )
    offsets, room = [(0, 0), (17, 23), (40, 60)], (40, 60)
    unmarked = []
    for dx, dy in offsets:
        canvas = np.pad(photo, ((dy, room[1] - dy), (dx, room[0] - dx), (0, 0)), mode="edge")
        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, "PNG")
        live, _ = _cut(pipeline, buffer.getvalue(), test=False)
        marked, _ = _cut(pipeline, buffer.getvalue(), test=True)
        same = np.all(live == marked, axis=2)[dy : dy + 160, dx : dx + 280]
        unmarked.append(same)
        if (dx, dy) == (0, 0):
            subject = live[:160, :280, 3] >= 128
    one, together = unmarked[0][subject].mean(), np.logical_or.reduce(unmarked)[subject].mean()
    assert one < 0.7 and together - one < 0.02, (one, together)


def test_a_test_keys_costume_outputs_carry_one_mark_so_they_never_fill_each_others_holes(pipeline, eval_dir):
    """The outfit, each garment and the class map of one call lose the same pixels (they each had
    a mark of their own: together they gave back 85 % of the outfit where one gave 50 %)."""
    photo = (eval_dir / "cihp" / "images" / "cihp_0005008.jpg").read_bytes()  # five garments
    options = CutoutOptions(output=OutputKind.BOTH)
    with caller_scope("k-costume-mark", test=False):
        live = pipeline.cut_out_garments(photo, options)
    with caller_scope("k-costume-mark", test=True):
        marked = pipeline.cut_out_garments(photo, options)

    def rgba(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))

    pairs = [(live.outfit.image, marked.outfit.image)] + [
        (a.result.image, b.result.image)
        for a, b in zip(live.garments, marked.garments)
        if a.result and b.result
    ]
    assert len(pairs) >= 3, "a photo with two garments or more"
    changed = [np.any(rgba(a) != rgba(b), axis=2) for a, b in pairs]
    outfit = changed[0]
    for garment in changed[1:]:
        assert (garment & outfit).sum() / (garment | outfit).sum() > 0.95
    ids_live = np.asarray(Image.open(io.BytesIO(live.class_map)))
    ids_marked = np.asarray(Image.open(io.BytesIO(marked.class_map)))
    cut = (ids_marked != ids_live) & (ids_live > 0)  # the text cut out of the labels
    assert cut.any() and (cut & ~outfit).sum() <= 0.02 * cut.sum()
