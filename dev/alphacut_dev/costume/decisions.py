"""Per-picture dress/skirt decisions compared on the held-out tenth of the pixel-labelled photos.

Every decision policy picks, per picture, one of four class maps: the head's own (no rule), the
shipped one (a dress under a top made a skirt), every dress/skirt pixel called dress, or called
skirt. ``table`` runs the pipeline once and stores each photo's confusion matrix for the four maps,
the head's class counts and the labels' answer; ``add`` appends a decider's skirt probability per
photo (``alphacut_dev.costume.one_piece_finetune --export``); ``policies`` then scores every policy
from that file in a moment, and the IoU of dress and skirt taken as one class. Reads no eval photo.

Usage::

    python -m alphacut_dev.costume.decisions table      # the pipeline on the 79 photos, ~5 min
    python -m alphacut_dev.costume.decisions add --decider .cache/costume/ft_b.onnx --cropped ft_c.onnx
    python -m alphacut_dev.costume.decisions policies
    python -m alphacut_dev.costume.decisions table --head CANDIDATE.onnx --table .cache/costume/candidate.npz
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alphacut import pipeline as pipeline_module
from alphacut.costume import SEED_GARMENTS, Garment, class_map_from_scores, skirt_under_a_top
from alphacut.evaluate import confusion, iou_per_class
from alphacut.pipeline import Pipeline
from PIL import Image

from alphacut_dev.costume.census import looks_like
from alphacut_dev.costume.labels import fine_lookup
from alphacut_dev.costume.oracle import renamed, skirt_probability, use_head, worn_lower_garment
from alphacut_dev.data import TRAIN_CCP

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / ".cache" / "costume" / "decisions.npz"
HEAD, RULE, ALL_DRESS, ALL_SKIRT = range(4)
DRESS, SKIRT, TOPS = Garment.DRESS.class_id, Garment.SKIRT.class_id, Garment.TOPS.class_id


def head_maps(pipeline: Pipeline, rgb_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(the decoded picture, the head's class map before the skirt rule)."""
    original = pipeline_module.class_map_from_scores

    def without_rule(scores: np.ndarray, matte: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
        return class_map_from_scores(scores, matte, rgb, skirt_rule=False)

    # the pipeline applies the rule inside; here the map before it is wanted
    pipeline_module.class_map_from_scores = without_rule
    try:
        image = pipeline.decode(rgb_bytes)
        return image.rgb, pipeline.parse_costume(image).class_map
    finally:
        pipeline_module.class_map_from_scores = original


def held_out_stems(train: Path) -> list[str]:
    return [p.stem for i, p in enumerate(sorted((train / "images").glob("*.jpg"))) if i % 10 == 9]


def build_table(train: Path, target: Path = TABLE, head_file: Path | None = None) -> None:
    """Each held-out photo's confusion matrices for the four maps, the head's counts, the answer
    (``head_file``: a candidate head instead of the committed one)."""
    table = fine_lookup(train / "classes.json")
    stems = held_out_stems(train)
    pipeline = Pipeline.from_settings()
    if head_file is not None:
        use_head(pipeline, head_file)
    matrices = np.zeros((len(stems), 4, 10, 10), np.int64)
    counts = np.zeros((len(stems), 10), np.int64)
    garments = np.full(len(stems), -1)
    for row, stem in enumerate(stems):
        _, head = head_maps(pipeline, (train / "images" / f"{stem}.jpg").read_bytes())
        truth = table[np.asarray(Image.open(train / "labels" / f"{stem}.png"))]
        garment = worn_lower_garment(truth)
        garments[row] = -1 if garment is None else garment
        maps = (head, skirt_under_a_top(head), renamed(head, DRESS), renamed(head, SKIRT))
        matrices[row] = [confusion(m, truth) for m in maps]
        counts[row] = np.bincount(head.ravel(), minlength=10)
        print(f"\r{row + 1}/{len(stems)}", end="", file=sys.stderr)
    probabilities, deciders = np.zeros((len(stems), 0)), np.array([], str)
    np.savez(
        target,
        stems=stems,
        matrices=matrices,
        counts=counts,
        garments=garments,
        probabilities=probabilities,
        deciders=deciders,
    )


def add_decider(train: Path, path: Path, cropped: bool, target: Path = TABLE) -> None:
    """Append the decider's skirt probability for every photo of the table as a column."""
    import onnxruntime as ort

    data = dict(np.load(target))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pipeline = Pipeline.from_settings()
    column = []
    for stem in data["stems"]:
        rgb = pipeline.decode((train / "images" / f"{stem}.jpg").read_bytes()).rgb
        person = pipeline.models.selfie.predict(rgb) if cropped else None
        column.append(skirt_probability(session, rgb, person))
    data["probabilities"] = np.concatenate([data["probabilities"], np.array(column)[:, None]], 1)
    data["deciders"] = np.append(data["deciders"], f"{path.name}{' (cropped)' if cropped else ''}")
    np.savez(target, **data)


Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def score(matrices: np.ndarray, choice: np.ndarray) -> tuple[float, float, float]:
    """(seed mean, dress, skirt) IoU over the photos with the chosen map each."""
    iou = iou_per_class(matrices[np.arange(len(choice)), choice].sum(0))
    return float(np.mean([iou[g.class_id] for g in SEED_GARMENTS])), iou[DRESS] or 0.0, iou[SKIRT] or 0.0


def lower_garment_iou(matrices: np.ndarray) -> float:
    """Dress and skirt scored as one class, the head's own map: a figure no dress/skirt decision moves."""
    merged = matrices[:, HEAD].sum(0).astype(np.float64)
    merged[DRESS] += merged[SKIRT]
    merged[:, DRESS] += merged[:, SKIRT]
    merged[SKIRT], merged[:, SKIRT] = 0, 0
    return float(iou_per_class(merged)[DRESS] or 0.0)


def shape_calls(train: Path, stems: np.ndarray) -> np.ndarray:
    """Per photo, what a viewer calls the labelled lower garment from its shape (``census.looks_like``)."""
    table = fine_lookup(train / "classes.json")
    calls = [looks_like(table[np.asarray(Image.open(train / "labels" / f"{stem}.png"))]) for stem in stems]
    return np.array([-1 if call is None else call for call in calls])


def policies(data: np.lib.npyio.NpzFile, train: Path = TRAIN_CCP) -> None:
    counts, p, garments = data["counts"], data["probabilities"], data["garments"]
    rule_fires = (counts[:, DRESS] > 0) & (counts[:, TOPS] >= 0.5 * counts[:, DRESS])
    known = garments >= 0
    print(f"{known.sum()} of {len(garments)} photos show exactly one of dress and skirt")
    lower = lower_garment_iou(data["matrices"])
    print(f"dress and skirt as one lower garment, whatever the decision: IoU {lower:.3f}")
    print(f"{'policy':<44}{'right':>7}{'seed mean':>11}{'dress':>7}{'skirt':>7}")

    def show(name: str, choice: np.ndarray) -> None:
        said = np.where(choice == ALL_SKIRT, SKIRT, np.where(choice == ALL_DRESS, DRESS, -1))
        right = ((said == garments) & known).sum()
        print(
            f"{name:<44}{right:>4}/{known.sum():<3}"
            + "".join(
                f"{v:>9.4f}" if i == 0 else f"{v:>7.3f}"
                for i, v in enumerate(score(data["matrices"], choice))
            )
        )

    show("head alone", np.full(len(garments), HEAD))
    show("shipped rule", np.full(len(garments), RULE))
    show("oracle", np.where(garments == SKIRT, ALL_SKIRT, np.where(garments == DRESS, ALL_DRESS, RULE)))
    # a decider that sees every garment's shape perfectly, and names it as most annotators did
    shape = shape_calls(train, data["stems"])
    show("the labels' shape", np.where(shape == SKIRT, ALL_SKIRT, np.where(shape == DRESS, ALL_DRESS, RULE)))
    for column, decider in enumerate(data["deciders"]):
        skirt = p[:, column]
        show(f"{decider}: always", np.where(skirt >= 0.5, ALL_SKIRT, ALL_DRESS))
        for margin in (0.1, 0.2, 0.3):
            sure = np.abs(skirt - 0.5) >= margin
            show(
                f"{decider}: sure by {margin}, else rule",
                np.where(sure, np.where(skirt >= 0.5, ALL_SKIRT, ALL_DRESS), RULE),
            )
        show(f"{decider}: rule only if it agrees", np.where(rule_fires & (skirt >= 0.5), ALL_SKIRT, HEAD))
        for threshold in (0.6, 0.7, 0.8):
            show(
                f"{decider}: rule, or skirt at p>={threshold}",
                np.where(rule_fires | (skirt >= threshold), ALL_SKIRT, HEAD),
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("table", "add", "policies"))
    parser.add_argument("--train", type=Path, default=TRAIN_CCP)
    parser.add_argument("--decider", type=Path, nargs="*", default=[], help="fed the whole picture")
    parser.add_argument("--cropped", type=Path, nargs="*", default=[], help="fed the person on grey")
    parser.add_argument("--table", type=Path, default=TABLE, help="the table file to write or read")
    parser.add_argument("--head", type=Path, help="table: a candidate head file instead of the committed one")
    args = parser.parse_args(argv)
    if args.step == "table":
        build_table(args.train, args.table, args.head)
    elif args.step == "add":
        for path in args.decider:
            add_decider(args.train, path, cropped=False, target=args.table)
        for path in args.cropped:
            add_decider(args.train, path, cropped=True, target=args.table)
    else:
        policies(np.load(args.table), args.train)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
