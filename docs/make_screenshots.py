"""Make the README's screenshots from the offline demo, in headless Chromium, as an analyst would click.

    .venv/bin/synthscope demo --prepare --out DEMO --cache-dir CACHE
    .venv/bin/python docs/make_screenshots.py --demo DEMO --cache-dir CACHE [--out docs]

Writes dashboard.png (generator fingerprints: clusters, a histogram bar selected, its images),
dashboard-columns.png (coloured by silhouette, filtered to the test split),
dashboard-membership.png (training-data fingerprints: score bars picked, the grid, a focused pair).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VISIBLE_PLOT = "[...document.querySelectorAll('.ss-view .js-plotly-plot')].find(e => e.offsetParent)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(demo: Path, cache: Path, exports: Path) -> tuple[subprocess.Popen, str]:
    from synthscope.commands.dashboard import voila_command, wait_until_serving

    truth = demo / "subtask2" / "test_ground_truth.csv"   # k = the generators the task states
    k = len({line.split(",")[1].strip() for line in truth.read_text().splitlines()[1:] if "," in line}) or None
    port = free_port()
    argv, env = voila_command(demo, "127.0.0.1", port, k=k, export_dir=exports)
    env["SYNTHSCOPE_CACHE_DIR"] = str(cache)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process)
    except RuntimeError as error:
        process.kill()
        raise SystemExit(str(error))
    return process, url


def drag(page, x0, y0, x1, y1) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(x0 + (x1 - x0) * step / 12, y0 + (y1 - y0) * step / 12)
    page.mouse.up()


def box_over_bars(page, plot_css: str, fraction: tuple[float, float]) -> None:
    """A box over the bars of a histogram between two fractions of its x axis."""
    x0, y0, x1, y1 = page.evaluate(f"""() => {{ const gd = document.querySelector('{plot_css}');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        return [r.left + xa._offset + xa._length * {fraction[0]}, r.top + ya._offset + 2,
                r.left + xa._offset + xa._length * {fraction[1]}, r.top + ya._offset + ya._length - 2]; }}""")
    drag(page, x0, y0, x1, y1)
    page.wait_for_timeout(2500)


TO_TOP = """() => { for (const e of document.querySelectorAll('*')) if (e.scrollTop > 0 && !e.closest('.js-plotly-plot'))
  e.scrollTop = 0; }"""


def full_page(page, path: Path, height: int = 2400) -> None:
    """Voila's page scrolls inside its panel, so a full-page screenshot would hold one screen: make the
    window as tall as the page instead (the panel fills the window), then shoot from the top."""
    page.set_viewport_size({"width": 1500, "height": height})
    page.wait_for_timeout(1500)
    page.evaluate(TO_TOP)
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1500, "height": 1000})
    page.wait_for_timeout(800)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as exports:
        process, url = serve(args.demo.resolve(), args.cache_dir.resolve(), Path(exports))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                page.set_default_timeout(120_000)
                page.goto(url, timeout=300_000)
                page.wait_for_selector(".ss-app", timeout=300_000)

                tab = page.locator(".lm-TabBar-tab", has_text="Generator fingerprints").first
                tab.click()
                page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas")
                page.wait_for_timeout(1500)
                page.locator(".ss-view:visible .ss-column-histogram").first.scroll_into_view_if_needed()
                box_over_bars(page, ".ss-column-histogram .js-plotly-plot", (0.02, 0.2))
                page.locator(".ss-view:visible .ss-gallery-card button").first.click()
                page.wait_for_timeout(2500)
                full_page(page, args.out / "dashboard.png")

                page.keyboard.press("Escape")
                page.locator(".ss-view:visible .ss-color-by select").first.select_option(label="silhouette")
                page.locator(".ss-view:visible .ss-filter-column select").first.select_option(label="split")
                page.locator(".ss-view:visible .ss-filter-values select").first.select_option(label="test")
                page.wait_for_timeout(2500)
                full_page(page, args.out / "dashboard-columns.png", height=1150)

                page.locator(".lm-TabBar-tab", has_text="Training-data fingerprints").first.click()
                page.wait_for_selector(".ss-view:visible .ss-score-histogram .trace.bars")
                page.locator(".ss-view:visible .ss-score-histogram").first.scroll_into_view_if_needed()
                page.wait_for_timeout(1000)
                box_over_bars(page, ".ss-score-histogram .js-plotly-plot", (0.55, 1.0))
                page.locator(".ss-view:visible .ss-thumb button").first.click()
                page.wait_for_timeout(3000)
                full_page(page, args.out / "dashboard-membership.png")
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=20)
    for name in ("dashboard.png", "dashboard-columns.png", "dashboard-membership.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
