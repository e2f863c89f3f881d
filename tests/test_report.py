"""Issue 15 A: the static HTML report. Kernel side, it holds the page's numbers, the verdicts, the
curation and a bounded gallery; in Chromium, opened from disk with every network request refused, the
scatter draws and the tables are there."""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import time
from pathlib import Path

import pytest

from test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS


@pytest.fixture(scope="module")
def loaded(small_bench, small_bench_cache, tmp_path_factory):
    from synthscope_dashboard.workspace import load_workspace

    cache = tmp_path_factory.mktemp("embeddings")
    shutil.copytree(small_bench_cache, cache, dirs_exist_ok=True)
    return load_workspace(small_bench, cache_dir=cache)


@pytest.fixture(scope="module")
def exported(loaded, tmp_path_factory):
    """The dashboard with some curation, and the report its Export button wrote."""
    from synthscope_dashboard.app import build

    workspace = dataclasses.replace(loaded, cache_dir=tmp_path_factory.mktemp("cache"))
    app = build(workspace=workspace, autosave=False, export_dir=tmp_path_factory.mktemp("exports"))
    for view in app.views:
        view.ensure_built()
    state = app.state
    state.rename(state.clusters()[0], "grid-like <GAN>")
    pair = next(iter(workspace.membership.pairs))
    membership = workspace.membership
    rows = membership.pair_rows[pair]
    rows = rows[membership.frame["split"].to_numpy()[rows] == "test"]
    test_row = int(rows[membership.frame["score"].to_numpy()[rows].argmax()])   # first in its gallery
    state.set_override(membership.frame.at[test_row, "key"], 1 - int(state.membership_predictions()[test_row]))
    export = app.view("Export")
    start = time.perf_counter()
    message = export.export_report()
    seconds = time.perf_counter() - start
    path = Path(re.search(r"class='ss-report-path'>([^<]+)<", message).group(1))
    print(f"report: {path.stat().st_size / 1024:.0f} KB written in {seconds:.1f} s")
    return app, path, path.read_text(encoding="utf-8")


def _values(text: str, metric: str) -> list[float]:
    return [float(v) for v in re.findall(rf"data-metric='{metric}'>([-0-9.]+)<", text)]


def test_report_holds_the_page_numbers_verdicts_and_curation(exported):
    app, path, text = exported
    state = app.state
    assert path.name == "synthscope_report.html" and path.parent.is_relative_to(app.view("Export").export_root)
    # sub-task 2: the generator view's tables (dev, then ground truth) -- the same ARI and NMI
    state.evaluation_mode = True        # the page shows its ground-truth tables only in evaluation mode
    generators = app.view("Generator fingerprints").metrics.value
    assert _values(generators, "ari") and _values(text, "ari") == _values(generators, "ari")
    assert _values(text, "nmi") == _values(generators, "nmi")
    assert "single cluster" in text and html.escape("grid-like <GAN>") in text   # baseline; the curated name
    # sub-task 1: every pair's tables equal the training view's tables for that pair (with the override)
    training = app.view("Training-data fingerprints")
    membership = state.workspace.membership
    report_f1, page_f1 = [], []
    for pair in membership.pairs:
        state.membership_group = pair
        page_f1 += _values(training.metrics.value, "f1")
        section = text[text.index(f"data-pair='{html.escape(pair)}'"):]
        report_f1.append(_values(section, "f1")[0])   # its dev table
        verdict = membership.pairs[pair].verdict
        head = "Leakage: YES" if verdict.significant else "Leakage: no significant signal"
        assert f"{html.escape(pair)} · {head}" in text and html.escape(verdict.message) in text
        assert all(html.escape(line) in text for line in membership.pairs[pair].story)
    assert "Leakage: YES" in text and "Leakage: no significant signal" in text   # the leaky and the clean model
    evaluation = text.index("id='evaluation'")
    dev_f1 = [page_f1[0], page_f1[2]]        # page per pair: dev table, then the ground-truth table
    test_f1 = [page_f1[1], page_f1[3]]
    assert report_f1 == dev_f1
    assert _values(text[evaluation:], "f1") == test_f1   # test labels only in the evaluation section
    assert "ground-truth file" not in text[:evaluation] and "all used" in text[:evaluation]
    # galleries: 12 real images per pair, each with its 3 nearest generated images; fingerprints per cluster
    assert text.count("data-role='gallery-real'") == 12 * len(membership.pairs)
    assert text.count("data-role='gallery-nearest'") == 3 * 12 * len(membership.pairs)
    assert text.count("data-role='fingerprint'") == 2 * len(state.clusters())
    assert "(set by hand)" in text
    assert re.search(r"<img src='data:image/png;base64,[A-Za-z0-9+/=]{200,}'", text)


def test_report_needs_nothing_outside_the_file(exported):
    from synthscope_dashboard.report import external_references

    _, path, text = exported
    assert external_references(text) == []
    assert "cdn.plot.ly/plotly" not in text.replace(text[text.index("<script type='text/javascript'>"):text.index("</script>")], "")
    # the check itself finds what it must refuse
    assert external_references("<script src='https://cdn.plot.ly/plotly-2.min.js'></script>")
    assert external_references("<link rel=stylesheet href=//fonts.googleapis.com/css>")
    assert external_references("<style>@import url('https://x.org/a.css');</style>")


def test_a_second_report_never_replaces_the_first(exported):
    app, path, text = exported
    message = app.view("Export").export_report()
    second = Path(re.search(r"class='ss-report-path'>([^<]+)<", message).group(1))
    assert second.name == "synthscope_report-2.html" and path.read_text(encoding="utf-8") == text


@pytest.mark.browser
def test_report_opens_from_disk_without_a_network(exported):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    app, path, _ = exported
    requests, refused = [], []

    def route(handler_route):
        url = handler_route.request.url
        requests.append(url)
        if url.startswith("file://") or url.startswith("data:"):
            handler_route.continue_()
        else:
            refused.append(url)
            handler_route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_selector("#ss-report-scatter.js-plotly-plot .scatterlayer .point", timeout=60_000)
            points = page.locator("#ss-report-scatter .scatterlayer .point").count()
            legend = page.locator("#ss-report-scatter .legend .traces").count()
            tables = page.locator("table.ss-table").count()
            images = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report_top.png"))
            page.locator("#evaluation").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "report_full.png"), full_page=True)
        finally:
            browser.close()
    assert refused == [] and requests and all(url.startswith(("file://", "data:")) for url in requests)
    assert errors == []
    assert points == app.state.workspace.attribution.n
    assert legend == len(app.state.clusters())
    assert tables >= 1 + 2 + 2 * 2           # clusters, ARI/NMI (dev, test), per pair dev and test
    assert images == page_images(exported[2])


def page_images(text: str) -> int:
    return text.count("<img src='data:image/png")
