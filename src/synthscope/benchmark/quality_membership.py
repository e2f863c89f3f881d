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
#: the null control runs for every column the default run chooses among
NULL_SCORES = FEATURE_SCORES + ("patches", "registered")
NULL_BENCHES = (("v3", "model_1", "folder_1"), ("v3s", "model_1", "folder_1"), ("v1", "model_1", "folder_1"),
                ("v1", "model_2", "folder_2"))
#: robustness variants of v3 and v3s (../shared/tools/variants.py, and a shift of our own), side by side
VARIANTS = (("flip",), ("few", "50"), ("jpeg", "75"), ("few", "20"), ("shift", "8"))


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
    """`synthscope controls` on each benchmark's test folder: the positive control (dev copies fit the
    threshold, used images copied) and the null control for every column the default run chooses among."""
    from synthscope.cache import EmbeddingCache
    from synthscope.membership import ControlOptions, run_controls
    from synthscope.membership.spaces import DEFAULT_SPACES

    md = ["| benchmark | score | copies injected (test) | AUC copied vs not | F1 at dev-fitted threshold [95% CI] |",
          "|---|---|---|---|---|"]
    null_md = ["| benchmark (test folder) | columns passed | lowest median p (column, median AUC) | failed |",
               "|---|---|---|---|"]
    data, per_column = {}, {}
    options = ControlOptions(space="pixels-norm", positive_scores=("registered", "copies"), null_scores=NULL_SCORES,
                             null_spaces=DEFAULT_SPACES, copy_from="used", seed=1, n_boot=200 if ctx.quick else 1000)
    benches = list(dict.fromkeys(NULL_BENCHES + BENCHES))
    for version, dev_group, test_group in benches:
        loaded = _load(ctx, version, dev_group, test_group)
        if loaded is None:
            continue
        one_dev, one_test, truth = loaded
        report = run_controls(one_test, one_dev, options, used=truth, cache=EmbeddingCache(ctx.cache_dir),
                              device=ctx.device)
        group = report.groups[0]
        label = f"{version} {dev_group}->{test_group}"
        for score, outcome in group.positive.items():
            md.append(f"| {label} | {score} | {outcome.n_copied} | {outcome.result.auc:.3f} | {_fmt_ci(outcome.f1)} |")
            data[f"{label} {score}"] = {"auc": outcome.result.auc, "f1": outcome.f1.__dict__,
                                        "threshold": outcome.threshold}
        nulls = group.null
        lowest = min(nulls, key=lambda c: nulls[c].verdict.p_value)
        failed = [c for c, n in nulls.items() if not n.passed]
        null_md.append(f"| {label} | {len(nulls) - len(failed)} of {len(nulls)} | {nulls[lowest].verdict.p_value:.2g} "
                       f"({lowest}, {nulls[lowest].verdict.statistic:.2f}) | "
                       + ("; ".join(f"{c} (median AUC {nulls[c].verdict.statistic:.2f}, p {nulls[c].verdict.p_value:.2g})"
                                    for c in failed) or "none") + " |")
        data[f"{label} null"] = {c: n.verdict.__dict__ for c, n in nulls.items()}
        per_column[label] = nulls
    return md + ["", "Null control (held-out real images, whole scan groups found without labels, stand in for the "
                 "generated set; two-sided rank test whose p permutes the labels of whole scan groups, ten splits, "
                 "median p >= 0.05 passes; the patch score is the typicality-calibrated one), for every space x score "
                 "column and the two image scores:", ""] + null_md + ["", "Per column (median AUC / median p over the "
                 "ten splits; FAIL marks p < 0.05):", ""] + _null_columns(per_column), data


def _null_columns(per_column: dict) -> list[str]:
    labels = list(per_column)
    columns = list(dict.fromkeys(c for nulls in per_column.values() for c in nulls))
    lines = ["| column | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for column in columns:
        cells = []
        for label in labels:
            result = per_column[label].get(column)
            cells.append("" if result is None else f"{result.verdict.statistic:.2f} / {result.verdict.p_value:.2g}"
                         + ("" if result.passed else " FAIL"))
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------------------------------
# Issue 19: the defaults on data of another shape (v3, v3s and their variants), side by side
# --------------------------------------------------------------------------------------------------

def shift_variant(src, dst, max_shift: int = 8, seed: int = 11) -> None:
    """A copy of a sub-task 1 layout whose every second generated image (seeded order) is shifted by up to
    `max_shift` pixels each way (edges repeated), as a generator trained with random crops would emit."""
    import random
    import shutil
    from pathlib import Path

    from PIL import Image

    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    rng = random.Random(seed)
    for folder in sorted(dst.rglob("generated")):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
        rng.shuffle(files)
        for path in files[::2]:
            image = np.asarray(Image.open(path).convert("L"))
            dy, dx = rng.randint(-max_shift, max_shift), rng.randint(-max_shift, max_shift)
            padded = np.pad(image, max_shift, mode="edge")
            moved = padded[max_shift + dy: max_shift + dy + image.shape[0], max_shift + dx: max_shift + dx + image.shape[1]]
            Image.fromarray(moved).save(path)


def _variant_root(ctx: BenchContext, version: str, variant: tuple[str, ...]):
    """The variant's bench root under the run's cache dir, built on first use (None when it cannot be)."""
    import subprocess
    import sys

    base = shared_bench_dir(ctx, version)
    if base is None:
        return None
    if not variant:
        return base
    out = ctx.cache_dir / "variants" / f"{version}-{'-'.join(variant)}"
    if (out / "subtask1" / "test").is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if variant[0] == "shift":
        shift_variant(base, out, int(variant[1]))
        return out
    tool = ctx.shared_dir / "tools" / "variants.py"
    if not tool.is_file():
        return None
    subprocess.run([sys.executable, str(tool), str(base), str(out), *variant], check=True, capture_output=True)
    for path in out.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def _variants(ctx: BenchContext) -> tuple[list[str], dict]:
    """`synthscope membership TEST --dev DEV --truth ...` with default options on v3, v3s and their variants."""
    from synthscope.cache import EmbeddingCache
    from synthscope.data import load_dataset, read_ground_truth
    from synthscope.membership import MembershipOptions, evaluate_membership, run_membership

    cache = EmbeddingCache(ctx.cache_dir)
    n_boot = 200 if ctx.quick else 1000
    md = ["| benchmark | what the default chose | dev gate p | test AUC [95% CI] | F1 [CI] (all-used F1) | kappa [CI] | "
          "expected on new images (nested CV on dev): F1 [CI], kappa [CI] | test F1 and kappa within the expected CIs |",
          "|---|---|---|---|---|---|---|---|"]
    data = {}
    cases = [(version, variant) for version in ("v3", "v3s") for variant in ((),) + (VARIANTS if not ctx.quick else ())]
    for version, variant in cases:
        root = _variant_root(ctx, version, variant)
        name = version + ("" if not variant else " " + " ".join(variant))
        if root is None:
            md.append(f"| {name} | absent, skipped | | | | | | |")
            continue
        dev, test = load_dataset(root / "subtask1" / "dev"), load_dataset(root / "subtask1" / "test")
        truth = read_ground_truth(root / "subtask1" / "test_ground_truth.csv")
        run = run_membership(test, dev, MembershipOptions(), cache=cache, device=ctx.device)
        group = run.groups[0]
        e = evaluate_membership(run, truth, n_boot=n_boot).groups[0].report
        f1, kappa, auc = e.estimates["f1"], e.estimates["kappa"], e.estimates["roc_auc"]
        expected = group.expected
        if expected is not None:
            ef, ek = expected.estimates["f1"], expected.estimates["kappa"]
            inside = (ef.ci_low <= f1.value <= ef.ci_high) and (ek.ci_low <= kappa.value <= ek.ci_high)
            expected_text = (f"{_fmt_ci(ef)}, {_fmt_ci(ek)}" + ("" if expected.beats_all_used
                                                                 else " (does not beat all used)"))
        else:
            inside, expected_text = None, "n/a (too few scan groups)"
        overturned = "overturned" in group.choice
        md.append(f"| {name} | {group.primary}{' (dev overturned the default)' if overturned else ''} | "
                  f"{group.verdict.p_value:.2g} | {_fmt_ci(auc)} | {_fmt_ci(f1)} ({e.baselines['all_used']['f1']:.3f}) | "
                  f"{_fmt_ci(kappa)} | {expected_text} | {'yes' if inside else 'NO' if inside is not None else 'n/a'} |")
        data[name] = {"primary": group.primary, "choice": group.choice, "gate": group.verdict.__dict__,
                      "threshold": group.threshold.__dict__, "generated": group.generated,
                      "test": {k: v.__dict__ for k, v in e.estimates.items()},
                      "all_used_f1": e.baselines["all_used"]["f1"],
                      "expected": None if expected is None else {k: v.__dict__ for k, v in expected.estimates.items()},
                      "expected_columns": None if expected is None else expected.chosen,
                      "within_expected_ci": inside}
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
    variants_md, variants_data = _variants(ctx)
    md += ["**The defaults on data of another shape** (issue 19): `synthscope membership TEST --dev DEV` with its "
           "default options on v3, v3s (dev and test from different scans) and their variants (`../shared/tools/"
           "variants.py`: half the generated images mirrored, 50 or 20 generated images per folder, JPEG q75; and "
           "`shift 8`: every second generated image shifted by up to 8 px). Test labels only score the run; the "
           "expected line is nested cross-validation on dev (column choice and threshold inside each fold).", ""]
    md += variants_md + [""]
    data["variants"] = variants_data
    md += ["**The patch score at scale**: see its own scale section (`synthscope.benchmark.scale_patches`: 10k generated x "
           "4k real and 50k x 10k, wall and CPU seconds, peak RSS).", ""]
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
