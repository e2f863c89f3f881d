"""`make bench` section: kernel-side latency of dashboard interactions on 20,000 points (goal < 300 ms).

The runner loads it by name (`--section synthscope_dashboard.bench_section`), so the core never imports
the dashboard."""

from __future__ import annotations

from synthscope.benchmark.base import BenchContext, BenchSection

GOAL_MS = 300.0


def run(ctx: BenchContext) -> BenchSection:
    from synthscope_dashboard.latency import measure

    n_points = 2_000 if ctx.quick else 20_000
    results = measure(n_points=n_points, repeats=3 if ctx.quick else 7)
    rows = ["| interaction | median ms | max ms | widget traffic kB | goal |", "|---|---|---|---|---|"]
    for name, numbers in results.items():
        if name.startswith("_"):
            continue
        verdict = "met" if numbers["median_ms"] < GOAL_MS else "MISSED"
        rows.append(f"| {name} | {numbers['median_ms']:.0f} | {numbers['max_ms']:.0f} | {numbers['kb_sent']:.0f} | "
                    f"< {GOAL_MS:.0f} ms: {verdict} |")
    markdown = (f"Kernel-side time, in-process, of one interaction with every panel built, on {n_points:,} generated "
                f"and {n_points:,} real points (synthetic), median of runs. Lasso = a selection of 10% of the points "
                "(gallery update); relabel = moving them to a cluster (scatter colours, ARI/NMI with 500-sample "
                "bootstrap CIs, cluster table, autosave); threshold = a new threshold (F1 etc. with 1,000-sample "
                "bootstrap CIs on dev and test, histogram line, score table, autosave). Widget messages are "
                f"JSON-encoded as a kernel would. Building the dashboard took {results['_build']['seconds']:.1f} s.\n\n"
                + "\n".join(rows))
    return BenchSection("Dashboard latency", markdown, data={"n_points": n_points, **results})
