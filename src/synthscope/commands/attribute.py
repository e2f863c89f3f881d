"""`synthscope attribute` (sub-task 2 run file) and `synthscope project` (precompute a cached 2-D projection)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from synthscope.attribution import CLUSTER_METHODS
from synthscope.commands._common import (
    CacheDirOption, Device, DeviceOption, Layout, LayoutOption, ManifestOption, NBootOption, SizePolicy,
    SchedulerOption, SizePolicyOption, WorkersOption, apply_cache_dir, check_output_file, choice, engine_for, fail,
    guard_dataset_outputs, guard_outputs, load_for, read_truth_or_fail,
)

Method = Enum("Method", {name: name for name in CLUSTER_METHODS}, type=str)


def attribute(
    path: Path = typer.Argument(..., help="Folder of generated images to group (sub-task 2 test layout)."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Number of generators (clusters). Required unless --dev is a 2025 subset tree."),
    extractor: List[str] = typer.Option(["fingerprint"], "--extractor", "-e", help="Feature view(s); several are compared (auto) or combined (consensus)."),
    method: Method = typer.Option(Method.auto, "--method", help="Clustering: auto (label-free choice), consensus, or one algorithm."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: seeds known generators (2024) or trains a subset classifier (2025)."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Ground-truth CSV (image_id, model) to score the result."),
    out: Path = typer.Option(..., "--out", help="Run file to write (validated before writing)."),
    scores_out: Optional[Path] = typer.Option(
        None, "--scores", help="Also write image_id,prediction,confidence,novelty per image. With --dev: calibrated "
                               "confidence (2025) or assignment margin (2024), and novelty = 1 - conformal p-value "
                               "(above 1 - alpha = none of these); label-free: assignment margin and outlier score."),
    novelty_alpha: float = typer.Option(0.01, "--novelty-alpha", min=0.0, max=1.0,
                                        help="With --dev: conformal level of 'none of these' (about this share of "
                                             "images of known generators is flagged)."),
    n_components: int = typer.Option(8, "--n-components", min=1, help="PCA components per view after standardising."),
    seed: int = typer.Option(0, "--seed", help="Random seed (results are deterministic for a seed)."),
    n_boot: int = NBootOption,
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Group generated images by generator and write a validated sub-task 2 run file."""
    from synthscope.attribution import AttributionOptions, evaluate_attribution, run_attribution
    from synthscope.features import ExtractorUnavailable
    from synthscope.submission import SubmissionError

    outputs = {"--out": out, "--scores": scores_out}
    # before anything is created or computed: no output may be an input, sit in a data folder or be another output
    guard_outputs(outputs, input_files={"--truth": truth, "--manifest": manifest},
                  data_folders={"PATH": path, "--dev": dev}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    check_output_file(out)
    if scores_out is not None:
        check_output_file(scores_out, "--scores")
    if k is not None and k < 2:
        raise fail(f"--k {k}: one cluster holds every image, so there is nothing to attribute; "
                   "give the number of generators (at least 2)")
    try:
        options = AttributionOptions(k=k, extractors=tuple(extractor), method=choice(method),
                                     n_components=n_components, seed=seed, novelty_alpha=novelty_alpha)
    except ValueError as error:
        raise fail(str(error))
    truth_series = read_truth_or_fail(truth) if truth is not None else None
    loading = dict(size_policy=size_policy, layout=layout, manifest=manifest, task="attribution")
    test = load_for(path, **loading)
    n_images = int((test.manifest["role"] == "generated").sum())
    if k is not None and k >= n_images:
        raise fail(f"--k {k} with {n_images} generated images in {path}: each image would be a cluster "
                   f"of its own; k must be smaller than the number of images (2..{n_images - 1} here)")
    # --layout names PATH's layout (e.g. 2025-st2-test, which looks like 2024-st2-test); the dev tree is
    # detected from its own folders unless a dev layout is forced
    dev_loading = {**loading, "layout": layout if layout is not None and choice(layout).endswith("-dev") else None}
    dev_set = load_for(dev, **dev_loading, what="dev set") if dev is not None else None
    for data, what in ((test, "PATH"), (dev_set, "--dev")):
        if data is not None:
            guard_dataset_outputs(data, outputs, what)
    if k is None and (dev_set is None or not dev_set.layout.startswith("2025-st2")):
        raise fail("--k is required for clustering: the number of generators the task states")
    try:
        with engine_for(workers, scheduler):
            run = run_attribution(test, dev_set, options, device=choice(device), progress=True)
    except KeyError as error:
        raise fail(str(error.args[0]))
    except (ExtractorUnavailable, ValueError) as error:
        raise fail(str(error))
    for line in run.description:
        typer.echo(line)
    try:
        run.write(out)
        if scores_out is not None:
            from synthscope.score_files import write_attribution_scores

            write_attribution_scores(scores_out, run.scores_table())
    except (SubmissionError, OSError) as error:
        raise fail(str(error))
    typer.echo(f"wrote {out} ({len(run.labels)} images)"
               + (f" and {scores_out} (prediction, confidence, novelty)" if scores_out is not None else ""))
    if truth_series is not None:
        try:
            typer.echo(evaluate_attribution(run, truth_series, n_boot=n_boot).format())
        except ValueError as error:
            raise fail(f"{error} in {truth}")


ProjectionMethod = Enum("ProjectionMethod", {name: name for name in ("umap", "tsne", "pca")}, type=str)


def project_command(
    path: Path = typer.Argument(..., help="A data folder in any ImageCLEF GANs layout."),
    extractor: str = typer.Option("fingerprint", "--extractor", "-e", help="Extractor whose embeddings to project."),
    method: ProjectionMethod = typer.Option(ProjectionMethod.umap, "--method", help="2-D projection."),
    seed: int = typer.Option(0, "--seed", help="Random seed (deterministic for a seed)."),
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Precompute and cache a 2-D projection of PATH's embeddings (the dashboard only reads it)."""
    guard_outputs({}, input_files={"--manifest": manifest}, data_folders={"PATH": path}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    import time

    from synthscope.cache import EmbeddingCache, embed_dataset
    from synthscope.features import ExtractorUnavailable, get_extractor
    from synthscope.projection import describe_projection, project

    dataset = load_for(path, size_policy=size_policy, layout=layout, manifest=manifest)
    try:
        chosen = get_extractor(extractor)
        vectors = embed_dataset(dataset, chosen, cache=EmbeddingCache(), batch_size=chosen.default_batch_size,
                                device=choice(device), progress=True)
    except KeyError as error:
        raise fail(str(error.args[0]))
    except ExtractorUnavailable as error:
        raise fail(str(error))
    start = time.perf_counter()
    try:
        coords = project(vectors, choice(method), seed=seed)
    except ValueError as error:
        raise fail(str(error))
    typer.echo(f"{describe_projection(choice(method), len(coords))}: projection of {len(coords)} {extractor} embeddings cached "
               f"({time.perf_counter() - start:.1f} s)")


def register(app: typer.Typer) -> None:
    app.command("attribute")(attribute)
    app.command("project")(project_command)
