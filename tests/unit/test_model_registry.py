"""The model registry: a matting model described once (size, colour order, normalisation, output
values) is run as described. A tiny ONNX graph stands in for an operator's BiRefNet-class model:
what it computes is known, so the normalisation and the output handling are checked by value."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from alphacut.errors import InvalidOption
from alphacut.models import ModelStore
from alphacut.models.engines import ONNXRUNTIME
from alphacut.models.registry import MattingSpec, check_model, matting_specs
from alphacut.options import CutoutOptions
from PIL import Image

from tests.model_graphs import IMAGENET, first_channel_graph


@pytest.fixture
def models_dir(tmp_path):
    """A models layer with one model: the graph above as a 96 x 64 BGR model that answers logits."""
    (tmp_path / "tiny").mkdir()
    graph = first_channel_graph(96, 64)
    (tmp_path / "tiny" / "tiny.onnx").write_bytes(graph)
    entry = {
        "licence": "test",
        "files": {"tiny.onnx": hashlib.sha256(graph).hexdigest()},  # as `alphacut models add` records it
        "matting": {
            "file": "tiny.onnx",
            "size": [96, 64],
            "colour": "BGR",
            "values": "logits",
            "rescale": "clip",
            **IMAGENET,
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"build_version": 0, "models": {"tiny": entry}}))
    return tmp_path


def test_a_models_matte_is_its_graph_run_on_the_input_normalised_as_its_entry_says(models_dir):
    store = ModelStore(models_dir, engine=ONNXRUNTIME)
    photo = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    model = store.matting("tiny")
    matte = model.run_many([model.preprocess(photo)])[0]
    # BGR: the graph's first channel is the photo's blue, normalised with blue's mean and std
    blue = np.asarray(Image.fromarray(photo).resize((96, 64), Image.Resampling.BILINEAR), np.float32)[..., 2]
    expected = 1 / (1 + np.exp(-((blue / 255 - 0.406) / 0.225)))  # logits -> probabilities
    assert matte.shape == (64, 96)
    assert np.abs(matte - expected).max() < 1e-5


def test_minmax_stretches_a_models_output_to_0_and_1_and_clip_keeps_it():
    outputs = [np.array([[[[0.2, 0.4], [0.6, 0.3]]]], np.float32)]
    spec = MattingSpec("m", "m.onnx", 2, 2, (0, 0, 0), (1, 1, 1), rescale="minmax")
    assert np.allclose(spec.matte(outputs), [[0.0, 0.5], [1.0, 0.25]])
    assert np.allclose(
        MattingSpec("m", "m.onnx", 2, 2, (0, 0, 0), (1, 1, 1)).matte(outputs), outputs[0][0, 0]
    )


def test_a_model_not_in_the_registry_or_not_run_here_is_a_400_naming_it(models_dir):
    specs = matting_specs(json.loads((models_dir / "manifest.json").read_text()))
    with pytest.raises(InvalidOption, match="no model 'birefnet'; models are tiny") as error:
        check_model("birefnet", specs, "lambda")
    assert error.value.field == "model"
    gpu_only = {"tiny": MattingSpec("tiny", "tiny.onnx", 96, 64, (0, 0, 0), (1, 1, 1), runs_on=("gpu",))}
    with pytest.raises(InvalidOption, match="tiny runs on gpu only, not on lambda"):
        check_model("tiny", gpu_only, "lambda")
    assert check_model("tiny", gpu_only, "gpu").name == "tiny"


def test_the_model_option_takes_a_name_and_refuses_anything_else():
    assert CutoutOptions.from_mapping({"model": "u2netp"}).model == "u2netp"
    assert CutoutOptions().model is None and CutoutOptions().to_dict()["model"] is None
    for bad in ("", "U2NETP", "../isnet", "x" * 65):
        with pytest.raises(InvalidOption, match="model's name") as error:
            CutoutOptions.from_mapping({"model": bad})
        assert error.value.field == "model"


def test_the_document_offers_the_registrys_models_and_a_costume_isnet_alone():
    from alphacut.api.app import REMOVEBG_ROUTES, ROUTES, VENDOR_ROUTES
    from alphacut.api.openapi import build_openapi

    document = build_openapi(ROUTES + VENDOR_ROUTES, None, "alphacut", ("isnet", "u2netp"))

    def offered(path: str) -> list[str]:
        parameters = document["paths"][path]["post"]["parameters"]
        return next(p["schema"].get("enum", []) for p in parameters if p["name"] == "model")

    assert offered("/v1/cutout") == offered("/v1/selfie") == ["isnet", "u2netp"]
    assert offered("/v1/tasks") == []  # the tasks function has no registry: checked where a task runs
    assert offered("/v1/costume") == ["isnet"]  # read from ISNet's decoder maps
    removebg = build_openapi(REMOVEBG_ROUTES, None)["paths"]["/v1.0/removebg"]["post"]["requestBody"]
    schema = removebg["content"]["multipart/form-data"]["schema"]["properties"]["model"]
    assert "enum" not in schema and schema["description"].startswith("alphacut extension")


def test_a_tasks_gpu_only_model_goes_to_the_endpoint_from_the_cpu_path_or_is_refused_without_one():
    from types import SimpleNamespace

    from alphacut.aws.tasks.segment_step import refuse_gpu_only
    from alphacut.settings import ServiceSettings
    from alphacut.task_states import ModelRunsOnTheGpu

    specs = {
        "tiny": MattingSpec("tiny", "tiny.onnx", 96, 64, (0, 0, 0), (1, 1, 1)),
        "big": MattingSpec("big", "big.onnx", 1024, 1024, (0, 0, 0), (1, 1, 1), runs_on=("gpu",)),
    }
    from alphacut.pipeline import Pipeline

    pipeline = Pipeline(SimpleNamespace(specs=specs), place="lambda")  # type: ignore[arg-type]
    with_endpoint = ServiceSettings(sagemaker_endpoint="alphacut-SegmentEndpoint")
    with pytest.raises(ModelRunsOnTheGpu, match="big runs on the GPU endpoint only"):
        refuse_gpu_only(pipeline, CutoutOptions(model="big"), with_endpoint)
    refuse_gpu_only(pipeline, CutoutOptions(model="tiny"), with_endpoint)  # runs here
    refuse_gpu_only(pipeline, CutoutOptions(model="big"), ServiceSettings())  # no endpoint: the 400 later
    with pytest.raises(InvalidOption, match="big runs on gpu only, not on lambda"):
        check_model("big", specs, "lambda")
