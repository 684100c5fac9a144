import sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import bench_int8 as b
from alphacut.evaluate import evaluate
from alphacut.models.engines import OnnxruntimeSession
from alphacut.models.isnet import IsnetModel
from alphacut.options import SubjectType
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
res = {}
for name, graph in (("fp32", None), ("int8", b.CACHE / "eval_ranges_Percentile99.95_train16_conv.json_.onnx")):
    p = Pipeline.from_settings(EngineSettings.from_env({"ALPHACUT_ENGINE": "onnxruntime"}))
    if graph:
        p.models.__dict__["isnet"] = IsnetModel(OnnxruntimeSession(graph, 2, True, ["CPUExecutionProvider"], None, False), features=False)
    res[name] = {s.stem: s for s in evaluate(b.EVAL / "general", p, SubjectType.OBJECT, "test").scores}
for k in res["fp32"]:
    a, c = res["fp32"][k], res["int8"][k]
    print(k, f"{a.iou:.4f} {c.iou:.4f} {c.iou-a.iou:+.4f} ghost {a.ghosted}->{c.ghosted} mae {a.mae:.4f} {c.mae:.4f}")
