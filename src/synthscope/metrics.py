"""Official ImageCLEF GANs metrics with bootstrap confidence intervals and trivial baselines.

Point estimates come from scikit-learn. The bootstrap is vectorised: each resample is a row of item
multiplicities (counts), so confusion counts, AUC, ARI and NMI for all resamples are a few matrix
operations instead of a Python loop (1,000 resamples of 1,000 items take a few tens of ms).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sklearn import metrics as skm

__all__ = [
    "Estimate",
    "MetricReport",
    "accuracy",
    "ari",
    "attribution_report",
    "bootstrap_ci",
    "calibration_report",
    "cohen_kappa",
    "contingency",
    "expected_calibration_error",
    "f1",
    "f1_from_precision_recall",
    "membership_report",
    "nmi",
    "open_set_report",
    "precision",
    "recall",
    "roc_auc",
    "specificity",
    "subset_accuracy_report",
    "tpr_at_fpr",
]

MEMBERSHIP_METRICS = ("f1", "accuracy", "precision", "recall", "specificity", "kappa")
SCORE_METRICS = ("roc_auc", "tpr_at_1pct_fpr")


@dataclass(frozen=True)
class Estimate:
    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int

    def format(self) -> str:
        return f"{self.name} = {self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] (n={self.n})"


@dataclass
class MetricReport:
    estimates: dict[str, Estimate]
    baselines: dict[str, dict[str, float]]  # baseline name -> metric -> value
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # e.g. "contingency"
    n_boot: int = 0
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: value, CI bounds, n and one column per baseline."""
        rows = []
        for name, estimate in self.estimates.items():
            row = {"metric": name, "value": estimate.value, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "n": estimate.n}
            for baseline, values in self.baselines.items():
                row[baseline] = values.get(name, np.nan)
            rows.append(row)
        return pd.DataFrame(rows).set_index("metric")

    def format(self) -> str:
        level = int(round(100 * (1 - self.alpha)))
        frame = self.to_frame()
        baseline_names = list(self.baselines)
        header = f"{'metric':<16}{'value':>8}  {f'{level}% CI (bootstrap, n={self.n_boot})':<30}" + "".join(
            f"{name:>14}" for name in baseline_names
        )
        lines = [header]
        for metric, row in frame.iterrows():
            ci = f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
            lines.append(
                f"{metric:<16}{row.value:>8.3f}  {ci:<30}" + "".join(f"{_fmt(row[name]):>14}" for name in baseline_names)
            )
        if baseline_names:
            lines.append("baselines: " + ", ".join(baseline_names) + " (trivial predictors; a result must beat them)")
        for name, table in self.tables.items():
            lines.append(f"{name}:")
            lines.append(table.to_string())
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


# ---------------------------------------------------------------------------------------------
# Plain metrics (sub-task 1: 1 = used for training = positive class).


def _binary(y) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype == bool:
        return y.astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"expected binary labels 0/1, got values {sorted(values)[:10]}")
    return y.astype(np.int64)


def f1(y_true, y_pred) -> float:
    return float(skm.f1_score(_binary(y_true), _binary(y_pred), zero_division=0))


def accuracy(y_true, y_pred) -> float:
    return float(skm.accuracy_score(y_true, y_pred))


def precision(y_true, y_pred) -> float:
    return float(skm.precision_score(_binary(y_true), _binary(y_pred), zero_division=0))


def recall(y_true, y_pred) -> float:
    return float(skm.recall_score(_binary(y_true), _binary(y_pred), zero_division=0))


def specificity(y_true, y_pred) -> float:
    """Recall of the negative class (not used)."""
    return float(skm.recall_score(_binary(y_true), _binary(y_pred), pos_label=0, zero_division=0))


def cohen_kappa(y_true, y_pred) -> float:
    value = skm.cohen_kappa_score(y_true, y_pred)
    return 0.0 if not np.isfinite(value) else float(value)


def roc_auc(y_true, scores) -> float:
    y_true = _binary(y_true)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(skm.roc_auc_score(y_true, scores))


def tpr_at_fpr(y_true, scores, fpr: float = 0.01) -> float:
    """Highest true-positive rate among thresholds whose false-positive rate is at most `fpr` (no interpolation)."""
    y_true = _binary(y_true)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    fprs, tprs, _ = skm.roc_curve(y_true, scores, drop_intermediate=False)
    return float(tprs[fprs <= fpr + 1e-12].max())


def f1_from_precision_recall(p, r):
    """F1 = 2PR/(P+R), the harmonic mean (0 when P + R = 0)."""
    p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(value) if value.ndim == 0 else value


def ari(labels_true, labels_pred) -> float:
    return float(skm.adjusted_rand_score(labels_true, labels_pred))


def nmi(labels_true, labels_pred) -> float:
    return float(skm.normalized_mutual_info_score(labels_true, labels_pred))


def contingency(labels_true, labels_pred) -> pd.DataFrame:
    """Counts of true label (rows) x predicted cluster (columns)."""
    return pd.crosstab(
        pd.Series(np.asarray(labels_true), name="true"), pd.Series(np.asarray(labels_pred), name="predicted")
    )


# ---------------------------------------------------------------------------------------------
# Bootstrap.


def bootstrap_ci(stat_fn: Callable, *arrays, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of `stat_fn(*resampled arrays)` over `n_boot` resamples of the items (rows).

    Generic and therefore a Python loop; resamples where the statistic is undefined (nan) are left out.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("all arrays must have the same length")
    if n == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        index = rng.integers(0, n, n)
        values[b] = stat_fn(*(a[index] for a in arrays))
    return _percentile_ci(values, alpha)


def _percentile_ci(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """[n_boot, n] multiplicities of each item in each resample (rows sum to n); the reports' resamples."""
    (counts,) = _bootstrap_stats(n, n_boot, seed, lambda chunk: (chunk,))
    return counts


_CHUNK_CELLS = 4_000_000  # resamples x items per chunk: bounds memory at a few tens of MB


def _bootstrap_stats(n: int, n_boot: int, seed: int, stat_fn: Callable, groups=None) -> tuple[np.ndarray, ...]:
    """Apply `stat_fn(counts [b, n]) -> tuple of [b] arrays` to all resamples, in memory-bounded chunks.

    With `groups` (a label per item) whole groups are resampled (cluster bootstrap): every item of a drawn
    group gets that group's multiplicity, so correlated items (slices of one scan) are not counted as
    independent evidence.
    """
    if n_boot <= 0:
        return tuple(np.asarray(x)[:0] for x in stat_fn(np.zeros((0, n))))
    rng = np.random.default_rng(seed)
    if groups is not None:
        _, group_index = np.unique(np.asarray(groups), return_inverse=True)
        if len(group_index) != n:
            raise ValueError(f"groups must have one label per item ({n}); got {len(group_index)}")
    units = n if groups is None else int(group_index.max()) + 1
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    parts = []
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, units, size=(rows, units))
        flat = draws + (np.arange(rows, dtype=np.int64) * units)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * units).reshape(rows, units).astype(np.float64)
        if groups is not None:
            counts = counts[:, group_index]
        parts.append(stat_fn(counts))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(len(parts[0])))


def _rates_from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """Confusion-matrix metrics, elementwise on arrays of counts; 0 where undefined (as sklearn's zero_division=0)."""
    tp, fp, fn, tn = (np.asarray(x, dtype=float) for x in (tp, fp, fn, tn))
    total = tp + fp + fn + tn

    def ratio(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)

    accuracy_ = ratio(tp + tn, total)
    expected = ratio((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), total * total)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(expected < 1, (accuracy_ - expected) / np.where(expected < 1, 1 - expected, 1), 0.0)
    return {
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": accuracy_,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "kappa": kappa,
    }


def _weighted_roc_stats(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray, fpr_target: float = 0.01):
    """AUC and TPR at `fpr_target` for each row of item weights [B, n]; ties count one half."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    positive = y_true[order].astype(bool)
    w = weights[:, order]
    # Tied scores form one threshold step.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos_w = np.add.reduceat(w * positive, starts, axis=1)
    neg_w = np.add.reduceat(w * ~positive, starts, axis=1)
    total_pos, total_neg = pos_w.sum(axis=1), neg_w.sum(axis=1)
    valid = (total_pos > 0) & (total_neg > 0)
    safe_pos, safe_neg = np.where(valid, total_pos, 1), np.where(valid, total_neg, 1)
    # Descending scores: a positive beats every negative in later (lower-score) steps.
    neg_after = total_neg[:, None] - np.cumsum(neg_w, axis=1)
    auc = (pos_w * (neg_after + 0.5 * neg_w)).sum(axis=1) / (safe_pos * safe_neg)
    tpr = np.cumsum(pos_w, axis=1) / safe_pos[:, None]
    fpr = np.cumsum(neg_w, axis=1) / safe_neg[:, None]
    tpr_low = np.where(fpr <= fpr_target + 1e-12, tpr, 0.0).max(axis=1)
    return np.where(valid, auc, np.nan), np.where(valid, tpr_low, np.nan)


def _estimate(name: str, value: float, boot: np.ndarray, alpha: float, n: int) -> Estimate:
    low, high = _percentile_ci(boot, alpha)
    return Estimate(name=name, value=float(value), ci_low=low, ci_high=high, n=int(n))


# ---------------------------------------------------------------------------------------------
# Reports.


_SCORE_BOOTSTRAPS: "collections.OrderedDict[tuple, dict]" = collections.OrderedDict()


def _score_bootstrap(y_true: np.ndarray, scores: np.ndarray, n_boot: int, seed: int, groups) -> dict:
    """Bootstrap of the threshold-free score metrics (AUC, TPR at 1% FPR). They do not depend on the
    predictions, so a threshold moved in the dashboard reuses them (a small LRU keyed by the bytes)."""
    key = (y_true.astype(np.int8).tobytes(), scores.astype(np.float64).tobytes(), int(n_boot), int(seed),
           None if groups is None else np.asarray(groups).astype(str).tobytes())
    hit = _SCORE_BOOTSTRAPS.get(key)
    if hit is None:
        stats = _bootstrap_stats(len(y_true), n_boot, seed, lambda counts: _weighted_roc_stats(y_true, scores, counts),
                                 groups)
        hit = dict(zip(SCORE_METRICS, stats))
        _SCORE_BOOTSTRAPS[key] = hit
        while len(_SCORE_BOOTSTRAPS) > 64:
            _SCORE_BOOTSTRAPS.popitem(last=False)
    else:
        _SCORE_BOOTSTRAPS.move_to_end(key)
    return hit


def membership_report(
    y_true, y_pred, scores=None, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, groups=None
) -> MetricReport:
    """Sub-task 1 metrics (1 = used) with bootstrap CIs and the all-used / all-not-used / random baselines.

    `groups` (one label per image, e.g. `membership.near_duplicate_groups`) switches to a cluster bootstrap
    over groups: slices of one scan share their membership, so the image bootstrap's CIs are too narrow.
    """
    y_true, y_pred = _binary(y_true), _binary(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length; got {y_true.shape} and {y_pred.shape}")
    n = len(y_true)
    if n == 0:
        raise ValueError("no items to evaluate")
    point = {
        "f1": f1(y_true, y_pred),
        "accuracy": accuracy(y_true, y_pred),
        "precision": precision(y_true, y_pred),
        "recall": recall(y_true, y_pred),
        "specificity": specificity(y_true, y_pred),
        "kappa": cohen_kappa(y_true, y_pred),
    }
    cells = np.stack(
        [
            (y_true == 1) & (y_pred == 1),
            (y_true == 0) & (y_pred == 1),
            (y_true == 1) & (y_pred == 0),
            (y_true == 0) & (y_pred == 0),
        ],
        axis=1,
    ).astype(float)  # [n, 4]: tp, fp, fn, tn indicators
    if scores is not None:
        scores = np.asarray(scores, dtype=float)
        if scores.shape != y_true.shape:
            raise ValueError(f"scores must have shape {y_true.shape}, got {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores contain nan or inf")

    def resample_stats(counts):
        confusion = counts @ cells
        rates = _rates_from_counts(*confusion.T)
        return tuple(rates[name] for name in MEMBERSHIP_METRICS)

    boot = dict(zip(MEMBERSHIP_METRICS, _bootstrap_stats(n, n_boot, seed, resample_stats, groups)))
    if scores is not None:
        # the same seed draws the same resamples, so these pair with the ones above
        boot.update(_score_bootstrap(y_true, scores, n_boot, seed, groups))
    estimates = {name: _estimate(name, point[name], boot[name], alpha, n) for name in MEMBERSHIP_METRICS}

    positives, negatives = int(y_true.sum()), int(n - y_true.sum())
    baselines = {
        "all_used": _rates_from_counts(positives, negatives, 0, 0),
        "all_not_used": _rates_from_counts(0, 0, positives, negatives),
        # Expected confusion counts of a fair coin.
        "random": _rates_from_counts(positives / 2, negatives / 2, positives / 2, negatives / 2),
    }
    baselines = {name: {k: float(v) for k, v in values.items()} for name, values in baselines.items()}

    if scores is not None:
        estimates["roc_auc"] = _estimate("roc_auc", roc_auc(y_true, scores), boot["roc_auc"], alpha, n)
        estimates["tpr_at_1pct_fpr"] = _estimate(
            "tpr_at_1pct_fpr", tpr_at_fpr(y_true, scores, 0.01), boot["tpr_at_1pct_fpr"], alpha, n
        )
        # Constant scores (all-used / all-not-used) rank nothing; a random score has AUC 0.5 and TPR = FPR.
        for name in ("all_used", "all_not_used"):
            baselines[name].update({"roc_auc": 0.5, "tpr_at_1pct_fpr": 0.0})
        baselines["random"].update({"roc_auc": 0.5, "tpr_at_1pct_fpr": 0.01})
    return MetricReport(estimates=estimates, baselines=baselines, n_boot=n_boot, alpha=alpha)


def _encode(labels) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return codes, uniques


def _comb2(x):
    return x * (x - 1) / 2


def _weighted_ari_nmi(codes_true: np.ndarray, codes_pred: np.ndarray, weights: np.ndarray):
    """ARI and NMI (arithmetic normalisation, as sklearn) for each row of item multiplicities [B, n]."""
    k_true, k_pred = codes_true.max() + 1, codes_pred.max() + 1
    cell = codes_true * k_pred + codes_pred
    onehot = np.zeros((len(cell), k_true * k_pred))
    onehot[np.arange(len(cell)), cell] = 1
    table = (weights @ onehot).reshape(len(weights), k_true, k_pred)  # [B, kt, kp]
    n = table.sum(axis=(1, 2))
    rows, cols = table.sum(axis=2), table.sum(axis=1)
    sum_cells = _comb2(table).sum(axis=(1, 2))
    sum_rows, sum_cols = _comb2(rows).sum(axis=1), _comb2(cols).sum(axis=1)
    total_pairs = _comb2(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = sum_rows * sum_cols / total_pairs
        max_index = (sum_rows + sum_cols) / 2
        ari_ = np.where(max_index == expected, 1.0, (sum_cells - expected) / (max_index - expected))
        p = table / n[:, None, None]
        outer = (rows / n[:, None])[:, :, None] * (cols / n[:, None])[:, None, :]
        mi = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / np.where(outer > 0, outer, 1)), 0).sum(axis=(1, 2))
        pr, pc = rows / n[:, None], cols / n[:, None]
        h_true = -np.where(pr > 0, pr * np.log(np.where(pr > 0, pr, 1)), 0).sum(axis=1)
        h_pred = -np.where(pc > 0, pc * np.log(np.where(pc > 0, pc, 1)), 0).sum(axis=1)
        mean_h = (h_true + h_pred) / 2
        # sklearn: both partitions trivial -> 1; otherwise MI / mean entropy.
        nmi_ = np.where((h_true == 0) & (h_pred == 0), 1.0, np.where(mean_h > 0, mi / np.where(mean_h > 0, mean_h, 1), 0.0))
    return ari_, np.clip(nmi_, 0.0, 1.0)


def attribution_report(labels_true, labels_pred, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> MetricReport:
    """Sub-task 2 clustering scores (ARI, NMI) with CIs, the contingency table and the single-cluster baseline."""
    labels_true, labels_pred = np.asarray(labels_true), np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1 or len(labels_true) == 0:
        raise ValueError(f"labels must be non-empty 1-D arrays of equal length; got {labels_true.shape} and {labels_pred.shape}")
    n = len(labels_true)
    codes_true, _ = _encode(labels_true)
    codes_pred, _ = _encode(labels_pred)
    point = {"ari": ari(labels_true, labels_pred), "nmi": nmi(labels_true, labels_pred)}
    ari_boot, nmi_boot = _bootstrap_stats(n, n_boot, seed, lambda counts: _weighted_ari_nmi(codes_true, codes_pred, counts))
    estimates = {
        "ari": _estimate("ari", point["ari"], ari_boot, alpha, n),
        "nmi": _estimate("nmi", point["nmi"], nmi_boot, alpha, n),
    }
    single = np.zeros(n, dtype=int)
    baselines = {"single_cluster": {"ari": ari(labels_true, single), "nmi": nmi(labels_true, single)}}
    return MetricReport(
        estimates=estimates,
        baselines=baselines,
        tables={"contingency": contingency(labels_true, labels_pred)},
        n_boot=n_boot,
        alpha=alpha,
    )


def subset_accuracy_report(y_true, y_pred, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> MetricReport:
    """2025 sub-task 2: accuracy of subset labels, with CI and the majority-class / uniform-random baselines."""
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"labels must be non-empty 1-D arrays of equal length; got {y_true.shape} and {y_pred.shape}")
    n = len(y_true)
    correct = (y_true == y_pred).astype(float)
    (boot,) = _bootstrap_stats(n, n_boot, seed, lambda counts: (counts @ correct / n,))
    classes, class_counts = np.unique(y_true, return_counts=True)
    estimates = {"accuracy": _estimate("accuracy", accuracy(y_true, y_pred), boot, alpha, n)}
    baselines = {
        "majority_class": {"accuracy": float(class_counts.max() / n)},
        "random": {"accuracy": float(1 / len(classes))},
    }
    return MetricReport(
        estimates=estimates, baselines=baselines, tables={"confusion": contingency(y_true, y_pred)}, n_boot=n_boot, alpha=alpha
    )


# ---------------------------------------------------------------------------------------------
# Open-set attribution: how well a novelty score tells unseen generators apart, and calibration.

def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence in [0, 1] (1.0 falls in the last bin)."""
    return np.minimum((np.clip(confidence, 0.0, 1.0) * n_bins).astype(np.int64), n_bins - 1)


def expected_calibration_error(confidence, correct, *, n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): over equal-width confidence bins, the image-weighted mean |accuracy - mean
    confidence|. 0 = a confidence of 0.9 is right 9 times in 10."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if confidence.shape != correct.shape or confidence.ndim != 1 or len(confidence) == 0:
        raise ValueError(f"need non-empty 1-D confidence and correctness of equal length; got {confidence.shape} "
                         f"and {correct.shape}")
    gaps = np.bincount(_bins(confidence, n_bins), weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gaps).sum() / len(confidence))


def calibration_report(confidence, correct, *, n_bins: int = 15, n_boot: int = 1000, seed: int = 0,
                       alpha: float = 0.05) -> MetricReport:
    """ECE with a bootstrap CI, the reliability table (per bin: images, mean confidence, accuracy) and the
    baseline of a predictor that is always certain (confidence 1: ECE = its error rate)."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    value = expected_calibration_error(confidence, correct, n_bins=n_bins)
    n = len(confidence)
    onehot = np.zeros((n, n_bins))
    onehot[np.arange(n), _bins(confidence, n_bins)] = 1.0
    gap = (correct - confidence)[:, None] * onehot
    (boot,) = _bootstrap_stats(n, n_boot, seed, lambda counts: (np.abs(counts @ gap).sum(axis=1) / n,))
    bins = _bins(confidence, n_bins)
    frame = pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct})
    table = frame.groupby("bin").agg(images=("correct", "size"), mean_confidence=("confidence", "mean"),
                                     accuracy=("correct", "mean"))
    table.index = [f"[{b / n_bins:.2f}, {(b + 1) / n_bins:.2f})" for b in table.index]
    return MetricReport(estimates={"ece": _estimate("ece", value, boot, alpha, n)},
                        baselines={"always_certain": {"ece": float(1.0 - correct.mean())}},
                        tables={"reliability": table}, n_boot=n_boot, alpha=alpha)


def open_set_report(unseen, novelty, flagged, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> MetricReport:
    """Open-set attribution: AUROC of the novelty score for "made by a generator dev never showed" (1) vs a
    known one (0), and the "none of these" flag's rates on unseen (detected) and seen (false flags) images,
    with bootstrap CIs; baselines: a random score (AUROC 0.5) and never flagging."""
    unseen = np.asarray(unseen).astype(bool)
    novelty, flagged = np.asarray(novelty, dtype=np.float64), np.asarray(flagged).astype(bool)
    if not (unseen.shape == novelty.shape == flagged.shape) or unseen.ndim != 1:
        raise ValueError("unseen, novelty and flagged must be 1-D arrays of equal length")
    if unseen.all() or not unseen.any():
        raise ValueError("the novelty AUROC needs both unseen and seen images")
    n = len(unseen)
    hit = _score_bootstrap(unseen.astype(np.int8), novelty, n_boot, seed, None)
    u, s = unseen.astype(float), (~unseen).astype(float)
    detected, false = (flagged & unseen).astype(float), (flagged & ~unseen).astype(float)
    rate_boot = _bootstrap_stats(n, n_boot, seed, lambda c: (
        (c @ detected) / np.maximum(c @ u, 1e-12), (c @ false) / np.maximum(c @ s, 1e-12)))
    estimates = {
        "novelty_auroc": _estimate("novelty_auroc", roc_auc(unseen, novelty), hit["roc_auc"], alpha, n),
        "unseen_flagged": _estimate("unseen_flagged", detected.sum() / u.sum(), rate_boot[0], alpha, int(u.sum())),
        "seen_flagged": _estimate("seen_flagged", false.sum() / s.sum(), rate_boot[1], alpha, int(s.sum())),
    }
    baselines = {"random_score": {"novelty_auroc": 0.5}, "never_flag": {"unseen_flagged": 0.0, "seen_flagged": 0.0}}
    return MetricReport(estimates=estimates, baselines=baselines, n_boot=n_boot, alpha=alpha)
