"""The costume class ids and the mapping from Clothing Co-Parsing's labels to them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from alphacut.costume import CLASS_NAMES

# CCP coarse grouping (classes.json "coarse_classes") -> our ids: accessories, skin and hair are
# "the rest of the person"
COARSE_TO_CLASS = {
    "background": 0,
    "top": 1,
    "outerwear": 2,
    "dress": 3,
    "skirt": 4,
    "pants": 5,
    "shoes": 6,
    "bag": 7,
    "hat": 8,
    "accessory_other": 9,
    "skin": 9,
    "hair": 9,
}


def fine_lookup(classes_json: Path) -> np.ndarray:
    """A 256-entry table: CCP fine id (train labels/, eval gt/) -> our class id."""
    spec = json.loads(classes_json.read_text())
    table = np.zeros(256, np.uint8)
    for index, name in spec["fine_classes"].items():
        table[int(index)] = COARSE_TO_CLASS[spec["fine_to_coarse"][name]]
    return table


assert set(COARSE_TO_CLASS.values()) == set(range(len(CLASS_NAMES)))
