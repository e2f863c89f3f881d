"""Issue 22 item 1 in a real browser: the generator view's jupyter-scatter engine (forced with
SYNTHSCOPE_SCATTER_ENGINE=jscatter on the small fixture; `auto` picks it from
views/generator_jscatter.JSCATTER_FROM points on). A lasso on the WebGL canvas reaches the kernel as the
set the page counts, Move moves exactly that set, and the page recolours the moved points.
"""

from __future__ import annotations

import pytest

from test_dashboard_browser import (ARTIFACTS, CHROMIUM, LAUNCH_ARGS,  # noqa: F401
                                    _COUNT, _open_tab, _page_selected, _session_assignments, expect)

from test_dashboard_browser_trust import open_page
from voila_server import voila_server

pytestmark = pytest.mark.browser

TAB = "Generator fingerprints"
CANVAS = ".ss-view:visible .ss-jscatter canvas"


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_bench, small_bench_cache):
    import shutil

    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium; `make browser` does it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    pytest.importorskip("jscatter", reason="jupyter-scatter is not installed (pip install -e '.[dashboard]')")
    try:
        with voila_server(small_bench, tmp_path_factory.mktemp("voila"), cache_from=small_bench_cache,
                          env={"SYNTHSCOPE_SCATTER_ENGINE": "jscatter"}) as served:
            yield {**served, "bench": small_bench}
    except RuntimeError as error:   # the server did not start: its log's tail
        pytest.fail(str(error))


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
