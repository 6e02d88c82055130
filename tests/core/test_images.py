"""promptpaint.core.images: every way an image enters or leaves the program."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from promptpaint.core import images
from promptpaint.core.images import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    atomic_write_bytes,
    atomic_write_text,
    encode_image,
    format_for_path,
    image_hash,
    load_image,
    load_mask,
    read_png_metadata,
    save_image,
    save_mask,
    to_pil,
)
from promptpaint.errors import ImageLoadError, ImageTooLargeError, InvalidOptionError, OutputExistsError

# A 2x3 (H x W) image whose six pixels are all different, so any flip/rotation is visible.
PIXELS = np.array(
    [
        [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
        [[255, 255, 0], [0, 255, 255], [255, 0, 255]],
    ],
    dtype=np.uint8,
)


def _save(im: Image.Image, path: Path, fmt: str | None = None, **options) -> Path:
    im.save(path, fmt, **options)
    return path


def _png16(array: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = array.shape[:2]
    big_endian = array.astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in big_endian)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# ------------------------------------------------------------------------------------------
# orientation

ORIENTATIONS = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),  # stored rotated; display turns it 90 degrees clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_gives_upright_array(tmp_path, fmt, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(Image.fromarray(PIXELS), tmp_path / f"o{orientation}.{fmt.lower()}", fmt, exif=exif)

    loaded = load_image(path)

    expected = ORIENTATIONS[orientation](PIXELS)
    np.testing.assert_array_equal(loaded.rgb, expected)
    assert loaded.size == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg(tmp_path, orientation):
    """JPEG is lossy: big flat blocks, compared at block centres with a tolerance."""
    blocks = np.kron(PIXELS, np.ones((16, 16, 1), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(Image.fromarray(blocks), tmp_path / "o.jpg", "JPEG", exif=exif, quality=95)

    rgb = load_image(path).rgb

    expected = ORIENTATIONS[orientation](PIXELS)
    assert rgb.shape == (expected.shape[0] * 16, expected.shape[1] * 16, 3)
    centres = rgb[8::16, 8::16].astype(int)
    assert np.abs(centres - expected.astype(int)).max() <= 8


# ------------------------------------------------------------------------------------------
# modes


def test_gray_l_is_replicated_exactly(tmp_path):
    gray = np.array([[0, 1, 127], [128, 254, 255]], dtype=np.uint8)
    loaded = load_image(_save(Image.fromarray(gray, "L"), tmp_path / "g.png"))
    np.testing.assert_array_equal(loaded.rgb, np.dstack([gray] * 3))
    assert loaded.alpha is None and loaded.format == "PNG"


def test_bilevel_mode_1_becomes_0_or_255(tmp_path):
    bits = np.array([[True, False], [False, True]])
    loaded = load_image(_save(Image.fromarray(bits), tmp_path / "b.png"))
    np.testing.assert_array_equal(loaded.rgb[..., 0], np.where(bits, 255, 0))


GRAY16 = np.array([[0, 255, 256, 1000], [32767, 32768, 65280, 65535]], dtype=np.uint16)


def test_16bit_gray_png_keeps_high_byte(tmp_path):
    path = _save(Image.fromarray(GRAY16), tmp_path / "g16.png")
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    loaded = load_image(path)
    expected = (GRAY16 >> 8).astype(np.uint8)  # 0, 0, 1, 3, 127, 128, 255, 255: scaled, not clipped
    np.testing.assert_array_equal(loaded.rgb, np.dstack([expected] * 3))


def test_16bit_gray_tiff_keeps_high_byte(tmp_path):
    loaded = load_image(_save(Image.fromarray(GRAY16), tmp_path / "g16.tif"))
    np.testing.assert_array_equal(loaded.rgb[..., 1], GRAY16 >> 8)


def test_32bit_int_gray_is_clipped_to_16_bits_then_scaled():
    im = Image.fromarray(np.array([[-5, 256, 65535, 70000]], dtype=np.int32), "I")
    np.testing.assert_array_equal(load_image(im).rgb[..., 0], [[0, 1, 255, 255]])


@pytest.mark.parametrize(("color_type", "channels"), [(2, 3), (6, 4)])
def test_16bit_rgb_and_rgba_png(color_type, channels):
    values = np.array([[[65535, 257, 1000, 65535], [300, 40000, 65280, 0]]], dtype=np.uint16)[..., :channels]
    loaded = load_image(_png16(values, color_type))
    np.testing.assert_array_equal(loaded.rgb, values[..., :3] >> 8)
    if channels == 4:
        np.testing.assert_array_equal(loaded.alpha, values[..., 3] >> 8)
    else:
        assert loaded.alpha is None


def test_float_gray_mode_f():
    im = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    np.testing.assert_array_equal(load_image(im).rgb[..., 2], [[0, 128, 255]])


def test_palette_with_transparency_gives_rgb_and_alpha(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    im.putdata([0, 1, 2])
    path = _save(im, tmp_path / "p.png", transparency=1)

    loaded = load_image(path)

    np.testing.assert_array_equal(loaded.rgb, [[[10, 20, 30], [40, 50, 60], [70, 80, 90]]])
    np.testing.assert_array_equal(loaded.alpha, [[255, 0, 255]])


def test_palette_without_transparency_gives_rgb_only(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([1, 2, 3, 4, 5, 6])
    im.putdata([1, 0])
    loaded = load_image(_save(im, tmp_path / "p.png"))
    np.testing.assert_array_equal(loaded.rgb, [[[4, 5, 6], [1, 2, 3]]])
    assert loaded.alpha is None


def test_rgba_alpha_is_kept_exactly(tmp_path):
    alpha = np.array([[0, 1, 2], [128, 254, 255]], dtype=np.uint8)
    path = _save(Image.fromarray(np.dstack([PIXELS, alpha]), "RGBA"), tmp_path / "a.png")
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.rgb, PIXELS)
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_opaque_alpha_is_still_kept(tmp_path):
    path = _save(Image.fromarray(np.dstack([PIXELS, np.full((2, 3), 255, np.uint8)]), "RGBA"), tmp_path / "a.png")
    loaded = load_image(path)
    assert loaded.alpha is not None and loaded.has_alpha
    assert (loaded.alpha == 255).all()


def test_la_gives_gray_rgb_and_alpha(tmp_path):
    la = np.array([[[10, 0], [200, 99]]], dtype=np.uint8)
    loaded = load_image(_save(Image.fromarray(la, "LA"), tmp_path / "la.png"))
    np.testing.assert_array_equal(loaded.rgb, [[[10] * 3, [200] * 3]])
    np.testing.assert_array_equal(loaded.alpha, [[0, 99]])


CMYK_CASES = [
    ((255, 0, 0, 0), (0, 255, 255)),  # cyan
    ((0, 255, 0, 0), (255, 0, 255)),  # magenta
    ((0, 0, 255, 0), (255, 255, 0)),  # yellow
    ((0, 0, 0, 255), (0, 0, 0)),  # black
    ((0, 0, 0, 0), (255, 255, 255)),  # paper
]


@pytest.mark.parametrize(("cmyk", "rgb"), CMYK_CASES)
def test_cmyk_tiff_exact(tmp_path, cmyk, rgb):
    loaded = load_image(_save(Image.new("CMYK", (4, 2), cmyk), tmp_path / "c.tif"))
    assert loaded.rgb.shape == (2, 4, 3)
    assert (loaded.rgb == rgb).all()
    assert loaded.icc_profile is None


@pytest.mark.parametrize(("cmyk", "rgb"), CMYK_CASES)
def test_cmyk_jpeg_close(tmp_path, cmyk, rgb):
    loaded = load_image(_save(Image.new("CMYK", (16, 16), cmyk), tmp_path / "c.jpg", quality=95))
    assert np.abs(loaded.rgb.astype(int) - rgb).max() <= 3


def test_cmyk_with_unusable_profile_falls_back_to_plain_conversion(tmp_path):
    path = _save(Image.new("CMYK", (2, 2), (255, 0, 0, 0)), tmp_path / "c.tif", icc_profile=b"not a profile")
    assert (load_image(path).rgb == (0, 255, 255)).all()


@pytest.mark.parametrize(
    ("mode", "colour"),
    [("YCbCr", (10, 200, 30)), ("HSV", (10, 200, 30)), ("LAB", (10, 200, 30)), ("RGBX", (1, 2, 3, 0))],
)
def test_other_colour_modes_use_pillow_conversion(mode, colour):
    im = Image.new(mode, (2, 2), colour)
    np.testing.assert_array_equal(load_image(im).rgb, np.asarray(im.convert("RGB")))


def test_rgb_icc_profile_is_carried_and_written_back(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image(_save(Image.fromarray(PIXELS), tmp_path / "i.png", icc_profile=icc))
    assert loaded.icc_profile == icc
    out = save_image(tmp_path / "o.png", loaded.rgb, icc_profile=loaded.icc_profile)
    with Image.open(out) as im:
        assert im.info["icc_profile"] == icc


def test_gray_icc_profile_is_not_carried_onto_rgb(tmp_path):
    from PIL import ImageCms

    gray_icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    gray_icc[16:20] = b"GRAY"
    path = _save(Image.new("L", (2, 2), 5), tmp_path / "g.png", icc_profile=bytes(gray_icc))
    assert load_image(path).icc_profile is None


# ------------------------------------------------------------------------------------------
# sources


def test_bytes_file_object_and_pil_sources(tmp_path):
    path = _save(Image.fromarray(PIXELS), tmp_path / "s.png")
    data = path.read_bytes()
    with open(path, "rb") as handle:
        from_file = load_image(handle)
    from_bytes = load_image(data)
    from_pil = load_image(Image.open(io.BytesIO(data)))
    from_str = load_image(str(path))
    for loaded in (from_file, from_bytes, from_pil, from_str):
        np.testing.assert_array_equal(loaded.rgb, PIXELS)
        assert isinstance(loaded, LoadedImage)
    assert from_file.source == str(path) and from_str.source == str(path)
    assert from_bytes.source is None and from_bytes.format == "PNG"


ARRAY_CASES = {
    "uint8 rgb": (PIXELS, PIXELS, None),
    "uint8 gray": (np.array([[0, 7], [200, 255]], np.uint8), np.dstack([[[0, 7], [200, 255]]] * 3), None),
    "gray hxwx1": (np.array([[[9], [10]]], np.uint8), [[[9] * 3, [10] * 3]], None),
    "uint16 rgb": (np.array([[[65535, 256, 255]]], np.uint16), [[[255, 1, 0]]], None),
    "uint16 gray": (np.array([[513, 65535]], np.uint16), [[[2] * 3, [255] * 3]], None),
    "float rgb": (np.array([[[0.0, 0.5, 1.0]]], np.float32), [[[0, 128, 255]]], None),
    "float gray": (np.array([[0.2, 0.999]], np.float64), [[[51] * 3, [255] * 3]], None),
    "bool gray": (np.array([[True, False]]), [[[255] * 3, [0] * 3]], None),
    "uint8 rgba": (np.array([[[1, 2, 3, 4]]], np.uint8), [[[1, 2, 3]]], [[4]]),
    "float rgba": (np.array([[[1.0, 0.0, 0.0, 0.5]]], np.float32), [[[255, 0, 0]]], [[128]]),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_numpy_inputs(case):
    array, rgb, alpha = ARRAY_CASES[case]
    loaded = load_image(array)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    np.testing.assert_array_equal(loaded.rgb, np.asarray(rgb, np.uint8))
    if alpha is None:
        assert loaded.alpha is None
    else:
        np.testing.assert_array_equal(loaded.alpha, alpha)
    assert loaded.source is None and loaded.format is None


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.array([[0.0, 255.0]], np.float32), "[0, 1]"),
        (np.array([[np.nan, 0.5]], np.float32), "[0, 1]"),
        (np.array([[0, 255]], np.int64), "int64"),
        (np.zeros((2, 2, 2), np.uint8), "shape"),
        (np.zeros((0, 2, 3), np.uint8), "shape"),
        (np.zeros((2, 2, 3, 1), np.uint8), "shape"),
    ],
)
def test_bad_arrays_are_refused(array, fragment):
    with pytest.raises(InvalidOptionError) as exc:
        load_image(array)
    assert fragment in _assert_one_line(exc)


def test_unsupported_source_type():
    with pytest.raises(InvalidOptionError):
        load_image(12345)


# ------------------------------------------------------------------------------------------
# limits and errors


def _big_truncated_png(width: int, height: int) -> bytes:
    """A PNG header promising width x height pixels, followed by one tiny row of pixel data."""
    full = _png16(np.zeros((1, 1, 3), np.uint16), 2)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    idat = full[8 + 25 : -12]  # the IDAT chunk of the 1x1 image; no IEND
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    """The file has no pixel data: reaching the decoder would report truncation instead."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_big_truncated_png(4000, 3000))
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(path, max_pixels=1_000_000)
    message = _assert_one_line(exc)
    assert str(path) in message and "4000x3000" in message and "1,000,000" in message
    assert "PROMPTPAINT_MAX_PIXELS" in message
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path, max_pixels=20_000_000)


def test_pixel_limit_from_environment_read_at_call_time(tmp_path, monkeypatch):
    path = _save(Image.fromarray(PIXELS), tmp_path / "s.png")
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "5")
    with pytest.raises(ImageTooLargeError):
        load_image(path)
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "6")
    assert load_image(path).size == (3, 2)
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "lots")
    with pytest.raises(InvalidOptionError, match="PROMPTPAINT_MAX_PIXELS"):
        load_image(path)
    monkeypatch.delenv("PROMPTPAINT_MAX_PIXELS")
    assert images.max_pixels_limit() == DEFAULT_MAX_PIXELS == 64_000_000


@pytest.mark.parametrize("source", ["array", "pil"])
def test_pixel_limit_applies_to_in_memory_images(source):
    image = PIXELS if source == "array" else Image.fromarray(PIXELS)
    with pytest.raises(ImageTooLargeError):
        load_image(image, max_pixels=5)


def test_pillow_decompression_bomb_becomes_image_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    data = encode_image(np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(data, max_pixels=5)
    _assert_one_line(exc)


def test_an_image_over_pillows_own_guard_names_one_limit(tmp_path):
    """#10 item 9: past twice Pillow's MAX_IMAGE_PIXELS its guard fires before ours; the message
    said "exceeds limit of 178956970 pixels ...; the limit is 64,000,000 pixels"."""
    path = tmp_path / "huge.png"
    path.write_bytes(_big_truncated_png(20000, 10000))
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(path)
    assert _assert_one_line(exc) == (f"image too large: {path} has 200,000,000 pixels, over the limit of "
                                     "64,000,000; set PROMPTPAINT_MAX_PIXELS to raise it")


def _truncated_jpeg() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode_image(noise, format="JPEG")
    return data[: len(data) // 2]


ERROR_CASES = {
    "missing": (lambda d: d / "nope.png", "image not found: {path}"),
    "directory": (lambda d: d, "is a directory, not an image: {path}"),
    "text": (
        lambda d: _write(d / "notes.png", b"hello, not an image\n"),
        "not an image (or unsupported format): {path}",
    ),
    "empty": (lambda d: _write(d / "empty.jpg", b""), "not an image (or unsupported format): {path}"),
    "truncated jpeg": (lambda d: _write(d / "cut.jpg", _truncated_jpeg()), "truncated or corrupt image: {path} ("),
    "truncated png": (
        lambda d: _write(d / "cut.png", encode_image(np.full((32, 32, 3), 7, np.uint8))[:60]),
        "truncated or corrupt image: {path} (",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_unreadable_inputs_raise_one_line_image_load_error(tmp_path, case):
    make, expected = ERROR_CASES[case]
    path = make(tmp_path)
    with pytest.raises(ImageLoadError) as exc:
        load_image(path)
    assert type(exc.value) is ImageLoadError
    message = _assert_one_line(exc)
    assert message.startswith(expected.format(path=path))
    assert exc.value.__cause__ is None  # no chained Pillow/OS traceback under the message
    assert exc.value.__context__ is None or exc.value.__suppress_context__


def test_truncated_bytes_name_the_source():
    with pytest.raises(ImageLoadError, match=r"^truncated or corrupt image: <bytes> \("):
        load_image(_truncated_jpeg())


# ------------------------------------------------------------------------------------------
# masks


def test_load_mask_size_mismatch_names_both_sizes(tmp_path):
    path = _save(Image.new("L", (4, 3)), tmp_path / "m.png")
    with pytest.raises(InvalidOptionError) as exc:
        load_mask(path, (3, 4))
    message = _assert_one_line(exc)
    assert "4x3" in message and "3x4" in message


def test_load_mask_threshold_on_gray(tmp_path):
    gray = np.array([[0, 127, 128, 255]], np.uint8)
    mask = load_mask(_save(Image.fromarray(gray), tmp_path / "m.png"), (4, 1))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, [[False, False, True, True]])


def test_load_mask_uses_alpha_when_rgb_is_flat(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[..., 3] = [0, 200, 100]
    mask = load_mask(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "m.png"), (3, 1))
    np.testing.assert_array_equal(mask, [[False, True, False]])


def test_load_mask_uses_luminance_when_rgb_varies(tmp_path):
    rgba = np.array([[[255, 255, 255, 0], [255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 0, 255]]], np.uint8)
    mask = load_mask(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "m.png"), (4, 1))
    # luminance: 255, 76 (red), 150 (green), 0
    np.testing.assert_array_equal(mask, [[True, False, True, False]])


def test_opaque_black_rgba_mask_is_empty(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    assert not load_mask(Image.fromarray(rgba, "RGBA"), (2, 2)).any()


@pytest.mark.parametrize(
    "array",
    [
        np.array([[True, False]]),
        np.array([[1, 0]], np.uint8),
        np.array([[1, 0]], np.int64),
        np.array([[255, 0]], np.uint8),
        np.array([[1.0, 0.0]], np.float32),
    ],
)
def test_load_mask_from_arrays(array):
    np.testing.assert_array_equal(load_mask(array, (2, 1)), [[True, False]])


def test_save_mask_round_trips_as_l_png(tmp_path):
    mask = np.array([[True, False, True], [False, False, True]])
    path = save_mask(tmp_path / "sub" / "mask.png", mask)
    with Image.open(path) as im:
        assert im.mode == "L" and im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), np.where(mask, 255, 0))
    np.testing.assert_array_equal(load_mask(path, (3, 2)), mask)
    with pytest.raises(InvalidOptionError):
        save_mask(tmp_path / "mask.jpg", mask)


# ------------------------------------------------------------------------------------------
# encoding and saving


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.png", "PNG"),
        ("a.PNG", "PNG"),
        ("a.jpg", "JPEG"),
        ("b.jpeg", "JPEG"),
        ("c.webp", "WEBP"),
        ("d.tif", "TIFF"),
        ("e.tiff", "TIFF"),
        ("dir.v2/f.png", "PNG"),
    ],
)
def test_format_for_path(name, fmt):
    assert format_for_path(name) == fmt


@pytest.mark.parametrize("name", ["a.gif", "a.bmp", "noext", "a.png.bak"])
def test_format_for_unknown_suffix_is_refused(name):
    with pytest.raises(InvalidOptionError, match="output format"):
        format_for_path(name)


def test_to_pil_modes():
    alpha = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    assert to_pil(PIXELS).mode == "RGB"
    rgba = to_pil(PIXELS, alpha)
    assert rgba.mode == "RGBA" and rgba.size == (3, 2)
    np.testing.assert_array_equal(np.asarray(rgba)[..., 3], alpha)
    with pytest.raises(InvalidOptionError):
        to_pil(PIXELS.astype(np.float32))
    with pytest.raises(InvalidOptionError):
        to_pil(PIXELS, alpha[:1])


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "tif", "png"])
def test_lossless_encodings_round_trip_with_alpha(fmt):
    alpha = np.array([[0, 10, 20], [30, 40, 255]], np.uint8)
    loaded = load_image(encode_image(PIXELS, alpha, format=fmt))
    np.testing.assert_array_equal(loaded.rgb, PIXELS)
    np.testing.assert_array_equal(loaded.alpha, alpha)


def test_jpeg_drops_alpha_and_webp_keeps_it():
    alpha = np.full((2, 3), 100, np.uint8)
    assert Image.open(io.BytesIO(encode_image(PIXELS, alpha, format="JPEG"))).mode == "RGB"
    webp = Image.open(io.BytesIO(encode_image(PIXELS, alpha, format="WEBP")))
    assert webp.format == "WEBP" and webp.mode == "RGBA"


def test_encode_rejects_bad_options():
    with pytest.raises(InvalidOptionError):
        encode_image(PIXELS, format="GIF")
    with pytest.raises(InvalidOptionError):
        encode_image(PIXELS, format="JPEG", quality=0)
    with pytest.raises(InvalidOptionError):
        encode_image(PIXELS, metadata={"": "x"})


def test_png_metadata_round_trips(tmp_path):
    metadata = {"promptpaint": '{"op": "remove", "prompt": "the dog"}', "unicode": "café ☕ 猫", "long": "x" * 5000}
    path = save_image(tmp_path / "out.png", PIXELS, metadata=metadata)
    assert read_png_metadata(path) == metadata
    assert read_png_metadata(path.read_bytes()) == metadata
    with open(path, "rb") as handle:
        assert read_png_metadata(handle) == metadata
    assert read_png_metadata(save_image(tmp_path / "plain.png", PIXELS)) == {}


def test_read_png_metadata_errors(tmp_path):
    with pytest.raises(ImageLoadError, match="not a PNG"):
        read_png_metadata(encode_image(PIXELS, format="JPEG"))
    with pytest.raises(ImageLoadError, match="image not found"):
        read_png_metadata(tmp_path / "missing.png")


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_save_image_is_atomic_and_round_trips(tmp_path):
    alpha = np.array([[0, 1, 2], [253, 254, 255]], np.uint8)
    target = tmp_path / "new" / "dir" / "out.png"

    written = save_image(target, PIXELS, alpha)

    assert written == target
    assert _listing(target.parent) == ["out.png"]  # no temp file left behind
    assert (os.stat(target).st_mode & 0o777) == (0o666 & ~images._UMASK)  # not mkstemp's 0600
    loaded = load_image(target)
    np.testing.assert_array_equal(loaded.rgb, PIXELS)
    np.testing.assert_array_equal(loaded.alpha, alpha)

    save_image(target, PIXELS[::-1].copy())  # overwrite=True by default
    np.testing.assert_array_equal(load_image(target).rgb, PIXELS[::-1])
    assert load_image(target).alpha is None
    assert _listing(target.parent) == ["out.png"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = _write(tmp_path / "out.png", b"old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.os, "replace", boom)
    with pytest.raises(images.PromptPaintError, match="cannot write .*No space left"):
        save_image(target, PIXELS)
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]


def test_save_image_refuses_to_overwrite_a_protected_input(tmp_path, monkeypatch):
    source = _save(Image.fromarray(PIXELS), tmp_path / "in.png")
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    spellings = [source, "in.png", tmp_path / "sub" / ".." / "in.png"]
    for spelling in spellings:
        with pytest.raises(OutputExistsError) as exc:
            save_image(spelling, np.zeros((2, 3, 3), np.uint8), overwrite=True, protect=[None, source])
        _assert_one_line(exc)
    hardlink = tmp_path / "link.png"
    os.link(source, hardlink)
    with pytest.raises(OutputExistsError):
        save_image(hardlink, PIXELS, protect=[str(source)])
    assert source.read_bytes() == before


def test_save_image_refuses_existing_output_without_overwrite(tmp_path):
    target = _write(tmp_path / "out.png", b"keep me")
    with pytest.raises(OutputExistsError, match="output exists"):
        save_image(target, PIXELS, overwrite=False)
    assert target.read_bytes() == b"keep me"
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputExistsError, match="directory"):
        save_image(tmp_path / "d.png", PIXELS)


def test_save_image_format_follows_suffix(tmp_path):
    for name, fmt in [("a.jpg", "JPEG"), ("a.webp", "WEBP"), ("a.tiff", "TIFF")]:
        assert load_image(save_image(tmp_path / name, PIXELS)).format == fmt
    with pytest.raises(InvalidOptionError):
        save_image(tmp_path / "a.gif", PIXELS)
    assert not (tmp_path / "a.gif").exists()


def test_atomic_write_text_and_bytes(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "recipe.json", '{"k": "é"}\n')
    assert path.read_text(encoding="utf-8") == '{"k": "é"}\n'
    path.chmod(0o640)
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert (path.stat().st_mode & 0o777) == 0o640  # existing permissions preserved
    assert _listing(path.parent) == ["recipe.json"]


# ------------------------------------------------------------------------------------------
# hashing


def test_image_hash():
    key = image_hash(PIXELS)
    assert len(key) == 32 and int(key, 16) >= 0
    assert image_hash(PIXELS.copy()) == key
    assert image_hash(np.asfortranarray(PIXELS)) == key  # layout does not matter, content does
    changed = PIXELS.copy()
    changed[0, 0, 0] = 254
    assert image_hash(changed) != key
    assert image_hash(PIXELS.reshape(3, 2, 3)) != key  # same bytes, other shape


def test_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, promptpaint.core.images; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
