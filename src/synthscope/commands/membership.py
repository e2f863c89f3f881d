"""`synthscope membership` (sub-task 1 run file, gated by a leakage test) and `synthscope controls`
(positive and null controls: does the method find planted copies, and stay quiet when nothing leaked?).

Both are adapters: they build options, call the core's `run_membership` / `run_controls` and print
what comes back. The dashboard and `make bench` call the same functions.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from synthscope.commands._common import (
    CacheDirOption, Device, DeviceOption, Layout, LayoutOption, ManifestOption, NBootOption, SizePolicy, SizePolicyOption,
    SchedulerOption, WorkersOption, apply_cache_dir, check_output_file, choice, engine_for, fail,
    guard_dataset_outputs, guard_outputs, load_for, read_truth_or_fail,
)
from synthscope.membership.pipeline import GENERATED_CHOICES, OBJECTIVE_CHOICES, REFERENCES, THRESHOLD_CHOICES
from synthscope.membership.registration import IMAGE_SCORES
from synthscope.membership.scores import SCORES
from synthscope.membership.spaces import DEFAULT_SPACES, SPACES
from synthscope.membership.controls import COPY_FROM

Space = Enum("Space", {name.replace("-", "_"): name for name in SPACES}, type=str)
Score = Enum("Score", {name: name for name in SCORES + IMAGE_SCORES}, type=str)
NullScore = Enum("NullScore", {name: name for name in SCORES + IMAGE_SCORES}, type=str)
Objective = Enum("Objective", {name: name for name in OBJECTIVE_CHOICES}, type=str)
Reference = Enum("Reference", {name: name for name in REFERENCES}, type=str)
ThresholdRule = Enum("ThresholdRule", {name: name for name in THRESHOLD_CHOICES}, type=str)
Generated = Enum("Generated", {name: name for name in GENERATED_CHOICES}, type=str)
CopyFrom = Enum("CopyFrom", {name: name for name in COPY_FROM}, type=str)


def _values(items) -> tuple[str, ...]:
    return tuple(choice(item) for item in items)


def print_run(run) -> None:
    """The run as `synthscope membership` prints it (the dashboard shows the same story)."""
    for group in run.groups:
        typer.echo(f"\n== group {group.group or '(flat)'}"
                   + (f" (threshold from dev group {group.dev_group})" if group.dev_group else "") + " ==")
        fit = group.threshold
        typer.echo(f"score: {group.primary}, chosen as {group.choice}; threshold {fit.threshold:.4g} by {fit.method}"
                   + (f" (dev {fit.method} {fit.value:.3f})" if group.dev_result is not None
                      and fit.method in OBJECTIVE_CHOICES else "")
                   + f"; {int(group.predictions.sum())} of {len(group.predictions)} predicted used")
        typer.echo(f"calibration reference: {group.result.reference}; scored against {group.generated}")
        typer.echo(f"leakage verdict: {group.verdict.message}\n  ({group.verdict.method})")
        for line in group.story():
            typer.echo("  " + line)


def membership(
    path: Path = typer.Argument(..., help="Sub-task 1 folder to predict (e.g. the test folder; several groups allowed)."),
    out: Path = typer.Option(..., "--out", help="Run file to write (<image_id>,<0|1> per real image)."),
    scores_out: Optional[Path] = typer.Option(None, "--scores", help="Also write image_id,group,column,score,rank per real image "
                                              "(higher score = more likely used; rank 1 = most likely within its group)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: the threshold (and --primary auto) are fit on it."),
    space: List[Space] = typer.Option(list(DEFAULT_SPACES), "--space", "-s", help="Feature space(s) scores are computed in."),
    score: List[Score] = typer.Option(list(SCORES + IMAGE_SCORES), "--score",
                                      help="Scores: distance, adjusted (distance beyond what the real pool's own spacing "
                                           "predicts), gan_leaks, domias, copies (on features), registered "
                                           "(shift-registered copy distance on the images), patches (distance of each "
                                           "body patch to the generated images' patches at the same grid place)."),
    primary: str = typer.Option("auto", "--primary",
                                help="Column behind the predictions: auto (images:patches unless another column beats it "
                                     "on dev by a paired scan-group bootstrap, Bonferroni-corrected), ensemble (mean rank "
                                     "of the distance, adjusted and registered columns) or SPACE:SCORE."),
    threshold: ThresholdRule = typer.Option(ThresholdRule.auto, "--threshold",
                                            help="auto: two_means_band when the dev gate finds leakage, else fit on "
                                                 "dev; two_means_band: the two-means cut of the scored folder's own "
                                                 "scores, kept within 0.15 of the fraction used that dev's rates "
                                                 "estimate for it; dev: fit on dev; two_means or mixture: label-free "
                                                 "always."),
    generated: Generated = typer.Option(Generated.pooled, "--generated",
                                        help="Score real images against the generated images of both paired folders "
                                             "(pooled: one generator, one scale for dev and test) or of their own folder."),
    objective: Objective = typer.Option(Objective.f1, "--objective", help="Threshold objective on dev."),
    prevalence: Optional[float] = typer.Option(None, "--prevalence", min=0.0, max=1.0,
                                               help="Expected fraction used: threshold at that quantile instead."),
    reference: Reference = typer.Option(Reference.pool, "--reference",
                                        help="Calibration reference: pool (the group's own real images, leave-one-out) or dev."),
    n_neighbors: int = typer.Option(1, "--neighbors", min=1, help="Nearest generated images averaged by the distance score."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Ground truth CSV (image_id,used) to evaluate the run."),
    n_boot: int = NBootOption,
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Predict which real images trained the generator; write a validated sub-task 1 run file."""
    from synthscope.features import ExtractorUnavailable
    from synthscope.membership import MembershipOptions, evaluate_dev, evaluate_membership, run_membership
    from synthscope.submission import SubmissionError, expected_ids, write_membership_run

    outputs = {"--out": out, "--scores": scores_out}
    # before anything is created or computed: no output may be an input, sit in a data folder or be another output
    guard_outputs(outputs, input_files={"--truth": truth, "--manifest": manifest},
                  data_folders={"PATH": path, "--dev": dev}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    check_output_file(out)
    if scores_out is not None:
        check_output_file(scores_out, "--scores")
    try:
        options = MembershipOptions(spaces=_values(space), scores=_values(score), primary=primary,
                                    objective=choice(objective), prevalence=prevalence, reference=choice(reference),
                                    n_neighbors=n_neighbors, threshold=choice(threshold),
                                    generated=choice(generated))
    except ValueError as error:
        raise fail(str(error))
    truth_series = read_truth_or_fail(truth) if truth is not None else None
    loading = dict(size_policy=size_policy, layout=layout, manifest=manifest, task="membership")
    dataset = load_for(path, **loading)
    dev_set = load_for(dev, **loading, what="dev set") if dev is not None else None
    for data, what in ((dataset, "PATH"), (dev_set, "--dev")):
        if data is not None:
            guard_dataset_outputs(data, outputs, what)
    try:
        with engine_for(workers, scheduler):
            run = run_membership(dataset, dev_set, options, device=choice(device), progress=True)
    except ExtractorUnavailable as error:
        raise fail(str(error))
    except (ValueError, KeyError) as error:
        raise fail(str(error.args[0] if error.args else error))

    wanted = expected_ids(dataset, "membership")
    try:
        write_membership_run(out, run.predictions, expected_ids=wanted)
        if scores_out is not None:
            from synthscope.score_files import write_score_file

            write_score_file(scores_out, run.scores_table(), expected_ids=wanted)
    except (SubmissionError, OSError) as error:
        raise fail(str(error))
    print_run(run)
    for group in run.groups:
        dev_evaluation = evaluate_dev(group, n_boot=n_boot)
        if dev_evaluation is not None:
            typer.echo(f"\n-- dev group {group.dev_name}: in-sample, at the threshold fit on it --")
            for line in dev_evaluation.lines():
                typer.echo(line)
    typer.echo(f"\nwrote {out} ({len(run.predictions)} real images)"
               + (f" and {scores_out} (scores and ranks)" if scores_out is not None else ""))
    for group in run.groups:
        if group.expected is not None and not group.expected.beats_all_used:
            typer.secho(f"group {group.name}: the nested cross-validation on dev does not expect this procedure to beat "
                        f"calling every image used ({group.expected.summary()}); do not report its F1 as a finding.",
                        fg=typer.colors.YELLOW)
    if not run.leaked:
        typer.secho("no significant leakage: the method found no evidence that it can tell used from not-used "
                    "images here, so its predictions are no better than the all-used baseline; do not report "
                    "the F1 below as a finding.", fg=typer.colors.YELLOW)
    if truth_series is not None:
        try:
            evaluation = evaluate_membership(run, truth_series, n_boot=n_boot, source=f"ground truth {truth}")
        except ValueError as error:
            raise fail(str(error))
        for line in evaluation.lines():
            typer.echo(line)


def controls(
    path: Path = typer.Argument(..., help="Sub-task 1 folder (labelled dev or unlabelled test; several groups allowed)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labelled dev folder: the positive control's threshold is fit on its own injected copies."),
    space: Space = typer.Option(Space.pixels_norm, "--space", "-s", help="Feature space for both controls."),
    positive_score: List[Score] = typer.Option([Score.registered], "--positive-score",
                                               help="Score(s) for the positive control (registered = shift-registered copy distance on the images)."),
    null_score: List[NullScore] = typer.Option([NullScore.distance], "--null-score",
                                               help="Score(s) for the null control (patches and registered run on the "
                                                    "images and need labels)."),
    null_space: List[Space] = typer.Option([], "--null-space",
                                           help="Space(s) the feature null scores run in (default: --space)."),
    null_repeats: int = typer.Option(10, "--null-repeats", min=1,
                                     help="Random group-aware splits the null control is repeated over (median p decides)."),
    fraction: float = typer.Option(0.5, "--fraction", min=0.01, max=1.0, help="Fraction of real images copied into the generated set."),
    copy_from: CopyFrom = typer.Option(CopyFrom.not_used, "--copy-from",
                                       help="Which real images to copy when labels exist."),
    seed: int = typer.Option(0, "--seed", help="Seed of the copies, the null splits and the bootstrap."),
    n_boot: int = NBootOption,
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Positive control (planted near copies must be flagged) and null control (held-out real images
    as the generated set: the verdict must be "no leakage"). Exits 1 when a control fails."""
    from synthscope.features import ExtractorUnavailable
    from synthscope.membership import ControlOptions, run_controls

    guard_outputs({}, input_files={"--manifest": manifest}, data_folders={"PATH": path, "--dev": dev}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    try:
        options = ControlOptions(space=choice(space), positive_scores=_values(positive_score),
                                 null_scores=_values(null_score), null_spaces=_values(null_space),
                                 null_repeats=null_repeats, fraction=fraction,
                                 copy_from=choice(copy_from), seed=seed, n_boot=n_boot)
    except ValueError as error:
        raise fail(str(error))
    loading = dict(size_policy=size_policy, layout=layout, manifest=manifest, task="membership")
    dataset = load_for(path, **loading)
    dev_set = load_for(dev, **loading, what="dev set") if dev is not None else None
    try:
        with engine_for(workers, scheduler):
            report = run_controls(dataset, dev_set, options, device=choice(device), progress=True)
    except ExtractorUnavailable as error:
        raise fail(str(error))
    except ValueError as error:
        raise fail(str(error))
    print_controls(report)
    typer.echo("\n" + ("a control FAILED: do not trust membership claims from this configuration"
                       if not report.passed else "both controls passed"))
    if not report.passed:
        raise typer.Exit(1)


def print_controls(report) -> None:
    for group in report.groups:
        typer.echo(f"\n== group {group.group or '(flat)'}, space {report.options.space} ==")
        for score, outcome in group.positive.items():
            typer.echo(f"[{score}] {outcome.result.message}")
            typer.echo(f"  F1 of flagging the copies at the {outcome.threshold_source} threshold: "
                       f"{outcome.f1.value:.3f} [{outcome.f1.ci_low:.3f}, {outcome.f1.ci_high:.3f}] "
                       f"({outcome.n_flagged} flagged, {outcome.n_copied} copied)")
        for column, null in group.null.items():
            typer.echo(f"[{column}] {null.message}")


def register(app: typer.Typer) -> None:
    app.command("membership")(membership)
    app.command("controls")(controls)
