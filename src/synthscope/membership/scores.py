"""Per-image membership scores on one feature matrix (MembershipScorer): distance, adjusted, GAN-Leaks, DOMIAS, copies; near-duplicate (scan) groups."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from synthscope.membership.neighbours import APPROX_THRESHOLD, _as_matrix, intrinsic_dimension, knn
from synthscope.membership.rows import streamed_knn


SCORES = ("distance", "adjusted", "gan_leaks", "domias", "copies")


#: near-duplicate radius as a fraction of the pool's median pairwise distance: iqoth256 links adjacent
#: slices of one scan below 6.0 where two random images are about 11 apart (64 px, grey levels in 0..1)
NEAR_DUPLICATE_RATIO = 0.55


@dataclass
class PoolScores:
    """What `MembershipScorer.score_pool` returns: the scores and the calibration that produced them. In
    leave-one-out mode the calibration comes from the scored pool itself, so it belongs to the call, not
    to the fitted scorer."""
    scores: pd.DataFrame             # one column per score, one row per scored real image
    eps: float                       # copy radius (quantile of the reference's nearest-neighbour distances)
    intrinsic_dim: float             # Levina-Bickel estimate on the reference
    near_duplicate_radius: float     # neighbours closer than this are skipped by the calibrated scores
    pool_baseline: np.ndarray        # generator-free baseline per scored row (minus the nearest other real)
    reference_mode: str              # "leave-one-out" | "reference set"


class MembershipScorer(BaseEstimator):
    """Membership scores for real images in one feature space (a scikit-learn estimator).

    fit(generated, reference=None) keeps the generated set (a matrix, or a `FeatureRows` that the searches read a
    chunk at a time, keeping a running top-k per real image) and, when given, a reference set of real
    images disjoint from the pool that will be scored (then its calibration -- near-duplicate radius,
    copy radius, intrinsic dimension -- is learned at fit and ends in `_`). score(real) returns a
    DataFrame with one column per score; score_pool(real) returns it with the calibration it used.
    Without a reference, scoring uses the scored pool itself leave-one-out, so the calibration is a
    property of that call and is returned, never stored on the estimator.
    """

    def __init__(self, scores: Sequence[str] = SCORES, n_neighbors: int = 1, density_k: int = 5,
                 eps_quantile: float = 0.05, max_copies: int = 20,
                 near_duplicate_ratio: float | None = NEAR_DUPLICATE_RATIO, max_near_duplicates: int = 48,
                 approx_threshold: int = APPROX_THRESHOLD, random_state: int = 0):
        self.scores = scores
        self.n_neighbors = n_neighbors
        self.density_k = density_k
        self.eps_quantile = eps_quantile
        self.max_copies = max_copies
        self.near_duplicate_ratio = near_duplicate_ratio
        self.max_near_duplicates = max_near_duplicates
        self.approx_threshold = approx_threshold
        self.random_state = random_state

    def _check(self) -> tuple[str, ...]:
        scores = (self.scores,) if isinstance(self.scores, str) else tuple(self.scores)
        unknown = [s for s in scores if s not in SCORES]
        if unknown or not scores:
            raise ValueError(f"unknown score(s) {unknown}; choose from {', '.join(SCORES)}")
        if self.n_neighbors < 1 or self.density_k < 2 or self.max_copies < 1:
            raise ValueError("n_neighbors >= 1, density_k >= 2 and max_copies >= 1 are required")
        if not 0 < self.eps_quantile < 1:
            raise ValueError("eps_quantile must be in (0, 1)")
        if self.near_duplicate_ratio is not None and not self.near_duplicate_ratio > 0:
            raise ValueError("near_duplicate_ratio must be positive (or None to keep near duplicates)")
        return scores

    def fit(self, generated, reference=None) -> "MembershipScorer":
        from synthscope.membership.rows import FeatureRows

        self.scores_ = self._check()
        # a FeatureRows (e.g. read from the cache) stays lazy: the searches stream it a chunk at a time
        self.generated_ = generated if isinstance(generated, FeatureRows) else _as_matrix(generated, "generated")
        if len(self.generated_) == 0:
            raise ValueError("generated: no vectors")
        self.reference_ = None if reference is None else _as_matrix(reference, "reference")
        if self.reference_ is not None and self.reference_.shape[1] != self.generated_.shape[1]:
            raise ValueError("reference and generated features have different dimensions")
        self.reference_mode_ = "leave-one-out" if self.reference_ is None else "reference set"
        if self.reference_ is not None:
            if len(self.reference_) < 2:
                raise ValueError("the reference set needs at least 2 real images")
            self.near_duplicate_radius_ = near_duplicate_radius(self.reference_, self.near_duplicate_ratio,
                                                                self.random_state)
            k_self = max(2, min(self.density_k, len(self.reference_) - 1))
            self_dist, _ = self._knn(self.reference_, self.reference_, k_self, exclude_self=True)
            self.eps_, self.intrinsic_dim_ = self._spacing(self_dist)
        return self

    def _knn(self, query, data, k, exclude_self=False):
        return knn(query, data, k, exclude_self=exclude_self, approx_threshold=self.approx_threshold,
                   random_state=self.random_state)

    def _spacing(self, self_dist: np.ndarray) -> tuple[float, float]:
        """Copy radius and intrinsic dimension from the reference's own neighbour distances."""
        eps = float(np.quantile(self_dist[:, 0], self.eps_quantile))
        dim = float(np.clip(np.nan_to_num(intrinsic_dimension(self_dist), nan=1.0), 1.0, self.generated_.shape[1]))
        return eps, dim

    def score(self, real) -> pd.DataFrame:
        return self.score_pool(real).scores

    def score_pool(self, real) -> PoolScores:
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
        k_gen = max(self.n_neighbors, self.density_k, self.max_copies if "copies" in self.scores_ else 1)
        gen_dist, _ = streamed_knn(real, self.generated_, k_gen, approx_threshold=self.approx_threshold,
                                   random_state=self.random_state)
        k_ref = max(2, self.n_neighbors, self.density_k)
        radius = (near_duplicate_radius(reference, self.near_duplicate_ratio, self.random_state) if leave_one_out
                  else self.near_duplicate_radius_)
        n_excludable = self.max_near_duplicates if radius > 0 else 0
        wide_dist, _ = self._knn(real, reference, k_ref + n_excludable, exclude_self=leave_one_out)
        ref_dist = wide_dist[:, :k_ref]
        calib_dist = _beyond_radius(wide_dist, radius, k_ref)
        k_self = max(2, min(self.density_k, n_reference))
        eps, intrinsic_dim = self._spacing(ref_dist[:, :k_self]) if leave_one_out else (self.eps_,
                                                                                        self.intrinsic_dim_)
        out = {}
        m = min(self.n_neighbors, gen_dist.shape[1], ref_dist.shape[1])
        d_gen = gen_dist[:, :m].mean(axis=1).astype(np.float64)
        for name in self.scores_:
            if name == "distance":
                out[name] = -d_gen
            elif name == "adjusted":
                out[name] = _structure_adjusted(d_gen, ref_dist[:, :k_self].mean(axis=1))
            elif name == "gan_leaks":
                out[name] = calib_dist[:, :m].mean(axis=1).astype(np.float64) - d_gen
            elif name == "domias":
                k = min(self.density_k, gen_dist.shape[1], calib_dist.shape[1])
                r_gen = np.maximum(gen_dist[:, k - 1].astype(np.float64), 1e-12)
                r_ref = np.maximum(calib_dist[:, k - 1].astype(np.float64), 1e-12)
                out[name] = (math.log(n_reference / len(self.generated_))
                             + intrinsic_dim * (np.log(r_ref) - np.log(r_gen)))
            elif name == "copies":
                count = (gen_dist < eps).sum(axis=1).astype(np.float64)
                nearest = gen_dist[:, 0].astype(np.float64)
                # tie-break in [0, 0.5) for count 0 and [0.5, 1) otherwise: order stays count-first
                out[name] = count + eps / (eps + nearest + 1e-12) * 0.999
        return PoolScores(pd.DataFrame(out), eps, intrinsic_dim, radius, -ref_dist[:, 0].astype(np.float64),
                          "leave-one-out" if leave_one_out else "reference set")


def near_duplicate_radius(reference: np.ndarray, ratio: float | None, random_state: int = 0) -> float:
    """`ratio` x the median distance between random pairs of reference images (0 = off)."""
    if ratio is None:
        return 0.0
    rng = np.random.default_rng(random_state)
    n_pairs = min(4000, len(reference) * (len(reference) - 1) // 2)
    a = rng.integers(0, len(reference), n_pairs)
    b = (a + rng.integers(1, len(reference), n_pairs)) % len(reference)   # never a == b
    median = float(np.median(np.linalg.norm(reference[a] - reference[b], axis=1)))
    return ratio * median


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


#: scan groups (runs of neighbouring slices): single linkage below this fraction of the median pairwise distance
#: in 64 px grey levels. Chosen against the pool's known scans (shared/data/iqoth256/near_duplicate_groups.csv),
#: never against membership labels: adjusted Rand index with the true scans 0.97 on v3's test folder and 0.80 on
#: its dev folder, against 0.80 and 0.42 at the scorer's 0.55, which cut scans into fragments
SCAN_GROUP_RATIO = 0.7
#: a component larger than this is split again at a tighter radius: single linkage chains distinct scans in
#: large folders (one component of 144 images in v1's 534-image folder); no scan of the pool has more than 40
MAX_SCAN_GROUP = 48


def near_duplicate_groups(features, *, ratio: float = SCAN_GROUP_RATIO, random_state: int = 0,
                          max_size: int = MAX_SCAN_GROUP) -> np.ndarray:
    """Group label per image: connected components of the "closer than `ratio` x the median pairwise
    distance" graph, i.e. runs of neighbouring slices of one scan (label-free). Components of more than
    `max_size` images are split again at 0.9 x the radius, until none is (or the radius has shrunk to half)."""
    features = _as_matrix(features, "features")
    if len(features) < 2:
        return np.zeros(len(features), dtype=int)
    radius = near_duplicate_radius(features, ratio, random_state)
    labels = np.full(len(features), -1)
    pending, next_label = [(np.arange(len(features)), radius)], 0
    while pending:
        rows, r = pending.pop()
        parts = _components(features[rows], r)
        for part in np.unique(parts):
            members = rows[parts == part]
            if len(members) > max_size and r * 0.9 >= radius * 0.5:
                pending.append((members, r * 0.9))
            else:
                labels[members] = next_label
                next_label += 1
    return pd.factorize(labels)[0]


def _components(features: np.ndarray, radius: float) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    if len(features) < 2:
        return np.zeros(len(features), dtype=int)
    graph = radius_neighbors_graph(features, radius, mode="connectivity", include_self=False)
    return connected_components(graph, directed=False)[1]
