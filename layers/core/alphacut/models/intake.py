"""Bring your own matting model: an operator's ONNX file (BiRefNet, BEN2, ...) checked, then
written into the models layer with its registry entry (``alphacut models add``).

The check loads the file, runs it on a photo as its entry says, and reads the output: the matte
output exists, is a map (its last two dimensions), finite, and in 0..1 where the entry says
probabilities. A model is added only where it fits the models layer's room in Lambda's 250 MB.

Usage::

    imagenet = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # mean, std
    spec = MattingSpec("birefnet-lite", "birefnet-lite.onnx", 1024, 1024, *imagenet, values="logits")
    report = check_model_file(Path("BiRefNet_lite.onnx"), spec, photo_rgb)
    entry = add_model(Path("layers/models"), Path("BiRefNet_lite.onnx"), spec)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from alphacut.errors import InvalidOption
from alphacut.models import MANIFEST_NAME, load_manifest
from alphacut.models.engines import ONNXRUNTIME
from alphacut.models.registry import MattingSpec, OnnxMattingModel

# what onnxruntime raises for a graph it cannot load or run (its own classes, not RuntimeError's)
ONNX_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidGraph,
    ort_state.InvalidArgument,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
    ValueError,
)
# what the models layer may hold: Lambda's 250 MB unzipped for a function's code and layers, less
# the core layer and the largest function's code (tests/deploy/test_template.py measures them)
MODELS_LAYER_ROOM = 143 * 1024 * 1024  # 250 MiB less 107 MiB: the core layer (106.1) and a function


@dataclass(frozen=True)
class ModelCheck:
    """What running the file on a photo gave: the matte's shape and range, and the seconds."""

    outputs: int
    matte_shape: tuple[int, ...]
    low: float
    high: float
    seconds: float


def check_model_file(path: Path, spec: MattingSpec, photo: np.ndarray) -> ModelCheck:
    """Load ``path`` and run it on ``photo`` as ``spec`` says; a 400 naming what is wrong."""
    try:
        model = OnnxMattingModel.load(path.parent, replace(spec, file=path.name), ONNXRUNTIME)
    except ONNX_ERRORS as error:  # an unreadable or invalid graph
        raise InvalidOption(f"{path.name} does not load as an ONNX model: {error}", field="file") from None
    batch = model.preprocess(photo)
    started = time.perf_counter()
    try:
        outputs = model.session.run(None, {model.session.input_names[0]: batch})
    except ONNX_ERRORS as error:
        raise InvalidOption(
            f"{path.name} does not run on a 1x3x{spec.height}x{spec.width} input: {error}", field="size"
        ) from None
    seconds = time.perf_counter() - started
    if spec.output >= len(outputs):
        raise InvalidOption(
            f"{path.name} has {len(outputs)} outputs; there is no output {spec.output}", field="output"
        )
    raw = np.asarray(outputs[spec.output])
    if (
        raw.ndim < 2
        or raw.shape[-1] < 8
        or raw.shape[-2] < 8
        or raw.size // (raw.shape[-1] * raw.shape[-2]) != 1
    ):
        raise InvalidOption(
            f"output {spec.output} is {list(raw.shape)}, not one matte (1 x 1 x H x W)", field="output"
        )
    if not np.isfinite(raw).all():
        raise InvalidOption(f"output {spec.output} has values that are not finite", field="output")
    low, high = float(raw.min()), float(raw.max())
    if spec.values == "probabilities" and (low < -1e-3 or high > 1 + 1e-3):
        raise InvalidOption(
            f"output {spec.output} runs from {low:.3g} to {high:.3g}: not probabilities (--values logits?)",
            field="values",
        )
    return ModelCheck(len(outputs), tuple(raw.shape), low, high, seconds)


def layer_bytes(models_dir: Path) -> int:
    return sum(p.stat().st_size for p in models_dir.rglob("*") if p.is_file())


def add_model(models_dir: Path, source: Path, spec: MattingSpec, again: bool = False) -> dict[str, Any]:
    """Copy ``source`` into ``models_dir/<name>/`` and write its manifest entry (sha256, the
    registry's ``matting`` block, ``added``: kept when ``make models`` rebuilds the rest)."""
    manifest = load_manifest(models_dir)
    if spec.name in manifest["models"] and not (again and manifest["models"][spec.name].get("added")):
        raise InvalidOption(
            f"a model {spec.name!r} is there already (--replace replaces one added before)", field="name"
        )
    folder = models_dir / spec.name
    kept = layer_bytes(folder) if folder.exists() else 0
    after = layer_bytes(models_dir) - kept + source.stat().st_size
    if after > MODELS_LAYER_ROOM:
        raise InvalidOption(
            f"{source.name} makes the models layer {after / 2**20:.0f} MB, more than the "
            f"{MODELS_LAYER_ROOM / 2**20:.0f} MB Lambda leaves it (a GPU-endpoint-only place is to come)",
            field="file",
            limit=MODELS_LAYER_ROOM,
        )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = folder / spec.file
    shutil.copyfile(source, target)
    entry = {
        "source": f"added by the operator from {source.name}",
        "licence": spec.licence,
        "added": True,
        "files": {spec.file: hashlib.sha256(target.read_bytes()).hexdigest()},
        "matting": spec.block(),
        "figures": {},
    }
    manifest["models"][spec.name] = entry
    _write_manifest(models_dir, manifest)
    return entry


def record_figures(models_dir: Path, name: str, figures: dict[str, Any]) -> None:
    """An added model's measured figures into its manifest entry (``models list`` shows them)."""
    manifest = load_manifest(models_dir)
    manifest["models"][name]["figures"] = figures
    _write_manifest(models_dir, manifest)


def _write_manifest(models_dir: Path, manifest: dict[str, Any]) -> None:
    (models_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
