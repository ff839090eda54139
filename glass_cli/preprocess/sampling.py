"""Where the K native-resolution crops of an image go.

GLASS spreads its local crops over the image by stratified sampling: the image is cut into a
G x G grid with G = min(min(H, W) // S, 8), K distinct cells are drawn without replacement,
and inside each drawn cell one S x S crop is placed at a uniform random offset. Crops in
different cells cannot overlap. When the grid has fewer than K cells (small images, or K
larger than G*G), the crops are drawn uniformly over the whole image instead and may overlap;
an image smaller than S on a side gets crops anchored at 0 on that side, which the view
builder pads.

Everything here is a pure function of (width, height, K, S, seed): no image, no global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

MAX_GRID = 8
"""The grid never gets finer than 8 x 8, as in the paper."""

SamplingPath = Literal["stratified", "fallback"]

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in image pixels, right/bottom exclusive. A box may run past
the image's right or bottom edge when the image is smaller than the crop."""


@dataclass(frozen=True)
class CropPlan:
    boxes: tuple[Box, ...]
    path: SamplingPath
    grid: int
    """G, the grid's side (0 when the image is smaller than one crop)."""
    cells: tuple[int, ...] = ()
    """Row-major index of the grid cell each crop came from (stratified path only)."""


def grid_size(width: int, height: int, crop: int) -> int:
    return min(min(width, height) // crop, MAX_GRID)


def _cell_edges(length: int, g: int) -> list[int]:
    # Integer edges i*L//G: every cell is at least L//G >= S pixels wide because G <= L//S.
    return [i * length // g for i in range(g + 1)]


def sample_crops(width: int, height: int, k: int, crop: int, seed: int) -> CropPlan:
    """Plan K crops of crop x crop pixels inside a width x height image.

    The same arguments always give the same plan (numpy's PCG64 generator, seeded).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if k < 1 or crop < 1:
        raise ValueError(f"K and the crop size must be positive, got K={k}, S={crop}")
    rng = np.random.default_rng(seed)
    g = grid_size(width, height, crop)
    if g * g >= k:
        cells = rng.choice(g * g, size=k, replace=False)
        xs, ys = _cell_edges(width, g), _cell_edges(height, g)
        boxes = []
        for cell in cells:
            row, col = divmod(int(cell), g)
            left = xs[col] + int(rng.integers(0, xs[col + 1] - xs[col] - crop + 1))
            top = ys[row] + int(rng.integers(0, ys[row + 1] - ys[row] - crop + 1))
            boxes.append((left, top, left + crop, top + crop))
        return CropPlan(tuple(boxes), "stratified", g, tuple(int(c) for c in cells))
    boxes = []
    for _ in range(k):
        left = int(rng.integers(0, max(width - crop, 0) + 1))
        top = int(rng.integers(0, max(height - crop, 0) + 1))
        boxes.append((left, top, left + crop, top + crop))
    return CropPlan(tuple(boxes), "fallback", g)


def seed_from_digest(digest: bytes) -> int:
    """A 63-bit sampling seed from a content hash, so a file's crops depend on its bytes only."""
    return int.from_bytes(digest[:8], "little") >> 1
