"""The baseline process for bench_startup.py: what ``rembg p -om IN OUT`` does (one session, then
each photo's mask), with rembg 2.0.86's library, on the same ISNet weights as alphacut (one fp32
file through the dis_custom session). rembg's CLI needs extras (a web server, gradio) that the dev
venv does not install; the work per photo is the same ``remove(..., only_mask=True)`` call.

    python benchmarks/rembg_folder.py MODEL.onnx IN_DIR OUT_DIR
"""

import os
import sys
from pathlib import Path


def main() -> None:
    model, source, target = (Path(arg) for arg in sys.argv[1:4])
    os.environ["U2NET_HOME"] = str(model.parent)  # rembg loads custom models only from under it
    from rembg import new_session, remove

    session = new_session("dis_custom", model_path=str(model))
    target.mkdir(parents=True, exist_ok=True)
    for photo in sorted(source.iterdir()):
        (target / f"{photo.stem}.png").write_bytes(
            remove(photo.read_bytes(), session=session, only_mask=True)
        )


if __name__ == "__main__":
    main()
