"""Per-stage sensitivity of ISNet int8 (percentile ranges cached): each stage alone in int8, the
rest fp32; agreement with fp32's output on the dev half (general + person), and time per run."""
import sys, time, statistics, os
from pathlib import Path
import numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import bench_int8 as b
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

CACHE = b.CACHE
prepared = CACHE / "isnet_fp32_prepared.onnx"
ranges = CACHE / sys.argv[1]
method = getattr(CalibrationMethod, sys.argv[2])
groups = sys.argv[3].split(",")
ops = [o.split("+") if o != "default" else None for o in sys.argv[4].split(",")] if len(sys.argv) > 4 else [None]  # e.g. all, conv_in, stage1 ...; "-g" means all but g
nodes = [n.name for n in onnx.load(str(prepared), load_external_data=False).graph.node]
photos = []
for folder in ("general", "person"):
    photos += sorted((b.EVAL / folder / "images").iterdir())[::2][:10]
feeds = [b.model_input(p, 1024) for p in photos]
fp32 = b.session(b.CACHE / "isnet_fp32.onnx", 2)
ref = [fp32.run(None, {"input": f})[0] for f in feeds]
base = b.seconds_per_run(fp32, feeds[0], 3)
print(f"fp32 {base:.3f} s", flush=True)
for g, op in [(g, op) for g in groups for op in ops]:
    def member(name, g=g):
        if g == "all":
            return True
        if g.startswith("-"):
            return not any(name.startswith(f"/{x}/") for x in g[1:].split("+"))
        return any(name.startswith(f"/{x}/") for x in g.split("+"))
    out = CACHE / f"sens_{sys.argv[2]}_{g}.onnx"
    quantize_static(str(prepared), str(out), None, quant_format=QuantFormat.QDQ, per_channel=True,
        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, calibrate_method=method,
        calibration_cache_path=str(ranges), op_types_to_quantize=op,
        nodes_to_exclude=[n for n in nodes if not member(n)],
        extra_options={"CalibTensorRangeSymmetric": False})
    s = b.session(out, 2)
    ious, maes = [], []
    for f, r in zip(feeds, ref):
        o = s.run(None, {"input": f})[0]
        a, bb = o > 0.5, r > 0.5
        ious.append((a & bb).sum() / max(1, (a | bb).sum()))
        maes.append(np.abs(o - r).mean())
    t = b.seconds_per_run(s, feeds[0], 3)
    gi = statistics.mean(ious[:10]); pi = statistics.mean(ious[10:])
    print(f"| {g} {op} | {t:.3f} | {t/base:.2f} | {gi:.4f} | {min(ious[:10]):.4f} | {pi:.4f} | {statistics.mean(maes):.4f} |", flush=True)
    out.unlink()
