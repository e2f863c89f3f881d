"""The speed/scale benchmark section runs end to end in quick mode and reports sane, consistent numbers.

Speed itself is never asserted (that is what `make bench` reports); these tests check that every part
is measured, the numbers are real (positive, finite) and the markdown says what the data holds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from synthscope.benchmark import speed_scale
from synthscope.benchmark.base import BenchContext
from synthscope.membership import MembershipScorer


def _ctx(tmp_path) -> BenchContext:
    return BenchContext(shared_dir=None, cache_dir=tmp_path / "cache", out_dir=tmp_path / "out", quick=True)


def _assert_timing(timing: dict) -> None:
    assert 1 <= timing["runs"] <= timing["wanted_runs"] and len(timing["times_s"]) == timing["runs"]
    assert math.isfinite(timing["median_s"]) and timing["median_s"] > 0
    assert math.isfinite(timing["cpu_s"]) and timing["cpu_s"] >= 0
    assert min(timing["times_s"]) - 1e-3 <= timing["median_s"] <= max(timing["times_s"]) + 1e-3   # times_s are rounded


def _check_section(section, methods) -> dict:
    assert section.skipped is None
    data = section.data
    json.dumps(data, default=str)   # the runner writes it to report.json
    assert data["quick"] is True and data["dim"] == speed_scale.DIM
    assert len(data["load_avg_start"]) == 3 and len(data["load_avg_end"]) == 3

    projections = data["projections"]
    assert projections["sizes"] == list(speed_scale.PROJECTION_SIZES[1])
    for n in projections["sizes"]:
        row = projections["timings"][n]
        for key in (("pca", "pca"), ("pca", "pca_1thread"), ("umap", "umap_warm"), ("tsne", "tsne")):
            if key[0] in methods:
                _assert_timing(row[key[1]])
            else:
                assert key[1] not in row
    assert set(projections["growth"]) == set(projections["growth_cpu"])
    for value in [*projections["growth"].values(), *projections["growth_cpu"].values()]:
        assert math.isfinite(value)
    assert projections["memory"]["peak_rss_mb"] > 0

    clustering = data["clustering"]
    # quick sizes stay below SINGLE_THREAD_BELOW, so no forced-one-thread rows are added
    assert [(r["n"], r["method"], r["threads"]) for r in clustering["rows"]] == [
        (n, m, "all") for n in speed_scale.CLUSTER_SIZES[1] for m in ("auto", "kmeans", "gmm")]
    for row in clustering["rows"]:
        _assert_timing(row)
        assert row["chosen"] in ("kmeans", "gmm", "ward", "spectral")
        assert row["ari_vs_components"] > 0.8   # the synthetic mixture really has k=4 findable clusters
    assert all(math.isfinite(v) for v in clustering["growth"].values())

    membership = data["membership"]
    sizes = [r["n_generated"] for r in membership["rows"]]
    assert sizes == list(speed_scale.MEMBERSHIP_GENERATED[1])
    for row in membership["rows"]:
        _assert_timing(row)
        assert row["n_real"] == speed_scale.MEMBERSHIP_REAL[1]
        assert row["scores"] == list(MembershipScorer().scores) and row["finite"]
        assert row["index"] == ("pynndescent" if row["n_generated"] > membership["approx_threshold"] else "exact")
    assert math.isfinite(membership["growth"]["all"])

    peaks = [projections["memory"]["peak_rss_mb"], clustering["memory"]["peak_rss_mb"],
             membership["memory"]["peak_rss_mb"]]
    assert peaks == sorted(peaks)   # a peak never goes down

    markdown = section.markdown
    for phrase in ("**Projections**", "**Clustering**", "**Membership scoring**", "Load average",
                   "Peak RSS after the projections", "Peak RSS after clustering", "Peak RSS after membership",
                   "time ~ n^", "consensus"):
        assert phrase in markdown, phrase
    assert f"n^{membership['growth']['all']:.2f}" in markdown
    return data


def test_quick_section_without_umap_and_tsne(tmp_path, monkeypatch):
    # UMAP's numba JIT alone costs 60-90 s here, and t-SNE's OpenMP threads crawl when the 2 cores are
    # busy (39 s instead of 2 s for 1,000 points); the slow test below runs both
    monkeypatch.setattr(speed_scale, "PROJECTION_METHODS", ("pca",))
    section = speed_scale.run(_ctx(tmp_path))
    data = _check_section(section, ("pca",))
    assert "umap_first_call" not in data["projections"]


@pytest.mark.slow
@pytest.mark.timeout(1500)   # the whole quick section, UMAP's JIT included: 10 min on a loaded 2-core machine
def test_quick_section_with_umap_first_call_and_warm(tmp_path, monkeypatch):
    # the test above checks the quick sizes of clustering and membership; here the projections' methods matter,
    # so every part runs at smaller sizes (the section took 202 s of make test's critical path at the quick ones)
    monkeypatch.setattr(speed_scale, "PROJECTION_SIZES", (speed_scale.PROJECTION_SIZES[0], (500, 1_000)))
    monkeypatch.setattr(speed_scale, "CLUSTER_SIZES", (speed_scale.CLUSTER_SIZES[0], (500, 1_000)))
    monkeypatch.setattr(speed_scale, "MEMBERSHIP_GENERATED", (speed_scale.MEMBERSHIP_GENERATED[0], (500, 1_000)))
    section = speed_scale.run(_ctx(tmp_path))
    data = _check_section(section, speed_scale.PROJECTION_METHODS)
    first = data["projections"]["umap_first_call"]
    _assert_timing(first)
    assert first["n"] == speed_scale.PROJECTION_SIZES[1][0]
    assert "UMAP's numba compilation" in section.markdown


def test_timed_runs_reports_the_highest_load_seen_after_a_run(monkeypatch):
    loads = iter([(0.5, 0, 0), (3.456, 0, 0), (1.25, 0, 0)])
    monkeypatch.setattr(speed_scale.os, "getloadavg", lambda: next(loads))
    timing = speed_scale.timed_runs(lambda i: (lambda: None), repeats=3, budget_s=1e9)
    assert timing["load_1min"] == 3.46   # the busiest moment of the three runs, as the report's load column says


def test_timed_runs_stops_at_its_budget_and_takes_the_median():
    calls = []

    def prepare(i):
        calls.append(i)
        return lambda: sum(range(20_000 * (i + 1)))

    timing = speed_scale.timed_runs(prepare, repeats=4, budget_s=1e9)
    assert calls == [0, 1, 2, 3] and timing["runs"] == 4
    assert timing["median_s"] == pytest.approx(float(np.median(timing["times_s"])), abs=1e-3)
    calls.clear()
    assert speed_scale.timed_runs(prepare, repeats=4, budget_s=0.0)["runs"] == 1 and calls == [0]


def test_loglog_slope_recovers_known_exponents():
    sizes = [1_000, 2_000, 5_000, 20_000]
    assert speed_scale.loglog_slope(sizes, [3e-6 * n for n in sizes]) == pytest.approx(1.0)
    assert speed_scale.loglog_slope(sizes, [1e-9 * n ** 2 for n in sizes]) == pytest.approx(2.0)
    assert math.isnan(speed_scale.loglog_slope([5_000], [1.0]))


def test_mixture_draws_share_one_distribution():
    a, labels_a = speed_scale.gaussian_mixture(4_000, 16, 4, seed=1)
    b, _ = speed_scale.gaussian_mixture(4_000, 16, 4, seed=2)
    assert a.dtype == np.float32 and a.shape == (4_000, 16) and set(labels_a) == {0, 1, 2, 3}
    assert not np.array_equal(a, b)
    # same centres: component means agree across draws far more closely than the centres differ
    assert np.abs(a.mean(axis=0) - b.mean(axis=0)).max() < 0.15
