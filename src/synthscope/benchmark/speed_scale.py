"""`make bench` section: how projection, clustering and membership scoring scale with the number of vectors.

All inputs are synthetic float32 Gaussian mixtures drawn from a seeded numpy RNG (so clusters exist and
nearest neighbours are not uniform noise). Every call goes through the project's own entry points:
`synthscope.projection.project` (disk cache off), `synthscope.attribution.FingerprintClustering` (the
CLI's and dashboard's default `method="auto"`) and `synthscope.membership.MembershipScorer`.
Times are medians of the runs listed beside them; growth is the least-squares slope of log(time) on
log(n). Nothing here asserts a speed.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from synthscope.benchmark.base import BenchContext, BenchSection, cpu_count, peak_rss_mb

#: feature dimension of every synthetic set (between a fingerprint's PCA and an embedding's width)
DIM = 128
#: mixture components: 8 for the projections, k = 4 for clustering (sub-task 2's k)
PROJECTION_CLUSTERS = 8
CLUSTER_K = 4
#: cluster centres ~ N(0, CENTRE_SCALE^2) per dim, unit noise: separable, not trivially
CENTRE_SCALE = 0.35

PROJECTION_METHODS = ("pca", "umap", "tsne")

#: (full, quick) sizes
PROJECTION_SIZES = ((5_000, 20_000), (1_000, 2_000))
CLUSTER_SIZES = ((20_000, 200_000), (1_000, 3_000))
MEMBERSHIP_GENERATED = ((10_000, 20_000, 50_000, 100_000, 200_000), (1_000, 2_000, 5_000))
MEMBERSHIP_REAL = (4_000, 500)

#: (wanted runs, seconds after which no further run is started); quick mode divides the budget by 20
REPEATS = {"pca": (5, 60.0), "umap_warm": (3, 400.0), "tsne": (3, 150.0), "cluster": (3, 120.0),
           "membership": (3, 90.0)}
QUICK_BUDGET_DIVISOR = 20.0


def repeats(key: str, quick: bool) -> tuple[int, float]:
    wanted, budget = REPEATS[key]
    return wanted, budget / QUICK_BUDGET_DIVISOR if quick else budget


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def gaussian_mixture(n: int, dim: int, n_clusters: int, seed: int, *, centre_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 [n, dim] points and their component labels. Components are equally likely and their
    centres depend only on `centre_seed`, so draws with different `seed` come from one distribution."""
    centres = np.random.default_rng(centre_seed).normal(scale=CENTRE_SCALE, size=(n_clusters, dim))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_clusters, size=n)
    points = centres[labels] + rng.standard_normal((n, dim))
    return points.astype(np.float32), labels


def current_rss_mb() -> float:
    """Resident memory now (MiB), from /proc; NaN where /proc is absent."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def memory_snapshot() -> dict[str, float]:
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "rss_now_mb": round(current_rss_mb(), 1)}


def timed_runs(prepare: Callable[[int], Callable[[], Any]], repeats: int, budget_s: float) -> dict[str, Any]:
    """Median wall and CPU seconds of up to `repeats` runs; `prepare(i)` builds run i's call outside the
    clock (e.g. fresh data so no cache can help). The first run always happens; no further run starts
    once the runs so far took `budget_s`."""
    walls, cpus, loads = [], [], []
    while len(walls) < repeats:
        call = prepare(len(walls))
        cpu_start, start = time.process_time(), time.perf_counter()
        call()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
        loads.append(os.getloadavg()[0])
        if sum(walls) >= budget_s:
            break
    return {"median_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "runs": len(walls),
            "wanted_runs": repeats, "times_s": [round(t, 3) for t in walls], "load_1min": round(max(loads), 2)}


def loglog_slope(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """Exponent b of time ~ n^b, least squares on log-log; NaN with fewer than two distinct sizes."""
    sizes, seconds = np.asarray(sizes, dtype=float), np.asarray(seconds, dtype=float)
    keep = (sizes > 0) & (seconds > 0) & np.isfinite(seconds)
    if len(np.unique(sizes[keep])) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(sizes[keep]), np.log(seconds[keep]), 1)
    return float(slope)


def _fmt_s(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _runs(timing: dict) -> str:
    if timing["runs"] == 1:
        return f"{_fmt_s(timing['median_s'])} (1 run)"
    return (f"{_fmt_s(timing['median_s'])} ({timing['runs']} runs, {_fmt_s(min(timing['times_s']))}-"
            f"{_fmt_s(max(timing['times_s']))})")


def _short_runs(cells: Sequence[tuple[str, dict]]) -> list[str]:
    """A sentence naming every measurement that got fewer runs than wanted (its time budget ran out)."""
    short = [f"{label} ({timing['runs']} of {timing['wanted_runs']})" for label, timing in cells
             if timing["runs"] < timing["wanted_runs"]]
    return ["", "Fewer runs than wanted, because one run already took most of the time budget: "
            + ", ".join(short) + "."] if short else []


def numba_disk_cache_files(*packages: str) -> int:
    """Numba's on-disk cache index files of these packages: > 0 means earlier processes compiled their
    `cache=True` functions, so a first call here is cheaper than on a fresh install."""
    import importlib.util
    from pathlib import Path

    count = 0
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            count += sum(1 for _ in Path(spec.origin).parent.rglob("*.nbi"))
    return count


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MiB"


def _log(message: str) -> None:
    print(f"[bench]   {message}", flush=True)


# --------------------------------------------------------------------------------------------------
# 1. Projections
# --------------------------------------------------------------------------------------------------

def measure_projections(sizes: Sequence[int], methods: Sequence[str] = PROJECTION_METHODS, *,
                        quick: bool = False) -> dict[str, Any]:
    """{method: {n: timing}} plus the UMAP first call (numba JIT included), through `project(cache=False)`."""
    from synthscope.projection import project

    from threadpoolctl import threadpool_limits

    umap_jit_paid_before = "umap" in sys.modules  # another section in this process may have compiled it
    numba_cache = numba_disk_cache_files("umap", "pynndescent") if "umap" in methods else 0
    results: dict[str, Any] = {"sizes": list(sizes), "methods": list(methods), "timings": {}}
    data_seed = iter(range(1000, 10_000))

    def prepare(method: str, n: int) -> Callable[[int], Callable[[], Any]]:
        def make(_: int) -> Callable[[], Any]:
            X, _labels = gaussian_mixture(n, DIM, PROJECTION_CLUSTERS, next(data_seed))
            return lambda: project(X, method, cache=False)
        return make

    def single_threaded(make: Callable[[int], Callable[[], Any]]) -> Callable[[int], Callable[[], Any]]:
        def wrapped(i: int) -> Callable[[], Any]:
            call = make(i)

            def limited() -> Any:
                with threadpool_limits(1):
                    return call()
            return limited
        return wrapped

    for method in ("pca", "tsne"):
        if method in methods:   # import scikit-learn's modules outside the clock
            project(gaussian_mixture(60, DIM, PROJECTION_CLUSTERS, seed=999)[0], method, cache=False)
    for n in sizes:
        row: dict[str, Any] = {}
        if "pca" in methods:
            _log(f"PCA at {n:,} points")
            row["pca"] = timed_runs(prepare("pca", n), *repeats("pca", quick))
            # BLAS threads spin-wait when the 2 cores are busy; one thread shows the contention-free cost
            row["pca_1thread"] = timed_runs(single_threaded(prepare("pca", n)), *repeats("pca", quick))
        if "umap" in methods:
            if "umap_first_call" not in results:
                _log(f"UMAP first call at {n:,} points (includes numba JIT)")
                first = timed_runs(prepare("umap", n), 1, 0.0)
                results["umap_first_call"] = {"n": n, **first, "jit_paid_before": umap_jit_paid_before,
                                              "numba_disk_cache_files": numba_cache}
            _log(f"UMAP warm at {n:,} points")
            row["umap_warm"] = timed_runs(prepare("umap", n), *repeats("umap_warm", quick))
        if "tsne" in methods:
            _log(f"t-SNE at {n:,} points")
            row["tsne"] = timed_runs(prepare("tsne", n), *repeats("tsne", quick))
        results["timings"][n] = row
    results["growth"] = {
        key: loglog_slope(sizes, [results["timings"][n][key]["median_s"] for n in sizes])
        for key in ("pca", "pca_1thread", "umap_warm", "tsne") if all(key in results["timings"][n] for n in sizes)}
    results["growth_cpu"] = {
        key: loglog_slope(sizes, [results["timings"][n][key]["cpu_s"] for n in sizes]) for key in results["growth"]}
    results["memory"] = memory_snapshot()
    return results


def _projection_markdown(result: dict[str, Any]) -> list[str]:
    sizes, timings = result["sizes"], result["timings"]
    first = result.get("umap_first_call")
    lines = [f"**Projections** through `synthscope.projection.project` (disk cache off), {DIM}-d Gaussian mixture "
             f"of {PROJECTION_CLUSTERS} components, fresh data for every run. Wall seconds, median (runs); "
             "t-SNE is scikit-learn Barnes-Hut, UMAP runs single-threaded because a seed is set.", "",
             "| points | PCA | PCA, BLAS 1 thread | UMAP first call (incl. numba JIT) | UMAP warm | t-SNE | "
             "max 1-min load |", "|---|---|---|---|---|---|---|"]
    cells = []
    for n in sizes:
        row = timings[n]
        first_cell = (_runs(first) if first and first["n"] == n else
                      "(JIT paid once per process)" if first else "not run")
        load = max([t["load_1min"] for t in row.values()] + ([first["load_1min"]] if first and first["n"] == n else []))
        lines.append(f"| {n:,} | " + " | ".join(_runs(row[key]) if key in row else "not run"
                                               for key in ("pca", "pca_1thread")) + f" | {first_cell} | "
                     + " | ".join(_runs(row[key]) if key in row else "not run" for key in ("umap_warm", "tsne"))
                     + f" | {load:.1f} |")
        cells += [(f"{key} at {n:,}", timing) for key, timing in row.items()]
    lines += _short_runs(cells)
    if first:
        warm = timings[first["n"]].get("umap_warm")
        jit = first["median_s"] - warm["median_s"] if warm else float("nan")
        lines += ["", f"UMAP's numba compilation: first call minus warm median at {first['n']:,} points = "
                  f"{_fmt_s(jit)} s" + (" (UMAP had already been imported by an earlier section, so part of the "
                                         "JIT may have been paid before)" if first["jit_paid_before"] else "") + "."
                  + (f" numba's on-disk cache held {first['numba_disk_cache_files']} index files for umap/pynndescent "
                     "from earlier processes, so this is the first call on a machine that has run UMAP before; a "
                     "fresh install compiles everything (DEVELOPERS.md quotes 60-90 s)."
                     if first["numba_disk_cache_files"] else "")]
    growth, growth_cpu = result["growth"], result["growth_cpu"]
    if growth:
        lines += ["", f"Observed growth from {sizes[0]:,} to {sizes[-1]:,} points (wall; CPU seconds in brackets): "
                  + "; ".join(f"{name} time ~ n^{value:.2f} [n^{growth_cpu[name]:.2f}]"
                              for name, value in growth.items())
                  + ". References: PCA via the covariance matrix is O(n d^2); Barnes-Hut t-SNE O(n log n); UMAP is "
                  "dominated by NN-descent (empirically ~n^1.1) and a linear number of SGD updates. Slopes over two "
                  "sizes include fixed costs and the machine's load, so they are what this run saw, not asymptotics."]
    lines += ["", f"Peak RSS after the projections: {result['memory']['peak_rss_mb']:.0f} MiB "
              f"(RSS now {result['memory']['rss_now_mb']:.0f} MiB)."]
    return lines


# --------------------------------------------------------------------------------------------------
# 2. Clustering
# --------------------------------------------------------------------------------------------------

def measure_clustering(sizes: Sequence[int], methods: Sequence[str] = ("auto", "kmeans", "gmm"), *,
                       quick: bool = False) -> dict[str, Any]:
    """Wall time of `FingerprintClustering(k=4, method).fit` per size (standardise + PCA-8 + clustering,
    plus for "auto" the resampling-stability selection), with the ARI against the mixture's components."""
    from sklearn.metrics import adjusted_rand_score

    from threadpoolctl import threadpool_limits

    from synthscope.attribution import (MAX_CONSENSUS_POINTS, MAX_QUADRATIC_POINTS, SINGLE_THREAD_BELOW,
                                        FingerprintClustering)

    rows = []
    for n in sizes:
        X, truth = gaussian_mixture(n, DIM, CLUSTER_K, seed=n, centre_seed=1)
        # above SINGLE_THREAD_BELOW the core uses every thread; one thread shows what that buys here
        variants = [(m, None) for m in methods] + [(m, 1) for m in ("kmeans", "gmm")
                                                   if m in methods and n >= SINGLE_THREAD_BELOW]
        for method, threads in variants:
            _log(f"clustering {method} at {n:,} points" + (" (1 thread)" if threads else ""))
            fitted: dict[str, Any] = {}

            def make(_: int, method=method, threads=threads) -> Callable[[], Any]:
                def call() -> None:
                    with threadpool_limits(threads):
                        fitted["model"] = FingerprintClustering(CLUSTER_K, method=method,
                                                                views=("synthetic",)).fit({"synthetic": X})
                return call

            timing = timed_runs(make, *repeats("cluster", quick))
            model = fitted["model"]
            rows.append({"n": n, "method": method, "threads": threads or "all", **timing,
                         "chosen": f"{model.chosen_['method']}",
                         "candidates": ",".join(model.selection_["method"]),
                         "ari_vs_components": round(float(adjusted_rand_score(truth, model.labels_)), 3)})
        del X
    default = [r for r in rows if r["threads"] == "all"]   # what the CLI and dashboard run
    growth = {method: loglog_slope([r["n"] for r in default if r["method"] == method],
                                   [r["median_s"] for r in default if r["method"] == method]) for method in methods}
    growth_cpu = {method: loglog_slope([r["n"] for r in default if r["method"] == method],
                                       [r["cpu_s"] for r in default if r["method"] == method]) for method in methods}
    return {"sizes": list(sizes), "rows": rows, "growth": growth, "growth_cpu": growth_cpu, "max_consensus_points": MAX_CONSENSUS_POINTS,
            "max_quadratic_points": MAX_QUADRATIC_POINTS, "single_thread_below": SINGLE_THREAD_BELOW,
            "memory": memory_snapshot()}


def _clustering_markdown(result: dict[str, Any]) -> list[str]:
    cap, quad = result["max_consensus_points"], result["max_quadratic_points"]
    largest = max(result["sizes"])
    lines = [f"**Clustering** through `synthscope.attribution.FingerprintClustering(k={CLUSTER_K})` on a {DIM}-d "
             f"mixture of {CLUSTER_K} components (standardise, PCA to 8, cluster). `auto` is the CLI's and "
             "dashboard's default: above "
             f"{quad:,} points it compares k-means and GMM only (Ward and spectral need quadratic memory) and "
             "adds 10 resamples of 80% per candidate for the stability score. `consensus` is not timed: its "
             f"n x n co-association matrix is capped at {cap:,} points (at {largest:,} it would be "
             f"{_size(largest ** 2 * 4)} of float32). Below {result['single_thread_below']:,} points the core "
             "clusters on one thread by design (`SINGLE_THREAD_BELOW`), above it on all; rows with threads = 1 "
             "force one thread there, to show what the threads buy on this machine.", "",
             "| points | method | threads | seconds, median (runs, range) | CPU s | chosen | ARI vs mixture components | "
             "max 1-min load |", "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        threads = row["threads"] if row["threads"] != "all" else (
            "1 (by design)" if row["n"] < result["single_thread_below"] else "all")
        lines.append(f"| {row['n']:,} | {row['method']} | {threads} | {_runs(row)} | {_fmt_s(row['cpu_s'])} | "
                     f"{row['chosen']} | {row['ari_vs_components']:.3f} | {row['load_1min']:.1f} |")
    lines += _short_runs([(f"{row['method']} at {row['n']:,} ({row['threads']} threads)", row)
                          for row in result["rows"]])
    lines += ["", "Observed growth of the default (threads as the core sets them; wall, CPU seconds in brackets): "
              + "; ".join(f"{method} time ~ n^{value:.2f} [n^{result['growth_cpu'][method]:.2f}]"
                          for method, value in result["growth"].items())
              + ". k-means and GMM cost O(n) per iteration; below 50,000 points they run on one thread and above "
                "on all cores, so the slope mixes algorithmic growth with the change of threading (compare the 1-thread rows)."]
    lines += ["", f"Peak RSS after clustering: {result['memory']['peak_rss_mb']:.0f} MiB "
              f"(RSS now {result['memory']['rss_now_mb']:.0f} MiB)."]
    return lines


# --------------------------------------------------------------------------------------------------
# 3. Membership scoring
# --------------------------------------------------------------------------------------------------

def measure_membership(generated_sizes: Sequence[int], n_real: int, *, quick: bool = False) -> dict[str, Any]:
    """Wall time of `MembershipScorer().fit(generated).score(real)` (its default scores, the
    real pool leave-one-out as reference) for growing generated sets and a fixed real set."""
    from synthscope.membership import APPROX_THRESHOLD, MembershipScorer

    pynndescent_warmup_s = None
    if max(generated_sizes) > MembershipScorer().approx_threshold:
        # pynndescent compiles with numba on first use; pay that outside the clock and report it
        from pynndescent import NNDescent

        warm_X, _ = gaussian_mixture(2_000, DIM, CLUSTER_K, seed=7)
        start = time.perf_counter()
        NNDescent(warm_X, n_neighbors=30, random_state=0, low_memory=True).query(warm_X[:100], k=5)
        pynndescent_warmup_s = round(time.perf_counter() - start, 2)

    real, _ = gaussian_mixture(n_real, DIM, CLUSTER_K, seed=3, centre_seed=2)
    rows = []
    for n in generated_sizes:
        generated, _ = gaussian_mixture(n, DIM, CLUSTER_K, seed=n + 11, centre_seed=2)
        scorer = MembershipScorer()
        approx = n > scorer.approx_threshold
        _log(f"membership {n:,} generated x {n_real:,} real ({'pynndescent' if approx else 'exact'})")
        out: dict[str, Any] = {}

        def make(_: int, generated=generated, scorer=scorer) -> Callable[[], Any]:
            def call() -> None:
                out["scores"] = scorer.fit(generated).score(real)
            return call

        timing = timed_runs(make, *repeats("membership", quick))
        scores = out["scores"]
        rows.append({"n_generated": n, "n_real": n_real, "index": "pynndescent" if approx else "exact", **timing,
                     "scores": list(scores.columns), "finite": bool(np.isfinite(scores.to_numpy()).all())})
        del generated
    sizes, seconds = [r["n_generated"] for r in rows], [r["median_s"] for r in rows]
    growth = {"all": loglog_slope(sizes, seconds), "all_cpu": loglog_slope(sizes, [r["cpu_s"] for r in rows])}
    for index in ("exact", "pynndescent"):
        part = [r for r in rows if r["index"] == index]
        growth[index] = loglog_slope([r["n_generated"] for r in part], [r["median_s"] for r in part])
    return {"dim": DIM, "n_real": n_real, "approx_threshold": APPROX_THRESHOLD, "rows": rows, "growth": growth,
            "pynndescent_warmup_s": pynndescent_warmup_s, "memory": memory_snapshot()}


def _membership_markdown(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    score_names = ", ".join(rows[0]["scores"]) if rows else "none"
    lines = [f"**Membership scoring** through `MembershipScorer().fit(generated).score(real)`: its default "
             f"scores ({score_names}), {result['n_real']:,} real vectors scored leave-one-out, "
             f"{result['dim']}-d mixture. Exact float32 BLAS kNN up to {result['approx_threshold']:,} generated "
             "vectors, pynndescent (index build included) beyond"
             + (f"; pynndescent's numba warm-up, outside the clock: {result['pynndescent_warmup_s']:.1f} s."
                if result["pynndescent_warmup_s"] is not None else "."), "",
             "| generated | real | kNN | seconds, median (runs, range) | CPU s | all scores finite | max 1-min load |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['n_generated']:,} | {row['n_real']:,} | {row['index']} | {_runs(row)} | "
                     f"{_fmt_s(row['cpu_s'])} | {'yes' if row['finite'] else 'NO'} | {row['load_1min']:.1f} |")
    lines += _short_runs([(f"{row['n_generated']:,} generated", row) for row in rows])
    growth = result["growth"]
    parts = [f"over all sizes time ~ n^{growth['all']:.2f} (CPU seconds ~ n^{growth['all_cpu']:.2f})"]
    for index in ("exact", "pynndescent"):
        if math.isfinite(growth[index]):
            parts.append(f"{index} regime ~ n^{growth[index]:.2f}")
    lines += ["", "Observed growth in the generated-set size: " + "; ".join(parts) + ". The exact regime has a "
              f"fixed part (the real-to-real leave-one-out kNN, {result['n_real']:,} x {result['n_real']:,}) that flattens its "
              "slope; its generated part is O(n_generated x n_real x d). pynndescent builds an index over the "
              "generated set (empirically ~n^1.1) and queries it in roughly log time per real vector."]
    lines += ["", f"Peak RSS after membership scoring: {result['memory']['peak_rss_mb']:.0f} MiB "
              f"(RSS now {result['memory']['rss_now_mb']:.0f} MiB)."]
    return lines


# --------------------------------------------------------------------------------------------------
# Section
# --------------------------------------------------------------------------------------------------

def run(ctx: BenchContext) -> BenchSection:
    pick = 1 if ctx.quick else 0
    load_start = os.getloadavg()
    rss_start = memory_snapshot()
    projections = measure_projections(PROJECTION_SIZES[pick], PROJECTION_METHODS, quick=ctx.quick)
    clustering = measure_clustering(CLUSTER_SIZES[pick], quick=ctx.quick)
    membership = measure_membership(MEMBERSHIP_GENERATED[pick], MEMBERSHIP_REAL[pick], quick=ctx.quick)
    load_end = os.getloadavg()

    lines = [f"Synthetic float32 data, {DIM} dims, seeded numpy RNG; {cpu_count()} CPU cores"
             + (", quick mode (small sizes)" if ctx.quick else "") + ". Load average (1/5/15 min) at the start "
             f"{'/'.join(f'{v:.1f}' for v in load_start)}, at the end {'/'.join(f'{v:.1f}' for v in load_end)}: "
             "a load above the core count means other work shared the machine and the wall times are inflated. "
             "CPU seconds count all threads of this process, including OpenMP/BLAS threads spin-waiting for a "
             "descheduled partner, so they rise under load too. Peak RSS at the section start "
             f"{rss_start['peak_rss_mb']:.0f} MiB (process-wide, includes earlier sections).", ""]
    lines += _projection_markdown(projections) + [""]
    lines += _clustering_markdown(clustering) + [""]
    lines += _membership_markdown(membership)
    data = {"dim": DIM, "quick": ctx.quick, "load_avg_start": list(load_start), "load_avg_end": list(load_end),
            "memory_start": rss_start, "projections": projections, "clustering": clustering,
            "membership": membership}
    return BenchSection(title="Speed and scale: projections, clustering, membership scoring",
                        markdown="\n".join(lines), data=data)
