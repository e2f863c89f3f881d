"""`synthscope demo` (the offline demo data set, then the dashboard) and `synthscope lab` (the generator
zoo trained on the user's own real images)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import List, Optional

import typer

from synthscope.commands._common import (
    CacheDirOption, Device, DeviceOption, apply_cache_dir, check_writable_dir, choice, fail, guard_outputs,
)


def _serve(path: Path, host: str, port: int, k: int | None = None) -> None:
    """Hand the demo over to the dashboard command, when it is installed."""
    try:
        dashboard = importlib.import_module("synthscope.commands.dashboard")
        serve = getattr(dashboard, "serve_dashboard")
    except (ImportError, AttributeError):
        typer.echo(
            "The dashboard is not available in this installation (synthscope.commands.dashboard."
            f"serve_dashboard is missing); the demo data is ready at {path}."
        )
        raise typer.Exit(1)
    raise typer.Exit(serve(path, host, port, k=k))


def demo(
    out: Optional[Path] = typer.Option(None, "--out", help="Where to build the demo (default: <cache dir>/demo/seed0)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when a complete demo is cached."),
    quick: bool = typer.Option(False, "--quick", help="A much smaller demo (seconds, barely trained models) for tests."),
    seed: int = typer.Option(0, "--seed", help="Seed of the phantoms, splits, training and sampling."),
    device: Device = DeviceOption,
    serve: bool = typer.Option(False, "--serve", help="Serve the dashboard on the demo when it is ready."),
    prepare: bool = typer.Option(True, "--prepare/--no-prepare",
                                 help="Precompute the embeddings and projections the dashboard reads."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8866, "--port"),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Build the offline demo data set (procedural CT slices + a really trained generator zoo) in the
    ImageCLEF 2024 layouts of both sub-tasks; cached, so a second run returns at once."""
    if serve:   # before building: the page cannot be served without the [dashboard] extra
        from synthscope.commands.dashboard import dashboard_extra_problem

        if problem := dashboard_extra_problem():
            raise fail(problem)
    apply_cache_dir(cache_dir)
    if out is not None:
        check_writable_dir(out, "--out")   # before any training
    from synthscope.demo import build_demo
    from synthscope.lab import LabError

    try:
        paths = build_demo(out, seed=seed, force=force, quick=quick, device=choice(device), progress=typer.echo)
    except LabError as exc:
        raise fail(str(exc))
    typer.echo(f"demo: {paths.root}")
    typer.echo(f"  sub-task 1: {paths.subtask1_dev}  {paths.subtask1_test}  truth {paths.subtask1_truth}")
    typer.echo(f"  sub-task 2: {paths.subtask2_dev}  {paths.subtask2_test}  truth {paths.subtask2_truth}")
    typer.echo(f"  real pool:  {paths.real_pool}  (groups {paths.real_groups})")
    if prepare:
        # The dashboard only reads caches (UMAP's numba JIT alone costs about a minute per process).
        from synthscope.datatree import prepare as prepare_workspace

        for item in prepare_workspace(paths.root, extractors=("fingerprint", "pixels"),
                                      # quick demos are for tests: skip UMAP's minute of JIT
                                      projections=("tsne",) if quick else ("umap", "tsne"),
                                      progress=False, say=typer.echo):
            typer.echo(f"  {'computed' if item.computed else 'cached':>8} {item.seconds:6.1f} s  {item.what}")
    if serve:
        from synthscope.demo import demo_config

        # the demo's task statement: k = every generator of its zoo is in the sub-task 2 test folder
        _serve(paths.root, host, port, k=len(demo_config(seed=seed, quick=quick).lab.models))


def model_names(values: List[str]) -> tuple[str, ...]:
    """`--models` given once per model, or as one comma-separated list (the older form), or both."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def lab(
    real_dir: Path = typer.Argument(..., help="Folder of real images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="New or empty folder for the benchmark."),
    models: Optional[List[str]] = typer.Option(
        None, "--models", help="Zoo members, in order, one per flag (--models dcgan --models vae; a comma-separated "
                               "list works too) from dcgan, upconv, vae, diffusion (default: dcgan, vae, diffusion, "
                               "upconv). The first two also get sub-task 1 folders; the last is left out of sub-task 2 dev."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Passes over each training set (default: the "
                                                                 "lab's fixed step counts)."),
    train_size: int = typer.Option(72, "--train-size", help="Real images in each model's training set."),
    resolution: int = typer.Option(64, "--resolution", help="Internal training resolution (outputs are upsampled to 256)."),
    membership_models: int = typer.Option(2, "--membership-models", help="How many models get sub-task 1 folders."),
    groups: Optional[Path] = typer.Option(None, "--groups", help="CSV: image id, group (e.g. the scan); a group is "
                                                                  "never split between used / not used or dev / test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the splits, training and sampling (same seed, same benchmark)."),
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Train the generator zoo on subsets of REAL_DIR and write a benchmark with ground truth in the
    ImageCLEF 2024 layout: the positive control to run before trusting a method on official data."""
    # paths first, before anything is created: --out and the cache may not land inside the real images
    guard_outputs({}, data_folders={"REAL_DIR": real_dir}, output_folders={"--out": out}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    from synthscope.lab import LabConfig, LabError, build_benchmark, load_real_folder

    names = model_names(models) if models else LabConfig().models
    try:
        config = LabConfig(models=names, train_size=train_size, resolution=resolution, seed=seed, device=choice(device),
                           membership_models=min(membership_models, len(names)),
                           resolution_overrides={} if resolution <= 32 else {"diffusion": 32})
        config.validate()
        if epochs is not None:
            config.steps = config.steps_for_epochs(epochs)
    except LabError as exc:
        raise fail(str(exc))
    check_writable_dir(out, "--out")   # before any training
    try:
        images, ids, group_ids, skipped = load_real_folder(real_dir, groups)
        for line in skipped:
            typer.echo(f"skipped {line}", err=True)
        typer.echo(f"read {len(images)} real images from {real_dir}" + (f" ({len(skipped)} skipped)" if skipped else ""))
        result = build_benchmark(images, ids, out, config, groups=group_ids, progress=typer.echo,
                                 description=f"{len(images)} images from `{real_dir}`")
    except LabError as exc:
        raise fail(str(exc))
    typer.echo(f"benchmark: {result.root} (README.md there describes it)")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("lab")(lab)
