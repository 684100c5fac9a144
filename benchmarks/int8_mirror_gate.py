"""Experiment (did not ship): the mirror only where int8's first matte is unsure. Per eval photo
(general, person; both halves): IoU, MAE and ghost of int8 fast, int8 best (the photo and its
mirror) and fp32 fast, and the first matte's faint share (alpha 0.02-0.5 over the area above 0.5)
and soft share (0.05-0.95); rows to /tmp/gate/rows.json (docs/benchmarks.md, "An adaptive mirror").

    .venv/bin/python benchmarks/int8_mirror_gate.py
"""
import json, sys
import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
from alphacut_dev.data import EVAL
from PIL import Image

def pipe(engine):
    return Pipeline.from_settings(EngineSettings.from_env({"ALPHACUT_ENGINE": engine, "ALPHACUT_THREADS": "2", "ALPHACUT_RECENT_OUTPUTS_MB": "256"}))

int8, fp32 = pipe("onnxruntime-int8"), pipe("onnxruntime")
rows = []
for folder, subject in (("general", SubjectType.OBJECT), ("person", SubjectType.PERSON)):
    dev = {s for s, _, _ in pairs(EVAL / folder, "dev")}
    for stem, image_path, truth_path in pairs(EVAL / folder):
        data = image_path.read_bytes()
        truth = np.asarray(Image.open(truth_path).convert("L"))
        out = {}
        for name, p, q in (("int8_fast", int8, "fast"), ("int8_best", int8, "best"), ("fp32_fast", fp32, "fast")):
            options = CutoutOptions(type=subject, quality=q)
            image, view = p.decode_views(data, None, options)
            alpha = p.segment(image, options, view=view).alpha
            s = score(stem, alpha, truth)
            out[name] = {"iou": s.iou, "mae": s.mae, "ghost": bool(getattr(s, "ghosted", False))}
            if name == "int8_fast":
                a = alpha.astype(np.float32) / (255.0 if alpha.dtype == np.uint8 else 1.0)
                fg = max((a > 0.5).mean(), 1e-6)
                out["soft"] = float(((a > 0.05) & (a < 0.95)).mean() / fg)
                out["faint"] = float(((a > 0.02) & (a < 0.5)).mean() / fg)
        rows.append({"folder": folder, "stem": stem, "half": "dev" if stem in dev else "test", **out})
        print(json.dumps(rows[-1]), flush=True)
json.dump(rows, open("/tmp/gate/rows.json", "w"))
