"""What the whole procedure (column choice and threshold included) is expected to give on new images:
nested, scan-group-aware cross-validation on dev.

In-sample dev numbers (the threshold scored on the labels it was fit on, the column chosen for its dev AUC)
overstate what carries to the scored folder. Here each outer fold holds out whole groups of neighbouring
slices (found without labels); the column and the threshold are chosen on the other folds exactly as
`run_membership` chooses them on the whole dev group, and the held-out images are predicted. The pooled
out-of-fold predictions, over a few shuffles of the folds, give F1, kappa and accuracy, with CIs from a
bootstrap that resamples whole groups.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

#: outer folds and shuffles of them: 5 x 5 runs of the procedure on ~40 dev images cost about a second
N_SPLITS, N_REPEATS = 5, 5


@dataclass
class Expectation:
    """Nested-CV estimate of the procedure's test performance (metrics.Estimate per metric)."""
    estimates: dict                       # "f1", "kappa", "accuracy" -> metrics.Estimate
    all_used_f1: float                    # the trivial baseline on the same (dev) labels
    n: int
    n_groups: int
    n_splits: int
    n_repeats: int
    chosen: dict[str, int] = field(default_factory=dict)   # column -> how many outer folds chose it

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
        head = (f"Expected on new images (nested cross-validation on dev: {self.n_repeats} x {self.n_splits} folds of "
                f"whole scan groups, {self.n_groups} groups of {self.n} images; column and threshold chosen inside "
                f"each fold; chosen: {columns}): {self.summary()}.")
        if self.beats_all_used:
            return head
        return (head + " This does NOT beat calling every image used (F1's CI reaches the all-used F1): expect no "
                "better than the all-used baseline on the scored folder, whatever the in-sample dev numbers say.")


def expected_performance(scores: pd.DataFrame, used, groups, procedure: Callable, *, n_splits: int = N_SPLITS,
                         n_repeats: int = N_REPEATS, n_boot: int = 1000, seed: int = 0,
                         alpha: float = 0.05) -> Expectation | None:
    """Nested CV of `procedure(train_rows, scores, used, groups) -> (column, threshold)` on one labelled folder.

    `scores` holds every candidate column for the folder's real images (computed without labels, so the
    held-out images' scores may shape a label-free threshold, as the scored folder's own do on test);
    `procedure` may read `used` only at `train_rows`. Returns None when the folder has too few groups of
    either class for two folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    used = np.asarray(used).astype(int)
    groups = pd.factorize(np.asarray(groups))[0]
    # a group's label for stratification: its majority class (groups found without labels may mix classes)
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
    estimates = _stratified_group_bootstrap(y, p, g, n_boot=n_boot, seed=seed, alpha=alpha)
    prevalence = used.mean()
    return Expectation(estimates, float(2 * prevalence / (1 + prevalence)), len(used), int(groups.max() + 1), splits,
                       n_repeats, dict(chosen))


def _stratified_group_bootstrap(y, predicted, groups, *, n_boot: int, seed: int, alpha: float) -> dict:
    """F1, kappa and accuracy of pooled out-of-fold calls with percentile CIs from a bootstrap that resamples
    whole groups (the same group across repeats is one cluster: drawing it takes all its copies), within
    strata of the groups' majority class, so every resample holds both classes (a dev folder of nine scans
    otherwise yields resamples without a used image, where F1 is undefined)."""
    from synthscope.metrics import Estimate, _rates_from_counts

    cells = np.stack([(y == 1) & (predicted == 1), (y == 0) & (predicted == 1),
                      (y == 1) & (predicted == 0), (y == 0) & (predicted == 0)], axis=1).astype(float)
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
    boot = _rates_from_counts(*(counts @ per_group).T)
    point = _rates_from_counts(*per_group.sum(axis=0))
    out = {}
    for name in ("f1", "kappa", "accuracy"):
        low, high = np.nanquantile(np.asarray(boot[name], dtype=float), [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(name, float(point[name]), float(low), float(high), int(len(y)))
    return out
