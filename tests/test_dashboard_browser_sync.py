"""Issue 22's trust defect in a real browser: after a first load, and after each curation step (Move, a
projection switch, a refilter and its clearing), every point of the page's scatter (plotly's gd.data: its
meta, hover text, row ids, positions and colours) is the point the kernel's point -> row map says it is.

The kernel side is read from the page's own kernel (jupyter_client on its connection file, the way Voila
started it). Kernel-level tests of the mechanism: test_scatter_page_sync.py.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from test_dashboard_browser import _PLOT, ARTIFACTS, _open_tab, expect
from test_dashboard_browser_generators import _box_the_left_half
from test_dashboard_browser_trust import browser, kernel_id, kernels, open_page  # noqa: F401  (browser: a fixture)
from voila_server import serve_small_bench

pytestmark = pytest.mark.browser

TAB = "Generator fingerprints"

#: run in the page's kernel: what the generator view's scatter holds and how it maps points to rows
KERNEL_SCATTER = r'''
import gc as _gc, json as _json
_views = [o for o in _gc.get_objects() if type(o).__name__ == "GeneratorsView" and getattr(o, "built", False)]
_v = _views[-1]
_ids = (_v.data.frame["split"] + " · " + _v.data.frame["image_id"]).to_numpy()
_traces = [{"rows": [int(r) for r in _rows], "ids": _ids[_rows].tolist(),
            "x": [float(x) for x in _t.x], "y": [float(y) for y in _t.y],
            "color": [float(c) for c in _t.marker.color]}
           for _rows, _t in zip(_v._trace_rows(), _v.scatter.data)]
print("@@" + _json.dumps({"views": len(_views), "revision": _v.revision(), "traces": _traces,
                          "projection": _v.state.projection}))
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_bench, small_bench_cache):
    """The small bench served warm, with a t-SNE layout in its cache (a projection to switch to)."""
    from synthscope.cache import EmbeddingCache
    from synthscope.projection import project
    from synthscope_dashboard.workspace import load_workspace

    cache = tmp_path_factory.mktemp("sync-cache") / "cache"
    shutil.copytree(small_bench_cache, cache)
    project(load_workspace(small_bench, cache_dir=cache).attribution.features, "tsne", cache=EmbeddingCache(cache))
    yield from serve_small_bench(tmp_path_factory, small_bench, cache, "plotly")


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    page = open_page(browser, server)
    page.kernel_relay = None   # _gesture's busy-kernel relay: not used here
    yield page
    page.close()


def kernel_scatter(server, page) -> dict:
    """The kernel's side: revision, and per trace the rows, their ids, positions and colour values."""
    from jupyter_client import BlockingKernelClient

    pid = kernels(server["process"].pid)[kernel_id(page)]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    client = BlockingKernelClient(connection_file=next(a for a in argv if a.endswith(".json") and "kernel-" in a))
    client.load_connection_file()
    client.start_channels()
    out: list[str] = []
    try:
        client.execute_interactive(KERNEL_SCATTER, timeout=120, store_history=False,
                                   output_hook=lambda msg: out.append(msg["content"].get("text", ""))
                                   if msg["msg_type"] == "stream" else None)
    finally:
        client.stop_channels()
    return json.loads("".join(out).split("@@", 1)[1])


def page_scatter(page) -> list[dict]:
    """The page's side: each trace of the shown scatter as plotly.js holds it."""
    return page.evaluate(f"""() => {{ const gd = {_PLOT};
        return gd.data.map(t => ({{ meta: t.meta === undefined || t.meta === null ? null : String(t.meta),
            ids: Array.from(t.text || [], s => String(s).split('<br>')[0]),
            rows: t.customdata ? Array.from(t.customdata, Number) : null,
            x: Array.from(t.x || [], Number), y: Array.from(t.y || [], Number),
            color: Array.from((t.marker || {{}}).color || [], Number) }})); }}""")


def differences(shown: list[dict], kernel: dict) -> list[str]:
    """Where the page's traces and the kernel's map disagree ([] when they agree point for point)."""
    found = []
    if len(shown) != len(kernel["traces"]):
        return [f"the page has {len(shown)} traces, the kernel {len(kernel['traces'])}"]
    for index, (page_trace, kernel_trace) in enumerate(zip(shown, kernel["traces"])):
        if page_trace["meta"] != kernel["revision"]:
            found.append(f"trace {index}: page meta {page_trace['meta']}, kernel {kernel['revision']}")
        wrong = [i for i, (a, b) in enumerate(zip(page_trace["ids"], kernel_trace["ids"])) if a != b]
        if len(page_trace["ids"]) != len(kernel_trace["ids"]) or wrong:
            first = wrong[0] if wrong else min(len(page_trace["ids"]), len(kernel_trace["ids"]))
            found.append(f"trace {index}: {len(wrong)} points named otherwise ({len(page_trace['ids'])} points in "
                         f"the page, {len(kernel_trace['ids'])} in the kernel); point {first}: page "
                         f"{page_trace['ids'][first:first + 1]}, kernel {kernel_trace['ids'][first:first + 1]}")
        if page_trace["rows"] != kernel_trace["rows"]:
            found.append(f"trace {index}: the page's row ids are not the kernel's")
        for axis in ("x", "y", "color"):
            a, b = np.asarray(page_trace[axis], dtype=float), np.asarray(kernel_trace[axis], dtype=float)
            # float64 in both (binary arrays): equal up to the last bit; colour codes are small integers
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True):
                found.append(f"trace {index}: the page's {axis} differ from the kernel's")
    return found


def assert_in_sync(page, server, step: str, timeout: float = 60.0) -> dict:
    """The page's scatter and the kernel's point -> row map agree once the step's updates have landed."""
    deadline = time.time() + timeout
    while True:
        kernel, shown = kernel_scatter(server, page), page_scatter(page)
        found = differences(shown, kernel)
        if not found:
            return kernel
        if time.time() > deadline:
            page.screenshot(path=str(ARTIFACTS / f"sync-{step.replace(' ', '-')}.png"), full_page=True)
            raise AssertionError(f"after {step}: page and kernel disagree: " + "; ".join(found))
        page.wait_for_timeout(1000)


def _show_plot(page) -> None:
    _open_tab(page, TAB)
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas", timeout=240_000)


def test_the_page_and_the_kernel_agree_on_every_point_after_load_and_curation(page, server):
    _show_plot(page)
    first = assert_in_sync(page, server, "the first load")
    assert first["views"] == 1 and first["projection"] == "tsne", first["projection"]
    assert len(first["traces"][0]["ids"]) == 84

    _, _, boxed = _box_the_left_half(page)                    # Move: recoloured, same rows
    page.wait_for_timeout(800)
    page.locator(".ss-view:visible .ss-move").first.click()
    expect(page.locator(".ss-status-line")).to_contain_text(f"moved {len(boxed)} images")
    moved = assert_in_sync(page, server, "Move")
    assert moved["traces"][0]["color"] != first["traces"][0]["color"]

    page.locator(".ss-view:visible .widget-dropdown", has_text="projection").locator("select").select_option("pca")
    projected = assert_in_sync(page, server, "a projection switch")
    assert projected["projection"] == "pca" and projected["traces"][0]["x"] != moved["traces"][0]["x"]

    page.locator(".ss-view:visible .ss-filter-column select").first.select_option(label="split")
    page.locator(".ss-view:visible .ss-filter-values select").first.select_option(label="test")
    filtered = assert_in_sync(page, server, "a refilter")
    assert 0 < len(filtered["traces"][0]["ids"]) < 84
    assert all(name.startswith("test") for name in filtered["traces"][0]["ids"])

    page.locator(".ss-view:visible button", has_text="Clear filter").first.click()
    cleared = assert_in_sync(page, server, "clearing the filter")
    assert len(cleared["traces"][0]["ids"]) == 84

    # a page whose trace holds its rows in another order (as after an update the page never applied): its
    # report says so, the kernel asks again, then draws the scatter anew
    page.evaluate(f"() => {{ const t = {_PLOT}.data[0]; t.customdata = Array.from(t.customdata).reverse(); }}")
    expect(page.locator(".ss-status-line")).to_contain_text("out of date", timeout=30_000)
    page.wait_for_selector(".ss-view:visible .js-plotly-plot canvas", timeout=60_000)
    redrawn = assert_in_sync(page, server, "a redraw of a page that held other rows")
    assert redrawn["traces"][0]["ids"] == cleared["traces"][0]["ids"]
    page.screenshot(path=str(ARTIFACTS / "sync-after-curation.png"), full_page=True)
