import itertools

import pytest

from glass_cli.preprocess.sampling import MAX_GRID, grid_size, sample_crops, seed_from_digest


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


SIZES = [(224, 224), (448, 448), (1000, 700), (4000, 3000), (700, 5000), (2500, 2300), (9000, 9000)]


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("k", [1, 2, 4, 10])
def test_stratified_crops_are_inside_distinct_and_disjoint(width, height, k):
    s = 224
    g = grid_size(width, height, s)
    assert g == min(min(width, height) // s, MAX_GRID)
    for seed in range(5):
        plan = sample_crops(width, height, k, s, seed)
        assert len(plan.boxes) == k
        if g * g < k:
            assert plan.path == "fallback"
            continue
        assert plan.path == "stratified" and plan.grid == g
        assert len(set(plan.cells)) == k
        for left, top, right, bottom in plan.boxes:
            assert right - left == s and bottom - top == s
            assert 0 <= left and right <= width and 0 <= top and bottom <= height
        for a, b in itertools.combinations(plan.boxes, 2):
            assert not _overlap(a, b)
        # each crop lies inside the grid cell it was drawn for
        for cell, (left, top, right, bottom) in zip(plan.cells, plan.boxes):
            row, col = divmod(cell, g)
            assert col * width // g <= left and right <= (col + 1) * width // g
            assert row * height // g <= top and bottom <= (row + 1) * height // g


def test_fallback_when_grid_too_small():
    plan = sample_crops(500, 400, 4, 224, seed=3)  # G = 1 < 4 cells
    assert plan.path == "fallback" and plan.grid == 1 and plan.cells == ()
    for left, top, right, bottom in plan.boxes:
        assert 0 <= left <= 500 - 224 and 0 <= top <= 400 - 224
        assert (right - left, bottom - top) == (224, 224)


def test_image_smaller_than_crop_is_padded_not_rejected():
    plan = sample_crops(1, 1, 4, 224, seed=0)
    assert plan.path == "fallback" and plan.grid == 0
    assert set(plan.boxes) == {(0, 0, 224, 224)}
    plan = sample_crops(100, 900, 2, 224, seed=0)  # narrow: x anchored at 0, y free
    assert all(b[0] == 0 and b[2] == 224 and 0 <= b[1] <= 900 - 224 for b in plan.boxes)


def test_grid_capped_at_eight():
    plan = sample_crops(20000, 20000, 64, 224, seed=1)
    assert plan.grid == 8 and plan.path == "stratified" and sorted(plan.cells) == list(range(64))


def test_pure_function_of_arguments():
    a = sample_crops(4000, 3000, 6, 224, seed=42)
    assert a == sample_crops(4000, 3000, 6, 224, seed=42)
    assert a != sample_crops(4000, 3000, 6, 224, seed=43)


def test_crops_cover_the_grid_over_many_seeds():
    cells = set()
    for seed in range(200):
        cells.update(sample_crops(1000, 1000, 2, 224, seed).cells)
    assert cells == set(range(16))


@pytest.mark.parametrize("args", [(0, 10, 1, 8, 0), (10, 10, 0, 8, 0), (10, 10, 1, 0, 0)])
def test_invalid_arguments(args):
    with pytest.raises(ValueError):
        sample_crops(*args)


def test_seed_from_digest_is_stable_and_non_negative():
    digest = bytes(range(32))
    assert seed_from_digest(digest) == int.from_bytes(bytes(range(8)), "little") >> 1
    assert 0 <= seed_from_digest(b"\xff" * 32) < 2**63


def test_texture_placement_keeps_the_cells_and_picks_the_most_textured_candidate():
    """Texture-aware placement draws the same cells as uniform placement and, in each, keeps
    the candidate the scorer rates highest; without a scorer the plan is the uniform one."""
    from glass_cli.preprocess.sampling import TEXTURE_CANDIDATES

    seen = []

    def rightmost(boxes):
        seen.append(list(boxes))
        return [b[0] for b in boxes]

    uniform = sample_crops(4000, 3000, 6, 224, seed=5)
    textured = sample_crops(4000, 3000, 6, 224, seed=5, texture=rightmost)
    assert textured.cells == uniform.cells and textured.path == "stratified"
    assert len(seen) == 1 and len(seen[0]) == 6 * TEXTURE_CANDIDATES
    for i, box in enumerate(textured.boxes):
        options = seen[0][i * TEXTURE_CANDIDATES:(i + 1) * TEXTURE_CANDIDATES]
        assert box == max(options, key=lambda b: b[0])
    assert textured == sample_crops(4000, 3000, 6, 224, seed=5, texture=rightmost)
    small = sample_crops(300, 300, 3, 224, seed=1, texture=rightmost)  # fallback path
    assert small.path == "fallback" and all(0 <= b[0] <= 76 for b in small.boxes)
