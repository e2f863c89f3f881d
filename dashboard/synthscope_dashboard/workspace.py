"""What the dashboard shows, computed once per page from the core's cached results.

A `Workspace` holds the immutable inputs (features, projections, scores, images on demand); the
curation on top of it lives in `AppState`. Everything heavy comes from the core
(`synthscope.data`, `.cache`, `.projection`, `.attribution`, `.membership`); UMAP and t-SNE are read
from the projection cache only, PCA is computed live.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from synthscope.workspace import load_pooled_images
from synthscope_dashboard.live_metrics import LiveEstimate, auc_estimate

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
class LeakageResult:
    significant: bool
    p_value: float
    method: str
    message: str


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
        self._reduced: np.ndarray | None = None
        self.chosen: dict | None = None

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def keys(self) -> np.ndarray:
        return self.frame["key"].to_numpy()

    def reduced_features(self) -> np.ndarray:
        """Standardised, PCA-reduced features (what the clustering sees)."""
        if self._reduced is None:
            scaled = StandardScaler().fit_transform(self.features)
            n_components = int(min(50, scaled.shape[0] - 1, scaled.shape[1]))
            self._reduced = PCA(n_components=max(n_components, 1), random_state=0).fit_transform(scaled)
        return self._reduced

    def cluster(self, k: int, method: str = "auto", seed: int = 0) -> np.ndarray:
        """Cluster labels 0..k-1 from the core's FingerprintClustering; keeps its label-free
        selection table (stability and silhouette per candidate) for the view to show."""
        from synthscope.attribution import FingerprintClustering

        model = FingerprintClustering(int(k), method=method, views=(self.extractor,), random_state=seed)
        model.fit({self.extractor: self.features})
        self.selection_table = model.selection_
        self.chosen = dict(model.chosen_)
        return np.asarray(model.labels_, dtype=np.int64)

    def split_labels(self, indices: np.ndarray, seed: int = 0) -> np.ndarray:
        """Two-way k-means inside one cluster: 0/1 per index."""
        if len(indices) < 2:
            return np.zeros(len(indices), dtype=np.int64)
        return KMeans(2, n_init=4, random_state=seed).fit_predict(self.reduced_features()[indices])


def pca_2d(features: np.ndarray) -> np.ndarray:
    if len(features) < 3:
        return np.zeros((len(features), 2), dtype=np.float32)
    from synthscope.attribution import small_input_threads

    with small_input_threads(len(features)):   # see projection.py
        scaled = StandardScaler().fit_transform(features)
        return PCA(2, random_state=0).fit_transform(scaled).astype(np.float32)


@dataclass
class MembershipData:
    """Real images with a membership score each (sub-task 1): dev (labelled) and test pooled.

    `rank` is the score's rank within its own group and split, in [0, 1]; one threshold on it
    carries from a dev model folder to its test folder even when raw score scales differ.
    """
    frame: pd.DataFrame     # key, image_id, split, group, label (1 used / 0 not used / -1 unknown), truth (-1 none), score, rank
    score_name: str
    load_real: ImageLoader                         # positional index in frame -> images
    nearest: Callable[[int, int], list[dict]]      # (frame index, k) -> [{image, image_id, distance}]
    leakage: dict[str, LeakageResult] = field(default_factory=dict)   # per dev group and "all"

    def __post_init__(self) -> None:
        if "rank" not in self.frame:
            self.frame["rank"] = within_group_rank(self.frame)
        self.key_index: dict[str, int] = {key: i for i, key in enumerate(self.frame["key"])}
        dev = self.frame[self.frame["label"] >= 0]
        self.auc: LiveEstimate = auc_estimate(dev["label"].to_numpy(), dev["rank"].to_numpy())
        if not self.leakage and len(dev):
            self.leakage = rank_leakage_tests(dev)

    @property
    def n(self) -> int:
        return len(self.frame)


def within_group_rank(frame: pd.DataFrame) -> np.ndarray:
    return frame.groupby(["split", "group"])["score"].rank(pct=True, method="average").to_numpy()


def rank_leakage_tests(dev: pd.DataFrame) -> dict[str, LeakageResult]:
    """The core's one-sided rank test (used > not used) per dev group and pooled over groups."""
    from synthscope.membership import rank_test

    results = {}
    for name, part in [("all", dev), *dev.groupby("group")]:
        column = "rank" if name == "all" else "score"
        if part["label"].nunique() < 2:
            continue
        verdict = rank_test(part[column].to_numpy(), part["label"].to_numpy())
        results[str(name)] = LeakageResult(verdict.significant, verdict.p_value, verdict.method, verdict.message)
    return results


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


# ---------------------------------------------------------------------------------------------
# Loading from disk through the core


def load_workspace(path: str | os.PathLike, *, extractor: str = "fingerprint", cache_dir=None,
                   progress: Callable[[str], None] | None = None) -> Workspace:
    """Read every data set under `path` (core `synthscope.workspace`), embed (cached) and score."""
    from synthscope.cache import EmbeddingCache
    from synthscope.workspace import WorkspaceError as CoreWorkspaceError
    from synthscope.workspace import load_datasets

    say = progress or (lambda message: None)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = EmbeddingCache(cache_dir)
    say(f"reading {path}")
    try:
        datasets, errors = load_datasets(path)
    except CoreWorkspaceError as error:
        raise WorkspaceError(str(error)) from None
    workspace = Workspace(path=str(Path(path).resolve()), datasets=[_summarise(d) for d in datasets],
                          cache_dir=cache_dir, messages=list(errors))
    if any(d.task == "attribution" for d in datasets):
        say(f"embedding generated images with {extractor}")
        workspace.attribution = _attribution_from(datasets, extractor, cache, str(path))
        workspace.attribution_loader = lambda name, progress=None: _attribution_from(datasets, name, cache, str(path),
                                                                                     progress)
    membership = [d for d in datasets if d.task == "membership"]
    if membership:
        say("scoring real images")
        workspace.membership = _membership_from(membership, extractor, cache)
    return workspace


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


def _attribution_from(datasets, extractor: str, cache, path: str, progress=None) -> AttributionData:
    """The pooled matrix exactly as `synthscope prepare` builds it, so its cached projections are found.
    `progress(done, total, what)` is called while images are embedded (nothing when all are cached)."""
    from synthscope.projection import NotCached, project
    from synthscope.workspace import attribution_matrix

    matrix = attribution_matrix(datasets, extractor, cache=cache, progress=progress or False)
    frame, X = matrix.frame, matrix.features
    projections, hints = {"pca": pca_2d(X)}, {}
    for method in ("umap", "tsne"):
        try:
            projections[method] = np.asarray(project(X, method, compute=False, cache=cache), dtype=np.float32)
        except NotCached:
            hints[method] = method.upper()
    if hints:
        hints = {m: f"{', '.join(hints.values())} not cached for these features yet: run "
                    f"`synthscope prepare {path} --extractor {extractor}` once (UMAP compiles for about a minute)."
                 for m in list(hints)[:1]}
    # k is part of the task statement (`synthscope dashboard --k N` or the k box); the default is the dev
    # generator count -- never the test ground truth, which is for evaluation only
    known = frame.loc[frame["known_label"] != "", "known_label"].nunique()
    k = max(int(known), 2)
    return AttributionData(frame=frame, features=X, extractor=extractor, load_images=matrix.load_images,
                           projections=projections, projection_hints=hints, k=k)


MEMBERSHIP_SPACES = ("pixels-norm", "pixels-128", "fingerprint")


@dataclass
class _ScoredGroup:
    dataset: object
    group: str
    real_rows: np.ndarray
    gen_rows: np.ndarray
    label: np.ndarray          # 1 used / 0 not used / -1 unknown
    labelled: bool
    result: object             # core MembershipResult


def _membership_from(datasets, extractor: str, cache) -> MembershipData:
    """Score every real image against its own group's generated images (core `score_membership`).

    Reference: each folder's own real images, leave-one-out, near duplicates skipped (the other split is
    no clean reference: whole scans are split between dev and test). The column shown is the one with the
    best mean dev AUC (gate Bonferroni-corrected for that choice), as `synthscope membership --primary auto`
    picks it; without dev labels, the rank ensemble. Test labels are never passed in.
    """
    from synthscope.cache import embed_dataset
    from synthscope.membership import SPACES, dataset_space_features, rank_test, score_membership, with_baseline_caveat
    from synthscope.workspace import ground_truth_beside

    spaces = tuple(dict.fromkeys((*MEMBERSHIP_SPACES, *([extractor] if extractor in SPACES else []))))
    scored: list[_ScoredGroup] = []
    features = {}
    for dataset in sorted(datasets, key=lambda d: d.split):
        manifest = dataset.manifest
        # "pixels" (64 px grey levels) is the space of the nearest-neighbour galleries
        X = features[id(dataset)] = {"pixels": embed_dataset(dataset, "pixels", cache=cache, progress=False),
                                     **{s: dataset_space_features(dataset, s, cache=cache) for s in spaces}}
        for group in sorted(manifest["group"].unique()):
            in_group = (manifest["group"] == group).to_numpy()
            real_rows = np.flatnonzero(in_group & (manifest["role"] == "real").to_numpy())
            gen_rows = np.flatnonzero(in_group & (manifest["role"] == "generated").to_numpy())
            if len(real_rows) < 3 or len(gen_rows) == 0:
                continue
            label = manifest.iloc[real_rows]["label"].map({"used": 1, "not_used": 0}).fillna(-1).astype(int).to_numpy()
            labelled = dataset.split == "dev" and (label >= 0).all() and len(np.unique(label)) == 2
            result = score_membership({s: X[s][real_rows] for s in spaces}, {s: X[s][gen_rows] for s in spaces},
                                      None, ids=manifest.iloc[real_rows]["image_id"].astype(str).tolist(),
                                      used=label if labelled else None)
            scored.append(_ScoredGroup(dataset, str(group), real_rows, gen_rows, label, labelled, result))
    if not scored:
        raise WorkspaceError("no group holds both real and generated images, so nothing can be scored")
    with_labels = [g for g in scored if g.labelled]
    column, n_tests = "ensemble", 1
    if with_labels:
        candidates = list(with_labels[0].result.scores.columns)
        mean_auc = {c: float(np.mean([g.result.verdicts[c].statistic for g in with_labels])) for c in candidates}
        column, n_tests = max(candidates, key=lambda c: mean_auc[c]), len(candidates)
    frames, parts, gen_parts, real_blocks, leakage = [], [], {}, [], {}
    for g in scored:
        part = g.dataset.manifest.iloc[g.real_rows]
        values = g.result.scores[column].to_numpy()
        if g.labelled:
            verdict = with_baseline_caveat(rank_test(values, g.label, n_tests=n_tests), g.result.best_baseline)
            leakage[g.group] = LeakageResult(verdict.significant, verdict.p_value, verdict.method, verdict.message)
        truth = ground_truth_beside(g.dataset.root) if g.dataset.split == "test" else None
        truth_values = (part["image_id"].map(truth).fillna(-1).astype(int).to_numpy() if truth is not None
                        else g.label)
        frames.append(pd.DataFrame({
            "key": g.dataset.split + ":" + part["image_id"].astype(str),
            "image_id": part["image_id"].astype(str).to_numpy(), "split": g.dataset.split,
            "group": g.group, "label": g.label, "truth": truth_values, "score": values,
        }))
        parts.append((g.dataset, g.real_rows))
        real_blocks.append(features[id(g.dataset)]["pixels"][g.real_rows])
        gen_parts[(g.dataset.split, g.group)] = (g.dataset, g.gen_rows, features[id(g.dataset)]["pixels"][g.gen_rows])
    frame = pd.concat(frames, ignore_index=True)
    real_features = np.concatenate(real_blocks)
    frame["rank"] = within_group_rank(frame)
    dev = frame[frame["label"] >= 0]
    if len(leakage) > 1 and dev["label"].nunique() == 2:
        pooled = rank_test(dev["rank"].to_numpy(), dev["label"].to_numpy(), n_tests=n_tests)
        cautioned = [group for group, result in leakage.items() if "CAUTION" in result.message]
        message = pooled.message + (
            f" CAUTION for {', '.join(cautioned)}: there a score that never looks at the generated images separates "
            f"used from not-used as well (choose the model above for details)." if cautioned else "")
        leakage["all"] = LeakageResult(pooled.significant, pooled.p_value, pooled.method + " (ranks pooled over models)",
                                       message)
    elif leakage:
        leakage["all"] = next(iter(leakage.values()))
    if with_labels:
        score_name = (f"{column}, the best of {n_tests} columns by mean dev AUC ({' / '.join(spaces)} spaces; "
                      f"reference: each folder's own real images, leave-one-out)")
    else:
        score_name = f"rank ensemble of the distance and adjusted scores in {' / '.join(spaces)} space (no dev labels)"
    return MembershipData(frame=frame, score_name=score_name, load_real=partial(load_pooled_images, parts),
                          nearest=_nearest_finder(frame, real_features, gen_parts), leakage=leakage)


def _nearest_finder(frame: pd.DataFrame, real_features: np.ndarray, gen_parts: dict):
    """(frame row, k) -> the k nearest generated images of the same group, in 64 px pixel space.
    gen_parts: (split, group) -> (dataset, generated rows, their 64 px features, computed at load)."""
    from synthscope.membership import knn

    def nearest(index: int, k: int = 3) -> list[dict]:
        row = frame.iloc[index]
        dataset, gen_rows, gen_features = gen_parts[(row["split"], row["group"])]
        distances, found = knn(real_features[index:index + 1], gen_features, min(k, len(gen_rows)))
        images = dataset.images(gen_rows[found[0]])
        return [{"image": image, "image_id": str(dataset.manifest.iloc[gen_rows[j]]["image_id"]), "distance": float(d)}
                for image, j, d in zip(images, found[0], distances[0])]

    return nearest
