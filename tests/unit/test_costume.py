"""The costume domain without models: class names, class maps, per-garment alphas, scoring."""

from __future__ import annotations

import numpy as np
import pytest
from alphacut.api.request import apply_return_form
from alphacut.costume import (
    CLASS_NAMES,
    GT_COARSE_TO_CLASS,
    MIN_SHARE,
    SEED_GARMENTS,
    CostumeParse,
    Garment,
    class_map_from_scores,
    guided_probabilities,
    parse_garments,
    skirt_under_a_top,
)
from alphacut.errors import InvalidOption
from alphacut.evaluate import confusion, iou_per_class


def test_class_ids_are_the_cli_contract():
    assert CLASS_NAMES == (
        "background",
        "tops",
        "coat",
        "dress",
        "skirt",
        "pants",
        "shoes",
        "bag",
        "hat",
        "person",
    )
    assert [g.class_id for g in SEED_GARMENTS] == [1, 2, 4, 5, 6, 7, 8]


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, tuple(Garment)),
        ("", tuple(Garment)),
        ("all", tuple(Garment)),
        (" ALL ", tuple(Garment)),
        ("tops,coat", (Garment.TOPS, Garment.COAT)),
        ("hat, tops ,hat", (Garment.HAT, Garment.TOPS)),  # order kept, duplicates once
        (["bag", "shoes"], (Garment.BAG, Garment.SHOES)),
    ],
)
def test_parse_garments(value, expected):
    assert parse_garments(value) == expected


def test_unknown_garment_names_the_field_and_the_choices():
    with pytest.raises(InvalidOption) as raised:
        parse_garments("tops,socks", field="cloth_class")
    assert (
        raised.value.field == "cloth_class" and "'socks'" in str(raised.value) and "hat" in str(raised.value)
    )


def test_class_map_is_cut_by_the_matte():
    scores = np.zeros((10, 8, 8), np.float32)
    scores[1, :, :4] = 3.0  # tops on the left
    scores[5, :, 4:] = 3.0  # pants on the right
    scores[0, 0, :] = 9.0  # the head's own background along the top row
    matte = np.zeros((40, 40), np.float32)
    matte[10:30, 5:35] = 1.0
    matte[0:3, 15:25] = 1.0  # the matte reaches where the head says background
    class_map = class_map_from_scores(scores, matte)
    assert class_map.shape == (40, 40) and class_map.dtype == np.uint8
    assert (class_map[matte < 0.5] == 0).all()  # never outside the matte
    assert set(np.unique(class_map[10:30, 5:35])) == {1, 5}
    assert class_map[20, 8] == 1 and class_map[20, 32] == 5
    assert (class_map[0, 15:25] == 0).all()  # inside it, the head may still say background


@pytest.mark.parametrize("head_boundary", [63, 65])  # on the 128 grid: 126 / 130 px in the picture
def test_guided_filter_moves_class_boundaries_towards_the_pictures_edge(head_boundary):
    rgb = np.full((256, 256, 3), 40, np.uint8)
    rgb[:, 128:] = 220  # the garments really meet at x = 128
    scores = np.zeros((10, 128, 128), np.float32)
    scores[1, :, :head_boundary], scores[5, :, head_boundary:] = 4.0, 4.0
    matte = np.ones((256, 256), np.float32)
    plain = np.argmax(class_map_from_scores(scores, matte)[100] == 5)
    guided = np.argmax(class_map_from_scores(scores, matte, rgb)[100] == 5)
    assert abs(guided - 128) < abs(plain - 128)
    probabilities = guided_probabilities(scores, rgb)
    assert probabilities.shape == (10, 256, 256)
    assert np.allclose(probabilities.sum(0), 1.0, atol=1e-3)


def test_parse_alphas_and_shares():
    class_map = np.zeros((10, 10), np.uint8)
    class_map[0:5] = Garment.TOPS.class_id
    class_map[5:7] = 9  # skin: person, not outfit
    class_map[9, 9] = Garment.HAT.class_id  # 1 % of the image
    alpha = np.full((10, 10), 200, np.uint8)
    parse = CostumeParse(alpha, class_map, np.zeros((10, 10, 3), np.uint8))
    tops = parse.garment_alpha(Garment.TOPS)
    assert (tops[0:5] == 200).all() and (tops[5:] == 0).all()
    outfit = parse.outfit_alpha()
    assert (outfit[5:7] == 0).all() and outfit[9, 9] == 200 and (outfit[0:5] == 200).all()
    shares = parse.shares()
    assert shares[Garment.TOPS] == pytest.approx(0.5) and shares[Garment.HAT] == pytest.approx(0.01)
    assert parse.present(Garment.HAT) and not parse.present(Garment.BAG)
    assert MIN_SHARE < 0.01


def test_iou_from_summed_confusion():
    truth = np.array([[0, 1], [1, 2]])
    predicted = np.array([[0, 1], [2, 2]])
    matrix = confusion(predicted, truth, classes=4)
    iou = iou_per_class(matrix)
    assert iou[0] == 1.0 and iou[1] == pytest.approx(0.5) and iou[2] == pytest.approx(0.5) and iou[3] is None


def test_ground_truth_coarse_ids_map_accessories_skin_hair_to_person():
    assert list(GT_COARSE_TO_CLASS[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]


@pytest.mark.parametrize(
    "form, expected",
    [
        ("mask", {"output": "mask"}),
        ("whiteBK", {"bg_color": "#ffffff"}),
        ("", {}),
    ],
)
def test_seed_004_return_form(form, expected):
    assert apply_return_form({"return_form": form}) == expected


def test_unknown_return_form_names_the_field():
    with pytest.raises(InvalidOption) as raised:
        apply_return_form({"return_form": "jpeg"})
    assert raised.value.field == "return_form"


@pytest.mark.parametrize(
    "tops, dress, becomes",
    [
        (50, 100, 4),  # a top half the size of the "dress": the dress is a skirt under it
        (49, 100, 3),  # a little of a dress taken for a top: still a dress
        (0, 100, 3),  # a dress alone (or under a coat)
    ],
)
def test_a_dress_under_a_top_is_a_skirt(tops, dress, becomes):
    class_map = np.zeros(400, np.uint8)
    class_map[:tops] = 1
    class_map[200 : 200 + dress] = 3
    class_map[350:] = 9
    result = skirt_under_a_top(class_map.reshape(20, 20))
    assert (result.ravel()[200 : 200 + dress] == becomes).all()
    assert (result.ravel()[:tops] == 1).all() and (result.ravel()[350:] == 9).all()


def test_no_dress_no_change():
    class_map = np.ones((10, 10), np.uint8)
    assert skirt_under_a_top(class_map) is class_map
