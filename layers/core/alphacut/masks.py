"""Binary mask operations in numpy alone (no scipy in the layers): reconstruction, dilation, edges.

Each runs in a handful of whole-array passes, so a 1024 px mask takes milliseconds: runs of a row
are filled at once from running sums instead of growing a pixel per pass.

Usage::

    kept = reconstruct(seeds, mask)          # the parts of mask 8-connected to a seed
    main = largest_part(mask)                # its largest 8-connected part (of the first 12)
    near = dilate_disk(mask, 15)             # within 15 px (Euclidean) of mask
    outline = edge(mask)                     # mask pixels with a 4-neighbour outside it
"""

from __future__ import annotations

import numpy as np


def reconstruct(seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Morphological reconstruction: the parts of ``mask`` 8-connected to ``seeds`` (both boolean).

    Labelled by runs, not pixels: each row's runs of ``mask`` are the graph's nodes, a run joined to
    every run of the next row that it touches (diagonals included), and the components are found
    on that graph of a few thousand nodes (``_components``). Growing the seeds pass by pass over
    the pixels took 14 to 100 ms a 854x480 matte, most of the GPU server's CPU work a photo
    (docs/benchmarks.md, "Issue 94"); this takes a few."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros_like(mask)
    height, width = mask.shape
    flat = mask.ravel()
    # run starts and ends (exclusive) over the flattened rows: a row border always ends a run
    step = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows_s, cols_s = np.nonzero(step == 1)
    _, cols_e = np.nonzero(step == -1)
    run_of = np.cumsum(np.pad(mask, ((0, 0), (1, 0)))[:, :-1] < mask, dtype=np.int32).ravel() - 1
    seeded_runs = np.zeros(rows_s.size, bool)
    seeded_runs[run_of[flat & np.ascontiguousarray(seeds).ravel()]] = True
    labels = _components(rows_s, cols_s, cols_e, height, width)
    seeded_labels = np.zeros(rows_s.size, bool)
    seeded_labels[labels[seeded_runs]] = True
    kept = np.zeros(flat.size, bool)
    kept[flat] = seeded_labels[labels[run_of[flat]]]
    return kept.reshape(height, width)


def _components(
    rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Each run's component, as the smallest run index in it: runs sorted by row then start,
    ``ends`` exclusive; two runs of adjacent rows are joined where they touch, corners included."""
    first = np.searchsorted(rows, np.arange(height + 1))  # each row's first run
    below_lo, below_hi = first[np.minimum(rows + 1, height)], first[np.minimum(rows + 2, height)]
    # runs of the next row touching [start, end): start < end + 1 and end > start - 1
    row_key = rows.astype(np.int64) * (width + 2)  # one sorted key for (row, column)
    key_s, key_e, next_row = row_key + starts, row_key + ends, row_key + width + 2
    lo = np.maximum(np.searchsorted(key_e, next_row + starts, side="left"), below_lo)
    hi = np.minimum(np.searchsorted(key_s, next_row + ends, side="right"), below_hi)
    count = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(rows.size), count)
    b = lo.repeat(count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    labels = np.arange(rows.size)
    while True:  # hook each edge's larger root under its smaller, then point every run at its root
        ra, rb = labels[a], labels[b]
        joined = ra != rb
        if not joined.any():
            return labels
        np.minimum.at(labels, np.maximum(ra, rb)[joined], np.minimum(ra, rb)[joined])
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped


MOST_PARTS = 12  # parts told apart by ``largest_part``; the rest are never the largest counted


def largest_part(mask: np.ndarray, most: int = MOST_PARTS) -> np.ndarray:
    """The largest 8-connected part of ``mask`` among the first ``most`` found (each taken from
    its first pixel in reading order); all False for an empty mask."""
    remaining, largest = mask.copy(), np.zeros_like(mask)
    for _ in range(most):
        if not remaining.any():
            break
        seed = np.zeros_like(mask)
        seed.flat[int(np.argmax(remaining))] = True
        part = reconstruct(seed, remaining)
        if np.count_nonzero(part) > np.count_nonzero(largest):
            largest = part
        remaining &= ~part
    return largest


def box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom; right and bottom exclusive) around every true pixel of
    ``mask``, or None when there is none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def grow_one(mask: np.ndarray) -> np.ndarray:
    """Dilation by the 3x3 square (of pixels, or of blocks: ``presets`` grows JPEG blocks)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    across = grown.copy()
    grown[:, 1:] |= across[:, :-1]
    grown[:, :-1] |= across[:, 1:]
    return grown


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Euclidean) of a pixel of ``mask``: per row offset, a 1-D dilation
    by that row's half-width of the disk, shifted and or-ed; worked out in the box of ``mask``
    grown by ``radius`` alone (nothing outside it changes)."""
    height, width = mask.shape
    out = np.zeros(mask.shape, dtype=bool)
    box = box_of(mask)
    if box is None:
        return out
    x0, y0 = max(box[0] - radius, 0), max(box[1] - radius, 0)
    x1, y1 = min(box[2] + radius, width), min(box[3] + radius, height)
    out[y0:y1, x0:x1] = _dilate_disk(mask[y0:y1, x0:x1], radius)
    return out


def _dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    height, width = mask.shape
    # running sums along each row, padded so that every window [x - half, x + half] is a slice:
    # zeros on the left (the window cut at 0), the row's total on the right (cut at the width)
    sums = np.pad(np.cumsum(mask, axis=1, dtype=np.int32), ((0, 0), (radius + 1, radius)), mode="edge")
    sums[:, : radius + 1] = 0
    rows: dict[int, np.ndarray] = {}
    out = np.zeros(mask.shape, dtype=bool)
    for dy in range(-min(radius, height - 1), min(radius, height - 1) + 1):  # shifts inside the box
        half = int((radius * radius - dy * dy) ** 0.5)
        if half not in rows:  # ones in [x - half, x + half] along each row
            right = sums[:, radius + 1 + half : radius + 1 + half + width]
            left = sums[:, radius - half : radius - half + width]
            rows[half] = right > left
        band = rows[half]
        if dy >= 0:
            out[dy:] |= band[: height - dy]
        else:
            out[:dy] |= band[-dy:]
    return out


def edge(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    core = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    found: np.ndarray = mask & ~core
    return found
