"""Exact expectations for the mask algebra on small hand-made masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window


def grid(text: str) -> np.ndarray:
    """A mask from rows of '#' (True) and '.' (False)."""
    return np.array([[c == "#" for c in row] for row in text.split()], bool)


def dot(shape=(11, 11), at=(5, 5)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[at] = True
    return mask


def euclidean_disk(shape, centre, radius) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def random_masks(count=6, shape=(23, 31)):
    rng = np.random.default_rng(1)
    return [rng.random(shape) < p for p in np.linspace(0.05, 0.6, count)]


# ---------------------------------------------------------------- include / exclude / invert


def test_union_subtract_invert():
    a = grid("##.. ##.. ....")
    b = grid(".##. .... ..#.")
    np.testing.assert_array_equal(M.union([a, b]), grid("###. ##.. ..#."))
    np.testing.assert_array_equal(M.subtract(a, b), grid("#... ##.. ...."))
    np.testing.assert_array_equal(M.invert(a), grid("..## ..## ####"))
    np.testing.assert_array_equal(M.union(np.stack([a, b])), M.union([a, b]))


def test_union_of_nothing_needs_a_shape():
    np.testing.assert_array_equal(M.union([], (2, 3)), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="union of no masks needs a shape"):
        M.union([])


def test_masks_are_coerced_to_bool_and_must_be_2d():
    assert M.invert(np.array([[0, 255]], np.uint8)).tolist() == [[True, False]]
    with pytest.raises(ValueError, match=r"a mask must be \(H, W\), got shape \(2, 2, 3\)"):
        M.invert(np.zeros((2, 2, 3)))


# ---------------------------------------------------------------- distances, dilate, erode


def test_distance_outside_exact():
    d = M.distance_outside(dot())
    expected = {(5, 5): 0.0, (5, 6): 1.0, (6, 6): math.sqrt(2), (5, 7): 2.0, (6, 7): math.sqrt(5),
                (7, 7): math.sqrt(8), (5, 10): 5.0, (8, 9): 5.0}
    for (y, x), value in expected.items():
        assert d[y, x] == pytest.approx(value, abs=1e-4), (y, x)
    assert np.isinf(M.distance_outside(np.zeros((3, 3), bool))).all()


@pytest.mark.parametrize("radius, count", [(1, 5), (2, 13), (3, 29), (4, 49), (5, 81)])
def test_dilate_a_pixel_is_the_euclidean_disk(radius, count):
    grown = M.dilate(dot((15, 15), (7, 7)), radius)
    assert grown.sum() == count
    np.testing.assert_array_equal(grown, euclidean_disk((15, 15), (7, 7), radius))


def test_dilate_radius_2_exact_picture():
    expected = grid("""
        .......
        ...#...
        ..###..
        .#####.
        ..###..
        ...#...
        .......""")
    np.testing.assert_array_equal(M.dilate(dot((7, 7), (3, 3)), 2), expected)


def test_dilate_stops_at_the_border_and_handles_empty_and_zero():
    grown = M.dilate(dot((5, 5), (0, 0)), 1)
    np.testing.assert_array_equal(grown, grid("##... #.... ..... ..... ....."))
    assert not M.dilate(np.zeros((4, 4), bool), 3).any()
    mask = dot()
    same = M.dilate(mask, 0)
    np.testing.assert_array_equal(same, mask)
    assert same is not mask


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_erode_shrinks_a_disk_back(radius):
    disk3 = euclidean_disk((15, 15), (7, 7), 3)
    np.testing.assert_array_equal(M.erode(disk3, radius), euclidean_disk((15, 15), (7, 7), 3 - radius) if radius < 3
                                  else dot((15, 15), (7, 7)))


def test_erode_exact_picture():
    disk2 = M.dilate(dot((7, 7), (3, 3)), 2)
    # by 1: only pixels farther than 1 from the outside stay: the plus of radius 1
    np.testing.assert_array_equal(M.erode(disk2, 1), M.dilate(dot((7, 7), (3, 3)), 1))
    # by 2: the centre alone (its nearest outside pixel is sqrt(5) away)
    np.testing.assert_array_equal(M.erode(disk2, 2), dot((7, 7), (3, 3)))
    assert not M.erode(disk2, 3).any()


def test_erode_does_not_treat_the_border_as_outside():
    mask = np.zeros((5, 6), bool)
    mask[:, :3] = True
    expected = np.zeros((5, 6), bool)
    expected[:, :2] = True  # only the column next to the outside (x = 3) is removed
    np.testing.assert_array_equal(M.erode(mask, 1), expected)
    assert M.erode(np.ones((4, 4), bool), 3).all()
    assert not M.erode(np.zeros((4, 4), bool), 1).any()


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_erode_is_the_dual_of_dilate(radius):
    for mask in random_masks():
        np.testing.assert_array_equal(M.erode(mask, radius), ~M.dilate(~mask, radius))
        np.testing.assert_array_equal(M.dilate(mask, -radius), M.erode(mask, radius))
        np.testing.assert_array_equal(M.erode(mask, -radius), M.dilate(mask, radius))
        assert (M.erode(mask, radius) <= mask).all() and (mask <= M.dilate(mask, radius)).all()


# ---------------------------------------------------------------- holes and specks


FILL_CASES = [
    # an enclosed hole is filled
    ("""
     .......
     .#####.
     .#...#.
     .#...#.
     .#...#.
     .#####.
     .......""",
     """
     .......
     .#####.
     .#####.
     .#####.
     .#####.
     .#####.
     ......."""),
    # a notch open to the border is not a hole
    ("""
     .......
     .#####.
     .#...#.
     .#.....
     .#...#.
     .#####.
     .......""", None),
    # background connectivity is 4: a gap that only touches the outside diagonally is a hole
    ("""
     .....
     .###.
     .#.#.
     .##..
     .....""",
     """
     .....
     .###.
     .###.
     .##..
     ....."""),
    # a hole cut by the image border is not enclosed
    ("""
     #.#..
     ###..
     .....""", None),
    ("..... .....", None),
    ("### ###", None),
]


@pytest.mark.parametrize("before, after", FILL_CASES)
def test_fill_holes(before, after):
    np.testing.assert_array_equal(M.fill_holes(grid(before)), grid(after or before))


SPECKS = grid("""
    #......#
    .#......
    ........
    ........
    ....###.
    ........""")


@pytest.mark.parametrize("min_area, kept", [
    (0, SPECKS),
    (1, SPECKS),
    (2, grid("#....... .#...... ........ ........ ....###. ........")),  # diagonal pair is one 8-connected speck
    (3, grid("........ ........ ........ ........ ....###. ........")),  # exactly min_area stays
    (4, np.zeros_like(SPECKS)),
])
def test_remove_small_uses_8_connectivity(min_area, kept):
    out = M.remove_small(SPECKS, min_area)
    np.testing.assert_array_equal(out, kept)
    assert out is not SPECKS


def test_remove_small_empty():
    assert not M.remove_small(np.zeros((3, 3), bool), 5).any()


def test_component_boxes():
    assert M.component_boxes(SPECKS) == [Window(0, 0, 2, 2), Window(7, 0, 8, 1), Window(4, 4, 7, 5)]
    assert M.component_boxes(np.zeros((3, 3), bool)) == []
    assert M.component_boxes(np.ones((3, 4), bool)) == [Window(0, 0, 4, 3)]


# ---------------------------------------------------------------- feather and blend


def test_feather_weights_at_known_distances():
    weights = M.feather(dot(), 2)
    assert weights.dtype == np.float32
    expected = {
        (5, 5): 1.0,                         # on the mask
        (5, 6): 1 - 1 / 3,                   # d = 1
        (6, 6): 1 - math.sqrt(2) / 3,        # d = sqrt 2
        (5, 7): 1 - 2 / 3,                   # d = 2 = radius: still > 0
        (6, 7): 0.0,                         # d = sqrt 5 > radius
        (7, 7): 0.0,                         # d = sqrt 8 > radius, < radius + 1
        (5, 8): 0.0,                         # d = 3
    }
    for (y, x), value in expected.items():
        assert weights[y, x] == pytest.approx(value, abs=1e-5), (y, x)


@pytest.mark.parametrize("radius", [1, 2, 3, 6])
def test_feather_positive_exactly_where_dilate(radius):
    for mask in random_masks() + [dot(), np.zeros((5, 5), bool), np.ones((5, 5), bool)]:
        weights = M.feather(mask, radius)
        np.testing.assert_array_equal(weights > 0, M.dilate(mask, radius))
        assert weights.min() >= 0 and weights.max() <= 1
        assert (weights[mask] == 1).all()


def test_feather_radius_0_is_the_mask():
    mask = grid("#.. .#. ...")
    weights = M.feather(mask, 0)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, mask.astype(np.float32))


def test_feather_falls_linearly_along_a_row():
    mask = np.zeros((1, 12), bool)
    mask[0, :2] = True
    np.testing.assert_allclose(M.feather(mask, 4)[0], [1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0, 0, 0], atol=1e-6)


@pytest.mark.parametrize("base, generated, weight, expected", [
    (100, 200, 0.0, 100),
    (100, 200, 1.0, 200),
    (100, 200, 0.5, 150),
    (100, 200, 0.25, 125),
    (10, 21, 0.5, 16),       # 15.5 -> 16
    (0, 255, 1 / 3, 85),
    (0, 255, 0.2, 51),
    (255, 0, 0.9, 26),       # 25.5 rounds to 26 (float32 0.9 is a hair under)
    (37, 200, -0.5, 37),     # a negative weight counts as untouched
    (37, 200, 1e-9, 37),
])
def test_blend_exact_values(base, generated, weight, expected):
    b = np.full((1, 1, 3), base, np.uint8)
    g = np.full((1, 1, 3), generated, np.uint8)
    out = M.blend(b, g, np.array([[weight]], np.float32))
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [expected] * 3


def test_blend_leaves_weight_0_pixels_byte_identical():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    weights = M.feather(M.dilate(dot((20, 30), (10, 15)), 3), 4)
    out = M.blend(base, generated, weights)
    untouched = weights == 0
    assert untouched.sum() > 0 and (weights == 1).sum() > 0
    np.testing.assert_array_equal(out[untouched], base[untouched])
    np.testing.assert_array_equal(out[weights == 1], generated[weights == 1])
    ramp = (weights > 0) & (weights < 1)
    mixed = np.rint(base[ramp] * (1 - weights[ramp, None]) + generated[ramp] * weights[ramp, None])
    np.testing.assert_allclose(out[ramp], mixed, atol=1)


def test_blend_per_channel_and_grayscale():
    base = np.array([[[10, 20, 30]]], np.uint8)
    generated = np.array([[[110, 220, 130]]], np.uint8)
    assert M.blend(base, generated, np.array([[0.25]])).tolist() == [[[35, 70, 55]]]
    gray = M.blend(np.array([[0, 100]], np.uint8), np.array([[200, 200]], np.uint8), np.array([[0.5, 0.0]]))
    assert gray.tolist() == [[100, 100]]


def test_blend_checks_shapes():
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"blend: shapes differ"):
        M.blend(image, np.zeros((4, 6, 3), np.uint8), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"blend: weights \(5, 4\) do not match image \(4, 5\)"):
        M.blend(image, image, np.zeros((5, 4)))


# ---------------------------------------------------------------- resize


@pytest.mark.parametrize("size, expected", [
    ((4, 4), grid("##.. ##.. .... ....")),
    ((3, 3), grid("##. ##. ...")),    # the middle row/column is partly covered: kept
    ((2, 2), grid("#. ..")),
])
def test_resize_mask_exact(size, expected):
    np.testing.assert_array_equal(M.resize_mask(grid("#. .."), size), expected)


def test_resize_mask_keeps_thin_lines_and_orders_size_as_width_height():
    row = np.zeros((100, 100), bool)
    row[50, :] = True
    small = M.resize_mask(row, (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[5, :] = True
    np.testing.assert_array_equal(small, expected)
    column = np.zeros((100, 100), bool)
    column[:, 37] = True
    out = M.resize_mask(column, (7, 13))
    assert out.shape == (13, 7)
    assert out.sum(axis=0).tolist() == [0, 0, 13, 0, 0, 0, 0]


def test_resize_mask_same_size_is_a_copy():
    mask = grid("#. .#")
    out = M.resize_mask(mask, (2, 2))
    np.testing.assert_array_equal(out, mask)
    assert out is not mask


# ---------------------------------------------------------------- touching (shadows, reflections)


def test_touching_adds_what_meets_the_grown_object():
    obj = grid("""
        ........
        .##.....
        .##.....
        ........
        ........
    """)
    candidates = np.stack([
        grid("........ ........ ........ .##..... ........"),  # 1 px below the object: touches at margin 1
        grid("........ ........ ........ ........ .....##."),  # diagonal, 3+ px away: never
        grid("........ .#...... ........ ........ ........"),  # overlaps the object
        grid("........ ........ ....#... ........ ........"),  # 2 px to the right: margin 2
        np.zeros((5, 8), bool),                               # an empty candidate touches nothing
    ])
    assert M.touching(obj, candidates, 0).tolist() == [2]
    assert M.touching(obj, candidates, 1).tolist() == [0, 2]
    assert M.touching(obj, candidates, 2).tolist() == [0, 2, 3]
    assert M.touching(obj, candidates, -3).tolist() == [2]  # a negative margin is no margin
    assert M.touching(obj, candidates[:0], 2).tolist() == []
    with pytest.raises(ValueError, match="candidates must be"):
        M.touching(obj, candidates[:, :4], 2)
