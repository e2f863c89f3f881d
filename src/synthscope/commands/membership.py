"""`synthscope membership` (sub-task 1 run file, gated by a leakage test) and `synthscope controls`
(positive and null controls: does the method find planted copies, and stay quiet when nothing leaked?)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd
import typer

from synthscope.commands._common import CacheDirOption, apply_cache_dir, fail


def _load(path: Path, size_policy: str, what: str):
    from synthscope.data import DatasetError, load_dataset

    try:
        dataset = load_dataset(path, size_policy=size_policy)
    except DatasetError as error:
        raise fail(str(error))
    if dataset.task != "membership":
        raise fail(f"{what} {path} is a sub-task 2 tree (layout {dataset.layout}); membership needs real and "
                   f"generated images (sub-task 1 layout)")
    if dataset.report.skipped:
        typer.echo(f"skipped {len(dataset.report.skipped)} unreadable file(s) in {path}; "
                   f"`synthscope info {path}` lists them")
    return dataset


def _check_spaces(spaces: List[str]) -> None:
    from synthscope.membership import SPACES

    unknown = [s for s in spaces if s not in SPACES]
    if unknown:
        raise fail(f"unknown space(s) {', '.join(unknown)}; choose from {', '.join(SPACES)}")


def _verdict_line(verdict) -> str:
    return f"leakage verdict: {verdict.message}\n  ({verdict.method})"


def membership(
    path: Path = typer.Argument(..., help="Sub-task 1 folder to predict (e.g. the test folder; several groups allowed)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run file to write (<image_id>,<0|1> per real image)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: the threshold (and --primary auto) are fit on it."),
    space: List[str] = typer.Option(["pixels-norm", "pixels-128", "pixels-lung", "fingerprint"], "--space", "-s",
                                    help="Feature space(s): pixels, pixels-norm, pixels-lung, pixels-32, pixels-128, fingerprint, effnet-lite0, astra-ct."),
    score: List[str] = typer.Option(["distance", "adjusted", "gan_leaks", "domias", "copies", "registered"], "--score",
                                    help="Scores: distance, adjusted (distance beyond what the real pool's own spacing predicts), gan_leaks, domias, "
                                         "copies (on features), registered (shift-registered copy distance on the images)."),
    primary: str = typer.Option("auto", "--primary",
                                help="Column behind the predictions: auto (the best dev AUC, verdict Bonferroni-corrected for the choice; "
                                     "ensemble without dev), ensemble (mean rank of the distance, adjusted and registered columns) or SPACE:SCORE."),
    objective: str = typer.Option("f1", "--objective", help="Threshold objective on dev: f1, accuracy or kappa."),
    prevalence: Optional[float] = typer.Option(None, "--prevalence", min=0.0, max=1.0,
                                               help="Expected fraction used: threshold at that quantile instead."),
    reference: str = typer.Option("pool", "--reference",
                                  help="Calibration reference: pool (the group's own real images, leave-one-out) or dev."),
    n_neighbors: int = typer.Option(1, "--neighbors", min=1, help="Nearest generated images averaged by the distance score."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Ground truth CSV (image_id,used) to evaluate the run."),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap resamples for the CIs."),
    size_policy: str = typer.Option("error", "--size-policy", help="Images not 256x256: error, resize or center_crop."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda for pretrained extractors."),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Predict which real images trained the generator; write a validated sub-task 1 run file."""
    from synthscope.features import ExtractorUnavailable
    from synthscope.membership import run_membership
    from synthscope.submission import SubmissionError, expected_ids, write_membership_run

    apply_cache_dir(cache_dir)
    _check_spaces(space)
    if objective not in ("f1", "accuracy", "kappa"):
        raise fail(f"unknown objective {objective!r}; choose f1, accuracy or kappa")
    dataset = _load(path, size_policy, "data set")
    dev_set = _load(dev, size_policy, "dev set") if dev is not None else None
    try:
        runs = run_membership(dataset, dev_set, spaces=space, scores=score, primary=primary, objective=objective,
                              prevalence=prevalence, reference=reference, device=device, progress=True,
                              n_neighbors=n_neighbors)
    except ExtractorUnavailable as error:
        raise fail(str(error))
    except (ValueError, KeyError) as error:
        raise fail(str(error.args[0] if error.args else error))

    predictions = pd.concat([run.predictions for run in runs])
    try:
        write_membership_run(out, predictions, expected_ids=expected_ids(dataset, "membership"))
    except SubmissionError as error:
        raise fail(str(error))
    any_leak = False
    for run in runs:
        typer.echo(f"\n== group {run.group or '(flat)'}"
                   + (f" (threshold from dev group {run.dev_group})" if run.dev_group else "") + " ==")
        typer.echo(f"score: {run.primary}; threshold {run.threshold.threshold:.4g} by {run.threshold.method}"
                   + (f" (dev {run.threshold.method} {run.threshold.value:.3f})" if run.dev_result is not None
                      and run.threshold.method in ("f1", "accuracy", "kappa") else "")
                   + f"; {int(run.predictions.sum())} of {len(run.predictions)} predicted used")
        typer.echo(f"calibration reference: {run.result.reference}")
        typer.echo(_verdict_line(run.verdict))
        if run.copying_verdict is not run.verdict:
            typer.echo("label-free check on this folder: " + run.copying_verdict.message)
        any_leak = any_leak or run.verdict.significant
    typer.echo(f"\nwrote {out} ({len(predictions)} real images)")
    if not any_leak:
        typer.secho("no significant leakage: the method found no evidence that it can tell used from not-used "
                    "images here, so its predictions are no better than the all-used baseline; do not report "
                    "the F1 below as a finding.", fg=typer.colors.YELLOW)
    if truth is not None:
        _evaluate(truth, runs, predictions, n_boot, dataset)


def _evaluate(truth_path: Path, runs, predictions: pd.Series, n_boot: int, dataset) -> None:
    from synthscope.data import DatasetError, read_ground_truth
    from synthscope.membership import _group_rows, best_baseline, dataset_space_features, near_duplicate_groups, rank_test
    from synthscope.metrics import membership_report

    try:
        truth = read_ground_truth(truth_path)
    except DatasetError as error:
        raise fail(str(error))
    missing = predictions.index.difference(truth.index)
    if len(missing):
        raise fail(f"ground truth {truth_path} lacks {len(missing)} of the run's ids, e.g. {', '.join(missing[:5])}")
    for run in runs:
        y = truth.loc[run.predictions.index].astype(int).to_numpy()
        typer.echo(f"\n-- evaluation, group {run.group or '(flat)'} (score {run.primary}) --")
        if y.min() == y.max():
            typer.echo("ground truth has a single class here; AUC and the rank test are undefined")
        else:
            typer.echo("test labels, for evaluation only: "
                       + rank_test(run.result.scores[run.primary].to_numpy(), y).message)
            same_space = f"{run.primary.split(':')[0]}:pool_baseline"
            baseline = run.result.baseline
            if baseline is not None and same_space in baseline.columns:
                baseline = baseline[[same_space]]
            base = best_baseline(baseline, y)
            if base is not None:
                typer.echo(f"generator-free baseline on the same labels: {base[0]} AUC {base[1].statistic:.3f} "
                           f"(minus the distance to the nearest other real image; it never looks at the generated set)")
        report = membership_report(y, run.predictions.to_numpy(),
                                   run.result.scores[run.primary].to_numpy(), n_boot=n_boot)
        typer.echo(report.format())
        # slices of one scan share their membership: resample whole groups of neighbouring slices as well
        groups = near_duplicate_groups(dataset_space_features(dataset, "pixels")[_group_rows(dataset, run.group)[0]])
        if len(np.unique(groups)) < len(groups):
            grouped = membership_report(y, run.predictions.to_numpy(), run.result.scores[run.primary].to_numpy(),
                                        n_boot=n_boot, groups=groups).estimates
            typer.echo(f"scan-group bootstrap ({len(np.unique(groups))} groups of neighbouring slices for "
                       f"{len(groups)} images, found without labels): "
                       + ", ".join(f"{name} [{grouped[name].ci_low:.3f}, {grouped[name].ci_high:.3f}]"
                                   for name in ("roc_auc", "f1", "kappa") if name in grouped))
    if len(runs) > 1:
        y = truth.loc[predictions.index].astype(int).to_numpy()
        typer.echo("\n-- evaluation, all groups (scores ranked within each group, so AUC is not pooled) --")
        typer.echo(membership_report(y, predictions.to_numpy(), n_boot=n_boot).format())


def controls(
    path: Path = typer.Argument(..., help="Sub-task 1 folder (labelled dev or unlabelled test; several groups allowed)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: the positive control's threshold is fit on its own injected copies."),
    space: str = typer.Option("pixels-norm", "--space", "-s", help="Feature space for both controls."),
    positive_score: str = typer.Option("registered", "--positive-score",
                                       help="Score for the positive control (registered = shift-registered copy distance on the images)."),
    null_score: str = typer.Option("distance", "--null-score", help="Score for the (labelled) null control."),
    null_repeats: int = typer.Option(10, "--null-repeats", min=1,
                                     help="Random group-aware splits the null control is repeated over (median p decides)."),
    fraction: float = typer.Option(0.5, "--fraction", min=0.01, max=1.0, help="Fraction of real images copied into the generated set."),
    copy_from: str = typer.Option("not_used", "--copy-from",
                                  help="Which real images to copy when labels exist: not_used, used or all."),
    seed: int = typer.Option(0, "--seed"),
    size_policy: str = typer.Option("error", "--size-policy"),
    device: str = typer.Option("auto", "--device"),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Positive control (planted near copies must be flagged) and null control (held-out real images
    as the generated set: the verdict must be "no leakage"). Exits 1 when a control fails."""
    from synthscope.features import ExtractorUnavailable
    from synthscope.membership import (
        SCORES, dataset_space_features, fit_threshold, null_control, run_positive_control,
        _group_rows, _used_labels, pair_groups,
    )

    apply_cache_dir(cache_dir)
    _check_spaces([space])
    for name, allowed in ((positive_score, SCORES + ("registered",)), (null_score, SCORES)):
        if name not in allowed:
            raise fail(f"unknown score {name!r}; choose from {', '.join(allowed)}")
    if copy_from not in ("not_used", "used", "all"):
        raise fail("--copy-from must be not_used, used or all")
    dataset = _load(path, size_policy, "data set")
    dev_set = _load(dev, size_policy, "dev set") if dev is not None else None
    failed = False
    try:
        features = dataset_space_features(dataset, space, device=device, progress=True)
        groups = sorted(dataset.manifest.loc[dataset.manifest["role"] == "real", "group"].unique())
        pairs = pair_groups(groups, sorted(dev_set.manifest["group"].unique())) if dev_set is not None else {}
        for group in groups:
            typer.echo(f"\n== group {group or '(flat)'}, space {space} ==")
            real_rows, gen_rows = _group_rows(dataset, group)
            used = _used_labels(dataset, real_rows)
            candidates = _candidates(used, copy_from)
            images = dataset.images(real_rows)
            gen_images = dataset.images(gen_rows)
            threshold = None
            if dev_set is not None:
                d_real, d_gen = _group_rows(dev_set, pairs[group])
                d_used = _used_labels(dev_set, d_real)
                _, d_scores, d_truth = run_positive_control(space, dev_set.images(d_real), dev_set.images(d_gen),
                                                            score=positive_score, fraction=fraction,
                                                            candidates=_candidates(d_used, copy_from), seed=seed)
                threshold = fit_threshold(d_scores, d_truth, "f1")
            result, scores, truth = run_positive_control(space, images, gen_images, score=positive_score,
                                                         fraction=fraction, candidates=candidates, seed=seed + 7)
            if threshold is None:
                threshold = fit_threshold(scores, None)  # label-free: two-component mixture
            predicted = scores >= threshold.threshold
            tp = int((predicted & truth).sum())
            f1 = 2 * tp / max(1, int(predicted.sum()) + int(truth.sum()))
            typer.echo(result.message)
            typer.echo(f"  F1 of flagging the copies at the {'dev-fitted' if dev_set is not None else 'mixture'} "
                       f"threshold: {f1:.3f} ({int(predicted.sum())} flagged, {int(truth.sum())} copied)")
            failed |= not result.passed
            null = null_control(features[real_rows], used, score=null_score, n_repeats=null_repeats, seed=seed)
            typer.echo(null.message)
            failed |= not null.passed
    except ExtractorUnavailable as error:
        raise fail(str(error))
    except ValueError as error:
        raise fail(str(error))
    typer.echo("\n" + ("a control FAILED: do not trust membership claims from this configuration"
                       if failed else "both controls passed"))
    if failed:
        raise typer.Exit(1)


def _candidates(used, copy_from: str):
    if used is None or copy_from == "all":
        return None
    return used == (1 if copy_from == "used" else 0)


def register(app: typer.Typer) -> None:
    app.command("membership")(membership)
    app.command("controls")(controls)
