"""Metrics with bootstrap CIs fast enough to recompute on every click.

Every sub-task 1 metric is a function of the 2x2 confusion table and ARI/NMI are functions of the
contingency table. Resampling n images with replacement is therefore the same as drawing the table
from a multinomial over its cells, which costs microseconds instead of n_boot passes over 20,000
points. Same estimator as the ordinary (non-stratified) percentile bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class LiveEstimate:
    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int


def _percentile_ci(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return out


def _binary_metrics(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    tp, fp, fn, tn = (np.asarray(a, dtype=float) for a in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    observed = _safe_div(tp + tn, n)
    expected = _safe_div((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), n * n)
    return {
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "accuracy": observed,
        "precision": precision,
        "recall": recall,
        "specificity": _safe_div(tn, tn + fp),
        "kappa": _safe_div(observed - expected, 1 - expected),
    }


MEMBERSHIP_METRICS = ("f1", "accuracy", "precision", "recall", "specificity", "kappa")


def membership_estimates(y_true, y_pred, *, n_boot: int = 1000, alpha: float = 0.05,
                         seed: int = 0) -> dict[str, LiveEstimate]:
    """F1, accuracy, precision, recall, specificity and Cohen's kappa (1 = used) with bootstrap CIs."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    n = int(y_true.size)
    cells = np.array([np.sum(y_true & y_pred), np.sum(~y_true & y_pred),
                      np.sum(y_true & ~y_pred), np.sum(~y_true & ~y_pred)])
    point = _binary_metrics(*cells)
    if n == 0:
        return {name: LiveEstimate(name, float("nan"), float("nan"), float("nan"), 0) for name in MEMBERSHIP_METRICS}
    draws = np.random.default_rng(seed).multinomial(n, cells / n, size=n_boot)
    boot = _binary_metrics(draws[:, 0], draws[:, 1], draws[:, 2], draws[:, 3])
    return {name: LiveEstimate(name, float(point[name]), *_percentile_ci(boot[name], alpha), n)
            for name in MEMBERSHIP_METRICS}


def membership_baselines(y_true) -> dict[str, dict[str, float]]:
    """Expected scores of the trivial rules: call everything used, nothing used, or a fair coin."""
    y_true = np.asarray(y_true).astype(bool)
    n = max(int(y_true.size), 1)
    positives = float(y_true.sum())
    negatives = n - positives

    def expected(tp, fp, fn, tn):
        return {name: float(value) for name, value in _binary_metrics(tp, fp, fn, tn).items()}

    baselines = {
        "all_used": expected(positives, negatives, 0, 0),
        "all_not_used": expected(0, 0, positives, negatives),
        "random": expected(positives / 2, negatives / 2, positives / 2, negatives / 2),
    }
    baselines["random"]["kappa"] = 0.0
    return baselines


def auc_estimate(y_true, scores, *, n_boot: int = 300, alpha: float = 0.05, seed: int = 0) -> LiveEstimate:
    """ROC AUC of `scores` (higher = used) with a bootstrap CI; does not depend on the threshold."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    n = int(y_true.size)
    if n == 0 or y_true.min() == y_true.max():
        return LiveEstimate("roc_auc", float("nan"), float("nan"), float("nan"), n)
    value = roc_auc_score(y_true, scores)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if y_true[idx].min() != y_true[idx].max():
            samples.append(roc_auc_score(y_true[idx], scores[idx]))
    return LiveEstimate("roc_auc", float(value), *_percentile_ci(np.asarray(samples), alpha), n)


def contingency_table(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts [n_true_classes, n_pred_clusters] and the class / cluster values of its rows / columns."""
    true_values, true_codes = np.unique(np.asarray(labels_true), return_inverse=True)
    pred_values, pred_codes = np.unique(np.asarray(labels_pred), return_inverse=True)
    table = np.zeros((true_values.size, pred_values.size), dtype=np.int64)
    np.add.at(table, (true_codes, pred_codes), 1)
    return table, true_values, pred_values


def _comb2(x: np.ndarray) -> np.ndarray:
    return x * (x - 1) / 2.0


def _ari_nmi_from_tables(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARI and NMI (arithmetic normalisation, sklearn's default) of a batch of tables [B, r, c]."""
    tables = tables.astype(float)
    n = tables.sum(axis=(1, 2))
    rows = tables.sum(axis=2)
    cols = tables.sum(axis=1)
    sum_cells = _comb2(tables).sum(axis=(1, 2))
    sum_rows = _comb2(rows).sum(axis=1)
    sum_cols = _comb2(cols).sum(axis=1)
    expected = _safe_div(sum_rows * sum_cols, _comb2(n))
    max_index = (sum_rows + sum_cols) / 2
    denominator = max_index - expected
    ari = np.where(denominator != 0, _safe_div(sum_cells - expected, denominator), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = tables / n[:, None, None]
        pr = rows / n[:, None]
        pc = cols / n[:, None]
        outer = pr[:, :, None] * pc[:, None, :]
        mi = np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / np.where(outer > 0, outer, 1)), 0).sum(axis=(1, 2))
        h_true = -np.where(pr > 0, pr * np.log(np.where(pr > 0, pr, 1)), 0).sum(axis=1)
        h_pred = -np.where(pc > 0, pc * np.log(np.where(pc > 0, pc, 1)), 0).sum(axis=1)
    mean_h = (h_true + h_pred) / 2
    nmi = np.where(mean_h > 0, _safe_div(mi, mean_h), 1.0)
    return ari, np.clip(nmi, 0, 1)


def attribution_estimates(labels_true, labels_pred, *, n_boot: int = 1000, alpha: float = 0.05,
                          seed: int = 0) -> dict[str, LiveEstimate]:
    """ARI and NMI of a clustering against known labels, with bootstrap CIs."""
    table, _, _ = contingency_table(labels_true, labels_pred)
    n = int(table.sum())
    if n < 2:
        return {name: LiveEstimate(name, float("nan"), float("nan"), float("nan"), n) for name in ("ari", "nmi")}
    ari, nmi = _ari_nmi_from_tables(table[None])
    flat = table.ravel()
    draws = np.random.default_rng(seed).multinomial(n, flat / n, size=n_boot).reshape((n_boot,) + table.shape)
    boot_ari, boot_nmi = _ari_nmi_from_tables(draws)
    return {
        "ari": LiveEstimate("ari", float(ari[0]), *_percentile_ci(boot_ari, alpha), n),
        "nmi": LiveEstimate("nmi", float(nmi[0]), *_percentile_ci(boot_nmi, alpha), n),
    }
