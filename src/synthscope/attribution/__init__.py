"""Sub-task 2: group generated images by the generator that made them, and show each group's fingerprint.

- `clustering`: `ViewReducer`, `FingerprintClustering` (k-means, Gaussian mixture, Ward, spectral on
  every view; the label-free choice of view and algorithm by resampling stability, or consensus).
- `supervised`: `SeededClustering` (2024 setting, dev generators seed k-means) and `SubsetClassifier`
  (2025 setting, a classifier fit on dev assigns test images to training subsets).
- `fingerprints`: `cluster_fingerprints`, per cluster the mean noise residual, the mean log power
  spectrum and the frequencies where the cluster differs most from the others.
- `run`: `run_attribution` (the one orchestrator the CLI, the dashboard and the benchmark call),
  `AttributionOptions`, `AttributionRun`, `cross_validated_subsets`, `evaluate_attribution`.
- `openset`: `NoveltyScorer`, how unlike every dev generator or subset a test image is, with a
  conformal "none of these" flag.
- `reliability`: `reliability_diagram`, the 2025 classifier's confidence (raw and calibrated) against its
  accuracy on dev cross-validation, with the ECE of each.
- `diagnostics`: per-image silhouette, distance to the cluster centre, assignment margin, outlier score.

Every public name is importable from `synthscope.attribution`.
"""

from synthscope.attribution.clustering import (
    ALGORITHMS,
    MAX_CONSENSUS_POINTS,
    MAX_QUADRATIC_POINTS,
    MAX_WARD_POINTS,
    FingerprintClustering,
    ViewReducer,
    blocks_for_view,
    check_features,
    cluster_once,
    coassociation_consensus,
    resampling_stability,
)
from synthscope.attribution.diagnostics import (
    EXACT_SILHOUETTE_LIMIT,
    assignment_margin,
    PointDiagnostics,
    cluster_diagnostics,
    outlier_scores,
)
from synthscope.attribution.fingerprints import ClusterFingerprint, cluster_fingerprints
from synthscope.attribution.openset import DEFAULT_NOVELTY_ALPHA, NoveltyScorer
from synthscope.attribution.run import (
    CLUSTER_METHODS,
    AttributionOptions,
    AttributionRun,
    SubsetCrossValidation,
    assign_to_nearest_cluster,
    check_k,
    cluster_generators,
    clustering_scores,
    cross_validated_subsets,
    dev_generator_labels,
    evaluate_attribution,
    run_attribution,
    score_clustering,
    scores_frame,
)
from synthscope.attribution.reliability import (
    DEFAULT_RELIABILITY_BINS,
    ReliabilityCurve,
    ReliabilityDiagram,
    reliability_curve,
    reliability_diagram,
)
from synthscope.attribution.supervised import SeededClustering, SubsetClassifier, fit_temperature
from synthscope.runtime import SINGLE_THREAD_BELOW

__all__ = [
    "ALGORITHMS", "CLUSTER_METHODS", "DEFAULT_NOVELTY_ALPHA", "DEFAULT_RELIABILITY_BINS", "EXACT_SILHOUETTE_LIMIT", "MAX_CONSENSUS_POINTS", "MAX_QUADRATIC_POINTS",
    "MAX_WARD_POINTS", "SINGLE_THREAD_BELOW",
    "AttributionOptions", "AttributionRun", "ClusterFingerprint", "FingerprintClustering", "NoveltyScorer", "PointDiagnostics",
    "ReliabilityCurve", "ReliabilityDiagram", "SeededClustering", "SubsetClassifier", "SubsetCrossValidation", "ViewReducer",
    "assign_to_nearest_cluster", "assignment_margin", "blocks_for_view", "check_features", "check_k", "cluster_diagnostics",
    "cluster_fingerprints", "cluster_generators", "clustering_scores", "cluster_once", "coassociation_consensus",
    "cross_validated_subsets", "dev_generator_labels", "evaluate_attribution", "fit_temperature", "outlier_scores",
    "reliability_curve", "reliability_diagram", "resampling_stability", "run_attribution", "score_clustering", "scores_frame",
]
