"""The hover thumbnail beside the cursor (issue 22 item 6): its image helper and the kernel side of the
widget that shows it (the browser side: test_dashboard_browser_hover.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from synthscope_dashboard.imaging import THUMBNAIL_PX, data_url, thumbnail_data_url

from test_dashboard_state import app, bench, bench_cache, loaded, workspace  # noqa: F401  (fixtures)


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


def test_the_kernel_answers_a_hover_with_that_points_thumbnail_and_a_caption_that_follows_moves(app):
    from test_generator_view import VIEW

    state, view = app.state, app.view(VIEW)
    data = state.workspace.attribution
    hover = view.hover_thumbnail
    decoded = []
    original = data.load_images
    data.load_images = lambda rows: decoded.append(len(rows)) or original(rows)
    try:
        point = 7   # one trace, all rows shown: point 7 is row 7
        reply = hover.answer({"curve": 0, "point": point, "meta": view.revision(), "key": "k7"})
        assert reply["key"] == "k7" and data.frame.at[7, "image_id"] in reply["caption"]
        assert reply["url"] == thumbnail_data_url(original(np.array([7]))[0])
        assert reply["caption"].count(state.cluster_name(int(state.assignments[7]))) == 1
        again = hover.answer({"curve": 0, "point": point, "meta": view.revision(), "key": "k7"})
        assert again == reply and len(decoded) == 1, "hovering back decodes nothing"
        # the page asks for the caption only, once clusters change (the image it keeps)
        version = hover.version
        new = state.assign([7], None)
        state.rename(new, "moved here")
        assert hover.version > version, "the page is told to drop its captions"
        moved = hover.answer({"curve": 0, "point": point, "meta": view.revision(), "key": "k7", "image": False})
        assert "moved here" in moved["caption"] and "url" not in moved and len(decoded) == 1
        # a point of an older version of the traces (before a refilter) names no row
        assert hover.answer({"curve": 0, "point": point, "meta": "points-older", "key": "x"}) is None
        assert hover.answer({"curve": 0, "point": data.n + 5, "meta": view.revision(), "key": "x"}) is None
        assert hover.answer({"curve": "?", "point": 1}) is None
    finally:
        data.load_images = original
