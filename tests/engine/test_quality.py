"""Quality regression on the dev half of the eval photos (``alphacut_dev.data.EVAL``).

Raw ISNet on the dev half (fast quality, no clean-up): general IoU 0.820, MAE 0.0221, boundary F
0.717, 3 of 15 photos ghosted; person 0.964, 0.0111, 0.893, none. With the clean-up: general
0.826, 0.0176, 0.734, 1 ghosted; person 0.964, 0.0110, 0.894, none. The floors sit between."""

from collections.abc import Iterator

import pytest
from alphacut.evaluate import evaluate
from alphacut.options import CutoutOptions, SubjectType
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings

pytestmark = pytest.mark.quality


FLOORS = [  # folder, subject, mean IoU, MAE, boundary F, ghosted photos
    ("general", SubjectType.OBJECT, 0.815, 0.019, 0.725, 1),
    ("person", SubjectType.PERSON, 0.955, 0.0115, 0.89, 0),
]


def assert_the_dev_half_holds(pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted):
    report = evaluate(eval_dir / folder, pipeline, subject, split="dev")
    print(report.table())
    assert report.n >= 15
    assert report.mean_iou >= iou and report.mae <= mae and report.boundary_f >= boundary
    assert len(report.ghosted) <= ghosted


@pytest.mark.parametrize("folder,subject,iou,mae,boundary,ghosted", FLOORS)
def test_the_dev_half_keeps_its_iou_edges_and_mae_without_ghosts(
    pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted
):
    assert_the_dev_half_holds(pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted)


@pytest.fixture(scope="module")
def int8_pipeline() -> Iterator[Pipeline]:
    from tests.engine.conftest import given_back

    settings = EngineSettings.from_env({"ALPHACUT_ENGINE": "onnxruntime-int8", "ALPHACUT_MEMORY_ARENA": "0"})
    yield from given_back(Pipeline.from_settings(settings))


@pytest.mark.parametrize("folder,subject,iou,mae,boundary,ghosted", FLOORS)
def test_isnet_in_int8_keeps_the_same_floors_on_the_dev_half(
    int8_pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted
):
    # int8 (7-bit weights) once measured general 0.833 / 0.0168 / 0.736 / 1, person 0.964 / 0.0110 /
    # 0.892 / 0; quality=auto (the default here) mirrors the 5 unsure general photos: 0.860 / 0.0108 / 0
    assert int8_pipeline.models.engine.precision == "int8"
    assert_the_dev_half_holds(int8_pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted)


# u2netp (model=u2netp, from the registry) measured on the dev half here: general 0.787 / 0.0190 /
# 0.671 / 1 ghosted, person 0.962 / 0.0131 / 0.890 / 0 (the selfie model gates it as it gates ISNet)
U2NETP_FLOORS = [
    ("general", SubjectType.OBJECT, 0.77, 0.021, 0.65, 1),
    ("person", SubjectType.PERSON, 0.95, 0.0145, 0.87, 0),
]


@pytest.mark.parametrize("folder,subject,iou,mae,boundary,ghosted", U2NETP_FLOORS)
def test_a_second_model_from_the_registry_keeps_its_own_floors_on_the_dev_half(
    pipeline, eval_dir, folder, subject, iou, mae, boundary, ghosted
):
    report = evaluate(
        eval_dir / folder, pipeline, subject, split="dev", options=CutoutOptions(model="u2netp")
    )
    print(report.table())
    assert report.n >= 15 and report.mean_iou >= iou and report.mae <= mae and report.boundary_f >= boundary
    assert len(report.ghosted) <= ghosted


# The committed costume head (two heads on ISNet's and EfficientNet-Lite0's maps, guided filter, a
# dress under a top made a skirt) measures 0.663 on the dev half (seed-class mean; the weakest class
# skirt 0.416); on the WHOLE eval set 0.622 with every seed class >= 0.534 (issue 5's target: 0.55,
# every class >= 0.30). These floors guard against regressions, 0.03 under the dev-half numbers.
COSTUME_SEED_MEAN_FLOOR = 0.63
COSTUME_CLASS_FLOOR = 0.38


def test_costume_on_the_dev_half(pipeline, eval_dir):
    from alphacut.costume import SEED_GARMENTS
    from alphacut.evaluate import evaluate_costume

    report = evaluate_costume(eval_dir / "clothing", pipeline, split="dev")
    print(report.table())
    assert report.n >= 25
    assert report.seed_mean >= COSTUME_SEED_MEAN_FLOOR
    assert min(report.iou[g.value] or 0.0 for g in SEED_GARMENTS) >= COSTUME_CLASS_FLOOR
