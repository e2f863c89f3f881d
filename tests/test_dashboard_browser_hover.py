"""Issue 22 item 6 in a real browser, plotly engine: the hovered image beside the cursor, and hovering
breaks neither a click (the clicked-image panel) nor a box selection. Kernel side: test_hover_thumbnail.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_dashboard_browser import (_PLOT, ARTIFACTS, CHROMIUM, _empty_spot, _gesture, _open_tab, _page_selected,  # noqa: F401,E501
                                    _plot_on_screen, _point_pixels, _select_mode, _wait_settled, expect)
from test_dashboard_browser_trust import browser, open_page  # noqa: F401  (browser: a fixture)
from voila_server import serve_small_bench

pytestmark = pytest.mark.browser

TAB = "Generator fingerprints"
THUMB = ".ss-hover-thumb"


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_bench, small_bench_cache):
    yield from serve_small_bench(tmp_path_factory, small_bench, small_bench_cache, "plotly")


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    page = open_page(browser, server)
    for attempt in range(2):
        _open_tab(page, TAB)
        try:   # the first open projects
            page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas", timeout=240_000)
            break
        except Exception:
            # on a loaded 2-core machine Voila now and then draws this scatter empty (axes, no trace), with or
            # without the hover widget (see test_dashboard_browser_layout): a new page gets a new kernel
            page.screenshot(path=str(ARTIFACTS / f"hover-failed-tab-{attempt}.png"), full_page=True)
            if attempt:
                raise
            page.close()
            page = open_page(browser, server)
    page.kernel_relay = None   # _gesture's busy-kernel relay: not used here
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    yield page
    page.close()


def _far_apart(points, rect, n: int) -> list[int]:
    """`n` points on screen, each as far as it can be from the ones before (other groups of the plot)."""
    px, py, pw, ph = rect
    on_screen = [i for i, (x, y) in enumerate(points)
                 if px + 10 < x < px + pw - 10 and py + 10 < y < min(py + ph, 990) - 10]
    chosen = on_screen[:1]
    while len(chosen) < n and len(chosen) < len(on_screen):
        chosen.append(max(on_screen, key=lambda i: min((points[i][0] - points[j][0]) ** 2
                                                      + (points[i][1] - points[j][1]) ** 2 for j in chosen)))
    return chosen


def _hover(page, point) -> None:
    page.mouse.move(point[0] - 30, point[1] - 30)
    page.mouse.move(*point, steps=4)


_THUMB_JS = f"""() => {{ const b = document.querySelector('{THUMB}'); const i = b.querySelector('img');
    return {{ shown: b.style.display === 'block', key: b.dataset.key, imgKey: i.dataset.key, src: i.src,
              width: i.naturalWidth, caption: b.innerText, rect: b.getBoundingClientRect().toJSON(),
              latency: Number(b.dataset.latencyMs) }}; }}"""


def _thumb(page) -> dict:
    return page.evaluate(_THUMB_JS)


def _image_id(page, hovered: tuple[int, int]) -> str:
    """The image id of (trace, point): a dev point drawn over the aimed-at test point takes the hover."""
    curve, index = hovered
    return page.evaluate(f"() => String({_PLOT}.data[{curve}].text[{index}]).split('<br>')[0].split(' · ')[1]")


def _wait_shown(page) -> tuple[tuple[int, int], dict]:
    """((trace, point) plotly hovers, the thumbnail) once the thumbnail shows the image of the point plotly's
    own label names, and still does 300 ms later. Plotly can fire a last hover a moment after the mouse
    stopped (a point crossed on the way first): the box then takes the new key and hides until its image
    comes, so a single read could pair the new key with the previous image's caption."""
    shown = f"""() => {{ const t = ({_THUMB_JS})();
        const label = {_PLOT}.querySelector('.hoverlayer .hovertext');
        const named = label ? label.textContent : '';
        return t.shown && t.caption && t.imgKey === t.key && named.includes(t.caption.split(' · ')[0]) ? t : null; }}"""
    thumb = None
    for _ in range(10):
        thumb = page.wait_for_function(shown, timeout=20_000).json_value()
        page.wait_for_timeout(300)
        again = page.evaluate(f"() => ({shown})()")
        if again is not None and again["key"] == thumb["key"]:
            thumb = again
            break
    curve, point = thumb["key"].rsplit("|", 1)[1].split(":")   # the page's key: meta|trace:point
    return (int(curve), int(point)), thumb


def _plotly_label(page) -> str:
    """The text of plotly's own hover label (what the analyst reads beside the point)."""
    return page.evaluate(f"() => {{ const t = {_PLOT}.querySelector('.hoverlayer .hovertext');"
                         " return t ? t.textContent : ''; }")


def test_hover_shows_that_images_thumbnail_beside_the_cursor(page, server):
    from synthscope.imageio import read_image_file
    from synthscope_dashboard.imaging import THUMBNAIL_PX, thumbnail_data_url

    points, rect = _plot_on_screen(page)
    for target in _far_apart(points, rect, 2):
        _hover(page, points[target])
        index, thumb = _wait_shown(page)
        image_id = _image_id(page, index)
        assert image_id in _plotly_label(page), "the thumbnail is not of the point plotly names"
        assert image_id in thumb["caption"], (image_id, thumb, _plotly_label(page), page.evaluate(
            "() => [...document.querySelectorAll('.ss-hover-thumb')].map(b => [b.dataset.key, b.innerText])"))
        file = next(Path(server["bench"], "subtask2").rglob(f"{image_id}.png"))
        assert thumb["src"] == thumbnail_data_url(read_image_file(file)[0].array), "another image's thumbnail"
        assert thumb["width"] == THUMBNAIL_PX
        x, y, r = points[target][0], points[target][1], thumb["rect"]
        gap = max(r["left"] - x, x - r["right"], 0) + max(r["top"] - y, y - r["bottom"], 0)
        assert gap < 40, f"the thumbnail is {gap:.0f} px from the cursor: {r}"
        assert not (r["left"] <= x <= r["right"] and r["top"] <= y <= r["bottom"]), "it covers the cursor"
        print(f"hover -> thumbnail shown: {thumb['latency']:.0f} ms (first hover of {image_id})")
    page.mouse.move(rect[0] + 2, rect[1] + rect[3] + 40)   # off the plot: it goes
    page.wait_for_function(f"() => document.querySelector('{THUMB}').style.display === 'none'", timeout=5_000)
    _hover(page, points[target])                             # hovering back: kept in the page
    again, thumb = _wait_shown(page)
    print(f"hover back -> thumbnail shown: {thumb['latency']:.0f} ms")
    page.screenshot(path=str(ARTIFACTS / "dashboard-hover-thumbnail.png"))


def test_hover_then_click_opens_the_clicked_image_and_a_box_still_selects(page):
    points, rect = _plot_on_screen(page)
    target = _far_apart(points, rect, 3)[-1]
    _hover(page, points[target])
    index, _ = _wait_shown(page)
    page.wait_for_timeout(300)
    page.mouse.click(*points[target])
    image_id = _image_id(page, index)
    expect(page.locator(".ss-view:visible .ss-detail-full")).to_be_visible(timeout=60_000)
    expect(page.locator(".ss-view:visible .ss-detail .ss-status").first).to_contain_text(image_id)
    expect(page.locator(".ss-view:visible .ss-neighbours img")).to_have_count(6)
    # the page scrolled to the panel; back to the plot, hover again, then drag a box from beside a point
    points, (px, py, pw, ph) = _plot_on_screen(page)
    _select_mode(page, "select")
    _hover(page, points[target])
    _wait_shown(page)
    start = _empty_spot(points, px + 4, py + 4)
    end = _empty_spot(points, px + 0.6 * pw, py + ph - 4)
    _gesture(page, [start, (end[0], start[1]), end], points, False)
    page.wait_for_function(f"() => {_PLOT}.data.some(t => t.selectedpoints && t.selectedpoints.length)",
                           timeout=10_000)
    shown = page.evaluate(f"() => {_PLOT}.data[0].selectedpoints.length")
    _wait_settled(page, shown)
    assert shown and _page_selected(page) == shown
    assert page.evaluate(f"() => document.querySelector('{THUMB}').style.display") == "none", \
        "the thumbnail stays over the plot during a drag"
