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
  and the shift-registered copy score (`registered_copy_score`) do not depend on a reference, nor does the
  patch-level memorisation score (`patch_copy_score`: mean nearest-generated distance of the image's patches).
A reference is only unbiased when it shares no scan with the scored images; pass such a set explicitly
(`score_membership(..., reference=...)`) when you have one (e.g. real images from other patients).
Test labels are never read by anything here: labels enter only through `fit_threshold` (dev) and
`leakage_test` / evaluation.

The leakage test gates every claim: with labels, a one-sided Mann-Whitney test of used vs not-used scores;
without labels, the data-copying test of Meehan et al. 2020 (are generated images closer to the real
pool than held-out real images are?). `LeakageVerdict.message` says plainly when there is no evidence.

Modules: neighbours, scores, verdicts, thresholds, columns, registration, patches, spaces, controls,
pipeline (`run_membership`, the one orchestrator), evaluation (metrics against labels).
"""

from synthscope.membership.neighbours import (  # noqa: F401
    APPROX_THRESHOLD,
    knn,
    intrinsic_dimension,
    NearestPair,
    downsampled_pixels,
    nearest_pairs,
)
from synthscope.membership.scores import (  # noqa: F401
    SCORES,
    NEAR_DUPLICATE_RATIO,
    MembershipScorer,
    PoolScores,
    rank_ensemble,
    near_duplicate_groups,
)
from synthscope.membership.verdicts import (  # noqa: F401
    LeakageVerdict,
    group_rank_test,
    rank_test,
    data_copying_test,
    leakage_test,
    best_baseline,
    with_baseline_caveat,
)
from synthscope.membership.thresholds import (  # noqa: F401
    OBJECTIVES,
    PREVALENCE_BAND,
    ThresholdFit,
    adjusted_count,
    banded_two_means,
    fit_threshold,
    ThresholdFitter,
)
from synthscope.membership.columns import (  # noqa: F401
    ENSEMBLE_SCORES,
    MembershipResult,
    score_membership,
    default_ensemble_columns,
)
from synthscope.membership.registration import (  # noqa: F401
    IMAGE_SCORES,
    registered_distances,
    registered_copy_score,
)
from synthscope.membership.patches import (  # noqa: F401
    patch_distances,
    patch_copy_score,
)
from synthscope.membership.spaces import (  # noqa: F401
    SPACES,
    Space,
    DEFAULT_SPACES,
    get_space,
    postprocess,
    space_features,
    dataset_space_features,
)
from synthscope.membership.controls import (  # noqa: F401
    ControlOptions,
    ControlsReport,
    GroupControls,
    PositiveOutcome,
    run_controls,
    near_copies,
    PositiveControl,
    positive_control,
    ControlResult,
    run_positive_control,
    split_null_control,
    run_null_control,
    null_control,
)
from synthscope.membership.pipeline import (  # noqa: F401
    MembershipOptions,
    MembershipRun,
    predict,
    run_membership_cached,
    plan_membership,
    run_cache_path,
    within_group_rank,
    membership_story,
    REFERENCES,
    GroupRun,
    pair_groups,
    run_membership,
    _group_rows,
    _used_labels,
)
from synthscope.membership.evaluation import (  # noqa: F401
    GroupEvaluation,
    MembershipEvaluation,
    evaluate_dev,
    evaluate_membership,
    evaluate_predictions,
)

__all__ = [
    "run_membership_cached",
    "plan_membership",
    "run_cache_path",
    "MembershipOptions",
    "MembershipRun",
    "predict",
    "within_group_rank",
    "membership_story",
    "ControlOptions",
    "ControlsReport",
    "GroupControls",
    "PositiveOutcome",
    "run_controls",
    "GroupEvaluation",
    "MembershipEvaluation",
    "evaluate_dev",
    "evaluate_membership",
    "evaluate_predictions",
    "SPACES",
    "APPROX_THRESHOLD",
    "knn",
    "intrinsic_dimension",
    "NearestPair",
    "downsampled_pixels",
    "nearest_pairs",
    "SCORES",
    "NEAR_DUPLICATE_RATIO",
    "MembershipScorer",
    "PoolScores",
    "rank_ensemble",
    "near_duplicate_groups",
    "LeakageVerdict",
    "group_rank_test",
    "rank_test",
    "data_copying_test",
    "leakage_test",
    "best_baseline",
    "with_baseline_caveat",
    "OBJECTIVES",
    "ThresholdFit",
    "fit_threshold",
    "adjusted_count",
    "banded_two_means",
    "PREVALENCE_BAND",
    "ThresholdFitter",
    "ENSEMBLE_SCORES",
    "MembershipResult",
    "score_membership",
    "default_ensemble_columns",
    "IMAGE_SCORES",
    "registered_distances",
    "registered_copy_score",
    "patch_distances",
    "patch_copy_score",
    "Space",
    "DEFAULT_SPACES",
    "get_space",
    "postprocess",
    "space_features",
    "dataset_space_features",
    "near_copies",
    "PositiveControl",
    "positive_control",
    "ControlResult",
    "run_positive_control",
    "split_null_control",
    "run_null_control",
    "null_control",
    "REFERENCES",
    "GroupRun",
    "pair_groups",
    "run_membership",
]
