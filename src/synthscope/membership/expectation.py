"""What the whole procedure (column choice and threshold included) is expected to give on new images:
nested, scan-group-aware cross-validation on dev, turned into a predictive interval for the scored folder.

In-sample dev numbers (the threshold scored on the labels it was fit on, the column chosen for its dev AUC)
overstate what carries to the scored folder. Here each outer fold holds out whole groups of neighbouring
slices (found without labels); the column and the threshold are chosen on the other folds exactly as
`run_membership` chooses them on the whole dev group, and the held-out images are predicted. The pooled
out-of-fold calls, over a few shuffles of the folds, give each class's error rate.

The interval is a posterior predictive one, not a bootstrap of the dev metric (which, with every out-of-fold
call right, is a zero-width 1.000 [1.00, 1.00] from ~40 images). Each class's rate (true-positive rate on used
images, false-positive rate on not-used ones) gets the Jeffreys posterior Beta(k + 1/2, n - k + 1/2) at the
Korn-Graubard effective sample size: n divided by the design effect that a bootstrap resampling whole scan
groups measures (neighbouring slices err together), never above n. The scored folder's confusion matrix is then
drawn given those rates: when its calls are known (the run's own, labels unread) the unknown number of used
images follows from how many it called used, with dev's share used (its Jeffreys posterior) as the prior;
otherwise a folder of dev's size and share used is drawn. F1, kappa and accuracy of those draws give the value (median) and the CI.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

#: the predictive draws' tail share kept outside a reported 1 - alpha interval, as a fraction of alpha: on scan-disjoint
#: re-splits of the v3 pool the central 95 % held the scored folder's F1 and kappa in 84-93 % of folders (rates move
#: between dev and a folder of other scans more than dev's own resampling shows), the central 99 % in 92-99 %
#: (docs/design.md, seventh round); so a 95 % interval is the draws' central 99 %
COVERAGE_CALIBRATION = 0.2
#: outer folds and shuffles of them: 5 x 5 runs of the procedure on ~40 dev images cost about a second
N_SPLITS, N_REPEATS = 5, 5
#: "predictive" (the default, above) | "bootstrap" (before: percentile CI of the pooled out-of-fold metric from
#: a stratified scan-group bootstrap; kept for the re-split comparison in `benchmark.expectation_resplits`)
INTERVALS = ("predictive", "bootstrap")
METRICS = ("f1", "kappa", "accuracy")


@dataclass
class Expectation:
    """Nested-CV estimate of the procedure's test performance (metrics.Estimate per metric)."""
    estimates: dict                       # "f1", "kappa", "accuracy" -> metrics.Estimate (predictive median, CI)
    all_used_f1: float                    # the trivial baseline on the folder the estimates are for
    n: int
    n_groups: int
    n_splits: int
    n_repeats: int
    chosen: dict[str, int] = field(default_factory=dict)   # column -> how many outer folds chose it
    out_of_fold: dict = field(default_factory=dict)         # "f1", "kappa", "accuracy" -> pooled out-of-fold value on dev
    n_scored: int | None = None           # the scored folder's size when its calls were given, else None (dev's size)
    interval: str = "predictive"

    @property
    def beats_all_used(self) -> bool:
        """F1's CI lies above the all-used F1."""
        return self.estimates["f1"].ci_low > self.all_used_f1

    def summary(self) -> str:
        e = self.estimates
        return (f"F1 {e['f1'].value:.3f} [{e['f1'].ci_low:.2f}, {e['f1'].ci_high:.2f}] (all used "
                f"{self.all_used_f1:.3f}), kappa {e['kappa'].value:.3f} [{e['kappa'].ci_low:.2f}, "
                f"{e['kappa'].ci_high:.2f}]")

    def message(self) -> str:
        columns = ", ".join(f"{c} {k}x" for c, k in sorted(self.chosen.items(), key=lambda kv: -kv[1]))
        where = ("scan-group bootstrap of the out-of-fold calls" if self.interval == "bootstrap" else
                 f"predictive interval for the {self.n_scored} scored images given how many were called used"
                 if self.n_scored else f"predictive interval for {self.n} new images at dev's share used")
        if self.interval == "predictive":
            kept = 100 * (1 - 0.05 * COVERAGE_CALIBRATION)
            where += f"; its 95 % is the draws' central {kept:.0f} %, calibrated on re-splits"
        oof = ""
        if self.out_of_fold:
            oof = (f"; out-of-fold on dev F1 {self.out_of_fold['f1']:.3f}, kappa {self.out_of_fold['kappa']:.3f}")
        head = (f"Expected on new images (nested cross-validation on dev: {self.n_repeats} x {self.n_splits} folds of "
                f"whole scan groups, {self.n_groups} groups of {self.n} images; column and threshold chosen inside "
                f"each fold; chosen: {columns}{oof}; {where}): {self.summary()}.")
        if self.beats_all_used:
            return head
        return (head + " This does NOT beat calling every image used (F1's CI reaches the all-used F1): expect no "
                "better than the all-used baseline on the scored folder, whatever the in-sample dev numbers say.")


def expected_performance(scores: pd.DataFrame, used, groups, procedure: Callable, *, n_splits: int = N_SPLITS,
                         n_repeats: int = N_REPEATS, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                         scored_calls=None, interval: str = "predictive") -> Expectation | None:
    """Nested CV of `procedure(train_rows, scores, used, groups) -> (column, threshold)` on one labelled folder.

    `scores` holds every candidate column for the folder's real images (computed without labels, so the
    held-out images' scores may shape a label-free threshold, as the scored folder's own do on test);
    `procedure` may read `used` only at `train_rows`. `scored_calls`: the scored folder's 0/1 calls (no labels),
    when known: the interval is then for that folder. `n_boot`: bootstrap resamples and predictive draws.
    Returns None when the folder has too few groups of either class for two folds."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; choose from {', '.join(INTERVALS)}")
    folds = out_of_fold_calls(scores, used, groups, procedure, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    if folds is None:
        return None
    y, p, g, chosen, splits = folds
    used = np.asarray(used).astype(int)
    n_groups = int(len(np.unique(pd.factorize(np.asarray(groups))[0])))
    out_of_fold = {k: float(v) for k, v in _rates(*_cells(y, p).sum(axis=0)).items()}
    if interval == "bootstrap":
        estimates = _stratified_group_bootstrap(y, p, g, n_boot=n_boot, seed=seed, alpha=alpha)
        prevalence = used.mean()
        all_used = float(2 * prevalence / (1 + prevalence))
        scored_n = None
    else:
        estimates, all_used = predictive_interval(y, p, g, n_repeats=n_repeats, scored_calls=scored_calls,
                                                  n_draws=n_boot, seed=seed, alpha=alpha * COVERAGE_CALIBRATION)
        scored_n = None if scored_calls is None else int(len(scored_calls))
    return Expectation(estimates, all_used, len(used), n_groups, splits, n_repeats, dict(chosen), out_of_fold,
                       scored_n, interval)


def out_of_fold_calls(scores: pd.DataFrame, used, groups, procedure: Callable, *, n_splits: int = N_SPLITS,
                      n_repeats: int = N_REPEATS, seed: int = 0):
    """The nested CV's pooled out-of-fold calls over `n_repeats` shuffles: (labels, calls, groups, chosen
    {column: folds}, folds), each array one row per (image, shuffle); None with too few groups or one class."""
    from sklearn.model_selection import StratifiedGroupKFold

    used = np.asarray(used).astype(int)
    groups = pd.factorize(np.asarray(groups))[0]
    splits = min(n_splits, len(np.unique(groups[used == 1])), len(np.unique(groups[used == 0])))
    if splits < 2:
        return None
    y_all, p_all, g_all, chosen = [], [], [], Counter()
    for repeat in range(n_repeats):
        folds = StratifiedGroupKFold(splits, shuffle=True, random_state=seed + repeat)
        predicted = np.full(len(used), -1)
        for train, held in folds.split(np.zeros(len(used)), used, groups):
            if used[train].min() == used[train].max():
                continue
            column, threshold = procedure(train, scores, used, groups)
            chosen[column] += 1
            predicted[held] = scores[column].to_numpy()[held] >= threshold   # the rule of membership.predict
        done = predicted >= 0
        y_all.append(used[done])
        p_all.append(predicted[done])
        g_all.append(groups[done])
    y, p, g = np.concatenate(y_all), np.concatenate(p_all), np.concatenate(g_all)
    if len(y) == 0 or y.min() == y.max():
        return None
    return y, p, g, chosen, splits


def _cells(y, predicted) -> np.ndarray:
    """One row per call: (tp, fp, fn, tn) indicators."""
    return np.stack([(y == 1) & (predicted == 1), (y == 0) & (predicted == 1),
                     (y == 1) & (predicted == 0), (y == 0) & (predicted == 0)], axis=1).astype(float)


def _rates(tp, fp, fn, tn) -> dict:
    from synthscope.metrics import _rates_from_counts

    rates = _rates_from_counts(tp, fp, fn, tn)
    return {name: rates[name] for name in METRICS}


def effective_rate_posterior(errors_per_group, calls_per_group, n: float, *, n_boot: int, rng) -> tuple[float, float]:
    """Jeffreys posterior Beta(a, b) of a rate from clustered calls: the pooled rate k/N at the Korn-Graubard
    effective sample size n / design effect, where the design effect is the scan-group bootstrap variance of the
    rate over the binomial one (at most n: clustering never adds information; n when the bootstrap shows no
    spread, as when every call is right). `n` is the number of distinct images (calls repeated over shuffles
    count once)."""
    errors_per_group = np.asarray(errors_per_group, dtype=float)
    calls_per_group = np.asarray(calls_per_group, dtype=float)
    rate = errors_per_group.sum() / calls_per_group.sum()
    draws = rng.integers(0, len(calls_per_group), size=(n_boot, len(calls_per_group)))
    boot = errors_per_group[draws].sum(axis=1) / np.maximum(calls_per_group[draws].sum(axis=1), 1e-12)
    variance = float(np.var(boot[calls_per_group[draws].sum(axis=1) > 0]))
    binomial = rate * (1 - rate) / n
    effective = n if variance <= 0 or binomial <= 0 else min(n, n * binomial / variance)
    return effective * rate + 0.5, effective * (1 - rate) + 0.5


def predictive_interval(y, predicted, groups, *, n_repeats: int, scored_calls=None, n_draws: int = 1000,
                        seed: int = 0, alpha: float = 0.05) -> tuple[dict, float]:
    """Posterior predictive F1, kappa and accuracy (median and central 1 - alpha interval) of a new folder from
    pooled out-of-fold calls (one row per image and shuffle); and the all-used F1 there (median). See the module
    docstring."""
    from scipy import stats

    from synthscope.metrics import Estimate

    y, predicted = np.asarray(y).astype(int), np.asarray(predicted).astype(int)
    index = pd.factorize(np.asarray(groups))[0]
    per_group = np.zeros((index.max() + 1, 4))
    np.add.at(per_group, index, _cells(y, predicted))
    tp, fp, fn, tn = per_group.T
    n_used, n_not = (y == 1).sum() / n_repeats, (y == 0).sum() / n_repeats
    rng = np.random.default_rng(seed)
    keep = tp + fn > 0
    a1, b1 = effective_rate_posterior(fn[keep], (tp + fn)[keep], n_used, n_boot=n_draws, rng=rng)   # miss rate
    keep = fp + tn > 0
    a0, b0 = effective_rate_posterior(fp[keep], (fp + tn)[keep], n_not, n_boot=n_draws, rng=rng)    # false-positive rate
    tpr = 1 - stats.beta.rvs(a1, b1, size=n_draws, random_state=rng)
    fpr = stats.beta.rvs(a0, b0, size=n_draws, random_state=rng)
    if scored_calls is None:
        m = int(round(n_used + n_not))
        positives = stats.betabinom.rvs(m, n_used + 0.5, n_not + 0.5, size=n_draws, random_state=rng)
        d_tp = stats.binom.rvs(positives, tpr, random_state=rng)
        d_fp = stats.binom.rvs(m - positives, fpr, random_state=rng)
    else:
        calls = np.asarray(scored_calls).astype(int)
        m, c = len(calls), int(calls.sum())
        positives, d_tp = _given_calls(m, c, tpr, fpr, (n_used + 0.5, n_not + 0.5), rng)
        d_fp = c - d_tp
    d_fn, d_tn = positives - d_tp, (m - positives) - d_fp
    draws = _rates(d_tp, d_fp, d_fn, d_tn)
    out = {}
    for name in METRICS:
        low, median, high = np.quantile(draws[name], [alpha / 2, 0.5, 1 - alpha / 2])
        out[name] = Estimate(name, float(median), float(low), float(high), int(m))
    all_used = float(np.median(np.where(positives > 0, 2 * positives / (m + positives), 0.0)))
    return out, all_used


def _given_calls(m: int, c: int, tpr, fpr, prior: tuple[float, float], rng):
    """Draws of (used images, true positives) of a folder of m images of which c were called used, one per
    (tpr, fpr) draw: P ~ BetaBinomial(m, *prior), TP | P ~ Bin(P, tpr), FP | P ~ Bin(m - P, fpr), conditioned on
    TP + FP = c. The prior is dev's Jeffreys posterior of the share used: where the rates pin the share down the
    calls move it, and where they do not it stays near dev's instead of running to 0 or 1 (a Jeffreys prior on
    the share did that on v3s, whose dev holds 10 scan groups: F1 0.28 [0.00, 0.89] for a test F1 of 0.76)."""
    from scipy import stats

    p_range, tp_range = np.arange(m + 1), np.arange(c + 1)
    P, TP = np.meshgrid(p_range, tp_range, indexing="ij")                      # [P, TP]
    tpr, fpr = np.asarray(tpr)[:, None, None], np.asarray(fpr)[:, None, None]
    with np.errstate(divide="ignore"):
        log = (stats.betabinom.logpmf(P, m, *prior)[None] + stats.binom.logpmf(TP[None], P[None], tpr)
               + stats.binom.logpmf(c - TP[None], m - P[None], fpr)).reshape(len(tpr), -1)
    cell = np.argmax(log + rng.gumbel(size=log.shape), axis=1)                 # one posterior draw per row
    return P.ravel()[cell], TP.ravel()[cell]


def _stratified_group_bootstrap(y, predicted, groups, *, n_boot: int, seed: int, alpha: float) -> dict:
    """F1, kappa and accuracy of pooled out-of-fold calls with percentile CIs from a bootstrap that resamples
    whole groups (the same group across repeats is one cluster: drawing it takes all its copies), within
    strata of the groups' majority class, so every resample holds both classes (a dev folder of nine scans
    otherwise yields resamples without a used image, where F1 is undefined)."""
    from synthscope.metrics import Estimate

    cells = _cells(y, predicted)
    index = pd.factorize(groups)[0]
    per_group = np.zeros((index.max() + 1, 4))
    np.add.at(per_group, index, cells)
    majority = np.array([np.mean(y[index == k]) >= 0.5 for k in range(index.max() + 1)])
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(per_group)))
    for stratum in (True, False):
        members = np.flatnonzero(majority == stratum)
        if len(members):
            draws = rng.integers(0, len(members), size=(n_boot, len(members)))
            np.add.at(counts, (np.repeat(np.arange(n_boot), len(members)), members[draws].ravel()), 1)
    boot = _rates(*(counts @ per_group).T)
    point = _rates(*per_group.sum(axis=0))
    out = {}
    for name in METRICS:
        low, high = np.nanquantile(np.asarray(boot[name], dtype=float), [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(name, float(point[name]), float(low), float(high), int(len(y)))
    return out
