"""`synthscope info`, `synthscope validate` and `synthscope evaluate`: data sets and run files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synthscope.commands._common import (
    CacheDirOption, Layout, LayoutOption, ManifestOption, N_BOOT_MAX, N_BOOT_MIN, SizePolicy, SizePolicyOption, choice,
    fail, use_cache_dir,
)
from synthscope.submission import KINDS

Kind = Enum("Kind", {name: name for name in KINDS}, type=str)
KIND_HELP = "membership (sub-task 1), attribution (sub-task 2 clusters) or subset (2025 sub-task 2)"


def _load(path: Path, size_policy, manifest: Optional[Path], layout=None):
    from synthscope.data import DatasetError, load_dataset

    try:
        return load_dataset(path, manifest_csv=manifest, size_policy=choice(size_policy), layout=choice(layout))
    except DatasetError as error:
        raise fail(str(error))


def info(
    path: Path = typer.Argument(..., help="A data folder in any ImageCLEF GANs layout, or a manifest CSV."),
    size_policy: SizePolicy = SizePolicyOption,
    manifest: Optional[Path] = ManifestOption,
    layout: Optional[Layout] = LayoutOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Print the detected layout, image counts per group/role/label and the load report."""
    from synthscope.data import TWIN_LAYOUTS

    use_cache_dir(cache_dir)
    dataset = _load(path, size_policy, manifest, layout)
    task_name = "sub-task 1, membership" if dataset.task == "membership" else "sub-task 2, attribution"
    typer.echo(f"{dataset.root}")
    typer.echo(f"layout: {dataset.layout} ({task_name}; {dataset.split}: {'labelled' if dataset.split == 'dev' else 'unlabelled'})")
    if dataset.layout in TWIN_LAYOUTS:
        typer.echo(f"  (same folder shape as {TWIN_LAYOUTS[dataset.layout]}; pass --layout {TWIN_LAYOUTS[dataset.layout]} for 2025 data)")
    counts = dataset.counts()
    counts["group"] = counts["group"].replace("", "(none)")
    typer.echo(f"images: {len(dataset.manifest)}")
    for role in ("generated", "real"):
        n = int((dataset.manifest["role"] == role).sum())
        if n:
            typer.echo(f"  {role}: {n}")
    typer.echo("counts per group / role / label:")
    typer.echo("  " + counts.to_string(index=False).replace("\n", "\n  "))
    typer.echo(dataset.report.format())


def _score_file_header(path: Path) -> Optional[str]:
    """The header line when `path` is a membership score file (`membership --scores`: a header naming
    image_id, score and more columns), which is not a run file; None otherwise."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:   # universal newlines
            first = handle.readline().strip()
    except OSError:
        return None
    names = [name.strip().lower() for name in first.split(",")]
    return first if {"image_id", "score"} <= set(names) and len(names) > 2 else None


SCORE_FILE_NOTE = "a membership score file (written by `membership --scores`), not a run file"


def validate(
    run: Path = typer.Argument(..., help="The run file to check."),
    dataset_path: Path = typer.Option(..., "--dataset", help="The test data the run is for (its ids are the expected ones)."),
    kind: Optional[Kind] = typer.Option(None, "--kind", help=f"{KIND_HELP}; default from the data set."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Number of clusters (attribution): ids must be 0..k-1, all used."),
    any_k: bool = typer.Option(False, "--allow-unused-clusters", help="With --k, accept runs that leave some clusters empty."),
    size_policy: SizePolicy = SizePolicyOption,
    manifest: Optional[Path] = ManifestOption,
    layout: Optional[Layout] = LayoutOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Check a run file against the organisers' rules and the data set's image ids. Exit 1 when invalid."""
    from synthscope.submission import SubmissionError, default_kind, expected_ids, validate_run

    use_cache_dir(cache_dir)
    kind = choice(kind)
    dataset = _load(dataset_path, size_policy, manifest, layout)
    header = _score_file_header(run)
    if header is not None:
        from synthscope.score_files import validate_score_file

        ids = expected_ids(dataset, "membership")
        result = validate_score_file(run, ids)
        typer.echo(f"{run}: {SCORE_FILE_NOTE} (header {header}); checked as a score file for {dataset.root} "
                   f"({dataset.layout}, {len(ids)} real images). Run files have no header: validate the --out file.")
        typer.echo(result.format())
        raise typer.Exit(0 if result.ok else 1)
    kind = kind or default_kind(dataset)
    allowed = None
    if kind == "subset" and dataset.split == "dev":
        allowed = sorted(dataset.generated["label"].unique())
    ids = expected_ids(dataset, kind)
    if not ids:
        raise fail(f"{dataset.root} has no {'real' if kind == 'membership' else 'generated'} images to expect in a {kind} run")
    try:
        result = validate_run(run, kind, ids, k=k, exact_k=not any_k, allowed_labels=allowed)
    except SubmissionError as error:
        raise fail(str(error))
    typer.echo(f"{run}: {kind} run for {dataset.root} ({dataset.layout}, {len(ids)} expected ids)")
    typer.echo(result.format())
    if not result.ok:
        raise typer.Exit(1)


def evaluate(
    run: Path = typer.Argument(..., help="The run file to score."),
    truth: Path = typer.Option(..., "--truth", help="Ground-truth CSV; columns by name: image_id plus used (0/1), model or subset."),
    kind: Optional[Kind] = typer.Option(None, "--kind", help=f"{KIND_HELP}; default from the ground truth and run."),
    n_boot: int = typer.Option(1000, "--n-boot", min=N_BOOT_MIN, max=N_BOOT_MAX, help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    dataset_path: Optional[Path] = typer.Option(
        None, "--dataset", help="The test data: adds one report per group (model folder), as the 2024 task scored them."
    ),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Score a run file against ground truth: every metric with its 95% bootstrap CI and the trivial baselines."""
    from synthscope.data import DatasetError, read_ground_truth
    from synthscope.submission import SubmissionError, read_run, validate_run

    use_cache_dir(cache_dir)
    kind = choice(kind)
    try:
        truth_series = read_ground_truth(truth)
    except DatasetError as error:
        raise fail(str(error))
    if not Path(run).is_file():
        raise fail(f"run file not found: {run}")
    if (header := _score_file_header(run)) is not None:
        raise fail(f"{run} is {SCORE_FILE_NOTE} (header {header}); evaluate scores run files (membership's --out)")
    if kind is None:
        if truth_series.dtype.kind == "i":
            kind = "membership"
        else:
            first_line = Path(run).read_text(errors="replace").split("\n", 1)[0]
            kind = "attribution" if first_line.rsplit(",", 1)[-1].strip().lstrip("-").isdigit() else "subset"
    if kind == "membership" and truth_series.dtype.kind != "i":
        raise fail(f"{truth} holds model/subset names, not 0/1 labels: it is not sub-task 1 ground truth")
    try:
        predicted = read_run(run, kind)
        result = validate_run(run, kind, expected_ids=truth_series.index)
    except SubmissionError as error:
        raise fail(str(error))
    typer.echo(f"{run}: {kind} run, {len(predicted)} lines; ground truth {truth}: {len(truth_series)} ids")
    if not result.ok:
        typer.echo("run file is not valid for this ground truth (scored on the ids it shares with it):")
        typer.echo("  " + "\n  ".join(result.errors))
    common = truth_series.index.intersection(predicted.index)
    if len(common) == 0:
        raise fail("the run and the ground truth share no image ids")
    y_true, y_pred = truth_series.loc[common].to_numpy(), predicted.loc[common].to_numpy()
    report = _report(kind, y_true, y_pred, n_boot, seed)
    typer.echo(f"scored on {len(common)} images")
    typer.echo(report.format())
    if kind == "membership":
        best = max(report.baselines, key=lambda name: report.baselines[name]["f1"])
        f1 = report.estimates["f1"]
        verdict = "above" if f1.ci_low > report.baselines[best]["f1"] else "not above"
        typer.echo(f"F1 {f1.value:.3f} is {verdict} the best trivial baseline ({best}, F1 {report.baselines[best]['f1']:.3f}) at 95% confidence")
    elif kind == "attribution":
        ari = report.estimates["ari"]
        typer.echo(f"ARI {ari.value:.3f}: {'above' if ari.ci_low > 0 else 'not above'} the single-cluster baseline (0) at 95% confidence")
    else:
        accuracy = report.estimates["accuracy"]
        majority = report.baselines["majority_class"]["accuracy"]
        verdict = "above" if accuracy.ci_low > majority else "not above"
        typer.echo(f"accuracy {accuracy.value:.3f} is {verdict} the majority-class baseline ({majority:.3f}) at 95% confidence")
    if dataset_path is not None:
        dataset = _load(dataset_path, "error", None)
        role = "real" if kind == "membership" else "generated"
        rows = dataset.manifest[dataset.manifest["role"] == role]
        for group, ids in rows.groupby("group", sort=True)["image_id"]:
            shared = common.intersection(ids)
            if len(shared) == 0 or len(rows["group"].unique()) < 2:
                continue
            typer.echo(f"\ngroup {group or '(none)'}: {len(shared)} images")
            typer.echo(_report(kind, truth_series.loc[shared].to_numpy(), predicted.loc[shared].to_numpy(), n_boot, seed).format())
    if not result.ok:
        raise typer.Exit(1)


def _report(kind: str, y_true, y_pred, n_boot: int, seed: int):
    from synthscope.metrics import attribution_report, membership_report, subset_accuracy_report

    if kind == "membership":
        return membership_report(y_true.astype(int), y_pred.astype(int), n_boot=n_boot, seed=seed)
    if kind == "attribution":
        return attribution_report(y_true.astype(str), y_pred, n_boot=n_boot, seed=seed)
    return subset_accuracy_report(y_true.astype(str), y_pred.astype(str), n_boot=n_boot, seed=seed)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
    app.command("validate")(validate)
    app.command("evaluate")(evaluate)
