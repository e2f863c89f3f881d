"""Decode CT slices into uint8 grayscale arrays of 256x256.

Every image that reaches the rest of synthscope goes through `decode_image_bytes`, so palette,
RGB, 16-bit and odd-sized files are handled in one place and each conversion is reported.
"""

from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SIZE = 256
#: the most pixels an image may have to be decoded at all: 2048x2048, sixteen times a scanner's 512x512
#: slice (a 16-bit one decodes to 8 MB). The size is read from the file's header first, so a larger
#: image (a decompression bomb: 12000x12000 16-bit zeros are 280 KB of PNG and 3.5 GB decoded) is
#: refused before any pixel is decoded.
MAX_PIXELS = 2048 * 2048
SIZE_POLICIES = ("error", "resize", "center_crop")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})

# Conversions a caller may want to hear about; the key is a short kind, aggregated in load reports.
NOTE_MESSAGES = {
    "palette": "palette image converted to grayscale",
    "rgb_gray": "RGB image with equal channels converted to grayscale",
    "rgb_colour": "RGB image with colour converted to grayscale (luma); colour information is lost",
    "alpha": "alpha channel dropped",
    "16bit": "16-bit image rescaled to 8 bits (value * 255 / 65535)",
    "float": "floating-point image min-max rescaled to 8 bits",
    "resized": "image resized to 256x256",
    "center_cropped": "image centre-cropped/padded to 256x256",
    "multiframe": "multi-frame file: only the first frame was read",
    "16bit_dark": "16-bit image uses 12 bits or fewer, so the 8-bit rescale is very dark (window it yourself if that matters)",
}
# Only lossy or geometric changes are raised as Python warnings by read_image.
_WARN_KINDS = {"rgb_colour", "float", "resized", "center_cropped", "multiframe", "16bit_dark"}


class ImageReadError(ValueError):
    """An image file that cannot be decoded into a 256x256 uint8 slice; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "unreadable"):
        self.path = str(path)
        self.reason = reason
        self.kind = kind  # "unreadable" | "size" (decodable, but not 256x256 under size_policy="error")
        super().__init__(f"{self.path}: {reason}")


class ImageConversionWarning(UserWarning):
    """A decoded image needed a lossy conversion (colour to gray, resize, crop, float rescale)."""


@dataclass
class DecodedImage:
    array: np.ndarray  # uint8 [256, 256]
    notes: list[str] = field(default_factory=list)  # keys of NOTE_MESSAGES
    original_size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)  # (height, width) before the size policy


def check_size_policy(size_policy: str) -> None:
    if size_policy not in SIZE_POLICIES:
        raise ValueError(f"size_policy must be one of {', '.join(SIZE_POLICIES)}; got {size_policy!r}")


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_gray_array(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Pixel data as a 2-D uint8 array, converting mode by mode."""
    mode = image.mode
    if mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode == "P" or mode == "PA":
        notes.append("palette")
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "LA":
        notes.append("alpha")
        return np.asarray(image.getchannel("L"), dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image)   # uint16 or int32: compared and scaled as they are, no int64 copy
        if mode == "I" and (values.min() < 0 or values.max() > 65535):
            notes.append("float")
            return _minmax_uint8(values.astype(np.float64))
        if mode == "I" and values.max() <= 255:
            # 8-bit data in a 32-bit container (some TIFF writers): nothing to rescale.
            return values.astype(np.uint8)
        notes.append("16bit")
        if values.max() < 4096:
            notes.append("16bit_dark")
        scaled = values * (255.0 / 65535.0)   # float64, as before: the same pixels
        return np.round(scaled, out=scaled).astype(np.uint8)
    if mode == "F":
        notes.append("float")
        return _minmax_uint8(np.asarray(image, dtype=np.float64))
    if mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
        mode = image.mode
    if mode == "RGBA":
        if "palette" not in notes:
            notes.append("alpha")
        image = image.convert("RGB")
    rgb = np.asarray(image, dtype=np.uint8)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        if "palette" not in notes:
            notes.append("rgb_gray")
        return np.ascontiguousarray(rgb[..., 0])
    notes.append("rgb_colour")
    # ITU-R 601-2 luma, PIL's own RGB -> L conversion.
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _minmax_uint8(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = values[finite].min(), values[finite].max()
    scaled = np.zeros(values.shape) if high == low else (values - low) / (high - low) * 255.0
    scaled[~finite] = 0
    return np.round(scaled).astype(np.uint8)


def _center_crop_or_pad(array: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Keep the pixel grid (generator fingerprints live in it): crop the centre, pad with black if smaller."""
    out = np.zeros((size, size), dtype=np.uint8)
    h, w = array.shape
    src_top, src_left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    dst_top, dst_left = max((size - h) // 2, 0), max((size - w) // 2, 0)
    ch, cw = min(h, size), min(w, size)
    out[dst_top : dst_top + ch, dst_left : dst_left + cw] = array[src_top : src_top + ch, src_left : src_left + cw]
    return out


def _wrong_size(width: int, height: int) -> str:
    return (f"size {width}x{height} is not {IMAGE_SIZE}x{IMAGE_SIZE} "
            "(choose size_policy 'resize' or 'center_crop' to accept it)")


def decode_image_bytes(data: bytes, name: str = "<bytes>", size_policy: str = "error") -> DecodedImage:
    """Decode encoded image bytes into a uint8 [256, 256] array; raises ImageReadError naming `name`."""
    check_size_policy(size_policy)
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():   # Pillow warns from 89 MP up; the limit below is far lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))   # reads the header only
        with opened as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageReadError(
                    name, f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is more than the "
                    f"{MAX_PIXELS / 1e6:.1f} megapixels synthscope decodes; not decoded (a decompression bomb, or "
                    "an image far larger than a CT slice: downscale it first)")
            if size_policy == "error" and (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
                raise ImageReadError(name, _wrong_size(width, height), kind="size")   # no need to decode it
            image.load()
            notes: list[str] = []
            if getattr(image, "n_frames", 1) > 1:
                notes.append("multiframe")
            array = _to_gray_array(image, notes)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(name, f"refused: {error}") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for corrupt data; skip, never crash
        # Truncated PNGs and bad zlib streams surface as OSError/SyntaxError from Pillow.
        raise ImageReadError(name, f"corrupt image: {error}") from None
    if array.ndim != 2:
        raise ImageReadError(name, f"unexpected pixel array shape {array.shape}")
    original = (int(array.shape[0]), int(array.shape[1]))
    if original != (IMAGE_SIZE, IMAGE_SIZE):
        if size_policy == "error":
            raise ImageReadError(name, _wrong_size(original[1], original[0]), kind="size")
        if size_policy == "resize":
            resized = Image.fromarray(array).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
            array = np.asarray(resized, dtype=np.uint8)
            notes.append("resized")
        else:
            array = _center_crop_or_pad(array)
            notes.append("center_cropped")
    return DecodedImage(array=np.ascontiguousarray(array, dtype=np.uint8), notes=notes, original_size=original)


def read_image_file(path: str | os.PathLike, size_policy: str = "error") -> tuple[DecodedImage, bytes]:
    """Decode one file and also return its bytes (callers hash them without a second read)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImageReadError(path, f"cannot read file: {error.strerror or error}") from None
    return decode_image_bytes(data, str(path), size_policy), data


def read_image(path: str | os.PathLike, size_policy: str = "error") -> np.ndarray:
    """One image as uint8 [256, 256]. Lossy conversions raise an ImageConversionWarning."""
    decoded, _ = read_image_file(path, size_policy)
    for note in decoded.notes:
        if note in _WARN_KINDS:
            warnings.warn(f"{path}: {NOTE_MESSAGES[note]}", ImageConversionWarning, stacklevel=2)
    return decoded.array


def default_workers() -> int:
    # Pillow releases the GIL while inflating PNGs, so threads scale with cores; a few extra hide file I/O.
    return max(2, min(16, (os.cpu_count() or 2) * 2))


def map_threaded(function, items: Sequence, workers: int | None = None) -> list:
    """`[function(x) for x in items]` on a thread pool, in order; small inputs stay on this thread."""
    if len(items) < 8:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(function, items, chunksize=max(1, len(items) // (4 * (workers or default_workers())))))


def load_images(paths: Iterable[str | os.PathLike], size_policy: str = "error", *, workers: int | None = None) -> np.ndarray:
    """Decode many images in parallel into uint8 [n, 256, 256]; the first unreadable file raises ImageReadError."""
    check_size_policy(size_policy)
    paths = list(paths)
    out = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)

    def decode_into(index: int) -> None:
        decoded, _ = read_image_file(paths[index], size_policy)
        out[index] = decoded.array

    map_threaded(decode_into, range(len(paths)), workers)
    return out
