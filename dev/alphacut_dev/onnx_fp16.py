"""float16 in ONNX graphs: weights stored as float16 and computed in float32, or computed in float16.

``fp16_behind_cast``: a float32 initializer ``name`` becomes ``name_fp16`` (float16) and a Cast back
to ``name``; onnxruntime folds the Cast once, at session creation, so the file is half the size and
the session the same.

``computing_in_fp16``: the whole graph in float16 (what a GPU's tensor cores run), its inputs and
outputs still float32 (a Cast at each end), so that callers feed and read it as before. Made for the
GPU benchmark (benchmarks/bench_gpu.py); a general converter (onnxruntime.transformers.float16) took
more than 24 GB on ISNet with its weights inside, where this edits the protobuf in place.

Usage::

    initializer, cast = fp16_behind_cast("conv1_w", weight)
    graph.initializer.append(initializer)
    graph.node.insert(0, cast)

    model = computing_in_fp16(onnx.load("selfie.onnx"), batch="batch")
    model = computing_in_fp16(onnx.load("graph.onnx"), weights=dict(np.load("weights.npz")))
    model = with_free_batch(onnx.load("selfie.onnx"))     # float32 still, any number of pictures
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# inputs that the ONNX operators take as float32 whatever the data's type (Resize's roi and scales)
FLOAT32_INPUTS = {"Resize": (1, 2), "Upsample": (1,)}


def fp16_behind_cast(name: str, value: np.ndarray) -> tuple[onnx.TensorProto, onnx.NodeProto]:
    """The float16 initializer and the Cast node that gives ``name`` back as float32."""
    return (
        numpy_helper.from_array(value.astype(np.float16), f"{name}_fp16"),
        helper.make_node("Cast", [f"{name}_fp16"], [name], to=TensorProto.FLOAT),
    )


def computing_in_fp16(
    model: onnx.ModelProto, weights: dict[str, np.ndarray] | None = None, batch: str | None = None
) -> onnx.ModelProto:
    """``model`` changed in place to compute in float16. ``weights``: arrays for initializers the
    file keeps outside (ISNet's weights.npz), put inside as float16; ``batch``: a name for the first
    dimension of every input and output, so a graph made for one picture takes several."""
    graph = model.graph
    kept = {
        node.input[i]
        for node in graph.node
        for i in FLOAT32_INPUTS.get(node.op_type, ())
        if i < len(node.input) and node.input[i]
    }
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in kept:
            continue
        value = weights[init.name] if weights and init.name in weights else numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=np.float16), init.name))
    for node in graph.node:
        if node.op_type == "Cast" and node.attribute[0].i == TensorProto.FLOAT:
            node.attribute[0].i = TensorProto.FLOAT16  # the weights' own casts (fp16_behind_cast)
        constant = node.op_type == "Constant" and node.attribute[0].t.data_type == TensorProto.FLOAT
        if constant and node.output[0] not in kept:
            value = numpy_helper.to_array(node.attribute[0].t).astype(np.float16)
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(value))
    del graph.value_info[:]  # float32 types of inner tensors: onnxruntime infers them again
    ends = [(value, "in") for value in graph.input if _is_float(value)]
    ends += [(value, "out") for value in graph.output if _is_float(value)]
    renamed = {value.name: f"{value.name}_fp16" for value, _ in ends}
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    casts_in = [_retype(value, end, batch) for value, end in ends if end == "in"]
    casts_out = [_retype(value, end, batch) for value, end in ends if end == "out"]
    for cast in reversed(casts_in):
        graph.node.insert(0, cast)
    graph.node.extend(casts_out)
    return model


def with_free_batch(model: onnx.ModelProto, batch: str = "batch") -> onnx.ModelProto:
    """``model`` changed in place to take any number of pictures: the first dimension of its inputs
    and outputs named ``batch``, and each Resize to constant ``sizes`` (which fix the batch at the
    size it was made for: the selfie model's) given the equal ``scales`` instead."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in [*inferred.graph.value_info, *inferred.graph.input]
    }
    sizes = {init.name: init for init in model.graph.initializer if init.data_type == TensorProto.INT64}
    for node in model.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in sizes:
            continue
        wanted = numpy_helper.to_array(sizes[node.input[3]]).astype(np.float32)
        scales = wanted / np.asarray(shapes[node.input[0]], dtype=np.float32)
        model.graph.initializer.append(numpy_helper.from_array(scales, f"{node.input[3]}_scales"))
        model.graph.initializer.remove(sizes.pop(node.input[3]))
        node.input[2] = f"{node.input[3]}_scales"
        del node.input[3]
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = batch
    del model.graph.value_info[:]
    return model


def _is_float(value: onnx.ValueInfoProto) -> bool:
    return value.type.tensor_type.elem_type == TensorProto.FLOAT


def _retype(value: onnx.ValueInfoProto, end: str, batch: str | None) -> onnx.NodeProto:
    """The Cast between a float32 graph input (or output) and its float16 inside (the name the graph's
    nodes were given instead)."""
    inside = f"{value.name}_fp16"
    if batch is not None:
        value.type.tensor_type.shape.dim[0].dim_param = batch
    return (
        helper.make_node("Cast", [value.name], [inside], to=TensorProto.FLOAT16)
        if end == "in"
        else helper.make_node("Cast", [inside], [value.name], to=TensorProto.FLOAT)
    )
