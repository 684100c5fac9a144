"""Shadows drawn from the matte: drop, contact and cast. Drawing, not layout: ``geometry`` makes
room for ``reach`` before the result is laid out, then the shadow is drawn at the result's size
and laid under the subject. Every length is a share of the subject's longer side, so a shadow
looks the same at any size, and nothing is random: the same request gives the same bytes.

- drop: the silhouette moved away from the light (``distance``, and twice its blur more, so that
  it does not show on the light's side) and blurred (``softness``)
- contact: dark under each place the subject touches the floor (the lower hull of its silhouette:
  each wheel of a car seen at an angle, a stand's foot), fading where it rises above it
- cast: the silhouette laid on the floor away from the light: each point moves by its height over
  the floor times cot(elevation), depth foreshortened; the blur grows and the shade fades with the
  distance from the contact line, as a real penumbra does

Usage::

    spec = options.shadow_spec                           # alphacut.options.Shadow
    spec = fitted(alpha_u8, subject_box, spec, fits)     # shortened where its room would not fit
    room = reach(alpha_u8, subject_box, spec)            # pixels each side: left, top, right, bottom
    shade = draw(alpha_u8, spec)                         # H x W uint8: the shadow's alpha
    rgb, alpha = lay_under(rgb, alpha, shade, spec.color)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property

import numpy as np
from PIL import Image, ImageFilter

from alphacut.codec import over_color
from alphacut.geometry import Box, subject_bbox
from alphacut.options import Shadow, ShadowType

DROP_HIDDEN = 2.0  # the drop shadow moves this many blurs further: under 2.3 % shows on the light's side
BLUR_REACH = 3.0  # past 3 sigma from an edge a Gaussian blur keeps 0.13 %: under half a level of 255
SAFETY = 2  # pixels more, for rounding when the layout rescales
DEPTH = 0.5  # the floor seen from the front: depth shrinks to half on the picture
MIN_DEPTH = 0.08  # a light from the side still lays the shadow a little behind (no flat line)
PENUMBRA_LEVELS = 4  # blurs the cast shadow blends between, from the contact line outwards
FOOT_BAND = 0.1  # the contact shadow fades out a tenth of the subject's height above the floor
# a floor rises at most this much a pixel across the picture (27 degrees): the hull's ends steeper
# than that go from the ground up to what hangs at the subject's side (a model's hand or clutch bag,
# a car's overhang), which stands on nothing
MAX_FLOOR_SLOPE = 0.5
SOLID = 128  # a pixel of the subject, for where it stands
AMBIENT = 1.5  # the contact shadow's wide layer: this many times the dense one's blur
FAR_FADE = 0.6  # the cast shadow's far end is this much lighter than its base
DRAW_PIXELS = 2_000_000  # larger windows are drawn on a smaller copy (a shadow has no fine detail)


def _long_side(box: Box) -> int:
    return max(box[2] - box[0], box[3] - box[1], 1)


def _sigma(spec: Shadow, box: Box, share: float) -> float:
    """The blur at this softness: softness 100 is ``share`` of the subject's longer side."""
    return spec.softness / 100.0 * share * _long_side(box)


def _light(spec: Shadow) -> tuple[float, float]:
    """The unit vector the shadow falls along, on the picture (x right, y down)."""
    angle = math.radians(spec.angle)
    return -math.sin(angle), math.cos(angle)


def _drop_offset(spec: Shadow, box: Box) -> tuple[int, int]:
    """``distance`` away from the light, and twice the blur more: the blur then stays behind the
    subject on the light's side (a shadow, not a glow around it)."""
    dx, dy = _light(spec)
    length = spec.distance / 100.0 * _long_side(box) + DROP_HIDDEN * _sigma(spec, box, 0.1)
    return round(dx * length), round(dy * length)


def _cast_map(spec: Shadow, box: Box) -> tuple[float, float, float]:
    """The floor map for a point at height h over the floor line: x + h * run, floor + h * rise."""
    dx, dy = _light(spec)
    length = 1.0 / math.tan(math.radians(spec.elevation))
    rise = dy * length * DEPTH
    if abs(rise) < MIN_DEPTH:
        rise = math.copysign(MIN_DEPTH, rise) if rise else -MIN_DEPTH
    return dx * length, rise, float(box[3])


def _floor_line(box: Box, ground: np.ndarray, footprint: np.ndarray) -> tuple[float, float]:
    """The floor the cast shadow lies on, ``y = a + b * x``: the line through where the subject
    touches it (``_footprint``), tilted as an angled view tilts it; level at the box's bottom when
    it touches in one place only."""
    touching = np.flatnonzero(footprint == 255)
    if touching.size < 2 or touching[-1] - touching[0] < 2:
        return float(box[3]), 0.0
    slope, intercept = np.polyfit(touching + box[0], ground[touching], 1)
    return float(intercept), float(slope)


def _cast_affine(spec: Shadow, floor: tuple[float, float]) -> np.ndarray:
    """The 2 x 3 map of a point (x, y) to where its shadow falls: height over the floor
    h = a + b x - y, then x + h * run, a + b x + h * rise."""
    run, rise, _ = _cast_map(spec, (0, 0, 0, 0))
    a, b = floor
    if abs(run * b - rise) < 1e-3:  # the map would fold the floor onto a line: keep it level
        b = 0.0
    return np.array([[1 + run * b, -run, run * a], [b * (1 + rise), -rise, a * (1 + rise)]])


def _contact_sizes(spec: Shadow, box: Box) -> tuple[int, float]:
    """The band's half height and its blur."""
    half = max(1, round(0.015 * _long_side(box)))
    return half, 1.0 + _sigma(spec, box, 0.03)


def _lowest_points(alpha: np.ndarray, box: Box) -> np.ndarray:
    """Per column of the box, the row just under the subject's lowest solid pixel (NaN: none)."""
    left, _top, right, bottom = box
    solid = alpha[:bottom, left:right] >= SOLID
    lowest = bottom - np.argmax(solid[::-1], axis=0)
    return np.where(solid.any(axis=0), lowest, np.nan).astype(np.float64)


def _ground_line(lowest: np.ndarray) -> np.ndarray:
    """The floor under each column: the lower hull of the silhouette's lowest points, what the
    subject would rest on (a car seen at an angle stands on both its wheels, the far one higher;
    a cup seen from above on the curve of its saucer), its ends no steeper than a floor (NaN
    past them)."""
    columns = np.flatnonzero(~np.isnan(lowest))
    hull: list[int] = []
    for c in columns:  # monotone chain: keep the points no segment passes under
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (b - a) * (lowest[c] - lowest[a]) - (lowest[b] - lowest[a]) * (c - a) >= 0:
                hull.pop()
            else:
                break
        hull.append(int(c))
    while len(hull) >= 2 and abs(lowest[hull[1]] - lowest[hull[0]]) > MAX_FLOOR_SLOPE * (hull[1] - hull[0]):
        hull.pop(0)
    while len(hull) >= 2 and abs(lowest[hull[-1]] - lowest[hull[-2]]) > MAX_FLOOR_SLOPE * (
        hull[-1] - hull[-2]
    ):
        hull.pop()
    ground = np.full(lowest.size, np.nan)
    if hull:  # no floor past the hull's ends: nothing there stands on one
        ground[hull[0] : hull[-1] + 1] = np.interp(np.arange(hull[0], hull[-1] + 1), hull, lowest[hull])
    return ground


def _footprint(alpha: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the box, the floor (``_ground_line``) and how much of the subject stands on
    it: 255 where the silhouette touches it, fading to 0 at a tenth of the subject's height above
    (a car's body shades less than its wheels, its body between them not at all)."""
    lowest = _lowest_points(alpha, box)
    ground = _ground_line(lowest)
    if np.isnan(ground).all():
        return np.zeros(lowest.size), np.zeros(lowest.size, np.uint8)
    band = max(2.0, FOOT_BAND * (box[3] - box[1]))
    above = np.where(np.isnan(lowest) | np.isnan(ground), np.inf, ground - lowest)
    footprint = (np.clip(1.0 - above / band, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return ground, footprint


class _Standing:
    """Where a subject stands (``_footprint``, ``_floor_line``): it depends on the matte, not on
    the shadow, so it is worked out once for all the reaches a fitting tries."""

    def __init__(self, alpha: np.ndarray, box: Box):
        self.alpha, self.box = alpha, box

    @cached_property
    def footprint(self) -> tuple[np.ndarray, np.ndarray]:
        return _footprint(self.alpha, self.box)

    @cached_property
    def floor_line(self) -> tuple[float, float]:
        return _floor_line(self.box, *self.footprint)


def reach(alpha: np.ndarray, box: Box, spec: Shadow) -> tuple[int, int, int, int]:
    """How far the shadow of the subject (``alpha``, its box ``box``) can reach beyond that box:
    left, top, right, bottom (pixels). The layout keeps this room, so the shadow is never cut."""
    return _reach(_Standing(alpha, box), spec)


def _reach(standing: _Standing, spec: Shadow) -> tuple[int, int, int, int]:
    if not spec.drawn:
        return 0, 0, 0, 0
    box = standing.box
    left, top, right, bottom = box
    if spec.type is ShadowType.DROP:
        dx, dy = _drop_offset(spec, box)
        blur = BLUR_REACH * _sigma(spec, box, 0.1)
        extent = (
            left + min(dx, 0) - blur,
            top + min(dy, 0) - blur,
            right + max(dx, 0) + blur,
            bottom + max(dy, 0) + blur,
        )
    elif spec.type is ShadowType.CONTACT:
        half, sigma = _contact_sizes(spec, box)
        ground, footprint = standing.footprint
        stands = np.flatnonzero(footprint)
        if stands.size == 0:  # nothing solid stands on a floor (a faint matte): no contact shadow
            return 0, 0, 0, 0
        wide = BLUR_REACH * sigma
        extent = (
            left + stands[0] - wide,
            top,
            left + stands[-1] + 1 + wide,
            float(ground[stands].max()) + half + BLUR_REACH * AMBIENT * sigma,
        )
    else:
        a, b = standing.floor_line
        corners = np.array(
            [[left, top, 1], [right, top, 1], [left, a + b * left, 1], [right, a + b * right, 1]], np.float64
        )
        laid = corners @ _cast_affine(spec, (a, b)).T
        xs, ys = list(laid[:, 0]) + [left, right], list(laid[:, 1]) + list(corners[2:, 1])
        blur = BLUR_REACH * (1.0 + _sigma(spec, box, 0.15))
        extent = (min(xs) - blur, min(ys) - blur, max(xs) + blur, max(ys) + blur)
    return (
        max(0, math.ceil(left - extent[0]) + SAFETY),
        max(0, math.ceil(top - extent[1]) + SAFETY),
        max(0, math.ceil(extent[2] - right) + SAFETY),
        max(0, math.ceil(extent[3] - bottom) + SAFETY),
    )


def shortened(spec: Shadow, share: float) -> Shadow:
    """The same shadow ``share`` (0-1) as long: its offset, its blur and a cast shadow's length
    (the light raised until the shadow is that long)."""
    elevation = spec.elevation
    if spec.type is ShadowType.CAST:
        run = share / math.tan(math.radians(spec.elevation))
        elevation = 90.0 if run <= 0 else math.degrees(math.atan(1.0 / run))
    return replace(spec, distance=spec.distance * share, softness=spec.softness * share, elevation=elevation)


Room = tuple[int, int, int, int]


def fitted(alpha: np.ndarray, box: Box, spec: Shadow, fits: Callable[[Room], bool]) -> Shadow:
    """``spec`` as it is when ``fits`` accepts its room (``reach``), else shortened
    (``shortened``) to the longest that does: a shadow never takes the result past the output's
    limits. Where even none fits (a subject at the edge of a photo of the largest size), the
    shortest is given and the frame is cut (``geometry.FrameLimit.clip``)."""
    return fitted_room(alpha, box, spec, fits)[0]


def fitted_room(
    alpha: np.ndarray, box: Box, spec: Shadow, fits: Callable[[Room], bool]
) -> tuple[Shadow, Room]:
    """``fitted``'s shadow and its room (``reach``), where the subject stands worked out once."""
    standing = _Standing(alpha, box)
    room = _reach(standing, spec)
    if not spec.drawn or fits(room):
        return spec, room
    low, high = 0.0, 1.0
    best = shortened(spec, low)
    best_room = _reach(standing, best)
    for _ in range(12):
        middle = (low + high) / 2
        trial = shortened(spec, middle)
        trial_room = _reach(standing, trial)
        if fits(trial_room):
            low, best, best_room = middle, trial, trial_room
        else:
            high = middle
    return best, best_room


def _blur(plane: np.ndarray, sigma: float | tuple[float, float]) -> np.ndarray:
    """A Gaussian blur (one sigma, or x and y); Pillow's runs in C, in time linear in the pixels."""
    if max(sigma if isinstance(sigma, tuple) else (sigma,)) < 0.3:
        return plane
    return np.asarray(Image.fromarray(plane).filter(ImageFilter.GaussianBlur(sigma)))


def _shifted(alpha: np.ndarray, dx: int, dy: int) -> np.ndarray:
    height, width = alpha.shape
    out = np.zeros_like(alpha)
    if abs(dx) >= width or abs(dy) >= height:
        return out
    src = alpha[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def _drop(alpha: np.ndarray, spec: Shadow, box: Box) -> np.ndarray:
    return _blur(_shifted(alpha, *_drop_offset(spec, box)), _sigma(spec, box, 0.1))


def _contact(alpha: np.ndarray, spec: Shadow, box: Box) -> np.ndarray:
    left, _top, right, _bottom = box
    half, sigma = _contact_sizes(spec, box)
    ground, footprint = _footprint(alpha, box)
    standing = footprint > 0
    if not standing.any():
        return np.zeros_like(alpha)
    # the band along the floor under each column that stands on it, with room for the blur: the
    # rest of the picture stays empty
    margin = half + math.ceil(BLUR_REACH * AMBIENT * sigma) + 1
    low, high = float(ground[standing].min()), float(ground[standing].max())
    first, last = max(0, math.floor(low) - margin), min(alpha.shape[0], math.ceil(high) + margin)
    rows = np.arange(first, last, dtype=np.float64)[:, None]
    floor = np.where(standing, ground, -1e9)[None, :]
    band = np.abs(rows - floor + 0.5) < half
    core = np.zeros((last - first, alpha.shape[1]), np.uint8)
    core[:, left:right] = np.where(band, footprint[None, :], 0).astype(np.uint8)
    dense = _blur(core, sigma).astype(np.float32)
    # the wide layer spreads down the floor, not sideways past what stands on it
    ambient = _blur(core, (sigma, AMBIENT * sigma)).astype(np.float32)
    shade = np.zeros_like(alpha)
    shade[first:last] = np.minimum(dense + ambient, 255.0).astype(np.uint8)
    return shade


def _cast(alpha: np.ndarray, spec: Shadow, box: Box) -> np.ndarray:
    height, width = alpha.shape
    _run, rise, _ = _cast_map(spec, box)
    a, b = _floor_line(box, *_footprint(alpha, box))
    forward = np.vstack([_cast_affine(spec, (a, b)), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2].ravel()  # Pillow maps each output pixel back
    laid = Image.fromarray(alpha).transform(
        (width, height), Image.Transform.AFFINE, tuple(inverse), Image.Resampling.BILINEAR
    )
    floor = a + b * (box[0] + box[2]) / 2  # the floor's row under the subject's middle
    flat = np.asarray(laid)
    sigma_far = 1.0 + _sigma(spec, box, 0.15)
    levels = [
        _blur(flat, 0.5 + (sigma_far - 0.5) * k / (PENUMBRA_LEVELS - 1)).astype(np.float32)
        for k in range(PENUMBRA_LEVELS)
    ]
    # each row's distance from the floor line, as a share of the subject's height (0 at the base)
    rows = np.arange(height, dtype=np.float32)
    far = np.clip(np.abs(rows - floor) / (abs(rise) * max(floor - box[1], 1.0)), 0.0, 1.0)
    position = far * (PENUMBRA_LEVELS - 1)
    low = np.minimum(position.astype(np.int32), PENUMBRA_LEVELS - 2)
    weight = (position - low)[:, None]
    out = np.zeros((height, width), np.float32)
    for k in range(PENUMBRA_LEVELS - 1):
        picked = (low == k)[:, None]
        out += np.where(picked, levels[k] * (1.0 - weight) + levels[k + 1] * weight, 0.0)
    out *= (1.0 - FAR_FADE * far)[:, None]
    return (out + 0.5).astype(np.uint8)


DRAWERS = {ShadowType.DROP: _drop, ShadowType.CONTACT: _contact, ShadowType.CAST: _cast}


def draw(alpha: np.ndarray, spec: Shadow) -> np.ndarray:
    """The shadow's alpha (H x W uint8, at most ``opacity`` of 255) for the subject in ``alpha``.

    It is drawn only in the window ``reach`` gives (the rest is empty by that contract), and over
    ``DRAW_PIXELS`` on a smaller copy of that window, scaled back: a shadow is blurred anyway, and
    this keeps a 12 MP photo's cast shadow from costing more than its model run."""
    box = subject_bbox(alpha)
    if box is None or not spec.drawn:
        return np.zeros_like(alpha)
    height, width = alpha.shape
    room = reach(alpha, box, spec)
    window = (
        max(box[0] - room[0], 0),
        max(box[1] - room[1], 0),
        min(box[2] + room[2], width),
        min(box[3] + room[3], height),
    )
    part = alpha[window[1] : window[3], window[0] : window[2]]
    size = part.shape[1], part.shape[0]
    factor = min(1.0, math.sqrt(DRAW_PIXELS / (size[0] * size[1])))
    if factor < 1.0:
        small = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
        part = np.asarray(Image.fromarray(part).resize(small, Image.Resampling.BILINEAR))
    inner = subject_bbox(part)
    shade = np.zeros_like(part) if inner is None else DRAWERS[spec.type](part, spec, inner)
    if factor < 1.0:
        shade = np.asarray(Image.fromarray(shade).resize(size, Image.Resampling.BILINEAR))
    out = np.zeros_like(alpha)
    scaled = shade.astype(np.float32) * (spec.opacity / 100.0) + 0.5
    out[window[1] : window[3], window[0] : window[2]] = scaled.astype(np.uint8)
    return out


def lay_under(
    rgb: np.ndarray, alpha: np.ndarray, shade: np.ndarray, color: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The subject over its shadow (a layer of ``color`` with ``shade`` as alpha): one RGB + alpha,
    which every background and format then takes as it takes a cutout."""
    rows = np.flatnonzero(shade.any(axis=1))
    if rows.size == 0:
        return rgb, alpha
    cols = np.flatnonzero(shade.any(axis=0))
    region = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    out_rgb, out_alpha = rgb.copy(), alpha.copy()
    under = shade[region].astype(np.float32) * (1.0 / 255.0)
    out_rgb[region], out_alpha[region] = over_color(rgb[region], alpha[region], color, under)
    return out_rgb, out_alpha
