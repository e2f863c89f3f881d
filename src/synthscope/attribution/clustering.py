"""Label-free clustering of generated images and the label-free choice of view and algorithm.

- `ViewReducer`: standardise a feature view, give each block of it (e.g. the fingerprint's spectrum,
  radial profile, peaks, autocorrelation, intensity statistics) equal total weight, reduce with PCA.
- `FingerprintClustering`: k-means, Gaussian mixture, agglomerative Ward and spectral clustering on every
  view; with `method="auto"` the view and algorithm are chosen without labels, by resampling stability
  (mean ARI between clusterings of `N_RESAMPLES` 80 % subsamples and the full clustering; Lange et al.
  2004, Ben-Hur et al. 2002): in one view the most stable candidate, the silhouette breaking exact ties.
  `selection_` is the table the choice was made from.
  `method="consensus"` clusters the co-association matrix of the stable candidates (Fred & Jain 2005).
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from synthscope.runtime import small_input_threads

ALGORITHMS = ("kmeans", "gmm", "ward", "spectral")
#: beyond this many points spectral clustering and Ward (quadratic memory) are left out of "auto"
MAX_QUADRATIC_POINTS = 12_000
#: explicit Ward beyond this many points would need tens of GB
MAX_WARD_POINTS = 40_000
#: beyond this many points the consensus co-association matrix (n x n) does not fit comfortably
MAX_CONSENSUS_POINTS = 6_000
#: subsamples behind each candidate's stability. From 10, the estimate was too noisy to rank candidates
#: by: a Gaussian mixture on bench v1's 600 test images read 1.000 from 10 resamples and 0.94-0.98 from 30
#: under three resampling seeds, while spectral read 0.997 and 0.996-0.998 (no labels involved). 30 costs
#: three times the resampling.
N_RESAMPLES = 30


def blocks_for_view(view: str, n_features: int) -> dict[str, slice] | None:
    """The fingerprint extractor's named blocks, when `view` is its output (so blocks get equal weight)."""
    if view != "fingerprint":
        return None
    from synthscope.features.fingerprint import FingerprintExtractor

    blocks = FingerprintExtractor().block_slices()
    return blocks if max(s.stop for s in blocks.values()) == n_features else None


class ViewReducer(BaseEstimator, TransformerMixin):
    """Standardise, weight blocks equally, then PCA to `n_components` (capped by the data's rank).

    Equal block weights keep a 544-value spectrum from drowning a 14-value set of intensity statistics:
    after standardising, each block is divided by sqrt(its width), so every block carries the same
    total variance into the PCA.
    """

    def __init__(self, n_components: int = 8, blocks: Mapping[str, slice] | None = None, random_state: int = 0):
        self.n_components = n_components
        self.blocks = blocks
        self.random_state = random_state

    def _weights(self, n_features: int) -> np.ndarray:
        weights = np.ones(n_features)
        for block in (self.blocks or {}).values():
            width = len(range(*block.indices(n_features)))
            weights[block] = 1.0 / np.sqrt(max(width, 1))
        return weights

    def fit(self, X, y=None):
        X = check_features(X)
        self.scaler_ = StandardScaler().fit(X)
        self.weights_ = self._weights(X.shape[1])
        scaled = self.scaler_.transform(X) * self.weights_
        n_components = max(1, min(self.n_components, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(scaled)
        return self

    def transform(self, X):
        X = check_features(X)
        return self.pca_.transform(self.scaler_.transform(X) * self.weights_)


def check_features(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"expected a feature matrix [n, d] with n > 0; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinite values")
    return X


#: below this many points clustering runs single-threaded: OpenMP threads spin-wait on a busy 2-core
#: machine and made k-means 50x slower (4.9 s instead of 0.08 s for 600 points) in our measurements


def cluster_once(Z: np.ndarray, k: int, method: str, random_state: int = 0) -> np.ndarray:
    """Labels 0..k-1 from one algorithm on reduced features Z."""
    if k < 1 or k > len(Z):
        raise ValueError(f"k must be between 1 and the number of images ({len(Z)}); got {k}")
    with small_input_threads(len(Z)):
        return _cluster(Z, k, method, random_state)


def _cluster(Z: np.ndarray, k: int, method: str, random_state: int) -> np.ndarray:
    if method == "kmeans":
        return KMeans(k, n_init=10, random_state=random_state).fit_predict(Z)
    if method == "gmm":
        return GaussianMixture(k, covariance_type="full", n_init=3, reg_covar=1e-4,
                               random_state=random_state).fit_predict(Z)
    if method == "ward":
        return AgglomerativeClustering(k, linkage="ward").fit_predict(Z)
    if method == "spectral":
        n_neighbors = int(min(max(10, np.sqrt(len(Z))), len(Z) - 1))
        with warnings.catch_warnings():
            # a kNN graph with well-separated generators is disconnected by design; that is not an error
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=n_neighbors,
                                      assign_labels="cluster_qr", random_state=random_state).fit_predict(Z)
    raise ValueError(f"unknown clustering method {method!r}; use one of {', '.join(ALGORITHMS)}")


def resampling_stability(Z: np.ndarray, k: int, method: str, *, n_resamples: int = N_RESAMPLES, fraction: float = 0.8,
                         random_state: int = 0, reference: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and std of ARI between the clustering of a random subsample and the full clustering on it."""
    rng = np.random.default_rng(random_state)
    if reference is None:
        reference = cluster_once(Z, k, method, random_state)
    size = max(k + 1, int(round(fraction * len(Z))))
    scores = []
    for i in range(n_resamples):
        rows = np.sort(rng.choice(len(Z), size=min(size, len(Z)), replace=False))
        labels = cluster_once(Z[rows], k, method, random_state + 1 + i)
        scores.append(adjusted_rand_score(reference[rows], labels))
    return float(np.mean(scores)), float(np.std(scores))


def _silhouette(Z: np.ndarray, labels: np.ndarray, random_state: int) -> float:
    if len(np.unique(labels)) < 2:
        return float("nan")
    sample = min(len(Z), 4000)   # silhouette is quadratic; a fixed-seed sample estimates it well
    return float(silhouette_score(Z, labels, sample_size=sample if sample < len(Z) else None,
                                  random_state=random_state))


def coassociation_consensus(labelings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Average-linkage clustering of 1 - (fraction of labelings that put two images together)."""
    labelings = [np.asarray(labels) for labels in labelings]
    n = len(labelings[0])
    if n > MAX_CONSENSUS_POINTS:
        raise ValueError(f"consensus clustering builds an n x n matrix; {n} images exceed {MAX_CONSENSUS_POINTS}")
    together = np.zeros((n, n), dtype=np.float32)
    for labels in labelings:
        together += labels[:, None] == labels[None, :]
    distance = 1.0 - together / len(labelings)
    return AgglomerativeClustering(k, metric="precomputed", linkage="average").fit_predict(distance)


class FingerprintClustering(BaseEstimator, ClusterMixin):
    """Cluster images into k generators from one or more feature views.

    method: one of ALGORITHMS, "auto" (label-free choice of view and algorithm: in one view, the most
    stable candidate, the silhouette breaking exact ties; when the candidates within `stability_tolerance`
    of the best come from several views, the one of them that agrees best (mean ARI) with the others) or
    "consensus" (co-association over all candidates whose stability is within the tolerance).
    `fit(features_by_view)` takes {view name: float [n, d]} (or one array, named after views[0]).
    """

    def __init__(self, k: int, method: str = "auto", views: Sequence[str] = ("fingerprint",), n_components: int = 8,
                 n_resamples: int = N_RESAMPLES, stability_tolerance: float = 0.02, random_state: int = 0):
        self.k = k
        self.method = method
        self.views = views
        self.n_components = n_components
        self.n_resamples = n_resamples
        self.stability_tolerance = stability_tolerance
        self.random_state = random_state

    def _features(self, features_by_view) -> dict[str, np.ndarray]:
        if not isinstance(features_by_view, Mapping):
            features_by_view = {list(self.views)[0]: features_by_view}
        wanted = [v for v in self.views if v in features_by_view] or list(features_by_view)
        features = {view: check_features(features_by_view[view]) for view in wanted}
        sizes = {len(x) for x in features.values()}
        if len(sizes) != 1:
            raise ValueError(f"every view must have one row per image; got row counts {sorted(sizes)}")
        return features

    def fit(self, features_by_view, y=None):
        if self.method not in (*ALGORITHMS, "auto", "consensus"):
            raise ValueError(f"unknown method {self.method!r}; use auto, consensus or one of {', '.join(ALGORITHMS)}")
        features = self._features(features_by_view)
        n = len(next(iter(features.values())))
        if not 1 <= self.k <= n:
            raise ValueError(f"k must be between 1 and the number of images ({n}); got {self.k}")
        methods = ALGORITHMS if self.method in ("auto", "consensus") else (self.method,)
        if self.method in ("auto", "consensus") and n > MAX_QUADRATIC_POINTS:
            methods = ("kmeans", "gmm")
        if self.method == "ward" and n > MAX_WARD_POINTS:
            raise ValueError(f"Ward clustering needs memory quadratic in the number of images; {n} exceed "
                             f"{MAX_WARD_POINTS}: use kmeans or gmm")
        self.reducers_, self.reduced_, rows, labelings = {}, {}, [], {}
        for view, X in features.items():
            reducer = ViewReducer(self.n_components, blocks_for_view(view, X.shape[1]), self.random_state).fit(X)
            Z = reducer.transform(X)
            self.reducers_[view], self.reduced_[view] = reducer, Z
            for method in methods:
                labels = cluster_once(Z, self.k, method, self.random_state)
                labelings[(view, method)] = labels
                row = {"view": view, "method": method, "silhouette": _silhouette(Z, labels, self.random_state),
                       "n_components": Z.shape[1]}
                if len(methods) * len(features) > 1 and self.k > 1:
                    row["stability"], row["stability_std"] = resampling_stability(
                        Z, self.k, method, n_resamples=self.n_resamples, random_state=self.random_state,
                        reference=labels)
                else:
                    row["stability"], row["stability_std"] = float("nan"), float("nan")
                rows.append(row)
        table = pd.DataFrame(rows, columns=["view", "method", "stability", "stability_std", "silhouette",
                                            "n_components"])
        table["agreement"] = float("nan")
        table["chosen"] = False
        if len(table) == 1:
            chosen = [0]
        else:
            best = table["stability"].max()
            stable = list(table.index[table["stability"] >= best - self.stability_tolerance])
            if self.method == "consensus":
                chosen = stable
            elif table.loc[stable, "view"].nunique() > 1:
                # silhouettes of different feature spaces are not comparable; agreement (mean ARI with the
                # other stable candidates) is: the labelling most of the good ones corroborate
                keys = {i: (table.at[i, "view"], table.at[i, "method"]) for i in stable}
                for i in stable:
                    table.at[i, "agreement"] = float(np.mean([adjusted_rand_score(labelings[keys[i]], labelings[keys[j]])
                                                              for j in stable if j != i]))
                chosen = [table.loc[stable].sort_values(["agreement", "silhouette"], ascending=False).index[0]]
            else:
                chosen = [most_stable(table)]
        table.loc[list(chosen), "chosen"] = True
        self.selection_ = table.sort_values(["stability", "silhouette"], ascending=False).reset_index(drop=True)
        if self.method == "consensus" and len(chosen) > 1:
            picks = [labelings[(table.at[i, "view"], table.at[i, "method"])] for i in chosen]
            self.labels_ = coassociation_consensus(picks, self.k)
            self.chosen_ = {"view": "+".join(sorted(set(table.loc[chosen, "view"]))), "method": "consensus"}
        else:
            i = chosen[0]
            self.labels_ = labelings[(table.at[i, "view"], table.at[i, "method"])]
            self.chosen_ = {"view": table.at[i, "view"], "method": table.at[i, "method"]}
        self.labels_ = _relabel_by_size(self.labels_)
        return self

    @property
    def chosen_views_(self) -> list[str]:
        """The view(s) the chosen labelling was found in (consensus: several, side by side)."""
        return str(self.chosen_["view"]).split("+")

    def transform(self, features_by_view) -> np.ndarray:
        """Rows in the space the chosen labelling was found in: each chosen view's fitted `ViewReducer`
        (standardise, block weights, PCA), consensus views side by side. On the rows the model was fit on
        this is `reduced_` of those views; other rows (e.g. dev images) land in the same space."""
        if not isinstance(features_by_view, Mapping):
            features_by_view = {self.chosen_views_[0]: features_by_view}
        missing = [v for v in self.chosen_views_ if v not in features_by_view]
        if missing:
            raise ValueError(f"the clustering was found in the {', '.join(missing)} features; they were not given")
        return np.hstack([self.reducers_[v].transform(features_by_view[v]) for v in self.chosen_views_])

    def predict(self, features_by_view) -> np.ndarray:
        """The cluster of each (new) row: the nearest mean of the clusters of `labels_`, in the space they
        were found in (`transform`). How the dashboard places dev images beside the clusters of test."""
        from sklearn.metrics import pairwise_distances_argmin

        fitted = np.hstack([self.reduced_[v] for v in self.chosen_views_])
        clusters = np.unique(self.labels_)
        centres = np.stack([fitted[self.labels_ == c].mean(axis=0) for c in clusters])
        return clusters[pairwise_distances_argmin(self.transform(features_by_view), centres)].astype(np.int64)

    def space_description(self) -> str:
        """Which space and algorithm the labels come from, e.g. "fingerprint, gmm, 8 components"."""
        components = sum(int(self.reducers_[v].pca_.n_components_) for v in self.chosen_views_)
        return f"{self.chosen_['view']}, {self.chosen_['method']}, {components} components"

    def describe(self) -> str:
        """One paragraph + table: what was chosen and why."""
        stable = f"the most stable candidates (resampling ARI within {self.stability_tolerance:.2f} of the best)"
        several_views = self.selection_.loc[self.selection_["agreement"].notna(), "view"].nunique() > 1
        auto = (f"{stable}, then the highest agreement (mean ARI) with the other stable candidates, as they span "
                "several feature spaces" if several_views else
                f"the most stable candidate (mean ARI over {self.n_resamples} resamples of 80 %), the silhouette "
                "breaking exact ties")
        rule = {"auto": auto, "consensus": f"co-association consensus of {stable}"}.get(self.method, "fixed by the user")
        lines = [f"chosen: view={self.chosen_['view']} method={self.chosen_['method']} (k={self.k}; rule: {rule})",
                 self.selection_.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
        return "\n".join(lines)


def most_stable(table: pd.DataFrame):
    """Index of the candidate with the highest resampling stability; among exact ties (e.g. several at 1.000,
    up to float rounding) the highest silhouette. Stability is the model-selection criterion of Ben-Hur et
    al. (2002) and Lange et al. (2004); a near-equal silhouette (the candidates of one view often differ by a
    few images and their silhouettes by less than the silhouette's own resampling spread) does not override it."""
    key = pd.DataFrame({"stability": table["stability"].round(12), "silhouette": table["silhouette"]}, index=table.index)
    return key.sort_values(["stability", "silhouette"], ascending=False, kind="stable").index[0]


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster ids 0..k-1 ordered by decreasing size (ties by first appearance), for stable output."""
    labels = np.asarray(labels)
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], first[i]))
    mapping = {values[i]: new for new, i in enumerate(order)}
    return np.array([mapping[v] for v in labels], dtype=np.int64)
