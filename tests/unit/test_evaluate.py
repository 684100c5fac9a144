import numpy as np
from alphacut.evaluate import GHOST_SHARE, boundary_f, ghost_share, score


def _truth() -> np.ndarray:
    truth = np.zeros((200, 300), np.uint8)
    truth[50:150, 50:150] = 255
    return truth


def test_a_perfect_matte_scores_one_everywhere_and_has_no_ghost():
    truth = _truth()
    result = score("same", truth, truth)
    assert (result.iou, result.mae, result.boundary_f, result.ghost_share) == (1.0, 0.0, 1.0, 0.0)
    assert not result.ghosted


def test_half_kept_background_far_from_the_subject_makes_a_photo_ghosted():
    alpha = _truth()
    alpha[60:140, 200:280] = 80  # a half-transparent second thing, 50 px from the subject
    result = score("ghost", alpha, _truth())
    assert result.ghosted and result.ghost_share > GHOST_SHARE
    assert result.iou == 1.0  # IoU at 0.5 does not see it


def test_soft_alpha_within_fifteen_pixels_of_the_subject_is_an_edge_not_a_ghost():
    alpha = _truth()
    alpha[50:150, 150:164] = 80  # a 14 px soft band along the subject's right side
    assert ghost_share(alpha, _truth() >= 128) == 0.0


def test_the_boundary_score_falls_as_the_edge_moves_beyond_the_tolerance():
    truth = _truth() >= 128
    near = np.roll(truth, 2, axis=1)
    far = np.roll(truth, 8, axis=1)
    assert boundary_f(truth, truth) == 1.0
    assert boundary_f(near, truth) > 0.9
    assert boundary_f(far, truth) < 0.6
    assert boundary_f(np.zeros_like(truth), truth) == 0.0
