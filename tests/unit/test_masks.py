import numpy as np
import pytest
from alphacut.masks import dilate_disk, edge, reconstruct


def _brute_reconstruct(seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    kept = seeds & mask
    while True:
        grown = kept.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                grown |= np.roll(np.roll(np.pad(kept, 1), dy, 0), dx, 1)[1:-1, 1:-1]
        grown &= mask
        if np.array_equal(grown, kept):
            return kept
        kept = grown


@pytest.mark.parametrize("seed", range(4))
def test_reconstruction_keeps_exactly_the_parts_eight_connected_to_a_seed(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((60, 90)) > 0.45
    seeds = rng.random((60, 90)) > 0.995
    assert np.array_equal(reconstruct(seeds, mask), _brute_reconstruct(seeds, mask))


def test_reconstruction_follows_a_diagonal_step_and_a_winding_path():
    mask = np.zeros((7, 7), bool)
    mask[0, :6] = mask[1:6, 5] = mask[6, 6] = True  # a row, down a column, then one diagonal step
    seeds = np.zeros_like(mask)
    seeds[0, 0] = True
    assert np.array_equal(reconstruct(seeds, mask), mask)


def test_disk_dilation_is_every_pixel_within_the_euclidean_radius():
    rng = np.random.default_rng(5)
    mask = rng.random((50, 70)) > 0.99
    ys, xs = np.nonzero(mask)
    grid_y, grid_x = np.mgrid[:50, :70]
    for radius in (1, 4, 15):
        distance = np.min((grid_y[..., None] - ys) ** 2 + (grid_x[..., None] - xs) ** 2, axis=-1)
        assert np.array_equal(dilate_disk(mask, radius), distance <= radius * radius)


def test_the_edge_of_a_rectangle_is_its_outline():
    mask = np.zeros((8, 8), bool)
    mask[2:6, 1:7] = True
    outline = edge(mask)
    assert outline.sum() == 2 * 6 + 2 * 2 and not outline[3:5, 2:6].any()


def test_reconstruction_keeps_a_row_end_and_the_next_row_start_apart_and_handles_empty_masks():
    mask = np.zeros((3, 5), bool)
    mask[0, 4] = mask[1, 0] = True  # consecutive in memory, not neighbours in the picture
    seeds = np.zeros_like(mask)
    seeds[0, 4] = True
    assert np.array_equal(reconstruct(seeds, mask), seeds)
    assert not reconstruct(seeds, np.zeros_like(mask)).any()
    assert not reconstruct(np.zeros_like(mask), mask).any()
    assert reconstruct(np.ones_like(mask), np.ones_like(mask)).all()


def test_disk_dilation_of_a_mask_lower_than_its_radius_reaches_every_row_within_the_radius():
    # the clean-up's reach is 1 % of the long side: a thin strip's rows are fewer than the radius
    mask = np.zeros((3, 40), bool)
    mask[1, 20] = True
    grown = dilate_disk(mask, 5)
    assert grown[:, 17:24].all() and grown[1, 15] and grown[1, 25] and not grown[:, :15].any()
    assert not grown[0, 15] and grown[0, 16]  # (1, 5) from the pixel: 26 > 25
