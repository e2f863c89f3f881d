"""Coverage of the expected-performance interval (issue 19: "the expected-performance line is within its CI of the
test result") on scan-disjoint re-splits of a labelled pool, where no benchmark's test labels are read.

Each re-split (`threshold_resplits.resplit_rows`: a third of each class's scans to dev, the rest scored at 30, 50
or 70 % used, `n_generated` images per folder pooled) runs the default procedure on the patch score: the nested
cross-validation of `membership.expectation` on dev (column and threshold chosen inside each fold as
`run_membership` chooses them), then the run's own threshold on the scored folder. The scored folder's F1 and
kappa are then checked against each interval: "bootstrap" (the scan-group bootstrap of the pooled out-of-fold
metric, before), "predictive" (the posterior predictive for the scored folder given its calls, the default) and
"predictive_dev" (the same for a folder of dev's size and share used, what is printed without a scored folder).

    python -m synthscope.benchmark.expectation_resplits --bench ../shared/bench/v3 --repeats 100 --seed 5
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthscope.benchmark.threshold_resplits import GENERATED, SHARES, PatchPool, load_pool, resplit_parser, resplit_rows

INTERVAL_NAMES = ("bootstrap", "predictive_nominal", "predictive", "predictive_dev")


def intervals_on_resplit(pool: PatchPool, rng: np.random.Generator, share: float, n_generated: int, *,
                         typicality: float = 0.0, n_boot: int = 1000, raw: list | None = None,
                         smoothing: int | None = None) -> list[tuple]:
    """One re-split: (interval, metric, test value, value, low, high) for each interval and metric; with `raw`, its
    out-of-fold calls and the scored folder's calls and labels are appended there (to compare intervals later).
    With `pool.pixels`, as `run_membership` does: scan groups found without labels on each folder's 64 px images
    (the nested CV's folds), scan smoothing (`smoothing`, default the run's) gated on dev's labels, and the nested CV
    on the raw column beside its smoothed copy."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    from synthscope.membership import MembershipOptions
    from synthscope.membership.expectation import (
        COVERAGE_CALIBRATION, _stratified_group_bootstrap, out_of_fold_calls, predictive_interval,
    )
    from synthscope.membership.pipeline import _procedure, _threshold
    from synthscope.membership.scores import near_duplicate_groups
    from synthscope.membership.thresholds import scan_smoothed, smoothing_applies, with_smoothed
    from synthscope.membership.verdicts import rank_test

    options = MembershipOptions() if smoothing is None else MembershipOptions(scan_smoothing=smoothing)
    dev, scored, generated = resplit_rows(pool, rng, share, n_generated)
    d, x = pool.scores(dev, generated, typicality), pool.scores(scored, generated, typicality)
    dy, y = pool.used[dev], pool.used[scored]
    table, dev_groups = pd.DataFrame({"images:patches": d}), pool.scans[dev]
    if pool.pixels is not None:
        dp, xp = pool.pixels[dev], pool.pixels[scored]
        dev_groups, groups = near_duplicate_groups(dp), near_duplicate_groups(xp)
        table = with_smoothed(table, dp, dev_groups, options.scan_smoothing)
        if smoothing_applies(options.scan_smoothing, dy, dev_groups, options.alpha):
            d, x = (scan_smoothed(d, dp, dev_groups, options.scan_smoothing),
                    scan_smoothed(x, xp, groups, options.scan_smoothing))
    leaked = rank_test(d, dy, alpha=options.alpha).significant
    calls = (x >= _threshold(options, d, dy, x, leaked).threshold).astype(int)
    test = {"f1": f1_score(y, calls, zero_division=0), "kappa": cohen_kappa_score(y, calls)}
    folds = out_of_fold_calls(table, dy, dev_groups, _procedure(options, options.alpha))
    if folds is None:
        return []
    oy, op, og, _, _ = folds
    if raw is not None:
        raw.append({"share": share, "generated": n_generated, "y": oy, "p": op, "g": og, "calls": calls,
                    "labels": y, "test": test})
    calibrated = 0.05 * COVERAGE_CALIBRATION
    found = {"bootstrap": _stratified_group_bootstrap(oy, op, og, n_boot=n_boot, seed=0, alpha=0.05),
             "predictive_nominal": predictive_interval(oy, op, og, n_repeats=5, scored_calls=calls, n_draws=n_boot)[0],
             "predictive": predictive_interval(oy, op, og, n_repeats=5, scored_calls=calls, n_draws=n_boot,
                                               alpha=calibrated)[0],
             "predictive_dev": predictive_interval(oy, op, og, n_repeats=5, n_draws=n_boot, alpha=calibrated)[0]}
    return [(name, metric, test[metric], e[metric].value, e[metric].ci_low, e[metric].ci_high)
            for name, e in found.items() for metric in ("f1", "kappa")]


def coverage(pool: PatchPool, *, repeats: int = 100, seed: int = 0, shares=SHARES, generated=GENERATED,
             typicality: float = 0.0, n_boot: int = 1000, raw: list | None = None) -> pd.DataFrame:
    """One row per (cell, re-split, interval, metric): the scored folder's value and the interval."""
    rows = []
    for n_generated in generated:
        for share in shares:
            rng = np.random.default_rng([seed, n_generated, int(round(share * 10))])
            for repeat in range(repeats):
                for row in intervals_on_resplit(pool, rng, share, n_generated, typicality=typicality, n_boot=n_boot,
                                                raw=raw):
                    rows.append((n_generated, share, repeat) + row)
    return pd.DataFrame(rows, columns=["generated", "share", "repeat", "interval", "metric", "test", "value", "low",
                                       "high"])


def summary(found: pd.DataFrame) -> pd.DataFrame:
    """Per cell, interval and metric: coverage (test value inside [low, high]), mean width, share of zero-width
    intervals, and how often the test value lies below / above the interval."""
    found = found.assign(inside=(found["low"] <= found["test"]) & (found["test"] <= found["high"]),
                         width=found["high"] - found["low"], below=found["test"] < found["low"],
                         above=found["test"] > found["high"])
    found["zero"] = found["width"] <= 1e-12
    both = found.groupby(["generated", "share", "interval", "repeat"])["inside"].all().groupby(
        level=["generated", "share", "interval"]).mean().rename("both_inside")
    out = found.groupby(["generated", "share", "interval", "metric"]).agg(
        n=("inside", "size"), coverage=("inside", "mean"), width=("width", "mean"), zero_width=("zero", "mean"),
        below=("below", "mean"), above=("above", "mean")).reset_index()
    return out.join(both, on=["generated", "share", "interval"])


def main(argv=None) -> None:
    parser = resplit_parser(__doc__.split("\n\n")[0], repeats=100)
    parser.add_argument("--typicality", type=float, default=0.0, help="the patch score's typicality weight")
    parser.add_argument("--generated", type=str, default=None, help="generated images per folder, e.g. 20,50")
    parser.add_argument("--out", type=Path, default=None, help="write every re-split's intervals as CSV")
    parser.add_argument("--raw", type=Path, default=None, help="pickle every re-split's out-of-fold calls here")
    parser.add_argument("--pool-cache", type=Path, default=None,
                        help="a .pkl to keep the pool's patch distance table in (computed once, then read)")
    args = parser.parse_args(argv)
    groups = args.scan_groups or args.bench.parent.parent / "data" / "iqoth256" / "near_duplicate_groups.csv"
    generated = GENERATED if not args.generated else tuple(int(g) for g in args.generated.split(","))
    if args.pool_cache is not None and args.pool_cache.is_file():
        pool = pd.read_pickle(args.pool_cache)
    else:
        pool = load_pool(args.bench, groups, typicality=args.typicality > 0, pixels=True)
        if args.pool_cache is not None:
            pd.to_pickle(pool, args.pool_cache)
    raw = [] if args.raw else None
    found = coverage(pool, repeats=args.repeats, seed=args.seed, typicality=args.typicality, generated=generated,
                     raw=raw)
    if args.raw:
        pd.to_pickle(raw, args.raw)
    if args.out:
        found.to_csv(args.out, index=False)
    print(summary(found).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
