# Experiment (shipped as alphacut.matte.unsure; removed from the tree next): reads /tmp/gate/raw_rows.json
import json, numpy as np
rows = json.load(open("/tmp/gate/raw_rows.json"))
for key in ("faint0.02", "faint0.05", "soft"):
  for folder in ("general", "person"):
    for half in ("dev", "test"):
        r = [x for x in rows if x["folder"] == folder and x["half"] == half]
        fast = np.mean([x["fast"]["iou"] for x in r]); best = np.mean([x["best"]["iou"] for x in r])
        print(f"{key} {folder} {half} n={len(r)} fast {fast:.4f} g{sum(x['fast']['ghost'] for x in r)} best {best:.4f} g{sum(x['best']['ghost'] for x in r)}")
        if half == "dev":
            cands = sorted({x[key] for x in r} | {0.0})
            chosen = None
            for t in cands:
                v = np.mean([x["best" if x[key] > t else "fast"]["iou"] for x in r])
                if v >= best - 0.005: chosen = t
            t = chosen
        v = np.mean([x["best" if x[key] > t else "fast"]["iou"] for x in r])
        mae = np.mean([x["best" if x[key] > t else "fast"]["mae"] for x in r])
        g = sum(x["best" if x[key] > t else "fast"]["ghost"] for x in r)
        n = sum(x[key] > t for x in r)
        print(f"   gate>{t:.4f}: {v:.4f} mae {mae:.4f} ghosts {g} mirrored {n}/{len(r)}")
