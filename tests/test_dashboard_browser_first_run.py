"""Issue 22 item 4 / defect 2 in a real browser: a cold first load shows its progress (per data set and
extractor, with an ETA) in the page while the kernel works, then the app; the Prepare button runs
`synthscope prepare` from the page with the same progress, then re-reads the caches.

A server of its own with an empty cache and no preheated kernel, so the load starts when the page is opened.
"""

from __future__ import annotations

import pytest

from test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, expect

from voila_server import voila_server

pytestmark = pytest.mark.browser

#: every text the progress line showed, recorded in the page (a poll from here could miss short steps)
RECORD = """() => {
  window.ssProgress = [];
  const seen = () => document.querySelectorAll('.ss-progress-line').forEach(el => {
    const text = el.innerText; if (text && window.ssProgress[window.ssProgress.length - 1] !== text) window.ssProgress.push(text);
  });
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
  seen();
}"""


@pytest.fixture(scope="module")
def cold_server(tmp_path_factory):
    import shutil

    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium; `make browser` does it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from test_dashboard_state import make_bench

    bench = make_bench(tmp_path_factory.mktemp("bench"), n=12)
    try:
        with voila_server(bench, tmp_path_factory.mktemp("voila"), preheat=False) as served:
            yield {**served, "bench": bench}
    except RuntimeError as error:   # the server did not start: its log's tail
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def _log(server) -> str:
    server["log"].seek(0)
    return server["log"].read()[-3000:]


@pytest.mark.timeout(900)
def test_a_cold_first_load_shows_its_progress_then_the_app(browser, cold_server):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(cold_server["url"], timeout=240_000)
    try:
        page.wait_for_selector(".ss-progress-line", timeout=240_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "first-run-no-progress.png"), full_page=True)
        raise AssertionError("no progress shown during the first load; Voila log:\n" + _log(cold_server))
    page.evaluate(RECORD)
    assert page.locator(".ss-app").count() == 0      # the progress came first, while the kernel worked
    page.screenshot(path=str(ARTIFACTS / "dashboard-first-run-progress.png"), full_page=True)
    page.wait_for_selector(".ss-app", timeout=600_000)
    texts = page.evaluate("() => window.ssProgress")
    assert any("fingerprint features of " in text and "images" in text for text in texts), texts
    assert any("membership scores of" in text for text in texts), texts
    assert any(" left" in text for text in texts), texts           # an ETA once a pace was measured
    assert all("step " in text for text in texts if "%" in text), texts
    expect(page.locator(".ss-progress")).to_have_count(0)          # the panel gave way to the app
    expect(page.locator(".lm-TabBar-tab", has_text="Generator fingerprints")).to_have_count(1)
    page.close()


@pytest.mark.timeout(900)
def test_the_prepare_button_runs_prepare_with_progress_then_rereads_the_caches(browser, cold_server):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(cold_server["url"], timeout=240_000)
    page.wait_for_selector(".ss-app", timeout=600_000)            # warm now: the first test embedded
    button = page.locator(".ss-prepare button, button.ss-prepare").first
    expect(button).to_be_enabled()
    button.click()
    page.wait_for_selector(".ss-app .ss-progress-line", timeout=60_000)
    page.evaluate(RECORD)
    expect(button).to_be_disabled()
    # UMAP compiles (numba) for a minute or more on a busy machine
    expect(page.locator(".ss-app .ss-progress-line")).to_contain_text("prepared", timeout=600_000)
    texts = page.evaluate("() => window.ssProgress")
    assert any("UMAP of fingerprint" in text or "TSNE of fingerprint" in text for text in texts), texts
    assert any("pixels features of" in text for text in texts), texts
    status = page.locator(".ss-status-line .ss-status")
    expect(status).to_contain_text("data re-read")
    expect(status).to_contain_text("UMAP")
    expect(button).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / "dashboard-first-run-prepared.png"), full_page=True)
    page.close()
