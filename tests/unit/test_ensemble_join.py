"""Joining costume-head members into one graph: the inputs' union, the mean, fp16 storage."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from alphacut_dev.costume.ensemble import join
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 40  # 40 x 40 weights: over the 1,024 values from which join stores fp16


def _member(path, inputs: list[str], seed: int) -> None:
    """logits = the sum of a 1x1 convolution of each input (each 1 x 40 x 4 x 4)."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for name in inputs:
        weights.append(
            numpy_helper.from_array(
                rng.standard_normal((CHANNELS, CHANNELS, 1, 1)).astype(np.float32), f"w_{name}"
            )
        )
        nodes.append(helper.make_node("Conv", [name, f"w_{name}"], [f"c_{name}"]))
    nodes.append(helper.make_node("Sum", [f"c_{name}" for name in inputs], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "member",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, CHANNELS, 4, 4]) for n in inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CHANNELS, 4, 4])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


@pytest.mark.parametrize("fp16, tolerance", [(False, 1e-5), (True, 0.05)])
def test_members_with_different_inputs_join_into_their_mean(tmp_path, fp16, tolerance):
    _member(tmp_path / "a.onnx", ["f16"], seed=1)
    _member(tmp_path / "b.onnx", ["f16", "b16"], seed=2)  # reads the backbone's map too
    joined = tmp_path / "joined.onnx"
    assert join([tmp_path / "a.onnx", tmp_path / "b.onnx"], joined, fp16=fp16) < tolerance
    session = ort.InferenceSession(str(joined), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == ["b16", "f16"]
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((1, CHANNELS, 4, 4)).astype(np.float32) for name in ("f16", "b16")}
    a = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    expected = 0.5 * (a.run(["logits"], {"f16": feeds["f16"]})[0] + b.run(["logits"], feeds)[0])
    got = session.run(["logits"], feeds)[0]
    assert np.abs(got - expected).max() < tolerance
    stored = {t.data_type for t in onnx.load(str(joined)).graph.initializer if np.prod(t.dims) > 1024}
    assert stored == ({TensorProto.FLOAT16} if fp16 else {TensorProto.FLOAT})
