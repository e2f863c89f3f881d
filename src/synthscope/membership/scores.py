"""Per-image membership scores on one feature matrix (MembershipScorer): distance, adjusted, GAN-Leaks, DOMIAS, copies; near-duplicate (scan) groups."""

from __future__ import annotations

import math
from typing import Sequence
import numpy as np
import pandas as pd

from synthscope.membership.neighbours import APPROX_THRESHOLD, _as_matrix, intrinsic_dimension, knn


SCORES = ("distance", "adjusted", "gan_leaks", "domias", "copies")


#: near-duplicate radius as a fraction of the pool's median pairwise distance: iqoth256 links adjacent
#: slices of one scan below 6.0 where two random images are about 11 apart (64 px, grey levels in 0..1)
NEAR_DUPLICATE_RATIO = 0.55


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

