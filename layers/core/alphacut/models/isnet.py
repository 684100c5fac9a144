"""ISNet (DIS) general segmentation: the matte for cutout, and decoder features for the costume head.

Preprocessing as measured on the npm package's own pipeline: RGB, bilinear stretch to 1024x1024,
``(x - 128) / 256``, NCHW.
The output ``output`` is already a sigmoid: clipped to 0..1, not min-max normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alphacut.errors import ModelUnavailable
from alphacut.models.engines import ONNXRUNTIME, Engine, Session, Weights
from alphacut.models.inputs import RunBuffer, stretched_batch

INPUT_SIZE = 1024
INT8_GRAPH = "graph_int8.onnx"  # graph.onnx in static int8, its weights inside (onnxruntime int8)
MATTE_OUTPUT = "output"
FEATURE_OUTPUTS = ("input.948", "input.832", "input.740", "input.656")  # 128, 64, 32, 16 px across


@dataclass
class IsnetOutput:
    matte: np.ndarray  # 1024 x 1024 float32 in 0..1
    features: dict[str, np.ndarray] | None  # decoder feature maps, when asked for


def preprocess(rgb: np.ndarray, side: int = INPUT_SIZE) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x side x side float32, ``(x - 128) / 256``."""
    return stretched_batch(rgb, side, 128.0, 1.0 / 256.0)


def load_weights(directory: Path) -> Weights:
    """The fp16 weights, once per process: every ISNet graph shares them."""
    weights_path = directory / "weights.npz"
    if not weights_path.exists():
        raise ModelUnavailable(f"ISNet files missing in {directory}: run `make models`")
    with np.load(weights_path) as weights:
        names = list(weights.files)
        return Weights(names, [weights[name] for name in names])


def graph_name(engine: Engine, features: bool = False) -> str:
    """The ISNet graph file ``engine`` runs for the matte (or with the decoder maps too)."""
    if features:
        return "graph_features.onnx"
    return INT8_GRAPH if engine.precision == "int8" else "graph.onnx"


class IsnetModel:
    """``features=False`` loads the matte-only graph (cutout, selfie); ``True`` the one that also
    returns the decoder feature maps (costume). On an int8 engine the matte-only graph is the
    int8 one; the one with the decoder maps stays fp32."""

    def __init__(self, session: Session, features: bool):
        self.session = session
        self.has_features = features
        self._runs = RunBuffer()

    @classmethod
    def load(
        cls,
        directory: Path,
        engine: Engine = ONNXRUNTIME,
        threads: int = 0,
        features: bool = False,
        weights: Weights | None = None,
    ) -> IsnetModel:
        graph = directory / graph_name(engine, features)
        if not graph.exists():
            raise ModelUnavailable(f"ISNet graph {graph.name} missing in {directory}: run `make models`")
        own_weights = graph.name == INT8_GRAPH  # the int8 graph holds its weights
        session = engine.open(graph, threads, None if own_weights else weights or load_weights(directory))
        return cls(session, features)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        return preprocess(rgb)

    def run(self, batch: np.ndarray, with_features: bool = False) -> IsnetOutput:
        if with_features and not self.has_features:
            raise ValueError("this ISNet session was loaded without the feature outputs")
        names = [MATTE_OUTPUT, *FEATURE_OUTPUTS] if with_features else [MATTE_OUTPUT]
        results = self.session.run(names, {"input": batch})
        matte = np.clip(results[0][0, 0], 0.0, 1.0)
        features = dict(zip(FEATURE_OUTPUTS, results[1:])) if with_features else None
        return IsnetOutput(matte=matte, features=features)

    def run_many(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """The mattes of several 1 x 3 x 1024 x 1024 inputs: in runs of the session's batch size
        where it takes batches (the shape of ``alphacut.models.inputs.in_runs``, filled into one
        ``RunBuffer``: one caller at a time), else one run each."""
        if not self.session.batches:
            return [self.run(batch).matte for batch in batches]
        size, mattes = self.session.batch_size, list[np.ndarray]()
        with self._runs.lock:
            for start in range(0, len(batches), size):
                chunk = batches[start : start + size]
                (out,) = self.session.run([MATTE_OUTPUT], {"input": self._runs.fill(chunk, size)})
                used = out[: len(chunk)]  # the run's own array: its pictures clipped in place, no copies
                np.clip(used, 0.0, 1.0, out=used)
                mattes.extend(out[index, 0] for index in range(len(chunk)))
        return mattes

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The 1024² matte for an RGB image of any size."""
        return self.run(preprocess(rgb)).matte
