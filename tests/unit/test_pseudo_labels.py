"""Pixel labels made from the teacher's scores and a photo's per-image tags (the costume head's
training data for the photos Clothing Co-Parsing labels per image only)."""

import numpy as np
from alphacut.costume import Garment
from alphacut_dev.costume.pseudo import IGNORE, present_classes, pseudo_labels

FINE_TO_COARSE = {
    "blouse": "top",
    "skirt": "skirt",
    "dress": "dress",
    "jeans": "pants",
    "heels": "shoes",
    "skin": "skin",
    "hair": "hair",
    "coat": "outerwear",
}
TOPS, COAT, DRESS, SKIRT, PANTS = (
    g.class_id for g in (Garment.TOPS, Garment.COAT, Garment.DRESS, Garment.SKIRT, Garment.PANTS)
)


def logits_saying(*layers: tuple[int, float], side: int = 16) -> np.ndarray:
    """10 x side x side logits: the same class scores everywhere."""
    logits = np.zeros((10, side, side), np.float32)
    for class_id, value in layers:
        logits[class_id] = value
    return logits


def test_tags_name_our_classes_with_background_and_the_person_always_allowed():
    assert present_classes(["blouse", "skirt", "skin"], FINE_TO_COARSE) == {0, TOPS, SKIRT, 9}


def test_a_dress_the_photo_does_not_have_is_its_skirt():
    logits = logits_saying((DRESS, 6.0), (SKIRT, 1.0), (TOPS, 2.0))
    labels = pseudo_labels(
        logits, np.ones((16, 16)), present_classes(["blouse", "skirt"], FINE_TO_COARSE), side=32
    )
    assert (labels == SKIRT).all()


def test_without_a_skirt_a_dress_is_shared_by_top_and_trousers_as_they_score():
    logits = logits_saying((DRESS, 6.0), (TOPS, 1.0), (PANTS, 3.0))
    labels = pseudo_labels(
        logits, np.ones((16, 16)), present_classes(["blouse", "jeans"], FINE_TO_COARSE), side=32
    )
    assert (labels == PANTS).all()


def test_a_named_class_keeps_its_pixels():
    logits = logits_saying((DRESS, 6.0), (SKIRT, 1.0))
    labels = pseudo_labels(
        logits, np.ones((16, 16)), present_classes(["dress", "skirt"], FINE_TO_COARSE), side=32
    )
    assert (labels == DRESS).all()


def test_outside_the_matte_is_background_and_unsure_pixels_are_ignored():
    logits = logits_saying((TOPS, 1.0), (COAT, 1.0))  # a tie: neither holds half the probability
    matte = np.zeros((16, 16))
    matte[:, 8:] = 1.0
    labels = pseudo_labels(logits, matte, present_classes(["blouse", "coat"], FINE_TO_COARSE), side=32)
    assert (labels[:, :12] == 0).all() and (labels[:, 20:] == IGNORE).all()
