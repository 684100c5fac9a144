"""Bring your own matting model: an operator's ONNX file (BiRefNet, BEN2, ...) checked, then
written into the models layer with its registry entry (``alphacut models add``).

The check loads the file, runs it on a photo as its entry says, and reads the output: the matte
output exists, is a map (its last two dimensions), finite, and in 0..1 where the entry says
probabilities. A model that fits the models layer's room in Lambda's 250 MB goes into the layer
(it runs everywhere); a larger one, or one the operator keeps for the GPU, goes into the GPU
endpoint's model data (``runs_on`` gpu: a sync call naming it is a 400 that says so, a task runs
it on the endpoint), packed as the ``model.tar.gz`` the SageMaker model reads from S3 (the
template's ``GpuModelDataUrl``). The registry (the layer's manifest) lists both.

Usage::

    imagenet = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # mean, std
    spec = MattingSpec("birefnet-lite", "birefnet-lite.onnx", 1024, 1024, *imagenet, values="logits")
    report = check_model_file(Path("BiRefNet_lite.onnx"), spec, photo_rgb)
    fits_lambda(Path("layers/models"), Path("BiRefNet_lite.onnx"), spec.name)   # False: 224 MB
    entry = add_model(Path("layers/models"), Path("BiRefNet_lite.onnx"), gpu_only(spec),
                      model_data_dir=Path("sagemaker/model-data"))
    pack_model_data(Path("sagemaker/model-data"), Path("build/model.tar.gz"))
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
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

GPU_ONLY = ("gpu",)
MODEL_DATA = "model data"  # an entry's ``place`` when its files are the GPU endpoint's model data

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


def fits_lambda(models_dir: Path, source: Path, name: str) -> bool:
    """Whether the models layer with ``source`` as model ``name`` stays within its room."""
    return _layer_after(models_dir, source, name) <= MODELS_LAYER_ROOM


def gpu_only(spec: MattingSpec) -> MattingSpec:
    return replace(spec, runs_on=GPU_ONLY)


def _layer_after(models_dir: Path, source: Path, name: str) -> int:
    folder = models_dir / name
    kept = layer_bytes(folder) if folder.exists() else 0
    return layer_bytes(models_dir) - kept + source.stat().st_size


def add_model(
    models_dir: Path,
    source: Path,
    spec: MattingSpec,
    again: bool = False,
    model_data_dir: Path | None = None,
) -> dict[str, Any]:
    """Copy ``source`` into ``models_dir/<name>/`` (a GPU-only spec: ``model_data_dir/<name>/``)
    and write its manifest entry (sha256, the registry's ``matting`` block, ``added``: kept when
    ``make models`` rebuilds the rest) into the layer's manifest, and the model data's for a
    GPU-only one."""
    manifest = load_manifest(models_dir)
    if spec.name in manifest["models"] and not (again and manifest["models"][spec.name].get("added")):
        raise InvalidOption(
            f"a model {spec.name!r} is there already (--replace replaces one added before)", field="name"
        )
    on_lambda = spec.runs_at("lambda")
    after = _layer_after(models_dir, source, spec.name) if on_lambda else 0  # the layer walked once
    if after > MODELS_LAYER_ROOM:
        raise InvalidOption(
            f"{source.name} makes the models layer {after / 2**20:.0f} MB, more than the "
            f"{MODELS_LAYER_ROOM / 2**20:.0f} MB Lambda leaves it: add it for the GPU endpoint only",
            field="file",
            limit=MODELS_LAYER_ROOM,
        )
    if not on_lambda and model_data_dir is None:
        raise InvalidOption("a GPU-only model needs the model data folder", field="model_data")
    for place in (models_dir, model_data_dir):  # a model replaced may change its place
        if place is not None:
            shutil.rmtree(place / spec.name, ignore_errors=True)
    home = models_dir if on_lambda or model_data_dir is None else model_data_dir
    folder = home / spec.name
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
    if not on_lambda:
        entry["place"] = MODEL_DATA
    manifest["models"][spec.name] = entry
    _write_manifest(models_dir, manifest)
    if model_data_dir is not None:
        _write_model_data_entry(model_data_dir, spec.name, entry if not on_lambda else None)
    return entry


def pack_model_data(model_data_dir: Path, target: Path) -> Path:
    """The GPU endpoint's model data as SageMaker reads it: a gzipped tar of the folder (its
    manifest and one folder per model), unpacked at /opt/ml/model on every instance."""
    if not (model_data_dir / MANIFEST_NAME).exists():
        raise InvalidOption(f"no GPU-only models in {model_data_dir}: nothing to pack", field="model_data")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz", dereference=True) as archive:
        for path in sorted(model_data_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return target


def record_figures(
    models_dir: Path, name: str, figures: dict[str, Any], model_data_dir: Path | None = None
) -> None:
    """An added model's measured figures into its manifest entry (``models list`` shows them)."""
    manifest = load_manifest(models_dir)
    manifest["models"][name]["figures"] = figures
    _write_manifest(models_dir, manifest)
    if manifest["models"][name].get("place") == MODEL_DATA and model_data_dir is not None:
        _write_model_data_entry(model_data_dir, name, manifest["models"][name])


def _write_manifest(models_dir: Path, manifest: dict[str, Any]) -> None:
    (models_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def _write_model_data_entry(model_data_dir: Path, name: str, entry: dict[str, Any] | None) -> None:
    """The model data's manifest: its models' entries (None: ``name`` is not one of them)."""
    path = model_data_dir / MANIFEST_NAME
    manifest = json.loads(path.read_text()) if path.exists() else {"models": {}}
    manifest["models"].pop(name, None)
    if entry is not None:
        manifest["models"][name] = entry
    if manifest["models"] or path.exists():
        model_data_dir.mkdir(parents=True, exist_ok=True)
        _write_manifest(model_data_dir, manifest)
