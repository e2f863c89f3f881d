"""What a path holds (synthscope.datatree), as the dashboard, the demo and `synthscope prepare` all see it.

One place defines which matrix gets projected (the generated images of every split, pooled), so a
projection cached by the CLI is exactly the one the dashboard looks up. (The dashboard's own
`synthscope_dashboard.workspace` lays these results out for the page.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from synthscope.data import Dataset, DatasetError, load_dataset, read_ground_truth
from synthscope.progress import ProgressTracker, cost_per_image

ImageLoader = Callable[[np.ndarray], np.ndarray]   # positional indices -> uint8 [m, 256, 256]


class WorkspaceError(ValueError):
    """The path holds nothing readable; the message says what was tried."""


def discover_dataset_roots(path: str | os.PathLike) -> list[Path]:
    """A data set folder, a folder holding dev/ and test/, or a bench root holding subtask1/ subtask2/."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise WorkspaceError(f"{path} is not a folder")
    subtasks = [path / name for name in ("subtask1", "subtask2") if (path / name).is_dir()]
    parents = subtasks or [path]
    roots: list[Path] = []
    for parent in parents:
        splits = [parent / name for name in ("dev", "test") if (parent / name).is_dir()]
        roots.extend(splits or [parent])
    return roots


def count_attribution_images(path: str | os.PathLike) -> int | None:
    """How many generated images of sub-task 2 the dashboard clusters for `path`, from the folder listing
    alone (nothing decoded: the CLI checks `--k` with it before serving): those of the test split when
    there is one (dev images are only placed in the clusters afterwards), else every one. None when there
    are none."""
    from synthscope.layouts import detect_layout, task_of

    counts: dict[str, int] = {}
    for root in discover_dataset_roots(path):
        try:
            layout, match, _ = detect_layout(root)
        except DatasetError:
            continue
        if task_of(layout) == "attribution":
            generated = sum(entry.role == "generated" for entry in match.entries)
            counts[match.split] = counts.get(match.split, 0) + generated
    if not counts:
        return None
    return counts["test"] if counts.get("test") else sum(counts.values())


def load_datasets(path: str | os.PathLike, *, size_policy: str = "error", layout: str | None = None,
                  manifest_csv=None) -> tuple[list[Dataset], list[str]]:
    """Every readable data set under `path`, and one error line per unreadable one.

    A forced `layout` or a `manifest_csv` means `path` is one data set read that way."""
    if layout is not None or manifest_csv is not None:
        try:
            return [load_dataset(path, size_policy=size_policy, layout=layout, manifest_csv=manifest_csv)], []
        except DatasetError as error:
            raise WorkspaceError(f"nothing readable under {path}: {error}") from None
    datasets, errors = [], []
    for root in discover_dataset_roots(path):
        try:
            datasets.append(load_dataset(root, size_policy=size_policy))
        except DatasetError as error:  # one unreadable split must not hide the others
            errors.append(f"{root}: {error}")
    if not datasets:
        raise WorkspaceError(f"nothing readable under {path}:\n" + "\n".join(errors))
    return datasets, errors


def ground_truth_beside(dataset_root: str | os.PathLike) -> pd.Series | None:
    """A bench's `test_ground_truth.csv` beside a test folder (for evaluation only, never for fitting)."""
    candidate = Path(dataset_root).parent / "test_ground_truth.csv"
    return read_ground_truth(candidate) if candidate.is_file() else None


@dataclass
class AttributionMatrix:
    """Generated images of every attribution data set, dev first, pooled into one matrix."""

    frame: pd.DataFrame     # key, image_id, split, group, known_label ("" unknown), truth ("" none)
    features: np.ndarray    # float32 [n, d]
    parts: list[tuple[Dataset, np.ndarray]]   # (dataset, manifest rows) in frame order

    def load_images(self, indices) -> np.ndarray:
        return load_pooled_images(self.parts, indices)


def load_pooled_images(parts: Sequence[tuple[Dataset, np.ndarray]], indices) -> np.ndarray:
    """Images at positions `indices` of a frame pooled from `parts` = (dataset, manifest rows) in frame order."""
    indices = np.asarray(indices, dtype=np.int64)
    offsets = np.cumsum([0] + [len(rows) for _, rows in parts])
    out = np.zeros((len(indices), 256, 256), dtype=np.uint8)
    which = np.searchsorted(offsets, indices, side="right") - 1
    for part in np.unique(which):
        dataset, rows = parts[part]
        mask = which == part
        out[mask] = dataset.images(rows[indices[mask] - offsets[part]])
    return out


def attribution_matrix(datasets: Sequence[Dataset], extractor: str, *, cache=None,
                       progress=False, device: str = "auto") -> AttributionMatrix:
    """Generated images of every attribution data set, pooled (dev first), with their features.

    `progress`: bool (tqdm), a callable(done, total, what) called per data set while embedding, or a
    `ProgressTracker` (one step per data set, see `plan_attribution`).
    """
    from synthscope.cache import embed_dataset

    frames, features, parts = [], [], []
    for dataset in sorted((d for d in datasets if d.task == "attribution"), key=lambda d: (d.split, str(d.root))):
        manifest = dataset.manifest
        rows = np.flatnonzero(manifest["role"].to_numpy() == "generated")
        part = manifest.iloc[rows]
        known = part["label"].where(part["label"] != "unknown", "").astype(str)
        truth = ground_truth_beside(dataset.root) if dataset.split == "test" else None
        frames.append(pd.DataFrame({
            "key": dataset.split + ":" + part["image_id"].astype(str),
            "image_id": part["image_id"].astype(str).to_numpy(),
            "split": dataset.split,
            "group": part["group"].astype(str).to_numpy(),
            "known_label": known.to_numpy() if dataset.split == "dev" else "",
            "truth": (part["image_id"].map(truth).fillna("").astype(str).to_numpy() if truth is not None
                      else known.to_numpy()),
        }))
        report = progress
        if isinstance(progress, ProgressTracker):
            report = progress.step(*embed_step(extractor, dataset))
        elif callable(progress):
            what = f"{extractor} on {dataset.split} ({Path(dataset.root).name})"
            report = lambda done, total, what=what: progress(done, total, what)  # noqa: E731
        features.append(embed_dataset(dataset, extractor, cache=cache, device=device, progress=report)[rows])
        if isinstance(progress, ProgressTracker):
            report.__exit__(None, None, None)
        parts.append((dataset, rows))
    if not frames:
        raise WorkspaceError("no attribution (sub-task 2) data set among the loaded ones")
    return AttributionMatrix(frame=pd.concat(frames, ignore_index=True),
                             features=np.concatenate(features).astype(np.float32), parts=parts)


def embed_step(extractor: str, dataset) -> tuple[str, str]:
    """(key, label) of the progress step that embeds `dataset` with `extractor`."""
    where = f"{Path(dataset.root).parent.name}/{Path(dataset.root).name}"
    return f"embed {extractor} {dataset.root}", f"{extractor} features of {where}"


def images_to_embed(dataset, extractor, cache, device: str = "auto") -> int:
    """How many of `dataset`'s distinct images are not yet in `cache` for `extractor` (name or instance)."""
    from synthscope.cache import _resolve_extractor, dataset_keys

    extractor = _resolve_extractor(extractor, device)
    return len(set(dataset_keys(dataset)) - cache.keys(extractor))


def plan_attribution(tracker: ProgressTracker, datasets: Sequence[Dataset], extractor: str, cache,
                     device: str = "auto") -> None:
    """One planned step per attribution data set: the images `attribution_matrix` will embed."""
    for dataset in sorted((d for d in datasets if d.task == "attribution"), key=lambda d: (d.split, str(d.root))):
        key, label = embed_step(extractor, dataset)
        tracker.plan(key, label, images_to_embed(dataset, extractor, cache, device),
                     cost_per_unit=cost_per_image(extractor))


def membership_pair(datasets: Sequence[Dataset]) -> tuple[Dataset, Dataset | None] | None:
    """The sub-task 1 data set to score and the labelled dev set its thresholds come from (the test split,
    with dev; only a labelled folder is scored against its own labels). None without sub-task 1 data."""
    membership = [d for d in datasets if d.task == "membership"]
    if not membership:
        return None
    dev = next((d for d in membership if d.split == "dev"), None)
    scored = next((d for d in membership if d.split == "test"), None)
    return (dev, None) if scored is None else (scored, dev)


@dataclass
class PreparedItem:
    what: str          # e.g. "embed fingerprint on .../subtask1/dev" or "umap of fingerprint (1,000 x 2,113)"
    seconds: float
    computed: bool     # False when it came from the cache


def prepare(path: str | os.PathLike, *, extractors: Sequence[str] = ("fingerprint", "pixels"),
            projections: Sequence[str] = ("umap", "tsne"), cache=None, progress: bool = True,
            say: Callable[[str], None] = print, size_policy: str = "error", layout: str | None = None,
            manifest_csv=None, device: str = "auto", on_progress=None) -> list[PreparedItem]:
    """Embed every data set under `path` and cache the projections the dashboard reads.

    Idempotent: a second call only reads the caches. `on_progress`: a callable(ProgressEvent) (or a
    `ProgressTracker`) told of every step -- each data set and extractor, projection and membership group --
    with an ETA (then no tqdm bars are drawn).
    """
    import time

    from synthscope.cache import CacheStats, EmbeddingCache, embed_dataset
    from synthscope.progress import as_tracker
    from synthscope.projection import NotCached, available_at, describe_projection, project

    cache = cache or EmbeddingCache()
    tracker = as_tracker(on_progress)
    datasets, errors = load_datasets(path, size_policy=size_policy, layout=layout, manifest_csv=manifest_csv)
    for line in errors:
        say(f"skipped {line}")
    pair = membership_pair(datasets)
    if tracker is not None:
        plan_prepare(tracker, datasets, extractors, projections, cache, device)
    done: list[PreparedItem] = []
    for extractor in extractors:
        for dataset in datasets:
            stats, start = CacheStats(), time.perf_counter()
            step = tracker.step(*embed_step(extractor, dataset)) if tracker is not None else None
            embed_dataset(dataset, extractor, cache=cache, device=device, progress=step or progress, stats=stats)
            if step is not None:
                step.__exit__(None, None, None)
            done.append(PreparedItem(f"embed {extractor} on {dataset.root}", time.perf_counter() - start,
                                     stats.n_computed > 0))
        if not any(d.task == "attribution" for d in datasets):
            continue
        X = attribution_matrix(datasets, extractor, cache=cache).features
        wanted = [m for m in projections if available_at(m, len(X))]
        if len(wanted) < len(projections):     # t-SNE at scale without openTSNE: PCA instead, said once
            say(f"{', '.join(m for m in projections if m not in wanted)} skipped at {len(X):,} points "
                "(pip install openTSNE for t-SNE at scale); PCA computed instead")
            wanted = list(dict.fromkeys(wanted + ["pca"]))
        for method in wanted:
            start = time.perf_counter()
            key = f"project {method} {extractor}"
            try:
                project(X, method, compute=False, cache=cache)
                computed = False
                if tracker is not None:
                    tracker.skip(key)
            except NotCached:
                say(f"computing {describe_projection(method, len(X))} of {extractor} features "
                    f"({X.shape[0]:,} x {X.shape[1]:,})")
                step = tracker.step(key, f"{method.upper()} of {extractor} ({len(X):,} points)",
                                    unit="points") if tracker is not None else None
                project(X, method, cache=cache)
                if step is not None:
                    step(len(X), len(X))
                computed = True
            done.append(PreparedItem(f"{method} of {extractor} ({X.shape[0]:,} x {X.shape[1]:,})",
                                     time.perf_counter() - start, computed))
    if pair is not None:    # the sub-task 1 run the dashboard shows, with the CLI's default options
        from synthscope.membership import run_membership_cached

        start = time.perf_counter()
        try:
            _, cached = run_membership_cached(pair[0], pair[1], cache_dir=cache.cache_dir, device=device,
                                              progress=tracker or False)
            done.append(PreparedItem(f"membership run on {pair[0].root}", time.perf_counter() - start, not cached))
        except ValueError as error:   # e.g. a group without generated images: the dashboard says so too
            say(f"membership not scored: {error}")
    if tracker is not None:
        tracker.finish()
    return done


#: estimated seconds of a projection: (fixed, per point); UMAP compiles (numba) for about a minute per process
PROJECTION_COST = {"umap": (60.0, 0.005), "tsne": (5.0, 0.01), "pca": (0.1, 0.0001)}


def plan_prepare(tracker: ProgressTracker, datasets, extractors, projections, cache, device: str = "auto") -> None:
    """The steps of `prepare`: every data set per extractor, the projections, the membership run."""
    n_points = sum(int((d.manifest["role"] == "generated").sum()) for d in datasets if d.task == "attribution")
    for extractor in extractors:
        for dataset in datasets:
            key, label = embed_step(extractor, dataset)
            tracker.plan(key, label, images_to_embed(dataset, extractor, cache, device),
                         cost_per_unit=cost_per_image(extractor))
        if n_points:
            for method in projections:
                fixed, per_point = PROJECTION_COST.get(method, (1.0, 0.001))
                tracker.plan(f"project {method} {extractor}", f"{method.upper()} of {extractor} ({n_points:,} points)",
                             n_points, unit="points", cost_per_unit=per_point, fixed_cost=fixed)
    pair = membership_pair(datasets)
    if pair is not None:
        from synthscope.membership import plan_membership

        try:
            plan_membership(tracker, pair[0], pair[1], cache_dir=cache.cache_dir, device=device)
        except ValueError:
            pass   # prepare says why it is not scored
