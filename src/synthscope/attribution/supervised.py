"""Attribution with dev labels.

- `SeededClustering`: 2024 setting, dev folders label some generators; their means seed k-means and the
  remaining centres start on test points far from them, so an unseen generator gets its own cluster.
- `SubsetClassifier`: 2025 setting, a classifier fit on dev assigns test images to training subsets.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthscope.attribution.clustering import ViewReducer, check_features


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
        X_dev, X_test = check_features(X_dev), check_features(X_test)
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
    """2025 setting: assign generated images to the training subset they came from (fit on dev).

    calibration: "temperature" (default) divides the logits by one temperature T >= 1 fit, by log loss,
    on out-of-fold logits of dev (stratified K-fold, `n_splits` lowered to the smallest subset; Guo et
    al. 2017), so a confidence of 0.9 is right about 9 times in 10; the predicted subset never changes.
    None keeps the logistic regression's own probabilities (`temperature_` = 1).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000, calibration: str | None = "temperature",
                 n_splits: int = 5, random_state: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.calibration = calibration
        self.n_splits = n_splits
        self.random_state = random_state

    def _pipeline(self):
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter,
                                                                  random_state=self.random_state))

    @staticmethod
    def _logits(pipeline, X: np.ndarray) -> np.ndarray:
        scores = pipeline.decision_function(X)
        return np.column_stack([np.zeros(len(scores)), scores]) if scores.ndim == 1 else scores

    def fit(self, X, y):
        X = check_features(X)
        y = np.asarray(y).astype(str)
        if len(set(y)) < 2:
            raise ValueError("need dev images from at least two subsets to fit a classifier")
        if self.calibration not in (None, "temperature"):
            raise ValueError(f"unknown calibration {self.calibration!r}; use 'temperature' or None")
        self.pipeline_ = self._pipeline().fit(X, y)
        self.classes_ = self.pipeline_.classes_
        self.temperature_ = 1.0
        counts = np.unique(y, return_counts=True)[1]
        splits = int(min(self.n_splits, counts.min()))
        if self.calibration == "temperature" and splits >= 2:
            from sklearn.model_selection import StratifiedKFold

            logits = np.zeros((len(y), len(self.classes_)))
            codes = np.searchsorted(self.classes_, y)
            for train, held in StratifiedKFold(splits, shuffle=True, random_state=self.random_state).split(X, y):
                fold = self._pipeline().fit(X[train], y[train])
                columns = np.searchsorted(self.classes_, fold.classes_)
                logits[np.ix_(held, columns)] = self._logits(fold, X[held])
                missing = np.setdiff1d(np.arange(len(self.classes_)), columns)
                logits[np.ix_(held, missing)] = -np.inf if len(missing) else 0.0
            self.temperature_ = fit_temperature(logits, codes)
        return self

    def predict(self, X) -> np.ndarray:
        return self.pipeline_.predict(check_features(X))

    def predict_proba(self, X) -> np.ndarray:
        """Subset probabilities, calibrated by the temperature (the argmax is the uncalibrated one's)."""
        return softmax(self._logits(self.pipeline_, check_features(X)) / self.temperature_)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, codes: np.ndarray, bounds: tuple[float, float] = (1.0, 100.0)) -> float:
    """The temperature T minimising the mean log loss of softmax(logits / T) for the true classes `codes`
    (a bounded 1-D search over log T). T >= 1 by default: calibration only softens. A dev set the
    classifier separates perfectly out of fold drives the loss-optimal T to 0 and every confidence to
    1.0, which a few dozen dev images cannot justify."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    finite = np.where(np.isfinite(logits), logits, -1e30)

    def loss(log_t: float) -> float:
        scaled = finite / np.exp(log_t)
        top = scaled.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
        return float(np.mean(log_norm - scaled[np.arange(len(codes)), codes]))

    result = minimize_scalar(loss, bounds=tuple(np.log(bounds)), method="bounded")
    return float(np.exp(result.x))
