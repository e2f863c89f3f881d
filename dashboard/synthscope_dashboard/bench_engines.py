"""`make bench` browser section, issue 22 item 1: the main scatter's two engines side by side.

plotly's FigureWidget and jupyter-scatter (views/generator_jscatter.py), each on the real page (Voila,
`synthscope dashboard`'s command line) forced with `scatter_engine`, at 50,000, 200,000 and 1,000,000
generated points (and as many real ones): warm page load, box/lasso → the page's count, Move →
recoloured, colour by a column, projection switch. Goals at 1M (issue 22): < 1 s per interaction,
< 1.5 s for the projection switch, < 30 s for a warm page load.

How "shown" is detected: plotly as in bench_browser.py (its data in the page, `plotly_afterplot`);
jupyter-scatter keeps its data inside regl-scatterplot, so an init script counts the kernel websocket's
large binary frames (the points array, 16 bytes a point) and the page's WebGL draw calls: an interaction
is shown at the last draw call after its points arrived, once drawing has stopped (page clock).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from synthscope_dashboard.bench_browser import (_SHOWN_COUNT, CHROMIUM, GENERATORS, LAUNCH_ARGS, LOAD_TIMEOUT_MS,
                                                STEP_TIMEOUT_MS, Step, Traffic, _load_average, _open_tab, _timed,
                                                _voila)

SIZES = (50_000, 200_000, 1_000_000)
REPEATS = {50_000: 3, 200_000: 2, 1_000_000: 1}   # one repetition at 1M: minutes per page on two cores
GOALS_MS = {"selection": 1000.0, "move": 1000.0, "colour": 1000.0, "projection": 1500.0, "warm load": 30_000.0}
JSCATTER = ".ss-view:visible .ss-jscatter canvas"

#: counts big binary frames from the kernel and WebGL draw calls (page clock), before the page's own code runs
PROBE = """(() => {
  window.__ssBig = 0; window.__ssBigAt = 0; window.__ssDraws = 0; window.__ssDrawAt = 0; window.__ssBigBytes = 1e12;
  const Native = window.WebSocket;
  function Probed(...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', e => {
      const n = (e.data && (e.data.byteLength || e.data.size || e.data.length)) || 0;
      if (n >= window.__ssBigBytes) { window.__ssBig++; window.__ssBigAt = performance.now(); }
    });
    return ws;
  }
  Probed.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Probed[k] = Native[k];
  window.WebSocket = Probed;
  for (const C of [window.WebGLRenderingContext, window.WebGL2RenderingContext]) {
    if (!C) continue;
    for (const f of ['drawArrays', 'drawElements']) {
      const original = C.prototype[f];
      C.prototype[f] = function (...a) { window.__ssDraws++; window.__ssDrawAt = performance.now(); return original.apply(this, a); };
    }
  }
})();"""
_MARK = "() => ({big: window.__ssBig, now: performance.now()})"
#: the points arrived after `before` and were drawn, and nothing has been drawn for 150 ms
_DRAWN_AFTER = """before => window.__ssBig > before.big && window.__ssDrawAt > window.__ssBigAt
                  && performance.now() - window.__ssDrawAt > 150"""


def _jscatter_timed(page, traffic: Traffic, step: Step, act) -> bool:
    """`act()` → its points array arrived and was drawn; ms on the page's clock (action → last draw)."""
    mark = traffic.mark()
    before = page.evaluate(_MARK)
    try:
        act()
        page.wait_for_function(_DRAWN_AFTER, arg=before, timeout=STEP_TIMEOUT_MS, polling=50)
    except Exception as error:   # noqa: BLE001 - reported, the other steps still run
        step.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
        traffic.wait_quiet(page)
        return False
    step.ms.append(page.evaluate("before => window.__ssDrawAt - before.now", before))
    shown_at = time.time()
    traffic.wait_quiet(page)
    step.traffic.append(traffic.since(mark, shown_at))
    return True


def load(page, traffic: Traffic, url: str, n_points: int, engine: str, step: Step) -> bool:
    """Navigation → app → generator tab → all n points drawn (plotly: its trace holds n x values)."""
    from synthscope_dashboard.bench_browser import _PLOT

    mark = traffic.mark()
    start = time.perf_counter()
    try:
        page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector(".ss-app", timeout=LOAD_TIMEOUT_MS)
        step.notes.setdefault("app_shown_ms", []).append(round(1000 * (time.perf_counter() - start)))
        _open_tab(page, GENERATORS)
        if engine == "plotly":
            page.wait_for_function(f"n => {{ const gd = {_PLOT}; return gd && gd.data && gd.data[0] && gd.data[0].x &&"
                                   " gd.data[0].x.length === n && gd.querySelector('canvas'); }", arg=n_points,
                                   timeout=LOAD_TIMEOUT_MS, polling=200)
        else:
            page.wait_for_selector(JSCATTER, timeout=LOAD_TIMEOUT_MS)
            page.wait_for_function(_DRAWN_AFTER, arg={"big": 0}, timeout=LOAD_TIMEOUT_MS, polling=100)
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    except Exception as error:   # noqa: BLE001
        step.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
        return False
    step.ms.append(1000 * (time.perf_counter() - start))
    shown_at = time.time()
    traffic.wait_quiet(page)
    step.traffic.append(traffic.since(mark, shown_at))
    return True


def _plot_area(page, engine: str) -> tuple[float, float, float, float]:
    if engine == "plotly":
        from synthscope_dashboard.bench_browser import _plot_box
        return _plot_box(page)
    box = page.locator(JSCATTER).first.bounding_box()
    return box["x"], box["y"], box["width"], box["height"]


def selections(page, traffic: Traffic, engine: str, step: Step, repeats: int) -> None:
    """A box-shaped lasso (both engines lasso on a plain drag) → the page's count."""
    counts = []
    for repeat in range(repeats):
        page.keyboard.press("Escape")
        traffic.wait_quiet(page)
        px, py, pw, ph = _plot_area(page, engine)
        right = 0.35 + 0.5 * (repeat + 1) / (repeats + 1)   # another size each time: another count
        corners = [(px + 0.06 * pw, py + 0.06 * ph), (px + right * pw, py + 0.06 * ph),
                   (px + right * pw, py + 0.94 * ph), (px + 0.06 * pw, py + 0.94 * ph), (px + 0.06 * pw, py + 0.07 * ph)]
        before = page.evaluate(f"() => {_SHOWN_COUNT}")
        page.mouse.move(*corners[0])
        page.mouse.down()
        for x, y in corners[1:]:
            page.mouse.move(x, y, steps=8)
        ok = _timed(page, traffic, step, page.mouse.up,
                    f"before => {{ const n = {_SHOWN_COUNT}; return n > 0 && n !== before; }}", arg=before)
        if ok:
            counts.append(page.evaluate(f"() => {_SHOWN_COUNT}"))
    step.notes["counts"] = counts


def alternate_target(page, repeat: int) -> None:
    """A selection moves once per target (issue 22 defect 12: a double-click moves once), so repeated Moves
    of one selection alternate the target: a new cluster (the last option), then the first cluster."""
    select = page.locator(".ss-view:visible .widget-dropdown", has_text="move to").locator("select").first
    options = select.evaluate("s => s.options.length")
    select.select_option(index=options - 1 if repeat % 2 == 0 else 0)
    page.locator(".ss-view:visible .ss-move:not([disabled])").first.wait_for(timeout=30_000)   # re-armed


def moves(page, traffic: Traffic, engine: str, step: Step, repeats: int) -> None:
    from synthscope_dashboard.bench_browser import _COLOR_SIG

    for repeat in range(repeats):
        alternate_target(page, repeat)
        button = page.locator(".ss-view:visible .ss-move").first
        if engine == "plotly":
            button.scroll_into_view_if_needed()
        box = button.bounding_box()
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        if engine == "plotly":
            before = page.evaluate(f"() => {_COLOR_SIG}")
            _timed(page, traffic, step, lambda: page.mouse.click(*centre), f"before => {_COLOR_SIG} !== before",
                   arg=before, drawn=True)
        else:   # the plot stays on screen (regl-scatterplot may skip drawing a canvas scrolled away)
            page.evaluate("() => window.scrollTo(0, 0)")
            _jscatter_timed(page, traffic, step, lambda: button.evaluate("b => b.click()"))
    step.notes["status_line"] = page.locator(".ss-status-line").first.inner_text().strip()[:160]


def _switch(page, traffic: Traffic, engine: str, step: Step, label: str, repeats: int) -> None:
    """The dropdown `label` (projection, colour by) to another value and back, `repeats` changes."""
    from synthscope_dashboard.bench_browser import _COLOR_SIG, _X_SIG

    select = page.locator(".ss-view:visible .widget-dropdown", has_text=label).locator("select").first
    page.evaluate("() => window.scrollTo(0, 0)")
    options = select.evaluate("s => [...s.options].map(o => o.value)")
    current = select.input_value()
    wanted = {"colour by": ("silhouette", "outlier", "centre_distance")}.get(label, ())
    others = [o for o in options if o != current and (not wanted or o in wanted)] or [o for o in options if o != current]
    if not others:
        step.errors.append(f"only one {label} available: {options}")
        return
    signature = _X_SIG if label == "projection" else _COLOR_SIG
    for repeat in range(repeats):
        target = others[0] if repeat % 2 == 0 else current
        if engine == "plotly":
            before = page.evaluate(f"() => {signature}")
            _timed(page, traffic, step, lambda: select.select_option(target), f"before => {signature} !== before",
                   arg=before, drawn=True)
        else:
            _jscatter_timed(page, traffic, step, lambda: select.select_option(target))
    step.notes["values"] = [current, others[0]]


def measure_engine(url: str, n_points: int, engine: str, repeats: int, loads: int, launch: dict) -> dict:
    """One engine on one page: `loads` page loads (the last one the warm one), then the interactions."""
    from playwright.sync_api import sync_playwright

    steps = {
        "load": Step("load", "navigation → generator tab → every point drawn (fresh kernel; last load: warm caches)"),
        "selection": Step("selection", "box / lasso released → the page's \"N selected\" shows the new count"),
        "move": Step("move", "Move selection clicked → the scatter recoloured and drawn"),
        "colour": Step("colour", "colour-by changed (a number column and back) → recoloured and drawn"),
        "projection": Step("projection", "projection changed → new x/y drawn"),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1600})
            context.add_init_script(PROBE.replace("1e12", str(12 * n_points)))   # the points array: 16 B a point
            page = None
            for _ in range(loads):
                if page is not None:
                    page.close()
                page = context.new_page()
                page.set_default_timeout(STEP_TIMEOUT_MS)
                traffic = Traffic()
                traffic.attach(page)
                if not load(page, traffic, url, n_points, engine, steps["load"]):
                    break
            if steps["load"].ms:
                page.wait_for_timeout(500)
                for name, measure in (("selection", selections), ("move", moves)):
                    try:
                        measure(page, traffic, engine, steps[name], repeats)
                    except Exception as error:   # noqa: BLE001 - one broken step does not lose the others
                        steps[name].errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
                for name, label in (("colour", "colour by"), ("projection", "projection")):
                    try:
                        _switch(page, traffic, engine, steps[name], label, repeats)
                    except Exception as error:   # noqa: BLE001
                        steps[name].errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
            if page is not None:
                page.close()
        finally:
            browser.close()
    return {name: step.summary() for name, step in steps.items()}


def markdown(results: dict) -> str:
    """The engine table: engine × size × step, median ms (max), beside the goals at 1M."""
    goal_of = {"load": "warm load", "selection": "selection", "move": "move", "colour": "colour",
               "projection": "projection"}
    rows = ["| engine | points | load s (warm; kernel s) | selection ms | move ms | colour ms | projection ms | "
            "kernel→page MB per move | kernel busy ms: selection / move / colour / projection | repeats | "
            "load avg at the end (1/5/15 min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, run in results.items():
        engine, n = key.split("@")
        steps = run.get("steps", {})
        if not steps:
            rows.append(f"| {engine} | {int(n):,} | {run.get('error', 'not run')} | | | | | | | | |")
            continue

        def cell(name: str) -> str:
            step = steps.get(name, {})
            if step.get("median_ms") is None:   # a step past its cap is reported as "> cap", not as a failure
                if any("Timeout" in error for error in step.get("errors", [])):
                    return f"> {(LOAD_TIMEOUT_MS if name == 'load' else STEP_TIMEOUT_MS) / 1000:.0f} s"
                return "failed" if step.get("errors") else "–"
            value = step["median_ms"] if name != "load" else step["all_ms"][-1]
            goal = GOALS_MS[goal_of[name]]
            mark = "" if int(n) < 1_000_000 else (" ✓" if value < goal else " ✗")
            return f"{value / 1000:.1f}{mark}" if name == "load" else f"{value:.0f}{mark}"

        kernel = run.get("kernel_s")
        # the kernel's share of each step (the rest: transfer and the browser's decoding and drawing)
        busy = " / ".join("–" if steps.get(name, {}).get("kernel_busy_ms") is None
                          else f"{steps[name]['kernel_busy_ms']:.0f}"
                          for name in ("selection", "move", "colour", "projection"))
        move_mb = steps.get("move", {}).get("kernel_to_page_kb")
        rows.append(f"| {engine} | {int(n):,} | {cell('load')} ({'–' if kernel is None else f'{kernel:.0f}'}) | "
                    f"{cell('selection')} | {cell('move')} | {cell('colour')} | {cell('projection')} | "
                    f"{'–' if move_mb is None else f'{move_mb / 1024:.1f}'} | {busy} | {steps['selection'].get('repeats', 0)} | "
                    f"{run.get('load_average', '?')} |")   # a loaded machine inflates every wall time here
    errors = [f"- {key} {name}: {step['errors'][0]}" for key, run in results.items()
              for name, step in run.get("steps", {}).items() if step.get("errors")]
    return "\n".join(rows + ([""] + errors if errors else []))


def engine_grid(sizes=None, engines=("plotly", "jscatter"), loads: int = 2, repeats: int | None = None) -> dict:
    """Issue 22 item 1: both scatter engines on the real page at each size (py): `loads`
    page loads (the last one warm: browser and file caches), then each interaction."""
    sizes = sizes or SIZES
    launch = {"executable_path": str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")), "args": LAUNCH_ARGS}
    results: dict = {}
    for n_points in sizes:
        for engine in engines:
            key = f"{engine}@{n_points}"
            started, cpu = time.perf_counter(), time.process_time()
            with tempfile.TemporaryDirectory(prefix="synthscope-bench-engines-") as tmp:
                folder = Path(tmp)
                try:
                    with _voila(folder, n_points, engine) as server:
                        steps = measure_engine(server["url"], n_points, engine,
                                                             repeats or REPEATS.get(n_points, 3), loads, launch)
                    kernel = [json.loads(line) for line in server["log"].read_text().splitlines()] \
                        if server["log"].exists() else []
                except Exception as error:   # noqa: BLE001 - one failed engine or size does not stop the others
                    results[key] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
                    continue
            builds = [r for r in kernel if r["event"] == "build"]
            views = [r["seconds"] for r in kernel if r["event"] == "view" and r["title"] == GENERATORS]
            kernel_s = (builds[-1]["workspace_s"] + builds[-1]["build_s"] + (views[-1] if views else 0.0)) if builds else None
            results[key] = {"steps": steps, "kernel_s": kernel_s, "wall_s": time.perf_counter() - started,
                            "bench_cpu_s": time.process_time() - cpu, "load_average": _load_average()}
    return {"results": results, "markdown": markdown(results)}
