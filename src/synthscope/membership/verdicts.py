"""Leakage tests that gate every membership claim, and the generator-free baseline caveat."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping
import numpy as np
import pandas as pd
from scipy import stats

from synthscope.membership.neighbours import APPROX_THRESHOLD, _as_matrix, knn


@dataclass
class LeakageVerdict:
    significant: bool
    p_value: float
    statistic: float
    method: str
    message: str


def rank_test(scores, used, *, alpha: float = 0.05, n_tests: int = 1,
              alternative: str = "greater") -> LeakageVerdict:
    """Mann-Whitney test: do used images score higher than not-used ones (`alternative="greater"`, the
    claim a membership score makes), or differently in either direction ("two-sided", for null controls,
    where a reversed separation is as much a failure as a forward one)?

    `n_tests` > 1 applies a Bonferroni correction when the score was picked among several.
    statistic = the AUC (U / (n_used * n_not_used)).
    """
    if alternative not in ("greater", "two-sided"):
        raise ValueError("alternative must be 'greater' or 'two-sided'")
    scores = np.asarray(scores, dtype=float)
    used = np.asarray(used).astype(int)
    if scores.shape != used.shape:
        raise ValueError("scores and labels differ in length")
    pos, neg = scores[used == 1], scores[used == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("the rank test needs both used and not-used images")
    result = stats.mannwhitneyu(pos, neg, alternative=alternative)
    auc = float(result.statistic) / (len(pos) * len(neg))
    p = float(min(1.0, result.pvalue * n_tests))
    method = ("one-sided Mann-Whitney U, used > not used" if alternative == "greater"
              else "two-sided Mann-Whitney U, used vs not used") + (f", Bonferroni x{n_tests}" if n_tests > 1 else "")
    if p < alpha and alternative == "two-sided":
        direction = "higher" if auc > 0.5 else "LOWER"
        message = (f"significant difference: used images score {direction} than not-used ones "
                   f"(AUC {auc:.3f}, two-sided p = {p:.2g} < {alpha}).")
    elif p < alpha:
        message = (f"significant leakage: used images score higher than not-used ones "
                   f"(AUC {auc:.3f}, p = {p:.2g} < {alpha}).")
    else:
        message = (f"no significant leakage (AUC {auc:.3f}, p = {p:.2g} >= {alpha}): the scores do not separate "
                   f"used from not-used images better than chance, so any tuned F1 is not a finding; "
                   f"compare it with the all-used baseline.")
    return LeakageVerdict(bool(p < alpha), p, auc, method, message)


def group_rank_test(scores, used, groups, *, alpha: float = 0.05, n_permutations: int = 1999,
                    seed: int = 0) -> LeakageVerdict:
    """Two-sided rank test of used vs not-used images that are clustered in scans (`groups`: one label per
    image, e.g. scan groups found without labels): the statistic is the image-level AUC, its p-value comes from
    reassigning the labels of whole groups at random (groups whose images all share one label trade labels;
    a group holding both keeps its own).

    Why: slices of one scan share their look, so a score that varies from scan to scan separates any labelling
    that follows scans, membership or not. The image-level Mann-Whitney test counts each slice as independent
    evidence; on v3s (15 scans) it called random half-of-the-scans labellings significant in 4 of 8 tries for
    the raw patch score. Permuting whole groups keeps the level whatever the within-scan likeness."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=float)
    used = np.asarray(used).astype(int)
    groups = np.asarray(groups)
    if not scores.shape == used.shape == groups.shape:
        raise ValueError("scores, labels and groups differ in length")
    if used.min() == used.max():
        raise ValueError("the rank test needs both used and not-used images")
    ranks = rankdata(scores)
    _, inverse = np.unique(groups, return_inverse=True)
    size = np.bincount(inverse).astype(float)
    share = np.bincount(inverse, weights=used) / size
    rank_sum = np.bincount(inverse, weights=ranks)
    pure = (share == 0) | (share == 1)
    mixed = ~pure[inverse]                   # images of groups holding both labels keep theirs
    fixed_used, fixed_rank = float(used[mixed].sum()), float(ranks[mixed & (used == 1)].sum())
    n = len(scores)

    def auc(labels):   # labels [k, n_pure_groups] (1 = the group is used) -> image-level AUC per row
        n_used = labels @ size[pure] + fixed_used
        with np.errstate(invalid="ignore", divide="ignore"):
            return (labels @ rank_sum[pure] + fixed_rank - n_used * (n_used + 1) / 2) / (n_used * (n - n_used))

    observed = float(auc(share[pure][None])[0])
    rng = np.random.default_rng(seed)
    draws = rng.permuted(np.tile(share[pure], (n_permutations, 1)), axis=1)
    null = auc(draws)
    null = null[np.isfinite(null)]           # a draw that left one class empty carries no information
    extreme = np.abs(null - 0.5) >= abs(observed - 0.5) - 1e-12
    p = float((1 + extreme.sum()) / (1 + len(null)))
    method = f"two-sided rank test, used vs not used, p from {n_permutations} permutations of whole groups"
    if p < alpha:
        direction = "higher" if observed > 0.5 else "LOWER"
        message = (f"significant difference: used images score {direction} than not-used ones (AUC {observed:.3f}, "
                   f"group-permutation p = {p:.2g} < {alpha}).")
    else:
        message = f"no significant difference (AUC {observed:.3f}, group-permutation p = {p:.2g} >= {alpha})."
    return LeakageVerdict(bool(p < alpha), p, observed, method, message)


def data_copying_test(real, generated, heldout, *, alpha: float = 0.05,
                      approx_threshold: int = APPROX_THRESHOLD) -> LeakageVerdict:
    """Meehan, Chaudhuri & Dasgupta 2020 data-copying test, without labels.

    `real` is the pool that may contain training images, `heldout` real images from the same population
    that were certainly not used (e.g. another folder). Under no copying, generated images are no closer
    to the pool than held-out real images are; copying makes them closer. One-sided Mann-Whitney of
    generated-to-pool vs held-out-to-pool nearest distances; statistic = Meehan's Z_U (negative = closer).
    """
    from synthscope.membership.rows import FeatureRows, streamed_query_knn

    real = _as_matrix(real, "real")
    if isinstance(generated, FeatureRows):     # read a chunk at a time (each chunk a block of queries)
        gen_dist, _ = streamed_query_knn(generated, real, 1, approx_threshold=approx_threshold)
    else:
        gen_dist, _ = knn(generated, real, 1, approx_threshold=approx_threshold)
    held_dist, _ = knn(heldout, real, 1, approx_threshold=approx_threshold)
    return _copying_verdict(gen_dist[:, 0], held_dist[:, 0], alpha)


def _copying_verdict(gen_dist, held_dist, alpha) -> LeakageVerdict:
    n, m = len(gen_dist), len(held_dist)
    result = stats.mannwhitneyu(gen_dist, held_dist, alternative="less")
    u = float(result.statistic)
    z = (u - n * m / 2) / math.sqrt(n * m * (n + m + 1) / 12)
    p = float(result.pvalue)
    method = "data-copying test (Meehan et al. 2020): generated-to-real vs held-out-real-to-real nearest distances"
    if p < alpha:
        message = (f"significant leakage: generated images are closer to the real pool than held-out real images "
                   f"are (Z_U = {z:.2f}, p = {p:.2g}) -- the generator copies.")
    else:
        message = (f"no significant leakage (Z_U = {z:.2f}, p = {p:.2g}): generated images are not closer to these "
                   f"real images than held-out real images are; without labels there is no evidence that any "
                   f"of them was used.")
    return LeakageVerdict(bool(p < alpha), p, z, method, message)


def leakage_test(scores=None, used=None, *, real=None, generated=None, heldout=None, alpha: float = 0.05,
                 n_tests: int = 1, seed: int = 0) -> LeakageVerdict:
    """The gate for every claim: `rank_test` when labels are given, otherwise `data_copying_test`.

    Without `heldout`, half of `real` (random, seeded) is held out; near-duplicate slices across the two
    halves make this conservative.
    """
    if used is not None:
        if scores is None:
            raise ValueError("a labelled leakage test needs the scores")
        return rank_test(scores, used, alpha=alpha, n_tests=n_tests)
    if real is None or generated is None:
        raise ValueError("without labels the leakage test needs real and generated features")
    real = _as_matrix(real, "real")
    if heldout is None:
        if len(real) < 4:
            raise ValueError("need at least 4 real images to hold half out")
        order = np.random.default_rng(seed).permutation(len(real))
        heldout, real = real[order[: len(real) // 2]], real[order[len(real) // 2:]]
    return data_copying_test(real, generated, heldout, alpha=alpha)


def best_baseline(baseline: pd.DataFrame | None, used, *, alpha: float = 0.05):
    """(column, verdict) of the generator-free baseline column with the highest AUC on `used`."""
    if baseline is None or baseline.empty:
        return None
    return _strongest({c: rank_test(baseline[c].to_numpy(), used, alpha=alpha) for c in baseline.columns})


def _strongest(verdicts: Mapping[str, LeakageVerdict]) -> tuple[str, LeakageVerdict] | None:
    """(column, verdict) with the highest statistic (AUC), or None when there are none."""
    if not verdicts:
        return None
    name = max(verdicts, key=lambda c: verdicts[c].statistic)
    return name, verdicts[name]


def with_baseline_caveat(verdict: LeakageVerdict, baseline, *, n_baselines: int = 1,
                         alpha: float = 0.05) -> LeakageVerdict:
    """The verdict, its message extended with what a generator-free baseline does on the same labels.

    CAUTION when the baseline separates the labels as well as the score (the split of the real images,
    not the generator, may explain it), and also when the baseline, though weaker, separates them
    significantly by itself (Bonferroni over the `n_baselines` baseline columns): then the benchmark's
    sampling is confounded with membership, and part of any score's separation may be that sampling.
    """
    if baseline is None:
        return verdict
    name, base = baseline

    def extended(text: str) -> LeakageVerdict:
        return LeakageVerdict(verdict.significant, verdict.p_value, verdict.statistic, verdict.method,
                              verdict.message + text)

    if not verdict.significant:
        return extended(f" (Generator-free baseline {name}: AUC {base.statistic:.3f}.)")
    if base.statistic >= verdict.statistic:
        return extended(f" CAUTION: a score that never looks at the generated images ({name}: minus the distance "
                        f"to the nearest other real image) reaches AUC {base.statistic:.3f} on the same labels, as "
                        f"high as this score: the separation may come from how the real images were sampled (e.g. "
                        f"whole scans, so used images have neighbouring slices in the pool), not from the generator.")
    base_p = min(1.0, base.p_value * max(1, int(n_baselines)))
    if base_p < alpha:
        return extended(f" CAUTION: the sampling of the real images alone separates used from not-used here: a "
                        f"score that never looks at the generated images ({name}) reaches AUC {base.statistic:.3f} "
                        f"(p = {base_p:.2g}, Bonferroni x{n_baselines}), below this score's {verdict.statistic:.3f}. "
                        f"The benchmark's split is confounded with membership (e.g. used images are whole scans "
                        f"and not-used ones are not), so part of any separation may be that sampling.")
    return extended(f" The generator-free baseline ({name}) reaches AUC {base.statistic:.3f} on the same labels "
                    f"(p = {base_p:.2g} over {n_baselines} baseline column(s), not significant), below this score.")

