"""Convert MediaPipe's selfie-segmentation TFLite model to ONNX (dev-time only).

No public converter handles this model (tflite2onnx stops at HARD_SWISH, tf2onnx needs all of
TensorFlow and has no handler for MediaPipe's custom ``Convolution2DTransposeBias``), so this
module reads the flatbuffer with the ``tflite`` package and writes the ONNX graph with ``onnx``.

The ONNX model keeps the TFLite interface (NHWC input ``[1, H, W, 3]`` in 0..1, NHWC output
``[1, H, W, 1]``); inside, every activation is NCHW so ONNX's Conv and Pool operators apply.

Usage::

    from alphacut_dev.tflite_to_onnx import convert_tflite
    onnx_bytes = convert_tflite(open("selfie_segmentation.tflite", "rb").read())
"""

from __future__ import annotations

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

_OPSET = 17
_BUILTIN_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NUMPY_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
}
_FUSED_ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}


class UnsupportedOperator(ValueError):
    """The TFLite model uses an operator this converter does not know."""


def _same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding as explicit (begin, end): the extra pixel goes at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-in_size // stride)
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(self, buffer: bytes):
        self.model = tflite.Model.GetRootAsModel(buffer, 0)
        if self.model.SubgraphsLength() != 1:
            raise UnsupportedOperator("only single-subgraph models are supported")
        self.graph = self.model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.constants: dict[int, np.ndarray] = {}  # tensor index -> value in TFLite layout
        self._uid = 0

    # ---- tensors -------------------------------------------------------------------------
    def _tensor(self, index: int):
        return self.graph.Tensors(index)

    def _name(self, index: int) -> str:
        return self._tensor(index).Name().decode()

    def _shape(self, index: int) -> list[int]:
        return self._tensor(index).ShapeAsNumpy().tolist()

    def _buffer_value(self, index: int) -> np.ndarray | None:
        tensor = self._tensor(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = _NUMPY_TYPES[tensor.Type()]
        return np.frombuffer(data.tobytes(), dtype=dtype).reshape(self._shape(index))

    def _constant(self, index: int) -> np.ndarray | None:
        if index not in self.constants:
            value = self._buffer_value(index)
            if value is None:
                return None
            self.constants[index] = value
        return self.constants[index]

    def _fresh(self, stem: str) -> str:
        self._uid += 1
        return f"{stem}__{self._uid}"

    def _add_initializer(self, value: np.ndarray, stem: str) -> str:
        name = self._fresh(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def _operand(self, index: int) -> str:
        """An ONNX name for a TFLite tensor: constants become NCHW-broadcastable initializers."""
        value = self._constant(index)
        if value is None:
            return self._name(index)
        value = value.astype(np.float32) if value.dtype == np.float16 else value
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        elif value.ndim == 1 and value.dtype == np.float32:
            value = value.reshape(-1, 1, 1)  # NHWC broadcasts over the last axis: C in NCHW
        return self._add_initializer(np.ascontiguousarray(value), self._name(index))

    def _emit(self, op_type: str, inputs: list[str], output: str, fused: int = 0, **attrs) -> None:
        activation = _FUSED_ACTIVATIONS.get(fused, "unsupported")
        if activation == "unsupported":
            raise UnsupportedOperator(f"fused activation {fused}")
        if activation is None:
            self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
            return
        pre = self._fresh(output + "_pre")
        self.nodes.append(helper.make_node(op_type, inputs, [pre], **attrs))
        if activation == "Relu6":
            self.nodes.append(
                helper.make_node(
                    "Clip",
                    [
                        pre,
                        self._add_initializer(np.float32(0), "zero"),
                        self._add_initializer(np.float32(6), "six"),
                    ],
                    [output],
                )
            )
        else:
            self.nodes.append(helper.make_node(activation, [pre], [output]))

    # ---- operators -----------------------------------------------------------------------
    def _conv(self, op, depthwise: bool) -> None:
        inp, weight_index, bias_index = (op.Inputs(i) for i in range(3))
        options_cls = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
        options = options_cls()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        weight = self._constant(weight_index).astype(np.float32)
        bias = self._constant(bias_index).astype(np.float32)
        _, height, width, channels = self._shape(inp)
        if depthwise:
            # [1, kh, kw, C*M] -> [C*M, 1, kh, kw], one group per input channel
            weight = weight.transpose(3, 0, 1, 2)
            group = channels
        else:
            weight = weight.transpose(0, 3, 1, 2)  # [O, kh, kw, I] -> [O, I, kh, kw]
            group = 1
        kh, kw = weight.shape[2:]
        dh, dw = options.DilationHFactor() or 1, options.DilationWFactor() or 1
        sh, sw = options.StrideH(), options.StrideW()
        if options.Padding() == tflite.Padding.SAME:
            top, bottom = _same_pads(height, kh, sh, dh)
            left, right = _same_pads(width, kw, sw, dw)
        else:
            top = bottom = left = right = 0
        self._emit(
            "Conv",
            [
                self._name(inp),
                self._add_initializer(np.ascontiguousarray(weight), "w"),
                self._add_initializer(bias, "b"),
            ],
            self._name(op.Outputs(0)),
            options.FusedActivationFunction(),
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=[top, left, bottom, right],
            group=group,
        )

    def _pool(self, op) -> None:
        options = tflite.Pool2DOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        inp = op.Inputs(0)
        _, height, width, _ = self._shape(inp)
        kh, kw = options.FilterHeight(), options.FilterWidth()
        sh, sw = options.StrideH(), options.StrideW()
        if options.Padding() == tflite.Padding.SAME:
            top, bottom = _same_pads(height, kh, sh)
            left, right = _same_pads(width, kw, sw)
        else:
            top = bottom = left = right = 0
        self._emit(
            "AveragePool",
            [self._name(inp)],
            self._name(op.Outputs(0)),
            options.FusedActivationFunction(),
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            pads=[top, left, bottom, right],
            count_include_pad=0,
        )

    def _binary(self, op, op_type: str) -> None:
        options_cls = tflite.AddOptions if op_type == "Add" else tflite.MulOptions
        options = options_cls()
        table = op.BuiltinOptions()
        fused = 0
        if table is not None:
            options.Init(table.Bytes, table.Pos)
            fused = options.FusedActivationFunction()
        self._emit(
            op_type,
            [self._operand(op.Inputs(0)), self._operand(op.Inputs(1))],
            self._name(op.Outputs(0)),
            fused,
        )

    def _resize_bilinear(self, op) -> None:
        options = tflite.ResizeBilinearOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        out_h, out_w = self._constant(op.Inputs(1)).tolist()
        channels = self._shape(op.Inputs(0))[3]
        if options.AlignCorners():
            mode = "align_corners"
        elif options.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        sizes = self._add_initializer(np.array([1, channels, out_h, out_w], dtype=np.int64), "sizes")
        self.nodes.append(
            helper.make_node(
                "Resize",
                [self._name(op.Inputs(0)), "", "", sizes],
                [self._name(op.Outputs(0))],
                mode="linear",
                coordinate_transformation_mode=mode,
            )
        )

    def _mean(self, op) -> None:
        options = tflite.ReducerOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        nhwc_to_nchw = {0: 0, 1: 2, 2: 3, 3: 1}
        axes = [nhwc_to_nchw[int(a) % 4] for a in self._constant(op.Inputs(1)).reshape(-1)]
        # opset 17: ReduceMean takes its axes as an attribute
        self.nodes.append(
            helper.make_node(
                "ReduceMean",
                [self._name(op.Inputs(0))],
                [self._name(op.Outputs(0))],
                axes=sorted(axes),
                keepdims=int(options.KeepDims()),
            )
        )

    def _transpose_conv_bias(self, op) -> None:
        # MediaPipe's custom op: custom options are three int32 (padding, stride_w, stride_h).
        padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes()[:12], np.int32)
        weight = self._constant(op.Inputs(1)).astype(np.float32)  # [O, kh, kw, I]
        bias = self._constant(op.Inputs(2)).astype(np.float32).reshape(-1)
        kh, kw = weight.shape[1:3]
        _, _height, _width, _ = self._shape(op.Inputs(0))
        _, out_h, out_w, _ = self._shape(op.Outputs(0))
        attrs = {"kernel_shape": [kh, kw], "strides": [int(stride_h), int(stride_w)]}
        if padding == tflite.Padding.SAME:
            attrs["output_shape"] = [out_h, out_w]
        weight = np.ascontiguousarray(weight.transpose(3, 0, 1, 2))  # -> [I, O, kh, kw]
        self.nodes.append(
            helper.make_node(
                "ConvTranspose",
                [
                    self._name(op.Inputs(0)),
                    self._add_initializer(weight, "wt"),
                    self._add_initializer(bias, "bt"),
                ],
                [self._name(op.Outputs(0))],
                **attrs,
            )
        )

    def convert(self) -> bytes:
        unary = {"RELU": "Relu", "LOGISTIC": "Sigmoid", "HARD_SWISH": "HardSwish"}
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = _BUILTIN_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            if name == "CUSTOM":
                name = code.CustomCode().decode()
            if name == "DEQUANTIZE":
                value = self._constant(op.Inputs(0))
                self.constants[op.Outputs(0)] = value.astype(np.float32)
            elif name in unary:
                self.nodes.append(
                    helper.make_node(unary[name], [self._name(op.Inputs(0))], [self._name(op.Outputs(0))])
                )
            elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                self._conv(op, depthwise=name == "DEPTHWISE_CONV_2D")
            elif name == "AVERAGE_POOL_2D":
                self._pool(op)
            elif name in ("ADD", "MUL"):
                self._binary(op, name.title())
            elif name == "RESIZE_BILINEAR":
                self._resize_bilinear(op)
            elif name == "MEAN":
                self._mean(op)
            elif name == "Convolution2DTransposeBias":
                self._transpose_conv_bias(op)
            else:
                raise UnsupportedOperator(f"operator {name} (#{i}) is not supported")
        return self._finish()

    def _finish(self) -> bytes:
        (input_index,) = [self.graph.Inputs(i) for i in range(self.graph.InputsLength())]
        (output_index,) = [self.graph.Outputs(i) for i in range(self.graph.OutputsLength())]
        in_name, out_name = self._name(input_index), self._name(output_index)
        # The graph's interface stays NHWC like the TFLite original; transpose at both ends.
        for node in self.nodes:
            for k, x in enumerate(node.input):
                if x == in_name:
                    node.input[k] = in_name + "_nchw"
            for k, x in enumerate(node.output):
                if x == out_name:
                    node.output[k] = out_name + "_nchw"
        nodes = [
            helper.make_node("Transpose", [in_name], [in_name + "_nchw"], perm=[0, 3, 1, 2]),
            *self.nodes,
            helper.make_node("Transpose", [out_name + "_nchw"], [out_name], perm=[0, 2, 3, 1]),
        ]
        graph = helper.make_graph(
            nodes,
            "selfie_segmentation",
            [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, self._shape(input_index))],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, self._shape(output_index))],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="alphacut tflite_to_onnx"
        )
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()


def convert_tflite(buffer: bytes) -> bytes:
    """Return the serialized ONNX model equivalent to the TFLite model in ``buffer``."""
    return _Converter(buffer).convert()
