"""The verdict on a matte (``alphacut.verdict``) and what a preset's check makes of it: each reason
produced by a synthetic matte over a synthetic photo, no model run."""

from __future__ import annotations

import numpy as np
from alphacut import verdict
from alphacut.presets import PRESETS, Delivered, PresetCheck, RuleResult

HEIGHT, WIDTH = 300, 400


def photo_with_a_dark_square() -> np.ndarray:
    rgb = np.full((HEIGHT, WIDTH, 3), 235, np.uint8)
    rgb[80:220, 120:280] = (40, 60, 160)
    return rgb


def matte_of_the_square() -> np.ndarray:
    alpha = np.zeros((HEIGHT, WIDTH), np.uint8)
    alpha[80:220, 120:280] = 255
    return alpha


def test_a_solid_subject_with_a_clear_edge_is_confident_with_no_reasons():
    judged = verdict.judge(matte_of_the_square(), photo_with_a_dark_square())
    assert not judged.unsure and judged.confidence >= 0.9 and judged.reasons == ()
    assert judged.to_dict() == {"confidence": judged.confidence, "unsure": False, "reasons": []}


def test_a_subject_left_partly_see_through_inside_is_unsure_and_says_so():
    alpha = matte_of_the_square()
    alpha[110:190, 150:250] = 110  # the inside partly erased, its outline kept
    judged = verdict.judge(alpha, photo_with_a_dark_square())
    assert judged.unsure and judged.reasons[0] == "see_through_inside"
    assert judged.see_through > verdict.SEE_THROUGH_LIMIT


def test_a_true_hole_the_matte_leaves_empty_is_not_see_through():
    alpha = matte_of_the_square()
    alpha[120:180, 170:230] = 0  # a handle's hole: the background through it
    assert verdict.signals(alpha, photo_with_a_dark_square()).see_through == 0.0


def test_a_region_kept_apart_from_the_subject_is_named():
    alpha, rgb = matte_of_the_square(), photo_with_a_dark_square()
    alpha[20:60, 320:380], rgb[20:60, 320:380] = 255, (200, 40, 40)  # a sign behind the rider
    judged = verdict.judge(alpha, rgb)
    assert (
        "parts_apart" in judged.reasons
        and judged.confidence < verdict.judge(matte_of_the_square(), photo_with_a_dark_square()).confidence
    )


def test_a_subject_cut_by_the_frame_is_named():
    alpha, rgb = matte_of_the_square(), photo_with_a_dark_square()
    alpha[80:, 120:280], rgb[80:, 120:280] = 255, (40, 60, 160)  # runs out of the bottom
    assert "cut_by_frame" in verdict.judge(alpha, rgb).reasons


def test_a_subject_no_different_from_its_background_is_named_little_contrast():
    rgb = np.full((HEIGHT, WIDTH, 3), 240, np.uint8)  # a white product on white
    rgb[80:220, 120:280] = 236
    judged = verdict.judge(matte_of_the_square(), rgb)
    assert "little_contrast" in judged.reasons  # said; the fit gives it no weight (benchmarks.md)
    assert "little_contrast" not in verdict.judge(matte_of_the_square(), photo_with_a_dark_square()).reasons


def test_an_empty_matte_is_unsure_with_nothing_found():
    judged = verdict.judge(np.zeros((HEIGHT, WIDTH), np.uint8), photo_with_a_dark_square())
    assert judged.unsure and judged.confidence == 0.0 and judged.reasons == ("nothing_found",)


def test_the_headers_say_the_confidence_and_whether_unsure_with_the_reasons():
    assert verdict.Verdict(0.91, False, ()).headers() == {
        "X-Alphacut-Confidence": "0.910",
        "X-Alphacut-Unsure": "false",
    }
    assert verdict.Verdict(0.2, True, ("parts_apart",)).headers()["X-Alphacut-Unsure"] == "true: parts_apart"


def test_a_product_partly_see_through_inside_fails_amazons_check_with_the_rule_named():
    alpha = matte_of_the_square()
    pixels = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    kept = Delivered(pixels, alpha, None, "jpg", 10_000, see_through=0.02)
    erased = Delivered(pixels, alpha, None, "jpg", 10_000, see_through=0.3)
    rule = "see_through_inside"
    assert rule not in PRESETS["amazon"].check(kept).failed
    check = PRESETS["amazon"].check(erased)
    assert rule in check.failed and f"{rule}" in check.header()


def test_an_unsure_pass_is_never_a_plain_passed():
    rules = [RuleResult("format", True, "jpg", ["jpg"])]
    sure, unsure = (
        PresetCheck("ebay", rules),
        PresetCheck("ebay", rules, unsure=True, reasons=("cut_by_frame",)),
    )
    assert sure.header() == "ebay passed" and sure.to_dict()["unsure"] is False
    assert unsure.passed and unsure.header() == "ebay passed, unsure: cut_by_frame"
    assert unsure.to_dict()["unsure"] is True and unsure.to_dict()["reasons"] == ["cut_by_frame"]


def test_the_verdict_takes_a_few_milliseconds_on_a_12_megapixel_matte():
    import time

    alpha = np.zeros((3000, 4000), np.uint8)
    alpha[600:2400, 900:3100] = 255
    rgb = np.full((3000, 4000, 3), 200, np.uint8)
    start = time.perf_counter()
    verdict.judge(alpha, rgb)
    assert time.perf_counter() - start < 0.25  # a 12 MP call takes seconds: under 5 % of it


def test_the_cli_report_says_an_unsure_result_with_its_reasons_with_or_without_a_preset(tmp_path):
    import io
    import json
    from pathlib import Path

    from alphacut.cli import CheckLog

    doubted = verdict.Verdict(0.31, True, ("parts_apart",)).to_dict()
    sure = verdict.Verdict(0.95, False, ()).to_dict()
    said = io.StringIO()
    plain = CheckLog(tmp_path, None, said)
    plain.record(Path("a.jpg"), None, doubted)
    plain.record(Path("b.jpg"), None, sure)
    assert (
        said.getvalue() == "a.jpg: unsure (confidence 0.31: parts_apart)\n" and "1 unsure" in plain.summary()
    )
    said = io.StringIO()
    checked = CheckLog(tmp_path, "ebay", said)
    check = PresetCheck(
        "ebay", [RuleResult("format", True, "jpg", ["jpg"])], unsure=True, reasons=("parts_apart",)
    )
    checked.record(Path("a.jpg"), check.to_dict(), doubted)
    assert said.getvalue() == "a.jpg: ebay passed, unsure (confidence 0.31: parts_apart)\n"
    (line,) = (tmp_path / "checks.jsonl").read_text().splitlines()
    assert json.loads(line)["verdict"] == doubted and json.loads(line)["unsure"] is True
