"""The models, loaded once per process from the models layer and kept warm.

Usage::

    store = ModelStore(Path("layers/models"))
    matte = store.isnet.predict(rgb)              # float32 H' x W' in 0..1 (1024 x 1024)
    person = store.selfie.predict(rgb)            # float32 256 x 256 in 0..1
    features = store.backbone.run(batch)          # EfficientNet-Lite0 maps (see models.backbone)
    scores = store.costume.run(feeds)             # float32 10 x 128 x 128 (see models.costume)
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import onnxruntime as ort

from alphacut.errors import ModelUnavailable
from alphacut.models.backbone import BackboneModel
from alphacut.models.costume_head import CostumeModel
from alphacut.models.isnet import IsnetModel, load_weights
from alphacut.models.selfie import SelfieModel
from alphacut.models.sessions import session_options

MANIFEST_NAME = "manifest.json"

__all__ = ["BackboneModel", "CostumeModel", "IsnetModel", "ModelStore", "SelfieModel", "load_manifest"]


def load_manifest(models_dir: Path) -> dict[str, Any]:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        raise ModelUnavailable(f"no model manifest at {path}: run `make models` (or deploy the models layer)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


class ModelStore:
    """Loads each model on first use (thread-safe) and keeps it for the life of the process."""

    def __init__(self, models_dir: Path, threads: int = 0, memory_arena: bool = True):
        self.models_dir = Path(models_dir)
        self.threads, self.memory_arena = threads, memory_arena
        self._lock = threading.Lock()

    def _options(self, threads: int | None = None) -> ort.SessionOptions:
        """Session options for one model (``threads``: its own count, else the store's)."""
        return session_options(self.threads if threads is None else threads, self.memory_arena)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return load_manifest(self.models_dir)

    def _entry(self, name: str) -> dict[str, Any]:
        try:
            entry: dict[str, Any] = self.manifest["models"][name]
            return entry
        except KeyError:
            raise ModelUnavailable(f"model {name!r} is not in {self.models_dir / MANIFEST_NAME}") from None

    @cached_property
    def _isnet_weights(self) -> tuple[list[str], list[ort.OrtValue]]:
        self._entry("isnet")
        return load_weights(self.models_dir / "isnet")

    @cached_property
    def isnet(self) -> IsnetModel:
        with self._lock:
            return IsnetModel.load(
                self.models_dir / "isnet",
                self._options(),
                weights=self._isnet_weights,
            )

    @cached_property
    def isnet_preview(self) -> IsnetModel:
        """ISNet at 768² for size=preview results (the same weights, in memory once)."""
        with self._lock:
            return IsnetModel.load(
                self.models_dir / "isnet",
                self._options(),
                preview=True,
                weights=self._isnet_weights,
            )

    @cached_property
    def isnet_features(self) -> IsnetModel:
        """ISNet with the decoder feature maps as outputs too (for heads trained on them)."""
        with self._lock:
            return IsnetModel.load(
                self.models_dir / "isnet",
                self._options(),
                features=True,
                weights=self._isnet_weights,
            )

    @cached_property
    def selfie(self) -> SelfieModel:
        with self._lock:
            self._entry("selfie")
            # a 256x256 MobileNet: one thread is faster than two (thread hand-off dominates)
            return SelfieModel.load(self.models_dir / "selfie", self._options(threads=1))

    @cached_property
    def backbone(self) -> BackboneModel:
        """EfficientNet-Lite0 (ImageNet) feature maps, the costume head's second input."""
        with self._lock:
            self._entry("backbone")
            return BackboneModel.load(self.models_dir / "backbone", self._options())

    @cached_property
    def costume(self) -> CostumeModel:
        """The clothing head (committed with the code, not in the models layer)."""
        with self._lock:
            return CostumeModel.load(self._options())
