"""Exact expectations for the pure geometry: option parsing, boxes, crop windows, tiles, model
sizes and outpaint canvases. Every expected value below is worked out by hand from the docstrings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptpaint.core.geometry import (
    Canvas,
    Window,
    anchor_offset,
    box_iou,
    clamp_boxes,
    context_window,
    mask_bbox,
    merge_windows,
    model_size,
    nms,
    outpaint_canvas,
    parse_aspect,
    parse_box,
    parse_expand,
    parse_point,
    parse_size,
    snap_size,
    tile_window,
)
from promptpaint.errors import InvalidOptionError

# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, expected, error", [
    ("10,20,30,40", (10.0, 20.0, 30.0, 40.0), None),
    (" 10, 20  30 40 ", (10.0, 20.0, 30.0, 40.0), None),
    ("0.5,1.5,2.5,3.5", (0.5, 1.5, 2.5, 3.5), None),
    ("-5,-5,10,10", (-5.0, -5.0, 10.0, 10.0), None),
    ((1, 2, 3, 4), (1.0, 2.0, 3.0, 4.0), None),
    (["1", "2", "3", "4"], (1.0, 2.0, 3.0, 4.0), None),
    ("10,20,30", None, "box must be four numbers x0,y0,x1,y1, got '10,20,30'"),
    ("10,20,30,40,50", None, "box must be four numbers"),
    ("a,b,c,d", None, "box must be four numbers"),
    ("", None, "box must be four numbers"),
    (5, None, "box must be four numbers x0,y0,x1,y1, got 5"),
    ("10,20,10,40", None, "box '10,20,10,40' is empty: need x1 > x0 and y1 > y0"),
    ("10,40,30,20", None, "is empty"),
])
def test_parse_box(text, expected, error):
    if error:
        with pytest.raises(InvalidOptionError, match=error.replace("(", r"\(").replace(")", r"\)")):
            parse_box(text)
    else:
        assert parse_box(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("3,4", (3.0, 4.0, 1)),
    ("3,4,1", (3.0, 4.0, 1)),
    ("3 4 0", (3.0, 4.0, 0)),
    ("2.5,7.25", (2.5, 7.25, 1)),
    ((3, 4), (3.0, 4.0, 1)),
    ([3, 4, 0], (3.0, 4.0, 0)),
])
def test_parse_point(text, expected):
    assert parse_point(text) == expected


@pytest.mark.parametrize("text", ["3", "3,4,2", "3,4,-1", "3,4,0.5", "x,y", "1,2,3,4", "", 7, (1,)])
def test_parse_point_rejects(text):
    with pytest.raises(InvalidOptionError, match=r"point must be x,y or x,y,label \(label 0 or 1\), got"):
        parse_point(text)


@pytest.mark.parametrize("text, expected", [
    ("16:9", 16 / 9),
    ("16/9", 16 / 9),
    ("4x3", 4 / 3),
    (" 21 : 9 ", 21 / 9),
    ("1.5", 1.5),
    ("2.39:1", 2.39),
    ("1", 1.0),
])
def test_parse_aspect(text, expected):
    assert parse_aspect(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text", ["0:9", "16:0", "abc", "-1", "0", "inf", "nan", "16:9:1", ""])
def test_parse_aspect_rejects(text):
    with pytest.raises(InvalidOptionError, match=r"aspect must look like 16:9 \(both sides > 0\)"):
        parse_aspect(text)


@pytest.mark.parametrize("text, expected", [
    ("10", (10, 10, 10, 10)),
    ("10,20", (10, 20, 10, 20)),
    ("10,20,30,40", (10, 20, 30, 40)),
    ("1 2 3 4", (1, 2, 3, 4)),
    ("0,0,0,5", (0, 0, 0, 5)),
    ([1, 2, 3, 4], (1, 2, 3, 4)),
])
def test_parse_expand(text, expected):
    assert parse_expand(text) == expected


@pytest.mark.parametrize("text", ["1,2,3", "-1", "1,-2", "a", "", "1,2,3,4,5", "1.5"])
def test_parse_expand_rejects(text):
    with pytest.raises(InvalidOptionError, match="expand must be L,T,R,B non-negative pixels"):
        parse_expand(text)


@pytest.mark.parametrize("text, expected", [
    ("1920x1080", (1920, 1080)),
    ("1920X1080", (1920, 1080)),
    ("1920,1080", (1920, 1080)),
    ("1920*1080", (1920, 1080)),
    (" 800 x 600 ", (800, 600)),
    ((800, 600), (800, 600)),
    (["800", "600"], (800, 600)),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0x5", "5x0", "1920", "axb", "-5x5", "1.5x2", (1, 2, 3), ("a", "b"), (0, 5), 5])
def test_parse_size_rejects(text):
    with pytest.raises(InvalidOptionError, match="size must look like WIDTHxHEIGHT with positive numbers"):
        parse_size(text)


# ---------------------------------------------------------------- boxes


@pytest.mark.parametrize("box, expected", [
    ([10, 10, 50, 50], [10, 10, 50, 50]),         # inside: unchanged
    ([-5, 10, 120, 50], [0, 10, 100, 50]),        # sticks out left and right
    ([10, -20, 30, 90], [10, 0, 30, 80]),         # sticks out top and bottom
    ([150, 10, 200, 20], [100, 10, 100, 20]),     # fully outside: zero width at the border
    ([50, 10, 20, 30], [50, 10, 50, 30]),         # inverted: x1 raised to x0
])
def test_clamp_boxes(box, expected):
    out = clamp_boxes(np.array([box], np.float32), (100, 80))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [expected])


def test_clamp_boxes_does_not_modify_input_and_accepts_one_flat_box():
    box = np.array([-5.0, -5.0, 200.0, 200.0])
    out = clamp_boxes(box, (100, 80))
    np.testing.assert_array_equal(out, [[0, 0, 100, 80]])
    np.testing.assert_array_equal(box, [-5, -5, 200, 200])


@pytest.mark.parametrize("b, expected", [
    ([5, 5, 15, 15], 25 / 175),      # quarter overlap
    ([0, 0, 10, 10], 1.0),           # identical
    ([20, 20, 30, 30], 0.0),         # disjoint
    ([10, 0, 20, 10], 0.0),          # touching edge: no area in common
    ([0, 0, 5, 10], 0.5),            # half, contained
    ([2, 2, 4, 4], 4 / 100),         # small box inside
])
def test_box_iou_exact(b, expected):
    assert box_iou([[0, 0, 10, 10]], [b])[0, 0] == pytest.approx(expected, abs=1e-12)


def test_box_iou_shapes_and_degenerate_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 0, 0]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0], [0.0, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


NMS_BOXES = np.array([
    [0, 0, 10, 10],    # 0: score 0.9
    [1, 1, 11, 11],    # 1: score 0.8, IoU with 0 = 81/119 = 0.68
    [20, 20, 30, 30],  # 2: score 0.95, alone
    [0, 0, 10, 10],    # 3: score 0.5, duplicate of 0
], np.float32)
NMS_SCORES = np.array([0.9, 0.8, 0.95, 0.5])


@pytest.mark.parametrize("iou, expected", [
    (0.5, [2, 0]),
    (0.7, [2, 0, 1]),        # 0.68 < 0.7: box 1 survives
    (1.0, [2, 0, 1, 3]),     # nothing overlaps by more than 1
    (0.0, [2, 0]),
])
def test_nms_exact(iou, expected):
    keep = nms(NMS_BOXES, NMS_SCORES, iou)
    assert keep.dtype == np.int64
    assert keep.tolist() == expected


def test_nms_ties_keep_the_first_and_empty_input():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    assert nms(boxes, np.array([0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


# ---------------------------------------------------------------- windows


def test_window_properties():
    win = Window(2, 3, 10, 7)
    assert (win.width, win.height, win.size) == (8, 4, (8, 4))
    image = np.arange(20 * 20).reshape(20, 20)
    np.testing.assert_array_equal(image[win.slices], image[3:7, 2:10])
    assert win.union(Window(0, 5, 4, 12)) == Window(0, 3, 10, 12)


@pytest.mark.parametrize("other, expected", [
    (Window(5, 5, 15, 15), True),
    (Window(10, 0, 20, 10), False),   # touching on the right: ends are exclusive
    (Window(0, 10, 10, 20), False),   # touching below
    (Window(9, 9, 10, 10), True),     # one shared pixel
    (Window(2, 2, 3, 3), True),       # contained
    (Window(20, 20, 30, 30), False),
])
def test_window_overlaps_is_symmetric(other, expected):
    win = Window(0, 0, 10, 10)
    assert win.overlaps(other) is expected
    assert other.overlaps(win) is expected


def test_mask_bbox():
    mask = np.zeros((6, 8), bool)
    assert mask_bbox(mask) is None
    mask[2, 3] = True
    assert mask_bbox(mask) == Window(3, 2, 4, 3)
    mask[4, 6] = True
    mask[5, 0] = True
    assert mask_bbox(mask) == Window(0, 2, 7, 6)
    assert mask_bbox(np.ones((6, 8), bool)) == Window(0, 0, 8, 6)


@pytest.mark.parametrize("bbox, image_size, padding, min_side, expected", [
    # pad ceil(0.5 * 60) = 30 -> 120 wide, then grown evenly to 256
    (Window(100, 100, 160, 160), (2000, 1500), 0.5, 256, Window(2, 2, 258, 258)),
    # grown past the top-left corner: shifted back inside
    (Window(0, 0, 10, 10), (100, 100), 0.5, 0, Window(0, 0, 20, 20)),
    # grown past the bottom-right corner
    (Window(90, 90, 100, 100), (100, 100), 0.5, 0, Window(80, 80, 100, 100)),
    # padding >= 1 is pixels
    (Window(50, 50, 60, 60), (200, 200), 10, 0, Window(40, 40, 70, 70)),
    # a 7 px box with fraction 0.5: ceil(3.5) = 4 px per side
    (Window(50, 50, 57, 57), (200, 200), 0.5, 0, Window(46, 46, 61, 61)),
    # odd growth: the extra pixel goes to the far side
    (Window(10, 10, 13, 13), (100, 100), 0, 8, Window(8, 8, 16, 16)),
    # a wide sliver is made at most 2:1 by adding height
    (Window(0, 45, 100, 55), (200, 200), 0, 0, Window(0, 25, 100, 75)),
    # a tall sliver by adding width
    (Window(45, 0, 55, 100), (200, 200), 0, 0, Window(25, 0, 75, 100)),
    # never leaves the image, even when min_side or the aspect cannot be met
    (Window(0, 0, 100, 100), (100, 100), 0.5, 500, Window(0, 0, 100, 100)),
    (Window(0, 0, 100, 5), (100, 5), 0, 0, Window(0, 0, 100, 5)),
])
def test_context_window(bbox, image_size, padding, min_side, expected):
    assert context_window(bbox, image_size, padding, min_side) == expected


def test_context_window_max_aspect_argument():
    # 100x10 box, max_aspect 4 -> height ceil(100 / 4) = 25: 7 more above, 8 below
    assert context_window(Window(0, 45, 100, 55), (200, 200), 0, 0, max_aspect=4) == Window(0, 38, 100, 63)


@pytest.mark.parametrize("windows, expected", [
    ([], []),
    ([Window(20, 20, 30, 30), Window(0, 0, 10, 10)], [Window(0, 0, 10, 10), Window(20, 20, 30, 30)]),
    ([Window(0, 0, 10, 10), Window(10, 0, 20, 10)], [Window(0, 0, 10, 10), Window(10, 0, 20, 10)]),
    ([Window(0, 0, 10, 10), Window(5, 5, 15, 15)], [Window(0, 0, 15, 15)]),
    # a chain: 0 and 2 only meet through 1
    ([Window(0, 0, 10, 10), Window(18, 0, 28, 10), Window(8, 0, 20, 10)], [Window(0, 0, 28, 10)]),
    # a union that grows into a third window merges it too
    ([Window(0, 0, 10, 10), Window(20, 0, 30, 10), Window(5, 5, 25, 8)], [Window(0, 0, 30, 10)]),
    # sorted top to bottom, then left to right
    ([Window(50, 0, 60, 10), Window(0, 20, 10, 30), Window(0, 0, 10, 10)],
     [Window(0, 0, 10, 10), Window(50, 0, 60, 10), Window(0, 20, 10, 30)]),
])
def test_merge_windows(windows, expected):
    merged = merge_windows(windows)
    assert merged == expected
    assert not any(a.overlaps(b) for i, a in enumerate(merged) for b in merged[i + 1:])


def test_tile_window_exact():
    # 2500 px, tiles of 1024 overlapping >= 64: ceil((2500 - 64) / 960) = 3 tiles, spread evenly
    tiles = tile_window(Window(0, 0, 2500, 900), 1024, 64)
    assert tiles == [Window(0, 0, 1024, 900), Window(738, 0, 1762, 900), Window(1476, 0, 2500, 900)]
    # an offset window keeps its offset; starts linspace(10, 2010 - 1024, 3)
    assert tile_window(Window(10, 20, 2010, 1020), 1024, 64) == [
        Window(10, 20, 1034, 1020), Window(498, 20, 1522, 1020), Window(986, 20, 2010, 1020)]


def test_tile_window_small_window_is_one_tile():
    assert tile_window(Window(100, 50, 300, 250), 1024, 64) == [Window(100, 50, 300, 250)]
    # the overlap is only checked when tiling is needed
    assert tile_window(Window(0, 0, 10, 10), 16, 100) == [Window(0, 0, 10, 10)]


def test_tile_window_grid_is_row_by_row():
    tiles = tile_window(Window(0, 0, 2000, 2000), 1024, 64)
    assert len(tiles) == 9
    assert [(t.x0, t.y0) for t in tiles] == [(x, y) for y in (0, 488, 976) for x in (0, 488, 976)]


@pytest.mark.parametrize("length", [1025, 1100, 1984, 2000, 2049, 3000, 5000, 10007])
@pytest.mark.parametrize("overlap", [0, 1, 64, 500, 1023])
def test_tile_window_covers_exactly_with_enough_overlap(length, overlap):
    tiles = tile_window(Window(7, 0, 7 + length, 1), 1024, overlap)
    spans = [(t.x0, t.x1) for t in tiles]
    assert spans[0][0] == 7 and spans[-1][1] == 7 + length
    assert all(x1 - x0 == 1024 for x0, x1 in spans)
    assert all(prev[1] - nxt[0] >= overlap for prev, nxt in zip(spans, spans[1:]))
    assert all(prev[0] < nxt[0] for prev, nxt in zip(spans, spans[1:]))


def test_tile_window_rejects_overlap_as_large_as_the_tile():
    with pytest.raises(InvalidOptionError, match="tile overlap 1024 must be smaller than the tile size 1024"):
        tile_window(Window(0, 0, 2000, 100), 1024, 1024)


# ---------------------------------------------------------------- model sizes


@pytest.mark.parametrize("window, working, multiple, expected", [
    ((512, 512), 512, 8, (512, 512)),
    ((100, 100), 512, 8, (512, 512)),      # small windows are scaled up
    ((60, 60), 512, 8, (512, 512)),
    ((256, 128), 512, 8, (728, 360)),      # sqrt(512^2 * 2) = 724.1 -> 728; 362.0 -> 360
    ((2000, 1000), 512, 8, (728, 360)),    # large ones down, same aspect
    ((1024, 768), 512, 8, (592, 440)),     # 591.2 -> 592, 443.4 -> 440
    ((4000, 100), 512, 8, (768, 16)),      # long side capped at 1.5 * 512
    ((100, 4000), 512, 8, (16, 768)),
    ((1000, 1000), 1024, 64, (1024, 1024)),
    ((1500, 1000), 1024, 64, (1280, 832)),
    ((100000, 1), 512, 8, (768, 8)),       # never below one multiple
])
def test_model_size_exact(window, working, multiple, expected):
    assert model_size(window, working, multiple) == expected


@pytest.mark.parametrize("w", [1, 17, 60, 200, 333, 512, 1000, 1999, 4096])
@pytest.mark.parametrize("h", [1, 31, 60, 256, 479, 512, 1500, 3000])
def test_model_size_keeps_aspect_within_rounding(w, h):
    out_w, out_h = model_size((w, h), 512)
    assert out_w % 8 == 0 and out_h % 8 == 0
    scale = min(512 / math.sqrt(w * h), 1.5 * 512 / max(w, h))
    # each side is the exact scaled side snapped to the nearest multiple of 8 (at least 8)
    assert abs(out_w - w * scale) <= 4 or out_w == 8
    assert abs(out_h - h * scale) <= 4 or out_h == 8
    assert max(out_w, out_h) <= 768
    assert out_w * out_h <= (512 + 8) ** 2


@pytest.mark.parametrize("size, scale, multiple, expected", [
    ((100, 60), 1.0, 8, (96, 64)),         # 12.5 -> 12 (round half to even), 7.5 -> 8
    ((1000, 10), 0.5, 32, (512, 32)),      # 15.6 -> 16; never below one multiple
    ((33, 7), 1.0, 1, (33, 7)),            # multiple 1: the size itself
])
def test_snap_size_exact(size, scale, multiple, expected):
    assert snap_size(size, scale, multiple) == expected


@pytest.mark.parametrize("window", [(0, 10), (10, 0), (-1, 5)])
def test_model_size_rejects_empty_windows(window):
    with pytest.raises(InvalidOptionError, match="empty window"):
        model_size(window, 512)


# ---------------------------------------------------------------- outpaint canvases


@pytest.mark.parametrize("anchor, free, expected", [
    ("center", (10, 20), (5, 10)),
    ("center", (11, 21), (5, 10)),     # the odd pixel goes right/bottom
    ("left", (10, 20), (0, 10)),
    ("right", (10, 20), (10, 10)),
    ("top", (10, 20), (5, 0)),
    ("bottom", (10, 20), (5, 20)),
    ("top-left", (10, 20), (0, 0)),
    ("top-right", (10, 20), (10, 0)),
    ("bottom-left", (10, 20), (0, 20)),
    ("bottom-right", (10, 20), (10, 20)),
])
def test_anchor_offset(anchor, free, expected):
    assert anchor_offset(anchor, *free) == expected


@pytest.mark.parametrize("anchor", ["middle", "Center", "", "top left"])
def test_anchor_offset_rejects(anchor):
    with pytest.raises(InvalidOptionError, match="anchor must be one of center, left, right, top, bottom"):
        anchor_offset(anchor, 10, 10)


@pytest.mark.parametrize("kwargs, expected", [
    # 4:3 -> 16:9: width round(300 * 16 / 9) = 533, 133 spare pixels
    (dict(aspect="16:9"), Canvas(533, 300, 66, 0)),
    (dict(aspect="16:9", anchor="left"), Canvas(533, 300, 0, 0)),
    (dict(aspect="16:9", anchor="right"), Canvas(533, 300, 133, 0)),
    (dict(aspect="16:9", anchor="top"), Canvas(533, 300, 66, 0)),          # no spare height
    (dict(aspect="16:9", anchor="bottom-right"), Canvas(533, 300, 133, 0)),
    (dict(aspect=16 / 9), Canvas(533, 300, 66, 0)),                        # a float ratio
    (dict(aspect="1:1"), Canvas(400, 400, 0, 50)),
    (dict(aspect="3:4", anchor="top"), Canvas(400, 533, 0, 0)),
    (dict(aspect="3:4"), Canvas(400, 533, 0, 116)),
    (dict(aspect="3:4", anchor="bottom"), Canvas(400, 533, 0, 233)),
    # expand: L,T,R,B pixels, the anchor is ignored
    (dict(expand="10,20,30,40"), Canvas(440, 360, 10, 20)),
    (dict(expand="10,20,30,40", anchor="bottom-right"), Canvas(440, 360, 10, 20)),
    (dict(expand="50"), Canvas(500, 400, 50, 50)),
    (dict(expand=(0, 0, 100, 0)), Canvas(500, 300, 0, 0)),
    # size: at least the image, placed by the anchor
    (dict(size="500x400"), Canvas(500, 400, 50, 50)),
    (dict(size="500x400", anchor="bottom-right"), Canvas(500, 400, 100, 100)),
    (dict(size="400x301", anchor="bottom"), Canvas(400, 301, 0, 1)),
])
def test_outpaint_canvas(kwargs, expected):
    assert outpaint_canvas((400, 300), **kwargs) == expected


def test_outpaint_canvas_original_window():
    canvas = outpaint_canvas((400, 300), aspect="16:9")
    assert canvas.size == (533, 300)
    assert canvas.original_window((400, 300)) == Window(66, 0, 466, 300)


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"^outpaint needs exactly one of --aspect, --expand or --size$"),
    (dict(aspect="", expand=None), r"^outpaint needs exactly one of --aspect, --expand or --size$"),
    (dict(aspect="16:9", size="800x600"), r"exactly one of .* \(got aspect, size\)"),
    (dict(aspect="16:9", expand="10", size="800x600"), r"\(got aspect, expand, size\)"),
    (dict(size="300x300"), "outpaint size 300x300 is smaller than the image 400x300; it can only grow the canvas"),
    (dict(size="400x299"), "smaller than the image"),
    (dict(size="400x300"), "outpaint would not change the 400x300 canvas; nothing to fill"),
    (dict(aspect="4:3"), "would not change"),
    (dict(expand="0"), "would not change"),
    (dict(aspect="0:1"), "aspect must look like 16:9"),
    (dict(aspect=0.0), "aspect must look like 16:9"),
    (dict(aspect=-1.5), "aspect must look like 16:9"),
    (dict(expand="-10"), "expand must be L,T,R,B"),
    (dict(size="big"), "size must look like WIDTHxHEIGHT"),
    (dict(aspect="16:9", anchor="middle"), "anchor must be one of"),
    (dict(aspect="16:9", max_pixels=150_000), "outpaint canvas 533x300 exceeds the pixel limit 150000"),
])
def test_outpaint_canvas_errors(kwargs, message):
    with pytest.raises(InvalidOptionError, match=message):
        outpaint_canvas((400, 300), **kwargs)


def test_outpaint_canvas_within_pixel_limit():
    assert outpaint_canvas((400, 300), aspect="16:9", max_pixels=533 * 300) == Canvas(533, 300, 66, 0)
