"""Benchmark: what a warm instance's memory of its last outputs (``ALPHACUT_RECENT_OUTPUTS_MB``)
saves on the calls a store repeats, and what it costs the calls it cannot save.

Run on purpose, not in the tests. Two pipelines in this process, the same engine and threads, one
with the memory (64 MB, the template's) and one without; each call is the whole pipeline (decode,
models, compositing, encoding). Flows, each on eval photos the pipeline has not seen:

- ``preview, then full``: remove.bg's clients (size=preview, then size=full, the same photo)
- ``3 backgrounds``: transparent, white, a colour (a product page's variants)
- ``new photos``: every call a photo not asked before (the memory's cost: a hash and a copy)

It prints the wall and CPU seconds a call (the mean over the flow's calls; CPU: this process's,
all threads) and the memory's hits.

    .venv/bin/python benchmarks/bench_recent_outputs.py [--engine onnxruntime-int8] [--photos 6]
"""

from __future__ import annotations

import argparse
import statistics
import time

from alphacut.evaluate import pairs
from alphacut.models.engines import describe_cpu
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
from alphacut_dev.data import EVAL

FLOWS = {
    "preview, then full": [{"size": "preview"}, {"size": "full"}],
    "3 backgrounds": [{}, {"bg_color": "ffffff"}, {"bg_color": "f2e6d9"}],
    "new photos": [{}],
}


def timed(pipeline: Pipeline, data: bytes, options: CutoutOptions) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.run(data, options)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="onnxruntime-int8", help="the cutout function's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photos", type=int, default=6, help="photos per flow")
    args = parser.parse_args()
    photos = [image.read_bytes() for _, image, _ in pairs(EVAL / "general")]
    needed = args.photos * len(FLOWS) + 1
    if len(photos) < needed:
        raise SystemExit(f"{EVAL / 'general'} has {len(photos)} photos; this needs {needed}")
    pipelines = {}
    for memory in ("0", "64"):
        settings = EngineSettings.from_env(
            {
                "ALPHACUT_ENGINE": args.engine,
                "ALPHACUT_THREADS": str(args.threads),
                "ALPHACUT_RECENT_OUTPUTS_MB": memory,
            }
        )
        pipelines[memory] = Pipeline.from_settings(settings)
        pipelines[memory].run(photos[-1], CutoutOptions())  # onnxruntime's lazy set-up
    print(f"machine: {describe_cpu()}; engine {pipelines['0'].models.engine.label}, {args.threads} threads")
    print("| flow | calls | without: wall s a call | CPU s | with: wall s a call | CPU s | hits |")
    print("|---|---|---|---|---|---|---|")
    recent = pipelines["64"].models.engine.recent
    assert recent is not None
    for number, (flow, calls) in enumerate(FLOWS.items()):
        chosen = photos[number * args.photos : (number + 1) * args.photos]
        row, hits = [flow, str(len(chosen) * len(calls))], recent.hits
        for pipeline in pipelines.values():
            times = [timed(pipeline, data, CutoutOptions.from_mapping(c)) for data in chosen for c in calls]
            row += [
                f"{statistics.mean(t[0] for t in times):.2f}",
                f"{statistics.mean(t[1] for t in times):.2f}",
            ]
        row.append(str(recent.hits - hits))
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
