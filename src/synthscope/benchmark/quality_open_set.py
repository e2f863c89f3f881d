"""Sub-task 2, open set: bench v1 as a 2025 tree whose dev folders never show model_4.

`synthscope attribute TEST --dev DEV` assigns each test image to a dev subset and gives it a novelty
(1 - conformal p-value, `NoveltyScorer`); "none of these" = p below 0.01. Scored afterwards against
v1's truth: the novelty AUROC for "made by model_4", the flag's rate on unseen and seen images, the
accuracy on seen images, and the expected calibration error of the confidence on dev cross-validation
(before and after temperature scaling). Test labels are used only to score.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from synthscope.benchmark.base import BenchContext, BenchSection, shared_bench_dir


def _fmt(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def run(ctx: BenchContext) -> BenchSection:
    title = "Sub-task 2: open-set attribution (none of these) and calibrated confidence"
    root = shared_bench_dir(ctx, "v1", "subtask2")
    pool = ctx.shared_dir / "data" / "iqoth256" if ctx.shared_dir is not None else None
    if root is None or pool is None or not pool.is_dir():
        return BenchSection(title, "", skipped="../shared/bench/v1/subtask2 or ../shared/data/iqoth256 not found")
    from synthscope.attribution import AttributionOptions, cross_validated_subsets, run_attribution
    from synthscope.benchmark.open_set_tree import UNSEEN, build_open_set_tree
    from synthscope.data import load_dataset
    from synthscope.metrics import open_set_report, subset_accuracy_report

    n_boot = 300 if ctx.quick else 1000
    with tempfile.TemporaryDirectory(prefix="synthscope-open-set-") as folder:
        tree, truth = build_open_set_tree(root, pool, Path(folder) / "tree")
        dev, test = load_dataset(tree / "dev"), load_dataset(tree / "test")
        options = AttributionOptions()
        result = run_attribution(test, dev, options, device=ctx.device)
        cv = cross_validated_subsets(dev, options, device=ctx.device, n_boot=n_boot)
    y = truth.loc[result.labels.index].astype(str).to_numpy()
    unseen = y == UNSEEN
    open_set = open_set_report(unseen, result.novelty.to_numpy(), result.none_of_these.to_numpy(), n_boot=n_boot)
    seen = subset_accuracy_report(y[~unseen], result.labels.to_numpy()[~unseen], n_boot=n_boot)
    # open-set accuracy: a seen image flagged "none of these" counts as wrong, an unseen one flagged as right
    answer = result.labels.astype(str).to_numpy().copy()
    answer[result.none_of_these.to_numpy()] = UNSEEN
    overall = subset_accuracy_report(y, answer, n_boot=n_boot)
    e, ece, raw = open_set.estimates, cv.calibration.estimates["ece"], cv.calibration_uncalibrated.estimates["ece"]
    lines = [
        f"v1 subtask2 as a 2025 tree: dev = model_1..3 (100 images each), test = 600 images, 150 of them from "
        f"{UNSEEN} (upconv_gan), which dev never shows. Default options (fingerprint, alpha = "
        f"{options.novelty_alpha:g}); bootstrap CIs over images (n = {n_boot}).", "",
        "| measure | value [95% CI] | trivial baseline |", "|---|---|---|",
        f"| novelty AUROC (unseen vs seen) | {_fmt(e['novelty_auroc'])} | 0.500 (random score) |",
        f"| unseen images flagged none of these | {_fmt(e['unseen_flagged'])} "
        f"({int(result.none_of_these.to_numpy()[unseen].sum())}/{int(unseen.sum())}) | 0 (never flag) |",
        f"| seen images flagged (false flags) | {_fmt(e['seen_flagged'])} "
        f"({int(result.none_of_these.to_numpy()[~unseen].sum())}/{int((~unseen).sum())}) | 0 (never flag) |",
        f"| seen accuracy (subset) | {_fmt(seen.estimates['accuracy'])} | "
        f"{seen.baselines['majority_class']['accuracy']:.3f} (majority) |",
        f"| open-set accuracy (4 answers: 3 subsets or none of these) | {_fmt(overall.estimates['accuracy'])} | "
        f"{overall.baselines['majority_class']['accuracy']:.3f} (majority) |",
        f"| dev CV accuracy ({cv.n_splits}-fold) | {_fmt(cv.report.estimates['accuracy'])} | "
        f"{cv.report.baselines['majority_class']['accuracy']:.3f} (majority) |",
        f"| dev CV ECE, calibrated (temperature) | {_fmt(ece)} | "
        f"{cv.calibration.baselines['always_certain']['ece']:.3f} (always certain) |",
        f"| dev CV ECE, uncalibrated | {_fmt(raw)} | |", "",
        "Reliability on dev (calibrated, out of fold):", "", "```", cv.calibration.tables["reliability"].to_string(),
        "```", "",
        "v1's three dev generators are separated perfectly out of fold, so the confidence is near 1.0 and that is "
        "right here (dev CV accuracy 1.0); the temperature stays at 1 (calibration only softens, and there is "
        "nothing to soften), so both ECEs are equal.", "",
    ]
    data = {"open_set": {k: v.__dict__ for k, v in e.items()}, "seen_accuracy": seen.estimates["accuracy"].__dict__,
            "open_set_accuracy": overall.estimates["accuracy"].__dict__,
            "dev_cv_accuracy": cv.report.estimates["accuracy"].__dict__, "dev_cv_ece": ece.__dict__,
            "dev_cv_ece_uncalibrated": raw.__dict__, "description": result.description}
    return BenchSection(title=title, markdown="\n".join(lines), data=data)
