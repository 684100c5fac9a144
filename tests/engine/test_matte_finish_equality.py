"""Issue 94: the matte's finishing made cheaper (runs-graph reconstruction, disk dilation in the
mask's box, the clean-up's gate from running counts) gives the mattes it gave before, on every
eval photo (general and person: 80), to well within 0.002 IoU.

The reference is the finishing as it was: reconstruction by growing the seeds pass after pass
over the pixels and the gate's box mean by banded matrix products (``box_mean_planes``). Each
photo's model outputs (ISNet, and the selfie model for persons) are made once and finished both
ways, so the comparison is of the finishing alone. The suite finishes every fourth photo (21 of 80,
the model's runs are most of the time); ``ALPHACUT_EQUALITY_ALL=1`` finishes all 80 (285 s on the
2-core machine under load: every photo within 0.0001 IoU)."""

import os

import numpy as np
import pytest
from alphacut import matte as matte_module
from alphacut.codec import decode_image
from alphacut.evaluate import pairs
from alphacut.masks import grow_one
from alphacut.matte import box_mean_planes
from alphacut.options import SubjectType
from alphacut.pipeline import MatteRequest, RawMatte
from PIL import Image

pytestmark = pytest.mark.quality


def _previous_fill_runs(seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mask = np.ascontiguousarray(mask)
    before = np.zeros_like(mask)
    before[:, 1:] = mask[:, :-1]
    run = np.cumsum((mask & ~before).ravel()) * mask.ravel()
    seeded = np.bincount(run, weights=np.ascontiguousarray(seeds).ravel(), minlength=int(run[-1]) + 1) > 0
    seeded[0] = False
    return seeded[run].reshape(mask.shape)


def previous_reconstruct(seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reconstruction before issue 94: row runs, column runs and a diagonal step, until stable."""
    current, count = seeds & mask, int((seeds & mask).sum())
    while True:
        current = _previous_fill_runs(current, mask)
        current = _previous_fill_runs(current.T, mask.T).T
        current = grow_one(current) & mask
        if int(current.sum()) == count:
            return current
        count = int(current.sum())


def previous_gate(mask: np.ndarray, radius: int) -> np.ndarray:
    return box_mean_planes(mask[None].astype(np.float32), radius)[0]


def finished_before(pipeline, prepared, raw) -> np.ndarray:
    """The matte as the finishing before issue 94 made it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matte_module, "reconstruct", previous_reconstruct)
        patch.setattr(matte_module, "box_mean_mask", previous_gate)
        return pipeline.finish_matte(prepared, raw)


def overlap(found: np.ndarray, true: np.ndarray) -> float:
    """IoU of two masks."""
    return float((found & true).sum() / max(1, (found | true).sum()))


@pytest.mark.parametrize("folder,subject", [("general", SubjectType.OBJECT), ("person", SubjectType.PERSON)])
def test_the_cheaper_finishing_keeps_every_eval_photos_matte_within_0_002_iou(
    pipeline, eval_dir, folder, subject
):
    now, before, agreement = [], [], []
    every = 1 if os.environ.get("ALPHACUT_EQUALITY_ALL") == "1" else 4
    for _, image_path, truth_path in list(pairs(eval_dir / folder))[::every]:
        prepared = pipeline.prepare_matte(MatteRequest(decode_image(image_path.read_bytes()), subject))
        person = prepared.person_input
        raw = RawMatte(
            pipeline.models.isnet.run(prepared.model_input).matte,
            pipeline.models.selfie.run(person) if person is not None else None,
        )
        finished, previous = pipeline.finish_matte(prepared, raw), finished_before(pipeline, prepared, raw)
        truth = np.asarray(Image.open(truth_path)) >= 128
        now.append(overlap(finished >= 0.5, truth))
        before.append(overlap(previous >= 0.5, truth))
        agreement.append(overlap(finished >= 0.5, previous >= 0.5))
    print(
        f"{folder}: mean IoU {np.mean(now):.4f} now, {np.mean(before):.4f} before; "
        f"largest change on one photo {max(abs(a - b) for a, b in zip(now, before)):.4f}; "
        f"least agreement {min(agreement):.4f}"
    )
    assert len(now) >= 7
    assert abs(np.mean(now) - np.mean(before)) <= 0.002
    assert max(abs(a - b) for a, b in zip(now, before)) <= 0.002
    assert min(agreement) >= 0.998
