"""`make bench` browser section: a 50,000-point workspace served by Voila, driven in headless Chromium.

Issue 15: "A 50,000-point workspace renders in Chromium and keeps interactions under a second. Use
WebGL; ship data once, not per interaction." This section measures it (it asserts nothing): page load,
box selection, Move selection, projection switch and threshold change, each from the user's action to
the page showing the result, and the bytes the kernel websocket carries each way for each of them.

The runner loads it by name (`--section synthscope_dashboard.bench_browser`), so the core never imports
the dashboard. It skips, with the reason, where Chromium, Playwright or Voila is missing.

The page is the real one (`synthscope dashboard`'s Voila command line, template and all), serving a
notebook of its own that builds the dashboard on `latency.synthetic_workspace(n)`: n generated points
and n real ones. Kernel-side times come from the kernel's own clock (the `date` of its busy / idle
status messages), browser-side times from Python around Playwright calls.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from synthscope.benchmark.base import BenchContext, BenchSection

TITLE = "Dashboard in the browser (Chromium, WebGL)"
GOAL_MS = 1000.0
N_FULL, N_QUICK = 50_000, 5_000
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium, headless; --disable-gpu: WebGL runs on SwiftShader (software GL) on this machine
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1600}
LOAD_TIMEOUT_MS = 600_000     # a cold kernel building 50,000 points on two busy cores
STEP_TIMEOUT_MS = 120_000     # one interaction; a timeout is reported, not raised
QUIET_S = 0.8                 # no kernel traffic for this long = the interaction's messages are over
GENERATORS, TRAINING = "Generator fingerprints", "Training-data fingerprints"

NOTEBOOK_SOURCE = """\
import json, time
_t0 = time.perf_counter()
from synthscope_dashboard import build
from synthscope_dashboard.latency import synthetic_workspace
_t1 = time.perf_counter()
_workspace = synthetic_workspace({n}, projections=("pca", "umap"), cache_dir={cache!r})
_t2 = time.perf_counter()
_app = build(workspace=_workspace, autosave=False, method="kmeans", scatter_engine={engine!r})
_t3 = time.perf_counter()

def _log(**record):
    with open({log!r}, "a") as out:
        out.write(json.dumps(record) + "\\n")

def _timed(view):   # a view is built when its tab first opens: log how long that takes in the kernel
    inner = view.ensure_built
    def ensure_built():
        fresh, start = not view.built, time.perf_counter()
        inner()
        if fresh:
            _log(event="view", title=view.title, seconds=time.perf_counter() - start)
    view.ensure_built = ensure_built

for _view in _app.views:
    _timed(_view)
_log(event="build", import_s=_t1 - _t0, workspace_s=_t2 - _t1, build_s=_t3 - _t2)
_app
"""

# --- page-side helpers (the ideas of tests/test_dashboard_browser.py; the bench must not import tests)
_PLOT = "[...document.querySelectorAll('.js-plotly-plot')].find(e => e.offsetParent)"
_COUNT = ("[...document.querySelectorAll('.ss-view b')].find(b => b.offsetParent &&"
          " /^\\s*[\\d,]+\\s+selected/.test(b.parentElement.textContent))")
_SELECTED = f"(() => {{ const gd = {_PLOT}; const s = gd && gd.data[0].selectedpoints; return s ? s.length : 0; }})()"
_SHOWN_COUNT = f"(() => {{ const e = {_COUNT}; return e ? parseInt(e.textContent.replace(/,/g, '')) : -1; }})()"
_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
_AFTERPLOT = f"""() => {{ const gd = {_PLOT};   // counts plotly's "drawn" events
    if (gd && !gd.__ssHooked) {{ gd.__ssHooked = true; gd.__ssDrawn = 0; gd.on('plotly_afterplot', () => gd.__ssDrawn++); }}
    return gd ? gd.__ssDrawn : -1; }}"""
_DRAWN = f"(() => {{ const gd = {_PLOT}; return gd ? gd.__ssDrawn : -1; }})()"


def _signature(expression: str) -> str:
    """JS: an order-sensitive checksum of a numeric array (typed or not)."""
    return (f"(() => {{ const a = {expression}; if (!a) return 'none'; let s = 0;"
            " for (let i = 0; i < a.length; i++) s = (s + (i + 1) * Number(a[i])) % 1000000007;"
            " return a.length + ':' + s; })()")


_COLOR_SIG = _signature(f"{_PLOT}.data[0].marker.color")
_X_SIG = _signature(f"{_PLOT}.data[0].x")


def _missing() -> str | None:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return "Debian chromium is not installed (apt-get install chromium; `make browser` does it)"
    for module, what in (("playwright", "the playwright Python package"), ("voila", "voila")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _voila(folder: Path, n_points: int, engine: str = "plotly"):
    """Voila serving the bench notebook with `synthscope dashboard`'s command line; yields the URL."""
    from synthscope.commands.dashboard import voila_command, wait_until_serving

    notebook = folder / "bench.ipynb"
    log = folder / "kernel-timings.jsonl"
    source = NOTEBOOK_SOURCE.format(n=int(n_points), cache=str(folder / "workspace"), log=str(log), engine=engine)
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "bench", "metadata": {}, "outputs": [],
                   "source": source.splitlines(keepends=True)}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))
    port = _free_port()
    # no preheated kernel: each page load is a cold kernel (the real command preheats one, so its first
    # page skips the kernel's build time); kernels of closed pages are culled quickly
    argv, env = voila_command(folder, "127.0.0.1", port, preheat=False, notebook=notebook,
                              cull_idle_timeout=60, cull_interval=10)
    env["SYNTHSCOPE_CACHE_DIR"] = str(folder / "cache")
    output = open(folder / "voila.log", "w+")
    process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, output)
        yield {"url": url, "log": log, "voila_log": output}
    finally:
        process.terminate()   # Voila shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


# --- the kernel websocket: bytes each way, and the kernel's busy time from its status messages

def _segments(payload) -> tuple[str, bytes, bytes] | None:
    """(channel, header JSON, content JSON) of one kernel websocket frame, in either wire format."""
    if isinstance(payload, str):
        return None
    data = bytes(payload)
    count = int.from_bytes(data[:8], "little")
    if 0 < count < 64 and len(data) >= 8 * (count + 1):   # v1.kernel.websocket.jupyter.org
        offsets = [int.from_bytes(data[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)] + [len(data)]
        if offsets == sorted(offsets) and offsets[-2] <= len(data) and count >= 5:
            parts = [data[offsets[i]:offsets[i + 1]] for i in range(count)]
            return parts[0].decode("latin-1"), parts[1], parts[4]
    return None


def _parse(payload) -> dict | None:
    """channel, header and content of one (small) kernel websocket frame."""
    try:
        segments = _segments(payload)
        if segments is not None:
            channel, header, content = segments
            return {"channel": channel, "header": json.loads(header), "content": json.loads(content) if content else {}}
        if isinstance(payload, str):
            msg = json.loads(payload)
        else:   # the legacy binary format: offsets, then the JSON message, then the buffers
            data = bytes(payload)
            nbufs = int.from_bytes(data[:4], "big")
            offsets = [int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(nbufs)]
            msg = json.loads(data[offsets[0]:offsets[1] if nbufs > 1 else len(data)])
        return {"channel": msg.get("channel"), "header": msg.get("header") or {}, "content": msg.get("content") or {}}
    except (ValueError, IndexError, UnicodeDecodeError, TypeError, AttributeError):
        return None


_MSG_TYPE = re.compile(rb'"msg_type":\s*"(\w+)"')
_METHOD = re.compile(rb'"method":\s*"(\w+)"')
_STATE_KEY = re.compile(rb'"state":\s*\{\s*"(\w+)"')
_MODEL = re.compile(rb'"_model_name":\s*"(\w+)"')
_ANYWIDGET = re.compile(rb'"_anywidget_id":\s*"([\w.]+)"')


def _label(payload) -> str:
    """What a frame carries, e.g. "comm_msg update _js2py_pointsCallback" (for the bytes-by-message table)."""
    segments = _segments(payload)
    if segments is not None:
        header, content = segments[1][:600], segments[2][:600]
    else:
        header = content = payload[:200_000].encode() if isinstance(payload, str) else bytes(payload[:200_000])
    kind = _MSG_TYPE.search(header)
    parts = [kind.group(1).decode() if kind else "?"]
    patterns = (_ANYWIDGET, _MODEL) if parts[0] == "comm_open" else (_METHOD, _STATE_KEY)
    for pattern in patterns:
        found = pattern.search(content)
        if found:
            parts.append(found.group(1).decode().rsplit(".", 1)[-1])
            if parts[0] == "comm_open":
                break
    return " ".join(parts)


class Traffic:
    """Every frame on the page's kernel websockets: (seconds, direction, bytes, parsed message)."""

    def __init__(self):
        self.frames: list[tuple[float, str, int, dict | None, str]] = []

    def attach(self, page) -> None:
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        if "/api/kernels/" not in ws.url:
            return
        ws.on("framereceived", lambda payload: self._add("kernel→page", payload))
        ws.on("framesent", lambda payload: self._add("page→kernel", payload))

    def _add(self, direction: str, payload) -> None:
        size = len(payload.encode()) if isinstance(payload, str) else len(payload)
        parsed = _parse(payload) if direction == "kernel→page" and size < 4096 else None   # status messages are small
        self.frames.append((time.perf_counter(), direction, size, parsed, _label(payload) if size > 4096 else ""))

    def mark(self) -> int:
        return len(self.frames)

    def wait_quiet(self, page, quiet_s: float = QUIET_S, limit_s: float = 60.0) -> None:
        """Until no frame (but the heartbeat) has passed for `quiet_s` and the kernel is idle."""
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            page.wait_for_timeout(100)
            busy = self._kernel_busy()
            last = next((f[0] for f in reversed(self.frames) if f[2] > 600), 0.0)
            if not busy and time.perf_counter() - last > quiet_s:
                return

    def _kernel_busy(self) -> bool:
        for frame in reversed(self.frames):
            state = _state(frame[3])
            if state is not None:
                return state == "busy"
        return False

    def since(self, mark: int, shown_at: float | None = None) -> dict:
        """Bytes, largest messages and kernel busy time of the frames since `mark`; with `shown_at` (wall
        clock, as the kernel's message dates) `kernel_busy_ms` counts only kernel time before the page
        showed the result (the kernel may go on working after it, e.g. on the metrics after the colours)."""
        frames = self.frames[mark:]
        out = {"kernel_to_page_kb": sum(f[2] for f in frames if f[1] == "kernel→page") / 1024,
               "page_to_kernel_kb": sum(f[2] for f in frames if f[1] == "page→kernel") / 1024,
               "frames": len(frames)}
        largest: dict[tuple[str, str], int] = {}
        for _, direction, size, _, label in frames:
            if label:
                largest[direction, label] = largest.get((direction, label), 0) + size
        out["largest"] = [{"direction": d, "message": m, "kb": round(b / 1024, 1)}
                          for (d, m), b in sorted(largest.items(), key=lambda item: -item[1])[:4]]
        limit = None if shown_at is None else dt.datetime.fromtimestamp(shown_at, dt.timezone.utc)
        busy_s = until_s = 0.0
        started = None
        for _, _, _, parsed, _ in frames:
            state = _state(parsed)
            if state == "busy" and started is None:
                started = _date(parsed)
            elif state == "idle" and started is not None:
                ended = _date(parsed)
                if ended is not None:
                    busy_s += (ended - started).total_seconds()
                    if limit is not None and started < limit:
                        until_s += (min(ended, limit) - started).total_seconds()
                started = None
        out["kernel_busy_total_ms"] = 1000 * busy_s
        out["kernel_busy_ms"] = 1000 * (busy_s if limit is None else until_s)
        return out


def _state(parsed: dict | None) -> str | None:
    if not parsed or parsed.get("channel") != "iopub" or parsed["header"].get("msg_type") != "status":
        return None
    return parsed["content"].get("execution_state")


def _date(parsed: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(parsed["header"]["date"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


# --- measuring

class Step:
    """The numbers of one kind of interaction over its repeats."""

    def __init__(self, name: str, what: str):
        self.name, self.what = name, what
        self.ms: list[float] = []
        self.traffic: list[dict] = []
        self.errors: list[str] = []
        self.notes: dict = {}

    def summary(self) -> dict:
        out = {"what": self.what, "repeats": len(self.ms), "errors": self.errors, **self.notes}
        if self.ms:
            out.update(median_ms=statistics.median(self.ms), max_ms=max(self.ms), all_ms=[round(v, 1) for v in self.ms])
        for key in ("kernel_busy_ms", "kernel_busy_total_ms", "kernel_to_page_kb", "page_to_kernel_kb"):
            values = [t[key] for t in self.traffic]
            if values:
                out[key] = statistics.median(values)
        if self.traffic:   # kernel work after the page showed the result
            out["kernel_after_ms"] = statistics.median(max(t["kernel_busy_total_ms"] - t["kernel_busy_ms"], 0.0)
                                                       for t in self.traffic)
        if self.traffic and len(self.traffic) == len(self.ms):   # the rest: browser, transfer, JSON on both ends
            out["browser_ms"] = statistics.median(max(ms - t["kernel_busy_ms"], 0.0) for ms, t in zip(self.ms, self.traffic))
        if self.traffic:
            out["largest_messages"] = self.traffic[-1]["largest"]   # of the last repeat
        return out


def _timed(page, traffic: Traffic, step: Step, act, done: str, arg=None, *, drawn: bool = False) -> bool:
    """Time `act()` until the JS predicate `done` holds (and, with `drawn`, plotly has drawn since and a
    frame has passed); then wait for the kernel traffic to end and book the bytes and kernel time."""
    mark = traffic.mark()
    drawn_before = page.evaluate(_AFTERPLOT) if drawn else None
    start = time.perf_counter()
    try:
        act()
        page.wait_for_function(done, arg=arg, timeout=STEP_TIMEOUT_MS, polling="raf")
        if drawn:
            page.wait_for_function(f"before => {_DRAWN} > before", arg=drawn_before, timeout=STEP_TIMEOUT_MS,
                                   polling="raf")
        page.evaluate(_FRAME)
    except Exception as error:   # noqa: BLE001 - a slow or broken step is reported, the others still run
        step.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
        traffic.wait_quiet(page)
        return False
    step.ms.append(1000 * (time.perf_counter() - start))
    shown_at = time.time()
    traffic.wait_quiet(page)
    step.traffic.append(traffic.since(mark, shown_at))
    return True


def _open_tab(page, title: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=title).first.click()


def _plot_box(page) -> tuple[float, float, float, float]:
    return tuple(page.evaluate(f"""() => {{ const gd = {_PLOT}; const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.getBoundingClientRect(); return [r.left + xa._offset, r.top + ya._offset, xa._length, ya._length]; }}"""))


def _load(page, traffic: Traffic, url: str, n_points: int, step: Step, tab_step: Step) -> bool:
    """Navigation → app shown → generator tab clicked → the scatter's WebGL canvas drawn with n points."""
    mark = traffic.mark()
    start = time.perf_counter()
    try:
        page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector(".ss-app", timeout=LOAD_TIMEOUT_MS)
        shown = time.perf_counter()
        traffic.wait_quiet(page, 0.5)   # the Overview's own messages are part of the load, not the tab
        settled = time.perf_counter()
        tab_mark = traffic.mark()
        _open_tab(page, GENERATORS)
        page.wait_for_function(
            f"n => {{ const gd = {_PLOT}; return gd && gd._fullData && gd._fullData.length && gd.data[0].x"
            " && gd.data[0].x.length === n && gd.querySelector('canvas'); }", arg=n_points,
            timeout=LOAD_TIMEOUT_MS, polling="raf")
        page.evaluate(_FRAME)
    except Exception as error:   # noqa: BLE001
        step.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
        return False
    end, shown_at = time.perf_counter(), time.time()
    step.ms.append(1000 * (end - start - (settled - shown)))   # the wait for quiet is not the page's time
    tab_step.ms.append(1000 * (end - settled))
    step.notes.setdefault("app_shown_ms", []).append(round(1000 * (shown - start), 1))
    traffic.wait_quiet(page)
    step.traffic.append(traffic.since(mark, shown_at))
    tab_step.traffic.append(traffic.since(tab_mark, shown_at))
    return True


def _webgl(page) -> dict:
    return page.evaluate(f"""() => {{ const gd = {_PLOT};
        const c = document.createElement('canvas'); const gl = c.getContext('webgl') || c.getContext('experimental-webgl');
        let renderer = null;
        if (gl) {{ const e = gl.getExtension('WEBGL_debug_renderer_info');
                   renderer = e ? gl.getParameter(e.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER); }}
        return {{ trace_type: gd && gd._fullData[0].type, plot_canvases: gd ? gd.querySelectorAll('canvas').length : 0,
                 gl_canvas: !!(gd && gd.querySelector('canvas.gl-canvas')), webgl: !!gl, renderer }}; }}""")


def _box_selections(page, traffic: Traffic, step: Step, repeats: int) -> None:
    """Box selections of different sizes: released → the page's "N selected" equals what the plot highlights."""
    page.locator(".ss-view:visible .modebar-btn[data-val='select']").first.click()
    matched = []
    for repeat in range(repeats):
        page.keyboard.press("Escape")   # clears the selection and its outline (a drag on it would resize it)
        traffic.wait_quiet(page)
        px, py, pw, ph = _plot_box(page)
        right = 0.35 + 0.5 * (repeat + 1) / (repeats + 1)   # each box a different size: a new count each time
        start, end = (px + 0.06 * pw, py + 0.06 * ph), (px + right * pw, py + 0.94 * ph)
        page.mouse.move(*start)
        page.mouse.down()
        for i in range(1, 9):
            page.mouse.move(start[0] + (end[0] - start[0]) * i / 8, start[1] + (end[1] - start[1]) * i / 8)
        ok = _timed(page, traffic, step, page.mouse.up,
                    f"() => {{ const n = {_SELECTED}; return n > 0 && {_SHOWN_COUNT} === n; }}")
        if ok:
            page.wait_for_timeout(300)   # nothing may change it afterwards
            highlighted, shown = page.evaluate(f"() => [{_SELECTED}, {_SHOWN_COUNT}]")
            matched.append({"highlighted": highlighted, "page_says": shown, "match": highlighted == shown})
    step.notes["selection_check"] = matched
    step.notes["selection_matched"] = bool(matched) and len(matched) == repeats and all(m["match"] for m in matched)


def _moves(page, traffic: Traffic, step: Step, repeats: int) -> None:
    """Move selection (to a new cluster) → the scatter's marker colours changed and drawn."""
    from synthscope_dashboard.bench_engines import alternate_target as _alternate_target

    step.notes["selected"] = page.evaluate(f"() => {_SELECTED}")
    for repeat in range(repeats):
        _alternate_target(page, repeat)
        button = page.locator(".ss-view:visible .ss-move").first
        button.scroll_into_view_if_needed()   # the cluster table grows with each move: the button moves down
        box = button.bounding_box()
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        before = page.evaluate(f"() => {_COLOR_SIG}")
        _timed(page, traffic, step, lambda: page.mouse.click(*centre), f"before => {_COLOR_SIG} !== before",
               arg=before, drawn=True)
    step.notes["status_line"] = page.locator(".ss-status-line").first.inner_text().strip()[:160]


def _projections(page, traffic: Traffic, step: Step, repeats: int) -> None:
    """The projection dropdown: pca → umap → pca ... → the scatter's x redrawn."""
    select = page.locator(".ss-view:visible .widget-dropdown", has_text="projection").locator("select").first
    options = [o for o in select.evaluate("s => [...s.options].map(o => o.value)")]
    current = select.input_value()
    others = [o for o in options if o != current]
    if not others:
        step.errors.append(f"only one projection available: {options}")
        return
    step.notes["projections"] = options
    counts = []
    for repeat in range(repeats):
        target = others[0] if repeat % 2 == 0 else current
        before = page.evaluate(f"() => {_X_SIG}")
        selected = page.evaluate(f"() => [{_SELECTED}, {_SHOWN_COUNT}]")
        _timed(page, traffic, step, lambda: select.select_option(target), f"before => {_X_SIG} !== before",
               arg=before, drawn=True)
        counts.append({"before": selected, "after": page.evaluate(f"() => [{_SELECTED}, {_SHOWN_COUNT}]")})
    step.notes["selection_across_switch"] = counts   # [plot highlights, page says] before and after


def _thresholds(page, traffic: Traffic, step: Step, tab_step: Step, repeats: int) -> None:
    """The Training tab's threshold slider: handle released at a new place → F1 on the page changed."""
    mark = traffic.mark()
    start = time.perf_counter()
    try:
        _open_tab(page, TRAINING)
        page.locator(".ss-threshold .noUi-handle").first.wait_for(timeout=STEP_TIMEOUT_MS)
        page.locator(".ss-view:visible [data-metric='f1']").first.wait_for(timeout=STEP_TIMEOUT_MS)
        page.evaluate(_FRAME)
        tab_step.ms.append(1000 * (time.perf_counter() - start))
        shown_at = time.time()
    except Exception as error:   # noqa: BLE001
        tab_step.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
        return
    traffic.wait_quiet(page)
    tab_step.traffic.append(traffic.since(mark, shown_at))
    f1 = "(() => { const e = [...document.querySelectorAll(\"[data-metric='f1']\")].find(x => x.offsetParent); return e ? e.textContent : null; })()"
    for repeat in range(repeats):
        handle = page.locator(".ss-threshold .noUi-handle").first.bounding_box()
        track = page.locator(".ss-threshold .noUi-target").first.bounding_box()
        before = page.evaluate(f"() => {f1}")
        where = 0.25 + 0.5 * (repeat % 2) + 0.03 * repeat   # left and right by turns, never the same place
        y = handle["y"] + handle["height"] / 2
        page.mouse.move(handle["x"] + handle["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(track["x"] + where * track["width"], y, steps=6)
        _timed(page, traffic, step, page.mouse.up, f"before => {f1} !== before", arg=before)


PLOTLY_ALONE = """async (n) => {
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const x = new Float32Array(n), y = new Float32Array(n), x2 = new Float32Array(n), c = new Int32Array(n);
  for (let i = 0; i < n; i++) { x[i] = random(); y[i] = random(); x2[i] = 2 * random(); c[i] = Math.floor(6 * random()); }
  const frame = () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  const gd = document.getElementById('gd'), out = {};
  const time = async (name, act) => { const t = performance.now(); await act(); await frame();
                                      (out[name] = out[name] || []).push(performance.now() - t); };
  await time('first draw', () => Plotly.newPlot(gd, [{type: 'scattergl', mode: 'markers', x, y,
      marker: {color: c, size: 5, cmin: -0.5, cmax: 5.5}}], {dragmode: 'select', width: 800, height: 520}));
  const half = []; for (let i = 0; i < n; i += 2) half.push(i);
  for (let k = 0; k < 3; k++) {
    await time('recolour', () => Plotly.restyle(gd, {'marker.color': [c.map(v => (v + k + 1) % 7)], 'marker.cmax': 6.5}));
    await time('new x/y', () => Plotly.restyle(gd, {x: [k % 2 ? x : x2], y: [y]}));
    await time('selectedpoints', () => Plotly.restyle(gd, {selectedpoints: [half]}));
    await time('clear selection', () => Plotly.restyle(gd, {selectedpoints: [null]}));
  }
  return out; }"""


def _plotly_alone(context, n_points: int) -> dict:
    """plotly.js by itself (the plotly package's own bundle, no kernel): one scattergl of n points,
    restyled as the dashboard does. The floor any interaction that redraws the scatter pays here."""
    import plotly

    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not bundle.is_file():
        return {"skipped": f"{bundle} not found"}
    page = context.new_page()
    try:
        page.set_content("<div id='gd'></div>")
        page.add_script_tag(path=str(bundle))
        times = page.evaluate(PLOTLY_ALONE, n_points)
    finally:
        page.close()
    return {name: {"median_ms": statistics.median(values), "max_ms": max(values), "repeats": len(values)}
            for name, values in times.items()}


def measure(url: str, n_points: int, repeats: int, loads: int, log: Path) -> dict:
    from playwright.sync_api import sync_playwright

    steps = {
        "page load": Step("page load", "navigation → first scatter drawn (generator tab opened as soon as the app shows)"),
        "generator tab": Step("generator tab", "generator tab clicked → scatter (WebGL canvas, all points) drawn"),
        "box selection": Step("box selection", "box released → the page's \"N selected\" equals the plot's selectedpoints"),
        "move selection": Step("move selection", "Move selection clicked → scatter recoloured and drawn"),
        "projection switch": Step("projection switch", "projection dropdown changed → scatter x/y redrawn"),
        "training tab": Step("training tab", "training tab clicked → slider and F1 shown"),
        "threshold": Step("threshold", "slider handle released → F1 on the page changed"),
    }
    info: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
                                             args=LAUNCH_ARGS)
        info["chromium"] = browser.version
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = None
            for load in range(loads):   # each load: a fresh page and a fresh kernel (the first: a cold browser cache)
                if page is not None:
                    page.close()
                page = context.new_page()
                page.set_default_timeout(STEP_TIMEOUT_MS)
                traffic = Traffic()
                traffic.attach(page)
                if not _load(page, traffic, url, n_points, steps["page load"], steps["generator tab"]):
                    break
            if steps["page load"].ms:
                info["webgl"] = _webgl(page)
                page.wait_for_timeout(500)
                _box_selections(page, traffic, steps["box selection"], repeats)
                _moves(page, traffic, steps["move selection"], repeats)
                _projections(page, traffic, steps["projection switch"], repeats)
                _thresholds(page, traffic, steps["threshold"], steps["training tab"], repeats)
            if page is not None:
                page.close()
            info["plotly_alone"] = _plotly_alone(context, n_points)
        finally:
            browser.close()
    kernel = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    builds = [r for r in kernel if r["event"] == "build"]
    views = {}
    for record in kernel:
        if record["event"] == "view":
            views.setdefault(record["title"], []).append(record["seconds"])
    info["kernel_build_s"] = {key: statistics.median(r[key] for r in builds)
                              for key in ("import_s", "workspace_s", "build_s")} if builds else {}
    info["kernel_view_build_s"] = {title: statistics.median(values) for title, values in views.items()}
    return {"info": info, "steps": {name: step.summary() for name, step in steps.items()}}


def _fmt(value, spec: str = ".0f") -> str:
    return "–" if value is None else format(value, spec)


LOADS = ("page load", "generator tab", "training tab")


def markdown(results: dict, n_points: int) -> str:
    info, steps = results["info"], results["steps"]
    rows = ["| interaction (user action → page shows it) | median ms | max ms | repeats | kernel busy ms (after) | "
            "rest ms (browser, transfer) | kernel→page kB | page→kernel kB | < 1 s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, step in steps.items():
        median, busy = step.get("median_ms"), step.get("kernel_busy_ms")
        after = step.get("kernel_after_ms")
        verdict = "–" if median is None else ("met" if median < GOAL_MS else "MISSED")
        if name in LOADS:
            verdict = "(load)" if median is not None else "–"
        errors = f" ({len(step['errors'])} failed: {step['errors'][0]})" if step["errors"] else ""
        rest = step.get("browser_ms")
        rows.append(f"| {name}: {step['what']}{errors} | {_fmt(median)} | {_fmt(step.get('max_ms'))} | {step['repeats']} | "
                    f"{_fmt(busy)} ({_fmt(after)}) | {_fmt(rest)} | {_fmt(step.get('kernel_to_page_kb'))} | "
                    f"{_fmt(step.get('page_to_kernel_kb'))} | {verdict} |")
    largest = ["| interaction | largest messages (last repeat; kB) |", "|---|---|"]
    for name, step in steps.items():
        messages = step.get("largest_messages") or []
        if messages:
            largest.append(f"| {name} | " + "; ".join(
                f"{m['direction']} `{m['message']}` {m['kb']:,.0f}" for m in messages) + " |")
    alone = info.get("plotly_alone", {})
    alone_rows = []
    if alone and "skipped" not in alone:
        alone_rows = ["| plotly.js alone, same browser | median ms | max ms |", "|---|---|---|"] + [
            f"| {name} | {v['median_ms']:.0f} | {v['max_ms']:.0f} |" for name, v in alone.items()]
    webgl = info.get("webgl", {})
    gl = (f"trace type `{webgl.get('trace_type')}`, {webgl.get('plot_canvases', 0)} canvas(es) in the plot, "
          f"WebGL {'available' if webgl.get('webgl') else 'NOT available'} (renderer: {webgl.get('renderer')})")
    build = info.get("kernel_build_s", {})
    views = info.get("kernel_view_build_s", {})
    selection = steps["box selection"]
    check = selection.get("selection_check", [])
    load = info.get("load_average", {})
    counts = ", ".join(f"{c['highlighted']:,}" for c in check)
    lines = [
        f"{n_points:,} generated and {n_points:,} real points (`latency.synthetic_workspace`, a stand-in UMAP), "
        f"served by Voila with `synthscope dashboard`'s command line (no preheated kernel: every load is a cold "
        f"kernel), driven in headless Chromium {info.get('chromium', '?')} with `--disable-gpu`, so WebGL runs on "
        f"SwiftShader (software GL on the CPU). Scatter: {gl}. Load average before / after: "
        f"{load.get('before', '?')} / {load.get('after', '?')} on {os.cpu_count()} CPUs (kernel, Voila and "
        "Chromium share them).",
        "",
        "\n".join(rows),
        "",
        "Times run from the action (mouse release, click, choice) until the page shows the result and a frame "
        "has passed. Kernel busy = the kernel's own busy → idle time (the dates of its status messages) until the "
        "page showed the result (in brackets: after it, e.g. metrics sent after the colours); rest = total minus "
        "that, median over repeats: plotly.js, WebGL, widget rendering, JSON on both ends, waiting for a CPU (where "
        "the page works while the kernel does, the browser's share is larger). kB = bytes "
        "on the kernel websocket from the action until its traffic ends; page load counts every frame from "
        "navigation to the scatter drawn (its kernel busy time is only what the page's websocket sees: Voila ran "
        "the notebook before the page connected, see the kernel line below).",
        "",
        f"Kernel: imports {_fmt(build.get('import_s'), '.1f')} s, synthetic workspace "
        f"{_fmt(build.get('workspace_s'), '.1f')} s, `build()` (state, clustering) {_fmt(build.get('build_s'), '.1f')} s; "
        "views built on first opening: " + ", ".join(f"{title} {seconds:.1f} s" for title, seconds in views.items()) + ". "
        f"Page load: app shown after {', '.join(f'{v / 1000:.1f}' for v in steps['page load'].get('app_shown_ms', []))} s.",
        f"Selection check (page count = plot's selectedpoints): "
        f"{'matched' if selection.get('selection_matched') else 'NOT matched'} in {len(check)} boxes "
        f"({counts} points).",
        "",
        "\n".join(largest),
    ]
    if alone_rows:
        lines += ["", f"plotly.js by itself on {n_points:,} scattergl points in this browser (no kernel; until the next "
                      "frame): the floor for any interaction that redraws the scatter here.", "", "\n".join(alone_rows)]
    return "\n".join(lines)


def _load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def run(ctx: BenchContext, n_points: int | None = None, repeats: int | None = None, loads: int | None = None) -> BenchSection:
    """`n_points` (default 50,000; quick 5,000) generated and real points, `repeats` of each interaction
    (5; quick 3), `loads` page loads (3; quick 1)."""
    problem = _missing()
    if problem:
        return BenchSection(TITLE, "", skipped=problem)
    given = n_points is not None
    n_points = int(n_points or (N_QUICK if ctx.quick else N_FULL))
    repeats = int(repeats or (3 if ctx.quick else 5))
    loads = int(loads or (1 if ctx.quick else 3))
    before = _load_average()
    with tempfile.TemporaryDirectory(prefix="synthscope-bench-browser-") as tmp:
        folder = Path(tmp)
        with _voila(folder, n_points) as server:
            results = measure(server["url"], n_points, repeats, loads, server["log"])
            server["voila_log"].seek(0)
            tail = server["voila_log"].read()[-2000:]
    results["info"]["load_average"] = {"before": before, "after": _load_average()}
    if any(step["errors"] or step.get("median_ms") is None for step in results["steps"].values()):
        results["voila_log_tail"] = tail
    from synthscope_dashboard.bench_engines import engine_grid

    small = ctx.quick or given   # both engines at this size only, one load (full: 50k, 200k, 1M, two loads)
    engines = engine_grid((n_points,) if small else None, loads=1 if small else 2, repeats=repeats if small else None)
    text = markdown(results, n_points) + "\n\n" + engines["markdown"]
    return BenchSection(TITLE, text, data={"n_points": n_points, "goal_ms": GOAL_MS, **results, "engines": engines})

