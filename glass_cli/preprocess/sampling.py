"""Where the K native-resolution crops of an image go.

GLASS spreads its local crops over the image by stratified sampling: the image is cut into a
G x G grid with G = min(min(H, W) // S, 8), K distinct cells are drawn without replacement,
and inside each drawn cell one S x S crop is placed at a uniform random offset. Crops in
different cells cannot overlap. When the grid has fewer than K cells (small images, or K
larger than G*G), the crops are drawn uniformly over the whole image instead and may overlap;
an image smaller than S on a side gets crops anchored at 0 on that side, which the view
builder pads.

With texture-aware placement (``ModelConfig.placement == "texture"``) each crop draws
``TEXTURE_CANDIDATES`` positions inside its cell (or the image, on the fallback path) and keeps
the one whose pixels vary most (``texture``, a callable the view builder passes): crops stop
landing on flat sky and walls, and the stratification is kept. Cells and candidates come from
the same seeded generator, so a plan stays a pure function of (width, height, K, S, seed) and,
with texture, of the pixels: no global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

MAX_GRID = 8
"""The grid never gets finer than 8 x 8, as in the paper."""

SamplingPath = Literal["stratified", "fallback"]

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in image pixels, right/bottom exclusive. A box may run past
the image's right or bottom edge when the image is smaller than the crop."""

TEXTURE_CANDIDATES = 4
"""Positions drawn per crop under texture-aware placement; the most textured one is kept."""

Texture = Callable[[Sequence[Box]], Sequence[float]]
"""Scores a list of boxes (higher: more texture); the same boxes must always get the same
scores (``views.texture_scores``, on either view path)."""


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


def sample_crops(width: int, height: int, k: int, crop: int, seed: int, texture: Texture | None = None) -> CropPlan:
    """Plan K crops of crop x crop pixels inside a width x height image; with ``texture``,
    each crop is the most textured of ``TEXTURE_CANDIDATES`` positions drawn in its cell.

    The same arguments always give the same plan (numpy's PCG64 generator, seeded).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if k < 1 or crop < 1:
        raise ValueError(f"K and the crop size must be positive, got K={k}, S={crop}")
    rng = np.random.default_rng(seed)
    draws = 1 if texture is None else TEXTURE_CANDIDATES
    g = grid_size(width, height, crop)
    stratified = g * g >= k
    if stratified:
        cells = rng.choice(g * g, size=k, replace=False)
        xs, ys = _cell_edges(width, g), _cell_edges(height, g)
        areas = []
        for cell in cells:
            row, col = divmod(int(cell), g)
            areas.append((xs[col], xs[col + 1], ys[row], ys[row + 1]))
    else:
        areas = [(0, max(width, crop), 0, max(height, crop))] * k
    candidates = []
    for x0, x1, y0, y1 in areas:
        options = []
        for _ in range(draws):
            left = x0 + int(rng.integers(0, x1 - x0 - crop + 1))
            top = y0 + int(rng.integers(0, y1 - y0 - crop + 1))
            options.append((left, top, left + crop, top + crop))
        candidates.append(options)
    if texture is None:
        boxes = tuple(options[0] for options in candidates)
    else:
        scores = list(texture([box for options in candidates for box in options]))
        boxes = tuple(
            options[int(np.argmax(scores[i * draws:(i + 1) * draws]))] for i, options in enumerate(candidates)
        )
    if stratified:
        return CropPlan(boxes, "stratified", g, tuple(int(c) for c in cells))
    return CropPlan(boxes, "fallback", g)


def seed_from_digest(digest: bytes) -> int:
    """A 63-bit sampling seed from a content hash, so a file's crops depend on its bytes only."""
    return int.from_bytes(digest[:8], "little") >> 1
