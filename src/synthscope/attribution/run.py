"""Whole data sets: the one sub-task 2 orchestrator (`run_attribution`), its options and result, dev
cross-validation of the 2025 subset classifier, and evaluation against ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from synthscope.attribution.clustering import ALGORITHMS, FingerprintClustering, blocks_for_view
from synthscope.attribution.diagnostics import assignment_margin, outlier_scores
from synthscope.attribution.openset import DEFAULT_NOVELTY_ALPHA, NoveltyScorer
from synthscope.attribution.supervised import SeededClustering, SubsetClassifier

CLUSTER_METHODS = ("auto", "consensus", *ALGORITHMS)


@dataclass(frozen=True)
class AttributionOptions:
    """Everything that decides a sub-task 2 answer; the CLI, the dashboard and the benchmark build one."""

    k: int | None = None                       # generators the task states (not needed for 2025 subsets)
    extractors: tuple[str, ...] = ("fingerprint",)
    method: str = "auto"
    n_components: int = 8
    seed: int = 0
    novelty_alpha: float = DEFAULT_NOVELTY_ALPHA   # conformal level of "none of these" (dev-seeded runs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extractors", tuple(self.extractors))
        if not self.extractors:
            raise ValueError("at least one extractor is needed")
        if self.method not in CLUSTER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(CLUSTER_METHODS)}")
        if self.n_components < 1:
            raise ValueError("n_components must be at least 1")
        if not 0.0 < self.novelty_alpha < 1.0:
            raise ValueError(f"novelty_alpha must lie in (0, 1); got {self.novelty_alpha}")


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
    confidence: pd.Series | None = None        # subsets: calibrated probability; clusters: assignment margin
    selection: pd.DataFrame | None = None      # label-free: the candidates' stability and silhouette
    chosen: dict | None = None
    novelty: pd.Series | None = None           # with dev: 1 - conformal p-value; label-free: outlier score (LOF)
    none_of_these: pd.Series | None = None     # with dev: novelty p-value below options.novelty_alpha
    novelty_model: object | None = None        # the fitted NoveltyScorer (with dev)
    p_values: pd.Series | None = None          # with dev: the conformal p-values behind novelty and the flag

    def none_of_these_at(self, alpha: float) -> pd.Series | None:
        """The "none of these" flag at another conformal level: p-value < `alpha` (what
        `attribute --novelty-alpha alpha` flags); None when the run has no dev novelty."""
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"novelty_alpha must lie in (0, 1); got {alpha}")
        if self.p_values is None:
            return None
        return (self.p_values < float(alpha)).rename("none_of_these")

    def describe(self, novelty_alpha: float | None = None) -> list[str]:
        """The description, with its "none of these" line counted at `novelty_alpha` (None = the run's
        level): the line `attribute --novelty-alpha novelty_alpha` prints."""
        flags = None if novelty_alpha is None else self.none_of_these_at(novelty_alpha)
        if flags is None or self.novelty_model is None:
            return list(self.description)
        line = _novelty_line(int(flags.sum()), len(flags), "subset" if self.kind == "subset" else "generator",
                             float(novelty_alpha), self.options.extractors[0], self.novelty_model.n_splits_)
        return [line if text.startswith("none of these:") else text for text in self.description]

    def scores_table(self) -> pd.DataFrame:
        """image_id, prediction, confidence, novelty: one row per image, in the run's order (what
        `attribute --scores` writes; `synthscope.score_files.write_attribution_scores`)."""
        ids = self.labels.index.astype(str)
        confidence = self.confidence.reindex(self.labels.index) if self.confidence is not None else np.nan
        novelty = self.novelty.reindex(self.labels.index) if self.novelty is not None else np.nan
        return scores_frame(ids, self.labels.astype(str).to_numpy(), confidence, novelty)

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


def scores_frame(ids, predictions, confidence, novelty) -> pd.DataFrame:
    """The scores file's table (image_id, prediction, confidence, novelty as float64; a scalar confidence
    or novelty, e.g. nan, fills its column)."""
    ids = np.asarray(ids).astype(str)
    return pd.DataFrame({"image_id": ids, "prediction": np.asarray(predictions).astype(str),
                         "confidence": np.asarray(confidence, dtype=np.float64) * np.ones(len(ids)),
                         "novelty": np.asarray(novelty, dtype=np.float64) * np.ones(len(ids))})


def clustering_scores(model: FingerprintClustering, labels) -> tuple[np.ndarray, np.ndarray]:
    """Label-free confidence and novelty per image: the assignment margin of `labels` and the outlier
    score (LOF), both in the space the chosen labelling was found in (consensus: its views side by side).
    `labels` may be the model's own or a curated copy of them."""
    reduced = np.hstack([model.reduced_[v] for v in model.chosen_views_])
    return assignment_margin(reduced, np.asarray(labels)), outlier_scores(reduced)


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
    (`FingerprintClustering.predict` does it in the space a fitted clustering was found in)."""
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
            novelty = _novelty(dev_views[view], y_dev, views[view], view, options, ids, "subset")
            return AttributionRun(
                "subset", pd.Series(assigned, index=pd.Index(ids, name="image_id"), name="subset"), options,
                "supervised subsets",
                [f"supervised subset assignment: logistic regression on {view} fit on {len(y_dev)} dev images "
                 f"({len(model.classes_)} subsets); confidence calibrated by temperature "
                 f"{model.temperature_:.3g} (fit on out-of-fold dev logits)", novelty[3]], model,
                confidence=pd.Series(probabilities.max(axis=1), index=pd.Index(ids, name="image_id")),
                novelty=novelty[0], none_of_these=novelty[1], novelty_model=novelty[2], p_values=novelty[4])
        k = check_k(options.k, len(ids))
        model = SeededClustering(k, n_components=options.n_components, random_state=options.seed,
                                 blocks=blocks_for_view(view, views[view].shape[1]))
        model.fit(dev_views[view], y_dev, views[view])
        labels = np.asarray(model.labels_, dtype=np.int64)
        lines = [f"semi-supervised: k-means on {view} seeded by {len(model.known_generators_)} dev generators "
                 f"({', '.join(model.known_generators_)}); {k - len(model.known_generators_)} new cluster(s)"]
        lines += [f"  cluster {c}: {name} ({int((labels == c).sum())} images)" for c, name in model.cluster_names_.items()]
        novelty = _novelty(dev_views[view], y_dev, views[view], view, options, ids, "generator")
        margin = assignment_margin(model.reducer_.transform(views[view]), labels)
        return AttributionRun("attribution", pd.Series(labels, index=pd.Index(ids, name="image_id"), name="cluster"),
                              options, "seeded by dev", lines + [novelty[3]], model,
                              cluster_names=dict(model.cluster_names_),
                              confidence=pd.Series(margin, index=pd.Index(ids, name="image_id")),
                              novelty=novelty[0], none_of_these=novelty[1], novelty_model=novelty[2],
                              p_values=novelty[4])
    model = cluster_generators(views, options)
    labels = np.asarray(model.labels_, dtype=np.int64)
    index = pd.Index(ids, name="image_id")
    margin, outliers = clustering_scores(model, labels)
    return AttributionRun("attribution", pd.Series(labels, index=index, name="cluster"),
                          options, "label-free", [model.describe()], model, selection=model.selection_,
                          chosen=dict(model.chosen_), confidence=pd.Series(margin, index=index),
                          novelty=pd.Series(outliers, index=index))


def _novelty(X_dev, y_dev, X_test, view: str, options: AttributionOptions, ids, noun: str):
    """(novelty series, none-of-these series, fitted NoveltyScorer, one line saying what was done,
    p-value series)."""
    try:
        scorer = NoveltyScorer(alpha=options.novelty_alpha, blocks=blocks_for_view(view, X_dev.shape[1]),
                               random_state=options.seed).fit(X_dev, y_dev)
    except ValueError as error:      # e.g. a dev class of one image: no calibration, so no flag
        return None, None, None, f"none of these: not assessed ({error})", None
    index = pd.Index(ids, name="image_id")
    p_values = scorer.p_values(X_test)
    flagged = p_values < scorer.alpha
    line = _novelty_line(int(flagged.sum()), len(ids), noun, scorer.alpha, view, scorer.n_splits_)
    return (pd.Series(1.0 - p_values, index=index, name="novelty"), pd.Series(flagged, index=index, name="none_of_these"),
            scorer, line, pd.Series(p_values, index=index, name="p_value"))


def _novelty_line(flagged: int, n: int, noun: str, alpha: float, view: str, n_splits: int) -> str:
    return (f"none of these: {flagged} of {n} images unlike every dev {noun} (conformal p < {alpha:g}; "
            f"class-conditional Mahalanobis distance on {view}, calibrated by {n_splits}-fold cross-validation on dev)")


@dataclass
class SubsetCrossValidation:
    """Out-of-fold subset predictions on the labelled dev images (2025 sub-task 2): how well the
    classifier `run_attribution` fits on dev assigns images it has not seen."""

    predictions: pd.DataFrame      # image_id (index), subset (dev label), predicted, confidence, fold
    classes: list[str]
    n_splits: int
    report: object                 # MetricReport: accuracy with CI, majority / uniform baselines
    calibration: object = None     # MetricReport: ECE of the calibrated confidence, reliability table
    calibration_uncalibrated: object = None   # the same for the logistic regression's own probabilities

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

    from synthscope.metrics import calibration_report, subset_accuracy_report

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
    raw_confidence = np.zeros(len(y))
    fold = np.zeros(len(y), dtype=np.int64)
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=options.seed)
    for number, (train, held) in enumerate(folds.split(X, y)):
        model = SubsetClassifier(random_state=options.seed).fit(X[train], y[train])
        probabilities = model.predict_proba(X[held])
        predicted[held] = model.classes_[probabilities.argmax(axis=1)]
        confidence[held] = probabilities.max(axis=1)
        raw_confidence[held] = model.pipeline_.predict_proba(X[held]).max(axis=1)
        fold[held] = number
    ids = pd.Index(dev_set.manifest["image_id"].astype(str).to_numpy(), name="image_id")
    frame = pd.DataFrame({"subset": y, "predicted": predicted.astype(str), "confidence": confidence, "fold": fold,
                          "confidence_uncalibrated": raw_confidence}, index=ids)
    correct = frame["subset"].to_numpy() == frame["predicted"].to_numpy()
    return SubsetCrossValidation(frame, [str(c) for c in classes], splits,
                                 subset_accuracy_report(y, frame["predicted"].to_numpy(), n_boot=n_boot,
                                                        seed=options.seed),
                                 calibration_report(confidence, correct, n_boot=n_boot, seed=options.seed),
                                 calibration_report(raw_confidence, correct, n_boot=n_boot, seed=options.seed))


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



def score_clustering(labels_true, labels_pred, *, n_boot: int = 1000, seed: int = 0):
    """ARI/NMI with bootstrap CIs and the single-cluster baseline (synthscope.metrics.attribution_report)."""
    from synthscope.metrics import attribution_report

    return attribution_report(labels_true, labels_pred, n_boot=n_boot, seed=seed)
