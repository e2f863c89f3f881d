"""The hover thumbnail beside the cursor (issue 22 item 6): its image helper and the kernel side of the
widget that shows it (the browser side: test_dashboard_browser_hover.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from synthscope_dashboard.imaging import THUMBNAIL_PX, data_url, thumbnail_data_url


def _decode(url: str) -> Image.Image:
    header, payload = url.split(",", 1)
    return Image.open(io.BytesIO(base64.b64decode(payload))), header


def test_a_thumbnail_is_a_small_webp_of_the_same_image():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    image = np.clip(128 + 90 * np.sin(xx / 19.0) * np.cos(yy / 23.0) + rng.normal(0, 4, (256, 256)), 0, 255)
    image = image.astype(np.uint8)
    url = thumbnail_data_url(image)
    pil, header = _decode(url)
    assert header == "data:image/webp;base64"
    assert pil.format == "WEBP" and pil.size == (THUMBNAIL_PX, THUMBNAIL_PX)
    assert len(url) < 8_000   # small enough to send on every hover of a new point
    expected = np.asarray(Image.fromarray(image).resize((THUMBNAIL_PX, THUMBNAIL_PX), Image.BILINEAR), dtype=float)
    shown = np.asarray(pil.convert("L"), dtype=float)
    # lossy WebP at quality 80: the smooth pattern survives to a few grey levels on average
    assert np.abs(shown - expected).mean() < 6
    assert np.corrcoef(shown.ravel(), expected.ravel())[0, 1] > 0.98


def test_a_data_url_keeps_the_aspect_and_png_is_lossless():
    image = (np.arange(40 * 80, dtype=np.uint32).reshape(40, 80) % 251).astype(np.uint8)
    pil, header = _decode(data_url(image))
    assert header == "data:image/png;base64" and np.array_equal(np.asarray(pil), image)
    pil, _ = _decode(data_url(image, 40, "webp"))
    assert pil.size == (40, 20)
