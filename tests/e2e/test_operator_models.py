"""An operator's own models on the local stack, added with ``alphacut models add`` before it
started (``operator_models`` in tests/stack_fixtures.py): ``tiny``, a graph with BiRefNet's
signature in the models layer, and ``tinygpu``, the same graph for the GPU endpoint only, packed
and read by the endpoint from S3 (the template's GpuModelDataUrl) with the model's role. What the
graph computes is known (the unit tests check it by value), so each route's answer is checked
against the same pipeline in this process: the normalisation, the colour order and the logits
are handled alike everywhere the model runs."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
import requests
from alphacut.models import ModelStore
from alphacut.models.engines import choose_engine
from alphacut.options import CutoutOptions
from alphacut.pipeline import Pipeline
from alphacut.task_states import TaskState
from PIL import Image

from tests.e2e.test_tasks import submit, wait_final
from tests.stack_fixtures import pinned_path

JPEG = {"Content-Type": "image/jpeg"}


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def operator_pipeline(operator_models) -> Pipeline:
    """The pipeline in this process over the operator's models, as the Lambda functions have them."""
    models, _ = operator_models
    return Pipeline(ModelStore(models, engine=choose_engine(os.environ["ALPHACUT_ENGINE"])))


def expected_mask(pipeline: Pipeline, photo: bytes, **options) -> np.ndarray:
    result = pipeline.run(photo, CutoutOptions.from_mapping({"model": "tiny", "output": "mask", **options}))
    assert result.model == "tiny" and result.mask is not None
    return pixels(result.mask)


def test_an_operators_model_cuts_out_on_every_sync_route_as_its_graph_computes(api, photo, operator_pipeline):
    cutout = api.post("/v1/cutout?model=tiny&output=mask&return=binary", data=photo, headers=JPEG)
    assert cutout.status_code == 200, cutout.text
    assert cutout.headers["X-Alphacut-Model"] == "tiny"
    assert np.array_equal(pixels(cutout.content), expected_mask(operator_pipeline, photo))
    selfie = api.post("/v1/selfie?model=tiny&output=mask&return=base64", data=photo, headers=JPEG)
    assert selfie.status_code == 200, selfie.text
    assert selfie.json()["model"] == "tiny"
    person = expected_mask(operator_pipeline, photo, type="person")
    assert np.array_equal(pixels(base64.b64decode(selfie.json()["mask"]["base64"])), person)
    removebg = api.post(
        "/v1.0/removebg",
        files={"image_file": ("photo.jpg", photo, "image/jpeg")},
        data={"model": "tiny", "channels": "alpha", "size": "full", "format": "png"},
    )
    assert removebg.status_code == 200, removebg.text
    assert removebg.headers["X-Alphacut-Model"] == "tiny"
    assert pixels(removebg.content).shape[:2] == person.shape[:2]
    # the clothing head reads ISNet's own features: no other model makes a costume
    costume = api.post("/v1/costume?model=tiny", data=photo, headers=JPEG)
    assert costume.status_code == 400 and "costume runs on isnet only" in costume.text


def test_a_gpu_only_model_on_a_sync_route_is_a_400_naming_where_it_runs(api, photo):
    answer = api.post("/v1/cutout?model=tinygpu", data=photo, headers=JPEG)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == "model"
    assert error["message"] == (
        "model: tinygpu runs on gpu only, not on lambda: submit it as a task (POST /v1/tasks)"
    )
    assert answer.headers.get("X-Alphacut-Charge") == "false"


def test_a_task_runs_an_operators_model_on_both_paths_and_a_gpu_only_one_on_the_endpoint(
    api, stack, photo, operator_pipeline
):
    expected = expected_mask(operator_pipeline, photo)
    masks = {}
    try:
        for path in ("cpu", "gpu"):
            pinned_path(stack, path)
            data = wait_final(api, submit(api, photo, model="tiny", output="mask"))
            assert data["state"] == TaskState.DONE, data
            masks[path] = pixels(requests.get(data["mask"], timeout=30).content)
        # cold, with a small backlog: the CPU path is chosen, and the Segment step hands the task to
        # the endpoint (the state machine's ModelRunsOnTheGpu), which wakes for it
        pinned_path(stack, "cpu")
        stack.endpoint.pin(None)
        published = stack.endpoint.notifications
        data = wait_final(api, submit(api, photo, model="tinygpu", output="mask"), timeout=180)
        assert data["state"] == TaskState.DONE, data
        assert stack.endpoint.notifications == published + 1
        masks["gpu only"] = pixels(requests.get(data["mask"], timeout=30).content)
    finally:
        pinned_path(stack, "cpu")
    for path, mask in masks.items():
        assert mask.shape == expected.shape, path
        assert np.abs(mask.astype(int) - expected).max() <= 1, path
