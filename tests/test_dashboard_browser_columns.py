"""Colour and filter by any column, and one selection across the histogram, the cluster buttons and
the scatter, in a real browser (issue 15). Uses the Voila server and page fixtures of
test_dashboard_browser.py (a server of its own for this module)."""

from __future__ import annotations

import pytest

from test_dashboard_browser import (_COUNT, _PLOT, _SELECTED_KEYS, _browser_selection, _open_tab,  # noqa: F401
                                    _page_selected, _wait_settled, expect, page, server)

pytestmark = pytest.mark.browser

TAB = "Generator fingerprints"
_HISTOGRAM = "document.querySelector('.ss-view:not([style*=\"display: none\"]) .ss-column-histogram .js-plotly-plot')"


def _show_plot(page) -> None:
    _open_tab(page, TAB)
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas", timeout=180_000)   # the first open projects
    page.wait_for_timeout(500)


def _choose(page, css: str, label: str) -> None:
    page.locator(f".ss-view:visible {css} select").first.select_option(label=label)


def _scatter_points(page) -> int:
    return page.evaluate(f"() => {_PLOT}.data[0].x.length")


def test_colour_by_a_score_shows_a_colour_bar_and_the_legend_says_so(page):
    _show_plot(page)
    _choose(page, ".ss-color-by", "outlier score")
    page.wait_for_function(f"() => {_PLOT}.querySelector('.colorbar') !== null", timeout=20_000)
    expect(page.locator(".ss-view:visible .ss-legend")).to_contain_text("colour = outlier score (colour bar")
    title = page.evaluate(f"() => {_PLOT}.layout.colorbar || {_PLOT}.data[0].marker.colorbar.title.text")
    assert title == "outlier score"
    _choose(page, ".ss-color-by", "split")
    page.wait_for_function(f"() => {_PLOT}.querySelector('.colorbar') === null", timeout=20_000)
    expect(page.locator(".ss-view:visible .ss-legend [data-label='test']")).to_have_count(1)
    _choose(page, ".ss-color-by", "cluster")


def test_a_filter_hides_the_other_points_and_clearing_it_brings_them_back(page):
    _show_plot(page)
    everything = _scatter_points(page)
    _choose(page, ".ss-filter-column", "split")
    page.locator(".ss-view:visible .ss-filter-values select").first.select_option(label="test")
    expect(page.locator(".ss-view:visible .ss-filter-label")).to_contain_text(f"of {everything:,} images shown")
    shown = int(page.locator(".ss-view:visible .ss-filter-label b").first.inner_text().replace(",", ""))
    page.wait_for_function(f"n => {_PLOT}.data[0].x.length === n", arg=shown, timeout=20_000)
    assert 0 < shown < everything
    keys = page.evaluate(f"() => {_PLOT}.data[0].text.map(t => String(t).split(' · ')[0])")
    assert set(keys) == {"test"}, "only test images stay in the scatter"
    page.locator(".ss-view:visible button", has_text="Clear filter").first.click()
    page.wait_for_function(f"n => {_PLOT}.data[0].x.length === n", arg=everything, timeout=20_000)


def _drag_over_first_bar(page) -> None:
    box = page.evaluate(f"""() => {{ const gd = {_HISTOGRAM}; const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.getBoundingClientRect();
        const bar = gd.querySelector('.trace.bars .point path').getBoundingClientRect();
        return [bar.left - 3, r.top + ya._offset + 3, bar.right + 3, r.top + ya._offset + ya._length - 3]; }}""")
    x0, y0, x1, y1 = box
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    page.mouse.up()


def test_a_box_over_a_histogram_bar_selects_its_images_in_the_scatter_and_they_can_be_moved(page):
    _show_plot(page)
    page.locator(".ss-view:visible .ss-column-histogram .js-plotly-plot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    for attempt in range(3):   # a fast drag on a loaded machine can miss: drag again
        _drag_over_first_bar(page)
        try:
            page.wait_for_function(f"() => ({_HISTOGRAM}.data[0].selectedpoints || []).length > 0", timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
    bar_count = page.evaluate(f"""() => {{ const t = {_HISTOGRAM}.data[0];
        return t.selectedpoints.reduce((a, i) => a + t.y[i], 0); }}""")
    assert bar_count > 0
    _wait_settled(page, bar_count)
    assert _page_selected(page) == bar_count, "the page selected the images of the highlighted bar"
    page.wait_for_function(f"n => ({_PLOT}.data[0].selectedpoints || []).length === n", arg=bar_count, timeout=20_000)
    assert len(_browser_selection(page)) == bar_count, "the scatter highlights the same images"
    page.wait_for_timeout(800)   # the scatter's bridge reports the new highlight
    page.locator(".ss-view:visible .ss-move").first.click()
    expect(page.locator(".ss-status-line")).to_contain_text(f"moved {bar_count} images")


def test_a_cluster_button_selects_the_cluster_in_the_scatter(page):
    _show_plot(page)
    button = page.locator(".ss-view:visible .ss-select-cluster").first
    before = _browser_selection(page)   # an earlier test may have left images selected (the ones it moved)
    button.click()
    # a loaded machine can still show the previous highlight for a moment, and the previous highlight and
    # count agree too: wait until the highlight has changed and the page's count agrees with it (the first
    # cluster is never the set an earlier test moved into a new cluster, which comes last)
    page.wait_for_function(f"""before => {{ const e = {_COUNT}, keys = {_SELECTED_KEYS};
        const changed = keys.length !== before.length || keys.some((k, i) => k !== before[i]);
        return changed && keys.length > 0 && e && parseInt(e.textContent.replace(/,/g, '')) === keys.length; }}""",
        arg=before, timeout=20_000)
    shown = len(_browser_selection(page))
    _wait_settled(page, shown)
    assert _page_selected(page) == shown > 0
    # the histogram draws the selection in its own colour over the bars (a batched restyle once sent the
    # overlay's colour as null, and plotly.js painted it in the default red)
    page.wait_for_function(f"() => {_HISTOGRAM}.data[1].y.some(v => v > 0)", timeout=20_000)
    assert page.evaluate(f"() => {_HISTOGRAM}.data[1].marker.color") == "#1f2430"
    assert page.evaluate(f"() => {_HISTOGRAM}.data[0].marker.color[0]") != "#1f2430"
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => !({_PLOT}.data[0].selectedpoints || []).length", timeout=20_000)
    _wait_settled(page, 0)
    assert _page_selected(page) == 0


_SCORES = "document.querySelector('.ss-score-histogram .js-plotly-plot')"


def test_a_box_over_score_bars_shows_only_their_images_in_the_grid(page):
    _open_tab(page, "Training-data fingerprints")
    page.wait_for_selector(".ss-view:visible .ss-score-histogram .js-plotly-plot .trace.bars")
    page.locator(".ss-view:visible .ss-score-histogram .js-plotly-plot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = page.evaluate(f"""() => {{ const gd = {_SCORES}; const ya = gd._fullLayout.yaxis, xa = gd._fullLayout.xaxis;
        const r = gd.getBoundingClientRect();
        return [r.left + xa._offset + 2, r.top + ya._offset + 2, r.left + xa._offset + xa._length * 0.6,
                r.top + ya._offset + ya._length - 2]; }}""")
    x0, y0, x1, y1 = box
    for attempt in range(3):
        page.mouse.move(x0, y0)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
        page.mouse.up()
        try:
            page.wait_for_function(f"() => {_SCORES}.data.some(t => (t.selectedpoints || []).length)", timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
    # what the bars hold that the plot highlights, over its visible traces
    expected = page.evaluate(f"""() => {{ const gd = {_SCORES}; let n = 0;
        gd._fullData.forEach((t, i) => {{ if (t.visible !== true) return;
            (gd.data[i].selectedpoints || []).forEach(b => {{ n += gd.data[i].y[b]; }}); }});
        return n; }}""")
    assert expected > 0
    label = page.locator(".ss-view:visible .ss-picked-label")
    expect(label).to_contain_text(f"{expected:,} images picked in the histogram")
    expect(page.locator(".ss-view:visible .ss-page-label")).to_contain_text(f"of {expected:,}")
    page.locator(".ss-view:visible button", has_text="Show every image").first.click()
    expect(label).to_have_text("")
