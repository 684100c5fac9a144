import sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import bench_int8 as b
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
ranges = b.CACHE / sys.argv[1]
exclude = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
prepared = b.CACHE / "isnet_fp32_prepared.onnx"
nodes = [n.name for n in onnx.load(str(prepared), load_external_data=False).graph.node]
out = b.CACHE / f"eval_{sys.argv[1]}_{'-'.join(exclude)}.onnx"
quantize_static(str(prepared), str(out), None, quant_format=QuantFormat.QDQ, per_channel=True,
    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.Percentile,
    calibration_cache_path=str(ranges), op_types_to_quantize=["Conv"],
    nodes_to_exclude=[n for n in nodes if any(n.startswith(f"/{x}/") for x in exclude)],
    extra_options={"CalibTensorRangeSymmetric": False})
feed = b.model_input(min((b.EVAL / "general" / "images").iterdir()), 1024)
print(f"{sys.argv[1]} excl {exclude}: {b.seconds_per_run(b.session(out, 2), feed, 5):.3f} s", flush=True)
for sp in ("dev", "test"):
    for k, v in b.evaluate_with(out, 2, split=sp).items():
        print(f"| {k} {sp} | {v['iou']:.4f} | {v['mae']:.4f} | {v['boundary_f']:.4f} | {v['ghosted']} |", flush=True)
