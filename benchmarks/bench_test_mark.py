"""Benchmark: how much of a live cutout a store gets back from test results of one photo moved on
its canvas (issue 90's second attack on the test mark).

The attacker pads one photo (resized to 560 x 315) at eight offsets inside a 600 x 400 canvas (a
preview or less, so the test result is full size), cuts each out with a test key, shifts each result
back and keeps, per pixel, a value from a result where the pixel is not marked. Here the attacker is
given the truth (a pixel counts as unmarked where the test result equals the live one: no attacker
does better) and the mark laid as a test key's is (``alphacut.watermark``), against the mark fixed
to the picture as it was before (``Watermark.drawn`` over the whole canvas), in the same run.
Printed: the share of the subject's pixels left unmarked in some result, the alpha's IoU against
the live one (thresholded at 128) and the colours' PSNR under the subject, for 1 and 8 results.
Then the third attack's: a red disk pasted beside the subject at five places (the model cuts it out
too), six results, against a mark anchored on the whole alpha (as before it), judged on the subject
alone.

    .venv/bin/python benchmarks/bench_test_mark.py [--photo PATH]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from alphacut.caller_scope import caller_scope
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut.watermark import Watermark
from alphacut_dev.data import EVAL
from PIL import Image

SIZE, ROOM = (560, 315), (40, 85)
OFFSETS = [(0, 0), (0, 28), (0, 56), (0, 85), (40, 0), (40, 28), (40, 56), (40, 85)]
ACCOUNT = "k-bench-mark"


def padded(photo: np.ndarray, dx: int, dy: int) -> bytes:
    canvas = np.pad(photo, ((dy, ROOM[1] - dy), (dx, ROOM[0] - dx), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "PNG")
    return buffer.getvalue()


def cut(pipeline: Pipeline, data: bytes, test: bool) -> np.ndarray:
    with caller_scope(ACCOUNT, test=test):
        result = pipeline.run(data, CutoutOptions())
    return np.asarray(Image.open(io.BytesIO(result.image)).convert("RGBA"))


def recovered(
    live: np.ndarray, lives: list[np.ndarray], results: list[np.ndarray]
) -> tuple[float, float, float]:
    """Unmarked share of the subject, alpha IoU and PSNR under it (against ``live``), from
    ``results`` shifted back; a pixel is unmarked where a result equals the live result of its own
    offset (``lives``)."""
    width, height = SIZE
    subject = live[..., 3] >= 128
    known = np.zeros(live.shape[:2], bool)
    rebuilt = np.zeros_like(live)
    for (dx, dy), result, same_offset in zip(OFFSETS, results, lives):
        back = result[dy : dy + height, dx : dx + width]
        truth = same_offset[dy : dy + height, dx : dx + width]
        clean = np.all(back == truth, axis=2) & ~known  # the truth: the attacker's best case
        rebuilt[clean], known = back[clean], known | clean
    found = rebuilt[..., 3] >= 128
    iou = (found & subject).sum() / max((found | subject).sum(), 1)
    error = (rebuilt[..., :3].astype(float) - live[..., :3].astype(float))[subject]
    psnr = 10 * np.log10(255.0**2 / max(float((error**2).mean()), 1e-9))
    return float(known[subject].mean()), float(iou), psnr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photo", default=str(EVAL / "general" / "images" / "dog_00030.jpg"))
    args = parser.parse_args()
    pipeline = Pipeline.from_settings()
    photo = np.asarray(Image.open(args.photo).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS))
    live = cut(pipeline, padded(photo, 0, 0), test=False)[: SIZE[1], : SIZE[0]]
    lives = [cut(pipeline, padded(photo, dx, dy), test=False) for dx, dy in OFFSETS]
    tests = [cut(pipeline, padded(photo, dx, dy), test=True) for dx, dy in OFFSETS]
    fixed_mark = Watermark.drawn(SIZE[0] + ROOM[0], SIZE[1] + ROOM[1], ACCOUNT)
    fixed = []  # the mark as it was: the picture's, whatever moved under it
    for result in lives:
        rgb, alpha = fixed_mark.on_picture(result[..., :3], result[..., 3])
        fixed.append(np.dstack([rgb, alpha]))
    print("| mark | results | subject pixels unmarked somewhere | alpha IoU | PSNR under the subject |")
    print("|---|---|---|---|---|")
    for name, results in (("fixed to the picture (before)", fixed), ("laid on the subject (now)", tests)):
        for count in (1, len(OFFSETS)):
            share, iou, psnr = recovered(live, lives, results[:count])
            print(f"| {name} | {count} | {share:.1%} | {iou:.3f} | {psnr:.1f} dB |")
    objects_beside(pipeline, photo)


DISKS = [None, (40, 40), (520, 40), (40, 300), (520, 300), (300, 40)]  # where a disk is pasted


def with_disk(photo: np.ndarray, at: tuple[int, int] | None) -> np.ndarray:
    from PIL import ImageDraw

    canvas = Image.fromarray(np.pad(photo, ((0, ROOM[1]), (0, ROOM[0]), (0, 0)), mode="edge"))
    if at is not None:
        ImageDraw.Draw(canvas).ellipse((at[0] - 55, at[1] - 55, at[0] + 55, at[1] + 55), fill=(220, 20, 20))
    return np.asarray(canvas)


def whole_alpha_mark(result: np.ndarray) -> np.ndarray:
    """The mark as it was anchored before: on the whole alpha's centre of mass and area."""
    mark = Watermark.centred_on(result[..., 3], ACCOUNT)
    rgb, marked = mark.on_picture(result[..., :3], result[..., 3])
    return np.dstack([rgb, marked])


def objects_beside(pipeline: Pipeline, photo: np.ndarray) -> None:
    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        return buffer.getvalue()

    canvases = [png(with_disk(photo, at)) for at in DISKS]
    lives = [cut(pipeline, data, test=False) for data in canvases]
    tests = [cut(pipeline, data, test=True) for data in canvases]
    before = [whole_alpha_mark(live) for live in lives]
    disks = np.zeros(lives[0].shape[:2], bool)
    for at in DISKS[1:]:
        yy, xx = np.ogrid[: disks.shape[0], : disks.shape[1]]
        disks |= (xx - at[0]) ** 2 + (yy - at[1]) ** 2 <= 70**2
    subject = (lives[0][..., 3] >= 128) & ~disks
    print("\n| mark anchored on | results (a disk beside at 5 places) | subject unmarked somewhere |")
    print("|---|---|---|")
    for name, results in (("the whole alpha (before)", before), ("its largest part (now)", tests)):
        for count in (1, len(DISKS)):
            known = np.zeros(subject.shape, bool)
            for result, live in zip(results[:count], lives):
                known |= np.all(result == live, axis=2)
            print(f"| {name} | {count} | {known[subject].mean():.1%} |")


if __name__ == "__main__":
    main()
