"""Sub-task 2 robustness: the default label-free pipeline on bench v1 subtask2/test (k = 4) as given,
with every image JPEG-encoded at quality 75, and with every second image mirrored left-right
(../shared/tools/variants.py --subtask2, into a temporary copy). ARI and NMI with bootstrap CIs and
the single-cluster baseline; test labels are used only to score.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from synthscope.benchmark.base import BenchContext, BenchSection, shared_bench_dir

K = 4
VARIANTS = (("as given", None), ("JPEG q75", ("jpeg", "75")), ("mirrored (every second image)", ("flip",)))


def _fmt(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def run(ctx: BenchContext) -> BenchSection:
    title = "Sub-task 2: robustness of label-free attribution (JPEG, mirrored images)"
    v1 = shared_bench_dir(ctx, "v1")
    tool = ctx.shared_dir / "tools" / "variants.py" if ctx.shared_dir is not None else None
    if v1 is None or not (v1 / "subtask2").is_dir():
        return BenchSection(title, "", skipped="../shared/bench/v1/subtask2 not found")
    from synthscope.attribution import AttributionOptions, run_attribution, score_clustering
    from synthscope.data import load_dataset, read_ground_truth

    n_boot = 300 if ctx.quick else 1000
    rows, data = [], {}
    with tempfile.TemporaryDirectory(prefix="synthscope-variants-") as folder:
        for name, mode in VARIANTS:
            if mode is None:
                root = v1
            elif tool is None or not tool.is_file():
                rows.append(f"| {name} | skipped: ../shared/tools/variants.py not found | | |")
                continue
            else:
                root = Path(folder) / mode[0]
                subprocess.run([sys.executable, str(tool), str(v1), str(root), *mode, "--subtask2"], check=True,
                               capture_output=True)
            test = load_dataset(root / "subtask2" / "test")
            truth = read_ground_truth(root / "subtask2" / "test_ground_truth.csv")
            result = run_attribution(test, options=AttributionOptions(k=K), device=ctx.device)
            report = score_clustering(truth.loc[result.labels.index].astype(str).to_numpy(), result.labels.to_numpy(),
                                      n_boot=n_boot)
            baseline = report.baselines["single_cluster"]["ari"]
            rows.append(f"| {name} | {_fmt(report.estimates['ari'])} | {_fmt(report.estimates['nmi'])} | "
                        f"{result.chosen['view']} / {result.chosen['method']} | {baseline:.3f} |")
            data[name] = {"ari": report.estimates["ari"].__dict__, "nmi": report.estimates["nmi"].__dict__,
                          "chosen": result.chosen, "single_cluster_ari": baseline}
    lines = [f"`synthscope attribute subtask2/test --k {K}` (fingerprint, label-free choice) on v1 and two variants "
             f"made by `variants.py --subtask2`; bootstrap CIs over images (n = {n_boot}).", "",
             "| variant | ARI [95% CI] | NMI [95% CI] | chosen view / method | single-cluster ARI |",
             "|---|---|---|---|---|", *rows, ""]
    return BenchSection(title=title, markdown="\n".join(lines), data=data)
