"""The model server's batches: pictures that arrive together run as one, each answered as if alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from alphacut.batching import MatteBatcher
from alphacut.errors import InvalidOption
from alphacut.models import ModelStore
from alphacut.models.engines import Engine
from alphacut.options import Quality, SubjectType
from alphacut.pipeline import MatteRequest, Pipeline

from tests.engine.conftest import given_back


@pytest.fixture(scope="module")
def images(pipeline, eval_dir):
    paths = [
        *sorted((eval_dir / "general" / "images").iterdir())[:2],
        *sorted((eval_dir / "person" / "images").iterdir())[:2],
    ]
    return [pipeline.decode(path.read_bytes()) for path in paths]


@pytest.fixture(scope="module")
def batching(pipeline):
    """onnxruntime on the CPU with the batch dimension left free, as the GPU engine runs it. A
    batch of eight 1024 x 1024 pictures takes GBs on a CPU: without onnxruntime's arena, and given
    back to the system after the module (kept, they grew the suite's worker to 9 GB, and the OOM
    killer ended it on a 24 GB machine)."""
    engine = Engine("onnxruntime", "batches as on a GPU", batches=True, batch_size=4, memory_arena=False)
    yield from given_back(Pipeline(ModelStore(pipeline.models.models_dir, engine=engine), pipeline.limits))


def test_a_cpu_session_runs_one_picture_at_a_time(pipeline):
    assert not pipeline.models.isnet.session.batches  # fixed at 1: faster on a CPU


@pytest.mark.slow
def test_pictures_that_arrive_together_run_as_one_batch_each_as_if_alone(batching, pipeline, images):
    assert batching.models.isnet.session.batches  # the built graphs leave the batch free
    batcher = MatteBatcher(batching, max_batch=4, window_seconds=2.0)
    try:
        with ThreadPoolExecutor(4) as pool:
            mattes = list(
                pool.map(lambda image: batcher.matte(image, SubjectType.AUTO, Quality.FAST), images)
            )
    finally:
        batcher.close()
    assert batcher.batch_sizes == [4]
    for image, matte in zip(images, mattes):
        alone = pipeline.matte(image, SubjectType.AUTO)
        assert matte.shape == alone.shape and np.abs(matte - alone).max() < 1e-4


def test_a_mixed_batch_keeps_each_pictures_subject_and_quality(batching, pipeline, images):
    requests = [
        MatteRequest(images[0], SubjectType.AUTO),
        MatteRequest(images[1], SubjectType.AUTO, quality=Quality.BEST),
        MatteRequest(images[2], SubjectType.PERSON),
        MatteRequest(images[3], SubjectType.STAMP),
    ]
    together = batching.mattes(requests)
    for request, matte in zip(requests, together):
        alone = pipeline.matte(request.image, request.subject, quality=request.quality)
        assert np.abs(matte - alone).max() < 1e-4


def test_a_picture_whose_model_run_fails_does_not_fail_its_batch_mates(pipeline, images, monkeypatch):
    bad_image = images[1]
    infer = pipeline.infer_mattes

    def failing_with_the_bad_picture(prepared):
        if any(item.request.image is bad_image for item in prepared):
            raise RuntimeError("the model failed on this picture")
        return infer(prepared)

    monkeypatch.setattr(pipeline, "infer_mattes", failing_with_the_bad_picture)
    batcher = MatteBatcher(pipeline, max_batch=2, window_seconds=2.0)
    try:
        with ThreadPoolExecutor(2) as pool:
            good = pool.submit(batcher.matte, images[0], SubjectType.AUTO, Quality.FAST)
            bad = pool.submit(batcher.matte, bad_image, SubjectType.AUTO, Quality.FAST)
            assert good.result().shape == (images[0].height, images[0].width)
            with pytest.raises(RuntimeError, match="the model failed"):
                bad.result()
    finally:
        batcher.close()
    assert batcher.batch_sizes == [2]  # they ran together, then each alone


def test_a_picture_refused_before_its_models_never_joins_a_batch(pipeline, images):
    batcher = MatteBatcher(pipeline, max_batch=2, window_seconds=0.0)
    try:
        with pytest.raises(InvalidOption, match="costume is not a single matte"):
            batcher.matte(images[1], SubjectType.COSTUME, Quality.FAST)
    finally:
        batcher.close()
    assert batcher.batch_sizes == []


@pytest.mark.slow
def test_every_batch_runs_at_one_shape_padded_or_split_and_warmed_once(batching, images):
    # onnxruntime's CUDA kernels build their cuDNN plans again whenever the input shape changes:
    # batches of 1, 2, 4 and 8 in turn ran at a tenth of one shape's rate on an H200
    from alphacut.models.inputs import in_runs

    inputs = [np.ones((1, 3, 4, 4), np.float32) * k for k in range(1, 6)]
    runs = in_runs(inputs, 4)
    assert [run.shape for run in runs] == [(4, 3, 4, 4)] * 2
    assert runs[1][0, 0, 0, 0] == 5 and not runs[1][1:].any()
    shapes = []
    session = batching.models.isnet.session
    original = session.run
    session.run = lambda names, feeds: shapes.append(len(feeds["input"])) or original(names, feeds)
    try:
        assert batching.warm_batch() == 4
        batching.mattes([MatteRequest(image, SubjectType.AUTO, quality=Quality.FAST) for image in images[:1]])
        batching.mattes([MatteRequest(image, SubjectType.AUTO, quality=Quality.BEST) for image in images[:3]])
    finally:
        session.run = original
    assert shapes == [4, 4, 4, 4]  # warmed; one picture; three and their mirrors as two runs


def test_the_batch_start_is_reported_for_each_picture(pipeline, images):
    started = []
    batcher = MatteBatcher(pipeline, max_batch=1, window_seconds=0.0)
    try:
        batcher.matte(images[0], SubjectType.AUTO, Quality.FAST, on_start=lambda: started.append("first"))
        batcher.matte(images[1], SubjectType.AUTO, Quality.FAST, on_start=lambda: started.append("second"))
    finally:
        batcher.close()
    assert started == ["first", "second"] and batcher.batch_sizes == [1, 1]


def test_a_batch_setting_out_of_range_is_refused(pipeline):
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        MatteBatcher(pipeline, max_batch=0)
