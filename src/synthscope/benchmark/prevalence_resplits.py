"""Prevalence estimates for the banded cut at few generated images (issue 19, seventh round): which label-free
estimate of the scored folder's share used, from labelled dev scores and the folder's own scores, puts the cut
nearest the true share on scan-disjoint re-splits of a labelled pool (no benchmark's test labels read).

The sixth round (`threshold_resplits --cuts`) found that no cut rule beats the banded two-means at 20 generated
images per folder and that the true share's quantile would add +0.06 to +0.08 kappa: the limit is the adjusted
count (Forman 2008) the band is centred on, fitted at one dev cut from ~40 dev images. The candidates here use
more of dev: Forman's median sweep (the adjusted count at every dev cut with TPR - FPR >= 0.25, median), matching
the folder's empirical CDF as a mixture of dev's two class CDFs (least squares), HDy (González-Castro et al.
2013: Hellinger distance between histograms, median over bin counts), EMQ (Saerens et al. 2002: EM on
logistic-calibrated dev posteriors) and the probabilistic adjusted count (Bella et al. 2010).

    python -m synthscope.benchmark.prevalence_resplits --bench ../shared/bench/v3 --repeats 60 --seed 900

screens them (the best two were then run on 200 re-splits at seed 1000, docs/design.md seventh round);
`--generated-side --seed 1100` screens a count from the other side, each generated image's nearest real image.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from synthscope.benchmark.threshold_resplits import (
    GENERATED, SHARES, band_around, compare_cuts, cut_table, load_pool, quantile_cut, resplit_parser,
    smoothed_resplits, summary,
)


#: the label-free prevalence estimates screened (`prevalence_estimate`)
PREVALENCE_METHODS = ("count", "median_sweep", "cdf", "hdy", "emq", "pacc")


def prevalence_estimate(dev_scores, dev_used, scores, *, method: str = "count") -> float:
    """The fraction used in `scores` (no labels) from labelled dev scores, kept in [0.02, 0.98]. All assume the
    score's class-conditional distributions carry from dev, not the prevalence. "count": `adjusted_count` at dev's
    kappa-best cut; "median_sweep": the adjusted count at every dev cut with TPR - FPR >= 0.25, median (Forman
    2008); "cdf": the mixture weight p that best fits the folder's empirical CDF by p F_used + (1 - p) F_not of dev
    (least squares over the pooled scores); "hdy": the weight minimising the Hellinger distance between the
    folder's histogram and the mixture's, median over 10-100 bins (González-Castro et al. 2013); "emq": EM on the
    prior of logistic-calibrated dev posteriors (Saerens et al. 2002); "pacc": the mean calibrated posterior,
    corrected by its dev means per class (Bella et al. 2010)."""
    if method not in PREVALENCE_METHODS:
        raise ValueError(f"unknown prevalence method {method!r}; choose from {', '.join(PREVALENCE_METHODS)}")
    d, dy, x = np.asarray(dev_scores, dtype=float), np.asarray(dev_used).astype(int), np.asarray(scores, dtype=float)
    from synthscope.membership.thresholds import adjusted_count

    if method == "count":
        return adjusted_count(d, dy, x)
    pos, neg = d[dy == 1], d[dy == 0]
    if not len(pos) or not len(neg):
        raise ValueError("a prevalence estimate needs dev scores of both classes")
    if method == "median_sweep":
        values = np.unique(d)
        cuts = (values[:-1] + values[1:]) / 2
        tpr = (pos[None] >= cuts[:, None]).mean(axis=1)
        fpr = (neg[None] >= cuts[:, None]).mean(axis=1)
        q = (x[None] >= cuts[:, None]).mean(axis=1)
        keep = tpr - fpr >= 0.25
        if not keep.any():
            return adjusted_count(d, dy, x)
        p = float(np.median((q[keep] - fpr[keep]) / (tpr[keep] - fpr[keep])))
    elif method == "cdf":
        grid = np.sort(np.concatenate([d, x]))
        f_pos, f_neg, f_x = (np.searchsorted(np.sort(v), grid, side="right") / len(v) for v in (pos, neg, x))
        gap = f_pos - f_neg
        p = float(((f_x - f_neg) * gap).sum() / max((gap * gap).sum(), 1e-12))
    elif method == "hdy":
        low, high = min(d.min(), x.min()), max(d.max(), x.max())
        weights = np.linspace(0, 1, 101)
        found = []
        for bins in range(10, 101, 10):
            edges = np.linspace(low, high, bins + 1)
            h_pos, h_neg, h_x = (np.histogram(v, edges)[0] / len(v) for v in (pos, neg, x))
            mix = weights[:, None] * h_pos[None] + (1 - weights[:, None]) * h_neg[None]
            found.append(weights[np.argmin(((np.sqrt(mix) - np.sqrt(h_x)[None]) ** 2).sum(axis=1))])
        p = float(np.median(found))
    else:
        from sklearn.linear_model import LogisticRegression

        centre, spread = d.mean(), max(d.std(), 1e-12)            # the solver wants unit-scale scores
        d, x = (d - centre) / spread, (x - centre) / spread
        model = LogisticRegression().fit(d[:, None], dy)
        post_x = model.predict_proba(x[:, None])[:, 1]
        if method == "pacc":
            post_d = model.predict_proba(d[:, None])[:, 1]
            tpr, fpr = post_d[dy == 1].mean(), post_d[dy == 0].mean()
            p = float((post_x.mean() - fpr) / max(tpr - fpr, 1e-6))
        else:
            prior = p = dy.mean()
            for _ in range(1000):
                q = np.clip(p, 1e-6, 1 - 1e-6)
                up, down = q / prior * post_x, (1 - q) / (1 - prior) * (1 - post_x)
                p, previous = float((up / (up + down)).mean()), p
                if abs(p - previous) < 1e-8:
                    break
    return float(np.clip(p, 0.02, 0.98))


def candidate_estimates() -> dict[str, Callable]:
    """estimate name -> f(dev scores, dev labels, scores) -> share used in scores."""
    from synthscope.membership.thresholds import adjusted_count

    estimates = {"count": adjusted_count}
    for method in ("median_sweep", "cdf", "hdy", "emq", "pacc"):
        estimates[method] = (lambda m: lambda d, dy, x: prevalence_estimate(d, dy, x, method=m))(method)
    estimates["mean(count, cdf)"] = lambda d, dy, x: 0.5 * (estimates["count"](d, dy, x) + estimates["cdf"](d, dy, x))
    estimates["mean(sweep, cdf)"] = lambda d, dy, x: 0.5 * (estimates["median_sweep"](d, dy, x)
                                                           + estimates["cdf"](d, dy, x))
    return estimates


def prevalence_rules(estimates: dict[str, Callable] | None = None) -> dict[str, Callable]:
    """Cut rules (as `threshold_resplits.cut_rules`): the default band, and per estimate the two-means cut kept within
    the band around it ("band around e") and the folder's quantile at the estimate itself ("quantile at e")."""
    from synthscope.membership.thresholds import banded_two_means

    rules = {"band": lambda d, dy, x: banded_two_means(x, d, dy).threshold}
    for name, estimate in (estimates or candidate_estimates()).items():
        rules[f"band around {name}"] = (lambda e: lambda d, dy, x: band_around(x, e(d, dy, x)))(estimate)
        rules[f"quantile at {name}"] = (lambda e: lambda d, dy, x: quantile_cut(x, e(d, dy, x)))(estimate)
    return rules


def generated_side_count(pool, dev, dev_used, scored, drawn) -> float:
    """The scored folder's share used counted from the generated side: each drawn generated image goes to its
    nearest real image of dev or the scored folder (the patch pair score); dev's labels give the matches per used
    and per not-used image (mu, lambda), and the scored folder's matches m then give (m - lambda n) / (mu - lambda)
    used images of n. It assumes every training image is in one of the two folders and is generated as often."""
    both = np.r_[dev, scored]
    nearest = both[np.argmax(pool.pair_scores(both, drawn), axis=0)]
    mu = np.isin(nearest, dev[dev_used == 1]).sum() / max(int((dev_used == 1).sum()), 1)
    lam = np.isin(nearest, dev[dev_used == 0]).sum() / max(int((dev_used == 0).sum()), 1)
    matched = np.isin(nearest, scored).sum()
    return float(np.clip((matched - lam * len(scored)) / max(mu - lam, 1e-6) / len(scored), 0.02, 0.98))


def compare_generated_side(pool, *, repeats: int, seed: int, shares=SHARES, generated=GENERATED) -> pd.DataFrame:
    """`compare_cuts`' table for the generated-side count (`generated_side_count`) against the band, on the same kind
    of re-splits and scan-smoothed scores: the band, a quantile cut at the count, and bands around it and around its
    mean with the adjusted count."""
    from synthscope.membership.thresholds import adjusted_count, banded_two_means

    def resplit_cuts():
        for cell, (dev, scored, drawn), d, x in smoothed_resplits(pool, 1, repeats, seed, shares, generated):
            dy = pool.used[dev]
            side, count = generated_side_count(pool, dev, dy, scored, drawn), adjusted_count(d, dy, x)
            cuts = {"band": banded_two_means(x, d, dy).threshold,
                    "quantile at generated side": quantile_cut(x, side),
                    "band around generated side": band_around(x, side),
                    "band around mean(count, generated side)": band_around(x, 0.5 * (side + count))}
            yield cell, cuts, x, pool.used[scored]

    return cut_table(resplit_cuts())


def main(argv=None) -> None:
    parser = resplit_parser(__doc__.split("\n\n")[0], repeats=60)
    parser.add_argument("--out", type=str, default=None, help="write every kappa as CSV")
    parser.add_argument("--generated", type=str, default="20,50", help="generated images per folder, e.g. 20,50")
    parser.add_argument("--generated-side", action="store_true",
                        help="compare the generated-side count (`generated_side_count`) instead")
    args = parser.parse_args(argv)
    groups = args.scan_groups or args.bench.parent.parent / "data" / "iqoth256" / "near_duplicate_groups.csv"
    generated = tuple(int(g) for g in args.generated.split(","))
    pool = load_pool(args.bench, groups, pixels=True)
    if args.generated_side:
        kappas = compare_generated_side(pool, repeats=args.repeats, seed=args.seed, generated=generated)
    else:
        kappas = compare_cuts(pool, prevalence_rules(), repeats=args.repeats, seed=args.seed, generated=generated)
    if args.out:
        kappas.to_csv(args.out, index=False)
    called = kappas.assign(error=kappas["called"] - kappas["true"]).groupby(["generated", "share", "rule"])["error"]
    print(called.agg(bias="mean", mae=lambda e: e.abs().mean()).reset_index().to_string(
        index=False, float_format=lambda v: f"{v:.3f}"))
    print(summary(kappas, "band").to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
