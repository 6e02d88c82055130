"""The one place where images enter and leave promptpaint. Pure Pillow/numpy: no torch here.

Everything that reads pixels goes through :func:`load_image` / :func:`load_mask`, and everything
that writes them goes through :func:`encode_image` / :func:`save_image` / :func:`save_mask`, so
the awkward parts (EXIF orientation, odd modes, 16-bit data, decompression bombs, truncated
files, atomic writes, never clobbering an input) are solved once.

Inside the program images are RGB ``uint8`` arrays (H, W, 3), alpha is kept aside as ``uint8``
(H, W), and masks are ``bool`` (H, W).

Conversion rules for non-8-bit data (files and arrays alike):
- 16-bit integers keep their high byte (``>> 8``), as Pillow itself does for 16-bit RGB PNGs;
  32-bit integer gray (Pillow mode ``I``) is clipped to 0..65535 first;
- floats must lie in [0, 1] and become ``round(v * 255)``; anything else is refused rather than
  silently clipped (a 0..255 float image would otherwise turn white);
- bool becomes 0/255.
"""

from __future__ import annotations

import hashlib
import io
import re
import os
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from promptpaint.errors import (
    ImageLoadError,
    ImageTooLargeError,
    InvalidOptionError,
    OutputExistsError,
    PromptPaintError,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "LoadedImage",
    "ImageSource",
    "load_image",
    "load_mask",
    "resize_image",
    "to_pil",
    "encode_image",
    "format_for_path",
    "check_writable",
    "save_image",
    "save_mask",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_png_metadata",
    "image_hash",
    "max_pixels_limit",
]

DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "PROMPTPAINT_MAX_PIXELS"

PathLike: TypeAlias = str | os.PathLike
ImageSource: TypeAlias = PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray

_SUFFIX_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_FORMAT_ALIASES = {"PNG": "PNG", "JPG": "JPEG", "JPEG": "JPEG", "WEBP": "WEBP", "TIF": "TIFF", "TIFF": "TIFF"}
_HIGH_BIT_GRAY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class LoadedImage:
    """A decoded, upright image: ``rgb`` (H, W, 3) uint8 plus what is needed to write it back.

    ``alpha`` is (H, W) uint8 whenever the source had an alpha channel (even a fully opaque one),
    so outputs can restore it; ``icc_profile`` is the embedded profile the RGB values are in
    (None when they are, or were converted to, plain sRGB).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source: str | None
    format: str | None
    icc_profile: bytes | None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order Pillow and the CLI use."""
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


# --------------------------------------------------------------------------------------------
# limits


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$PROMPTPAINT_MAX_PIXELS``, else the default.

    The environment is read at call time so a server or test can change it without a reload.
    """
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise InvalidOptionError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, got {raw!r}") from None
    if max_pixels <= 0:
        raise InvalidOptionError(f"the pixel limit must be positive, got {max_pixels}")
    return int(max_pixels)


def _check_pixels(size: tuple[int, int], limit: int, name: str) -> None:
    width, height = size
    if width * height > limit:
        raise ImageTooLargeError(
            f"image too large: {name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,}; set {MAX_PIXELS_ENV} to raise it"
        )


def _let_pillow_open(limit: int) -> None:
    """Make Pillow's own bomb guard no stricter than ours (ours runs on the header right after).

    Pillow raises at twice ``MAX_IMAGE_PIXELS``; if a user raised our limit above that, Pillow
    would refuse images we accept, so its threshold is lifted (never lowered).
    """
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit


# --------------------------------------------------------------------------------------------
# loading


def load_image(src: ImageSource, *, max_pixels: int | None = None) -> LoadedImage:
    """Decode ``src`` into an upright RGB uint8 array (+ alpha kept aside).

    ``src`` may be a path, encoded bytes, a binary file object, a PIL image or a numpy array
    (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Raises :class:`ImageLoadError` (one-line message)
    for anything unreadable and :class:`ImageTooLargeError` before decoding an oversized image.
    """
    limit = max_pixels_limit(max_pixels)
    if isinstance(src, np.ndarray):
        return _load_array(src, limit)
    if isinstance(src, Image.Image):
        return _load_pil(src, limit, "<PIL image>", source=None)
    with _open_source(src) as (stream, name, source), _open_image(stream, limit, name) as im:
        return _load_pil(im, limit, name, source=source)


@contextmanager
def _open_source(src: PathLike | bytes | IO[bytes]) -> Iterator[tuple[IO[bytes], str, str | None]]:
    """(binary stream, name for messages, source path or None) for a path, bytes or file object."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.is_dir():
            raise ImageLoadError(f"is a directory, not an image: {path}")
        if not path.exists():
            raise ImageLoadError(f"image not found: {path}")
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise ImageLoadError(f"cannot read image: {path} ({_one_line(exc.strerror or exc)})") from None
        with stream:
            yield stream, str(path), str(path)
    elif isinstance(src, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(src)), "<bytes>", None
    elif hasattr(src, "read"):
        name = getattr(src, "name", None)
        source = str(name) if isinstance(name, (str, os.PathLike)) else None
        yield src, source or "<file object>", source
    else:
        raise InvalidOptionError(f"cannot load an image from {type(src).__name__}")


def _open_image(stream: IO[bytes], limit: int, name: str) -> Image.Image:
    """``Image.open`` (header only), mapping Pillow's failures to typed one-line errors."""
    _let_pillow_open(limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own check follows
            return Image.open(stream)
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (twice its MAX_IMAGE_PIXELS) fired before ours could: name our limit
        # only, not Pillow's too (two limits in one message contradict each other).
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" has {int(found.group(1)):,} pixels," if found else " is"
        raise ImageTooLargeError(
            f"image too large: {name}{size} over the limit of {limit:,}; set {MAX_PIXELS_ENV} to raise it"
        ) from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"not an image (or unsupported format): {name}") from None
    except (MemoryError, PromptPaintError):
        raise
    except Exception as exc:  # Pillow plugins raise many types on malformed headers
        raise ImageLoadError(f"truncated or corrupt image: {name} ({_one_line(exc)})") from None


def _decode(im: Image.Image, name: str) -> None:
    """Force the full decode now so truncation surfaces here, not later as a stray OSError.

    Relies on ``ImageFile.LOAD_TRUNCATED_IMAGES`` being False (Pillow's default), in which case a
    short file raises instead of being silently padded with grey.
    """
    try:
        im.load()
    except (MemoryError, PromptPaintError):
        raise
    except Exception as exc:
        raise ImageLoadError(f"truncated or corrupt image: {name} ({_one_line(exc)})") from None


def _load_pil(im: Image.Image, limit: int, name: str, *, source: str | None) -> LoadedImage:
    """Size check on the (lazy) header first, then decode: that order is what makes the guard work."""
    _check_pixels(im.size, limit, name)
    _decode(im, name)
    fmt = im.format
    icc = im.info.get("icc_profile") or None
    im = _upright(im)
    try:
        rgb, alpha, icc = _pil_to_arrays(im, icc)
    except _ScaleError as exc:
        raise ImageLoadError(f"unsupported pixel values in {name}: {exc}") from None
    except ValueError as exc:  # Pillow: conversion between these modes not supported
        raise ImageLoadError(f"unsupported image mode {im.mode!r}: {name} ({_one_line(exc)})") from None
    return LoadedImage(rgb=rgb, alpha=alpha, source=source, format=fmt, icc_profile=icc)


def _rgb_icc(icc: bytes | None) -> bytes | None:
    """Keep a profile only if it describes RGB data (header bytes 16..20): a gray or CMYK profile
    embedded next to RGB pixels would make the written file invalid."""
    return icc if icc and len(icc) >= 20 and icc[16:20] == b"RGB " else None


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation so arrays are upright; skip the copy when there is none.

    A malformed EXIF block is ignored rather than failing the load: the pixels are still good.
    """
    try:
        if im.getexif().get(_ORIENTATION_TAG, 1) in (None, 1):
            return im
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a decodable image unreadable
        return im


def _pil_to_arrays(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Mode dispatch: returns (rgb, alpha or None, the RGB profile the values are in, if any)."""
    mode = im.mode
    if mode == "CMYK":
        return _rgb_array(_cmyk_to_rgb(im, icc)), None, None  # now sRGB
    icc = _rgb_icc(icc)
    if mode == "I":  # 32-bit gray, in practice 16-bit data from PNG/TIFF
        return _gray_to_rgb(_scale_to_uint8(np.clip(np.asarray(im), 0, 65535).astype(np.uint16))), None, icc
    if mode in _HIGH_BIT_GRAY_MODES:  # I;16 variants, F
        return _gray_to_rgb(_scale_to_uint8(np.asarray(im))), None, icc
    if im.has_transparency_data or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im if mode == "RGBA" else im.convert("RGBA"))
        return _contiguous(rgba[..., :3]), _contiguous(rgba[..., 3]), icc
    if mode == "RGB":
        return _rgb_array(im), None, icc
    if mode in ("L", "1"):
        return _gray_to_rgb(np.asarray(im.convert("L"))), None, icc
    # P without transparency, RGBX, YCbCr, HSV, LAB, ...: Pillow knows the conversion.
    return _rgb_array(im.convert("RGB")), None, icc if mode in ("P", "RGBX") else None


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Use the embedded CMYK profile when LittleCMS can, else Pillow's naive formula."""
    if icc:
        try:
            from PIL import ImageCms

            src_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src_profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - no lcms, or a broken/mismatched profile
            pass
    return im.convert("RGB")


def _load_array(arr: np.ndarray, limit: int) -> LoadedImage:
    """Arrays get the same rules as files: channel layout by shape, value scale by dtype."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise InvalidOptionError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    _check_pixels((arr.shape[1], arr.shape[0]), limit, "<array>")
    try:
        data = _scale_to_uint8(arr)
    except _ScaleError as exc:
        raise InvalidOptionError(f"image array: {exc}") from None
    if data.ndim == 2:
        return LoadedImage(_gray_to_rgb(data), None, None, None, None)
    alpha = _contiguous(data[..., 3]) if data.shape[2] == 4 else None
    return LoadedImage(_contiguous(data[..., :3]), alpha, None, None, None)


class _ScaleError(ValueError):
    """Pixel values that have no unambiguous 8-bit meaning."""


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """The module's value rule (see the module docstring). Other integer types are refused: an
    int64 array of 0..255 values (numpy's default) would otherwise come out black."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "b":
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return (arr.astype(np.uint16) >> 8).astype(np.uint8)
    if arr.dtype.kind == "f":
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (lo >= 0.0 and hi <= 1.0):  # also false for NaN
            raise _ScaleError(f"float values must lie in [0, 1], got {lo:g}..{hi:g}")
        return np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    raise _ScaleError(f"unsupported dtype {arr.dtype} (use uint8, uint16, float in [0, 1] or bool)")


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _rgb_array(im: Image.Image) -> np.ndarray:
    return _contiguous(np.asarray(im))


def _contiguous(arr: np.ndarray) -> np.ndarray:
    """A writable, C-contiguous uint8 copy-or-view: callers may modify what they are given."""
    out = np.ascontiguousarray(arr, dtype=np.uint8)
    return out if out.flags.writeable else out.copy()


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# masks


def load_mask(src: ImageSource | dict, size: tuple[int, int], *, max_pixels: int | None = None) -> np.ndarray:
    """Read a user mask (a file, an image, a 2-D array, or COCO RLE) as bool (H, W) that must be
    exactly ``size`` = (width, height).

    A mask whose RGB is one flat colour but whose alpha varies is an alpha mask (the usual
    "painted transparency" export); otherwise luminance decides. Threshold: value > 127. Masks
    are never resized: a wrong size almost always means the wrong file. 2-D arrays of bool or of
    integer 0/1 are taken as they are.
    """
    if isinstance(src, np.ndarray) and src.ndim == 2 and _is_binary_array(src):
        mask = src.astype(bool)
        name = "<array>"
    elif isinstance(src, dict):  # COCO RLE, as recipes embed a mask
        from promptpaint.core import rle

        try:
            mask = rle.decode(src)
        except Exception as error:  # noqa: BLE001
            raise InvalidOptionError(f"the embedded mask is not valid COCO RLE: {error}") from None
        name = "<embedded>"
    else:
        loaded = load_image(src, max_pixels=max_pixels)
        mask = _mask_values(loaded.rgb, loaded.alpha) > 127
        name = loaded.source or "<mask>"
    got = (int(mask.shape[1]), int(mask.shape[0]))
    want = (int(size[0]), int(size[1]))
    if got != want:
        raise InvalidOptionError(
            f"mask {name} is {got[0]}x{got[1]} but the image is {want[0]}x{want[1]}; masks are not resized"
        )
    return mask


def _is_binary_array(arr: np.ndarray) -> bool:
    """bool, or integers that are all 0/1: a 0/1 label map, not a dark image."""
    if arr.dtype == bool:
        return True
    return arr.dtype.kind in "ui" and bool(((arr == 0) | (arr == 1)).all())


def _mask_values(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Alpha for a flat-colour mask with real transparency, else luminance (gray stays exact)."""
    flat_rgb = bool((rgb == rgb.reshape(-1, 3)[0]).all())
    if alpha is not None and flat_rgb and not bool((alpha == 255).all()):
        return alpha
    weights = np.array([299, 587, 114], dtype=np.uint32)  # ITU-R 601, as Pillow's convert("L")
    return ((rgb.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# resizing


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize RGB uint8 to ``size`` (w, h): area averaging to shrink, Lanczos to enlarge."""
    import cv2  # the one OpenCV call here; loading images needs only Pillow

    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image.copy()
    shrink = size[0] * size[1] < w * h
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)


# --------------------------------------------------------------------------------------------
# encoding and writing


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """RGB (or RGBA when ``alpha`` is given) PIL image from the internal arrays."""
    _check_rgb(rgb)
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha.shape != rgb.shape[:2] or alpha.dtype != np.uint8:
        raise InvalidOptionError(f"alpha must be uint8 {rgb.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    return Image.fromarray(np.ascontiguousarray(np.dstack([rgb, alpha])), "RGBA")


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InvalidOptionError(f"images must be uint8 (H, W, 3) arrays, got {desc}")


def format_for_path(path: PathLike) -> str:
    """Output format from the file suffix; an unknown suffix is refused rather than guessed."""
    suffix = Path(path).suffix.lower()
    try:
        return _SUFFIX_FORMATS[suffix]
    except KeyError:
        choices = ", ".join(_SUFFIX_FORMATS)
        raise InvalidOptionError(
            f"cannot tell the output format of {path} (suffix {suffix or 'missing'}); use one of {choices}"
        ) from None


def encode_image(
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    format: str = "PNG",  # noqa: A002 - mirrors Pillow's keyword
    metadata: Mapping[str, str] | None = None,
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> bytes:
    """Encode to PNG/JPEG/WebP/TIFF bytes.

    PNG stores ``metadata`` as text chunks (tEXt, or iTXt when not Latin-1) so a recipe travels
    with its output; the other formats drop it. JPEG drops alpha. JPEG uses 4:4:4 chroma so
    edited edges do not bleed colour.
    """
    fmt = _FORMAT_ALIASES.get(str(format).upper())
    if fmt is None:
        raise InvalidOptionError(f"unsupported output format {format!r}; use PNG, JPEG, WEBP or TIFF")
    if not 1 <= int(quality) <= 100:
        raise InvalidOptionError(f"quality must be 1..100, got {quality}")
    im = to_pil(rgb, None if fmt == "JPEG" else alpha)
    options: dict[str, Any] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt == "PNG":
        options["pnginfo"] = _png_info(metadata)
    elif fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=int(quality))
    elif fmt == "TIFF":
        options.update(compression="tiff_lzw")
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def _png_info(metadata: Mapping[str, str] | None) -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (metadata or {}).items():
        if not (isinstance(key, str) and 1 <= len(key) <= 79 and key.isprintable() and key.isascii()):
            raise InvalidOptionError(f"PNG metadata keys must be 1-79 printable ASCII characters, got {key!r}")
        info.add_text(key, str(value), zip=len(str(value)) > 1024)
    return info


def save_image(
    path: PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = True,
    protect: Iterable[PathLike | None] = (),
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> Path:
    """Write an image atomically, in the format its suffix names.

    Refuses (:class:`OutputExistsError`) to write over any path in ``protect`` (the inputs) even
    with ``overwrite``, and over an existing file when ``overwrite`` is False.
    """
    path = Path(path)
    fmt = format_for_path(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    data = encode_image(rgb, alpha, format=fmt, metadata=metadata, quality=quality, icc_profile=icc_profile)
    return atomic_write_bytes(path, data)


def encode_mask(mask: np.ndarray) -> bytes:
    """A bool mask as an 8-bit grayscale PNG with 0/255 (lossless, so it reloads exactly)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InvalidOptionError(f"masks must be (H, W), got shape {mask.shape}")
    buf = io.BytesIO()
    # bool -> 0/1 bytes -> 0/255, all in uint8 (np.where would build an int64 array: 7x slower on 12 MP)
    Image.fromarray(mask.astype(bool).view(np.uint8) * np.uint8(255), "L").save(buf, "PNG")
    return buf.getvalue()


def save_mask(
    path: PathLike, mask: np.ndarray, *, overwrite: bool = True, protect: Iterable[PathLike | None] = ()
) -> Path:
    """Write a bool mask with :func:`encode_mask`, atomically."""
    path = Path(path)
    if format_for_path(path) != "PNG":
        raise InvalidOptionError(f"masks are written as PNG; use a .png path, not {path}")
    data = encode_mask(mask)
    check_writable(path, overwrite=overwrite, protect=protect)
    return atomic_write_bytes(path, data)


def check_writable(path: PathLike, *, overwrite: bool, protect: Iterable[PathLike | None]) -> None:
    """The overwrite rule: never an input (``protect``), even with ``overwrite``; never an existing
    file without ``overwrite``; never a directory."""
    path = Path(path)
    for other in protect:
        if other is not None and isinstance(other, (str, os.PathLike)) and _same_file(path, Path(other)):
            raise OutputExistsError(f"refusing to overwrite the input {other} with the output {path}")
    if path.is_dir():
        raise OutputExistsError(f"output path is a directory: {path}")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output exists: {path} (pass --overwrite to replace it)")


def _same_file(a: Path, b: Path) -> bool:
    """Same file by inode when both exist (catches hard links and case-insensitive names)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write via a temp file in the same directory, fsync, then ``os.replace``.

    Readers never see a half-written file and an interrupted run leaves the old file intact.
    Parent directories are created. The new file gets the old file's permissions, or the
    usual umask-based ones (mkstemp's 0600 would surprise users).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PromptPaintError(f"cannot write {path}: {_one_line(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise PromptPaintError(f"cannot write {path}: {_one_line(exc)}") from None
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Text flavour of :func:`atomic_write_bytes` (JSON recipes, reports)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _read_umask() -> int:
    """os.umask can only be read by setting it; done once at import, before threads start."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _remove_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; best effort (not possible on every OS/filesystem)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# metadata and hashing


def read_png_metadata(src: PathLike | bytes | IO[bytes]) -> dict[str, str]:
    """The text chunks (tEXt/zTXt/iTXt) of a PNG, e.g. a recipe written by :func:`save_image`."""
    with _open_source(src) as (stream, name, _source):
        limit = max_pixels_limit()
        with _open_image(stream, limit, name) as im:
            if im.format != "PNG":
                raise ImageLoadError(f"not a PNG ({im.format}): {name}")
            _check_pixels(im.size, limit, name)
            _decode(im, name)  # text chunks after the image data are only read by load()
            return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}


def image_hash(rgb: np.ndarray) -> str:
    """A fast content key for caches: blake2b over dtype, shape and bytes (32 hex chars)."""
    arr = np.ascontiguousarray(rgb)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()
