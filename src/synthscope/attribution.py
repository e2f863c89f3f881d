"""Sub-task 2: group generated images by the generator that made them, and show each group's fingerprint.

- `ViewReducer`: standardise a feature view, give each block of it (e.g. the fingerprint's spectrum,
  radial profile, peaks, autocorrelation, intensity statistics) equal total weight, reduce with PCA.
- `FingerprintClustering`: k-means, Gaussian mixture, agglomerative Ward and spectral clustering on every
  view; with `method="auto"` the view and algorithm are chosen without labels, by resampling stability
  (mean ARI between clusterings of 80 % subsamples and the full clustering; Lange et al. 2004, Ben-Hur
  et al. 2002) and then silhouette. `selection_` is the table the choice was made from.
  `method="consensus"` clusters the co-association matrix of the stable candidates (Fred & Jain 2005).
- `SeededClustering`: 2024 setting, dev folders label some generators; their means seed k-means and the
  remaining centres start on test points far from them, so an unseen generator gets its own cluster.
- `SubsetClassifier`: 2025 setting, a classifier fit on dev assigns test images to training subsets.
- `cluster_fingerprints`: per cluster, the mean noise residual, the mean log power spectrum and the
  frequencies where the cluster differs most from the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthscope.features.fingerprint import log_power_spectrum, noise_residual
from synthscope.runtime import SINGLE_THREAD_BELOW, small_input_threads  # noqa: F401  (one thread rule, shared)

ALGORITHMS = ("kmeans", "gmm", "ward", "spectral")
#: beyond this many points spectral clustering and Ward (quadratic memory) are left out of "auto"
MAX_QUADRATIC_POINTS = 12_000
#: explicit Ward beyond this many points would need tens of GB
MAX_WARD_POINTS = 40_000
#: beyond this many points the consensus co-association matrix (n x n) does not fit comfortably
MAX_CONSENSUS_POINTS = 6_000


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
        X = _check_features(X)
        self.scaler_ = StandardScaler().fit(X)
        self.weights_ = self._weights(X.shape[1])
        scaled = self.scaler_.transform(X) * self.weights_
        n_components = max(1, min(self.n_components, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(scaled)
        return self

    def transform(self, X):
        X = _check_features(X)
        return self.pca_.transform(self.scaler_.transform(X) * self.weights_)


def _check_features(X) -> np.ndarray:
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


def resampling_stability(Z: np.ndarray, k: int, method: str, *, n_resamples: int = 10, fraction: float = 0.8,
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

    method: one of ALGORITHMS, "auto" (label-free choice of view and algorithm: the most stable
    candidates, within `stability_tolerance` of the best, and among those the highest silhouette, or,
    when they come from several views, the one that agrees best (mean ARI) with the others) or
    "consensus" (co-association over all candidates whose stability is within the tolerance).
    `fit(features_by_view)` takes {view name: float [n, d]} (or one array, named after views[0]).
    """

    def __init__(self, k: int, method: str = "auto", views: Sequence[str] = ("fingerprint",), n_components: int = 8,
                 n_resamples: int = 10, stability_tolerance: float = 0.02, random_state: int = 0):
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
        features = {view: _check_features(features_by_view[view]) for view in wanted}
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
                chosen = [table.loc[stable, "silhouette"].idxmax()]
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

    def describe(self) -> str:
        """One paragraph + table: what was chosen and why."""
        stable = f"the most stable candidates (resampling ARI within {self.stability_tolerance:.2f} of the best)"
        several_views = self.selection_.loc[self.selection_["agreement"].notna(), "view"].nunique() > 1
        tie_break = ("the highest agreement (mean ARI) with the other stable candidates, as they span several "
                     "feature spaces" if several_views else "the highest silhouette")
        rule = {"auto": f"{stable}, then {tie_break}",
                "consensus": f"co-association consensus of {stable}"}.get(self.method, "fixed by the user")
        lines = [f"chosen: view={self.chosen_['view']} method={self.chosen_['method']} (k={self.k}; rule: {rule})",
                 self.selection_.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
        return "\n".join(lines)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster ids 0..k-1 ordered by decreasing size (ties by first appearance), for stable output."""
    labels = np.asarray(labels)
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], first[i]))
    mapping = {values[i]: new for new, i in enumerate(order)}
    return np.array([mapping[v] for v in labels], dtype=np.int64)


class SeededClustering(BaseEstimator, ClusterMixin):
    """2024 semi-supervised setting: known generators from dev seed the clusters; the rest start far away.

    The reducer is fit on dev and test together. Each known generator's dev mean is a starting centre;
    the remaining k - n_known centres start on test points chosen k-means++-style (probability grows with
    the squared distance to the nearest centre so far), over `n_init` seeds, keeping the lowest inertia.
    k-means then runs on the test images. `cluster_names_` maps each cluster to its dev generator (the
    seed whose centre it started from) or to "new_<i>".
    """

    def __init__(self, k: int, n_components: int = 8, n_init: int = 10, blocks: Mapping[str, slice] | None = None,
                 random_state: int = 0):
        self.k = k
        self.n_components = n_components
        self.n_init = n_init
        self.blocks = blocks
        self.random_state = random_state

    def fit(self, X_dev, y_dev, X_test):
        X_dev, X_test = _check_features(X_dev), _check_features(X_test)
        y_dev = np.asarray(y_dev).astype(str)
        if len(y_dev) != len(X_dev):
            raise ValueError(f"{len(y_dev)} dev labels for {len(X_dev)} dev images")
        known = sorted(set(y_dev))
        if len(known) > self.k:
            raise ValueError(f"dev has {len(known)} generators but k={self.k}; k must be at least that")
        if X_dev.shape[1] != X_test.shape[1]:
            raise ValueError(f"dev and test features differ in width: {X_dev.shape[1]} vs {X_test.shape[1]}")
        self.reducer_ = ViewReducer(self.n_components, self.blocks, self.random_state).fit(np.vstack([X_dev, X_test]))
        Z_dev, Z_test = self.reducer_.transform(X_dev), self.reducer_.transform(X_test)
        seeds = np.stack([Z_dev[y_dev == name].mean(axis=0) for name in known])
        rng = np.random.default_rng(self.random_state)
        best = None
        for _ in range(self.n_init):
            centres = list(seeds)
            while len(centres) < self.k:
                d2 = ((Z_test[:, None, :] - np.array(centres)[None]) ** 2).sum(-1).min(axis=1)
                centres.append(Z_test[rng.choice(len(Z_test), p=d2 / d2.sum()) if d2.sum() > 0 else 0])
            model = KMeans(self.k, init=np.array(centres), n_init=1, random_state=self.random_state).fit(Z_test)
            if best is None or model.inertia_ < best.inertia_:
                best = model
        self.kmeans_ = best
        self.labels_ = best.labels_
        # name clusters by the dev generator whose mean lies nearest their final centre (one-to-one)
        from scipy.optimize import linear_sum_assignment

        cost = ((best.cluster_centers_[:, None, :] - seeds[None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        names = {int(r): known[c] for r, c in zip(rows, cols)}
        self.cluster_names_, n_new = {}, 0
        for cluster in range(self.k):
            if cluster not in names:
                names[cluster], n_new = f"new_{n_new}", n_new + 1
            self.cluster_names_[cluster] = str(names[cluster])
        self.known_generators_ = known
        return self


class SubsetClassifier(BaseEstimator):
    """2025 setting: assign generated images to the training subset they came from (fit on dev)."""

    def __init__(self, C: float = 1.0, max_iter: int = 2000, random_state: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        X = _check_features(X)
        y = np.asarray(y).astype(str)
        if len(set(y)) < 2:
            raise ValueError("need dev images from at least two subsets to fit a classifier")
        self.pipeline_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter,
                                                                            random_state=self.random_state))
        self.pipeline_.fit(X, y)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, X) -> np.ndarray:
        return self.pipeline_.predict(_check_features(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.pipeline_.predict_proba(_check_features(X))


def score_clustering(labels_true, labels_pred, *, n_boot: int = 1000, seed: int = 0):
    """ARI/NMI with bootstrap CIs and the single-cluster baseline (synthscope.metrics.attribution_report)."""
    from synthscope.metrics import attribution_report

    return attribution_report(labels_true, labels_pred, n_boot=n_boot, seed=seed)


# -- visual fingerprints -------------------------------------------------------------------------

@dataclass
class ClusterFingerprint:
    cluster: int
    n_images: int
    mean_residual: np.ndarray            # float32 [H, W], grey levels
    mean_log_spectrum: np.ndarray        # float32 [H, W], centred (fftshift)
    distinctive_frequencies: pd.DataFrame  # fy, fx (cycles/pixel), radius, difference, z


def cluster_fingerprints(images: np.ndarray, labels, *, top: int = 10, batch_size: int = 256,
                         denoiser: str = "median") -> dict[int, ClusterFingerprint]:
    """Per cluster: mean residual, mean log power spectrum, and the frequencies where it differs most.

    A frequency's difference is the cluster's mean log power minus the other images' mean, divided by
    the pooled per-image standard deviation there (a z-like effect size); the `top` largest |z| in the
    half plane (the spectrum is point-symmetric) are listed.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"need images [n, H, W] and n labels; got {images.shape} and {labels.shape}")
    clusters = np.unique(labels)
    _, height, width = images.shape
    sum_res = {c: np.zeros((height, width)) for c in clusters}
    sum_spec = {c: np.zeros((height, width)) for c in clusters}
    sum_sq = {c: np.zeros((height, width)) for c in clusters}
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        residual = noise_residual(images[chunk], denoiser=denoiser)
        spectrum = log_power_spectrum(residual)
        for c in clusters:
            mask = labels[chunk] == c
            if mask.any():
                sum_res[c] += residual[mask].sum(axis=0)
                sum_spec[c] += spectrum[mask].sum(axis=0)
                sum_sq[c] += (spectrum[mask].astype(np.float64) ** 2).sum(axis=0)
    counts = {c: int((labels == c).sum()) for c in clusters}
    total_spec, total_sq, n_total = sum(sum_spec.values()), sum(sum_sq.values()), len(labels)
    pooled_var = np.maximum(total_sq / n_total - (total_spec / n_total) ** 2, 1e-12)
    iy, ix = np.arange(height) - height // 2, np.arange(width) - width // 2
    fy, fx = iy / height, ix / width
    # half plane: a real image's spectrum is point-symmetric, so list each frequency pair once
    # (the Nyquist row/column of an even size is its own mirror and stays)
    my, mx = (-iy + height // 2) % height - height // 2, (-ix + width // 2) % width - width // 2
    half = (iy[:, None] > my[:, None]) | ((iy[:, None] == my[:, None]) & (ix[None, :] >= mx[None, :]))
    result = {}
    for c in clusters:
        mean_spec = sum_spec[c] / counts[c]
        others = n_total - counts[c]
        other_mean = (total_spec - sum_spec[c]) / others if others else mean_spec
        difference = mean_spec - other_mean
        z = np.where(half, difference / np.sqrt(pooled_var), 0.0)
        order = np.argsort(-np.abs(z), axis=None)[:top]
        ys, xs = np.unravel_index(order, z.shape)
        table = pd.DataFrame({"fy": fy[ys], "fx": fx[xs], "radius": np.hypot(fy[ys], fx[xs]),
                              "difference": difference[ys, xs], "z": z[ys, xs]})
        key = int(c) if np.issubdtype(type(c), np.integer) else c
        result[key] = ClusterFingerprint(key, counts[c], (sum_res[c] / counts[c]).astype(np.float32),
                                         mean_spec.astype(np.float32), table)
    return result


# -- whole data sets: the one sub-task 2 orchestrator ---------------------------------------------

CLUSTER_METHODS = ("auto", "consensus", *ALGORITHMS)


@dataclass(frozen=True)
class AttributionOptions:
    """Everything that decides a sub-task 2 answer; the CLI, the dashboard and the benchmark build one."""

    k: int | None = None                       # generators the task states (not needed for 2025 subsets)
    extractors: tuple[str, ...] = ("fingerprint",)
    method: str = "auto"
    n_components: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "extractors", tuple(self.extractors))
        if not self.extractors:
            raise ValueError("at least one extractor is needed")
        if self.method not in CLUSTER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(CLUSTER_METHODS)}")
        if self.n_components < 1:
            raise ValueError("n_components must be at least 1")


@dataclass
class AttributionRun:
    """Which generator (cluster) or training subset made each image, and how that was decided."""

    kind: str                                  # "attribution" (clusters 0..k-1) | "subset" (2025 labels)
    labels: pd.Series                          # image_id -> cluster (int) or subset (str)
    options: AttributionOptions
    setting: str                               # "label-free" | "seeded by dev" | "supervised subsets"
    description: list[str]
    model: object                              # the fitted estimator
    cluster_names: dict[int, str] = field(default_factory=dict)   # seeded: cluster -> dev generator
    confidence: pd.Series | None = None        # subsets: the predicted class's probability
    selection: pd.DataFrame | None = None      # label-free: the candidates' stability and silhouette
    chosen: dict | None = None

    @property
    def k(self) -> int | None:
        return None if self.kind == "subset" else int(self.options.k)

    def write(self, path, *, expected_ids=None):
        """The validated run file (the writer refuses an invalid one)."""
        from synthscope.submission import write_attribution_run, write_subset_run

        expected = list(self.labels.index) if expected_ids is None else expected_ids
        if self.kind == "subset":
            return write_subset_run(path, self.labels, expected_ids=expected)
        return write_attribution_run(path, self.labels.astype(int), k=self.k, exact_k=True, expected_ids=expected)


def dev_generator_labels(dev) -> np.ndarray:
    """The generator (2024) or subset (2025) of each dev image: its label, else its folder."""
    labels = dev.manifest["label"].astype(str)
    groups = dev.manifest["group"].astype(str)
    return np.where((labels == "unknown") | (labels == ""), groups, labels)


def _generated_only(dataset):
    generated = (dataset.manifest["role"] == "generated").to_numpy()
    if not generated.any():
        raise ValueError(f"{dataset.root} holds no generated images to attribute (layout {dataset.layout})")
    return dataset if generated.all() else dataset.subset(generated)


def _embed_views(dataset, names, cache, device, progress, given) -> dict[str, np.ndarray]:
    from synthscope.cache import embed_dataset
    from synthscope.features import get_extractor

    given = dict(given or {})
    views = {}
    for name in names:
        if name in given:
            views[name] = np.asarray(given[name])
            continue
        extractor = get_extractor(name)
        views[name] = embed_dataset(dataset, extractor, cache=cache, batch_size=extractor.default_batch_size,
                                    device=device, progress=progress)
    return views


def check_k(k, n_images: int) -> int:
    """k from the task statement, with one clear message for values no clustering can honour."""
    if k is None:
        raise ValueError("k (the number of generators the task states) is required for clustering")
    k = int(k)
    if k < 2:
        raise ValueError(f"k = {k}: attribution needs at least 2 generators (one cluster puts every image "
                         f"together, ARI 0 by construction)")
    if k >= n_images:
        raise ValueError(f"k = {k} is not below the {n_images} images to attribute: every image would be its own "
                         f"cluster; k is the number of generators, not of images")
    return k


def cluster_generators(features_by_view: Mapping[str, np.ndarray], options: AttributionOptions) -> FingerprintClustering:
    """Label-free clustering of one matrix per view (rows = images) into the task's k generators.
    `run_attribution` and the dashboard's (re-)cluster both come here, so equal inputs give equal labels."""
    n = len(next(iter(features_by_view.values())))
    k = check_k(options.k, n)
    return FingerprintClustering(k, method=options.method, views=options.extractors,
                                 n_components=options.n_components, random_state=options.seed).fit(features_by_view)


def assign_to_nearest_cluster(features: np.ndarray, labels, new_features: np.ndarray) -> np.ndarray:
    """Each new row's cluster: the nearest cluster mean in the standardised space of `features`
    (how the dashboard places dev images beside the clusters found on test)."""
    scaler = StandardScaler().fit(features)
    fitted, new = scaler.transform(features), scaler.transform(new_features)
    labels = np.asarray(labels)
    clusters = np.unique(labels)
    centres = np.stack([fitted[labels == c].mean(axis=0) for c in clusters])
    from sklearn.metrics import pairwise_distances_argmin

    return clusters[pairwise_distances_argmin(new, centres)].astype(np.int64)


def run_attribution(dataset, dev=None, options: AttributionOptions | None = None, *, cache=None,
                    device: str = "auto", progress=False, features=None, dev_features=None,
                    **option_values) -> AttributionRun:
    """Attribute every generated image of `dataset`.

    - no `dev`: label-free clustering into k generators (`FingerprintClustering`, choice of view and
      algorithm without labels);
    - a 2024 dev tree (one folder per generator): k-means seeded by the dev generators (`SeededClustering`),
      on the first extractor;
    - a 2025 dev tree (subsets): a classifier fit on dev assigns each image to a subset (`SubsetClassifier`).
    `features` / `dev_features` ({extractor: matrix, one row per generated image in manifest order}) skip
    the extractors.
    """
    if options is None:
        options = AttributionOptions(**option_values)
    elif option_values:
        raise TypeError("pass either options or option keywords, not both")
    test = _generated_only(dataset)
    ids = test.manifest["image_id"].astype(str).to_numpy()
    views = _embed_views(test, options.extractors, cache, device, progress, features)
    view = options.extractors[0]
    if dev is not None:
        dev_set = _generated_only(dev)
        dev_views = _embed_views(dev_set, (view,), cache, device, progress, dev_features)
        y_dev = dev_generator_labels(dev_set)
        if dev_set.layout.startswith("2025-st2"):
            model = SubsetClassifier(random_state=options.seed).fit(dev_views[view], y_dev)
            probabilities = model.predict_proba(views[view])
            assigned = model.classes_[probabilities.argmax(axis=1)]
            return AttributionRun(
                "subset", pd.Series(assigned, index=pd.Index(ids, name="image_id"), name="subset"), options,
                "supervised subsets",
                [f"supervised subset assignment: logistic regression on {view} fit on {len(y_dev)} dev images "
                 f"({len(model.classes_)} subsets)"], model,
                confidence=pd.Series(probabilities.max(axis=1), index=pd.Index(ids, name="image_id")))
        k = check_k(options.k, len(ids))
        model = SeededClustering(k, n_components=options.n_components, random_state=options.seed,
                                 blocks=blocks_for_view(view, views[view].shape[1]))
        model.fit(dev_views[view], y_dev, views[view])
        labels = np.asarray(model.labels_, dtype=np.int64)
        lines = [f"semi-supervised: k-means on {view} seeded by {len(model.known_generators_)} dev generators "
                 f"({', '.join(model.known_generators_)}); {k - len(model.known_generators_)} new cluster(s)"]
        lines += [f"  cluster {c}: {name} ({int((labels == c).sum())} images)" for c, name in model.cluster_names_.items()]
        return AttributionRun("attribution", pd.Series(labels, index=pd.Index(ids, name="image_id"), name="cluster"),
                              options, "seeded by dev", lines, model, cluster_names=dict(model.cluster_names_))
    model = cluster_generators(views, options)
    labels = np.asarray(model.labels_, dtype=np.int64)
    return AttributionRun("attribution", pd.Series(labels, index=pd.Index(ids, name="image_id"), name="cluster"),
                          options, "label-free", [model.describe()], model, selection=model.selection_,
                          chosen=dict(model.chosen_))


@dataclass
class SubsetCrossValidation:
    """Out-of-fold subset predictions on the labelled dev images (2025 sub-task 2): how well the
    classifier `run_attribution` fits on dev assigns images it has not seen."""

    predictions: pd.DataFrame      # image_id (index), subset (dev label), predicted, confidence, fold
    classes: list[str]
    n_splits: int
    report: object                 # MetricReport: accuracy with CI, majority / uniform baselines

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts, dev subset (rows) x predicted subset (columns), every class on both axes."""
        table = pd.crosstab(self.predictions["subset"], self.predictions["predicted"])
        return table.reindex(index=self.classes, columns=self.classes, fill_value=0).rename_axis(
            index="subset", columns="predicted")


def cross_validated_subsets(dev, options: AttributionOptions | None = None, *, n_splits: int = 5, cache=None,
                            device: str = "auto", progress=False, dev_features=None,
                            n_boot: int = 1000) -> SubsetCrossValidation:
    """Stratified K-fold on the generated images of a 2025 dev tree, each fold's `SubsetClassifier`
    fit (with the options' seed and first extractor, as `run_attribution`) on the other folds.
    `n_splits` is lowered to the smallest subset's size; a subset with a single image is an error."""
    from sklearn.model_selection import StratifiedKFold

    from synthscope.metrics import subset_accuracy_report

    options = options or AttributionOptions()
    dev_set = _generated_only(dev)
    if not dev_set.layout.startswith("2025-st2"):
        raise ValueError(f"{dev.root} is a {dev.layout} tree, not a 2025 sub-task 2 dev tree (real/<subset>, "
                         "generated/<subset>)")
    view = options.extractors[0]
    X = _embed_views(dev_set, (view,), cache, device, progress, dev_features)[view]
    y = dev_generator_labels(dev_set).astype(str)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("need dev images from at least two subsets to cross-validate a classifier")
    splits = int(min(n_splits, counts.min()))
    if splits < 2:
        raise ValueError(f"subset {classes[counts.argmin()]!r} has a single generated image: it cannot be both "
                         "fit on and held out")
    predicted = np.empty(len(y), dtype=object)
    confidence = np.zeros(len(y))
    fold = np.zeros(len(y), dtype=np.int64)
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=options.seed)
    for number, (train, held) in enumerate(folds.split(X, y)):
        model = SubsetClassifier(random_state=options.seed).fit(X[train], y[train])
        probabilities = model.predict_proba(X[held])
        predicted[held] = model.classes_[probabilities.argmax(axis=1)]
        confidence[held] = probabilities.max(axis=1)
        fold[held] = number
    ids = pd.Index(dev_set.manifest["image_id"].astype(str).to_numpy(), name="image_id")
    frame = pd.DataFrame({"subset": y, "predicted": predicted.astype(str), "confidence": confidence, "fold": fold},
                         index=ids)
    return SubsetCrossValidation(frame, [str(c) for c in classes], splits,
                                 subset_accuracy_report(y, frame["predicted"].to_numpy(), n_boot=n_boot,
                                                        seed=options.seed))


def evaluate_attribution(run: AttributionRun, truth: pd.Series, *, n_boot: int = 1000, seed: int = 0):
    """ARI/NMI (clusters) or accuracy (subsets) against the ground truth, with bootstrap CIs."""
    from synthscope.metrics import subset_accuracy_report

    missing = [i for i in run.labels.index if i not in truth.index]
    if missing:
        raise ValueError(f"{len(missing)} image(s) have no ground truth, e.g. {missing[0]}")
    y_true = truth.loc[run.labels.index].astype(str).to_numpy()
    if run.kind == "subset":
        return subset_accuracy_report(y_true, run.labels.to_numpy(), n_boot=n_boot, seed=seed)
    return score_clustering(y_true, run.labels.to_numpy(), n_boot=n_boot, seed=seed)


# ---------------------------------------------------------------- per-image diagnostics (colour, filter, sort)
EXACT_SILHOUETTE_LIMIT = 5000   # silhouette_samples is O(n^2): 0.5 s at 5,000 images on 2 cores, ~10 s at 20,000


@dataclass
class PointDiagnostics:
    """How well each image sits in its cluster, in the features the clustering sees."""
    silhouette: np.ndarray          # -1..1, higher = closer to its own cluster than to the next one
    silhouette_kind: str            # "exact" or "centroid" (the simplified silhouette above the limit)
    centre_distance: np.ndarray     # Euclidean distance to the mean of its cluster


def cluster_diagnostics(features: np.ndarray, labels, *, exact_limit: int = EXACT_SILHOUETTE_LIMIT) -> PointDiagnostics:
    """Per-image silhouette and distance to the cluster centre. Up to `exact_limit` images the silhouette
    is scikit-learn's exact one; above it, the simplified silhouette on centroid distances (O(n k)),
    and `silhouette_kind` says so. A single cluster gives silhouette 0 (it is undefined)."""
    X = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    values, codes = np.unique(labels, return_inverse=True)
    centres = np.stack([X[codes == c].mean(axis=0) for c in range(len(values))])
    to_centres = np.sqrt(((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)) if len(X) <= 20_000 else \
        np.stack([np.linalg.norm(X - centre, axis=1) for centre in centres], axis=1)
    own = to_centres[np.arange(len(X)), codes]
    if len(values) < 2:
        return PointDiagnostics(np.zeros(len(X)), "exact", own)
    if len(X) <= exact_limit and len(values) < len(X):
        from sklearn.metrics import silhouette_samples

        return PointDiagnostics(silhouette_samples(X, codes), "exact", own)
    other = to_centres.copy()
    other[np.arange(len(X)), codes] = np.inf
    nearest_other = other.min(axis=1)
    denominator = np.maximum(np.maximum(own, nearest_other), np.finfo(np.float64).tiny)
    return PointDiagnostics((nearest_other - own) / denominator, "centroid", own)


def outlier_scores(features: np.ndarray, *, n_neighbors: int = 20) -> np.ndarray:
    """Local outlier factor per image (scikit-learn): about 1 for an image as dense as its neighbours,
    higher for one that lies apart (a candidate for an odd generator or a bad sample)."""
    from sklearn.neighbors import LocalOutlierFactor

    X = np.asarray(features, dtype=np.float64)
    if len(X) < 3:
        return np.ones(len(X))
    model = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(X) - 1)).fit(X)
    return -model.negative_outlier_factor_
