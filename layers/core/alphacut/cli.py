"""The ``alphacut`` command: cut out files and folders, and measure quality.

Usage::

    alphacut remove photos/ shoe.jpg -o out/ --type object --format webp --crop
    alphacut remove selfie.jpg -o out/ --output mask          # out/selfie.png, one channel
    alphacut eval ../shared/eval/person --type person
    alphacut remove look.jpg -o out/ --type costume --output mask   # class map: 0 bg, 1 tops .. 9 person
    alphacut eval ../shared/eval/clothing --type costume            # IoU per class
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from alphacut.errors import AlphacutError
from alphacut.evaluate import IMAGE_SUFFIXES, SPLITS, evaluate, evaluate_costume
from alphacut.options import CutoutOptions, ImageFormat, OutputKind, SubjectType
from alphacut.pipeline import Pipeline


class ProgressBar:
    """A one-line bar on a terminal; silent when the stream is not one (logs, pipes)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30):
        self.total, self.stream, self.width = total, stream, width
        self.enabled = total > 1 and stream.isatty()

    def update(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        filled = self.width * done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {label[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded to the images in them (recursively); and what is missing."""
    files, missing = [], []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(raw)
    return files, missing


def output_paths(source: Path, outdir: Path, options: CutoutOptions) -> tuple[Path, Path]:
    """``<stem>.<ext>`` for the image; the mask is ``<stem>.png`` alone, ``<stem>_mask.png`` beside one."""
    image_path = outdir / f"{source.stem}.{options.format.value}"
    if options.output is OutputKind.MASK:
        return image_path, outdir / f"{source.stem}.png"
    return image_path, outdir / f"{source.stem}_mask.png"


def _remove(args: argparse.Namespace) -> int:
    try:
        options = CutoutOptions(type=args.type, output=args.output, format=args.format,
                                bg_color=args.bg_color, crop=args.crop, crop_margin=args.crop_margin,
                                target_width=args.width, target_height=args.height)
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    files, missing = collect_inputs(args.inputs)
    failed = 0
    for raw in missing:
        print(f"alphacut: {raw}: no such file or folder", file=sys.stderr)
        failed += 1
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.from_settings()
    bar = ProgressBar(len(files))
    for done, path in enumerate(files, start=1):
        try:
            result = pipeline.run(path.read_bytes(), options)
            image_path, mask_path = output_paths(path, outdir, options)
            if result.image is not None:
                image_path.write_bytes(result.image)
            if result.mask is not None:
                mask_path.write_bytes(result.mask)
        except AlphacutError as error:
            failed += 1
            bar.close() if bar.enabled else None
            print(f"alphacut: {path}: {error}", file=sys.stderr)
        except OSError as error:
            failed += 1
            print(f"alphacut: {path}: {error.strerror or error}", file=sys.stderr)
        bar.update(done, path.name)
    bar.close()
    written = len(files) - (failed - len(missing))
    print(f"{written} written to {outdir}, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _eval(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    subject = SubjectType(args.type)
    truth = args.truth or ("gt_coarse" if subject is SubjectType.COSTUME else "gt")
    if not (directory / "images").is_dir() or not (directory / truth).is_dir():
        print(f"alphacut: {directory} needs images/ and {truth}/ folders", file=sys.stderr)
        return 2
    pipeline = Pipeline.from_settings()
    bar = ProgressBar(len(list((directory / "images").iterdir())))
    if subject is SubjectType.COSTUME:
        costume = evaluate_costume(directory, pipeline, args.split, truth, lambda done, _: bar.update(done))
        bar.close()
        print(costume.table())
        return 0
    report = evaluate(directory, pipeline, subject, args.split, progress=lambda done, _: bar.update(done),
                      truth=truth)
    bar.close()
    if args.per_image:
        for s in report.scores:
            print(f"{s.stem:<28} IoU {s.iou:.3f}  MAE {s.mae:.4f}")
    print(report.table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alphacut", description="Background removal on CPU ONNX models.")
    commands = parser.add_subparsers(dest="command", required=True)

    remove = commands.add_parser("remove", help="cut the subject out of images")
    remove.add_argument("inputs", nargs="+", help="image files and/or folders")
    remove.add_argument("-o", "--outdir", required=True, help="folder for the results")
    remove.add_argument("--type", default="auto", choices=[t.value for t in SubjectType])
    remove.add_argument("--output", default="image", choices=[o.value for o in OutputKind])
    remove.add_argument("--format", default="png", choices=[f.value for f in ImageFormat] + ["jpeg"])
    remove.add_argument("--bg-color", default=None, help="hex colour or name to compose on")
    remove.add_argument("--crop", action="store_true", help="crop to the subject")
    remove.add_argument("--crop-margin", default="0", help="margin around the crop: 12, 12px or 5%%")
    remove.add_argument("--width", type=int, default=None, help="target width (fits the subject)")
    remove.add_argument("--height", type=int, default=None, help="target height (fits the subject)")
    remove.set_defaults(handler=_remove)

    measure = commands.add_parser("eval", help="mean/median IoU and MAE on images/ + gt/")
    measure.add_argument("directory")
    measure.add_argument("--type", default="auto", choices=[t.value for t in SubjectType])
    measure.add_argument("--split", default="all", choices=SPLITS)
    measure.add_argument("--truth", default=None,
                         help="ground-truth folder (default gt; gt_coarse for --type costume)")
    measure.add_argument("--per-image", action="store_true", help="also print each image's scores")
    measure.set_defaults(handler=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
