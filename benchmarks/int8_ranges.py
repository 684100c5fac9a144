"""One histogram collection over the training photos, ranges for several percentiles."""
import sys
from pathlib import Path
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import bench_int8 as b
from onnxruntime.quantization.calibrate import create_calibrator, CalibrationMethod, CalibrationDataReader
from onnxruntime.quantization.calibrate import save_tensors_data
import tempfile
photos = b.calibration_photos("train", int(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    cal = create_calibrator(b.CACHE / "isnet_fp32_prepared.onnx", ["Conv"], augmented_model_path=f"{tmp}/aug.onnx",
        calibrate_method=CalibrationMethod.Percentile, extra_options={"symmetric": False, "num_bins": 2048})
    for p in photos:
        class R(CalibrationDataReader):
            def __init__(self): self.done = False
            def get_next(self):
                if self.done: return None
                self.done = True
                return {"input": b.model_input(p, 1024)}
        cal.collect_data(R())
    for pct in sys.argv[2].split(","):
        cal.collector.percentile = float(pct)
        save_tensors_data(cal.compute_data(), b.CACHE / f"ranges_Percentile{pct}_train{sys.argv[1]}_conv.json")
        print("wrote", pct, flush=True)
