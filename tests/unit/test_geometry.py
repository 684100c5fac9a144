import numpy as np
from alphacut.geometry import Canvas, expand_box, fit_into, subject_bbox, target_size
from alphacut.options import Length


def test_subject_bbox():
    alpha = np.zeros((100, 200), np.uint8)
    assert subject_bbox(alpha) is None
    alpha[20:40, 50:120] = 255
    alpha[10, 10] = 5  # faint haze is not the subject
    assert subject_bbox(alpha) == (50, 20, 120, 40)


def test_expand_box_clamps_to_the_image():
    assert expand_box((50, 20, 120, 40), Length(10), 200, 100) == (40, 10, 130, 50)
    assert expand_box((50, 20, 120, 40), Length(50), 200, 100) == (0, 0, 170, 90)
    # percent of the box's longer side (70 px): 10% = 7 px
    assert expand_box((50, 20, 120, 40), Length(10, percent=True), 200, 100) == (43, 13, 127, 47)


def test_target_size():
    assert target_size(400, 200, 300, 300) == (300, 300)
    assert target_size(400, 200, 100, None) == (100, 50)
    assert target_size(400, 200, None, 100) == (200, 100)


def test_fit_into_scales_and_centres():
    rgb = np.full((50, 100, 3), 200, np.uint8)
    alpha = np.full((50, 100), 255, np.uint8)
    out_rgb, out_alpha = fit_into(rgb, alpha, Canvas(300, 300))
    assert out_alpha.shape == (300, 300) and out_rgb.shape == (300, 300, 3)
    rows = np.flatnonzero(out_alpha.max(axis=1) > 0)
    assert rows[0] == 75 and rows[-1] == 224  # 300x150 band, centred vertically
    assert out_alpha[:, 0].max() == 255 and out_alpha[0].max() == 0
