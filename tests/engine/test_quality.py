"""Quality regression on the dev half of the eval photos (``alphacut_dev.data.EVAL``; raw ISNet
measures 0.800 general, 0.956 person)."""

import pytest
from alphacut.evaluate import evaluate
from alphacut.options import SubjectType

pytestmark = pytest.mark.quality


@pytest.mark.parametrize(
    "folder,subject,floor",
    [
        ("general", SubjectType.OBJECT, 0.79),
        ("person", SubjectType.PERSON, 0.95),
    ],
)
def test_mean_iou_on_the_dev_half(pipeline, eval_dir, folder, subject, floor):
    report = evaluate(eval_dir / folder, pipeline, subject, split="dev")
    print(report.table())
    assert report.n >= 15
    assert report.mean_iou >= floor


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
