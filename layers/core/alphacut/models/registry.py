"""The matting models the pipeline can run, each described once in the models layer's manifest
(its ``matting`` block): the file, the input size, colour order and normalisation, which output
is the matte and what its values are, the licence and where it may run. ISNet is one entry; the
pipeline asks for a model by name (the ``model`` option) and reads everything else from here.

Usage::

    specs = matting_specs(load_manifest(Path("layers/models")))
    spec = specs["u2netp"]
    batch = spec.preprocess(rgb)                 # 1 x 3 x H x W float32, as the model was trained
    matte = spec.matte(session.run(None, {spec.input: batch}))   # H x W float32 in 0..1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from alphacut.errors import InvalidOption
from alphacut.models.engines import Engine, Session
from alphacut.models.inputs import in_runs
from alphacut.options import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "MattingModel", "MattingSpec", "OnnxMattingModel", "check_model", "matting_specs"]

# where a model may run: the sync routes' Lambda functions (the models layer) and the tasks'
# Segment step or GPU endpoint
PLACES = ("lambda", "gpu")
RESIZES = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class MattingSpec:
    """One matting model as its own documentation describes it. ``mean``/``std`` are on pixel
    values in 0..1, per red, green, blue (ImageNet's are 0.485/0.229 ...), whatever ``colour``
    order the model takes; ``values``: the matte output holds
    ``probabilities`` (0..1) or ``logits`` (a sigmoid makes them probabilities); ``rescale``:
    ``clip`` to 0..1, or ``minmax`` (the model's lowest value 0, its highest 1, as rembg does for
    the U2-Net family)."""

    name: str
    file: str
    width: int
    height: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    colour: str = "RGB"
    resize: str = "bilinear"
    input: str = "input"
    output: int = 0
    values: str = "probabilities"
    rescale: str = "clip"
    licence: str = ""
    source: str = ""
    runs_on: tuple[str, ...] = PLACES
    figures: dict[str, Any] = field(default_factory=dict, compare=False)

    def runs_at(self, place: str | None) -> bool:
        """Whether it may run at ``place`` (lambda | gpu; None: this machine, the CLI's: anywhere)."""
        return place is None or place in self.runs_on

    @property
    def side(self) -> int:
        """The longer side of the model's input: how large a view of the photo it can use."""
        return max(self.width, self.height)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 -> 1 x 3 x height x width float32 (stretched, normalised, channel-first)."""
        image = Image.fromarray(rgb)
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), RESIZES[self.resize], reducing_gap=3.0)
        pixels: np.ndarray = np.asarray(image, dtype=np.float32) * np.float32(1.0 / 255.0)
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.colour == "BGR":  # mean and std are given per red, green, blue whatever the order
            pixels = pixels[..., ::-1]
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)[None]

    def matte(self, outputs: list[np.ndarray], index: int = 0) -> np.ndarray:
        """The ``index``-th picture's matte (H x W float32 in 0..1) from a run's outputs."""
        values = np.asarray(outputs[self.output][index], dtype=np.float32)
        values = values.reshape(values.shape[-2:])
        if self.values == "logits":
            values = 1.0 / (1.0 + np.exp(-values))
        if self.rescale == "minmax":
            low, high = float(values.min()), float(values.max())
            return (values - low) / (high - low) if high > low else np.zeros_like(values)
        return np.clip(values, 0.0, 1.0)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "input": f"{self.width}x{self.height}",
            "runs_on": ", ".join(self.runs_on),
            "licence": self.licence,
            **{k: v for k, v in self.figures.items()},
        }

    def block(self) -> dict[str, Any]:
        """Its manifest entry's ``matting`` block (``from_entry`` reads it back)."""
        return {
            "file": self.file,
            "size": [self.width, self.height],
            "colour": self.colour,
            "resize": self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
            "output": self.output,
            "values": self.values,
            "rescale": self.rescale,
            "runs_on": list(self.runs_on),
        }

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> MattingSpec:
        block = dict(entry["matting"])
        width, height = block.pop("size")
        return cls(
            name=name,
            width=int(width),
            height=int(height),
            mean=tuple(block.pop("mean")),
            std=tuple(block.pop("std")),
            runs_on=tuple(block.pop("runs_on", PLACES)),
            licence=entry.get("licence", ""),
            source=entry.get("source", ""),
            figures=entry.get("figures", {}),
            **block,
        )


def matting_specs(manifest: dict[str, Any]) -> dict[str, MattingSpec]:
    """Every model of the manifest that makes a matte, by name."""
    return {
        name: MattingSpec.from_entry(name, entry)
        for name, entry in manifest.get("models", {}).items()
        if "matting" in entry
    }


def check_model(
    name: str, specs: dict[str, MattingSpec], place: str | None, field_name: str = "model"
) -> MattingSpec:
    """The model a request names, where it runs (``place``: lambda | gpu; None: this machine, the
    CLI's, which runs any model it has); a 400 naming the model and the models there are, or
    where it runs, otherwise."""
    spec = specs.get(name)
    if spec is None:
        raise InvalidOption(f"no model {name!r}; models are {', '.join(sorted(specs))}", field=field_name)
    if not spec.runs_at(place):
        hint = ": submit it as a task (POST /v1/tasks)" if place == "lambda" and "gpu" in spec.runs_on else ""
        raise InvalidOption(
            f"{name} runs on {' and '.join(spec.runs_on)} only, not on {place}{hint}", field=field_name
        )
    return spec


class OnnxMattingModel:
    """A matting model other than ISNet, run as its registry entry says (ISNet keeps its own
    loader: shared fp16 weights, an int8 graph, OpenVINO twins: ``alphacut.models.isnet``)."""

    def __init__(self, spec: MattingSpec, session: Session):
        self.spec, self.session = spec, session

    @classmethod
    def load(cls, directory: Path, spec: MattingSpec, engine: Engine, threads: int = 0) -> OnnxMattingModel:
        # exact: an operator's model has not been measured in bf16
        return cls(spec, engine.open(directory / spec.file, threads, exact=True))

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        return self.spec.preprocess(rgb)

    def run_many(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """The mattes of several inputs: in runs of the session's batch size where it takes
        batches (``alphacut.models.inputs.in_runs``), else one run each."""
        name = self.session.input_names[0]
        if not self.session.batches:
            return [self.spec.matte(self.session.run(None, {name: batch})) for batch in batches]
        size = self.session.batch_size
        mattes: list[np.ndarray] = []
        for start, run in zip(range(0, len(batches), size), in_runs(batches, size)):
            outputs = self.session.run(None, {name: run})
            mattes.extend(self.spec.matte(outputs, index) for index in range(min(size, len(batches) - start)))
        return mattes


class MattingModel(Protocol):
    """What the pipeline needs of a matting model (``IsnetModel`` and ``OnnxMattingModel``)."""

    def preprocess(self, rgb: np.ndarray) -> np.ndarray: ...

    def run_many(self, batches: list[np.ndarray]) -> list[np.ndarray]: ...
