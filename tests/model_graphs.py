"""Small ONNX graphs with a matting model's signature, whose output is known: they stand in for an
operator's BiRefNet-class model (1 x 3 x H x W in, ImageNet normalisation, one logits map out)
without downloading anything, so what a route or a task answers can be checked by value. And an
operator's copy of the built models layer, with ``alphacut`` run on it as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alphacut_dev.template import ROOT
from onnx import TensorProto, helper

ALPHACUT = Path(sys.executable).with_name("alphacut")
BUILT = ROOT / "layers" / "models"

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def first_channel_graph(width: int, height: int) -> bytes:
    """1 x 3 x H x W -> 1 x 1 x H x W: the input's first channel, as a matte output would be."""
    node = helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["matte"])
    graph = helper.make_graph(
        [node],
        "first_channel",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, height, width])],
        [helper.make_tensor_value_info("matte", TensorProto.FLOAT, ["batch", 1, height, width])],
        [
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def operator_copy(folder: Path) -> Path:
    """The built models layer as an operator's copy: the model folders linked, the manifest copied."""
    folder.mkdir(parents=True)
    for entry in BUILT.iterdir():
        if entry.is_dir():
            (folder / entry.name).symlink_to(entry)
    (folder / "manifest.json").write_text((BUILT / "manifest.json").read_text())
    return folder


def run_alphacut(models_dir: Path, *args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``alphacut ARGS`` as a subprocess on ``models_dir`` (ALPHACUT_MODELS_DIR)."""
    env = {**os.environ, "ALPHACUT_MODELS_DIR": str(models_dir), **(env or {})}
    return subprocess.run(
        [str(ALPHACUT), *map(str, args)], capture_output=True, text=True, timeout=600, env=env
    )
