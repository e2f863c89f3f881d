"""Issue 22 item 1 in a real browser: the generator view's jupyter-scatter engine (forced with
SYNTHSCOPE_SCATTER_ENGINE=jscatter on the small fixture; `auto` picks it from
views/generator_jscatter.JSCATTER_FROM points on). A lasso on the WebGL canvas reaches the kernel as the
set the page counts, Move moves exactly that set, and the page recolours the moved points.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_dashboard_browser import (ARTIFACTS, CHROMIUM, LAUNCH_ARGS,  # noqa: F401
                                    _COUNT, _open_tab, _page_selected, _session_assignments, expect)

from test_dashboard_browser_trust import open_page
from voila_server import serve_small_bench

pytestmark = pytest.mark.browser

TAB = "Generator fingerprints"
CANVAS = ".ss-view:visible .ss-jscatter canvas"


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_bench, small_bench_cache):
    yield from serve_small_bench(tmp_path_factory, small_bench, small_bench_cache, "jscatter", "jscatter")


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield open_page(browser, server)
        browser.close()


def _lasso(page, box, fraction: float) -> None:
    """A lasso over the left `fraction` of the plot (a plain drag lassos: mouse mode "lasso")."""
    left, top = box["x"] + 4, box["y"] + 4
    right, bottom = box["x"] + fraction * box["width"], box["y"] + box["height"] - 4
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 2)):
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def test_a_lasso_is_the_kernels_selection_and_move_recolours_it(page, server):
    _open_tab(page, TAB)
    page.wait_for_selector(CANVAS, timeout=180_000)
    page.wait_for_timeout(1500)   # the first draw
    expect(page.locator(".ss-view:visible .ss-scatter-title")).to_contain_text("generated images")
    canvas = page.locator(CANVAS).first
    box = canvas.bounding_box()
    _lasso(page, box, 0.6)
    page.wait_for_function(f"() => {{ const e = {_COUNT}; return e && parseInt(e.textContent) > 0; }}", timeout=60_000)
    page.wait_for_timeout(1500)   # the selection drawn
    shown = _page_selected(page)
    assert shown > 0, "the lasso selected nothing"
    page.screenshot(path=str(ARTIFACTS / "dashboard-jscatter-lasso.png"), full_page=True)
    where = {"x": box["x"] + 8, "y": box["y"] + 8, "width": 0.5 * box["width"], "height": box["height"] - 16}
    pixels_before = page.screenshot(clip=where)   # the selected points, highlighted, in their clusters' colours
    before = _session_assignments(server, timeout=0)
    page.locator(".ss-view:visible .ss-move").first.click()
    expect(page.locator(".ss-status-line")).to_contain_text(f"moved {shown} images", timeout=60_000)
    after = _session_assignments(server, changed_from=before)
    new_cluster = max(after.values())      # "move to" starts at "+ new cluster"
    moved = [key for key, cluster in after.items() if cluster == new_cluster]
    assert len(moved) == shown, f"the page counted {shown} selected; the kernel moved {len(moved)}"
    assert new_cluster not in set(before.values()), "the images went to a new cluster"
    page.wait_for_timeout(1500)   # the new colour values reach the canvas
    assert _page_selected(page) == shown, "Move keeps the selection (same highlight: only the colours change)"
    pixels_after = page.screenshot(clip=where)
    page.screenshot(path=str(ARTIFACTS / "dashboard-jscatter-moved.png"), full_page=True)
    assert pixels_after != pixels_before, "the moved points kept their colour on the canvas"


def _a_point(page) -> tuple[float, float]:
    """The page coordinates of one drawn point: the centre of a small non-white blob on the canvas (the
    points live inside regl-scatterplot, out of the page's reach, so they are found on the screen)."""
    import io

    from PIL import Image
    from scipy import ndimage

    box = page.locator(CANVAS).first.bounding_box()
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")).astype(int)
    ink = (np.abs(pixels - 255).sum(axis=2) > 90)   # a point's colour, not the white background
    labels, n = ndimage.label(ink)
    assert n, "no point drawn on the canvas"
    sizes = ndimage.sum(ink, labels, range(1, n + 1))
    blob = 1 + int(np.argmin(np.where(sizes >= 6, sizes, np.inf)))   # the smallest whole point: one point alone
    y, x = ndimage.center_of_mass(ink, labels, blob)
    scale = pixels.shape[1] / box["width"]   # screenshot pixels per CSS pixel
    return box["x"] + x / scale, box["y"] + y / scale


def _show_jscatter(page) -> None:
    _open_tab(page, TAB)
    page.wait_for_selector(CANVAS, timeout=180_000)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(1000)


def test_hovering_a_point_shows_its_thumbnail_beside_the_cursor(page):
    """Issue 22 item 6 on the jupyter-scatter engine: the hovered image beside the cursor."""
    _show_jscatter(page)
    page.keyboard.press("Escape")
    x, y = _a_point(page)
    thumb = page.locator(".ss-hover-thumb")
    for dx, dy in ((0, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):   # a point's centre, within a pixel
        page.mouse.move(x + dx - 40, y + dy - 40)
        page.mouse.move(x + dx, y + dy, steps=5)
        try:
            expect(thumb).to_be_visible(timeout=20_000)
            break
        except AssertionError:
            continue
    expect(thumb).to_be_visible(timeout=1)
    loaded = thumb.locator("img").evaluate("img => img.complete && img.naturalWidth")
    assert loaded == 128, f"the thumbnail is no 128 px image ({loaded})"
    expect(thumb).to_contain_text("generated")   # its caption names the image
    where = thumb.bounding_box()
    assert abs(where["x"] - x) < 200 and abs(where["y"] - y) < 220, f"the thumbnail {where} is not beside {(x, y)}"
    page.screenshot(path=str(ARTIFACTS / "dashboard-jscatter-hover.png"))
    page.mouse.move(5, 5)   # off the plot: it goes
    expect(thumb).to_be_hidden(timeout=10_000)


def test_a_digit_moves_the_lasso_selection_and_ctrl_z_undoes_it(page, server):
    """The plotly engine's keys on the jupyter-scatter engine: a digit moves what the plot shows to that cluster."""
    _show_jscatter(page)
    page.keyboard.press("Escape")
    box = page.locator(CANVAS).first.bounding_box()
    _lasso(page, box, 0.55)
    page.wait_for_function(f"() => {{ const e = {_COUNT}; return e && parseInt(e.textContent) > 0; }}", timeout=60_000)
    page.wait_for_timeout(1000)
    shown = _page_selected(page)
    before = _session_assignments(server, timeout=0)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)   # focus stays on the page, not a box
    names = page.locator(".ss-view:visible .widget-dropdown", has_text="move to").locator("option").all_inner_texts()
    cluster = next(int(n.rsplit("(", 1)[1].rstrip(")")) for n in names if n.rstrip().endswith(")")
                   and n.rsplit("(", 1)[1].rstrip(")").isdigit() and int(n.rsplit("(", 1)[1].rstrip(")")) <= 9)
    page.keyboard.press(str(cluster))   # the digit of an existing cluster
    expect(page.locator(".ss-status-line")).to_contain_text(f"moved {shown} images to", timeout=60_000)
    after = _session_assignments(server, timeout=60, changed_from=before)
    changed = [key for key in after if after[key] != before.get(key)]
    assert changed and all(after[key] == cluster for key in changed) and len(changed) <= shown
    page.keyboard.press("Control+z")
    expect(page.locator(".ss-status-line")).to_contain_text("undone", timeout=60_000)
    undone = _session_assignments(server, timeout=60, changed_from=after)   # autosaved a moment later
    assert all(undone[key] == before[key] for key in changed if key in before)


def test_the_engine_control_switches_the_scatter_between_engines(page):
    """auto / plotly / jupyter-scatter in the page: the other engine draws the same selection."""
    _show_jscatter(page)
    box = page.locator(CANVAS).first.bounding_box()
    _lasso(page, box, 0.5)
    page.wait_for_function(f"() => {{ const e = {_COUNT}; return e && parseInt(e.textContent) > 0; }}", timeout=60_000)
    page.wait_for_timeout(1000)
    shown = _page_selected(page)
    control = page.locator(".ss-view:visible .ss-scatter-engine select").first
    control.select_option(label="scatter: plotly")
    plot = page.locator(".ss-view:visible .ss-scatter-box:not(.ss-column-histogram) .js-plotly-plot").first
    expect(plot).to_be_visible(timeout=120_000)
    expect(page.locator(".ss-view:visible .ss-jscatter")).to_have_count(0)
    page.wait_for_function("n => { const gd = [...document.querySelectorAll('.ss-scatter-box .js-plotly-plot')]"
                           ".find(e => e.offsetParent && !e.closest('.ss-column-histogram')); return gd && gd.data && (gd.data[0].selectedpoints || []).length"
                           " === n; }", arg=shown, timeout=60_000)
    assert _page_selected(page) == shown
    control.select_option(label="scatter: jupyter-scatter")
    expect(page.locator(CANVAS).first).to_be_visible(timeout=120_000)
    expect(plot).to_be_hidden(timeout=60_000)
    assert _page_selected(page) == shown
