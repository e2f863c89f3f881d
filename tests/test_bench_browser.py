"""`make bench`'s browser section (issue 15: a 50,000-point workspace in Chromium): run small, check that
every interaction was measured and that the selection the page counts is the one the plot highlights.
Speed is only reported (bench/report.md), never asserted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synthscope.benchmark.base import BenchContext

CHROMIUM = Path("/usr/bin/chromium")


def _context(tmp_path: Path) -> BenchContext:
    return BenchContext(shared_dir=None, cache_dir=tmp_path, out_dir=tmp_path / "bench", quick=True)


@pytest.mark.browser
def test_the_browser_section_measures_every_interaction(tmp_path):
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium; `make browser` does it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from synthscope_dashboard import bench_browser

    section = bench_browser.run(_context(tmp_path), n_points=2_000, repeats=2)
    assert section.skipped is None
    steps = section.data["steps"]
    assert set(steps) == {"page load", "generator tab", "box selection", "move selection", "projection switch",
                          "training tab", "threshold"}
    for name, step in steps.items():
        assert not step["errors"], f"{name}: {step['errors']}"
        expected = 1 if name in bench_browser.LOADS else 2
        assert step["repeats"] == expected and step["median_ms"] > 0, f"{name}: {step}"
        assert step["kernel_to_page_kb"] > 0 and step["page_to_kernel_kb"] > 0, f"{name}: no websocket bytes counted"
        assert step["kernel_busy_ms"] > 0, f"{name}: no kernel busy time read"
    selection = steps["box selection"]
    assert selection["selection_matched"], selection["selection_check"]
    assert len(selection["selection_check"]) == 2
    assert all(0 < check["highlighted"] == check["page_says"] < 2_000 for check in selection["selection_check"])
    assert "moved" in steps["move selection"]["status_line"]
    assert steps["projection switch"]["projections"] == ["pca", "umap"]
    info = section.data["info"]
    assert info["webgl"]["trace_type"] == "scattergl" and info["webgl"]["plot_canvases"] > 0
    assert info["kernel_build_s"]["build_s"] > 0 and "Generator fingerprints" in info["kernel_view_build_s"]
    assert {"first draw", "recolour", "new x/y"} <= set(info["plotly_alone"])
    assert "| box selection:" in section.markdown and "< 1 s" in section.markdown
    engines = section.data["engines"]["results"]   # issue 22 item 1: both engines on the real page
    assert set(engines) == {"plotly@2000", "jscatter@2000"}, engines
    for key, run in engines.items():
        for name, step in run["steps"].items():
            assert not step["errors"], f"{key} {name}: {step['errors']}"
            expected = 1 if name == "load" else 2
            assert step["repeats"] == expected and step["median_ms"] > 0, f"{key} {name}: {step}"
        assert all(0 < count < 2_000 for count in run["steps"]["selection"]["counts"]), run["steps"]["selection"]
        assert "moved" in run["steps"]["move"]["status_line"], run["steps"]["move"]
    assert "| jscatter | 2,000 |" in section.markdown and "| plotly | 2,000 |" in section.markdown


def test_the_runner_takes_the_browser_section_by_name_and_says_why_it_skips(tmp_path, monkeypatch):
    from synthscope.benchmark.runner import main
    from synthscope_dashboard import bench_browser

    monkeypatch.setattr(bench_browser, "_missing", lambda: "Debian chromium is not installed (test)")
    out = tmp_path / "bench"
    assert main(["--out", str(out), "--quick", "--shared-dir", str(tmp_path / "no-shared"),
                 "--only", "bench_browser", "--section", "synthscope_dashboard.bench_browser"]) == 0
    report = (out / "report.md").read_text()
    assert "## Dashboard in the browser (Chromium, WebGL)" in report
    assert "Skipped: Debian chromium is not installed (test)" in report


def test_the_engine_table_gives_each_cells_load_and_marks_1m_against_the_goals():
    """Each engine cell is measured minutes apart; the row carries the load at its end, since a loaded
    machine inflates every wall time in it (the 1M rows are marked against issue 22's goals)."""
    from synthscope_dashboard.bench_engines import markdown

    def step(ms):
        return {"median_ms": ms, "all_ms": [ms], "repeats": 1, "errors": [], "kernel_busy_ms": 10.0}

    steps = {name: step(ms) for name, ms in (("load", 25_000.0), ("selection", 900.0), ("move", 1200.0),
                                             ("colour", 800.0), ("projection", 1400.0))}
    table = markdown({"jscatter@1000000": {"steps": steps, "kernel_s": 12.0, "load_average": "7.5 6.1 4.0"},
                      "plotly@1000000": {"error": "TimeoutError: page did not load"}})
    row = next(line for line in table.splitlines() if line.startswith("| jscatter | 1,000,000 |"))
    assert row.endswith("| 7.5 6.1 4.0 |")
    assert "| 25.0 ✓ (12) | 900 ✓ | 1200 ✗ | 800 ✓ | 1400 ✓ |" in row
    header, rule = table.splitlines()[:2]
    assert header.count("|") == rule.count("|") == row.count("|")
    failed = next(line for line in table.splitlines() if line.startswith("| plotly |"))
    assert "TimeoutError" in failed and failed.count("|") == header.count("|")
