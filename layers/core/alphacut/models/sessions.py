"""onnxruntime session set-up shared by the models: threads, providers, graph optimisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from alphacut.errors import ModelUnavailable


def session_options(threads: int = 0, memory_arena: bool = True) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads  # 0: one per core
    options.inter_op_num_threads = 1
    # EngineSettings.memory_arena (ALPHACUT_MEMORY_ARENA) says why it is on by default
    options.enable_cpu_mem_arena = memory_arena
    return options


def providers() -> list[str]:
    """CUDA first where this onnxruntime build has it (the SageMaker GPU image), else the CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def stretched_batch(rgb: np.ndarray, side: int, offset: float, scale: float) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x side x side float32: the picture stretched to the model's square
    (bilinear, aspect not kept), then ``(x - offset) * scale``, channel-first."""
    image = Image.fromarray(rgb)
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
    chw = np.asarray(image).transpose(2, 0, 1).astype(np.float32)
    chw -= offset
    chw *= scale
    return chw[None]


def open_session(path: Path, options: ort.SessionOptions, missing: str) -> ort.InferenceSession:
    """An inference session on the ONNX file at ``path``; ``missing`` completes the error when it
    is not there (what it is and how to make it)."""
    if not path.exists():
        raise ModelUnavailable(f"{missing} (no {path})")
    return ort.InferenceSession(str(path), options, providers=providers())
