import numpy as np
import pytest
from alphacut.matte import (
    UNSURE_SHARE,
    box_mean_mask,
    box_mean_planes,
    clean_matte,
    estimate_foreground,
    mirror_confirmed,
    resize_matte,
    stamp_matte,
    unsure,
)
from PIL import Image, ImageDraw


def test_box_mean_matches_brute_force():
    rng = np.random.default_rng(1)
    x = rng.random((23, 31)).astype(np.float32)
    for r in (1, 3, 40):
        expected = np.array(
            [
                [x[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].mean() for j in range(31)]
                for i in range(23)
            ]
        )
        assert np.allclose(box_mean_planes(x[None], r)[0], expected, atol=1e-5)
        assert np.allclose(box_mean_planes(np.stack([x * 0, x]), r)[1], expected, atol=1e-5)


def test_the_box_mean_of_a_mask_from_running_counts_is_the_brute_force_mean_cut_at_the_borders():
    rng = np.random.default_rng(2)
    for share, (height, width), r in [
        (0.2, (23, 31), 1),
        (0.01, (40, 17), 4),
        (0.5, (5, 60), 9),
        (0, (8, 8), 2),
    ]:
        mask = rng.random((height, width)) < share
        expected = np.array(
            [
                [mask[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].mean() for j in range(width)]
                for i in range(height)
            ]
        )
        means = box_mean_mask(mask, r)
        assert means.dtype == np.float32 and np.allclose(means, expected, atol=1e-6)


def test_resize_matte_keeps_range():
    matte = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    out = resize_matte(matte, 100, 50)
    assert out.shape == (50, 100) and out.min() >= 0 and out.max() <= 1


def test_foreground_estimation_removes_the_old_background_from_edges():
    # a red subject over a blue background, with a soft 40 px edge
    height, width = 120, 200
    alpha = np.clip((np.arange(width) - 80) / 40, 0, 1).astype(np.float32)
    alpha = np.tile(alpha, (height, 1))
    red, blue = np.array([230, 20, 20], np.float32), np.array([20, 20, 230], np.float32)
    observed = (alpha[..., None] * red + (1 - alpha[..., None]) * blue).astype(np.uint8)
    estimated = estimate_foreground(observed, alpha)
    edge = (alpha > 0.2) & (alpha < 0.8)
    # observed edge pixels are half blue; the estimate is close to the true red
    observed_error = np.abs(observed[edge].astype(float) - red).mean()
    estimated_error = np.abs(estimated[edge].astype(float) - red).mean()
    assert observed_error > 60
    assert estimated_error < observed_error / 3
    # opaque and transparent pixels are left alone
    assert np.array_equal(estimated[alpha >= 1], observed[alpha >= 1])


def test_foreground_estimation_without_edges_is_identity():
    rgb = np.full((10, 10, 3), 7, np.uint8)
    assert estimate_foreground(rgb, np.ones((10, 10), np.float32)) is rgb


@pytest.mark.parametrize("ink", [(200, 30, 40), (30, 50, 190)])
def test_stamp_extracts_the_seal_not_the_text(ink):
    page = Image.new("RGB", (400, 300), (245, 243, 238))
    draw = ImageDraw.Draw(page)
    for y in range(40, 280, 22):  # black typed text lines, some crossing the seal
        draw.text((20, y), "Invoice No. 2026-11-22 total amount due 1,234.00", fill=(20, 20, 20))
    draw.ellipse((220, 90, 360, 230), outline=ink, width=8)
    draw.text((255, 150), "APPROVED", fill=ink)
    rgb = np.asarray(page)
    ink_mask = np.all(np.abs(rgb.astype(int) - ink) < 8, axis=2)
    text_mask = rgb.max(axis=2) < 60
    paper_mask = np.all(np.abs(rgb.astype(int) - (245, 243, 238)) < 3, axis=2)

    alpha, colours = stamp_matte(rgb)
    assert alpha[ink_mask].mean() > 0.95
    assert alpha[text_mask].max() < 0.05
    assert alpha[paper_mask].max() < 0.01
    assert np.abs(colours[ink_mask].astype(int) - ink).mean() < 10


def _disc(height: int, width: int, cy: float, cx: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return ((y - cy) ** 2 + (x - cx) ** 2 <= radius * radius).astype(np.float32)


def test_clean_up_drops_a_ghost_that_hangs_on_the_subject_by_a_faint_bridge():
    subject = _disc(200, 300, 100, 80, 40)
    ghost = 0.4 * _disc(200, 300, 100, 230, 40)  # a half-kept spectator
    bridge = np.zeros((200, 300), np.float32)
    bridge[98:102, 80:230] = 0.3  # soft alpha joining the two
    alpha = np.maximum.reduce([subject, ghost, bridge])
    cleaned = clean_matte(alpha)
    assert cleaned[100, 230] == 0.0 and cleaned[100, 170] == 0.0
    assert np.array_equal(cleaned[subject == 1], alpha[subject == 1])


def test_clean_up_keeps_soft_edges_near_the_subject_and_what_joins_it_at_half_alpha():
    subject = _disc(400, 1000, 200, 300, 100)  # its edge at x = 400; the reach is 10 px
    hair = np.zeros((400, 1000), np.float32)
    hair[200, 401:405] = 0.2  # soft strands just outside the edge
    assert np.allclose(clean_matte(np.maximum(subject, hair))[200, 401:405], 0.2)
    arm = np.zeros((400, 1000), np.float32)
    arm[195:205, 401:700] = 0.7  # a less confident part joined to the subject
    assert np.allclose(clean_matte(np.maximum(subject, arm))[195:205, 401:700], 0.7)


def test_clean_up_leaves_a_matte_with_no_confident_pixel_as_it_is():
    alpha = np.full((50, 60), 0.3, np.float32)
    assert np.array_equal(clean_matte(alpha), alpha)


def test_clean_up_works_out_a_big_photo_on_a_smaller_gate_with_the_same_result():
    small = np.maximum(_disc(200, 300, 100, 80, 40), 0.4 * _disc(200, 300, 100, 230, 40))
    big = resize_matte(small, 3000, 2000)
    cleaned = clean_matte(big)
    assert cleaned.shape == (2000, 3000)
    assert cleaned[1000, 2300] == 0.0 and cleaned[1000, 800] == 1.0


def test_the_mirror_pass_keeps_soft_alpha_only_where_both_passes_see_it():
    matte = np.array([[0.9, 0.4, 0.3, 0.0]], np.float32)
    mirrored = np.array([[0.7, 0.8, 0.0, 0.2]], np.float32)
    assert np.allclose(mirror_confirmed(matte, mirrored), [[0.8, 0.6, 0.0, 0.0]])


def test_a_matte_is_unsure_when_its_soft_alpha_covers_more_than_the_share_of_what_it_holds():
    held = _disc(200, 300, 100, 150, 60)  # 0 and 1 only
    assert not unsure(held) and not unsure(np.zeros((200, 300), np.float32))
    haze = held.copy()
    rows = int(np.count_nonzero(held > 0.5) * UNSURE_SHARE / 300) + 2  # just past the share
    haze[-rows:] = 0.3  # soft rows below the subject: a ghost of the background
    assert unsure(haze)
    haze[-4:] = 0.0
    assert not unsure(haze)  # four rows fewer: short of it
    assert unsure(np.full((50, 50), 0.4, np.float32))  # soft everywhere, nothing held
