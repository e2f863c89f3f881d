"""Open-set attribution: how unlike every known generator (or training subset) a test image is.

`NoveltyScorer` is fit on the labelled dev images. Its raw score is the smallest Mahalanobis distance
from an image to the known classes, each a Gaussian (Ledoit-Wolf shrunk covariance) in the reduced
fingerprint space (`ViewReducer`: standardised, equal block weights, PCA); Lee et al. 2018 use the same
class-conditional distance. The score is turned into a conformal p-value against out-of-fold dev
scores (stratified K-fold on dev: each dev image is scored by a model that never saw it, so the dev
scores look like those of a new image of a known class; Vovk et al. 2005, split-conformal with
cross-validation). An image with p < `alpha` is "none of these": for images of known classes that
happens with probability at most about `alpha`.

`novelty` = 1 - p (0 = typical of a known class, near 1 = unlike every dev image of every class).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import StratifiedKFold

from synthscope.attribution.clustering import ViewReducer, check_features

#: the default conformal level: at most about 1 in 100 images of a known generator is flagged
DEFAULT_NOVELTY_ALPHA = 0.01


class NoveltyScorer(BaseEstimator):
    """Novelty of images relative to labelled dev classes, with a conformal "none of these" flag.

    n_components: PCA components of the reduced space the class densities live in (capped by the
      data's rank). 16 separated every held-out dev generator in leave-one-generator-out checks on
      bench v1 (8 missed a few), see the README.
    alpha: conformal level of the flag (p-value below it = none of these).
    n_splits: folds of the dev cross-validation that produces the calibration scores (lowered to the
      smallest class's size).
    reg_covar: ridge added to each class covariance, relative to its mean variance (a class of one or
      two images still gets an invertible covariance).
    """

    def __init__(self, n_components: int = 16, alpha: float = DEFAULT_NOVELTY_ALPHA, n_splits: int = 5,
                 blocks: Mapping[str, slice] | None = None, reg_covar: float = 1e-3, random_state: int = 0):
        self.n_components = n_components
        self.alpha = alpha
        self.n_splits = n_splits
        self.blocks = blocks
        self.reg_covar = reg_covar
        self.random_state = random_state

    def _densities(self, X: np.ndarray, y: np.ndarray):
        reducer = ViewReducer(self.n_components, self.blocks, self.random_state).fit(X)
        Z = reducer.transform(X)
        means, precisions = [], []
        for name in np.unique(y):
            rows = Z[y == name]
            covariance = LedoitWolf().fit(rows).covariance_ if len(rows) > 1 else np.zeros((Z.shape[1],) * 2)
            ridge = self.reg_covar * max(float(np.trace(covariance)) / Z.shape[1], float(Z.var(axis=0).mean()), 1e-12)
            means.append(rows.mean(axis=0))
            precisions.append(np.linalg.inv(covariance + ridge * np.eye(Z.shape[1])))
        return reducer, np.stack(means), np.stack(precisions)

    @staticmethod
    def _distance(densities, X: np.ndarray) -> np.ndarray:
        reducer, means, precisions = densities
        Z = reducer.transform(X)
        squared = [np.einsum("ij,jk,ik->i", Z - mean, precision, Z - mean) for mean, precision in zip(means, precisions)]
        return np.sqrt(np.maximum(np.min(squared, axis=0), 0.0))

    def fit(self, X, y):
        X = check_features(X)
        y = np.asarray(y).astype(str)
        if len(y) != len(X):
            raise ValueError(f"{len(y)} labels for {len(X)} images")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1); got {self.alpha}")
        classes, counts = np.unique(y, return_counts=True)
        splits = int(min(self.n_splits, counts.min()))
        if splits < 2:
            raise ValueError(f"class {classes[counts.argmin()]!r} has a single dev image: novelty calibration needs "
                             "every class in at least two folds")
        self.classes_ = classes
        self.densities_ = self._densities(X, y)
        calibration = np.empty(len(y))
        folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=self.random_state)
        for train, held in folds.split(X, y):
            calibration[held] = self._distance(self._densities(X[train], y[train]), X[held])
        self.calibration_scores_ = np.sort(calibration)
        self.n_splits_ = splits
        return self

    def score_samples(self, X) -> np.ndarray:
        """Raw novelty: the smallest Mahalanobis distance to a known class (higher = more novel)."""
        return self._distance(self.densities_, check_features(X))

    def p_values(self, X) -> np.ndarray:
        """Conformal p-value: the share of out-of-fold dev scores at least as large (with the +1 of
        conformal prediction). Small = unlike the known classes."""
        scores = self.score_samples(X)
        at_least = len(self.calibration_scores_) - np.searchsorted(self.calibration_scores_, scores, side="left")
        return (1.0 + at_least) / (len(self.calibration_scores_) + 1.0)

    def novelty(self, X) -> np.ndarray:
        """1 - p-value, in [0, 1): 0 = as typical as the most typical dev image."""
        return 1.0 - self.p_values(X)

    def predict(self, X) -> np.ndarray:
        """True = none of these (p-value below alpha)."""
        return self.p_values(X) < self.alpha
