"""`make bench` section: sub-task 1 (training-data fingerprints) quality, controls and speed.

Everything is fit on dev and evaluated on test; test labels are read only to score the predictions
(and, for the positive control, to choose which used images to copy -- building the control, not tuning).
"""

from __future__ import annotations

import time

import numpy as np

from synthscope.benchmark.base import BenchContext, BenchSection, shared_bench_dir

#: v3 is the benchmark of record (matched whole scans: the generator-free baseline sits at chance); v2 is
#: kept as the confounded case, where the baseline CAUTION must fire; v1 has no real leakage
BENCHES = (("v3", "model_1", "folder_1"), ("v1", "model_1", "folder_1"), ("v1", "model_2", "folder_2"),
           ("v2", "model_1", "folder_1"))
RECORD = "v3"
FEATURE_SCORES = ("distance", "adjusted", "gan_leaks", "domias", "copies")
NULL_SCORES = ("distance", "adjusted", "gan_leaks")


def _fmt_ci(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.2f}, {estimate.ci_high:.2f}]"


def _speed(ctx: BenchContext) -> tuple[str, dict]:
    from synthscope.membership import MembershipScorer

    rng = np.random.default_rng(0)
    lines, data = ["| task | vectors | dim | seconds |", "|---|---|---|---|"], {}
    for dim in (4096, 1280):
        generated = rng.normal(size=(10_000, dim)).astype(np.float32)
        real = rng.normal(size=(4_000, dim)).astype(np.float32)
        scorer = MembershipScorer(scores=FEATURE_SCORES).fit(generated)
        start = time.perf_counter()
        scorer.score(real)
        seconds = time.perf_counter() - start
        lines.append(f"| all {len(FEATURE_SCORES)} feature scores, exact kNN (leave-one-out reference) | 10,000 gen x 4,000 real | {dim} | {seconds:.2f} |")
        data[f"score_10k_x_4k_d{dim}_s"] = round(seconds, 2)
    # growth up to 200k generated vectors (pynndescent beyond 20k) is measured in `speed_scale`
    return "\n".join(lines), data


def _load(ctx: BenchContext, version: str, dev_group: str, test_group: str):
    from synthscope.data import load_dataset, read_ground_truth

    root = shared_bench_dir(ctx, version, "subtask1")
    if root is None:
        return None
    dev, test = load_dataset(root / "dev"), load_dataset(root / "test")
    return (dev.subset((dev.manifest["group"] == dev_group).to_numpy()),
            test.subset((test.manifest["group"] == test_group).to_numpy()),
            read_ground_truth(root / "test_ground_truth.csv"))


def _quality(ctx: BenchContext) -> tuple[list[str], dict]:
    """`synthscope membership TEST --dev DEV --truth ...` with its default options, per benchmark, and beside
    it every candidate column fit on dev the same way (what the dev choice was made among)."""
    from synthscope.cache import EmbeddingCache
    from synthscope.membership import (
        MembershipOptions, evaluate_membership, fit_threshold, knn, predict, rank_test, run_membership,
    )
    from synthscope.membership.spaces import dataset_space_features
    from synthscope.metrics import membership_report

    cache = EmbeddingCache(ctx.cache_dir)
    n_boot = 200 if ctx.quick else 1000
    md, data = [], {}
    for version, dev_group, test_group in BENCHES:
        loaded = _load(ctx, version, dev_group, test_group)
        if loaded is None:
            md.append(f"_{version}: benchmark data absent, skipped._")
            continue
        one_dev, one_test, truth = loaded
        run = run_membership(one_test, one_dev, MembershipOptions(), cache=cache, device=ctx.device)
        group = run.groups[0]
        evaluation = evaluate_membership(run, truth, n_boot=n_boot).groups[0]
        e, grouped = evaluation.report.estimates, evaluation.scan_report.estimates
        y = truth.loc[group.predictions.index].astype(int).to_numpy()
        label = f"{version} {dev_group}->{test_group}"
        rows = []
        # generator-free baselines last: they show what the split of the real images alone gives
        columns = [(c, group.dev_result.scores, group.result.scores, group.dev_result.verdicts)
                   for c in group.result.scores.columns]
        columns += [(c, group.dev_result.baseline, group.result.baseline, group.dev_result.baseline_verdicts)
                    for c in group.result.baseline.columns]
        for column, dev_table, test_table, dev_verdicts in columns:
            threshold = fit_threshold(dev_table[column].to_numpy(), group.dev_used, "f1")
            values = test_table[column].to_numpy()
            report = membership_report(y, predict(values, threshold.threshold), values, n_boot=n_boot)
            rows.append({
                "column": column, "dev_auc": dev_verdicts[column].statistic, "dev_p": dev_verdicts[column].p_value,
                **{k: (v.value, v.ci_low, v.ci_high) for k, v in report.estimates.items()},
                "all_used_f1": report.baselines["all_used"]["f1"], "test_verdict_p": rank_test(values, y).p_value,
            })
        # side channels of the real-image sampling, not the generator
        px_test = dataset_space_features(one_test, "pixels-norm", cache=cache)
        px_dev = dataset_space_features(one_dev, "pixels-norm", cache=cache)
        test_real = px_test[(one_test.manifest["role"] == "real").to_numpy()]
        dev_real = px_dev[(one_dev.manifest["role"] == "real").to_numpy()]
        to_used, _ = knn(test_real, dev_real[group.dev_used == 1], 1)
        to_not, _ = knn(test_real, dev_real[group.dev_used == 0], 1)
        loo, _ = knn(test_real, test_real, 1, exclude_self=True)
        from sklearn.metrics import roc_auc_score

        side_channel_auc = roc_auc_score(y, to_not[:, 0] - to_used[:, 0])
        typicality_auc = roc_auc_score(y, -loo[:, 0])
        record = " (the sub-task 1 benchmark of record)" if version == RECORD else ""
        data[label] = {"rows": rows, "auto_choice": group.primary, "choice": group.choice,
                       "gate": group.verdict.__dict__, "benchmark_of_record": version == RECORD,
                       "test": {k: v.__dict__ for k, v in e.items()},
                       "scan_group_bootstrap": {"n_groups": evaluation.n_scan_groups,
                                                **{k: grouped[k].__dict__ for k in ("roc_auc", "f1", "kappa")}},
                       "copying_test": group.copying_verdict.__dict__, "threshold": group.threshold.__dict__,
                       "side_channel_auc_nearest_dev_used": side_channel_auc,
                       "typicality_auc_nearest_real": typicality_auc}
        md += [f"### {label}{record} ({len(y)} test real images, {int(y.sum())} used)", "",
               f"- `synthscope membership` with its defaults chose **{group.primary}** as {group.choice}; gate: "
               f"**{group.verdict.message}**",
               f"- On test at the dev-fitted threshold: AUC {_fmt_ci(e['roc_auc'])}, F1 {_fmt_ci(e['f1'])} vs "
               f"all-used {evaluation.report.baselines['all_used']['f1']:.3f}, kappa {_fmt_ci(e['kappa'])}.",
               f"- The same with a scan-group bootstrap ({evaluation.n_scan_groups} groups of neighbouring slices, "
               f"found without labels, resampled whole): AUC [{grouped['roc_auc'].ci_low:.2f}, "
               f"{grouped['roc_auc'].ci_high:.2f}], F1 [{grouped['f1'].ci_low:.2f}, {grouped['f1'].ci_high:.2f}], "
               f"kappa [{grouped['kappa'].ci_low:.2f}, {grouped['kappa'].ci_high:.2f}]. Slices of one scan share their "
               f"membership, so the image bootstrap above is too narrow.",
               f"- Label-free data-copying test on the test folder: {group.copying_verdict.message}",
               f"- Not generator signals (sampling of the benchmark's real images): nearest-real-neighbour "
               f"typicality AUC {typicality_auc:.3f}; 'closer to a dev used image than to a dev not-used image' "
               f"AUC {side_channel_auc:.3f} (adjacent slices of one training scan are split between dev and test).",
               "",
               "Every candidate column, each with its own threshold fit on dev (the dev AUC is what the choice "
               "saw; the test columns were never used to choose). Rows `space:pool_baseline` are generator-free "
               "baselines (minus the distance to the nearest other real image of the folder).",
               "",
               "| column | dev AUC | dev p | test AUC [95% CI] | TPR@1%FPR | F1 | acc | prec | rec | spec | kappa | all-used F1 |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            f = lambda k: f"{r[k][0]:.3f} [{r[k][1]:.2f}, {r[k][2]:.2f}]"  # noqa: E731
            md.append(f"| {r['column']} | {r['dev_auc']:.3f} | {r['dev_p']:.2g} | {f('roc_auc')} | "
                      f"{r['tpr_at_1pct_fpr'][0]:.3f} | {f('f1')} | {r['accuracy'][0]:.3f} | {r['precision'][0]:.3f} | "
                      f"{r['recall'][0]:.3f} | {r['specificity'][0]:.3f} | {f('kappa')} | {r['all_used_f1']:.3f} |")
        md.append("")
    return md, data


def _controls(ctx: BenchContext) -> tuple[list[str], dict]:
    """`synthscope controls` on each benchmark's test folder (dev copies fit the threshold), copying used images."""
    from synthscope.cache import EmbeddingCache
    from synthscope.membership import ControlOptions, run_controls

    md = ["| benchmark | score | copies injected (test) | AUC copied vs not | F1 at dev-fitted threshold [95% CI] | null control (test group, two-sided) |",
          "|---|---|---|---|---|---|"]
    data = {}
    options = ControlOptions(space="pixels-norm", positive_scores=("registered", "copies"), null_scores=NULL_SCORES,
                             copy_from="used", seed=1, n_boot=200 if ctx.quick else 1000)
    for version, dev_group, test_group in BENCHES:
        loaded = _load(ctx, version, dev_group, test_group)
        if loaded is None:
            continue
        one_dev, one_test, truth = loaded
        report = run_controls(one_test, one_dev, options, used=truth, cache=EmbeddingCache(ctx.cache_dir),
                              device=ctx.device)
        group = report.groups[0]
        label = f"{version} {dev_group}->{test_group}"
        null_text = "; ".join(f"{s}: {'passed' if n.passed else 'FAILED'} (median AUC {n.verdict.statistic:.2f}, "
                              f"median p {n.verdict.p_value:.2g}, {n.message.split('; ')[-1].split(' splits')[0]} "
                              f"splits significant)" for s, n in group.null.items())
        for score, outcome in group.positive.items():
            md.append(f"| {label} | {score} | {outcome.n_copied} | {outcome.result.auc:.3f} | {_fmt_ci(outcome.f1)} | "
                      f"{null_text} |")
            data[f"{label} {score}"] = {"auc": outcome.result.auc, "f1": outcome.f1.__dict__,
                                        "threshold": outcome.threshold,
                                        "null": {s: n.verdict.__dict__ for s, n in group.null.items()}}
    return md, data


def run(ctx: BenchContext) -> BenchSection:
    speed_md, speed_data = _speed(ctx)
    md = ["Fit on dev, evaluated on test. AUC, F1 etc. with 95% bootstrap CIs; the all-used baseline beside F1. "
          "Calibration reference: each group's own real images, leave-one-out (see `synthscope.membership`).", "",
          "**Speed** (this machine, CPU):", "", speed_md, ""]
    data = {"speed": speed_data}
    if not any(shared_bench_dir(ctx, version, "subtask1") for version, _, _ in BENCHES):
        md.append("Quality skipped: no ../shared/bench/v1, v2 or v3 subtask1 folder found.")
        return BenchSection("Sub-task 1: training-data fingerprints", "\n".join(md), data)
    md += ["**Positive and null controls** (`synthscope controls`: near copies = 1-px shift, Gaussian noise "
           "sigma 2, contrast +/-3%, of half of the used images, injected into the generated set; dev copies fit the "
           "threshold):", ""]
    control_md, control_data = _controls(ctx)
    md += control_md + [""]
    data["controls"] = control_data
    md += ["**Real models**, with `synthscope membership`'s default options (the same call, so the same answer as "
           "the command line and the dashboard).", ""]
    quality_md, quality_data = _quality(ctx)
    md += quality_md
    data["quality"] = quality_data
    return BenchSection("Sub-task 1: training-data fingerprints", "\n".join(md), data)
