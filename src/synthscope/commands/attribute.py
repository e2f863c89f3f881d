"""`synthscope attribute` (sub-task 2 run file) and `synthscope project` (precompute a cached 2-D projection)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd
import typer

from synthscope.commands._common import CacheDirOption, apply_cache_dir, check_output_file, fail, load_dataset_or_fail

METHOD_CHOICES = ("auto", "consensus", "kmeans", "gmm", "ward", "spectral")


def _load(path: Path, size_policy: str):
    dataset = load_dataset_or_fail(path, size_policy=size_policy)
    generated = (dataset.manifest["role"] == "generated").to_numpy()
    if not generated.any():
        raise fail(f"{path} holds no generated images to attribute (layout {dataset.layout})")
    return dataset.subset(generated)


def _embed(dataset, names: List[str]) -> dict[str, np.ndarray]:
    from synthscope.cache import EmbeddingCache, embed_dataset
    from synthscope.features import ExtractorUnavailable, get_extractor

    cache = EmbeddingCache()
    views = {}
    for name in names:
        try:
            extractor = get_extractor(name)
            views[name] = embed_dataset(dataset, extractor, cache=cache, batch_size=extractor.default_batch_size,
                                        progress=True)
        except KeyError as error:
            raise fail(str(error.args[0]))
        except ExtractorUnavailable as error:
            raise fail(str(error))
    return views


def _dev_labels(dev) -> np.ndarray:
    labels = dev.manifest["label"].astype(str)
    groups = dev.manifest["group"].astype(str)
    # 2024 dev folders name the generator; fall back to the folder when the label is unknown
    return np.where((labels == "unknown") | (labels == ""), groups, labels)


def attribute(
    path: Path = typer.Argument(..., help="Folder of generated images to group (sub-task 2 test layout)."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Number of generators (clusters). Required unless --dev is a 2025 subset tree."),
    extractor: List[str] = typer.Option(["fingerprint"], "--extractor", "-e", help="Feature view(s); several are compared (auto) or combined (consensus)."),
    method: str = typer.Option("auto", "--method", help="auto | consensus | kmeans | gmm | ward | spectral"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: seeds known generators (2024) or trains a subset classifier (2025)."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Ground-truth CSV (image_id, model) to score the result."),
    out: Path = typer.Option(..., "--out", help="Run file to write (validated before writing)."),
    n_components: int = typer.Option(8, "--n-components", min=1, help="PCA components per view after standardising."),
    seed: int = typer.Option(0, "--seed", help="Random seed (results are deterministic for a seed)."),
    size_policy: str = typer.Option("error", "--size-policy", help="Images not 256x256: error | resize | center_crop"),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Group generated images by generator and write a validated sub-task 2 run file."""
    apply_cache_dir(cache_dir)
    check_output_file(out)   # before any computing
    if k is not None and k < 2:
        raise fail(f"--k {k}: one cluster holds every image, so there is nothing to attribute; "
                   "give the number of generators (at least 2)")
    if method not in METHOD_CHOICES:
        raise fail(f"--method must be one of {', '.join(METHOD_CHOICES)}; got {method!r}")
    from synthscope.attribution import FingerprintClustering, SeededClustering, SubsetClassifier, score_clustering, blocks_for_view
    from synthscope.submission import SubmissionError, write_attribution_run, write_subset_run

    test = _load(path, size_policy)
    if k is not None and k >= len(test.manifest):
        raise fail(f"--k {k} with {len(test.manifest)} generated images in {path}: each image would be a cluster "
                   f"of its own; k must be smaller than the number of images (2..{len(test.manifest) - 1} here)")
    views = _embed(test, extractor)
    ids = test.manifest["image_id"].to_numpy()
    kind = "attribution"
    try:
        if dev is not None:
            dev_set = _load(dev, size_policy)
            dev_views = _embed(dev_set, extractor[:1])
            y_dev = _dev_labels(dev_set)
            view = extractor[0]
            if dev_set.layout.startswith("2025-st2"):
                kind = "subset"
                model = SubsetClassifier(random_state=seed).fit(dev_views[view], y_dev)
                assignments = model.predict(views[view])
                typer.echo(f"supervised subset assignment: logistic regression on {view} fit on {len(y_dev)} dev images "
                           f"({len(model.classes_)} subsets)")
            else:
                if k is None:
                    raise fail("--k is required for clustering")
                model = SeededClustering(k, n_components=n_components, random_state=seed,
                                         blocks=blocks_for_view(view, views[view].shape[1]))
                model.fit(dev_views[view], y_dev, views[view])
                assignments = model.labels_
                typer.echo(f"semi-supervised: k-means on {view} seeded by {len(model.known_generators_)} dev generators "
                           f"({', '.join(model.known_generators_)}); {k - len(model.known_generators_)} new cluster(s)")
                for cluster, name in model.cluster_names_.items():
                    typer.echo(f"  cluster {cluster}: {name} ({int((assignments == cluster).sum())} images)")
        else:
            if k is None:
                raise fail("--k is required for clustering")
            model = FingerprintClustering(k, method=method, views=tuple(extractor), n_components=n_components,
                                          random_state=seed).fit(views)
            assignments = model.labels_
            typer.echo(model.describe())
    except ValueError as error:
        raise fail(str(error))

    try:
        if kind == "subset":
            write_subset_run(out, pd.Series(assignments, index=ids), expected_ids=ids)
        else:
            write_attribution_run(out, pd.Series(assignments.astype(int), index=ids), k=k, exact_k=True,
                                  expected_ids=ids)
    except SubmissionError as error:
        raise fail(str(error))
    typer.echo(f"wrote {out} ({len(ids)} images)")

    if truth is not None:
        from synthscope.data import DatasetError, read_ground_truth

        try:
            truth_series = read_ground_truth(truth)
        except DatasetError as error:
            raise fail(str(error))
        missing = [i for i in ids if i not in truth_series.index]
        if missing:
            raise fail(f"{len(missing)} image(s) have no ground truth in {truth}, e.g. {missing[0]}")
        y_true = truth_series.loc[ids].astype(str).to_numpy()
        if kind == "subset":
            from synthscope.metrics import subset_accuracy_report

            typer.echo(subset_accuracy_report(y_true, assignments).format())
        else:
            typer.echo(score_clustering(y_true, assignments).format())


def project_command(
    path: Path = typer.Argument(..., help="A data folder in any ImageCLEF GANs layout."),
    extractor: str = typer.Option("fingerprint", "--extractor", "-e", help="Extractor whose embeddings to project."),
    method: str = typer.Option("umap", "--method", help="umap | tsne | pca"),
    seed: int = typer.Option(0, "--seed", help="Random seed (deterministic for a seed)."),
    size_policy: str = typer.Option("error", "--size-policy", help="Images not 256x256: error | resize | center_crop"),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Precompute and cache a 2-D projection of PATH's embeddings (the dashboard only reads it)."""
    apply_cache_dir(cache_dir)
    import time

    from synthscope.cache import EmbeddingCache, embed_dataset
    from synthscope.data import DatasetError, load_dataset
    from synthscope.features import ExtractorUnavailable, get_extractor
    from synthscope.projection import METHODS, project

    if method not in METHODS:
        raise fail(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    try:
        dataset = load_dataset(path, size_policy=size_policy)
        chosen = get_extractor(extractor)
        vectors = embed_dataset(dataset, chosen, cache=EmbeddingCache(), batch_size=chosen.default_batch_size,
                                progress=True)
    except KeyError as error:
        raise fail(str(error.args[0]))
    except (DatasetError, ExtractorUnavailable) as error:
        raise fail(str(error))
    start = time.perf_counter()
    try:
        coords = project(vectors, method, seed=seed)
    except ValueError as error:
        raise fail(str(error))
    typer.echo(f"{method} projection of {len(coords)} {extractor} embeddings cached "
               f"({time.perf_counter() - start:.1f} s)")


def register(app: typer.Typer) -> None:
    app.command("attribute")(attribute)
    app.command("project")(project_command)
