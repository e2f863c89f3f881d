"""The generator tab in a real browser (issue 15): keys, the task's k, a reload after other features.

Uses the Voila server and page fixtures of test_dashboard_browser.py (a server of its own for this module).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_dashboard_browser import (_PLOT, PAGE_TIMEOUT_MS, _browser_selection, _empty_spot, _gesture, _open_tab,  # noqa: F401
                                    _page_selected, _point_pixels, _select_mode, _selection_after,
                                    _session_assignments, _wait_settled, expect, page, server)

pytestmark = pytest.mark.browser

SCRATCH = Path("/work/scratch/scatter")
TAB = "Generator fingerprints"


def _shot(page, name: str) -> None:
    from test_dashboard_browser import ARTIFACTS

    page.wait_for_timeout(600)
    for folder in (ARTIFACTS, SCRATCH):
        if folder == ARTIFACTS or folder.parent.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)


def _show_plot(page) -> None:
    _open_tab(page, TAB)
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas", timeout=180_000)   # the first open projects
    page.wait_for_timeout(500)


def test_the_page_asks_for_the_tasks_k(page):
    _show_plot(page)
    prompt = page.locator(".ss-view:visible .ss-k-prompt")
    expect(prompt).to_contain_text("How many generators does the task state?")
    expect(page.locator(".ss-view:visible .ss-k-warning")).to_contain_text(
        "the test set may hold generators that dev does not")
    _shot(page, "generators-k-prompt")


def test_digit_moves_the_selection_and_ctrl_z_undoes(page, server):
    _show_plot(page)
    page.keyboard.press("Escape")   # its status line can move the plot down: measure the points after it
    page.wait_for_timeout(500)
    points, (px, py, pw, ph) = _point_pixels(page)
    _select_mode(page, "select")
    start = _empty_spot(points, px + 4, py + 4)
    end = _empty_spot(points, px + 0.5 * pw, py + ph - 4)
    for attempt in range(3):   # on a loaded machine a fast drag now and then selects nothing: drag again
        _gesture(page, [start, (end[0], start[1]), end], points, False)
        try:   # plotly sets selectedpoints a moment after the release
            page.wait_for_function(f"() => {_PLOT}.data.some(t => t.selectedpoints && t.selectedpoints.length)",
                                   timeout=5_000)
            break
        except Exception:
            _select_mode(page, "select")
    shown = _browser_selection(page)
    _wait_settled(page, len(shown))
    assert shown and _page_selected(page) == len(shown)
    before = _session_assignments(server, timeout=0)
    page.keyboard.press("1")
    expect(page.locator(".ss-status-line")).to_contain_text(f"moved {len(shown)} images to cluster 1")
    after = _session_assignments(server, changed_from=before)
    assert {after[key] for key in shown} == {1}
    page.keyboard.press("Control+z")
    expect(page.locator(".ss-status-line")).to_contain_text("undone")
    undone = _session_assignments(server, changed_from=after)
    assert all(undone[key] == before.get(key, undone[key]) for key in shown) and undone != after


def test_hover_shows_the_image_and_a_click_its_neighbours(page):
    _show_plot(page)
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    points, _ = _point_pixels(page)
    index = 11
    image_id = page.evaluate(f"() => String({_PLOT}.data[0].text[{index}]).split('<br>')[0].split(' · ')[1]")
    page.mouse.move(points[index][0] - 30, points[index][1] - 30)
    page.mouse.move(*points[index], steps=4)
    expect(page.locator(".ss-view:visible .ss-preview")).to_contain_text(image_id)
    assert page.evaluate("() => { const i = [...document.querySelectorAll('.ss-preview img')].find(e => e.offsetParent);"
                         " return i.naturalWidth; }") == 128
    page.mouse.click(*points[index])
    full = page.locator(".ss-view:visible .ss-detail-full")
    expect(full).to_be_visible()
    expect(page.locator(".ss-view:visible .ss-neighbours img")).to_have_count(6)
    assert page.evaluate("() => document.querySelector('.ss-detail-full').naturalWidth") == 512
    full.scroll_into_view_if_needed()
    _shot(page, "generators-detail")


def _box_select(page, points, start, end) -> list[str]:
    for attempt in range(3):   # on a loaded machine a fast drag now and then selects nothing: drag again
        _gesture(page, [start, (end[0], start[1]), end], points, False)
        try:
            page.wait_for_function(f"() => {_PLOT}.data.some(t => t.selectedpoints && t.selectedpoints.length)",
                                   timeout=5_000)
            break
        except Exception:
            _select_mode(page, "select")
    shown = _browser_selection(page)
    _wait_settled(page, len(shown))
    return shown


def _largest_cluster_id(page) -> int:
    """The highest cluster id the "move to" list offers ("name (id)")."""
    import re

    labels = page.evaluate("() => [...document.querySelectorAll('.ss-view select option')]"
                           ".filter(o => o.parentElement.offsetParent).map(o => o.textContent)")
    return max(int(m.group(1)) for m in (re.search(r"\((\d+)\)$", label) for label in labels) if m)


def _box_the_left_half(page):
    """A fresh box over the plot's left half (Escape first): (its points, the plot's rectangle, the keys boxed)."""
    _show_plot(page)
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    points, rect = _point_pixels(page)
    px, py, pw, ph = rect
    _select_mode(page, "select")
    boxed = _box_select(page, points, _empty_spot(points, px + 4, py + 4),
                        _empty_spot(points, px + 0.5 * pw, py + ph - 4))
    assert boxed and _page_selected(page) == len(boxed)
    return points, rect, boxed


def test_a_double_click_on_move_moves_once(page, server):
    """Issue 22 defect 12: a double-click on Move selection moved the selection twice (into two new
    clusters). The second click is refused and the button greys out until the next selection."""
    _, _, shown = _box_the_left_half(page)
    newest = _largest_cluster_id(page)
    before = _session_assignments(server, timeout=0)
    move = page.locator(".ss-view:visible .ss-move").first
    move.dblclick()
    expect(page.locator(".ss-status-line")).to_contain_text("not moved again")   # the second click, answered
    expect(move).to_be_disabled()
    after = _session_assignments(server, changed_from=before)
    assert {after[key] for key in shown} == {newest + 1}, "one new cluster, not two"
    assert sorted(key for key, cluster in after.items() if cluster == newest + 1) == shown
    assert _largest_cluster_id(page) == newest + 1


def test_a_lasso_started_inside_the_previous_outline_selects(page):
    """Issue 22 defect 12: a lasso started inside the previous box's outline did nothing (the outline's
    transparent fill took the pointer) and selected the page's text instead."""
    points, (px, py, pw, ph), boxed = _box_the_left_half(page)
    _select_mode(page, "lasso")
    inside = _empty_spot(points, px + 0.3 * pw, py + 0.5 * ph)
    assert "nsewdrag" in page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).getAttribute('class') || ''", list(inside)), \
        "the box's outline takes the pointer inside it"
    corner = _empty_spot(points, px + pw - 6, py + 6)
    far = _empty_spot(points, px + pw - 6, py + ph - 6)
    _gesture(page, [inside, corner, far, (inside[0] + 4, inside[1] + 8)], points, False)
    lassoed = _selection_after(page, boxed)
    _wait_settled(page, len(lassoed))
    assert page.evaluate("() => String(window.getSelection())") == "", "the drag selected page text"
    assert lassoed and lassoed != boxed, "the lasso selected nothing new"
    assert _page_selected(page) == len(lassoed)
    _shot(page, "generators-lasso-inside-outline")


def test_a_reload_keeps_the_features_the_clusters_were_made_on(page):
    _show_plot(page)
    page.keyboard.press("Escape")
    features = page.locator(".ss-view:visible .widget-dropdown", has_text="features").locator("select")
    features.select_option("pixels")
    expect(page.locator(".ss-status-line")).to_contain_text("features are now pixels", timeout=120_000)
    page.locator(".ss-view:visible button", has_text="Re-cluster").first.click()
    expect(page.locator(".ss-status-line")).to_contain_text("re-clustered")
    expect(page.locator(".ss-status-line")).to_contain_text("autosaved")
    page.reload()
    page.wait_for_selector(".ss-app", timeout=PAGE_TIMEOUT_MS)
    expect(page.locator(".ss-status-line")).to_contain_text("restored", timeout=120_000)
    _show_plot(page)
    features = page.locator(".ss-view:visible .widget-dropdown", has_text="features").locator("select")
    expect(features).to_have_value("pixels", timeout=60_000)
    chosen = page.locator(".ss-view:visible summary", has_text="method chosen").first
    expect(chosen).to_contain_text("pixels")
    _shot(page, "generators-after-reload")
