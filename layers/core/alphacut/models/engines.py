"""The engine every model runs on, chosen once per process from what the machine has.

- ``onnxruntime``: onnxruntime's fp32 CPU kernels. The default, and Lambda's (its x86 fleet
  promises AVX2 only, and OpenVINO does not fit the layers' 250 MB).
- ``onnxruntime-int8``: the same, with ISNet's 1024² matte in static int8 (``graph_int8.onnx``):
  0.4x the fp32 time, so two runs cost less than one fp32 run and ``quality=auto`` is ``best`` for
  objects (the photo and its mirror: better than fp32 ``fast`` on both eval halves, in 0.84x its
  time); alone, one general eval photo of 15 is lost (docs/benchmarks.md, "The Lambda engine's
  levers"). The template's ``ModelEngine`` (default) for the cutout and Segment functions; the
  decoder maps and the other models stay fp32.
- ``openvino``: OpenVINO's CPU plugin, in bf16 where the CPU has ``amx_bf16`` or ``avx512_bf16``
  (a sixth to a half of the fp32 time), f32 otherwise. Chosen by ``auto`` only with bf16: in f32
  it measured no faster than onnxruntime (docs/benchmarks.md, "Engines").
- ``cuda``: onnxruntime's TensorRT or CUDA provider, where a session created with it really runs
  on it (the SageMaker GPU image). onnxruntime-gpu lists both providers wherever it is installed,
  GPU or not, and a session whose CUDA provider fails to start (a missing ``libcudart``, no
  device) runs on the CPU with nothing but a log line: ``GpuProbe.on_this_machine`` creates a
  one-node session and reads ``get_providers()``, so the choice follows what runs, never what is
  listed.

``ALPHACUT_ENGINE=auto|onnxruntime|onnxruntime-int8|openvino|cuda`` overrides the choice; the
reason is logged once.
Weights stay as the models layer stores them (fp16); nothing downloads, and no ``onnx`` package
is needed at run time: OpenVINO reads the ONNX files itself.

Usage::

    engine = choose_engine("auto")              # Engine(name="openvino", precision="bf16", ...)
    session = engine.open(Path("model.onnx"), threads=0)
    (scores,) = session.run(["logits"], {"input": batch})
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import logging
import os
import platform
import queue
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from alphacut.errors import ModelUnavailable
from alphacut.models.recent import RecentOutputs
from alphacut.settings import SettingError

ENGINES = ("auto", "onnxruntime", "onnxruntime-int8", "openvino", "cuda")
ONNXRUNTIME_PRECISION = {"onnxruntime": "f32", "onnxruntime-int8": "int8"}
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 dot products
AMX_FLAG = "amx_bf16"  # bf16 matrix tiles: where two bf16 runs cost less than one fp32 run
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# a one-node ONNX graph (Identity, float[1]; made with the onnx package, not needed at run time): a
# session of it shows which providers really run on this machine
PROBE_MODEL = base64.b64decode(
    "CAgSADo7ChAKAXgSAXkiCElkZW50aXR5EgVwcm9iZVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0="
)
GPU_DEVICE_FILES = (Path("/dev/nvidiactl"), Path("/dev/nvidia0"))  # what an NVIDIA GPU shows a container
NO_GPU_BUILD = "onnxruntime lists no CUDA or TensorRT provider here (install onnxruntime-gpu)"

logger = logging.getLogger("alphacut.engines")


class Session(Protocol):
    """One loaded model: ``run`` is safe to call from several threads at once."""

    input_names: list[str]
    batches: bool  # whether the first input takes a batch of several (its first dimension free)
    # the pictures every run of a batching session holds (``alphacut.models.inputs.in_runs``); 1
    # where the session runs one picture at a time
    batch_size: int

    def run(self, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class Weights:
    """Initializers a graph refers to as external data (ISNet's, shared by its three graphs)."""

    names: list[str]
    arrays: list[np.ndarray]  # as stored (float16)

    @cached_property
    def ort_values(self) -> list[Any]:
        """fp32 OrtValues, made once: onnxruntime reads them from this memory, so they stay here."""
        import onnxruntime as ort

        return [ort.OrtValue.ortvalue_from_numpy(array.astype(np.float32)) for array in self.arrays]


@dataclass(frozen=True)
class Engine:
    name: str  # onnxruntime | openvino | cuda
    reason: str  # why this one (logged once)
    precision: str = "f32"  # f32 | bf16 (openvino) | int8 (onnxruntime: ISNet's matte graph)
    memory_arena: bool = True  # onnxruntime's CPU arena (EngineSettings.memory_arena says why)
    providers: tuple[str, ...] = field(default=("CPUExecutionProvider",))
    # two model runs cost less than one onnxruntime fp32 CPU run: quality=auto runs best (a GPU;
    # bf16 on AMX, ~5x; not avx512_bf16 alone, 1.9x: docs/benchmarks.md, "Engines")
    cheap_model: bool = False
    # where two runs are not that cheap (int8 on a CPU: 2 x 0.59 s against fp32's 1.49 s with VNNI,
    # 2 x 1.43 s against 2.23 s on AVX2 alone), quality=auto mirrors an object only where its first
    # matte is unsure (alphacut.matte.unsure): fp32's quality and more at less than fp32's time
    mirror_when_unsure: bool = False
    # several pictures in one run (the GPU server's batches); on a CPU the free batch dimension is
    # fixed at 1 instead, which measured 6 % faster in onnxruntime (a batch buys a CPU nothing)
    batches: bool = False
    # what every batch run holds, padded with blank pictures or split: onnxruntime's CUDA kernels
    # keep the plans of the last input shape they met and build them all again (seconds of CPU in
    # cuDNN's heuristics) whenever it changes, so a session that met batches of 1, 2, 4 and 8 in
    # turn ran at a tenth of one that meets one shape (docs/benchmarks.md, "The GPU path")
    batch_size: int = 8
    # a GPU provider onnxruntime lists but a session does not run, and why: GPU prices for CPU speed
    gpu_unused: str = ""
    # the outputs of the last runs, shared by every session this engine opens (alphacut.models.recent)
    recent: RecentOutputs | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        shown = self.name == "openvino" or self.precision == "int8"
        return f"{self.name} {self.precision}" if shown else self.name

    def open(
        self, path: Path, threads: int = 0, weights: Weights | None = None, exact: bool = False
    ) -> Session:
        """The model at ``path``; ``weights``: initializers it names as external data; ``exact``:
        f32 even where the engine would compute in bf16 (models that bf16 moves too far)."""
        if not path.exists():
            raise ModelUnavailable(f"model file {path.name} missing in {path.parent}: run `make models`")
        session: Session
        if self.name == "openvino":
            session = OpenvinoSession(path, threads, "f32" if exact else self.precision, weights)
        else:
            session = OnnxruntimeSession(
                path, threads, self.memory_arena, list(self.providers), weights, self.batches, self.batch_size
            )
        return self.recent.remembering(session) if self.recent is not None else session


class OnnxruntimeSession:
    def __init__(
        self,
        path: Path,
        threads: int,
        memory_arena: bool,
        providers: list[str],
        weights: Weights | None,
        batches: bool,
        batch_size: int = 1,
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0: one per core
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = memory_arena
        if any(provider in GPU_PROVIDERS for provider in providers):
            # the device runs the models; the CPU does a few shape operations. onnxruntime's default,
            # a spinning thread per core, takes the cores the GPU server's request threads prepare
            # and finish pictures on
            options.intra_op_num_threads = threads or 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not batches:
            options.add_free_dimension_override_by_name("batch", 1)
        if weights is not None:
            options.add_external_initializers(weights.names, weights.ort_values)
        self._weights = weights  # onnxruntime reads the external initializers from this memory
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [item.name for item in self.session.get_inputs()]
        self.batches = not isinstance(self.session.get_inputs()[0].shape[0], int)
        self.batch_size = batch_size if self.batches else 1

    def run(self, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(None if names is None else list(names), feeds)
        return outputs


class OpenvinoSession:
    """A compiled OpenVINO model; each concurrent call takes its own infer request from a pool."""

    def __init__(self, path: Path, threads: int, precision: str, weights: Weights | None):
        import openvino as ov

        core = ov.Core()
        model = read_openvino_model(core, path, weights)
        one_at_a_time(model)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.precision = precision
        self.compiled = core.compile_model(model, "CPU", config)
        # a parameter's friendly name is the ONNX input's name (a port's tensor names may add others)
        self.input_names = [port.get_node().get_friendly_name() for port in self.compiled.inputs]
        # compiled for one picture at a time: on a CPU a batch buys nothing, and a static shape
        # compiles to faster kernels than a dynamic one
        self.batches = False
        self.batch_size = 1
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run(self, names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            request.infer(feeds)
            # copies: the request's buffers are reused by the next call
            if names is None:
                return [request.get_output_tensor(i).data.copy() for i in range(len(self.compiled.outputs))]
            return [request.get_tensor(name).data.copy() for name in names]
        finally:
            self._requests.put(request)


def one_at_a_time(model: Any) -> None:
    """Fix a free batch dimension at 1 (see ``OpenvinoSession.batches``)."""
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_static and shape.rank.get_length() > 0 and shape[0].is_dynamic:
            shape[0] = 1
            shapes[port] = shape
    if shapes:
        model.reshape(shapes)


def read_openvino_model(core: Any, path: Path, weights: Weights | None) -> Any:
    """The ONNX file as an OpenVINO model. With ``weights``, its ``.ov.onnx`` twin (the build makes
    one per graph: those weights as inputs) with each such input replaced by a constant: OpenVINO's
    ONNX reader cannot take external initializers from memory. The fp16 weights go in as they are,
    behind a Convert, which OpenVINO keeps compressed."""
    if weights is None:
        return core.read_model(str(path))
    from openvino import opset13

    twin = path.with_name(path.name.removesuffix(".onnx") + ".ov.onnx")
    if not twin.exists():
        raise ModelUnavailable(f"{twin.name} missing in {path.parent}: run `make models`")
    model = core.read_model(str(twin))
    arrays = dict(zip(weights.names, weights.arrays))
    for parameter in list(model.get_parameters()):
        array = arrays.get(parameter.get_friendly_name())
        if array is None:
            continue
        constant = opset13.convert(opset13.constant(array), np.float32)
        parameter.output(0).replace(constant.output(0))
        model.remove_parameter(parameter)
    model.validate_nodes_and_infer_types()
    return model


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def describe_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU a figure comes from, as benchmarks print it: model, cores, the flags that matter."""
    model = platform.processor() or "unknown CPU"
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            model,
        )
    except OSError:
        pass
    flags = cpu_flags(cpuinfo)
    shown = [flag for flag in (*BF16_FLAGS, "avx512f", "avx2") if flag in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {', '.join(shown) or 'no avx2, avx512 or bf16'}"


@dataclass(frozen=True)
class GpuProbe:
    """onnxruntime's GPU providers: those it lists, those a created session runs, and why not."""

    listed: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    reason: str = ""  # set when a listed provider does not run: the missing library, or no device

    @classmethod
    def on_this_machine(cls, listed: tuple[str, ...] | None = None) -> GpuProbe:
        """Create a session with every listed GPU provider and read what it runs (``listed``: the
        providers to ask for, in tests; left out, onnxruntime's ``get_available_providers()``)."""
        import onnxruntime as ort

        if listed is None:
            listed = tuple(p for p in GPU_PROVIDERS if p in ort.get_available_providers())
        if not listed:
            return cls()
        with warnings.catch_warnings():  # a provider that is not built in warns; the result says it
            warnings.simplefilter("ignore")
            session = ort.InferenceSession(PROBE_MODEL, providers=[*listed, "CPUExecutionProvider"])
        running = tuple(p for p in session.get_providers() if p in GPU_PROVIDERS)
        reason = (
            "" if running else f"{', '.join(listed)} listed, but a session runs on the CPU: {cuda_failure()}"
        )
        return cls(listed, running, reason)


def cuda_failure() -> str:
    """Why onnxruntime's CUDA provider cannot start here: the library its provider cannot load (the
    loader's own words name it), or no GPU device."""
    import onnxruntime as ort

    provider = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not provider.exists():
        return "this onnxruntime has no CUDA provider library (install onnxruntime-gpu)"
    try:
        ctypes.CDLL(str(provider))
    except OSError as error:
        return f"its CUDA provider does not load ({error})"
    if not gpu_device_present():
        return "no NVIDIA device is visible (/dev/nvidia0)"
    return "its CUDA provider failed to start (onnxruntime's log says why)"


def unserved_gpu(engine: Engine, required: bool | None) -> str:
    """Why a GPU instance must not serve ('' when it may): it is one (``required``; None: an NVIDIA
    device is visible) and its models do not run on CUDA. SageMaker takes an instance into service
    only when its /ping answers 200, so this keeps GPU prices from buying CPU speed."""
    if engine.name == "cuda" or not (gpu_device_present() if required is None else required):
        return ""
    return engine.gpu_unused or NO_GPU_BUILD


def gpu_device_present(files: Sequence[Path] = GPU_DEVICE_FILES) -> bool:
    return any(path.exists() for path in files)


def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(
    requested: str = "auto",
    memory_arena: bool = True,
    flags: set[str] | None = None,
    gpu: GpuProbe | None = None,
    has_openvino: bool | None = None,
) -> Engine:
    """The engine for this machine (``requested``: ALPHACUT_ENGINE; ``memory_arena``: onnxruntime's).
    The other keyword arguments stand in for the machine in tests; left out, they are read from it."""
    if gpu is None:
        gpu = GpuProbe.on_this_machine() if requested in ("auto", "cuda") else GpuProbe()
    engine = _engine_for(requested, flags, gpu, has_openvino)
    unused = gpu.reason if engine.name != "cuda" else ""
    return dataclasses.replace(engine, memory_arena=memory_arena, gpu_unused=unused)


def _engine_for(requested: str, flags: set[str] | None, probe: GpuProbe, has_openvino: bool | None) -> Engine:
    if requested not in ENGINES:
        raise SettingError(f"ALPHACUT_ENGINE must be one of {', '.join(ENGINES)}, not {requested!r}")
    flags = cpu_flags() if flags is None else flags
    bf16 = sorted(set(BF16_FLAGS) & flags)
    gpu = probe.running

    def openvino_ok() -> bool:
        return openvino_installed() if has_openvino is None else has_openvino

    if requested == "cuda" or (requested == "auto" and gpu):
        if not gpu:
            raise SettingError(f"ALPHACUT_ENGINE=cuda: {probe.reason or NO_GPU_BUILD}")
        why = "ALPHACUT_ENGINE=cuda" if requested == "cuda" else f"{gpu[0]} available"
        providers = (*gpu, "CPUExecutionProvider")
        return Engine("cuda", why, providers=providers, cheap_model=True, batches=True)
    if requested == "openvino":
        if not openvino_ok():
            raise SettingError("ALPHACUT_ENGINE=openvino: the openvino package is not installed")
        precision = "bf16" if bf16 else "f32"
        why = f"ALPHACUT_ENGINE=openvino, CPU flags {bf16 or 'without bf16'}"
        return Engine("openvino", why, precision, cheap_model=AMX_FLAG in flags)
    if requested in ONNXRUNTIME_PRECISION:
        precision = ONNXRUNTIME_PRECISION[requested]
        return Engine(
            "onnxruntime",
            f"ALPHACUT_ENGINE={requested}",
            precision,
            mirror_when_unsure=precision == "int8",
        )
    fallback = f"{probe.reason}; " if probe.reason else ""
    if not bf16:
        return Engine("onnxruntime", f"{fallback}no bf16 in the CPU flags")
    if not openvino_ok():
        return Engine("onnxruntime", f"{fallback}CPU has {', '.join(bf16)} but openvino is not installed")
    return Engine("openvino", f"{fallback}CPU has {', '.join(bf16)}", "bf16", cheap_model=AMX_FLAG in flags)


ONNXRUNTIME = Engine("onnxruntime", "the default")  # what a model loads on when no engine is given

_logged: set[str] = set()


def log_choice(engine: Engine) -> None:
    """Say once per process which engine runs the models, and why."""
    if engine.label not in _logged:
        _logged.add(engine.label)
        log = logger.warning if engine.gpu_unused else logger.info
        log("models run on %s (%s)", engine.label, engine.reason)
