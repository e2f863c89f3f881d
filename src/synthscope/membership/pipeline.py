"""Whole data sets: pair dev groups with test groups, score, fit on dev, predict test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synthscope.progress import ProgressTracker
from synthscope.membership.rows import GENERATED_CHUNK, FeatureRows, ImageRows, streamed_knn
from synthscope.membership.columns import (
    DEFAULT_COLUMN_ORDER, MembershipResult, choose_column, default_ensemble_columns, score_membership,
)
from synthscope.membership.expectation import Expectation, expected_performance
from synthscope.membership.patch_tables import patch_typicality
from synthscope.membership.patches import patch_copy_score
from synthscope.membership.registration import IMAGE_SCORES, registered_copy_score
from synthscope.membership.scores import SCORES, near_duplicate_groups, rank_ensemble
from synthscope.membership.spaces import DEFAULT_SPACES, dataset_space_rows
from synthscope.membership.thresholds import (
    SMOOTHED, ThresholdFit, banded_two_means, check_smoothing, fit_threshold, scan_smoothed, smoothing_applies,
    with_smoothed,
)
from synthscope.membership.verdicts import LeakageVerdict, best_baseline, leakage_test, rank_test, with_baseline_caveat


REFERENCES = ("pool", "dev")
#: which generated images a paired dev and scored group are scored against: their own folder's, or both
#: folders' together (one generator; more images, and dev and test scores on one scale)
GENERATED_CHOICES = ("pooled", "own")
#: where the threshold comes from with a dev set: "auto" = "two_means_band" when the dev gate finds leakage (else fit
#: on dev); "two_means_band" = the two-means cut of the scored folder's own scores kept within 0.15 of the fraction
#: used that dev's rates estimate for that folder (adjusted count); "dev" = fit on dev; or a label-free cut always
THRESHOLD_CHOICES = ("auto", "dev", "two_means_band", "two_means", "mixture")
#: the image scores' functions: uint8 real [n, H, W], generated [m, H, W] -> score per real image
IMAGE_SCORE_FUNCTIONS = {"registered": registered_copy_score, "patches": patch_copy_score}
OBJECTIVE_CHOICES = ("f1", "accuracy", "kappa")
#: nearest generated images kept per real image for the galleries (64 px grey levels)
GALLERY_NEIGHBOURS = 3
GALLERY_SPACE = "pixels"


@dataclass(frozen=True)
class MembershipOptions:
    """Everything that decides a sub-task 1 answer. The CLI, the dashboard and the benchmark build
    one of these and call `run_membership`, so the same folders and options give the same answer."""

    spaces: tuple[str, ...] = DEFAULT_SPACES
    scores: tuple[str, ...] = SCORES + IMAGE_SCORES
    #: a score column ("images:registered", "pixels-norm:distance", "ensemble") or "auto" = the column with
    #: the highest dev AUC (the dev verdict is then Bonferroni-corrected for the choice)
    primary: str = "auto"
    objective: str = "f1"
    prevalence: float | None = None
    reference: str = "pool"
    generated: str = "pooled"
    threshold: str = "auto"
    alpha: float = 0.05
    n_neighbors: int = 1
    #: weight of the patch score's typicality term (`patch_tables.patch_typicality`; 0 = the raw patch score).
    #: TYPICALITY_WEIGHT gained kappa on scan-disjoint re-splits of the v3 pool at 20 and 50 generated images per
    #: folder, but is not the default: with it, v3s few 20 fell to kappa 0.567 outside its expected CI and v3's
    #: nested-CV expectation became a zero-width 1.00 that the test result lies outside (docs/design.md)
    patch_typicality: float = 0.0
    #: scan smoothing: the chosen column (dev and scored folder) averaged with each image's `scan_smoothing` nearest
    #: slices of its label-free scan group before the cut (`thresholds.scan_smoothed`; 0 = off), when dev's labels
    #: follow dev's groups (`smoothing_applies`); chosen on scan-disjoint re-splits (docs/design.md, fifth round)
    scan_smoothing: int = 1

    def __post_init__(self) -> None:
        from synthscope.membership.spaces import SPACES

        object.__setattr__(self, "spaces", tuple(self.spaces))
        object.__setattr__(self, "scores", tuple(self.scores))
        if not self.spaces:
            raise ValueError("at least one feature space is needed")
        if not self.patch_typicality >= 0:
            raise ValueError("patch_typicality must be >= 0")
        check_smoothing(self.scan_smoothing)
        unknown = [s for s in self.spaces if s not in SPACES]
        if unknown:
            raise ValueError(f"unknown space(s) {', '.join(unknown)}; choose from {', '.join(SPACES)}")
        unknown = [s for s in self.scores if s not in SCORES + IMAGE_SCORES]
        if unknown or not self.scores:
            raise ValueError(f"unknown score(s) {unknown}; choose from {', '.join(SCORES + IMAGE_SCORES)}")
        if self.objective not in OBJECTIVE_CHOICES:
            raise ValueError(f"unknown objective {self.objective!r}; choose {', '.join(OBJECTIVE_CHOICES)}")
        if self.threshold not in THRESHOLD_CHOICES:
            raise ValueError(f"threshold must be one of {', '.join(THRESHOLD_CHOICES)}")
        if self.generated not in GENERATED_CHOICES:
            raise ValueError(f"generated must be one of {', '.join(GENERATED_CHOICES)}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}")
        if self.prevalence is not None and not 0 <= self.prevalence <= 1:
            raise ValueError("prevalence must be in [0, 1]")
        if self.n_neighbors < 1:
            raise ValueError("n_neighbors must be at least 1")


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
    choice: str = ""                    # why `primary` is the column (what chose it, among how many)
    n_tests: int = 1                    # columns the choice was made among (the gate's Bonferroni factor)
    dev_used: np.ndarray | None = None  # dev labels (1 used), aligned with dev_result.scores
    #: per real image of the scored group, then of the dev group: the nearest generated image ids and
    #: distances (64 px grey levels), for the galleries; columns real_id, rank, generated_id, distance, split
    nearest: pd.DataFrame | None = None
    #: groups of neighbouring slices (found label-free in 64 px grey levels) for the cluster bootstrap
    scan_groups: np.ndarray | None = None
    dev_scan_groups: np.ndarray | None = None
    name: str = ""                      # the group, or its folder's name when the layout is flat
    dev_name: str | None = None
    #: nested-CV expectation of the whole procedure on new images (None without dev or with too few groups)
    expected: Expectation | None = None
    generated: str = ""                 # which generated images the real images were scored against

    @property
    def scores(self) -> np.ndarray:
        """The primary column for the scored group's real images (higher = more likely used)."""
        return self.result.scores[self.primary].to_numpy()

    @property
    def dev_scores(self) -> np.ndarray | None:
        return None if self.dev_result is None else self.dev_result.scores[self.primary].to_numpy()

    @property
    def dev_predictions(self) -> pd.Series | None:
        """What the threshold calls the dev images (for the dev metrics)."""
        if self.dev_result is None:
            return None
        return pd.Series(predict(self.dev_scores, self.threshold.threshold),
                         index=self.dev_result.scores.index, name="used")

    def story(self) -> list[str]:
        """What each test asked, which one gates the predictions, and what to conclude, in plain words."""
        return membership_story(self)


def predict(scores, threshold: float) -> np.ndarray:
    """1 = used: a score at or above the threshold. The one rule every surface applies."""
    return (np.asarray(scores, dtype=float) >= float(threshold)).astype(np.int64)


def within_group_rank(scores) -> np.ndarray:
    """1 = the most likely used image of its group (ties share the best rank)."""
    return pd.Series(np.asarray(scores, dtype=float)).rank(ascending=False, method="min").astype(int).to_numpy()


def membership_story(run: GroupRun) -> list[str]:
    verdict = run.verdict
    lines = []
    if run.dev_result is not None:
        lines.append(f"Gate (decides whether the predictions mean anything): on the labelled dev group "
                     f"{run.dev_name}, do used images score higher than not-used ones? A one-sided rank test of "
                     f"{run.primary}" + (f", Bonferroni x{run.n_tests} for choosing it" if run.n_tests > 1 else "")
                     + f": {verdict.message}")
        lines.append(f"Label-free check on {run.name} (a different question): are the generated "
                     f"images closer to these real images than held-out real images are, i.e. wholesale copying? "
                     f"{run.copying_verdict.message}")
        if run.expected is not None:
            lines.append(run.expected.message())
        if verdict.significant and run.expected is not None and not run.expected.beats_all_used:
            lines.append("Conclusion: the dev test finds leakage, but the whole procedure (choice and threshold) is not "
                         "expected to beat calling every image used on new images: report the all-used baseline beside "
                         "any F1 from this run, and do not claim these predictions as a finding.")
        elif verdict.significant and not run.copying_verdict.significant:
            lines.append("Conclusion: the generator leaks some of its training images (the dev test), but it does "
                         "not copy the pool wholesale (the label-free check); both can hold at once. "
                         "Trust the predictions only as far as the dev test and its CAUTION, if any, allow.")
        elif verdict.significant:
            lines.append("Conclusion: leakage is found on dev and the generated images sit unusually close to the "
                         "real pool; the predictions carry the dev-tested signal.")
        else:
            lines.append("Conclusion: no evidence on dev that this score tells used from not-used images, so the "
                         "predictions are no better than calling every image used.")
    else:
        lines.append(f"Gate: no labelled dev set, so the label-free data-copying test decides: {verdict.message}")
        lines.append("Conclusion: " + ("the generated images sit closer to the real pool than held-out images "
                                       "would; the threshold is label-free (mixture or prevalence)."
                                       if verdict.significant else
                                       "no evidence of copying; the predictions are no better than the all-used "
                                       "baseline."))
    return lines


@dataclass
class MembershipRun:
    """The answer for every group of a scored data set, as `synthscope membership` prints it."""

    groups: list[GroupRun]
    options: MembershipOptions

    @property
    def predictions(self) -> pd.Series:
        return pd.concat([g.predictions for g in self.groups])

    def __iter__(self):
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> GroupRun:
        return self.groups[index]

    @property
    def leaked(self) -> bool:
        return any(g.verdict.significant for g in self.groups)

    def scores_table(self) -> pd.DataFrame:
        """image_id, group, column (the score column behind the group's calls), score, rank (1 = most likely used
        within its group), used: the --scores file. Columns differ in scale, so scores compare within a group."""
        parts = [pd.DataFrame({"image_id": g.predictions.index.astype(str), "group": g.group, "column": g.primary,
                               "score": g.scores,
                               "rank": within_group_rank(g.scores), "used": g.predictions.to_numpy()})
                 for g in self.groups]
        return pd.concat(parts, ignore_index=True)

    def frame(self, split: str = "test", dev_split: str = "dev") -> pd.DataFrame:
        """One row per real image the run saw: the dev images its thresholds came from, then the scored
        images. Columns split, group, pair, image_id, label (dev: 1 used / 0 not used; scored: -1),
        score, rank, predicted."""
        parts = []
        for g in self.groups:
            pair = g.group if g.dev_group is None else f"{g.dev_group} -> {g.group}"
            if g.dev_result is not None:
                parts.append(pd.DataFrame({
                    "split": dev_split, "group": g.dev_group, "pair": pair,
                    "image_id": g.dev_result.scores.index.astype(str), "label": g.dev_used.astype(int),
                    "score": g.dev_scores, "rank": within_group_rank(g.dev_scores),
                    "predicted": g.dev_predictions.to_numpy()}))
            parts.append(pd.DataFrame({
                "split": split, "group": g.group, "pair": pair, "image_id": g.predictions.index.astype(str),
                "label": -1, "score": g.scores, "rank": within_group_rank(g.scores),
                "predicted": g.predictions.to_numpy()}))
        return pd.concat(parts, ignore_index=True)


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


def run_membership(dataset, dev=None, options: MembershipOptions | None = None, *, cache=None,
                   device: str = "auto", progress=False, features=None, dev_features=None,
                   chunk_size: int = GENERATED_CHUNK, **option_values) -> MembershipRun:
    """Membership for every group of `dataset` (e.g. a test folder), with thresholds fit on `dev`.

    `options` (or its fields as keywords) decide the answer; see `MembershipOptions`. With
    reference "pool" each group is calibrated against its own real images leave-one-out; with "dev"
    against the paired dev group's real images (and the dev group against this group's), no labels used.
    `features` / `dev_features` ({space: matrix row-aligned with the manifest}) skip the extractors.
    Generated features are read `chunk_size` rows at a time (from the cache, or from the given matrices) and
    every feature score is a running reduction over those chunks, so memory depends on the chunk, not on the
    number of generated images (0 = one chunk: everything at once). The answer does not depend on it beyond
    float32 rounding, and one chunk holding the whole set gives the unstreamed answer bit for bit.
    Labels of `dataset` are used only when no dev is given and they exist (then it is evaluated on itself).
    """
    if options is None:
        options = MembershipOptions(**option_values)
    elif option_values:
        raise TypeError("pass either options or option keywords, not both")
    spaces, alpha = options.spaces, options.alpha
    if dev is None and options.reference == "dev":
        raise ValueError("reference='dev' needs a dev data set")
    wanted = tuple(dict.fromkeys(spaces + (GALLERY_SPACE,)))
    features = _space_rows(dataset, wanted, cache, device, progress, chunk_size, given=features)
    if dev is not None:
        dev_features = _space_rows(dev, wanted, cache, device, progress, chunk_size, given=dev_features)
    feature_scores = [s for s in options.scores if s not in IMAGE_SCORES]
    image_scores = [s for s in IMAGE_SCORES if s in options.scores]

    def score_group(data, real_rows, gen, ref, used, chosen):
        """Every column for `data`'s real images at `real_rows` against `gen` (a GeneratedSet)."""
        ids = data.manifest["image_id"].to_numpy()[real_rows]
        real = {s: _take(data_features[id(data)][s], real_rows) for s in spaces}
        result = score_membership(real, gen.features, ref, ids=ids, scores=feature_scores or ("distance",),
                                  used=used, primary="ensemble", alpha=alpha, n_neighbors=options.n_neighbors)
        if not feature_scores:
            result.scores = result.scores.drop(columns=[c for c in result.scores.columns if c != "ensemble"])
        if image_scores:
            # computed on the images whatever the spaces, so these columns mean the same in every configuration
            for name in image_scores:     # the patch score reads the real images a chunk at a time too
                real_images = ImageRows([(data, real_rows)]) if name == "patches" else data.images(real_rows)
                values = IMAGE_SCORE_FUNCTIONS[name](real_images, gen.images())
                if name == "patches" and options.patch_typicality:
                    values = values + options.patch_typicality * typicality[id(data)]
                result.scores.insert(len(result.scores.columns) - 1, f"images:{name}", values)
            result.scores["ensemble"] = rank_ensemble(result.scores,
                                                      default_ensemble_columns(result.scores.columns))
            if used is not None:
                result.verdicts = {c: rank_test(result.scores[c].to_numpy(), used, alpha=alpha)
                                   for c in result.scores.columns}
        if chosen is not None:
            _check_column(chosen, result.scores.columns)
            result.primary = chosen
            if used is not None:
                result.verdict = result.verdicts[chosen]
        return result

    data_features = {id(dataset): features}
    if dev is not None:
        data_features[id(dev)] = dev_features
    groups = sorted(dataset.manifest.loc[dataset.manifest["role"] == "real", "group"].unique())
    pairs = pair_groups(groups, sorted(dev.manifest["group"].unique())) if dev is not None else {}
    runs = []
    tracker = progress if isinstance(progress, ProgressTracker) else None
    for group in groups:
        step = tracker.step(*score_step(dataset, group), unit="real images") if tracker is not None else None
        real_rows, gen_rows = _group_rows(dataset, group)
        ids = dataset.manifest["image_id"].to_numpy()[real_rows]
        real = {s: _take(features[s], real_rows) for s in spaces}
        own_gen = GeneratedSet.of(dataset, features, gen_rows, spaces)
        dev_result, dev_group, dev_used, n_tests, expected, dev_scan = None, pairs.get(group), None, 1, None, None
        pixels_here = _take(features[GALLERY_SPACE], real_rows)   # the scan groups' and smoothing's space
        scan = near_duplicate_groups(pixels_here)
        typicality = _typicality(options, image_scores, dataset, features, real_rows, dev,
                                 dev_features if dev is not None else None, pairs.get(group))
        if dev is not None:
            dev_real_rows, dev_gen_rows = _group_rows(dev, dev_group)
            dev_used = _used_labels(dev, dev_real_rows)
            if dev_used is None or dev_used.min() == dev_used.max():
                raise ValueError(f"dev group {dev_group!r} of {dev.root} needs real images labelled both used and "
                                 f"not used")
            dev_real = {s: _take(dev_features[s], dev_real_rows) for s in spaces}
            dev_pixels = _take(dev_features[GALLERY_SPACE], dev_real_rows)
            dev_scan = near_duplicate_groups(dev_pixels)
            dev_gen = GeneratedSet.of(dev, dev_features, dev_gen_rows, spaces)
            if options.generated == "pooled":    # one generator: both folders' images, one scale for dev and test
                dev_gen = own_gen = dev_gen.join(own_gen)
            try:
                dev_result = score_group(dev, dev_real_rows, dev_gen,
                                         real if options.reference == "dev" else None, dev_used, None)
            except ValueError as error:      # e.g. too few real images: name the set and the group
                raise ValueError(f"dev set {dev.root}, group {_name(dev, dev_group)} "
                                 f"({len(dev_real_rows)} real images): {error}") from None
            if step is not None:   # the dev group is about half of the group's work
                step(min(len(dev_real_rows), step.step.units))
            chosen = options.primary
            if chosen == "auto":
                column_choice = choose_column(dev_result.scores, dev_used, groups=dev_scan, alpha=alpha)
                chosen = column_choice.column
                # a pre-set default needs no correction; a challenger that overturned it was picked among all
                n_tests = len(dev_result.scores.columns) if column_choice.overturned else 1
                choice = f"{column_choice.message}, on dev group {_name(dev, dev_group)} (--primary auto)"
            else:
                choice = f"asked for (--primary {chosen})"
            _check_column(chosen, dev_result.scores.columns)
            gate = with_baseline_caveat(
                rank_test(dev_result.scores[chosen].to_numpy(), dev_used, alpha=alpha, n_tests=n_tests),
                dev_result.best_baseline, n_baselines=len(dev_result.baseline_verdicts), alpha=alpha)
            baseline = dev_result.best_baseline
            result = score_group(dataset, real_rows, own_gen,
                                 dev_real if options.reference == "dev" else None, None, chosen)
            dev_table = with_smoothed(dev_result.scores, dev_pixels, dev_scan, options.scan_smoothing)  # nested CV
            if smoothing_applies(options.scan_smoothing, dev_used, dev_scan, alpha):   # chosen column, label-free
                for table, pixels, groups in ((dev_result.scores, dev_pixels, dev_scan),
                                              (result.scores, pixels_here, scan)):
                    table[chosen] = scan_smoothed(table[chosen].to_numpy(), pixels, groups, options.scan_smoothing)
                choice += f"; scores smoothed over {options.scan_smoothing} nearest slice(s) of each scan group"
            threshold = _threshold(options, dev_result.scores[chosen].to_numpy(), dev_used,
                                   result.scores[chosen].to_numpy(), gate.significant)
            copying = result.verdict
            expected = expected_performance(dev_table, dev_used, dev_scan, _procedure(options, alpha), seed=0,
                                            scored_calls=predict(result.scores[chosen].to_numpy(), threshold.threshold))
        else:
            own_used = _used_labels(dataset, real_rows)
            result = score_group(dataset, real_rows, own_gen, None, None, None)
            chosen = (next((c for c in DEFAULT_COLUMN_ORDER if c in result.scores.columns), "ensemble")
                      if options.primary == "auto" else options.primary)
            _check_column(chosen, result.scores.columns)
            result.primary = chosen
            choice = (f"the default column (no dev labels to choose on)" if options.primary == "auto"
                      else f"asked for (--primary {chosen})")
            copying = leakage_test(real=real[spaces[0]], generated=own_gen.features[spaces[0]], alpha=alpha)
            gate, baseline = copying, None
            if own_used is not None and own_used.min() != own_used.max():
                baseline = best_baseline(result.baseline, own_used, alpha=alpha)
                gate = with_baseline_caveat(rank_test(result.scores[chosen].to_numpy(), own_used, alpha=alpha),
                                            baseline, n_baselines=result.baseline.shape[1], alpha=alpha)
            # no dev labels: a label-free rule asked for (--threshold two_means|mixture) is honoured
            rule = options.threshold if options.threshold in ("two_means", "mixture") else "mixture"
            threshold = fit_threshold(result.scores[chosen].to_numpy(), None, prevalence=options.prevalence,
                                      label_free=rule)
        values = result.scores[chosen].to_numpy()
        predictions = pd.Series(predict(values, threshold.threshold), index=pd.Index(ids, name="image_id"),
                                name="used")
        nearest = [_nearest_generated(dataset, features, real_rows, gen_rows, "scored")]
        if dev is not None:
            nearest.append(_nearest_generated(dev, dev_features, dev_real_rows, dev_gen_rows, "dev"))
        runs.append(GroupRun(group, dev_group, result, dev_result, chosen, threshold, predictions, gate, copying,
                             baseline, choice=choice, n_tests=n_tests, dev_used=dev_used,
                             nearest=pd.concat(nearest, ignore_index=True),
                             scan_groups=scan,
                             dev_scan_groups=dev_scan,
                             name=_name(dataset, group), dev_name=None if dev is None else _name(dev, dev_group),
                             expected=expected, generated=own_gen.description))
        if step is not None:
            step.__exit__(None, None, None)
    return MembershipRun(runs, options)


def _typicality(options, image_scores, dataset, features, real_rows, dev, dev_features, dev_group) -> dict:
    """{id(data set): patch typicality of its group's real images}, against the scored folder's and the paired dev
    group's real images together, other scans only (groups of neighbouring slices found without labels on the
    union): one reference for both, so dev and the folder's scores keep one scale."""
    if "patches" not in image_scores or not options.patch_typicality:
        return {}
    parts = [(dataset, real_rows, features)]
    if dev is not None:
        parts.append((dev, _group_rows(dev, dev_group)[0], dev_features))
    images = np.concatenate([data.images(rows) for data, rows, _ in parts])
    groups = near_duplicate_groups(np.concatenate([_take(f[GALLERY_SPACE], rows) for _, rows, f in parts]))
    values = patch_typicality(images, groups)
    return {id(parts[0][0]): values[:len(real_rows)], **({id(parts[1][0]): values[len(real_rows):]} if dev is not None
                                                         else {})}


@dataclass
class GeneratedSet:
    """The generated images a group's real images are scored against: features per space (`FeatureRows`, read a
    chunk at a time), images on demand."""
    features: dict[str, FeatureRows]
    parts: list                          # (dataset, rows) whose images make up the set, in order
    description: str

    @classmethod
    def of(cls, data, features, rows, spaces) -> "GeneratedSet":
        return cls({s: features[s].subset(rows) for s in spaces}, [(data, rows)],
                   f"{len(rows)} generated images of {_name(data, data.manifest['group'].to_numpy()[rows[0]])}")

    def join(self, other: "GeneratedSet") -> "GeneratedSet":
        return GeneratedSet({s: self.features[s].join(other.features[s]) for s in self.features},
                            self.parts + other.parts, f"{self.description} and {other.description}, pooled")

    def images(self) -> ImageRows:
        """The images, decoded a chunk at a time as the image scores slice them."""
        return ImageRows(self.parts)


def _threshold(options: MembershipOptions, dev_scores, dev_used, scored, leaked: bool) -> ThresholdFit:
    """The threshold rule with a dev set. Dev and scored folders come from different scans, and a score's level
    moves with the scans' content, so a cut in score units fit on dev lands off the scored folder's gap; when
    dev shows leakage the scored folder's own scores are cut (two-means), kept within `PREVALENCE_BAND` of the
    fraction used that dev's rates estimate for that folder (adjusted count). Chosen on repeated scan-disjoint
    re-splits of the v3 pool with 20 and 50 generated images per folder and 30, 50 and 70 % used in the scored
    folder (docs/design.md); the no-leakage case keeps the cut fit on dev."""
    if options.prevalence is not None:
        return fit_threshold(scored, None, prevalence=options.prevalence)
    rule = options.threshold
    if rule == "auto":
        rule = "two_means_band" if leaked else "dev"
    if rule == "dev":
        return fit_threshold(dev_scores, dev_used, options.objective)
    if rule == "two_means_band":
        return banded_two_means(scored, dev_scores, dev_used)
    return fit_threshold(scored, None, label_free=rule)


def _procedure(options: MembershipOptions, alpha: float):
    """`run_membership`'s choice of column, gate and threshold as a function of training rows (nested CV).
    Label-free cuts use the whole folder's scores, labels unread, as they use the scored folder's on test.
    With scan smoothing the fold's gate (its training labels within their scan groups) decides whether the
    column's smoothed copy is cut."""
    def procedure(train, scores, used, groups):
        raw = scores[[c for c in scores.columns if not c.endswith(SMOOTHED)]]
        if options.primary == "auto":
            choice = choose_column(raw.iloc[train], used[train], groups=groups[train], alpha=alpha)
            column, n_tests = choice.column, (len(raw.columns) if choice.overturned else 1)
        else:
            column, n_tests = options.primary, 1
        leaked = rank_test(scores[column].to_numpy()[train], used[train], alpha=alpha, n_tests=n_tests).significant
        if column + SMOOTHED in scores.columns and smoothing_applies(options.scan_smoothing, used[train],
                                                                     groups[train], alpha):
            column += SMOOTHED
        values = scores[column].to_numpy()
        return column, _threshold(options, values[train], used[train], values, leaked).threshold
    return procedure


def _name(dataset, group: str | None) -> str:
    from pathlib import Path

    return str(group) if group else Path(dataset.root).name


def _check_column(column: str, columns) -> None:
    if column not in columns:
        raise ValueError(f"unknown score column {column!r}; available: {', '.join(columns)}")


def _space_rows(dataset, spaces, cache, device, progress, chunk, given=None) -> dict[str, FeatureRows]:
    """Each space's features of every manifest row, lazy: given matrices wrapped, the rest read from the cache.
    With a `ProgressTracker` as `progress`, each space's embedding is one step (`space_step`)."""
    given = dict(given or {})
    rows = {}
    for s in spaces:
        if s in given:
            rows[s] = FeatureRows.from_array(given[s], chunk=chunk)
        elif isinstance(progress, ProgressTracker):
            with progress.step(*space_step(s, dataset)) as tick:
                rows[s] = dataset_space_rows(dataset, s, cache=cache, device=device, progress=tick, chunk=chunk)
        else:
            rows[s] = dataset_space_rows(dataset, s, cache=cache, device=device, progress=progress, chunk=chunk)
    return rows


def space_step(space: str, dataset) -> tuple[str, str]:
    """(key, label) of the progress step embedding `dataset` for `space`; spaces sharing an extractor share it."""
    from synthscope.membership.spaces import get_space

    extractor = get_space(space)
    where = f"{Path(dataset.root).parent.name}/{Path(dataset.root).name}"
    return (f"embed {extractor.extractor} {sorted(extractor.options.items())} {dataset.root}",
            f"{extractor.extractor} features ({space}) of {where}")


def score_step(dataset, group: str) -> tuple[str, str]:
    return f"score {dataset.root} {group}", f"membership scores of {_name(dataset, group)}"


def plan_membership(tracker: ProgressTracker, dataset, dev=None, options: MembershipOptions | None = None, *,
                    cache_dir, device: str = "auto") -> bool:
    """Plan `run_membership_cached`'s steps on `tracker`: each space's embedding per data set (the images not
    cached yet) and each group's scoring. Nothing when the run is cached; returns whether it is."""
    from synthscope.cache import EmbeddingCache, _resolve_extractor, dataset_keys
    from synthscope.features import get_extractor
    from synthscope.membership.spaces import get_space
    from synthscope.progress import cost_per_image

    options = options or MembershipOptions()
    if run_cache_path(dataset, dev, options, cache_dir).is_file():
        return True
    cache = EmbeddingCache(cache_dir)
    for data in (dataset, dev):
        if data is None:
            continue
        keys = set(dataset_keys(data))
        for space in dict.fromkeys(options.spaces + (GALLERY_SPACE,)):
            key, label = space_step(space, data)
            if key not in tracker.steps:
                found = get_space(space)
                extractor = _resolve_extractor(get_extractor(found.extractor, **found.options), device)
                tracker.plan(key, label, len(keys - cache.keys(extractor)), cost_per_unit=cost_per_image(space))
    manifest = dataset.manifest
    for group in sorted(manifest.loc[manifest["role"] == "real", "group"].unique()):
        n_real = int(((manifest["group"] == group) & (manifest["role"] == "real")).sum())
        if dev is not None:
            n_real *= 2   # its dev group is scored too (about as many real images)
        tracker.plan(*score_step(dataset, group), n_real, unit="real images", cost_per_unit=cost_per_image("score"))
    return False


def _nearest_generated(dataset, features, real_rows, gen_rows, split: str) -> pd.DataFrame:
    """Each real image's nearest generated images of its group in 64 px grey levels (the galleries)."""
    X = features[GALLERY_SPACE]
    k = min(GALLERY_NEIGHBOURS, len(gen_rows))
    distances, found = streamed_knn(_take(X, real_rows), X.subset(gen_rows), k)
    ids = dataset.manifest["image_id"].to_numpy()
    return pd.DataFrame({
        "split": split, "real_id": np.repeat(ids[real_rows].astype(str), k), "rank": np.tile(np.arange(k), len(real_rows)),
        "generated_id": ids[gen_rows][found.ravel()].astype(str), "distance": distances.ravel().astype(float)})


def _take(X, rows: np.ndarray) -> np.ndarray:
    """X[rows] (read from a FeatureRows), as a view when X is an array and the rows are one run (a group's images
    are contiguous in the sorted manifest): at 100,000 generated images a copy per call was most of a run's memory."""
    if isinstance(X, FeatureRows):
        return X.take(rows)
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
        return X[rows[0]:rows[-1] + 1]
    return X[rows]


def _group_rows(dataset, group: str) -> tuple[np.ndarray, np.ndarray]:
    m = dataset.manifest
    in_group = (m["group"] == group).to_numpy()
    real = np.flatnonzero(in_group & (m["role"] == "real").to_numpy())
    gen = np.flatnonzero(in_group & (m["role"] == "generated").to_numpy())
    if len(real) == 0 or len(gen) == 0:
        raise ValueError(f"group {group!r} of {dataset.root} needs both real and generated images (has "
                         f"{len(real)} real, {len(gen)} generated)")
    return real, gen


def _used_labels(dataset, rows) -> np.ndarray | None:
    labels = dataset.manifest["label"].to_numpy()[rows]
    if not np.isin(labels, ["used", "not_used"]).all():
        return None
    return (labels == "used").astype(int)


# --------------------------------------------------------------------------------------------------
# A finished run, cached: what the dashboard reads on every page load and `synthscope prepare` computes
# --------------------------------------------------------------------------------------------------

RUN_CACHE_SCHEMA = 1
#: code whose change must invalidate a cached run (scores, features, decoding)
_RUN_CODE = ("membership", "features", "imageio.py", "data.py", "cache.py")


def _code_digest() -> str:
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _RUN_CODE:
        target = root / name
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_key(dataset, dev, options: MembershipOptions) -> str:
    """What a run depends on: the images (by content), their roles and labels, the options, the code."""
    import dataclasses
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps({"schema": RUN_CACHE_SCHEMA, "options": dataclasses.asdict(options),
                                        "code": _code_digest()}, sort_keys=True, default=str).encode())
    for data in (dataset, dev):
        if data is None:
            digest.update(b"<no dev>")
            continue
        columns = data.manifest[["image_id", "role", "group", "label", "sha256"]]
        digest.update(columns.to_csv(index=False).encode())
        digest.update(str(getattr(data, "size_policy", "error")).encode())
    return digest.hexdigest()[:32]


def run_cache_path(dataset, dev, options: MembershipOptions, cache_dir):
    """Where `run_membership_cached` keeps the run of these folders and options."""
    from pathlib import Path

    return Path(cache_dir) / "runs" / f"membership-{run_key(dataset, dev, options)}.pkl"


def run_membership_cached(dataset, dev=None, options: MembershipOptions | None = None, *, cache_dir,
                          device: str = "auto", progress=False) -> tuple[MembershipRun, bool]:
    """`run_membership` with its result kept under `<cache_dir>/runs/`: the same images, labels, options and
    code give the stored run back (bit for bit what a fresh run returns). Returns (run, was_cached).
    A damaged file is recomputed and replaced."""
    import pickle
    from pathlib import Path

    from synthscope.cache import EmbeddingCache
    from synthscope.outputs import atomic_save

    options = options or MembershipOptions()
    path = run_cache_path(dataset, dev, options, cache_dir)
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                run = pickle.load(handle)
            if isinstance(run, MembershipRun):
                return run, True
        except Exception:   # truncated or from another version: recompute below
            pass
    run = run_membership(dataset, dev, options, cache=EmbeddingCache(cache_dir), device=device, progress=progress)
    atomic_save(path, lambda stream: pickle.dump(run, stream, protocol=pickle.HIGHEST_PROTOCOL), durable=False)
    return run, False
