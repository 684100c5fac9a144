"""Quality regression on the dev half of ../shared/eval (raw ISNet measures 0.800 general, 0.956 person)."""

import pytest

from alphacut.evaluate import evaluate
from alphacut.options import SubjectType

pytestmark = pytest.mark.quality


@pytest.mark.parametrize("folder,subject,floor", [
    ("general", SubjectType.OBJECT, 0.79),
    ("person", SubjectType.PERSON, 0.95),
])
def test_mean_iou_on_the_dev_half(pipeline, eval_dir, folder, subject, floor):
    report = evaluate(eval_dir / folder, pipeline, subject, split="dev")
    print(report.table())
    assert report.n >= 15
    assert report.mean_iou >= floor
