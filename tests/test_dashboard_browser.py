"""The real dashboard in a real browser: Voila serves dashboard/app.ipynb, Playwright drives Chromium.

Screenshots of every view go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import json

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PAGE_TIMEOUT_MS = 240_000   # first page: kernel start + reading and embedding the fixture on 2 busy cores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium; `make browser` does it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from test_dashboard_state import make_bench

    from synthscope.commands.dashboard import voila_command

    bench = make_bench(tmp_path_factory.mktemp("bench"), n=12)
    cache = tmp_path_factory.mktemp("cache")
    port = _free_port()
    argv, env = voila_command(bench, "127.0.0.1", port)
    env["SYNTHSCOPE_CACHE_DIR"] = str(cache)
    log = open(tmp_path_factory.mktemp("voila") / "voila.log", "w+")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "voila/static/", timeout=2)
            break
        except urllib.error.HTTPError:   # any answer means the server is up
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                log.seek(0)
                process.kill()
                pytest.fail("Voila did not start:\n" + log.read()[-3000:])
            time.sleep(0.5)
    yield {"url": url, "cache": cache, "bench": bench, "log": log}
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(server["url"], timeout=PAGE_TIMEOUT_MS)
        try:
            page.wait_for_selector(".ss-app", timeout=PAGE_TIMEOUT_MS)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "dashboard-failed-load.png"), full_page=True)
            server["log"].seek(0)
            raise AssertionError("dashboard did not render; Voila log:\n" + server["log"].read()[-3000:])
        yield page
        browser.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _open_tab(page, title: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=title).first.click()


def _metric(page, name: str) -> str:
    return page.locator(f".ss-view:visible [data-metric='{name}']").first.inner_text()


def _shot(page, name: str) -> None:
    page.wait_for_timeout(600)   # let plotly finish drawing
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_overview_renders(page):
    assert page.locator("text=Loaded").first.is_visible()
    assert page.locator(".ss-view:visible img").count() >= 6, "sample thumbnails per group"
    expect(page.locator(".ss-guide")).to_contain_text("set k from the task → cluster → curate → export")
    expect(page.locator(".ss-guide")).to_contain_text("read the gate (the dev leakage test)")
    assert not page.locator(".ss-glossary td").first.is_visible(), "the glossary starts folded"
    page.locator(".ss-glossary summary").click()
    expect(page.locator(".ss-glossary th", has_text="Bonferroni ×N")).to_be_visible()
    _shot(page, "overview")


def test_scatter_lasso_moves_points_and_ari_changes(page):
    _open_tab(page, "Generator fingerprints")
    plot = page.locator(".ss-view:visible .js-plotly-plot").first
    plot.wait_for()
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas")
    _shot(page, "generators")
    before = _metric(page, "ari")
    drag = page.locator(".ss-view:visible .js-plotly-plot .nsewdrag").first.bounding_box()
    # a lasso around the whole plot: every point goes to one new cluster, so ARI must fall to 0
    x0, y0, w, h = drag["x"], drag["y"], drag["width"], drag["height"]
    path = [(x0 + 0.02 * w, y0 + 0.02 * h), (x0 + 0.98 * w, y0 + 0.02 * h), (x0 + 0.98 * w, y0 + 0.98 * h),
            (x0 + 0.02 * w, y0 + 0.98 * h), (x0 + 0.02 * w, y0 + 0.03 * h)]
    page.mouse.move(*path[0])
    page.mouse.down()
    for (xa, ya), (xb, yb) in zip(path, path[1:]):
        for step in range(1, 9):
            page.mouse.move(xa + (xb - xa) * step / 8, ya + (yb - ya) * step / 8)
    page.mouse.up()
    selected = page.locator(".ss-view:visible b", has_text=re.compile(r"^\d[\d,]*$")).first
    page.wait_for_function("() => [...document.querySelectorAll('b')].some(b => /^[1-9][\\d,]*$/.test(b.textContent))")
    assert int(selected.inner_text().replace(",", "")) > 0
    page.locator(".ss-move").first.click()
    page.wait_for_function(
        "before => { const e = [...document.querySelectorAll(\"[data-metric='ari']\")].find(x => x.offsetParent);"
        " return e && e.textContent !== before; }", arg=before)
    assert _metric(page, "ari") != before and float(_metric(page, "ari")) == pytest.approx(0.0, abs=1e-3)
    expect(page.locator(".ss-status-line")).to_contain_text("moved")
    _shot(page, "generators-after-lasso")


def test_threshold_slider_changes_f1(page):
    _open_tab(page, "Training-data fingerprints")
    handle = page.locator(".ss-threshold .noUi-handle").first
    handle.wait_for()
    before = _metric(page, "f1")
    box = handle.bounding_box()
    track = page.locator(".ss-threshold .noUi-target").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    # to the top of the range: on this bench every dev threshold between the classes gives F1 1.000, so a
    # drag to 85 % (the old move) changed nothing; above every score nothing is called used
    page.mouse.move(track["x"] + track["width"] + 40, box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()
    page.wait_for_function(
        "before => { const e = [...document.querySelectorAll(\"[data-metric='f1']\")].find(x => x.offsetParent);"
        " return e && e.textContent !== before; }", arg=before)
    assert _metric(page, "f1") != before
    expect(page.locator(".ss-status-line")).to_contain_text("threshold of")
    _shot(page, "training")


NO_SIDEWAYS_SCROLL = """() => {
  const out = [], root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth) out.push(['document', root.scrollWidth, root.clientWidth]);
  for (const e of document.querySelectorAll('*')) {
    if (!e.offsetParent || e.closest('.js-plotly-plot, .noUi-target')) continue;
    const overflow = getComputedStyle(e).overflowX;
    if (['auto', 'scroll'].includes(overflow) && e.scrollWidth > e.clientWidth)
      out.push([e.className.toString().slice(0, 60), e.scrollWidth, e.clientWidth]);
  }
  return out; }"""


def test_the_training_tab_does_not_scroll_sideways(page):
    _open_tab(page, "Training-data fingerprints")
    page.locator(".ss-score-grid img").first.wait_for()
    assert page.evaluate(NO_SIDEWAYS_SCROLL) == []
    page.locator(".ss-thumb button").first.click()
    page.locator(".ss-colorbar").first.wait_for()
    assert page.evaluate(NO_SIDEWAYS_SCROLL) == []


def test_score_grid_focuses_an_image_and_evaluation_mode_shows_test_scores(page):
    _open_tab(page, "Training-data fingerprints")
    grid = page.locator(".ss-score-grid")
    expect(page.locator(".ss-page-label")).to_contain_text("page 1 of 2 · images 1–24 of 48")   # 48 per pair
    assert grid.locator("img:visible").count() == 24
    page.locator(".ss-view:visible button", has_text="Next").click()
    expect(page.locator(".ss-page-label")).to_contain_text("page 2 of 2")
    second = grid.locator(".ss-thumb-caption b").first.inner_text()
    grid.locator(".ss-thumb button").nth(2).click()
    image_id = grid.locator(".ss-thumb-caption").nth(2).locator("b").first.inner_text()
    expect(page.locator(".ss-view:visible .ss-thumb-focused")).to_contain_text(image_id)
    expect(page.locator(".ss-view:visible b", has_text=image_id).last).to_be_visible()
    expect(page.locator(".ss-colorbar").first).to_be_visible()
    page.locator(".ss-view:visible input[placeholder='image id contains…']").fill(second)
    expect(page.locator(".ss-page-label")).to_contain_text("of 1 ")
    # test-label scores: hidden until evaluation mode is switched on, with a banner and a status line
    caption = page.locator(".ss-membership-metrics caption", has_text="test (ground-truth file, evaluation only)")
    assert caption.count() == 0
    expect(page.locator(".ss-view:visible .ss-eval-hidden")).to_be_visible()
    assert page.locator(".ss-eval-banner").count() == 0
    page.locator(".ss-evaluation-toggle").click()
    expect(page.locator(".ss-eval-banner")).to_contain_text("do not tune with it on")
    expect(page.locator(".ss-status-line")).to_contain_text("evaluation mode ON")
    expect(caption.first).to_be_visible()
    assert page.locator(".ss-view:visible .ss-eval-hidden").count() == 0
    _shot(page, "training-evaluation-mode")


def test_export_writes_a_valid_run_file(page, server):
    from synthscope_dashboard.runs import validate_run_file

    _open_tab(page, "Export")
    page.locator(".ss-export-st1").first.click()
    page.wait_for_selector(".ss-run-path")
    run_path = Path(page.locator(".ss-run-path").first.inner_text())
    assert run_path.is_file() and str(server["cache"]) in str(run_path)
    truth = (server["bench"] / "subtask1" / "test_ground_truth.csv").read_text().split()[1:]
    expected = [line.split(",")[0] for line in truth]
    check = validate_run_file(run_path, "membership", expected)
    assert check.ok, check.errors
    page.locator(".ss-export-st2").first.click()
    page.wait_for_function("() => document.querySelectorAll('.ss-run-path').length && "
                           "document.querySelector('.ss-export-result').textContent.includes('sub-task 2')")
    _shot(page, "export")


def test_reload_restores_the_curation(page, server):
    _open_tab(page, "Generator fingerprints")
    curated_ari = _metric(page, "ari")
    page.reload()
    page.wait_for_selector(".ss-app", timeout=PAGE_TIMEOUT_MS)
    expect(page.locator(".ss-status-line")).to_contain_text("restored")
    assert page.locator(".ss-eval-banner").count() == 0, "a reloaded page opens with evaluation mode off"
    _open_tab(page, "Generator fingerprints")
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas")
    assert _metric(page, "ari") == curated_ari
    _open_tab(page, "Training-data fingerprints")
    page.locator(".ss-threshold").first.wait_for()
    # the slider shows the moved threshold that the session file kept (readout format .4g)
    saved = json.loads(next((server["cache"] / "sessions").glob("*.json")).read_text())["thresholds"]
    shown = float(page.locator(".ss-threshold .widget-readout").first.inner_text().replace("\u2212", "-"))
    assert shown == pytest.approx(next(iter(saved.values())), rel=1e-3)
    page.locator(".lm-TabBar-tab", has_text="Overview").first.click()
    page.locator("text=Presentation mode").first.click()
    _open_tab(page, "Generator fingerprints")
    _shot(page, "presentation")
    assert not page.locator(".ss-move").first.is_visible()
    # presentation mode: no working UI on the training tab, but each threshold's value as text
    _open_tab(page, "Training-data fingerprints")
    expect(page.locator(".ss-view:visible .ss-threshold-value").first).to_contain_text("threshold ")
    assert re.search(r"threshold -?\d", page.locator(".ss-view:visible .ss-threshold-value").first.inner_text())
    assert page.locator(".ss-view:visible .ss-threshold").count() == 0 or not page.locator(".ss-threshold").first.is_visible()
    working = page.locator(".ss-view:visible button:visible, .ss-view:visible select:visible, "
                           ".ss-view:visible input:visible")
    assert working.count() == 0, [working.nth(i).evaluate("e => e.outerHTML.slice(0, 160)") for i in range(working.count())]
    assert not page.locator(".ss-evaluation-toggle").is_visible()
    _shot(page, "training-presentation")
