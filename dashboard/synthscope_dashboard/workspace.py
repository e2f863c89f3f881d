"""What the dashboard shows, computed once per page from the core's cached results.

A `Workspace` holds the immutable inputs (features, projections, scores, images on demand); the
curation on top of it lives in `AppState`. Everything heavy comes from the core
(`synthscope.data`, `.cache`, `.projection`, `.attribution`, `.membership`); UMAP and t-SNE are read
from the projection cache only, PCA is `synthscope project --method pca`'s, computed live unless cached.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from synthscope.datatree import load_pooled_images

ImageLoader = Callable[[np.ndarray], np.ndarray]   # positional indices -> uint8 [m, 256, 256]

PROJECTION_METHODS = ("pca", "umap", "tsne")
CLUSTER_METHODS = ("auto", "consensus", "kmeans", "gmm", "ward", "spectral")   # core FingerprintClustering


class WorkspaceError(ValueError):
    """The path holds nothing the dashboard can show; the message says what was tried."""


def default_cache_dir() -> Path:
    from synthscope.cache import default_cache_dir as core_default

    return Path(core_default())


@dataclass
class DatasetSummary:
    """One loaded data set, for the Overview."""
    root: str
    layout: str
    task: str
    split: str
    counts: pd.DataFrame                  # role x group x label counts
    skipped: list[tuple[str, str]]        # (path, reason)
    warnings: list[str]
    sample_loader: Callable[[str, int], np.ndarray] | None = None   # group -> up to n images


@dataclass
class AttributionData:
    """Generated images to attribute to generators (sub-task 2): dev (labelled) and test pooled."""
    frame: pd.DataFrame            # key, image_id, split, group, known_label ("" unknown), truth ("" none)
    features: np.ndarray           # float32 [n, d]
    extractor: str
    load_images: ImageLoader
    projections: dict[str, np.ndarray] = field(default_factory=dict)
    projection_hints: dict[str, str] = field(default_factory=dict)   # method -> command to cache it
    k: int = 4
    selection_table: pd.DataFrame | None = None   # label-free choice of view x method, from the core

    def __post_init__(self) -> None:
        if "pca" not in self.projections and len(self.features):
            self.projections["pca"] = pca_2d(self.features)
        self._space: np.ndarray | None = None                 # every row in the clustering's space
        self.chosen: dict | None = None
        self.clustered_with: tuple[int, str] | None = None   # (k, method) behind selection_table / chosen
        self.model = None                                     # the core FingerprintClustering behind them
        self.clustered_on: str | None = None                  # the extractor whose features `model` was fit on

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def keys(self) -> np.ndarray:
        return self.frame["key"].to_numpy()

    def clustering_space(self) -> np.ndarray:
        """Every row (dev too) in the space the clusters were found in: the core model's fitted reducers
        (`FingerprintClustering.transform`: standardise, block weights, PCA to its components), fit on the
        scored rows. Neighbours, silhouette, distance to centre, outlier score and split all use it.
        Clusters kept from other features (`adopt_clustering`) keep their own space."""
        if self._space is None:
            if self.model is None:
                self.cluster(self.k)
            self._space = self.model.transform({self.extractor: self.features})
        return self._space

    reduced_features = clustering_space   # the name earlier code used; there is one space

    def space_description(self) -> str:
        """Where the clusters come from, e.g. "fingerprint, gmm, 8 components" ("" before any clustering)."""
        return self.model.space_description() if self.model is not None else ""

    @property
    def space_differs(self) -> bool:
        """True when the features shown (layouts, feature menu) are not the ones the clusters were found in."""
        return self.clustered_on is not None and self.clustered_on != self.extractor

    def adopt_clustering(self, other: "AttributionData") -> None:
        """Keep `other`'s clustering for these rows (the same images in other features, or its caches
        re-read): its model, label-free choice and space stay until the next `cluster`."""
        if other.model is None or other is self:
            return
        self._space = other.clustering_space()
        self.model, self.selection_table, self.chosen = other.model, other.selection_table, other.chosen
        self.clustered_with, self.clustered_on = other.clustered_with, other.clustered_on

    @property
    def scored(self) -> np.ndarray:
        """Rows a run file holds and the clustering is fit on: the test images, or all without a test split."""
        test = (self.frame["split"] == "test").to_numpy()
        return test if test.any() else np.ones(len(self.frame), dtype=bool)

    def cluster(self, k: int, method: str = "auto", seed: int = 0) -> np.ndarray:
        """Cluster labels per row: the core's label-free clustering of the scored rows (the call
        `synthscope attribute TEST --k K -e EXTRACTOR --method METHOD` makes, on the same matrix), and
        every other row (dev) placed in the nearest cluster, in the space the clusters were found in
        (`FingerprintClustering.predict`). Keeps the label-free selection table."""
        from synthscope.attribution import AttributionOptions, cluster_generators

        scored = self.scored
        options = AttributionOptions(k=int(k), extractors=(self.extractor,), method=method, seed=seed)
        model = cluster_generators({self.extractor: self.features[scored]}, options)
        self.selection_table = model.selection_
        self.chosen = dict(model.chosen_)
        self.clustered_with = (int(k), method)
        self.model, self.clustered_on, self._space = model, self.extractor, None
        labels = np.zeros(len(self.frame), dtype=np.int64)
        labels[scored] = model.labels_
        if not scored.all():
            labels[~scored] = model.predict({self.extractor: self.features[~scored]})   # in the clusters' space
        return labels

    def scores_table(self, labels: np.ndarray, k: int, method: str) -> pd.DataFrame:
        """The label-free scores file's table for the scored rows given their cluster `labels`: confidence =
        assignment margin, novelty = outlier score, in the space of the core's clustering for (k, method)
        (`synthscope.attribution.clustering_scores`). With that clustering's own labels it is the table
        `synthscope attribute TEST --k K --method METHOD --scores FILE` writes; with curated ones the
        margins follow the curated clusters."""
        from synthscope.attribution import clustering_scores, scores_frame

        if self.model is None or self.clustered_with != (int(k), method):
            self.cluster(k, method)
        confidence, novelty = clustering_scores(self.model, labels)
        return scores_frame(self.frame["image_id"].to_numpy()[self.scored], labels, confidence, novelty)

    def split_labels(self, indices: np.ndarray, seed: int = 0) -> np.ndarray:
        """Two-way k-means (the core's `cluster_once`) inside one cluster, in the clustering's space: 0/1 per index."""
        from synthscope.attribution import cluster_once

        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) < 2:
            return np.zeros(len(indices), dtype=np.int64)
        return cluster_once(self.clustering_space()[indices], 2, "kmeans", seed).astype(np.int64)


def pca_2d(features: np.ndarray, cache=False) -> np.ndarray:
    """The page's PCA layout: `synthscope.projection.project(X, "pca")`, the numbers
    `synthscope project --method pca` computes and caches (read from `cache` when it holds them)."""
    if len(features) < 3:
        return np.zeros((len(features), 2), dtype=np.float32)
    from synthscope.projection import project

    return project(features, "pca", cache=cache)


@dataclass
class MembershipPair:
    """One dev group and the folder its threshold carries to (or one folder alone), from the core's run."""
    name: str                                   # "model_1 -> folder_1", or the folder when there is no dev
    primary: str                                # the score column behind the calls
    choice: str                                 # why that column
    default_threshold: float                    # fit on dev (what `synthscope membership` applies)
    threshold_method: str
    verdict: object                             # core LeakageVerdict: the gate
    story: list[str]                            # what each test asked and what to conclude
    baselines: dict[str, pd.DataFrame | None] = field(default_factory=dict)   # split -> generator-free baseline
    scan_groups: dict[str, np.ndarray | None] = field(default_factory=dict)   # split -> neighbouring-slice groups


@dataclass
class MembershipData:
    """Real images with a membership score each (sub-task 1), exactly as the core's `run_membership`
    scored them: dev (labelled, the thresholds' source) and the scored folders pooled.

    Thresholds are per pair, in the score's own units, and an image is called used when its score is
    at or above its pair's threshold (`synthscope.membership.predict`), as on the command line.
    """
    frame: pd.DataFrame     # key, image_id, split, group, pair, label (1/0 dev, -1), truth (-1 none), score, percentile, rank
    pairs: dict[str, MembershipPair]
    score_name: str
    load_real: ImageLoader                         # positional index in frame -> images
    nearest: Callable[[int, int], list[dict]]      # (frame index, k) -> [{image, image_id, distance}]
    run: object | None = None                      # the core MembershipRun (None for synthetic workspaces)
    scored_split: str = "test"

    def __post_init__(self) -> None:
        if "percentile" not in self.frame:
            self.frame["percentile"] = self.frame.groupby(["split", "group"])["score"].rank(pct=True).to_numpy()
        self.key_index: dict[str, int] = {key: i for i, key in enumerate(self.frame["key"])}
        self.pair_rows: dict[str, np.ndarray] = {name: np.flatnonzero((self.frame["pair"] == name).to_numpy())
                                                 for name in self.pairs}

    @property
    def n(self) -> int:
        return len(self.frame)

    def default_thresholds(self) -> dict[str, float]:
        return {name: pair.default_threshold for name, pair in self.pairs.items()}


@dataclass
class SubsetData:
    """2025 sub-task 2: each test image assigned to the training subset it came from, by the core's
    `run_attribution(test, dev)` (the call `synthscope attribute TEST --dev DEV` makes), and the same
    classifier cross-validated on the dev images (`cross_validated_subsets`)."""
    dev_root: str
    classes: list[str]
    cv: object                                   # core SubsetCrossValidation (dev, out-of-fold)
    run: object | None = None                    # core AttributionRun(kind="subset"); None without a test folder
    test_root: str = ""
    load_test_images: ImageLoader | None = None  # positional index in run.labels -> images

    @functools.cached_property
    def reliability(self):
        """The core's reliability diagram of the dev cross-validation (raw and calibrated confidence)."""
        from synthscope.attribution import reliability_diagram

        return reliability_diagram(self.cv)

    @property
    def predictions(self) -> pd.DataFrame:
        """image_id, subset, confidence, novelty, none_of_these per test image, in the run file's order
        (novelty nan and the flag False when the core could not assess it), flagged at the run's level."""
        return self.predictions_at(None)

    def predictions_at(self, alpha: float | None) -> pd.DataFrame:
        """`predictions` with "none of these" at conformal level `alpha` (the core's
        `AttributionRun.none_of_these_at`); None = the run's own level."""
        if self.run is None:
            return pd.DataFrame({"image_id": [], "subset": [], "confidence": [], "novelty": [], "none_of_these": []})
        table = self.run.scores_table()
        flags = self.run.none_of_these if alpha is None else self.run.none_of_these_at(alpha)
        flagged = flags.to_numpy() if flags is not None else np.zeros(len(table), dtype=bool)
        return pd.DataFrame({"image_id": table["image_id"].to_numpy(), "subset": self.run.labels.to_numpy(),
                             "confidence": table["confidence"].to_numpy(), "novelty": table["novelty"].to_numpy(),
                             "none_of_these": flagged})


@dataclass
class Workspace:
    path: str
    datasets: list[DatasetSummary]
    attribution: AttributionData | None = None
    membership: MembershipData | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    messages: list[str] = field(default_factory=list)   # hints: what to run, what was skipped
    # extractor name -> AttributionData over the same rows (None: the extractor cannot be changed)
    #: (extractor name, progress callback or None) -> the same images in other features
    attribution_loader: Callable[..., AttributionData] | None = None
    subsets: SubsetData | None = None      # a 2025 sub-task 2 dev tree (real/<subset>, generated/<subset>)


# ---------------------------------------------------------------------------------------------
# Loading from disk through the core


def load_workspace(path: str | os.PathLike, *, extractor: str = "fingerprint", cache_dir=None,
                   progress: Callable[[str], None] | None = None, size_policy: str = "error",
                   layout: str | None = None, manifest_csv=None, device: str = "auto",
                   on_progress=None) -> Workspace:
    """Read every data set under `path` (core `synthscope.datatree`), embed (cached) and score.

    `size_policy`, `layout`, `manifest_csv` and `device` mean what the CLI's options of those names mean.
    `progress` gets one line per stage; `on_progress` (a callable(ProgressEvent) or a core `ProgressTracker`)
    every step -- each data set and extractor embedded, each membership group scored -- with an ETA."""
    from synthscope.cache import EmbeddingCache
    from synthscope.datatree import WorkspaceError as CoreWorkspaceError
    from synthscope.datatree import load_datasets
    from synthscope.progress import as_tracker

    say = progress or (lambda message: None)
    tracker = as_tracker(on_progress)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = EmbeddingCache(cache_dir)
    say(f"reading {path}")
    try:
        datasets, errors = load_datasets(path, size_policy=size_policy, layout=layout, manifest_csv=manifest_csv)
    except CoreWorkspaceError as error:
        raise WorkspaceError(str(error)) from None
    workspace = Workspace(path=str(Path(path).resolve()), datasets=[_summarise(d) for d in datasets],
                          cache_dir=cache_dir, messages=list(errors))
    attribution = any(d.task == "attribution" for d in datasets)
    subsets = any(d.task == "attribution" and d.split == "dev" and d.layout.startswith("2025-st2") for d in datasets)
    membership = [d for d in datasets if d.task == "membership"]
    if tracker is not None:
        _plan_load(tracker, datasets, extractor, cache, device, attribution, subsets, membership)
    if attribution:
        say(f"embedding generated images with {extractor}")
        workspace.attribution = _attribution_from(datasets, extractor, cache, str(path), tracker, device=device)
        workspace.attribution_loader = lambda name, progress=None: _attribution_from(datasets, name, cache, str(path),
                                                                                     progress, device=device)
    if subsets:
        say("assigning test images to the 2025 training subsets")
        step = tracker.step("subsets", unit="") if tracker is not None else contextlib.nullcontext()
        with step:
            workspace.subsets = _subsets_from(datasets, cache, device=device)
    if membership:
        say("scoring real images")
        workspace.membership = _membership_from(membership, cache, device=device, progress=tracker)
    return workspace


def _plan_load(tracker, datasets, extractor, cache, device, attribution, subsets, membership) -> None:
    """The steps of `load_workspace` (and the page's first clustering), with their estimated costs."""
    from synthscope.datatree import membership_pair, plan_attribution
    from synthscope.membership import plan_membership
    from synthscope.progress import cost_per_image

    if attribution:
        plan_attribution(tracker, datasets, extractor, cache, device)
    if subsets:
        n = sum(len(d.manifest) for d in datasets if d.task == "attribution")
        tracker.plan("subsets", "the 2025 training subsets (classifier and cross-validation)", n,
                     unit="", cost_per_unit=cost_per_image("fingerprint") * 3)
    if membership:
        try:
            plan_membership(tracker, *membership_pair(membership), cache_dir=cache.cache_dir, device=device)
        except ValueError:
            pass   # the page says why membership cannot be scored
    if attribution:
        n = sum(int((d.manifest["role"] == "generated").sum()) for d in datasets if d.task == "attribution")
        tracker.plan("cluster", "label-free clustering of the generated images", n, unit="",
                     cost_per_unit=0.003, fixed_cost=1.0)


def _summarise(dataset) -> DatasetSummary:
    manifest = dataset.manifest
    counts = manifest.groupby(["role", "group", "label"]).size().rename("images").reset_index()

    def samples(group: str, n: int) -> np.ndarray:
        rows = np.flatnonzero(manifest["group"].to_numpy() == group)[:n]
        return dataset.images(rows)

    report = dataset.report
    return DatasetSummary(root=str(dataset.root), layout=dataset.layout, task=dataset.task, split=dataset.split,
                          counts=counts, skipped=[(s.path, s.reason) for s in report.skipped],
                          warnings=list(report.warnings), sample_loader=samples)


def _cluster_engine(cache):
    """The Dask cluster at $SYNTHSCOPE_SCHEDULER for the page's feature computing, else nothing (no Dask import)."""
    import contextlib
    import os

    if not os.environ.get("SYNTHSCOPE_SCHEDULER"):
        return contextlib.nullcontext()
    from synthscope.engine import open_engine

    return open_engine(cache_dir=getattr(cache, "cache_dir", None))


def _attribution_from(datasets, extractor: str, cache, path: str, progress=None, device: str = "auto") -> AttributionData:
    """The pooled matrix exactly as `synthscope prepare` builds it, so its cached projections are found.
    `progress(done, total, what)` (or a core `ProgressTracker`) is told while images are embedded (nothing
    when all are cached)."""
    from synthscope.projection import NotCached, project
    from synthscope.datatree import attribution_matrix

    with _cluster_engine(cache):   # $SYNTHSCOPE_SCHEDULER: workers embed, `progress` counts their finished chunks
        matrix = attribution_matrix(datasets, extractor, cache=cache, progress=progress or False, device=device)
    frame, X = matrix.frame, matrix.features
    projections, hints = {"pca": pca_2d(X, cache=cache)}, {}
    for method in ("umap", "tsne"):
        try:
            projections[method] = np.asarray(project(X, method, compute=False, cache=cache), dtype=np.float32)
        except NotCached:
            hints[method] = method.upper()
    if hints:
        hints = {m: f"{', '.join(hints.values())} not cached for these features yet: run "
                    f"`synthscope prepare {path} --extractor {extractor}` once, or press Prepare at the top of the "
                    "page (UMAP compiles for about a minute)."
                 for m in list(hints)[:1]}
    # k is part of the task statement (`synthscope dashboard --k N` or the k box); the default is the dev
    # generator count -- never the test ground truth, which is for evaluation only
    known = frame.loc[frame["known_label"] != "", "known_label"].nunique()
    k = max(int(known), 2)
    return AttributionData(frame=frame, features=X, extractor=extractor, load_images=matrix.load_images,
                           projections=projections, projection_hints=hints, k=k)


def _subsets_from(datasets, cache, device: str = "auto") -> SubsetData:
    """The core's supervised subset run with default options (as `synthscope attribute TEST --dev DEV`)
    and its dev cross-validation. Test labels are never read."""
    from synthscope.attribution import AttributionOptions, cross_validated_subsets, run_attribution

    dev = next(d for d in datasets if d.task == "attribution" and d.split == "dev" and d.layout.startswith("2025-st2"))
    test = next((d for d in datasets if d.task == "attribution" and d.split == "test"), None)
    options = AttributionOptions()
    try:
        cv = cross_validated_subsets(dev, options, cache=cache, device=device)
        run = run_attribution(test, dev, options, cache=cache, device=device) if test is not None else None
    except ValueError as error:
        raise WorkspaceError(f"the 2025 subsets cannot be assigned: {error}") from None
    data = SubsetData(dev_root=str(dev.root), classes=list(cv.classes), cv=cv, run=run)
    if test is not None:
        manifest = test.manifest
        rows = pd.Index(manifest["image_id"].astype(str)).get_indexer(run.labels.index.astype(str))
        data.test_root = str(test.root)
        data.load_test_images = lambda indices: test.images(rows[np.asarray(indices, dtype=np.int64)])
    return data


def _membership_from(datasets, cache, device: str = "auto", progress=None) -> MembershipData:
    """The core's `run_membership` with its default options -- the same call `synthscope membership
    TEST --dev DEV` makes -- laid out for the views. Test labels are never passed in; a ground-truth file
    beside a test folder fills the `truth` column, for evaluation mode only."""
    from synthscope.datatree import ground_truth_beside, membership_pair
    from synthscope.membership import MembershipOptions, membership_story, run_membership_cached

    scored, dev = membership_pair(datasets)    # only a labelled folder: scored against its own labels
    try:
        # cached by content, options and code: a reload reads it back (`synthscope prepare` computes it)
        run, _ = run_membership_cached(scored, dev, MembershipOptions(), cache_dir=cache.cache_dir, device=device,
                                       progress=progress or False)
    except ValueError as error:
        raise WorkspaceError(f"membership cannot be scored: {error}") from None
    truth = ground_truth_beside(scored.root) if scored.split == "test" else None
    frame = run.frame(split=scored.split)
    own_labels = scored.manifest.set_index("image_id")["label"].map({"used": 1, "not_used": 0})
    if dev is None:         # self-evaluated: the folder's own labels are its dev labels
        frame["label"] = frame["image_id"].map(own_labels).fillna(-1).astype(int)
    frame["truth"] = (frame["image_id"].map(truth).fillna(-1).astype(int) if truth is not None
                      else frame["label"]).where(frame["split"] == scored.split, frame["label"])
    frame.insert(0, "key", frame["split"] + ":" + frame["image_id"])
    frame["percentile"] = frame.groupby(["split", "group"])["score"].rank(pct=True).to_numpy()
    frame["nearest_distance"] = _nearest_distances(frame, run, scored.split)
    pairs = {}
    for group in run.groups:
        name = frame.loc[frame["group"] == group.group, "pair"].iloc[0]
        pairs[name] = MembershipPair(
            name=name, primary=group.primary, choice=group.choice, default_threshold=group.threshold.threshold,
            threshold_method=group.threshold.method, verdict=group.verdict, story=membership_story(group),
            baselines={scored.split: group.result.baseline,
                       "dev": None if group.dev_result is None else group.dev_result.baseline},
            scan_groups={scored.split: group.scan_groups, "dev": group.dev_scan_groups})
    columns = sorted({g.primary for g in run.groups})
    # each model chose its column on its own dev group: no one group's reasons here (each pair has its `choice`)
    score_name = (f"{', '.join(columns)} (chosen per model; reference: each folder's own real "
                  f"images, leave-one-out), the same run as `synthscope membership`")
    by_split = {scored.split: scored, **({"dev": dev} if dev is not None else {})}
    parts = [(by_split[split], _real_rows(by_split[split], frame.loc[frame["split"] == split, "image_id"]))
             for split in pd.unique(frame["split"])]
    # frame rows are grouped by pair (dev, then scored); load images in that order through positions
    order = np.concatenate([np.flatnonzero((frame["split"] == split).to_numpy()) for split in pd.unique(frame["split"])])
    positions = np.empty(len(frame), dtype=np.int64)
    positions[order] = np.arange(len(frame))

    def load_real(indices) -> np.ndarray:
        return load_pooled_images(parts, positions[np.asarray(indices, dtype=np.int64)])

    return MembershipData(frame=frame, pairs=pairs, score_name=score_name, load_real=load_real,
                          nearest=_nearest_finder(frame, run, by_split, scored.split), run=run,
                          scored_split=scored.split)


def _real_rows(dataset, ids) -> np.ndarray:
    index = pd.Index(dataset.manifest["image_id"].astype(str))
    return index.get_indexer(pd.Index(ids.astype(str)))


def _nearest_distances(frame: pd.DataFrame, run, scored_split: str) -> np.ndarray:
    """Per frame row, the distance to its nearest generated image the core's run found (NaN when none)."""
    nearest = pd.concat([g.nearest for g in run.groups], ignore_index=True)
    if nearest.empty:
        return np.full(len(frame), np.nan)
    nearest["split"] = nearest["split"].replace({"scored": scored_split})
    closest = nearest.groupby(["split", "real_id"])["distance"].min()
    index = pd.MultiIndex.from_arrays([frame["split"], frame["image_id"].astype(str)])
    return closest.reindex(index).to_numpy(dtype=float)


def _nearest_finder(frame: pd.DataFrame, run, by_split: dict, scored_split: str):
    """(frame row, k) -> the nearest generated images of the same group that the core's run found
    (64 px grey levels), with their images."""
    nearest = pd.concat([g.nearest for g in run.groups], ignore_index=True)
    nearest["split"] = nearest["split"].replace({"scored": scored_split})
    lookup = {key: part for key, part in nearest.groupby(["split", "real_id"])}

    def find(index: int, k: int = 3) -> list[dict]:
        row = frame.iloc[index]
        found = lookup.get((row["split"], row["image_id"]))
        if found is None:
            return []
        found = found.sort_values("rank").head(k)
        dataset = by_split[row["split"]]
        rows = pd.Index(dataset.manifest["image_id"].astype(str)).get_indexer(found["generated_id"])
        images = dataset.images(rows)
        return [{"image": image, "image_id": image_id, "distance": float(d)}
                for image, image_id, d in zip(images, found["generated_id"], found["distance"])]

    return find
