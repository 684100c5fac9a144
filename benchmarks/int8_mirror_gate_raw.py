"""Experiment: the int8 mirror gate read from the raw model matte (model resolution, before resize
and clean-up). Per general and person eval photo: faint share of the raw matte, IoU/MAE/ghost of
int8 fast and int8 best; rows to /tmp/gate/raw_rows.json."""
import json
import numpy as np
from alphacut.evaluate import pairs, score
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings
from alphacut_dev.data import EVAL
from PIL import Image

p = Pipeline.from_settings(EngineSettings.from_env({"ALPHACUT_ENGINE": "onnxruntime-int8", "ALPHACUT_THREADS": "2", "ALPHACUT_RECENT_OUTPUTS_MB": "256"}))
rows = []
for folder, subject in (("general", SubjectType.OBJECT), ("person", SubjectType.PERSON)):
    dev = {s for s, _, _ in pairs(EVAL / folder, "dev")}
    for stem, image_path, truth_path in pairs(EVAL / folder):
        data = image_path.read_bytes()
        truth = np.asarray(Image.open(truth_path).convert("L"))
        out = {}
        for q in ("fast", "best"):
            options = CutoutOptions(type=subject, quality=q)
            image, view = p.decode_views(data, None, options)
            alpha = p.segment(image, options, view=view).alpha
            s = score(stem, alpha, truth)
            out[q] = {"iou": s.iou, "mae": s.mae, "ghost": bool(getattr(s, "ghosted", False))}
        rgb = p._model_rgb(view)
        model = p.models.matting("isnet")
        raw = model.run_many([model.preprocess(rgb)])[0]
        fg = max(float((raw > 0.5).sum()), 1.0)
        for lo in (0.02, 0.05):
            out[f"faint{lo}"] = float(((raw > lo) & (raw < 0.5)).sum() / fg)
        out["soft"] = float(((raw > 0.05) & (raw < 0.95)).sum() / fg)
        rows.append({"folder": folder, "stem": stem, "half": "dev" if stem in dev else "test", **out})
        print(json.dumps(rows[-1]), flush=True)
json.dump(rows, open("/tmp/gate/raw_rows.json", "w"))
