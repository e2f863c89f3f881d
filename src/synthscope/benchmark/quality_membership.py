"""`make bench` section: sub-task 1 (training-data fingerprints) quality, controls and speed.

Everything is fit on dev and evaluated on test; test labels are read only to score the predictions
(and, for the positive control, to choose which used images to copy -- building the control, not tuning).
"""

from __future__ import annotations

import time

import numpy as np

from synthscope.benchmark.base import BenchContext, BenchSection, shared_bench_dir

BENCHES = (("v1", "model_1", "folder_1"), ("v1", "model_2", "folder_2"), ("v2", "model_1", "folder_1"))
QUICK_SPACES = ("pixels", "pixels-norm", "pixels-128", "pixels-lung", "fingerprint")
FULL_SPACES = QUICK_SPACES + ("pixels-32", "effnet-lite0")
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


def _quality(ctx: BenchContext, spaces) -> tuple[list[str], dict]:
    from sklearn.metrics import roc_auc_score

    from synthscope.cache import EmbeddingCache
    from synthscope.data import load_dataset, read_ground_truth
    from synthscope.membership import (
        _group_rows, _used_labels, dataset_space_features, fit_threshold, knn, near_duplicate_groups, rank_test,
        run_membership,
    )
    from synthscope.metrics import membership_report

    cache = EmbeddingCache(ctx.cache_dir)
    n_boot = 200 if ctx.quick else 1000
    md, data = [], {}
    loaded = {}
    for version, dev_group, test_group in BENCHES:
        root = shared_bench_dir(ctx, version, "subtask1")
        if root is None:
            md.append(f"_{version}: benchmark data absent, skipped._")
            continue
        if version not in loaded:
            dev, test = load_dataset(root / "dev"), load_dataset(root / "test")
            truth = read_ground_truth(root / "test_ground_truth.csv")
            feats = {s: dataset_space_features(test, s, cache=cache, device=ctx.device) for s in spaces}
            dev_feats = {s: dataset_space_features(dev, s, cache=cache, device=ctx.device) for s in spaces}
            loaded[version] = (dev, test, truth, feats, dev_feats)
        dev, test, truth, feats, dev_feats = loaded[version]
        one_test = test.subset((test.manifest["group"] == test_group).to_numpy())
        one_dev = dev.subset((dev.manifest["group"] == dev_group).to_numpy())
        t_rows = (test.manifest["group"] == test_group).to_numpy()
        d_rows = (dev.manifest["group"] == dev_group).to_numpy()
        sub_feats = {s: f[t_rows] for s, f in feats.items()}
        sub_dev = {s: f[d_rows] for s, f in dev_feats.items()}
        runs = run_membership(one_test, one_dev, spaces=spaces, scores=FEATURE_SCORES + ("registered",),
                              primary="auto", features=sub_feats, dev_features=sub_dev)
        run = runs[0]
        y = truth.loc[run.result.scores.index].astype(int).to_numpy()
        dev_used = _used_labels(one_dev, _group_rows(one_dev, dev_group)[0])
        label = f"{version} {dev_group}->{test_group}"
        rows = []
        # generator-free baselines last: they show what the split of the real images alone gives
        columns = [(c, run.dev_result.scores, run.result.scores, run.dev_result.verdicts)
                   for c in run.result.scores.columns]
        columns += [(c, run.dev_result.baseline, run.result.baseline, run.dev_result.baseline_verdicts)
                    for c in run.result.baseline.columns]
        for column, dev_table, test_table, dev_verdicts in columns:
            dev_scores = dev_table[column].to_numpy()
            threshold = fit_threshold(dev_scores, dev_used, "f1")
            values = test_table[column].to_numpy()
            report = membership_report(y, (values >= threshold.threshold).astype(int), values, n_boot=n_boot)
            e = report.estimates
            rows.append({
                "column": column, "dev_auc": dev_verdicts[column].statistic,
                "dev_p": dev_verdicts[column].p_value,
                **{k: (e[k].value, e[k].ci_low, e[k].ci_high) for k in e},
                "all_used_f1": report.baselines["all_used"]["f1"],
                "test_verdict_p": rank_test(values, y).p_value,
            })
        chosen = next(r for r in rows if r["column"] == run.primary)
        real_rows, _ = _group_rows(one_test, test_group)
        # the same metrics with whole groups of neighbouring slices resampled (groups found label-free)
        scan_groups = near_duplicate_groups(sub_feats["pixels"][real_rows])
        chosen_values = run.result.scores[run.primary].to_numpy()
        grouped = membership_report(y, (chosen_values >= run.threshold.threshold).astype(int), chosen_values,
                                    n_boot=n_boot, groups=scan_groups).estimates
        # Side channels and controls for the real-image sampling, not the generator:
        d_real_rows, _ = _group_rows(one_dev, dev_group)
        px = sub_feats["pixels-norm"][real_rows] if "pixels-norm" in sub_feats else sub_feats[spaces[0]][real_rows]
        dpx = sub_dev["pixels-norm"][d_real_rows] if "pixels-norm" in sub_dev else sub_dev[spaces[0]][d_real_rows]
        to_dev_used, _ = knn(px, dpx[dev_used == 1], 1)
        to_dev_not, _ = knn(px, dpx[dev_used == 0], 1)
        side_channel_auc = roc_auc_score(y, to_dev_not[:, 0] - to_dev_used[:, 0])
        loo, _ = knn(px, px, 1, exclude_self=True)
        typicality_auc = roc_auc_score(y, -loo[:, 0])
        data[label] = {"rows": rows, "auto_choice": run.primary, "gate": run.verdict.__dict__,
                       "scan_group_bootstrap": {"n_groups": int(len(np.unique(scan_groups))),
                                                **{k: grouped[k].__dict__ for k in ("roc_auc", "f1", "kappa")}},
                       "copying_test": run.copying_verdict.__dict__, "threshold": run.threshold.__dict__,
                       "side_channel_auc_nearest_dev_used": side_channel_auc,
                       "typicality_auc_nearest_real": typicality_auc}
        md += [f"### {label} ({len(y)} test real images, {int(y.sum())} used)", "",
               f"- Dev-selected column (`--primary auto`, highest dev AUC among {len(run.result.scores.columns)}): "
               f"**{run.primary}** (dev AUC {chosen['dev_auc']:.3f}); gate on dev labels, Bonferroni "
               f"x{len(run.result.scores.columns)}: "
               f"**{run.verdict.message}**",
               f"- On test at the dev-fitted F1 threshold: AUC {chosen['roc_auc'][0]:.3f} "
               f"[{chosen['roc_auc'][1]:.2f}, {chosen['roc_auc'][2]:.2f}], F1 {chosen['f1'][0]:.3f} "
               f"[{chosen['f1'][1]:.2f}, {chosen['f1'][2]:.2f}] vs all-used {chosen['all_used_f1']:.3f}, "
               f"kappa {chosen['kappa'][0]:.3f} [{chosen['kappa'][1]:.2f}, {chosen['kappa'][2]:.2f}].",
               f"- The same with a scan-group bootstrap ({len(np.unique(scan_groups))} groups of neighbouring slices, "
               f"found without labels, resampled whole): AUC [{grouped['roc_auc'].ci_low:.2f}, "
               f"{grouped['roc_auc'].ci_high:.2f}], F1 [{grouped['f1'].ci_low:.2f}, {grouped['f1'].ci_high:.2f}], "
               f"kappa [{grouped['kappa'].ci_low:.2f}, {grouped['kappa'].ci_high:.2f}]. Slices of one scan share their "
               f"membership, so the image bootstrap above is too narrow.",
               f"- Label-free data-copying test on the test folder: {run.copying_verdict.message}",
               f"- Not generator signals (sampling of the benchmark's real images): nearest-real-neighbour "
               f"typicality AUC {typicality_auc:.3f}; 'closer to a dev used image than to a dev not-used image' "
               f"AUC {side_channel_auc:.3f} (adjacent slices of one training scan are split between dev and test).",
               "",
               "Rows `space:pool_baseline` are generator-free baselines (minus the distance to the nearest other "
               "real image of the folder): they never look at the generated images.",
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
    from synthscope.data import load_dataset, read_ground_truth
    from synthscope.membership import (
        _group_rows, _used_labels, dataset_space_features, fit_threshold, null_control, run_positive_control,
    )
    from synthscope.metrics import membership_report

    md = ["| benchmark | score | copies injected (test) | AUC copied vs not | F1 at dev-fitted threshold [95% CI] | null control (test group, two-sided) |",
          "|---|---|---|---|---|---|"]
    data = {}
    for version, dev_group, test_group in BENCHES:
        root = shared_bench_dir(ctx, version, "subtask1")
        if root is None:
            continue
        dev, test = load_dataset(root / "dev"), load_dataset(root / "test")
        truth = read_ground_truth(root / "test_ground_truth.csv")
        d_real, d_gen = _group_rows(dev, dev_group)
        t_real, t_gen = _group_rows(test, test_group)
        d_used = _used_labels(dev, d_real)
        t_used = truth.loc[test.manifest["image_id"].to_numpy()[t_real]].astype(int).to_numpy()
        for score in ("registered", "copies"):
            _, d_scores, d_truth = run_positive_control("pixels-norm", dev.images(d_real), dev.images(d_gen),
                                                        score=score, candidates=d_used == 1, seed=1)
            fit = fit_threshold(d_scores, d_truth, "f1")
            result, t_scores, t_truth = run_positive_control("pixels-norm", test.images(t_real), test.images(t_gen),
                                                             score=score, candidates=t_used == 1, seed=2)
            report = membership_report(t_truth.astype(int), (t_scores >= fit.threshold).astype(int), t_scores,
                                       n_boot=200 if ctx.quick else 1000)
            f1 = report.estimates["f1"]
            # null control: whole near-duplicate groups (a third of each class) replace the generated set,
            # ten random splits, two-sided tests, so a reversed separation fails too
            feats = dataset_space_features(test, "pixels-norm")[t_real]
            nulls = {s: null_control(feats, t_used, score=s, n_repeats=10) for s in NULL_SCORES}
            null_text = "; ".join(f"{s}: {'passed' if n.passed else 'FAILED'} (median AUC {n.verdict.statistic:.2f}, "
                                  f"median p {n.verdict.p_value:.2g}, {n.message.split('; ')[-1].split(' splits')[0]} "
                                  f"splits significant)" for s, n in nulls.items())
            label = f"{version} {dev_group}->{test_group}"
            md.append(f"| {label} | {score} | {int(t_truth.sum())} | {result.auc:.3f} | {_fmt_ci(f1)} | {null_text} |")
            data[f"{label} {score}"] = {"auc": result.auc, "f1": f1.__dict__, "threshold": fit.threshold,
                                        "null": {s: n.verdict.__dict__ for s, n in nulls.items()}}
    return md, data


def run(ctx: BenchContext) -> BenchSection:
    speed_md, speed_data = _speed(ctx)
    md = ["Fit on dev, evaluated on test. AUC, F1 etc. with 95% bootstrap CIs; the all-used baseline beside F1. "
          "Calibration reference: each group's own real images, leave-one-out (see `synthscope.membership`).", "",
          "**Speed** (this machine, CPU):", "", speed_md, ""]
    data = {"speed": speed_data}
    if not any(shared_bench_dir(ctx, version, "subtask1") for version, _, _ in BENCHES):
        md.append("Quality skipped: no ../shared/bench/v1 or v2 subtask1 folder found.")
        return BenchSection("Sub-task 1: training-data fingerprints", "\n".join(md), data)
    spaces = QUICK_SPACES if ctx.quick else FULL_SPACES
    md += ["**Positive and null controls** (near copies = 1-px shift, Gaussian noise sigma 2, contrast +/-3%, "
           "of half of the used images, injected into the generated set; dev copies fit the threshold):", ""]
    control_md, control_data = _controls(ctx)
    md += control_md + [""]
    data["controls"] = control_data
    md += [f"**Real models**, spaces: {', '.join(spaces)}; scores: {', '.join(FEATURE_SCORES)}, registered "
           "(shift-registered copy distance on the images), ensemble (mean rank).", ""]
    quality_md, quality_data = _quality(ctx, spaces)
    md += quality_md
    data["quality"] = quality_data
    return BenchSection("Sub-task 1: training-data fingerprints", "\n".join(md), data)
