"""Engine settings: read once from the environment into a typed, frozen object.

Usage::

    settings = EngineSettings.from_env()       # ALPHACUT_MAX_BYTES=... etc.
    settings.limits.max_side                  # 4096
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ImageLimits:
    """What an input image may be. Defaults follow the vendor APIs: 15 MB and 4096x4096 (PicWish-style tasks);
    50 px is the smallest side any seed accepts (seeds 001 and 004)."""

    max_bytes: int = 15 * 1024 * 1024
    max_side: int = 4096
    max_pixels: int = 4096 * 4096
    min_side: int = 50
    formats: frozenset[str] | None = None  # None: every readable format (vendor routes narrow it)

    def __post_init__(self):
        for name in ("max_bytes", "max_side", "max_pixels", "min_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")


def default_models_dir() -> Path:
    """The Lambda models layer is unpacked at /opt; a checkout keeps the build in layers/models."""
    if (Path("/opt") / "manifest.json").exists():
        return Path("/opt")
    return _PACKAGE_DIR.parents[1] / "models"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, not {raw!r}") from None


@dataclass(frozen=True)
class EngineSettings:
    models_dir: Path = field(default_factory=default_models_dir)
    limits: ImageLimits = field(default_factory=ImageLimits)
    threads: int = 0  # 0: onnxruntime picks (one per core)

    @classmethod
    def from_env(cls) -> EngineSettings:
        defaults = ImageLimits()
        models_dir = os.environ.get("ALPHACUT_MODELS_DIR")
        return cls(
            models_dir=Path(models_dir) if models_dir else default_models_dir(),
            limits=ImageLimits(
                max_bytes=_env_int("ALPHACUT_MAX_BYTES", defaults.max_bytes),
                max_side=_env_int("ALPHACUT_MAX_SIDE", defaults.max_side),
                max_pixels=_env_int("ALPHACUT_MAX_PIXELS", defaults.max_pixels),
                min_side=_env_int("ALPHACUT_MIN_SIDE", defaults.min_side),
            ),
            threads=_env_int("ALPHACUT_THREADS", 0),
        )
