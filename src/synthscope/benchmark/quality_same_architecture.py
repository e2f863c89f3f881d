"""Sub-task 2 on same-architecture generators made with the lab (issue 20 item 5, the 2025 design).

Five dcgan generators trained on five disjoint subsets of ../shared/data/iqoth256, and two dcgan runs
on one training set differing only in the seed (`same_architecture.build_generators`, cached outside the
repository). On each test set: our default label-free attribution (`synthscope attribute TEST --k K`),
the peer recipe (ImageNet CNN features, the bundled effnet-lite0, + k-means), the single-cluster
baseline, and the 2025 supervised assignment (`attribute TEST --dev DEV`). Test labels only score.
"""

from __future__ import annotations

import time

from synthscope.benchmark.base import BenchContext, BenchSection
from synthscope.benchmark.same_architecture import SameArchitectureConfig, build_generators


def _fmt(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def _measure(tree, k: int, ctx: BenchContext, n_boot: int) -> tuple[list[str], dict]:
    import numpy as np
    from sklearn.cluster import KMeans

    from synthscope.attribution import run_attribution, score_clustering
    from synthscope.cache import embed_dataset
    from synthscope.data import load_dataset
    from synthscope.features import get_extractor
    from synthscope.metrics import subset_accuracy_report
    import pandas as pd

    test, dev = load_dataset(tree / "test"), load_dataset(tree / "dev")
    truth = pd.read_csv(tree / "test_ground_truth.csv", dtype=str).set_index("image_id")["generator"]
    ids = test.manifest["image_id"].astype(str).to_numpy()
    y = truth.loc[ids].to_numpy()
    ours = run_attribution(test, k=k, device=ctx.device)
    ours_report = score_clustering(y, ours.labels.to_numpy(), n_boot=n_boot)
    extractor = get_extractor("effnet-lite0")
    X = embed_dataset(test, extractor, batch_size=extractor.default_batch_size, device=ctx.device, progress=False)
    peer = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(X)
    peer_report = score_clustering(y, peer, n_boot=n_boot)
    trivial = score_clustering(y, np.zeros(len(y), dtype=np.int64), n_boot=n_boot)
    supervised = run_attribution(test, dev, device=ctx.device)
    sup_report = subset_accuracy_report(y, supervised.labels.astype(str).to_numpy(), n_boot=n_boot)
    rows = [
        f"| ours, label-free default (`attribute TEST --k {k}`; chose {ours.chosen['view']} + {ours.chosen['method']}) | ARI {_fmt(ours_report.estimates['ari'])} |",
        f"| peer recipe: effnet-lite0 (ImageNet) + k-means (k={k}) | ARI {_fmt(peer_report.estimates['ari'])} |",
        f"| trivial: single cluster | ARI {_fmt(trivial.estimates['ari'])} |",
        f"| ours, supervised by dev (2025 `attribute TEST --dev DEV`) | accuracy {_fmt(sup_report.estimates['accuracy'])} "
        f"(majority baseline {sup_report.baselines['majority_class']['accuracy']:.3f}) |",
    ]
    data = {"ours_label_free_ari": ours_report.estimates["ari"].__dict__, "ours_chosen": ours.chosen,
            "peer_effnet_kmeans_ari": peer_report.estimates["ari"].__dict__,
            "single_cluster_ari": trivial.estimates["ari"].__dict__,
            "supervised_accuracy": sup_report.estimates["accuracy"].__dict__,
            "supervised_majority_accuracy": sup_report.baselines["majority_class"]["accuracy"],
            "n_test": int(len(y)), "k": k}
    return rows, data


def run(ctx: BenchContext) -> BenchSection:
    title = "Sub-task 2: same-architecture generators (lab, 2025 design)"
    pool = ctx.shared_dir / "data" / "iqoth256" if ctx.shared_dir is not None else None
    if pool is None or not pool.is_dir():
        return BenchSection(title, "", skipped="../shared/data/iqoth256 not found")
    config = SameArchitectureConfig()
    start = time.perf_counter()
    built = build_generators(pool, config, device="cpu")
    build_seconds = time.perf_counter() - start
    from pathlib import Path

    root = Path(built["root"])
    n_boot = 300 if ctx.quick else 1000
    lines = [
        f"One architecture ({config.architecture}), trained on CPU at {config.resolution} px for {config.steps} steps "
        f"of 32 on {config.train_size}+ real images each (group-aware, disjoint), then upsampled to 256 px; "
        f"{config.n_dev} dev and {config.n_test} test images per generator. Training took "
        f"{built['train_seconds']:.0f} s when the cache entry was made ({'reused from' if built['cached'] else 'written to'} "
        f"`{root}`, {build_seconds:.0f} s this run). CIs: bootstrap over test images (n = {n_boot}).", "",
    ]
    data = {"config": built["config"], "train_seconds": built["train_seconds"], "cached": built["cached"],
            "training": built["training"]}
    measure_start = time.perf_counter()
    for key, name, k in (("subsets", f"{config.n_subsets} generators, disjoint training subsets", config.n_subsets),
                         ("seeds", "2 runs, same training set, different seed", 2)):
        rows, data[key] = _measure(root / key, k, ctx, n_boot)
        lines += [f"**{name}** ({data[key]['n_test']} test images, k = {k}):", "",
                  "| method | score [95% CI] |", "|---|---|", *rows, ""]
    losses = ", ".join(f"{n} {t['final_losses'].get('loss_D', float('nan')):.2f}" for n, t in built["training"].items())
    data["measure_seconds"] = round(time.perf_counter() - measure_start, 1)
    lines += [
        f"Cost: training {built['train_seconds']:.0f} s once (then cached; delete the folder or change the "
        f"configuration to retrain), measuring {data['measure_seconds']:.0f} s (the test and dev images of both sets embedded with "
        "fingerprint and effnet-lite0, the clusterings, the bootstrap).", "",
        "What training small on CPU limits: the generators are tiny and briefly trained ("
        f"{config.steps} steps at {config.resolution} px, no GPU here), so their images are blurry, low-detail and "
        "far from converged; their differences come from short, noisy training runs rather than from what a "
        "converged model learns from its subset. These numbers say whether the methods separate same-architecture "
        "generators at this scale; they do not predict 2025 numbers on full-size, converged generators. "
        "Briefly trained GANs also differ more "
        f"from run to run than converged ones (final discriminator hinge loss per run: {losses}; near 0 = the "
        "discriminator won outright), which can make this an easier case than converged same-architecture models.", "",
    ]
    return BenchSection(title=title, markdown="\n".join(lines), data=data)
