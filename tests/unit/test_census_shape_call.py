"""The census's shape call: where the lower garment starts on the person, and a top above it."""

from __future__ import annotations

import numpy as np
import pytest
from alphacut.costume import REST_OF_PERSON, Garment
from alphacut_dev.costume.census import looks_like, named_by_shape
from alphacut_dev.costume.census import main as census_main

DRESS, SKIRT, TOPS = Garment.DRESS.class_id, Garment.SKIRT.class_id, Garment.TOPS.class_id


def _person(top_rows: int, garment: int, garment_from: int) -> np.ndarray:
    """A 100-row person: head rows 0..9, a top down to ``top_rows``, the garment from ``garment_from``."""
    truth = np.zeros((120, 20), np.uint8)
    truth[:100] = REST_OF_PERSON
    truth[10:top_rows] = TOPS
    truth[garment_from:80] = garment
    return truth


def test_a_garment_starting_at_the_waist_under_a_top_looks_like_a_skirt():
    assert looks_like(_person(top_rows=45, garment=DRESS, garment_from=45)) == SKIRT


def test_a_garment_starting_at_the_shoulders_looks_like_a_dress_whatever_it_is_named():
    assert looks_like(_person(top_rows=10, garment=SKIRT, garment_from=12)) == DRESS


def test_a_garment_starting_at_the_waist_with_no_top_above_looks_like_a_dress():
    assert looks_like(_person(top_rows=10, garment=SKIRT, garment_from=45)) == DRESS


def test_labels_with_both_a_dress_and_a_skirt_get_no_call_and_keep_their_names():
    truth = _person(top_rows=45, garment=DRESS, garment_from=45)
    truth[70:80] = SKIRT
    assert looks_like(truth) is None
    assert np.array_equal(named_by_shape(truth), truth)


def test_naming_by_shape_renames_only_the_lower_garment():
    truth = _person(top_rows=45, garment=DRESS, garment_from=45)
    renamed = named_by_shape(truth)
    assert np.array_equal(renamed == SKIRT, truth == DRESS)
    assert np.array_equal(renamed[truth != DRESS], truth[truth != DRESS])


def test_a_census_of_a_folder_without_label_pngs_says_so_instead_of_printing_nan(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        census_main(["--labels", str(tmp_path), "--classes", str(tmp_path / "classes.json")])
    assert stop.value.code == 2
    assert f"--labels: no label PNGs in {tmp_path}" in capsys.readouterr().err
