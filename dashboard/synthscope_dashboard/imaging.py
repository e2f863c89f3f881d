"""Small image helpers for the views: PNG bytes for thumbnails, colour maps, difference images."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Plotly's qualitative palette extended; cluster c gets CLUSTER_COLORS[c % len].
CLUSTER_COLORS = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52", "#1F77B4", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#D62728",
)
UNLABELLED_COLOR = "#C8C8C8"
# Known labels (dev folders, ground truth) get a palette of their own, drawn with a legend, so that a
# colour never means a cluster in one place and a label in another (ColorBrewer Dark2, no grey).
KNOWN_LABEL_COLORS = ("#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02", "#A6761D", "#0B4F6C")


def cluster_color(cluster: int) -> str:
    return CLUSTER_COLORS[int(cluster) % len(CLUSTER_COLORS)]


def known_label_color(position: int) -> str:
    return KNOWN_LABEL_COLORS[int(position) % len(KNOWN_LABEL_COLORS)]


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    """uint8 [H,W] or [H,W,3] -> PNG bytes, optionally shrunk to `size` px on its long side."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    if size is not None and max(pil.size) != size:
        pil = pil.resize((size, size), Image.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


THUMBNAIL_PX = 96   # the hover thumbnail beside the cursor (both scatter engines)
_MIME = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


def encoded(image: np.ndarray, size: int | None = None, fmt: str = "png", quality: int = 80) -> bytes:
    """uint8 [H,W] or [H,W,3] -> PNG, WebP or JPEG bytes, shrunk to `size` px on its long side (aspect kept)."""
    if fmt == "png":
        return png_bytes(image, size)
    pil = Image.fromarray(np.ascontiguousarray(image))
    if size is not None and max(pil.size) != size:
        scale = size / max(pil.size)
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt.upper(), quality=quality)
    return buffer.getvalue()


def data_url(image: np.ndarray, size: int | None = None, fmt: str = "png") -> str:
    """A `data:` URL of the image, for an <img> in HTML that needs no widget (the report, hover thumbnails)."""
    return f"data:{_MIME[fmt]};base64," + base64.b64encode(encoded(image, size, fmt)).decode("ascii")


def thumbnail_data_url(image: np.ndarray, px: int = THUMBNAIL_PX) -> str:
    """The hover thumbnail of one image: `px` px on its long side, lossy WebP (~1.5 kB at 96 px of a CT
    slice, ~2 ms CPU; PNG is ~3.4 kB). Callers cache it per image: it never changes."""
    return data_url(image, px, "webp")


def to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Linearly rescale any float map to uint8 (robust 1-99 percentile range by default)."""
    values = np.asarray(values, dtype=float)
    if low is None or high is None:
        low, high = np.percentile(values, [1, 99])
    if high <= low:
        high = low + 1e-9
    return (np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.uint8)


# A compact perceptual map (viridis anchors) for spectra and residuals.
_VIRIDIS = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
], dtype=float)


def colormap(values_uint8: np.ndarray) -> np.ndarray:
    """uint8 [H,W] -> RGB uint8 [H,W,3] with a viridis-like map."""
    position = values_uint8.astype(float) / 255 * (len(_VIRIDIS) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(_VIRIDIS) - 1)
    frac = (position - low)[..., None]
    return (_VIRIDIS[low] * (1 - frac) + _VIRIDIS[high] * frac).astype(np.uint8)


def difference_scale(a: np.ndarray, b: np.ndarray) -> int:
    """The grey-level difference that `difference_image` shows at full colour (its colour bar's end)."""
    return max(int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()), 1)


def difference_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed difference a - b as an RGB map: red where a is brighter, blue where b is, white where
    equal; full red / blue at +/- `difference_scale(a, b)` grey levels."""
    diff = a.astype(np.int16) - b.astype(np.int16)
    scale = difference_scale(a, b)
    red = np.clip(diff, 0, None) * 255 // scale
    blue = np.clip(-diff, 0, None) * 255 // scale
    rgb = np.stack([255 - blue, 255 - red - blue, 255 - red], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)
