"""Weights stored as float16 in an ONNX file, computed in float32.

A float32 initializer ``name`` becomes ``name_fp16`` (float16) and a Cast back to ``name``; onnxruntime
folds the Cast once, at session creation, so the file is half the size and the session the same.

Usage::

    initializer, cast = fp16_behind_cast("conv1_w", weight)
    graph.initializer.append(initializer)
    graph.node.insert(0, cast)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def fp16_behind_cast(name: str, value: np.ndarray) -> tuple[onnx.TensorProto, onnx.NodeProto]:
    """The float16 initializer and the Cast node that gives ``name`` back as float32."""
    return (
        numpy_helper.from_array(value.astype(np.float16), f"{name}_fp16"),
        helper.make_node("Cast", [f"{name}_fp16"], [name], to=TensorProto.FLOAT),
    )
