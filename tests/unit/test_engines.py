"""Which engine runs the models: the machine's flags, the installed packages and ALPHACUT_ENGINE."""

from __future__ import annotations

import logging

import pytest
from alphacut.models import engines, isnet
from alphacut.models.engines import GpuProbe, choose_engine
from alphacut.options import Quality, SubjectType
from alphacut.settings import EngineSettings, SettingError

AMX = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX512_BF16 = {"avx2", "avx512f", "avx512_bf16"}
AVX2 = {"avx2", "fma"}
NO_GPU = GpuProbe()


def test_auto_takes_openvino_bf16_on_a_cpu_with_amx():
    engine = choose_engine("auto", flags=AMX, gpu=NO_GPU, has_openvino=True)
    assert (engine.name, engine.precision) == ("openvino", "bf16")
    assert "amx_bf16" in engine.reason and engine.cheap_model


def test_auto_takes_openvino_bf16_on_a_cpu_with_avx512_bf16_alone_without_making_auto_best():
    engine = choose_engine("auto", flags=AVX512_BF16, gpu=NO_GPU, has_openvino=True)
    assert engine.label == "openvino bf16" and "avx512_bf16" in engine.reason
    assert not engine.cheap_model  # 1.9x faster: two runs would cost more than one fp32 run


def test_auto_keeps_onnxruntime_on_a_cpu_without_bf16():
    engine = choose_engine("auto", flags=AVX2, gpu=NO_GPU, has_openvino=True)
    assert engine.name == "onnxruntime" and not engine.cheap_model
    assert "no bf16" in engine.reason


def test_auto_keeps_onnxruntime_where_openvino_is_not_installed_and_says_so():
    engine = choose_engine("auto", flags=AMX, gpu=NO_GPU, has_openvino=False)
    assert engine.name == "onnxruntime" and "openvino is not installed" in engine.reason


def test_auto_takes_the_gpu_first_with_tensorrt_before_cuda():
    gpu = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    engine = choose_engine("auto", flags=AMX, gpu=GpuProbe(gpu, gpu), has_openvino=True)
    assert engine.name == "cuda" and engine.cheap_model
    assert engine.providers == (*gpu, "CPUExecutionProvider")


def test_a_session_that_fell_back_to_the_cpu_is_not_taken_for_the_gpu():
    # onnxruntime's real fallback: a session asked for CUDA on a build or machine without it runs
    # on the CPU with a warning at most; the probe reads the providers that session runs
    probe = GpuProbe.on_this_machine(listed=("CUDAExecutionProvider",))
    assert probe.listed == ("CUDAExecutionProvider",) and probe.running == ()
    assert "runs on the CPU" in probe.reason and "CUDA provider" in probe.reason
    engine = choose_engine("auto", flags=AVX2, gpu=probe, has_openvino=False)
    assert engine.name == "onnxruntime" and not engine.cheap_model
    assert engine.gpu_unused == probe.reason and probe.reason in engine.reason


def test_quality_auto_stays_fast_when_cuda_is_listed_but_does_not_run():
    probe = GpuProbe(listed=("CUDAExecutionProvider",), running=(), reason="libcudart.so.13 missing")
    engine = choose_engine("auto", flags=AVX2, gpu=probe, has_openvino=False)
    assert Quality.AUTO.on(engine.cheap_model, SubjectType.OBJECT) is Quality.FAST


def test_the_override_to_cuda_where_the_session_falls_back_names_the_reason():
    probe = GpuProbe(listed=("CUDAExecutionProvider",), running=(), reason="libcublas.so.13: cannot open")
    with pytest.raises(SettingError, match="ALPHACUT_ENGINE=cuda: libcublas.so.13"):
        choose_engine("cuda", flags=AVX2, gpu=probe, has_openvino=False)


def test_the_cuda_failure_names_what_is_missing_here():
    # plain onnxruntime (this machine) ships no CUDA provider library at all
    assert "no CUDA provider library" in engines.cuda_failure()


def test_a_gpu_device_is_seen_by_its_device_files(tmp_path):
    assert not engines.gpu_device_present([tmp_path / "nvidia0"])
    (tmp_path / "nvidia0").touch()
    assert engines.gpu_device_present([tmp_path / "nvidia0"])


def test_a_fallback_is_logged_as_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(engines, "_logged", set())
    probe = GpuProbe(listed=("CUDAExecutionProvider",), running=(), reason="CUDA listed, CPU runs")
    with caplog.at_level(logging.WARNING, logger="alphacut.engines"):
        engines.log_choice(choose_engine("auto", flags=AVX2, gpu=probe, has_openvino=False))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_the_override_forces_onnxruntime_on_a_bf16_cpu():
    engine = choose_engine("onnxruntime", flags=AMX, gpu=NO_GPU, has_openvino=True)
    assert engine.name == "onnxruntime" and engine.reason == "ALPHACUT_ENGINE=onnxruntime"


def test_the_int8_override_runs_isnet_s_matte_graph_in_int8_and_the_rest_in_fp32():
    engine = choose_engine("onnxruntime-int8", flags=AVX2, gpu=NO_GPU, has_openvino=True)
    assert (engine.name, engine.precision, engine.label) == ("onnxruntime", "int8", "onnxruntime int8")
    assert isnet.graph_name(engine) == isnet.INT8_GRAPH
    assert isnet.graph_name(engine, features=True) == "graph_features.onnx"


def test_auto_and_the_plain_override_keep_isnet_in_fp32():
    for requested in ("auto", "onnxruntime"):
        engine = choose_engine(requested, flags=AVX2, gpu=NO_GPU, has_openvino=False)
        assert engine.precision == "f32" and engine.label == "onnxruntime"
        assert isnet.graph_name(engine) == "graph.onnx"


def test_the_override_forces_openvino_in_f32_on_a_cpu_without_bf16():
    engine = choose_engine("openvino", flags=AVX2, gpu=NO_GPU, has_openvino=True)
    assert engine.label == "openvino f32" and not engine.cheap_model


def test_the_override_to_openvino_without_the_package_names_the_package():
    with pytest.raises(SettingError, match="openvino package is not installed"):
        choose_engine("openvino", flags=AMX, gpu=NO_GPU, has_openvino=False)


def test_the_override_to_cuda_without_a_gpu_build_names_onnxruntime_gpu():
    with pytest.raises(SettingError, match="ALPHACUT_ENGINE=cuda.*onnxruntime-gpu"):
        choose_engine("cuda", flags=AMX, gpu=NO_GPU, has_openvino=True)


def test_an_unknown_engine_is_refused_with_the_choices():
    choices = "auto, onnxruntime, onnxruntime-int8, openvino, cuda, not 'tensorflow'"
    with pytest.raises(SettingError, match=choices):
        choose_engine("tensorflow", flags=AMX, gpu=NO_GPU, has_openvino=True)


def test_the_setting_reads_alphacut_engine():
    assert EngineSettings.from_env({"ALPHACUT_ENGINE": "openvino"}).engine == "openvino"
    assert EngineSettings.from_env({}).engine == "auto"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t\t: none\n")
    assert engines.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert engines.cpu_flags(tmp_path / "absent") == set()


def test_quality_auto_is_best_only_where_the_engine_makes_model_time_cheap():
    assert Quality.AUTO.on(cheap_model=True) is Quality.BEST
    assert Quality.AUTO.on(cheap_model=False) is Quality.FAST
    assert Quality.AUTO.on(cheap_model=True, subject=SubjectType.PERSON) is Quality.FAST
    assert Quality.AUTO.on(cheap_model=True, subject=SubjectType.AUTO) is Quality.BEST
    assert Quality.FAST.on(cheap_model=True) is Quality.FAST
    assert Quality.BEST.on(cheap_model=False) is Quality.BEST


def test_quality_auto_on_int8_waits_for_the_first_matte_for_objects_and_runs_people_once():
    engine = choose_engine("onnxruntime-int8", flags=AVX2, gpu=NO_GPU, has_openvino=True)
    assert engine.mirror_when_unsure and not engine.cheap_model
    assert Quality.AUTO.on(engine.cheap_model, SubjectType.AUTO, engine.mirror_when_unsure) is Quality.AUTO
    assert Quality.AUTO.on(engine.cheap_model, SubjectType.PERSON, engine.mirror_when_unsure) is Quality.FAST
    assert Quality.FAST.on(engine.cheap_model, SubjectType.OBJECT, engine.mirror_when_unsure) is Quality.FAST
    assert Quality.AUTO.on(cheap_model=True, when_unsure=True) is Quality.BEST  # cheap: always
    fp32 = choose_engine("onnxruntime", flags=AVX2, gpu=NO_GPU, has_openvino=True)
    assert not fp32.mirror_when_unsure and not fp32.cheap_model


def test_the_choice_is_logged_once_with_its_reason(caplog, monkeypatch):
    monkeypatch.setattr(engines, "_logged", set())
    engine = choose_engine("auto", flags=AMX, gpu=NO_GPU, has_openvino=True)
    with caplog.at_level(logging.INFO, logger="alphacut.engines"):
        engines.log_choice(engine)
        engines.log_choice(engine)
    said = [record.getMessage() for record in caplog.records]
    assert said == ["models run on openvino bf16 (CPU has amx_bf16, avx512_bf16)"]
