"""Positive controls (planted near copies must be found) and null controls (held-out real images as the generated set)."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pandas as pd

from synthscope.membership.neighbours import _as_matrix, downsampled_pixels
from synthscope.membership.patch_tables import patch_pair_table, patch_typicality, pooled_distances
from synthscope.membership.patches import patch_copy_score
from synthscope.membership.registration import registered_copy_score
from synthscope.membership.scores import MembershipScorer, near_duplicate_groups
from synthscope.membership.spaces import Space, space_features
from synthscope.membership.thresholds import check_smoothing, scan_smoothed
from synthscope.membership.verdicts import LeakageVerdict, group_rank_test, leakage_test, rank_test

#: image scores the null control runs on the images themselves (held-out real images as the generated set)
IMAGE_NULL_SCORES = {"patches": patch_copy_score,
                     "registered": lambda real, generated: registered_copy_score(real, generated)}
#: the patch null builds one real x real patch table and reuses it in every split while it fits in this
#: many bytes (534 real images: 0.26 GB); above, every split scores its own pool
PAIR_TABLE_BYTES = 1.5e9


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
    elif score == "patches":
        values = patch_copy_score(np.asarray(real_images), control.generated)
    else:
        values = MembershipScorer(scores=(score,), **scorer_params).fit(gen_f, reference).score(real_f)[score].to_numpy()
    verdict = rank_test(values, control.copied, alpha=alpha)
    auc = float(roc_auc_score(control.copied, values))
    passed = verdict.significant and auc >= 0.99
    message = (f"positive control {'passed' if passed else 'FAILED'}: {control.n_injected} near copies injected; "
               f"AUC of copied vs not copied {auc:.3f}; {verdict.message}")
    return ControlResult("positive", passed, verdict, auc, message), values, control.copied


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


def _patch_places() -> int:
    from synthscope.membership.patches import PATCH, PATCH_SIZE, PATCH_STRIDE

    return len(range(0, PATCH_SIZE - PATCH + 1, PATCH_STRIDE)) ** 2


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
                     alpha: float = 0.05, groups=None, seed: int = 0, **scorer_params) -> ControlResult:
    """Null control: the generated set is replaced by held-out real images (feature matrices), so nothing
    can have leaked. With labels the two-sided rank test of `score` must not be significant (a reversed
    separation fails too: it shows a bias that would sink or fake a real signal); without labels the
    data-copying test must not be. With `groups` (scan groups of `real`, found without labels) the rank test's
    p-value comes from permuting the labels of whole groups (`group_rank_test`)."""
    if used is not None:
        table = MembershipScorer(scores=(score,), **scorer_params).fit(heldout_as_generated, reference).score(real)
        verdict = _null_rank_test(table[score].to_numpy(), used, groups, alpha, seed)
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


def _null_rank_test(values, used, groups, alpha: float, seed: int) -> LeakageVerdict:
    if groups is None:
        return rank_test(values, used, alpha=alpha, alternative="two-sided")
    return group_rank_test(values, used, groups, alpha=alpha, seed=seed)


def null_control(features, used=None, *, score: str = "distance", n_repeats: int = 10, groups=None,
                 seed: int = 0, alpha: float = 0.05, images=None, typicality: float = 0.0, smoothing: int = 0,
                 **scorer_params) -> ControlResult:
    """The null control over `n_repeats` random group-aware splits (`split_null_control`) of one group's
    real images (feature matrix), since a single split of a few dozen images is a noisy draw.

    Passes when the median p-value of the per-split tests is >= alpha (under the null, p is uniform, so
    most splits must come out non-significant); the message gives the median AUC (or Z_U) and how many
    splits were significant. With labels each split is a two-sided rank test of `score` whose p-value
    permutes the labels of whole scan groups (`group_rank_test`): slices of one scan are not independent.
    The patch score's splits share one real x real patch table (`patch_pair_table`) when it fits in
    PAIR_TABLE_BYTES: every split is then a reduction of that table, not a new patch search. The patch score
    carries its typicality term as in `run_membership` (weight `typicality`, as `MembershipOptions.patch_typicality`;
    against every other scan group's real images, stand-ins included), so the null tests the column a run scores;
    with `smoothing` (as `MembershipOptions.scan_smoothing`) an image score is averaged with its nearest slices of
    its scan group among the split's scored images (`scan_smoothed`, 64 px grey levels) before the test.
    """
    features = _as_matrix(features, "features")
    if n_repeats < 1:
        raise ValueError("n_repeats must be >= 1")
    groups = near_duplicate_groups(features) if groups is None else np.asarray(groups)
    if score in IMAGE_NULL_SCORES and (images is None or used is None):
        raise ValueError(f"the null control of images:{score} needs the images and labels")
    table = None
    if score == "patches" and len(images) ** 2 * 4 * _patch_places() <= PAIR_TABLE_BYTES:
        table, body = patch_pair_table(images, images)
    typical = np.zeros(len(features))
    if score == "patches" and typicality:
        typical = typicality * (patch_typicality(images, groups) if table is None else
                                pooled_distances(table, body, groups[:, None] != groups[None, :]))
    pixels = downsampled_pixels(np.asarray(images), 64) if smoothing and score in IMAGE_NULL_SCORES else None
    verdicts = []
    for repeat in range(n_repeats):
        pool, stand_in, heldout = split_null_control(features, used, seed=seed + repeat, groups=groups)
        if score in IMAGE_NULL_SCORES:     # scored on the images: held-out real images stand in as generated
            if table is not None:       # = patch_copy_score(images[pool], images[stand_in]), from the shared table
                values = -pooled_distances(table[np.ix_(pool, stand_in)], body[pool]) + typical[pool]
            else:
                values = IMAGE_NULL_SCORES[score](images[pool], images[stand_in]) + typical[pool]
            if pixels is not None:
                values = scan_smoothed(values, pixels[pool], groups[pool], smoothing)
            verdicts.append(_null_rank_test(values, np.asarray(used)[pool], groups[pool], alpha, seed + repeat))
            continue
        verdicts.append(run_null_control(
            features[pool], features[stand_in], reference=None if heldout is None else features[heldout],
            used=None if used is None else np.asarray(used)[pool], score=score, alpha=alpha,
            groups=groups[pool], seed=seed + repeat, **scorer_params).verdict)
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
# Both controls on whole data sets (what `synthscope controls` and `make bench` run)
# --------------------------------------------------------------------------------------------------

COPY_FROM = ("not_used", "used", "all")


@dataclass(frozen=True)
class ControlOptions:
    space: str = "pixels-norm"
    positive_scores: tuple[str, ...] = ("registered",)
    null_scores: tuple[str, ...] = ("distance",)
    #: spaces the feature null scores run in (default: the control's `space` only); image null scores
    #: ("patches", "registered") run once on the images
    null_spaces: tuple[str, ...] = ()
    null_repeats: int = 10
    fraction: float = 0.5
    copy_from: str = "not_used"      # which real images are copied when labels exist
    seed: int = 0
    n_boot: int = 1000
    #: the image null scores smoothed over this many nearest slices of each scan group, as
    #: `MembershipOptions.scan_smoothing` smooths the run's column (the null tests the column a run cuts)
    scan_smoothing: int = 1

    def __post_init__(self) -> None:
        from synthscope.membership.registration import IMAGE_SCORES
        from synthscope.membership.scores import SCORES
        from synthscope.membership.spaces import get_space

        object.__setattr__(self, "positive_scores", tuple(self.positive_scores))
        object.__setattr__(self, "null_scores", tuple(self.null_scores))
        object.__setattr__(self, "null_spaces", tuple(self.null_spaces) or (self.space,))
        check_smoothing(self.scan_smoothing)
        get_space(self.space)
        for name in self.null_spaces:
            get_space(name)
        for name in self.positive_scores:
            if name not in SCORES + IMAGE_SCORES:
                raise ValueError(f"unknown positive-control score {name!r}; choose from {', '.join(SCORES + IMAGE_SCORES)}")
        for name in self.null_scores:
            if name not in SCORES + IMAGE_SCORES:
                raise ValueError(f"unknown null-control score {name!r}; choose from {', '.join(SCORES + IMAGE_SCORES)}")
        if self.copy_from not in COPY_FROM:
            raise ValueError(f"copy_from must be one of {', '.join(COPY_FROM)}")
        if not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if self.null_repeats < 1:
            raise ValueError("null_repeats must be at least 1")


@dataclass
class PositiveOutcome:
    result: ControlResult
    threshold: float
    threshold_source: str            # "dev-fitted" (on dev's own planted copies) | "mixture"
    f1: object                       # metrics.Estimate of flagging the copies at that threshold
    n_flagged: int
    n_copied: int


@dataclass
class GroupControls:
    group: str
    dev_group: str | None
    positive: dict[str, PositiveOutcome]
    null: dict[str, ControlResult]           # "space:score" or "images:score" -> result

    @property
    def passed(self) -> bool:
        return all(p.result.passed for p in self.positive.values()) and all(n.passed for n in self.null.values())


@dataclass
class ControlsReport:
    groups: list[GroupControls]
    options: ControlOptions

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.groups)


def _copy_candidates(used, copy_from: str):
    if used is None or copy_from == "all":
        return None
    return used == (1 if copy_from == "used" else 0)


def run_controls(dataset, dev=None, options: ControlOptions | None = None, *, used: pd.Series | None = None,
                 cache=None, device: str = "auto", progress=False, **option_values) -> ControlsReport:
    """Positive control (planted near copies must be flagged; with `dev`, its threshold is fit on dev's own
    planted copies) and null control (held-out real images as the generated set must give "no leakage")
    for every group of `dataset`.

    `used` (image_id -> 0/1) overrides the dataset's own labels: it only decides which images are copied and
    keeps the null control's splits class-balanced -- building the controls, never fitting a threshold.
    """
    from synthscope.membership.pipeline import _group_rows, _used_labels, pair_groups
    from synthscope.membership.spaces import dataset_space_features
    from synthscope.membership.thresholds import fit_threshold
    from synthscope.metrics import membership_report

    if options is None:
        options = ControlOptions(**option_values)
    features = dataset_space_features(dataset, options.space, cache=cache, device=device, progress=progress)
    groups = sorted(dataset.manifest.loc[dataset.manifest["role"] == "real", "group"].unique())
    pairs = pair_groups(groups, sorted(dev.manifest["group"].unique())) if dev is not None else {}
    embed = lambda images: space_features(images, options.space, cache=cache, device=device)  # noqa: E731
    out = []
    for group in groups:
        real_rows, gen_rows = _group_rows(dataset, group)
        labels = _used_labels(dataset, real_rows)
        if used is not None:
            labels = used.loc[dataset.manifest["image_id"].to_numpy()[real_rows]].astype(int).to_numpy()
        images, gen_images = dataset.images(real_rows), dataset.images(gen_rows)
        positive = {}
        for score in options.positive_scores:
            threshold, source = None, "mixture"
            if dev is not None:
                d_real, d_gen = _group_rows(dev, pairs[group])
                _, d_scores, d_truth = run_positive_control(
                    embed, dev.images(d_real), dev.images(d_gen), score=score, fraction=options.fraction,
                    candidates=_copy_candidates(_used_labels(dev, d_real), options.copy_from), seed=options.seed)
                threshold, source = fit_threshold(d_scores, d_truth, "f1").threshold, "dev-fitted"
            result, scores, truth = run_positive_control(
                embed, images, gen_images, score=score, fraction=options.fraction,
                candidates=_copy_candidates(labels, options.copy_from), seed=options.seed + 7)
            if threshold is None:
                threshold = fit_threshold(scores, None).threshold   # label-free: two-component mixture
            flagged = (scores >= threshold).astype(int)
            f1 = membership_report(truth.astype(int), flagged, n_boot=options.n_boot).estimates["f1"]
            positive[score] = PositiveOutcome(result, float(threshold), source, f1, int(flagged.sum()),
                                              int(truth.sum()))
        # one split per repeat for every column: whole scan groups found without labels in 64 px grey levels
        scan = near_duplicate_groups(dataset_space_features(dataset, "pixels", cache=cache, device=device)[real_rows])
        null = {}
        for score in options.null_scores:
            if score in IMAGE_NULL_SCORES:
                if labels is not None:
                    null[f"images:{score}"] = null_control(features[real_rows], labels, score=score,
                                                           n_repeats=options.null_repeats, seed=options.seed,
                                                           groups=scan, images=images,
                                                           smoothing=options.scan_smoothing)
                continue
            for space in options.null_spaces:
                matrix = dataset_space_features(dataset, space, cache=cache, device=device)[real_rows]
                null[f"{space}:{score}"] = null_control(matrix, labels, score=score, n_repeats=options.null_repeats,
                                                        seed=options.seed, groups=scan)
        out.append(GroupControls(group, pairs.get(group), positive, null))
    return ControlsReport(out, options)
