"""Thresholds fit on labelled dev scores (or label-free) and applied unchanged to test."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


OBJECTIVES = ("f1", "accuracy", "kappa")
#: label-free cuts of one folder's own scores
LABEL_FREE = ("two_means", "mixture")
#: how far (in fraction called used) the two-means cut may stray from the adjusted-count prevalence estimate
PREVALENCE_BAND = 0.15


@dataclass
class ThresholdFit:
    threshold: float
    method: str            # "f1" | "accuracy" | "kappa" | "prevalence" | "two_means" | "mixture" | "two_means_band"
    value: float           # the objective at the threshold on the data it was fit on (nan for label-free)
    predicted_used_fraction: float


def _objective(name: str, y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    if name == "f1":
        return f1_score(y, pred, zero_division=0)
    if name == "accuracy":
        return accuracy_score(y, pred)
    if name == "kappa":
        value = cohen_kappa_score(y, pred)
        return 0.0 if np.isnan(value) else value
    raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")


def fit_threshold(scores, y=None, objective: str = "f1", *, prevalence: float | None = None,
                  label_free: str = "mixture", random_state: int = 0) -> ThresholdFit:
    """Threshold on dev scores; predict used when score >= threshold.

    With labels: maximise `objective` ("f1", "accuracy", "kappa") over every cut between sorted scores.
    Without labels: `prevalence` (expected fraction used) sets a quantile, else `label_free` cuts the
    scores' own distribution: "two_means" (Otsu: the cut that maximises the between-group variance, i.e.
    1-D two-means, no assumption about the fraction used) or "mixture" (a two-component Gaussian mixture,
    the cut between the two means where the higher component becomes more likely).
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) == 0 or not np.isfinite(scores).all():
        raise ValueError("scores must be a non-empty 1-D array of finite numbers")
    if y is not None:
        y = np.asarray(y).astype(int)
        if len(y) != len(scores):
            raise ValueError("scores and labels differ in length")
        values = np.unique(scores)
        candidates = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
        best, best_value = candidates[0], -np.inf
        for t in candidates:
            value = _objective(objective, y, (scores >= t).astype(int))
            if value > best_value + 1e-12:
                best, best_value = t, value
        return ThresholdFit(float(best), objective, float(best_value), float((scores >= best).mean()))
    if prevalence is not None:
        if not 0 <= prevalence <= 1:
            raise ValueError("prevalence must be in [0, 1]")
        t = float(np.quantile(scores, 1 - prevalence)) if prevalence < 1 else float(scores.min())
        return ThresholdFit(t, "prevalence", float("nan"), float((scores >= t).mean()))
    if label_free not in LABEL_FREE:
        raise ValueError(f"unknown label-free threshold {label_free!r}; choose from {', '.join(LABEL_FREE)}")
    if label_free == "two_means":
        return _two_means(scores)
    from sklearn.mixture import GaussianMixture

    if len(scores) < 4:
        raise ValueError("a two-component mixture needs at least 4 scores")
    gm = GaussianMixture(2, random_state=random_state).fit(scores[:, None])
    means = gm.means_.ravel()
    high = int(np.argmax(means))
    # searched between the two means: with unequal variances the wider component also wins far out in the other
    # tail, and a search from the lowest score then cut there and called every image used
    grid = np.linspace(means.min(), means.max(), 2001)
    posterior = gm.predict_proba(grid[:, None])[:, high]
    above = np.nonzero(posterior >= 0.5)[0]
    t = float(grid[above[0]]) if len(above) else float(means.max())
    return ThresholdFit(t, "mixture", float("nan"), float((scores >= t).mean()))


def _two_means(scores: np.ndarray) -> ThresholdFit:
    """Otsu's cut of 1-D scores: between the two groups (at least 2 each) with the largest between-group
    variance n_low * n_high * (mean_high - mean_low)^2; midway between the neighbouring scores."""
    values = np.sort(scores)
    n = len(values)
    if n < 4 or values[0] == values[-1]:
        raise ValueError("a two-means cut needs at least 4 scores that are not all equal")
    sums = np.cumsum(values)
    k = np.arange(2, n - 1)                                  # size of the low group
    low_mean, high_mean = sums[k - 1] / k, (sums[-1] - sums[k - 1]) / (n - k)
    between = k * (n - k) * (high_mean - low_mean) ** 2
    between[values[k - 1] == values[k]] = -np.inf            # never cut between equal scores
    best = int(k[np.argmax(between)])
    t = float((values[best - 1] + values[best]) / 2)
    return ThresholdFit(t, "two_means", float("nan"), float((scores >= t).mean()))


#: dev cuts an adjusted count may correct: "kappa" (the kappa-best, the default) or "x" (Forman's X, where dev's
#: FPR = 1 - TPR); on 200 re-splits per cell X did not beat the kappa cut (docs/design.md)
COUNT_CUTS = ("kappa", "x")


def adjusted_count(dev_scores, dev_used, scores, *, cut: str = "kappa") -> float:
    """The fraction used in `scores` by adjusted classify-and-count (Forman 2008): the share q of the folder at or
    above a dev cut, corrected by that cut's dev rates, (q - FPR) / (TPR - FPR), kept in [0.02, 0.98]. It assumes
    the score's class-conditional distributions carry from dev, not the prevalence. `cut`: "kappa", the kappa-best
    dev cut, or "x", the cut where dev's false-positive rate equals its miss rate (Forman's X)."""
    if cut not in COUNT_CUTS:
        raise ValueError(f"unknown cut {cut!r}; choose from {', '.join(COUNT_CUTS)}")
    dev_scores, dev_used = np.asarray(dev_scores, dtype=float), np.asarray(dev_used).astype(int)
    scores = np.asarray(scores, dtype=float)
    if cut == "kappa":
        t = fit_threshold(dev_scores, dev_used, "kappa").threshold
    else:
        values = np.unique(dev_scores)
        if len(values) < 2:
            raise ValueError("an adjusted count needs dev scores that are not all equal")
        cuts = (values[:-1] + values[1:]) / 2
        tprs = (dev_scores[dev_used == 1][None] >= cuts[:, None]).mean(axis=1)
        fprs = (dev_scores[dev_used == 0][None] >= cuts[:, None]).mean(axis=1)
        t = cuts[int(np.argmin(np.abs(fprs - (1 - tprs))))]
    tpr, fpr = (dev_scores[dev_used == 1] >= t).mean(), (dev_scores[dev_used == 0] >= t).mean()
    return float(np.clip(((scores >= t).mean() - fpr) / max(tpr - fpr, 1e-6), 0.02, 0.98))


def banded_two_means(scores, dev_scores, dev_used, *, band: float = PREVALENCE_BAND,
                     cut: str = "kappa") -> ThresholdFit:
    """The two-means cut of `scores` (a folder's own scores, no labels), unless the fraction it calls used lies
    more than `band` from the folder's prevalence estimated by `adjusted_count` from labelled dev scores; then
    the folder's quantile at the band's nearer edge. Two-means assumes nothing about the prevalence but, when one
    class is spread and the other tight, splits the spread class; the band bounds that error without assuming
    the dev prevalence carries (chosen on scan-disjoint re-splits of the v3 pool at 30, 50 and 70 % used,
    docs/design.md)."""
    scores = np.asarray(scores, dtype=float)
    estimate = adjusted_count(dev_scores, dev_used, scores, cut=cut)
    return two_means_within(scores, estimate - band, estimate + band)


def two_means_within(scores, low: float, high: float) -> ThresholdFit:
    """The two-means cut of `scores` if the fraction it calls used lies in [low, high] (clipped to [0, 1]), else
    the quantile that calls the nearer edge used: `banded_two_means` around the adjusted count, and the re-split
    screens around other prevalence estimates."""
    scores = np.asarray(scores, dtype=float)
    fit = _two_means(scores)
    low, high = max(0.0, low), min(1.0, high)
    if low <= fit.predicted_used_fraction <= high:
        return ThresholdFit(fit.threshold, "two_means_band", float("nan"), fit.predicted_used_fraction)
    kept = fit_threshold(scores, None, prevalence=float(np.clip(fit.predicted_used_fraction, low, high)))
    return ThresholdFit(kept.threshold, "two_means_band", float("nan"), kept.predicted_used_fraction)


def scan_smoothed(scores, features, groups, neighbours: int = 1) -> np.ndarray:
    """Each score averaged with the scores of its `neighbours` nearest images (Euclidean, in `features`, e.g. 64 px
    grey levels) of its own scan group: a slice and its closest slices of one scan vote together, where pooling
    the whole group (`benchmark.threshold_resplits.scan_pooled`, which lost on re-splits) would also average away
    the scan's few strongly copied slices. Images alone in their group keep their score; a group smaller than
    neighbours + 1 is averaged whole."""
    scores = np.asarray(scores, dtype=float)
    groups = np.asarray(groups)
    features = np.asarray(features, dtype=np.float64)
    if groups.shape != scores.shape or len(features) != len(scores):
        raise ValueError("scores, features and groups differ in length")
    if neighbours < 0:
        raise ValueError("neighbours must be >= 0")
    out = scores.copy()
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        if len(rows) < 2 or not neighbours:
            continue
        x = features[rows].reshape(len(rows), -1)
        sq = (x * x).sum(axis=1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
        np.fill_diagonal(d2, -np.inf)                          # each image first among its own neighbours
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :neighbours + 1]
        out[rows] = scores[rows][nearest].mean(axis=1)
    return out


def group_label_agreement(used, groups, *, n_permutations: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Do labelled images agree with their scan group's other images more than chance? (share, p): the share of
    images (in groups of two or more) whose label equals the majority of the *other* images of their group (ties
    count half), and its one-sided permutation p with labels shuffled over images. Labels that follow whole scans
    give a share near 1; labels drawn slice by slice, near what the class balance gives."""
    used = np.asarray(used).astype(int)
    groups = np.asarray(groups)
    if used.shape != groups.shape:
        raise ValueError("labels and groups differ in length")
    _, index, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    index = index.ravel()
    member = sizes[index] >= 2
    if member.sum() < 2:
        return float("nan"), 1.0

    def share(labels):
        ones = np.bincount(index, weights=labels, minlength=len(sizes))
        others = (ones[index] - labels) / np.maximum(sizes[index] - 1, 1)   # the other images' share used
        agree = np.where(others == 0.5, 0.5, (others > 0.5) == (labels == 1))
        return agree[member].mean()

    observed = share(used)
    rng = np.random.default_rng(seed)
    null = np.array([share(rng.permutation(used)) for _ in range(n_permutations)])
    return float(observed), float((1 + (null >= observed - 1e-12).sum()) / (1 + n_permutations))


#: suffix of a column's scan-smoothed copy in the dev table the nested CV sees (`with_smoothed`)
SMOOTHED = " (scan-smoothed)"


def check_smoothing(neighbours) -> None:
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) or neighbours < 0:
        raise ValueError("scan_smoothing must be a whole number >= 0 (nearest slices averaged; 0 = off)")


def smoothing_applies(neighbours: int, dev_used, dev_groups, alpha: float = 0.05) -> bool:
    """Scan smoothing asked for (`neighbours` > 0) and dev's labels follow dev's label-free scan groups
    (`group_label_agreement` p < alpha): a folder labelled slice by slice is left alone."""
    if not neighbours or dev_used is None or dev_groups is None:
        return False
    return group_label_agreement(dev_used, dev_groups)[1] < alpha


def with_smoothed(scores, pixels, groups, neighbours: int):
    """The dev table the nested CV sees: with smoothing asked for, each raw column beside its smoothed copy (named
    column + SMOOTHED; label-free, over the whole folder, as on test); the procedure cuts the copy where a fold's
    gate allows. Without, the table as given."""
    import pandas as pd

    if not neighbours:
        return scores
    copies = {c + SMOOTHED: scan_smoothed(scores[c].to_numpy(), pixels, groups, neighbours) for c in scores.columns}
    return pd.concat([scores, pd.DataFrame(copies, index=scores.index)], axis=1)


class ThresholdFitter:
    """sklearn-style wrapper of `fit_threshold`: fit on dev scores (and labels), predict on test."""

    def __init__(self, objective: str = "f1", prevalence: float | None = None, random_state: int = 0):
        self.objective = objective
        self.prevalence = prevalence
        self.random_state = random_state

    def fit(self, scores, y=None) -> "ThresholdFitter":
        self.fit_ = fit_threshold(scores, y, self.objective, prevalence=self.prevalence,
                                  random_state=self.random_state)
        self.threshold_ = self.fit_.threshold
        return self

    def predict(self, scores) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise RuntimeError("call fit() first")
        return (np.asarray(scores, dtype=float) >= self.threshold_).astype(int)

