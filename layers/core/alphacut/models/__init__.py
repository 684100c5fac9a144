"""The models, loaded once per process from the models layer and kept warm.

Usage::

    store = ModelStore(Path("layers/models"))
    matte = store.isnet.predict(rgb)              # float32 H' x W' in 0..1 (1024 x 1024)
    model = store.matting("u2netp")               # any model of the registry (models.registry)
    mattes = model.run_many([model.preprocess(rgb)])
    ModelStore(Path("layers/models"), model_data_dir=Path("/opt/ml/model"))   # + the GPU endpoint's own
    person = store.selfie.predict(rgb)            # float32 256 x 256 in 0..1
    features = store.backbone.run(batch)          # EfficientNet-Lite0 maps (see models.backbone)
    scores = store.costume.run(feeds)             # float32 10 x 128 x 128 (see models.costume)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from alphacut.errors import ModelUnavailable
from alphacut.models.backbone import BackboneModel
from alphacut.models.costume_head import CostumeModel
from alphacut.models.engines import Engine, Weights, choose_engine, log_choice
from alphacut.models.isnet import INT8_GRAPH, IsnetModel, graph_name, load_weights
from alphacut.models.recent import RecentOutputs
from alphacut.models.registry import DEFAULT_MODEL, MattingModel, MattingSpec, OnnxMattingModel, matting_specs
from alphacut.models.selfie import SelfieModel
from alphacut.settings import EngineSettings

MANIFEST_NAME = "manifest.json"

__all__ = ["BackboneModel", "CostumeModel", "IsnetModel", "ModelStore", "SelfieModel", "load_manifest"]


def load_manifest(models_dir: Path) -> dict[str, Any]:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        raise ModelUnavailable(f"no model manifest at {path}: run `make models` (or deploy the models layer)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def verify_file(folder: Path, name: str, hashes: dict[str, str]) -> Path:
    """An operator's model file, before it is loaded: inside its model's folder (a manifest naming
    ``../other/x.onnx`` or an absolute path loads nothing) and the bytes whose sha256 the manifest
    recorded when it was added (a file changed or swapped since is not run). Read once a process."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ModelUnavailable(f"model file {name!r} is outside its folder {folder}")
    expected = hashes.get(name)
    if not expected:
        raise ModelUnavailable(f"model file {name!r} has no sha256 in the manifest: add it again")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ModelUnavailable(
            f"model file {path} is not the file the manifest recorded (sha256 {digest.hexdigest()[:12]}..., "
            f"recorded {expected[:12]}...): it changed since it was added"
        )
    return path


def with_model_data(manifest: dict[str, Any], model_data_dir: Path | None) -> dict[str, Any]:
    """The models layer's manifest and the entries of the GPU endpoint's model data (models too
    large for Lambda, ``alphacut.models.intake``), where this process has them."""
    path = model_data_dir / MANIFEST_NAME if model_data_dir is not None else None
    if path is None or not path.exists():
        return manifest
    extra = json.loads(path.read_text()).get("models", {})
    return {**manifest, "models": {**manifest.get("models", {}), **extra}}


class ModelStore:
    """Loads each model on first use (thread-safe) and keeps it for the life of the process.
    ``engine``: what runs them (``alphacut.models.engines``; left out, chosen for this machine)."""

    def __init__(
        self,
        models_dir: Path,
        threads: int = 0,
        memory_arena: bool = True,
        engine: Engine | None = None,
        model_data_dir: Path | None = None,
        recent_outputs_mb: int = 0,
    ):
        self.models_dir = Path(models_dir)
        self.model_data_dir = Path(model_data_dir) if model_data_dir is not None else None
        self.threads = threads
        engine = engine or choose_engine(EngineSettings.from_env().engine, memory_arena=memory_arena)
        if recent_outputs_mb > 0:  # its sessions remember their last outputs (alphacut.models.recent)
            engine = dataclasses.replace(engine, recent=RecentOutputs(recent_outputs_mb << 20))
        self.engine = engine
        log_choice(self.engine)
        self._lock = threading.Lock()
        self._matting: dict[str, MattingModel] = {}

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> ModelStore:
        engine = choose_engine(settings.engine, memory_arena=settings.memory_arena)
        # a batching engine's runs hold what one batch of the model server holds
        engine = dataclasses.replace(engine, batch_size=settings.max_batch)
        return cls(
            settings.models_dir,
            settings.threads,
            engine=engine,
            model_data_dir=settings.model_data_dir,
            recent_outputs_mb=settings.recent_outputs_mb,
        )

    def unload(self) -> None:
        """Drop every model loaded so far (its sessions and weights go with the last reference):
        a process done with these models, such as a test module, gives their memory back. A model
        asked for again is loaded again."""
        with self._lock:
            for name, member in vars(ModelStore).items():  # every model and what it read
                if isinstance(member, cached_property):
                    self.__dict__.pop(name, None)
            self._matting.clear()

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return with_model_data(load_manifest(self.models_dir), self.model_data_dir)

    def _folder(self, name: str) -> Path:
        """Where a model's files are: the models layer, else the GPU endpoint's model data."""
        folder = self.models_dir / name
        if not folder.exists() and self.model_data_dir is not None and (self.model_data_dir / name).exists():
            return self.model_data_dir / name
        return folder

    def _entry(self, name: str) -> dict[str, Any]:
        try:
            entry: dict[str, Any] = self.manifest["models"][name]
            return entry
        except KeyError:
            raise ModelUnavailable(f"model {name!r} is not in {self.models_dir / MANIFEST_NAME}") from None

    @cached_property
    def _isnet_weights(self) -> Weights:
        self._entry("isnet")
        return load_weights(self.models_dir / "isnet")

    def _isnet(self, features: bool = False) -> IsnetModel:
        own_weights = graph_name(self.engine, features) == INT8_GRAPH
        weights = None if own_weights else self._isnet_weights
        with self._lock:
            return IsnetModel.load(
                self.models_dir / "isnet",
                self.engine,
                self.threads,
                features=features,
                weights=weights,
            )

    @cached_property
    def isnet(self) -> IsnetModel:
        return self._isnet()

    @cached_property
    def specs(self) -> dict[str, MattingSpec]:
        """The matting models of the manifest (the registry), by name."""
        return matting_specs(self.manifest)

    def matting(self, name: str = DEFAULT_MODEL) -> MattingModel:
        """The named matting model, loaded once (ISNet through its own loader)."""
        if name == DEFAULT_MODEL:
            return self.isnet
        with self._lock:
            if name not in self._matting:
                spec = self.specs.get(name)
                if spec is None:
                    raise ModelUnavailable(f"model {name!r} is not in {self.models_dir / MANIFEST_NAME}")
                folder = self._folder(name)
                verify_file(folder, spec.file, self._entry(name).get("files", {}))
                self._matting[name] = OnnxMattingModel.load(folder, spec, self.engine, self.threads)
            return self._matting[name]

    @cached_property
    def isnet_features(self) -> IsnetModel:
        """ISNet with the decoder feature maps as outputs too (for heads trained on them)."""
        return self._isnet(features=True)

    @cached_property
    def selfie(self) -> SelfieModel:
        with self._lock:
            self._entry("selfie")
            # a 256x256 MobileNet: one thread is faster than two (thread hand-off dominates)
            return SelfieModel.load(self.models_dir / "selfie", self.engine, threads=1)

    @cached_property
    def backbone(self) -> BackboneModel:
        """EfficientNet-Lite0 (ImageNet) feature maps, the costume head's second input."""
        with self._lock:
            self._entry("backbone")
            return BackboneModel.load(self.models_dir / "backbone", self.engine, self.threads)

    @cached_property
    def costume(self) -> CostumeModel:
        """The clothing head (committed with the code, not in the models layer)."""
        with self._lock:
            return CostumeModel.load(engine=self.engine, threads=self.threads)
