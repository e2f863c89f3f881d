"""Make the README's screenshots from the offline demo, in headless Chromium, as an analyst would click.

    .venv/bin/synthscope demo --prepare --out DEMO --cache-dir CACHE
    .venv/bin/python docs/make_screenshots.py --demo DEMO --cache-dir CACHE [--out docs]

Only the project's own demo data (procedural phantoms and the generators trained on them) is shown.
Writes, each an optimised PNG of at most about 150 kB:

- dashboard.png: generator fingerprints, the scatter with its space badge, a histogram bar selected
- dashboard-hover.png: the hovered image's thumbnail beside the cursor
- dashboard-clicked.png: a clicked image beside its nearest neighbours
- dashboard-columns.png: coloured by silhouette, filtered to the test split
- dashboard-first-run.png: the first load's progress panel (a server on an empty cache, stopped after it)
- dashboard-membership.png: the membership threshold moved, with its live metrics and CIs
- dashboard-2025.png and dashboard-reliability.png: the 2025 training-subsets tab and its reliability
  diagram, on a 2025 sub-task 2 tree made from the demo (each generator's training set as its subset)

It prints the hover thumbnail's latency in the page (hover event to image shown), first and repeated.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VISIBLE_PLOT = "[...document.querySelectorAll('.ss-view .js-plotly-plot')].find(e => e.offsetParent)"
MAX_BYTES = 150_000
WIDTH = 1500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(data: Path, cache: Path, exports: Path, k: int | None = None) -> tuple[subprocess.Popen, str]:
    from synthscope.commands.dashboard import voila_command, wait_until_serving

    port = free_port()
    argv, env = voila_command(data, "127.0.0.1", port, k=k, export_dir=exports)
    env["SYNTHSCOPE_CACHE_DIR"] = str(cache)
    env["SYNTHSCOPE_SCATTER_ENGINE"] = "plotly"
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process)
    except RuntimeError as error:
        process.kill()
        raise SystemExit(str(error))
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.terminate()   # Voila shuts its kernels down
    process.wait(timeout=30)


@contextlib.contextmanager
def own_session(cache: Path, data: Path):
    """Pages start from a fresh session: the analyst's saved session for `data` (curation, filter) is set
    aside while the screenshots are taken, and put back after."""
    from synthscope_dashboard.session import session_path

    saved = session_path(cache, str(data))
    aside = saved.with_name(saved.name + ".screenshots-aside")
    if saved.exists():
        saved.replace(aside)
    try:
        yield
    finally:
        saved.unlink(missing_ok=True)
        if aside.exists():
            aside.replace(saved)


def demo_k(demo: Path) -> int | None:
    truth = demo / "subtask2" / "test_ground_truth.csv"   # k = the generators the task states
    return len({line.split(",")[1].strip() for line in truth.read_text().splitlines()[1:] if "," in line}) or None


def make_2025_tree(demo: Path, root: Path) -> Path:
    """The demo in the 2025 sub-task 2 layout: dev/real/<subset>/ = one generator's training images (from
    the real pool, as config.json lists them), dev/generated/<subset>/ = that generator's sub-task 2 dev
    images; test/generated_unknown/ = the sub-task 2 test images (a quarter from a generator dev lacks)."""
    config = json.loads((demo / "config.json").read_text())
    key = dict(line.split(",")[:2] for line in (demo / "subtask2" / "model_key.csv").read_text().splitlines()[1:])
    for model, architecture in key.items():
        generated = demo / "subtask2" / "dev" / model
        if not generated.is_dir():
            continue   # the generator unseen in dev
        for image_id in config["splits"]["train"][architecture]:
            _copy(demo / "real_pool" / f"{image_id}.png", root / "dev" / "real" / architecture)
        for file in sorted(generated.glob("*.png")):
            _copy(file, root / "dev" / "generated" / architecture)
    for file in sorted((demo / "subtask2" / "test" / "generated_unknown").glob("*.png")):
        _copy(file, root / "test" / "generated_unknown")
    return root


def _copy(file: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(file, folder / file.name)


def optimise(path: Path, limit: int = MAX_BYTES) -> int:
    """Re-save a screenshot as a palette PNG (fewer colours, then smaller, until it fits `limit` bytes)."""
    from PIL import Image

    original = Image.open(path).convert("RGB")
    image = original
    for colors, scale in ((256, 1.0), (128, 1.0), (128, 0.85), (96, 0.75), (64, 0.65)):
        if scale != 1.0:
            image = original.resize((round(original.width * scale), round(original.height * scale)), Image.LANCZOS)
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True)
        if path.stat().st_size <= limit:
            break
    return path.stat().st_size


def open_app(browser, url: str, viewport_height: int = 1000):
    page = browser.new_page(viewport={"width": WIDTH, "height": viewport_height})
    page.set_default_timeout(120_000)
    page.goto(url, timeout=300_000)
    page.wait_for_selector(".ss-app", timeout=600_000)
    return page


def drag(page, x0, y0, x1, y1) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(x0 + (x1 - x0) * step / 12, y0 + (y1 - y0) * step / 12)
    page.mouse.up()


def box_over_bars(page, plot_css: str, fraction: tuple[float, float]) -> None:
    """A box over the bars of a histogram between two fractions of its x axis."""
    x0, y0, x1, y1 = page.evaluate(f"""() => {{ const gd = [...document.querySelectorAll('{plot_css}')]
        .find(e => e.offsetParent); const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        return [r.left + xa._offset + xa._length * {fraction[0]}, r.top + ya._offset + 2,
                r.left + xa._offset + xa._length * {fraction[1]}, r.top + ya._offset + ya._length - 2]; }}""")
    drag(page, x0, y0, x1, y1)
    page.wait_for_timeout(2500)


TO_TOP = """() => { for (const e of document.querySelectorAll('*')) if (e.scrollTop > 0 && !e.closest('.js-plotly-plot'))
  e.scrollTop = 0; }"""


def full_page(page, path: Path, height: int = 2400) -> None:
    """Voila's page scrolls inside its panel, so a full-page screenshot would hold one screen: make the
    window as tall as the page instead (the panel fills the window), then shoot from the top."""
    page.set_viewport_size({"width": WIDTH, "height": height})
    page.wait_for_timeout(1500)
    page.evaluate(TO_TOP)
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.wait_for_timeout(800)


def shoot(page, selectors: str | list[str], path: Path, pad: int = 8, extra: dict | None = None,
          scroll: bool = True) -> None:
    """The visible elements matching `selectors` (the rectangle around them all), with `pad` px around
    (and `extra` px more on any side); `scroll`: the first one scrolled to the top first."""
    selectors = [selectors] if isinstance(selectors, str) else selectors
    find = "sel => [...document.querySelectorAll(sel)].find(e => e.offsetParent)"
    if scroll:
        page.evaluate(f"sel => ({find})(sel).scrollIntoView({{block: 'start'}})", selectors[0])
        page.wait_for_timeout(600)
    rects = [page.evaluate(f"sel => ({find})(sel).getBoundingClientRect().toJSON()", sel) for sel in selectors]
    extra = extra or {}
    left = max(0, min(r["left"] for r in rects) - pad - extra.get("left", 0))
    top = max(0, min(r["top"] for r in rects) - pad - extra.get("top", 0))
    right = min(WIDTH, max(r["right"] for r in rects) + pad + extra.get("right", 0))
    bottom = max(r["bottom"] for r in rects) + pad + extra.get("bottom", 0)
    page.screenshot(path=str(path), clip={"x": left, "y": top, "width": right - left, "height": bottom - top})


def plot_points(page) -> list[tuple[float, float]]:
    return [tuple(p) for p in page.evaluate(f"""() => {{ const gd = {VISIBLE_PLOT};
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect(), t = gd.data[0];
        return Array.from(t.x, (x, i) => [r.left + xa._offset + xa.d2p(x), r.top + ya._offset + ya.d2p(t.y[i])]); }}""")]


def hover_latency(page, point) -> float:
    """Hover `point` and return the page's milliseconds from the hover event to the thumbnail shown."""
    page.mouse.move(point[0] - 40, point[1] - 40)
    page.mouse.move(*point, steps=4)
    page.wait_for_function("""() => { const b = document.querySelector('.ss-hover-thumb');
        return b && b.style.display === 'block' && b.querySelector('img').dataset.key === b.dataset.key; }""",
                           timeout=30_000)
    return float(page.evaluate("() => Number(document.querySelector('.ss-hover-thumb').dataset.latencyMs)"))


def generator_views(page, out: Path, written: list[Path]) -> None:
    page.locator(".lm-TabBar-tab", has_text="Generator fingerprints").first.click()
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas")
    page.wait_for_timeout(1500)
    page.locator(".ss-view:visible .ss-column-histogram").first.scroll_into_view_if_needed()
    box_over_bars(page, ".ss-column-histogram .js-plotly-plot", (0.02, 0.2))
    full_page(page, out / "dashboard.png", height=1000)
    written.append(out / "dashboard.png")

    # the hovered image beside the cursor: first hovers ask the kernel, hovering back is kept in the page
    page.keyboard.press("Escape")
    page.evaluate(f"() => {VISIBLE_PLOT}.scrollIntoView({{block: 'center'}})")
    page.wait_for_timeout(800)
    points = plot_points(page)
    order = sorted(range(len(points)), key=lambda i: (points[i][0] - 700) ** 2 + (points[i][1] - 500) ** 2)
    targets = [points[i] for i in order[::max(1, len(order) // 8)][:8]]
    first = [hover_latency(page, p) for p in targets]
    page.mouse.move(5, 5)
    again = [hover_latency(page, p) for p in targets]
    print(f"hover -> thumbnail in the page, ms: first hovers {[round(v) for v in first]}, "
          f"hovering back {[round(v) for v in again]}")
    hover_latency(page, targets[0])
    page.wait_for_timeout(400)
    shoot(page, ".ss-view .ss-scatter-box .js-plotly-plot", out / "dashboard-hover.png", extra={"top": 30},
          scroll=False)
    written.append(out / "dashboard-hover.png")

    page.mouse.click(*targets[0])
    page.wait_for_selector(".ss-view:visible .ss-detail-full")
    page.wait_for_function("() => [...document.querySelectorAll('.ss-neighbours img')].filter(e => e.offsetParent)"
                           ".every(e => e.complete && e.naturalWidth > 0)")
    page.wait_for_timeout(2000)   # the page scrolls the panel into view
    shoot(page, ".ss-detail", out / "dashboard-clicked.png")
    written.append(out / "dashboard-clicked.png")

    page.keyboard.press("Escape")
    page.locator(".ss-view:visible .ss-color-by select").first.select_option(label="silhouette")
    page.locator(".ss-view:visible .ss-filter-column select").first.select_option(label="split")
    page.locator(".ss-view:visible .ss-filter-values select").first.select_option(label="test")
    page.wait_for_timeout(2500)
    full_page(page, out / "dashboard-columns.png", height=1000)
    written.append(out / "dashboard-columns.png")


def membership_view(page, out: Path, written: list[Path]) -> None:
    page.locator(".lm-TabBar-tab", has_text="Training-data fingerprints").first.click()
    page.wait_for_selector(".ss-view:visible .ss-score-histogram .trace.bars")
    handle = page.locator(".ss-view:visible .ss-threshold .noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    track = page.locator(".ss-view:visible .ss-threshold .noUi-target").first.bounding_box()
    before = page.locator(".ss-view:visible .ss-membership-metrics").first.inner_text()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.62 * track["width"], box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()
    page.wait_for_function("text => { const m = [...document.querySelectorAll('.ss-membership-metrics')]"
                           ".find(e => e.offsetParent); return m && m.innerText !== text; }", arg=before)
    page.wait_for_timeout(2000)
    page.set_viewport_size({"width": WIDTH, "height": 1800})   # the controls down to the metrics in one screen
    page.wait_for_timeout(1000)
    shoot(page, [".ss-view .ss-threshold", ".ss-view .ss-score-histogram", ".ss-view .ss-membership-metrics"],
          out / "dashboard-membership.png", extra={"left": 60})
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    written.append(out / "dashboard-membership.png")


def first_run(browser, demo: Path, out: Path, written: list[Path]) -> None:
    """A server on an empty cache: the page shows the first load's progress; shot once a few steps are done."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as exports:
        process, url = serve(demo, Path(cache), Path(exports), demo_k(demo))
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 600})
            page.goto(url, timeout=300_000)
            page.wait_for_selector(".ss-progress", timeout=300_000)
            page.wait_for_function("() => { const d = document.querySelector('.ss-progress-done');"
                                   " return d && (d.innerText.match(/✓/g) || []).length >= 3; }", timeout=600_000)
            page.wait_for_timeout(500)
            shoot(page, ".ss-progress", out / "dashboard-first-run.png", pad=12)
            written.append(out / "dashboard-first-run.png")
            page.close()
        finally:
            stop(process)


def subsets_view(browser, demo: Path, out: Path, written: list[Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="synthscope-demo-2025-") as work:
        tree = make_2025_tree(demo, Path(work) / "demo-2025")
        process, url = serve(tree, Path(work) / "cache", Path(work) / "exports")
        try:
            page = open_app(browser, url)
            page.locator(".lm-TabBar-tab", has_text="Training subsets (2025)").first.click()
            page.wait_for_selector(".ss-view:visible .ss-subset-confusion")
            page.wait_for_selector(".ss-view:visible .js-plotly-plot .bars path")
            page.wait_for_timeout(2000)
            full_page(page, out / "dashboard-2025.png", height=1000)
            written.append(out / "dashboard-2025.png")
            page.set_viewport_size({"width": WIDTH, "height": 1600})   # the diagram and its table in one screen
            page.wait_for_timeout(1000)
            # the reliability diagram is the tab's first plot
            shoot(page, [".ss-view .js-plotly-plot", ".ss-view .ss-subset-reliability"], out / "dashboard-reliability.png")
            written.append(out / "dashboard-reliability.png")
        finally:
            stop(process)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--only", nargs="*", choices=["generators", "membership", "first-run", "2025"],
                        help="make only these (default: all)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    demo, only = args.demo.resolve(), set(args.only or ["generators", "membership", "first-run", "2025"])
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        if only & {"generators", "membership"}:
            with tempfile.TemporaryDirectory() as exports, own_session(args.cache_dir.resolve(), demo):
                process, url = serve(demo, args.cache_dir.resolve(), Path(exports), demo_k(demo))
                try:
                    page = open_app(browser, url)
                    if "generators" in only:
                        generator_views(page, args.out, written)
                    if "membership" in only:
                        membership_view(page, args.out, written)
                    page.close()
                finally:
                    stop(process)
        if "first-run" in only:
            first_run(browser, demo, args.out, written)
        if "2025" in only:
            subsets_view(browser, demo, args.out, written)
        browser.close()
    for path in written:
        print(f"{path}  {optimise(path) / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
