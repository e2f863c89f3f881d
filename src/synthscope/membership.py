"""Training-data fingerprints (sub-task 1): was this real image used to train the generator?

Every score is per real image, higher = more likely used, computed from feature matrices (one per
"space": downsampled pixels, fingerprint features, pretrained embeddings), so the core never decodes
images itself.

Scores (`MembershipScorer`):
- ``distance``  -- minus the mean distance to the `n_neighbors` nearest generated images (the naive test).
- ``adjusted``  -- the distance adjusted for the pool's own structure: minus the residual of
  log(nearest-generated distance) after a least-squares fit on log(nearest-real distance) over the scored
  pool (label-free). Whole-scan training sets put a used image's neighbouring slices in the pool, so
  "has a close real neighbour" alone separates used from not-used on such splits (see `pool_baseline`);
  this score asks whether the generated set is closer than that structure predicts.
- ``gan_leaks`` -- GAN-Leaks calibration (Chen et al. 2020): the nearest-generated distance minus the
  nearest *reference real* distance, so an image that is merely typical (close to every sample of the
  population) does not look like a member.
- ``domias``    -- DOMIAS (van Breugel et al. 2023) with kNN densities: log p_generated(x) - log p_reference(x),
  p(x) = k / (n * r_k(x)^d) with d the intrinsic dimension (Levina-Bickel) of the reference set.
- ``copies``    -- the number of generated images inside an epsilon-ball around x (eps = a low quantile of
  the reference set's own nearest-neighbour distances, i.e. "as close as two adjacent slices"); ties are
  broken by the nearest distance so that the order stays total.
An ensemble averages the within-pool ranks of the (space, score) columns in `ENSEMBLE_SCORES`.

Near duplicates: GAN-Leaks and DOMIAS calibrate against the nearest real images that are *not* near
duplicates of the scored one (closer than `near_duplicate_ratio` x the median pairwise distance), because
a neighbouring slice of the same scan says nothing about how typical the image is.

A generator-free baseline, `pool_baseline` (minus the distance to the nearest other real image of the
pool), is reported beside every score: when it separates used from not-used as well as a membership score,
the split, not the generator, explains the separation.

Reference set (what "typical" is measured against) -- the choice matters, and here is why the default
is the scored pool itself, leave-one-out (`reference="pool"` in `run_membership`):
- It is label-free, needs nothing but the folder being scored, and treats dev and test identically, so
  a threshold fit on dev scores means the same on test scores.
- The alternative, `reference="dev"` (score test against the dev folder's real images, and dev against
  the test folder's), looks cleaner but is contaminated in CT data: training sets are drawn as whole scans,
  and adjacent slices of one training scan land in both dev-used and test-used. A used test image's
  nearest dev image is then its own neighbouring slice (on the benchmarks here "closer to a dev used image
  than to a dev not-used image" alone gives AUC 0.95-0.99), which is a property of the sampling, not of
  the generator.
- Leave-one-out in the pool has a milder form of the same bias: whole-scan used sets put neighbouring
  slices of a used image in the pool, so GAN-Leaks/DOMIAS calibration penalises exactly the used images
  (their AUC drops below 0.5 on v2). The benchmark reports this instead of hiding it; the raw distance
  and the shift-registered copy score (`registered_copy_score`) do not depend on a reference.
A reference is only unbiased when it shares no scan with the scored images; pass such a set explicitly
(`score_membership(..., reference=...)`) when you have one (e.g. real images from other patients).
Test labels are never read by anything here: labels enter only through `fit_threshold` (dev) and
`leakage_test` / evaluation.

The leakage test gates every claim: with labels, a one-sided Mann-Whitney test of used vs not-used scores;
without labels, the data-copying test of Meehan et al. 2020 (are generated images closer to the real
pool than held-out real images are?). `LeakageVerdict.message` says plainly when there is no evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

SCORES = ("distance", "adjusted", "gan_leaks", "domias", "copies")
#: scores the default ensemble averages: those that need no reference disjoint from the scored scans
#: (GAN-Leaks and DOMIAS are kept as columns but reversed on whole-scan splits, see the module notes)
ENSEMBLE_SCORES = ("distance", "adjusted", "registered")
#: near-duplicate radius as a fraction of the pool's median pairwise distance: iqoth256 links adjacent
#: slices of one scan below 6.0 where two random images are about 11 apart (64 px, grey levels in 0..1)
NEAR_DUPLICATE_RATIO = 0.55
#: scores that need the images themselves, not only features (run_membership computes them)
IMAGE_SCORES = ("registered",)
OBJECTIVES = ("f1", "accuracy", "kappa")
#: above this many indexed vectors the kNN search switches to pynndescent (approximate)
APPROX_THRESHOLD = 20_000


# --------------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------------

def _as_matrix(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a feature matrix [n, d]; got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name}: no vectors")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return np.ascontiguousarray(array)


def knn(query: np.ndarray, data: np.ndarray, k: int, *, exclude_self: bool = False,
        approx_threshold: int = APPROX_THRESHOLD, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k nearest rows of `data` for each row of `query`: (distances, indices), both [n_query, k].

    Exact (scikit-learn brute force, BLAS) up to `approx_threshold` indexed vectors, pynndescent beyond.
    `exclude_self=True` means query is data and each row's own match is dropped (leave-one-out).
    """
    query = _as_matrix(query, "query")
    data = _as_matrix(data, "data")
    if query.shape[1] != data.shape[1]:
        raise ValueError(f"query has {query.shape[1]} features but data has {data.shape[1]}")
    available = len(data) - (1 if exclude_self else 0)
    if available < 1:
        raise ValueError("need at least one neighbour to search (leave-one-out on a single image)")
    k = int(min(k, available))
    if len(data) > approx_threshold:
        from pynndescent import NNDescent

        index = NNDescent(data, n_neighbors=max(30, k + 1), random_state=random_state, low_memory=True)
        idx, dist = index.query(query, k=k + int(exclude_self))
    else:
        return _exact_knn(query, data, k, exclude_self)
    if exclude_self:
        keep = idx != np.arange(len(query))[:, None]
        # a duplicate vector may come back instead of self; keep the first k that are not self
        dist = np.array([row[mask][:k] for row, mask in zip(dist, keep)])
        idx = np.array([row[mask][:k] for row, mask in zip(idx, keep)])
    return dist.astype(np.float32), idx


def _exact_knn(query: np.ndarray, data: np.ndarray, k: int, exclude_self: bool,
               chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float32 BLAS (|q|^2 + |d|^2 - 2 q.d), chunked over queries. Float32 cancellation
    costs about 1e-3 of the vectors' norm in absolute distance, far below any copy threshold here."""
    data_sq = np.einsum("ij,ij->i", data, data)
    dist = np.empty((len(query), k), dtype=np.float32)
    idx = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk]
        d2 = data_sq[None, :] - 2.0 * (q @ data.T)
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        if exclude_self:
            rows = np.arange(len(q))
            d2[rows, start + rows] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.tile(
            np.arange(d2.shape[1]), (len(q), 1))
        picked = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(picked, axis=1, kind="stable")
        idx[start:start + chunk] = np.take_along_axis(part, order, axis=1)
        dist[start:start + chunk] = np.sqrt(np.maximum(np.take_along_axis(picked, order, axis=1), 0.0))
    return dist, idx


def intrinsic_dimension(neighbour_distances: np.ndarray) -> float:
    """Levina-Bickel MLE of intrinsic dimension from sorted kNN distances [n, k] (k >= 2), averaged
    as MacKay-Ghahramani suggest (inverse of the mean inverse estimate)."""
    d = np.asarray(neighbour_distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < 2:
        raise ValueError("need at least 2 neighbours per point to estimate the intrinsic dimension")
    d = np.maximum(d, 1e-12)
    logs = np.log(d[:, -1:] / d[:, :-1]).mean(axis=1)
    mean_log = float(np.mean(logs))
    return 1.0 / mean_log if mean_log > 0 else float("nan")


# --------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------

class MembershipScorer:
    """Membership scores for real images in one feature space.

    fit(generated, reference=None) indexes the generated set and, when given, a reference set of real
    images disjoint from the pool that will be scored; score(real) returns a DataFrame with one column
    per score. Without a reference, `score` uses the scored pool itself leave-one-out.
    """

    def __init__(self, scores: Sequence[str] = SCORES, n_neighbors: int = 1, density_k: int = 5,
                 eps_quantile: float = 0.05, max_copies: int = 20,
                 near_duplicate_ratio: float | None = NEAR_DUPLICATE_RATIO, max_near_duplicates: int = 48,
                 approx_threshold: int = APPROX_THRESHOLD, random_state: int = 0):
        self.scores = tuple(scores)
        self.near_duplicate_ratio = near_duplicate_ratio
        self.max_near_duplicates = max_near_duplicates
        self.n_neighbors = n_neighbors
        self.density_k = density_k
        self.eps_quantile = eps_quantile
        self.max_copies = max_copies
        self.approx_threshold = approx_threshold
        self.random_state = random_state

    def _check(self) -> None:
        unknown = [s for s in self.scores if s not in SCORES]
        if unknown:
            raise ValueError(f"unknown score(s) {unknown}; choose from {', '.join(SCORES)}")
        if self.n_neighbors < 1 or self.density_k < 2 or self.max_copies < 1:
            raise ValueError("n_neighbors >= 1, density_k >= 2 and max_copies >= 1 are required")
        if not 0 < self.eps_quantile < 1:
            raise ValueError("eps_quantile must be in (0, 1)")
        if self.near_duplicate_ratio is not None and not self.near_duplicate_ratio > 0:
            raise ValueError("near_duplicate_ratio must be positive (or None to keep near duplicates)")

    def fit(self, generated, reference=None) -> "MembershipScorer":
        self._check()
        self.generated_ = _as_matrix(generated, "generated")
        self.reference_ = None if reference is None else _as_matrix(reference, "reference")
        if self.reference_ is not None and self.reference_.shape[1] != self.generated_.shape[1]:
            raise ValueError("reference and generated features have different dimensions")
        return self

    def _knn(self, query, data, k, exclude_self=False):
        return knn(query, data, k, exclude_self=exclude_self, approx_threshold=self.approx_threshold,
                   random_state=self.random_state)

    def score(self, real) -> pd.DataFrame:
        if not hasattr(self, "generated_"):
            raise RuntimeError("call fit(generated, reference) before score(real)")
        real = _as_matrix(real, "real")
        if real.shape[1] != self.generated_.shape[1]:
            raise ValueError(f"real has {real.shape[1]} features but generated has {self.generated_.shape[1]}")
        leave_one_out = self.reference_ is None
        reference = real if leave_one_out else self.reference_
        n_reference = len(reference) - int(leave_one_out)
        if n_reference < 2:
            raise ValueError("the reference set needs at least 2 other real images (3 when leave-one-out)")
        k_gen = max(self.n_neighbors, self.density_k, self.max_copies if "copies" in self.scores else 1)
        gen_dist, _ = self._knn(real, self.generated_, k_gen)
        k_ref = max(2, self.n_neighbors, self.density_k)
        self.near_duplicate_radius_ = self._near_duplicate_radius(reference)
        n_excludable = self.max_near_duplicates if self.near_duplicate_radius_ > 0 else 0
        wide_dist, _ = self._knn(real, reference, k_ref + n_excludable, exclude_self=leave_one_out)
        ref_dist = wide_dist[:, :k_ref]
        calib_dist = _beyond_radius(wide_dist, self.near_duplicate_radius_, k_ref)
        # the reference's own spacing: for eps (copies) and the intrinsic dimension (domias)
        k_self = max(2, min(self.density_k, n_reference))
        if leave_one_out:
            ref_self = ref_dist[:, :k_self]
        else:
            ref_self, _ = self._knn(reference, reference, k_self, exclude_self=True)
        self.eps_ = float(np.quantile(ref_self[:, 0], self.eps_quantile))
        self.intrinsic_dim_ = float(np.clip(np.nan_to_num(intrinsic_dimension(ref_self), nan=1.0), 1.0,
                                            real.shape[1]))
        self.reference_mode_ = "leave-one-out" if leave_one_out else "reference set"
        #: generator-free baseline: a close real neighbour in the pool, no generated image involved
        self.pool_baseline_ = -ref_dist[:, 0].astype(np.float64)
        out = {}
        m = min(self.n_neighbors, gen_dist.shape[1], ref_dist.shape[1])
        d_gen = gen_dist[:, :m].mean(axis=1).astype(np.float64)
        d_calib = calib_dist[:, :m].mean(axis=1).astype(np.float64)
        for name in self.scores:
            if name == "distance":
                out[name] = -d_gen
            elif name == "adjusted":
                out[name] = _structure_adjusted(d_gen, ref_dist[:, :k_self].mean(axis=1))
            elif name == "gan_leaks":
                out[name] = d_calib - d_gen
            elif name == "domias":
                k = min(self.density_k, gen_dist.shape[1], calib_dist.shape[1])
                r_gen = np.maximum(gen_dist[:, k - 1].astype(np.float64), 1e-12)
                r_ref = np.maximum(calib_dist[:, k - 1].astype(np.float64), 1e-12)
                out[name] = (math.log(n_reference / len(self.generated_))
                             + self.intrinsic_dim_ * (np.log(r_ref) - np.log(r_gen)))
            elif name == "copies":
                count = (gen_dist < self.eps_).sum(axis=1).astype(np.float64)
                nearest = gen_dist[:, 0].astype(np.float64)
                # tie-break in [0, 0.5) for count 0 and [0.5, 1) otherwise: order stays count-first
                out[name] = count + self.eps_ / (self.eps_ + nearest + 1e-12) * 0.999
        return pd.DataFrame(out)

    def _near_duplicate_radius(self, reference: np.ndarray) -> float:
        """`near_duplicate_ratio` x the median distance between random pairs of reference images (0 = off)."""
        if self.near_duplicate_ratio is None:
            return 0.0
        rng = np.random.default_rng(self.random_state)
        n_pairs = min(4000, len(reference) * (len(reference) - 1) // 2)
        a = rng.integers(0, len(reference), n_pairs)
        b = (a + rng.integers(1, len(reference), n_pairs)) % len(reference)   # never a == b
        median = float(np.median(np.linalg.norm(reference[a] - reference[b], axis=1)))
        return self.near_duplicate_ratio * median


def _beyond_radius(sorted_distances: np.ndarray, radius: float, k: int) -> np.ndarray:
    """The first k distances of each row that are >= radius (near duplicates skipped); rows with fewer
    keep their farthest neighbours found, so every row has k values."""
    if radius <= 0:
        return sorted_distances[:, :k]
    n, width = sorted_distances.shape
    # sort key: near duplicates after every farther neighbour, otherwise in distance order
    near = sorted_distances < radius
    order = np.argsort(np.where(near, np.inf, 0.0) + np.arange(width)[None, :], axis=1, kind="stable")
    picked = np.take_along_axis(sorted_distances, order, axis=1)[:, :k]
    short = (~near).sum(axis=1) < k
    if short.any():
        picked[short] = sorted_distances[short][:, -k:]
    return picked


def _structure_adjusted(d_gen: np.ndarray, d_real: np.ndarray) -> np.ndarray:
    """Minus the residual of log d_gen after a least-squares line on log d_real (fit on the scored pool,
    no labels): how much closer the generated set is than the pool's own spacing predicts."""
    log_gen = np.log(np.maximum(d_gen, 1e-12))
    log_real = np.log(np.maximum(np.asarray(d_real, dtype=np.float64), 1e-12))
    if len(log_gen) < 3 or np.ptp(log_real) == 0:
        return -(log_gen - log_gen.mean())
    slope, intercept = np.polyfit(log_real, log_gen, 1)
    return -(log_gen - (slope * log_real + intercept))


def rank_ensemble(scores: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """Mean within-pool rank (scaled to (0, 1]) of the given columns: spaces and scores on one footing."""
    columns = list(columns) if columns is not None else list(scores.columns)
    if not columns:
        raise ValueError("no score columns to ensemble")
    ranks = scores[columns].rank(method="average", pct=True)
    return ranks.mean(axis=1).to_numpy()


# --------------------------------------------------------------------------------------------------
# Leakage tests
# --------------------------------------------------------------------------------------------------

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


def data_copying_test(real, generated, heldout, *, alpha: float = 0.05,
                      approx_threshold: int = APPROX_THRESHOLD) -> LeakageVerdict:
    """Meehan, Chaudhuri & Dasgupta 2020 data-copying test, without labels.

    `real` is the pool that may contain training images, `heldout` real images from the same population
    that were certainly not used (e.g. another folder). Under no copying, generated images are no closer
    to the pool than held-out real images are; copying makes them closer. One-sided Mann-Whitney of
    generated-to-pool vs held-out-to-pool nearest distances; statistic = Meehan's Z_U (negative = closer).
    """
    real = _as_matrix(real, "real")
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


# --------------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------------

@dataclass
class ThresholdFit:
    threshold: float
    method: str            # "f1" | "accuracy" | "kappa" | "prevalence" | "mixture"
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
                  random_state: int = 0) -> ThresholdFit:
    """Threshold on dev scores; predict used when score >= threshold.

    With labels: maximise `objective` ("f1", "accuracy", "kappa") over every cut between sorted scores.
    Without labels: `prevalence` (expected fraction used) sets a quantile, else a two-component Gaussian
    mixture puts the cut where the higher component becomes more likely.
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
    from sklearn.mixture import GaussianMixture

    if len(scores) < 4:
        raise ValueError("a two-component mixture needs at least 4 scores")
    gm = GaussianMixture(2, random_state=random_state).fit(scores[:, None])
    high = int(np.argmax(gm.means_.ravel()))
    grid = np.linspace(scores.min(), scores.max(), 2001)
    posterior = gm.predict_proba(grid[:, None])[:, high]
    above = np.nonzero(posterior >= 0.5)[0]
    t = float(grid[above[0]]) if len(above) else float(scores.max() + 1.0)
    return ThresholdFit(t, "mixture", float("nan"), float((scores >= t).mean()))


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


# --------------------------------------------------------------------------------------------------
# Several spaces at once
# --------------------------------------------------------------------------------------------------

@dataclass
class MembershipResult:
    scores: pd.DataFrame            # index = real image ids; columns "space:score" and "ensemble"
    primary: str                    # the column predictions and the verdict use
    verdict: LeakageVerdict         # for `primary`
    verdicts: dict[str, LeakageVerdict] = field(default_factory=dict)   # per column, when labels exist
    reference: str = "leave-one-out"   # which reference calibrated the scores
    details: dict[str, dict] = field(default_factory=dict)              # per space: eps, intrinsic dim
    #: generator-free baseline per space ("space:pool_baseline"): never a candidate for `primary`
    baseline: pd.DataFrame | None = None
    baseline_verdicts: dict[str, LeakageVerdict] = field(default_factory=dict)

    @property
    def best_baseline(self) -> tuple[str, LeakageVerdict] | None:
        """The baseline column that separates the labels best (None without labels)."""
        return _strongest(self.baseline_verdicts)

    @property
    def primary_scores(self) -> np.ndarray:
        return self.scores[self.primary].to_numpy()


def score_membership(real: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray],
                     reference: Mapping[str, np.ndarray] | None = None, *, ids: Sequence[str] | None = None,
                     scores: Sequence[str] = SCORES, used=None, primary: str = "ensemble",
                     ensemble_columns: Sequence[str] | None = None, alpha: float = 0.05,
                     **scorer_params) -> MembershipResult:
    """Score one pool of real images against one generated set, in every space given.

    real / generated / reference: {space name: feature matrix}, rows aligned with `ids`. `used` (0/1 per
    real image) is only for the verdict -- pass dev labels, never test labels you mean to predict.
    Without labels the verdict is the data-copying test in the first space (against `reference` as the
    held-out set when given).
    """
    if not real:
        raise ValueError("no feature spaces given")
    missing = [s for s in real if s not in generated or (reference is not None and s not in reference)]
    if missing:
        raise ValueError(f"space(s) {missing} lack generated or reference features")
    n = len(next(iter(real.values())))
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    if len(ids) != n or any(len(x) != n for x in real.values()):
        raise ValueError("every real feature matrix must have one row per id")
    columns, details, baselines = {}, {}, {}
    for space, features in real.items():
        scorer = MembershipScorer(scores=scores, **scorer_params).fit(
            generated[space], None if reference is None else reference[space])
        table = scorer.score(features)
        details[space] = {"eps": scorer.eps_, "intrinsic_dim": scorer.intrinsic_dim_,
                          "near_duplicate_radius": scorer.near_duplicate_radius_}
        baselines[f"{space}:pool_baseline"] = scorer.pool_baseline_
        for name in table.columns:
            columns[f"{space}:{name}"] = table[name].to_numpy()
    index = pd.Index(ids, name="image_id")
    frame = pd.DataFrame(columns, index=index)
    baseline = pd.DataFrame(baselines, index=index)
    frame["ensemble"] = rank_ensemble(frame, ensemble_columns or default_ensemble_columns(frame.columns))
    if primary not in frame.columns:
        raise ValueError(f"primary column {primary!r} not among {list(frame.columns)}")
    verdicts = {}
    if used is not None:
        used = np.asarray(used).astype(int)
        verdicts = {c: rank_test(frame[c].to_numpy(), used, alpha=alpha) for c in frame.columns}
        baseline_verdicts = {c: rank_test(baseline[c].to_numpy(), used, alpha=alpha) for c in baseline.columns}
        verdict = verdicts[primary]
    else:
        baseline_verdicts = {}
        space = next(iter(real))
        verdict = leakage_test(real=real[space], generated=generated[space],
                               heldout=None if reference is None else reference[space], alpha=alpha)
    return MembershipResult(frame, primary, verdict, verdicts,
                            "leave-one-out" if reference is None else "reference set", details,
                            baseline, baseline_verdicts)


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


def with_baseline_caveat(verdict: LeakageVerdict, baseline) -> LeakageVerdict:
    """The verdict, its message extended when a generator-free baseline separates the labels as well:
    then the split of the real images, not the generator, may explain the separation."""
    if baseline is None:
        return verdict
    name, base = baseline
    if not verdict.significant:
        return LeakageVerdict(verdict.significant, verdict.p_value, verdict.statistic, verdict.method,
                              verdict.message + f" (Generator-free baseline {name}: AUC {base.statistic:.3f}.)")
    if base.statistic < verdict.statistic:
        return LeakageVerdict(verdict.significant, verdict.p_value, verdict.statistic, verdict.method,
                              verdict.message + f" The generator-free baseline ({name}) reaches AUC "
                              f"{base.statistic:.3f} on the same labels, below this score.")
    return LeakageVerdict(verdict.significant, verdict.p_value, verdict.statistic, verdict.method,
                          verdict.message + f" CAUTION: a score that never looks at the generated images "
                          f"({name}: minus the distance to the nearest other real image) reaches AUC "
                          f"{base.statistic:.3f} on the same labels, as high as this score: the separation may "
                          f"come from how the real images were sampled (e.g. whole scans, so used images have "
                          f"neighbouring slices in the pool), not from the generator.")


def default_ensemble_columns(columns: Sequence[str]) -> list[str]:
    """The "space:score" columns whose score is in `ENSEMBLE_SCORES` (all columns when none is)."""
    chosen = [c for c in columns if c != "ensemble" and c.rsplit(":", 1)[-1] in ENSEMBLE_SCORES]
    return chosen or [c for c in columns if c != "ensemble"]


# --------------------------------------------------------------------------------------------------
# Copy detection on the images themselves (shift-registered)
# --------------------------------------------------------------------------------------------------

def _standardise_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(np.sqrt((x ** 2).mean(axis=(-2, -1), keepdims=True)), 1e-6)


def registered_distances(real_images: np.ndarray, gen_images: np.ndarray, candidates: np.ndarray, *,
                         max_shift: int = 1, border: int = 4, chunk: int = 128) -> np.ndarray:
    """RMS difference of standardised full-resolution images, minimised over integer shifts of up to
    `max_shift` pixels, for each real image and each of its candidate generated images [n_real, m].

    Adjacent CT slices of one scan are often closer in any downsampled feature space than a copy that
    moved by one pixel; after registration a copy differs only by its noise (about 0.03 here) while
    adjacent slices stay apart (>= 0.3), so this is the copy detector of the positive control.
    """
    real = _standardise_images(real_images)
    gen = _standardise_images(gen_images)
    candidates = np.asarray(candidates, dtype=int)
    if candidates.ndim != 2 or len(candidates) != len(real):
        raise ValueError("candidates must be [n_real, m] indices into the generated images")
    height, width = real.shape[1:]
    c = max_shift + border
    if min(height, width) <= 2 * c:
        raise ValueError("images too small for the requested shift and border")
    pairs_real = np.repeat(np.arange(len(real)), candidates.shape[1])
    pairs_gen = candidates.ravel()
    out = np.empty(len(pairs_real), dtype=np.float32)
    for start in range(0, len(pairs_real), chunk):
        sl = slice(start, start + chunk)
        a = real[pairs_real[sl], c:height - c, c:width - c]
        g = gen[pairs_gen[sl]]
        best = np.full(len(a), np.inf, dtype=np.float32)
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                b = g[:, c + dy:height - c + dy, c + dx:width - c + dx]
                best = np.minimum(best, ((a - b) ** 2).mean(axis=(1, 2)))
        out[sl] = np.sqrt(best)
    return out.reshape(candidates.shape)


def registered_copy_score(real_images: np.ndarray, gen_images: np.ndarray, real_features=None,
                          gen_features=None, *, n_candidates: int = 5, max_shift: int = 1,
                          approx_threshold: int = APPROX_THRESHOLD) -> np.ndarray:
    """Minus the smallest shift-registered distance among each real image's `n_candidates` nearest
    generated images (searched in the given features, default 64 px standardised pixels). Higher = more
    likely that a (near) copy of the image is in the generated set."""
    rf = postprocess(downsampled_pixels(real_images), "image_zscore") if real_features is None else real_features
    gf = postprocess(downsampled_pixels(gen_images), "image_zscore") if gen_features is None else gen_features
    _, idx = knn(rf, gf, n_candidates, approx_threshold=approx_threshold)
    return -registered_distances(real_images, gen_images, idx, max_shift=max_shift).min(axis=1).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# Nearest pairs for galleries
# --------------------------------------------------------------------------------------------------

@dataclass
class NearestPair:
    real_index: int
    generated_index: int
    rank: int                 # 0 = nearest
    distance: float           # in the feature space searched
    ssim: float               # structural similarity of the two full-resolution images
    difference: np.ndarray    # int16 [H, W], real - generated

    real_id: str = ""
    generated_id: str = ""


def downsampled_pixels(images: np.ndarray, size: int = 64) -> np.ndarray:
    """Block-mean downsampling of uint8 [n, H, W] to [n, size*size] grey levels in [0, 1]; the default
    space of `nearest_pairs` when no features are given."""
    images = np.asarray(images)
    n, height, width = images.shape
    if height % size or width % size:
        from skimage.transform import resize

        small = np.stack([resize(im.astype(np.float32) / 255, (size, size), anti_aliasing=True) for im in images])
    else:
        fh, fw = height // size, width // size
        small = (images.astype(np.float32) / 255).reshape(n, size, fh, size, fw).mean(axis=(2, 4))
    return small.reshape(n, -1).astype(np.float32)


def nearest_pairs(real_images: np.ndarray, gen_images: np.ndarray, k: int = 3, *,
                  real_features: np.ndarray | None = None, gen_features: np.ndarray | None = None,
                  real_ids: Sequence[str] | None = None, gen_ids: Sequence[str] | None = None,
                  approx_threshold: int = APPROX_THRESHOLD) -> list[NearestPair]:
    """Each real image's k nearest generated images, with distance, SSIM and difference image.

    The search runs in the given feature space (default: 64 px pixels); SSIM and the difference are on
    the full images. Pairs are ordered by real image, then rank.
    """
    from skimage.metrics import structural_similarity

    real_images = np.asarray(real_images)
    gen_images = np.asarray(gen_images)
    if real_images.ndim == 2:
        real_images = real_images[None]
    if real_images.ndim != 3 or gen_images.ndim != 3 or real_images.shape[1:] != gen_images.shape[1:]:
        raise ValueError("real and generated images must be grayscale stacks [n, H, W] of one size")
    rf = downsampled_pixels(real_images) if real_features is None else real_features
    gf = downsampled_pixels(gen_images) if gen_features is None else gen_features
    dist, idx = knn(rf, gf, k, approx_threshold=approx_threshold)
    pairs = []
    for i in range(len(real_images)):
        for rank, (d, j) in enumerate(zip(dist[i], idx[i])):
            a, b = real_images[i], gen_images[j]
            pairs.append(NearestPair(
                real_index=i, generated_index=int(j), rank=rank, distance=float(d),
                ssim=float(structural_similarity(a, b, data_range=255)),
                difference=a.astype(np.int16) - b.astype(np.int16),
                real_id=str(real_ids[i]) if real_ids is not None else str(i),
                generated_id=str(gen_ids[j]) if gen_ids is not None else str(int(j))))
    return pairs


# --------------------------------------------------------------------------------------------------
# Controls
# --------------------------------------------------------------------------------------------------

def near_copies(images: np.ndarray, *, seed: int = 0, noise_sigma: float = 2.0,
                contrast: float = 0.03) -> np.ndarray:
    """Near copies of uint8 images: a random 1-pixel shift, Gaussian noise (sigma in grey levels) and a
    slight contrast change (a factor within +/- `contrast`), as a memorising generator would produce."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        dy, dx = rng.choice([-1, 0, 1], size=2)
        if dy == 0 and dx == 0:
            dx = 1
        shifted = np.roll(image.astype(np.float32), (int(dy), int(dx)), axis=(0, 1))
        factor = 1 + rng.uniform(-contrast, contrast)
        mean = shifted.mean()
        changed = (shifted - mean) * factor + mean + rng.normal(0, noise_sigma, shifted.shape)
        out[i] = np.clip(np.rint(changed), 0, 255).astype(np.uint8)
    return out


@dataclass
class PositiveControl:
    generated: np.ndarray     # the generated set with near copies appended
    copied: np.ndarray        # bool per real image: a near copy of it is in `generated`
    n_injected: int


def positive_control(real_images: np.ndarray, gen_images: np.ndarray, *, fraction: float = 0.5,
                     candidates=None, seed: int = 0) -> PositiveControl:
    """Inject near copies of a random `fraction` of the real images (of `candidates`, a bool mask or
    indices, when given) into the generated set. A working method must flag exactly the copied ones."""
    n = len(real_images)
    pool = np.arange(n) if candidates is None else np.arange(n)[np.asarray(candidates)] \
        if np.asarray(candidates).dtype == bool else np.asarray(candidates, dtype=int)
    if len(pool) == 0:
        raise ValueError("no candidate real images to copy")
    rng = np.random.default_rng(seed)
    n_copy = max(1, int(round(fraction * len(pool))))
    chosen = np.sort(rng.choice(pool, size=n_copy, replace=False))
    copies = near_copies(np.asarray(real_images)[chosen], seed=seed + 1)
    copied = np.zeros(n, dtype=bool)
    copied[chosen] = True
    return PositiveControl(np.concatenate([np.asarray(gen_images), copies]), copied, n_copy)


@dataclass
class ControlResult:
    name: str                  # "positive" | "null"
    passed: bool
    verdict: LeakageVerdict
    auc: float | None          # of the control's own truth (copied vs not), positive control only
    message: str


def run_positive_control(real_features_fn, real_images, gen_images, *, reference=None, score: str = "registered",
                         fraction: float = 0.5, candidates=None, seed: int = 0, alpha: float = 0.05,
                         **scorer_params) -> tuple[ControlResult, np.ndarray, np.ndarray]:
    """Positive control end to end. `real_features_fn(images) -> features` embeds images into the space
    (the injected copies must pass through the same extractor; a space name works too).
    Returns the result, the scores and the truth (bool per real image: copied)."""
    if isinstance(real_features_fn, (str, Space)):
        space = real_features_fn
        real_features_fn = lambda images: space_features(images, space)  # noqa: E731
    from sklearn.metrics import roc_auc_score

    control = positive_control(real_images, gen_images, fraction=fraction, candidates=candidates, seed=seed)
    real_f = real_features_fn(np.asarray(real_images))
    gen_f = real_features_fn(control.generated)
    if score == "registered":
        values = registered_copy_score(np.asarray(real_images), control.generated, real_f, gen_f)
    else:
        values = MembershipScorer(scores=(score,), **scorer_params).fit(gen_f, reference).score(real_f)[score].to_numpy()
    verdict = rank_test(values, control.copied, alpha=alpha)
    auc = float(roc_auc_score(control.copied, values))
    passed = verdict.significant and auc >= 0.99
    message = (f"positive control {'passed' if passed else 'FAILED'}: {control.n_injected} near copies injected; "
               f"AUC of copied vs not copied {auc:.3f}; {verdict.message}")
    return ControlResult("positive", passed, verdict, auc, message), values, control.copied


def near_duplicate_groups(features, *, ratio: float = NEAR_DUPLICATE_RATIO, random_state: int = 0) -> np.ndarray:
    """Group label per image: connected components of the "closer than `ratio` x the median pairwise
    distance" graph, i.e. runs of neighbouring slices of one scan (label-free)."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    features = _as_matrix(features, "features")
    if len(features) < 2:
        return np.zeros(len(features), dtype=int)
    radius = MembershipScorer(near_duplicate_ratio=ratio, random_state=random_state)._near_duplicate_radius(features)
    graph = radius_neighbors_graph(features, radius, mode="connectivity", include_self=False)
    return connected_components(graph, directed=False)[1]


def split_null_control(real, used=None, *, seed: int = 0, groups=None):
    """Held-out real images for a null control drawn from one group of a data set: with labels, about a
    third of the used and a third of the not-used images become the generated set and the rest is scored;
    without labels the images are cut in three (pool, stand-in generated set, held-out set for the
    data-copying test).

    The cut keeps near-duplicate groups (`near_duplicate_groups` of `real`, or `groups` when given) whole:
    a stand-in that holds one slice of a scan whose neighbouring slice stays in the pool would make that
    pool image look "copied", and the control would measure the split instead of the score.
    Returns (pool_rows, generated_rows, heldout_rows or None)."""
    rng = np.random.default_rng(seed)
    n = len(real)
    if groups is None:   # images are accepted too: grouped by their flattened grey levels
        groups = near_duplicate_groups(np.asarray(real, dtype=np.float32).reshape(n, -1))
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError("groups must have one label per real image")
    if used is not None:
        used = np.asarray(used).astype(int)
        if (used == 0).sum() < 3 or (used == 1).sum() < 3:
            raise ValueError("the null control needs at least 3 used and 3 not-used images")
        # a third of each class, as whole groups of that class only: a stand-in set drawn from one class
        # would resemble that class (same scans, same sampling) and fake a separation either way
        generated_rows = []
        for value in (0, 1):
            pure = [g for g in rng.permutation(np.unique(groups[used == value])) if (used[groups == g] == value).all()]
            rows = _take_groups(groups, pure, int((used == value).sum()) // 3)
            if len(rows) < 1:   # no whole group to spare: fall back to single images of the class
                rows = rng.permutation(np.flatnonzero(used == value))[: max(1, int((used == value).sum()) // 3)]
            generated_rows.append(rows)
        generated_rows = np.sort(np.concatenate(generated_rows))
        pool_rows = np.sort(np.setdiff1d(np.arange(n), generated_rows))
        return pool_rows, generated_rows, None
    if n < 6:
        raise ValueError("the label-free null control needs at least 6 real images")
    order = list(rng.permutation(np.unique(groups)))
    generated_rows = _take_groups(groups, order, n // 3)
    rest = [g for g in order if not np.isin(np.flatnonzero(groups == g), generated_rows).any()]
    heldout_rows = _take_groups(groups, rest, n // 3)
    pool_rows = np.setdiff1d(np.arange(n), np.concatenate([generated_rows, heldout_rows]))
    if min(len(generated_rows), len(heldout_rows), len(pool_rows)) < 2:
        order = rng.permutation(n)
        third = n // 3
        return np.sort(order[2 * third:]), np.sort(order[:third]), np.sort(order[third:2 * third])
    return pool_rows, generated_rows, heldout_rows


def _take_groups(groups: np.ndarray, order, target: int) -> np.ndarray:
    """Rows of whole groups taken in `order`, skipping any group that would overshoot `target`."""
    taken: list[np.ndarray] = []
    count = 0
    for g in order:
        rows = np.flatnonzero(groups == g)
        if count + len(rows) > target:
            continue
        taken.append(rows)
        count += len(rows)
        if count >= target:
            break
    return np.sort(np.concatenate(taken)) if taken else np.array([], dtype=int)


def run_null_control(real, heldout_as_generated, *, reference=None, used=None, score: str = "gan_leaks",
                     alpha: float = 0.05, **scorer_params) -> ControlResult:
    """Null control: the generated set is replaced by held-out real images (feature matrices), so nothing
    can have leaked. With labels the two-sided rank test of `score` must not be significant (a reversed
    separation fails too: it shows a bias that would sink or fake a real signal); without labels the
    data-copying test must not be."""
    if used is not None:
        table = MembershipScorer(scores=(score,), **scorer_params).fit(heldout_as_generated, reference).score(real)
        verdict = rank_test(table[score].to_numpy(), used, alpha=alpha, alternative="two-sided")
    else:
        verdict = leakage_test(real=real, generated=heldout_as_generated, heldout=reference, alpha=alpha)
    passed = not verdict.significant
    message = (f"null control {'passed' if passed else 'FAILED'} (generated set replaced by held-out real images"
               f"{', score ' + score if used is not None else ''}): {verdict.message}")
    if not passed and used is not None:
        message += (" A significant result here means the score separates used from not-used images for a "
                    "reason other than the generator (e.g. used images are more typical of the population, or have "
                    "neighbouring slices of their scan in the pool).")
    return ControlResult("null", passed, verdict, None, message)


def null_control(features, used=None, *, score: str = "distance", n_repeats: int = 10, groups=None,
                 seed: int = 0, alpha: float = 0.05, **scorer_params) -> ControlResult:
    """The null control over `n_repeats` random group-aware splits (`split_null_control`) of one group's
    real images (feature matrix), since a single split of a few dozen images is a noisy draw.

    Passes when the median p-value of the per-split tests is >= alpha (under the null, p is uniform, so
    most splits must come out non-significant); the message gives the median AUC (or Z_U) and how many
    splits were significant. With labels each split is a two-sided rank test of `score`.
    """
    features = _as_matrix(features, "features")
    if n_repeats < 1:
        raise ValueError("n_repeats must be >= 1")
    groups = near_duplicate_groups(features) if groups is None else np.asarray(groups)
    verdicts = []
    for repeat in range(n_repeats):
        pool, stand_in, heldout = split_null_control(features, used, seed=seed + repeat, groups=groups)
        verdicts.append(run_null_control(
            features[pool], features[stand_in], reference=None if heldout is None else features[heldout],
            used=None if used is None else np.asarray(used)[pool], score=score, alpha=alpha,
            **scorer_params).verdict)
    p_values = np.array([v.p_value for v in verdicts])
    statistics = np.array([v.statistic for v in verdicts])
    median_p = float(np.median(p_values))
    passed = median_p >= alpha
    n_significant = int((p_values < alpha).sum())
    what = "AUC" if used is not None else "Z_U"
    summary = LeakageVerdict(not passed, median_p, float(np.median(statistics)),
                             verdicts[0].method + f", median over {n_repeats} group-aware splits",
                             f"median {what} {np.median(statistics):.3f} (range {statistics.min():.2f} to "
                             f"{statistics.max():.2f}), median p = {median_p:.2g}; {n_significant} of {n_repeats} "
                             f"splits significant at {alpha}.")
    message = (f"null control {'passed' if passed else 'FAILED'} (held-out real images as the generated set"
               f"{', score ' + score if used is not None else ''}): {summary.message}")
    if not passed:
        message += (" The score separates the real images without any generator: the split of the real images "
                    "(scans, sampling), not a generator, can produce its signal.")
    return ControlResult("null", passed, summary, None, message)


# --------------------------------------------------------------------------------------------------
# Feature spaces (computed by synthscope.features extractors; the scorer only sees matrices)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Space:
    name: str
    extractor: str
    options: dict
    postprocess: str = "none"   # "none" | "image_zscore" (per image: brightness/contrast invariant)
    description: str = ""


SPACES: dict[str, Space] = {s.name: s for s in (
    Space("pixels", "pixels", {"size": 64}, "none", "64 px grey levels in 0..1"),
    Space("pixels-norm", "pixels", {"size": 64}, "image_zscore",
          "64 px, each image standardised to zero mean / unit norm: insensitive to brightness and contrast"),
    Space("pixels-lung", "pixels", {"size": 64, "mask": "lung"}, "image_zscore",
          "64 px inside the lung mask, standardised per image"),
    Space("pixels-32", "pixels", {"size": 32}, "image_zscore", "32 px, standardised per image"),
    Space("pixels-128", "pixels", {"size": 128}, "image_zscore",
          "128 px, standardised per image (finer texture; the best single space on v2's dev folder)"),
    Space("fingerprint", "fingerprint", {}, "image_zscore",
          "generator-fingerprint features (noise residual spectrum), standardised per image"),
    Space("effnet-lite0", "effnet-lite0", {}, "none", "ImageNet EfficientNet-Lite0 embedding (L2-normalised)"),
    Space("astra-ct", "astra-ct", {}, "none", "chest-CT ResNet-152 embedding (L2-normalised)"),
)}
DEFAULT_SPACES = ("pixels-norm", "pixels-128", "pixels-lung", "fingerprint")


def get_space(name: str) -> Space:
    if name not in SPACES:
        raise ValueError(f"unknown space {name!r}; choose from {', '.join(SPACES)}")
    return SPACES[name]


def postprocess(features: np.ndarray, how: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if how == "none":
        return features
    if how == "image_zscore":
        centred = features - features.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1, keepdims=True)
        return centred / np.maximum(norm, 1e-6)
    raise ValueError(f"unknown postprocess {how!r}")


def space_features(images: np.ndarray, space: str | Space, *, cache=None, keys=None,
                   device: str = "auto") -> np.ndarray:
    """Features of uint8 images [n, H, W] in one space (through the embedding cache)."""
    from synthscope.cache import embed_arrays
    from synthscope.features import get_extractor

    space = get_space(space) if isinstance(space, str) else space
    extractor = get_extractor(space.extractor, **space.options)
    raw = embed_arrays(np.asarray(images), extractor, cache=cache, keys=keys, device=device)
    return postprocess(raw, space.postprocess)


def dataset_space_features(dataset, space: str | Space, *, cache=None, device: str = "auto",
                           progress: bool = False) -> np.ndarray:
    """Features of every manifest row of a Dataset in one space (row-aligned; cached by sha256)."""
    from synthscope.cache import embed_dataset
    from synthscope.features import get_extractor

    space = get_space(space) if isinstance(space, str) else space
    extractor = get_extractor(space.extractor, **space.options)
    raw = embed_dataset(dataset, extractor, cache=cache, device=device, progress=progress)
    return postprocess(raw, space.postprocess)


# --------------------------------------------------------------------------------------------------
# Whole data sets: pair dev groups with test groups, score, fit on dev, predict test
# --------------------------------------------------------------------------------------------------

REFERENCES = ("pool", "dev")


@dataclass
class GroupRun:
    group: str                          # the scored group (e.g. folder_1)
    dev_group: str | None               # the dev group its threshold and column choice come from
    result: MembershipResult            # scores of the group's real images
    dev_result: MembershipResult | None
    primary: str                        # the score column behind the predictions
    threshold: ThresholdFit
    predictions: pd.Series              # image_id -> 0/1
    verdict: LeakageVerdict             # the gate: dev rank test when dev labels exist, else data-copying test
    copying_verdict: LeakageVerdict     # label-free data-copying test on the scored group itself
    #: the generator-free baseline that separates the labels best (dev labels, else own labels), or None
    baseline: tuple[str, LeakageVerdict] | None = None


def _group_number(name: str) -> str | None:
    import re

    match = re.search(r"(\d+)$", str(name))
    return match.group(1) if match else None


def pair_groups(test_groups: Sequence[str], dev_groups: Sequence[str]) -> dict[str, str]:
    """Dev group for each test group: same name, else same trailing number (model_2 <-> folder_2), else the
    single dev group when there is only one."""
    pairs = {}
    for group in test_groups:
        if group in dev_groups:
            pairs[group] = group
            continue
        number = _group_number(group)
        matches = [d for d in dev_groups if number is not None and _group_number(d) == number]
        if len(matches) == 1:
            pairs[group] = matches[0]
        elif len(dev_groups) == 1:
            pairs[group] = dev_groups[0]
        else:
            raise ValueError(f"cannot tell which dev group pairs with test group {group!r}; dev groups: "
                             f"{', '.join(dev_groups)} (name them alike, e.g. model_2 and folder_2)")
    return pairs


def _space_matrix(dataset, spaces, cache, device, progress) -> dict[str, np.ndarray]:
    return {s: dataset_space_features(dataset, s, cache=cache, device=device, progress=progress) for s in spaces}


def _group_rows(dataset, group: str) -> tuple[np.ndarray, np.ndarray]:
    m = dataset.manifest
    in_group = (m["group"] == group).to_numpy()
    real = np.flatnonzero(in_group & (m["role"] == "real").to_numpy())
    gen = np.flatnonzero(in_group & (m["role"] == "generated").to_numpy())
    if len(real) == 0 or len(gen) == 0:
        raise ValueError(f"group {group!r} needs both real and generated images (has {len(real)} real, "
                         f"{len(gen)} generated)")
    return real, gen


def _used_labels(dataset, rows) -> np.ndarray | None:
    labels = dataset.manifest["label"].to_numpy()[rows]
    if not np.isin(labels, ["used", "not_used"]).all():
        return None
    return (labels == "used").astype(int)


def run_membership(dataset, dev=None, *, spaces: Sequence[str] = DEFAULT_SPACES, scores: Sequence[str] = SCORES,
                   primary: str = "ensemble", objective: str = "f1", prevalence: float | None = None,
                   reference: str = "pool", alpha: float = 0.05, cache=None, device: str = "auto",
                   progress: bool = False, features=None, dev_features=None, **scorer_params) -> list[GroupRun]:
    """Membership for every group of `dataset` (e.g. a test folder), with thresholds fit on `dev`.

    primary: a score column ("ensemble", "pixels-norm:distance", ...) or "auto" = the column with the
    highest AUC on the dev labels (the dev verdict is then Bonferroni-corrected for the choice).
    reference: "pool" = calibrate each group against its own real images leave-one-out; "dev" = against
    the paired dev group's real images (and the dev group against this group's real images), no labels used.
    `features` / `dev_features` ({space: matrix row-aligned with the manifest}) skip the extractors.
    Labels of `dataset` are used only when no dev is given and they exist (then it is evaluated on itself).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}")
    if dev is None and reference == "dev":
        raise ValueError("reference='dev' needs a dev data set")
    features = features or _space_matrix(dataset, spaces, cache, device, progress)
    if dev is not None:
        dev_features = dev_features or _space_matrix(dev, spaces, cache, device, progress)
    feature_scores = [s for s in scores if s not in IMAGE_SCORES]
    unknown = [s for s in scores if s not in SCORES + IMAGE_SCORES]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; choose from {', '.join(SCORES + IMAGE_SCORES)}")
    with_registered = "registered" in scores

    def score_group(data, feats, real_rows, gen_rows, ref, ids, used, chosen):
        real = {s: feats[s][real_rows] for s in spaces}
        gen = {s: feats[s][gen_rows] for s in spaces}
        result = score_membership(real, gen, ref, ids=ids, scores=feature_scores or ("distance",), used=used,
                                  primary="ensemble", alpha=alpha, **scorer_params)
        if not feature_scores:
            result.scores = result.scores.drop(columns=[c for c in result.scores.columns if c != "ensemble"])
        if with_registered:
            # candidates are searched in 64 px standardised pixels whatever the spaces, so the column
            # means the same in every configuration
            result.scores.insert(len(result.scores.columns) - 1, "images:registered", registered_copy_score(
                data.images(real_rows), data.images(gen_rows)))
            result.scores["ensemble"] = rank_ensemble(result.scores,
                                                      default_ensemble_columns(result.scores.columns))
            if used is not None:
                result.verdicts = {c: rank_test(result.scores[c].to_numpy(), used, alpha=alpha)
                                   for c in result.scores.columns}
        if chosen is not None:
            if chosen not in result.scores.columns:
                raise ValueError(f"unknown score column {chosen!r}; available: {', '.join(result.scores.columns)}")
            result.primary = chosen
            if used is not None:
                result.verdict = result.verdicts[chosen]
        return result

    groups = sorted(dataset.manifest.loc[dataset.manifest["role"] == "real", "group"].unique())
    pairs = pair_groups(groups, sorted(dev.manifest["group"].unique())) if dev is not None else {}
    runs = []
    for group in groups:
        real_rows, gen_rows = _group_rows(dataset, group)
        ids = dataset.manifest["image_id"].to_numpy()[real_rows]
        real = {s: features[s][real_rows] for s in spaces}
        gen = {s: features[s][gen_rows] for s in spaces}
        dev_result, dev_group = None, pairs.get(group)
        if dev is not None:
            dev_real_rows, dev_gen_rows = _group_rows(dev, dev_group)
            dev_used = _used_labels(dev, dev_real_rows)
            if dev_used is None or dev_used.min() == dev_used.max():
                raise ValueError(f"dev group {dev_group!r} needs real images labelled both used and not used")
            dev_real = {s: dev_features[s][dev_real_rows] for s in spaces}
            dev_gen = {s: dev_features[s][dev_gen_rows] for s in spaces}
            dev_result = score_group(dev, dev_features, dev_real_rows, dev_gen_rows,
                                     real if reference == "dev" else None,
                                     dev.manifest["image_id"].to_numpy()[dev_real_rows], dev_used, None)
            chosen = primary
            n_tests = 1
            if primary == "auto":
                chosen = max(dev_result.verdicts, key=lambda c: dev_result.verdicts[c].statistic)
                n_tests = len(dev_result.verdicts)
            if chosen not in dev_result.scores.columns:
                raise ValueError(f"unknown score column {chosen!r}; available: {', '.join(dev_result.scores.columns)}")
            gate = with_baseline_caveat(
                rank_test(dev_result.scores[chosen].to_numpy(), dev_used, alpha=alpha, n_tests=n_tests),
                dev_result.best_baseline)
            baseline = dev_result.best_baseline
            threshold = fit_threshold(dev_result.scores[chosen].to_numpy(), dev_used, objective)
            result = score_group(dataset, features, real_rows, gen_rows, dev_real if reference == "dev" else None,
                                 ids, None, chosen)
            copying = result.verdict
        else:
            own_used = _used_labels(dataset, real_rows)
            chosen = "ensemble" if primary == "auto" else primary
            result = score_group(dataset, features, real_rows, gen_rows, None, ids, None, chosen)
            copying = leakage_test(real=real[spaces[0]], generated=gen[spaces[0]], alpha=alpha)
            gate, baseline = copying, None
            if own_used is not None and own_used.min() != own_used.max():
                baseline = best_baseline(result.baseline, own_used, alpha=alpha)
                gate = with_baseline_caveat(rank_test(result.scores[chosen].to_numpy(), own_used, alpha=alpha),
                                            baseline)
            threshold = fit_threshold(result.scores[chosen].to_numpy(), None, prevalence=prevalence)
        values = result.scores[chosen].to_numpy()
        if dev is not None and prevalence is not None:
            threshold = fit_threshold(values, None, prevalence=prevalence)
        predictions = pd.Series((values >= threshold.threshold).astype(int), index=pd.Index(ids, name="image_id"),
                                name="used")
        runs.append(GroupRun(group, dev_group, result, dev_result, chosen, threshold, predictions, gate, copying,
                             baseline))
    return runs
