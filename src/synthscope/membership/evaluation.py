"""Scoring a membership run against labels: the numbers `synthscope membership --truth` prints and the
dashboard's metric tables show, computed once here.

Dev labels are the ones the thresholds were fit on (in-sample, shown for orientation); test labels come
from a ground-truth file and are for evaluation only -- nothing here feeds back into a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthscope.membership.verdicts import LeakageVerdict, best_baseline, rank_test
from synthscope.metrics import MetricReport, membership_report

#: the metrics the scan-group (cluster) bootstrap line repeats
SCAN_GROUP_METRICS = ("roc_auc", "f1", "kappa")


@dataclass
class GroupEvaluation:
    """One group's predictions against labels."""
    group: str
    primary: str
    labels: str                          # "dev" (in-sample) | "test" (ground-truth file)
    n: int
    report: MetricReport                 # image bootstrap; roc_auc needs both classes
    scan_report: MetricReport | None     # whole groups of neighbouring slices resampled; None if no groups
    n_scan_groups: int
    rank_verdict: LeakageVerdict | None  # the rank test on these labels (None with one class)
    baseline: tuple[str, LeakageVerdict] | None   # the generator-free baseline on the same labels

    def lines(self) -> list[str]:
        out = []
        if self.rank_verdict is None:
            out.append("ground truth has a single class here; AUC and the rank test are undefined")
        else:
            what = "test labels, for evaluation only" if self.labels == "test" else "dev labels (in-sample)"
            out.append(f"{what}: {self.rank_verdict.message}")
        if self.baseline is not None:
            out.append(f"generator-free baseline on the same labels: {self.baseline[0]} AUC "
                       f"{self.baseline[1].statistic:.3f} (minus the distance to the nearest other real image; it "
                       f"never looks at the generated set)")
        out.append(self.report.format())
        if self.scan_report is not None:
            shown = [m for m in SCAN_GROUP_METRICS if m in self.scan_report.estimates]
            out.append(f"scan-group bootstrap ({self.n_scan_groups} groups of neighbouring slices for {self.n} "
                       f"images, found without labels): "
                       + ", ".join(f"{m} [{self.scan_report.estimates[m].ci_low:.3f}, "
                                   f"{self.scan_report.estimates[m].ci_high:.3f}]" for m in shown))
        return out


@dataclass
class MembershipEvaluation:
    groups: list[GroupEvaluation]
    pooled: MetricReport | None          # every group's predictions together (no AUC: ranks are per group)

    def lines(self) -> list[str]:
        out = []
        for evaluation in self.groups:
            out.append(f"\n-- evaluation, group {evaluation.group or '(flat)'} (score {evaluation.primary}) --")
            out += evaluation.lines()
        if self.pooled is not None:
            out.append("\n-- evaluation, all groups (scores ranked within each group, so AUC is not pooled) --")
            out.append(self.pooled.format())
        return out


def evaluate_predictions(y, predictions, scores, *, group: str, primary: str, labels: str,
                         baseline_table: pd.DataFrame | None = None, scan_groups=None,
                         n_boot: int = 1000, alpha: float = 0.05) -> GroupEvaluation:
    """Every sub-task 1 metric of `predictions` (0/1) and `scores` against `y` (0/1), with both CIs."""
    y = np.asarray(y).astype(int)
    predictions = np.asarray(predictions).astype(int)
    scores = np.asarray(scores, dtype=float)
    two_classes = y.min() != y.max()
    report = membership_report(y, predictions, scores if two_classes else None, n_boot=n_boot, alpha=alpha)
    verdict = rank_test(scores, y, alpha=alpha) if two_classes else None
    baseline = None
    if two_classes and baseline_table is not None:
        same_space = f"{primary.split(':')[0]}:pool_baseline"
        table = baseline_table[[same_space]] if same_space in baseline_table.columns else baseline_table
        baseline = best_baseline(table, y, alpha=alpha)
    scan_report, n_scan = None, 0
    if scan_groups is not None and len(np.unique(scan_groups)) < len(scan_groups):
        n_scan = int(len(np.unique(scan_groups)))
        scan_report = membership_report(y, predictions, scores if two_classes else None, n_boot=n_boot,
                                        alpha=alpha, groups=scan_groups)
    return GroupEvaluation(group, primary, labels, len(y), report, scan_report, n_scan, verdict, baseline)


def evaluate_dev(group_run, *, n_boot: int = 1000, alpha: float = 0.05) -> GroupEvaluation | None:
    """The dev group's labels against what the threshold fit on them calls (in-sample)."""
    if group_run.dev_result is None:
        return None
    return evaluate_predictions(group_run.dev_used, group_run.dev_predictions.to_numpy(), group_run.dev_scores,
                                group=group_run.dev_group, primary=group_run.primary, labels="dev",
                                baseline_table=group_run.dev_result.baseline,
                                scan_groups=group_run.dev_scan_groups, n_boot=n_boot, alpha=alpha)


def truth_for(predictions: pd.Series, truth: pd.Series, source="the ground truth") -> np.ndarray:
    missing = predictions.index.difference(truth.index)
    if len(missing):
        raise ValueError(f"{source} lacks {len(missing)} of the run's ids, e.g. {', '.join(map(str, missing[:5]))}")
    return truth.loc[predictions.index].astype(int).to_numpy()


def evaluate_membership(run, truth: pd.Series, *, n_boot: int = 1000, alpha: float = 0.05,
                        predictions: pd.Series | None = None, source: str = "the ground truth") -> MembershipEvaluation:
    """The run's predictions (or curated `predictions` over the same ids) against test labels `truth`."""
    predictions = run.predictions if predictions is None else predictions
    groups = []
    for g in run.groups:
        called = predictions.loc[g.predictions.index]
        groups.append(evaluate_predictions(truth_for(called, truth, source), called.to_numpy(), g.scores,
                                           group=g.group, primary=g.primary, labels="test",
                                           baseline_table=g.result.baseline, scan_groups=g.scan_groups,
                                           n_boot=n_boot, alpha=alpha))
    pooled = None
    if len(run.groups) > 1:
        pooled = membership_report(truth_for(predictions, truth, source), predictions.to_numpy(), n_boot=n_boot,
                                   alpha=alpha)
    return MembershipEvaluation(groups, pooled)
