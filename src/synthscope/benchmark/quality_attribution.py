"""Sub-task 2 quality: ARI/NMI with CIs on bench v1.

Every available extractor x clustering method on subtask2/test (k=4) without labels, the label-free
"auto" choice per extractor, a consensus over all views, the default pipeline (fingerprint, auto), and
the semi-supervised mode seeded by subtask2/dev. Test labels are used only to score. The speed of
projections and clustering is measured in `speed_scale`.
"""

from __future__ import annotations

import time

import pandas as pd

from synthscope.benchmark.base import BenchContext, BenchSection, shared_bench_dir

EXTRACTORS = ("fingerprint", "effnet-lite0", "astra-ct", "lbp", "pixels")
K = 4


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' to_markdown needs the optional tabulate package)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _fmt(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def _quality(ctx: BenchContext, root) -> tuple[list[str], dict]:
    from synthscope.attribution import ALGORITHMS, AttributionOptions, cluster_once, run_attribution, score_clustering
    from synthscope.cache import EmbeddingCache, embed_dataset
    from synthscope.data import load_dataset, read_ground_truth
    from synthscope.features import ExtractorUnavailable, get_extractor

    test = load_dataset(root / "test")
    dev = load_dataset(root / "dev")
    truth = read_ground_truth(root / "test_ground_truth.csv")
    ids = test.manifest["image_id"].to_numpy()
    y_true = truth.loc[ids].astype(str).to_numpy()
    n_boot = 300 if ctx.quick else 1000
    cache = EmbeddingCache()

    views, dev_views, skipped, embed_seconds = {}, {}, {}, {}
    for name in EXTRACTORS:
        print(f"[bench]   sub-task 2: embedding test and dev with {name}", flush=True)
        try:
            extractor = get_extractor(name)
            start = time.perf_counter()
            views[name] = embed_dataset(test, extractor, cache=cache, batch_size=extractor.default_batch_size,
                                        device=ctx.device, progress=False)
            embed_seconds[name] = time.perf_counter() - start
            dev_views[name] = embed_dataset(dev, extractor, cache=cache, batch_size=extractor.default_batch_size,
                                            device=ctx.device, progress=False)
        except (KeyError, ExtractorUnavailable, ImportError, OSError, RuntimeError) as error:
            skipped[name] = str(error).splitlines()[0]

    rows, data = [], {"per_view": {}, "skipped": skipped}
    for name, X in views.items():
        # `synthscope attribute TEST --k 4 -e NAME`, on the features embedded above
        auto = run_attribution(test, options=AttributionOptions(k=K, extractors=(name,)), features=views).model
        reduced = auto.reduced_[name]
        entry = {}
        for method in ALGORITHMS:
            labels = cluster_once(reduced, K, method, 0)
            report = score_clustering(y_true, labels, n_boot=n_boot)
            sel = auto.selection_.set_index("method").loc[method]
            entry[method] = {"ari": report.estimates["ari"].__dict__, "nmi": report.estimates["nmi"].__dict__,
                             "stability": float(sel["stability"]), "silhouette": float(sel["silhouette"])}
            rows.append({"extractor": name, "method": method, "ARI [95% CI]": _fmt(report.estimates["ari"]),
                         "NMI [95% CI]": _fmt(report.estimates["nmi"]), "stability": f"{sel['stability']:.3f}",
                         "silhouette": f"{sel['silhouette']:.3f}"})
        auto_report = score_clustering(y_true, auto.labels_, n_boot=n_boot)
        rows.append({"extractor": name, "method": f"auto -> {auto.chosen_['method']}",
                     "ARI [95% CI]": _fmt(auto_report.estimates["ari"]), "NMI [95% CI]": _fmt(auto_report.estimates["nmi"]),
                     "stability": "", "silhouette": ""})
        # `synthscope attribute TEST --dev DEV --k 4 -e NAME`
        seeded = run_attribution(test, dev, AttributionOptions(k=K, extractors=(name,)), features=views,
                                 dev_features=dev_views).model
        seeded_report = score_clustering(y_true, seeded.labels_, n_boot=n_boot)
        rows.append({"extractor": name, "method": "semi-supervised (seeded by dev)",
                     "ARI [95% CI]": _fmt(seeded_report.estimates["ari"]),
                     "NMI [95% CI]": _fmt(seeded_report.estimates["nmi"]), "stability": "", "silhouette": ""})
        entry["auto"] = {"chosen": auto.chosen_, "ari": auto_report.estimates["ari"].__dict__,
                         "nmi": auto_report.estimates["nmi"].__dict__}
        entry["semi_supervised"] = {"ari": seeded_report.estimates["ari"].__dict__,
                                    "nmi": seeded_report.estimates["nmi"].__dict__,
                                    "cluster_names": {int(c): str(v) for c, v in seeded.cluster_names_.items()},
                                    "contingency": pd.crosstab(y_true, seeded.labels_).to_dict()}
        data["per_view"][name] = entry

    lines = []
    if "fingerprint" in views:
        default = run_attribution(test, k=K, features=views).model     # the CLI's defaults
        report = score_clustering(y_true, default.labels_, n_boot=n_boot)
        data["default"] = {"chosen": default.chosen_, "ari": report.estimates["ari"].__dict__,
                           "nmi": report.estimates["nmi"].__dict__,
                           "selection": default.selection_.to_dict(orient="records")}
        lines += [
            f"**Default pipeline** (`synthscope attribute PATH --k 4`: fingerprint view, label-free choice): "
            f"ARI {_fmt(report.estimates['ari'])}, NMI {_fmt(report.estimates['nmi'])} "
            f"(single-cluster baseline ARI 0). Chosen without labels:",
            "", "```", default.describe(), "```", "",
            "Contingency (rows: true generator, columns: cluster):", "", "```",
            pd.crosstab(pd.Series(y_true, name="true"), pd.Series(default.labels_, name="cluster")).to_string(),
            "```", "",
        ]
    if len(views) > 1:
        consensus = run_attribution(test, options=AttributionOptions(k=K, extractors=tuple(views), method="consensus"),
                                    features=views).model
        report = score_clustering(y_true, consensus.labels_, n_boot=n_boot)
        data["consensus_all_views"] = {"chosen": consensus.chosen_, "ari": report.estimates["ari"].__dict__}
        lines += [f"Consensus (co-association of the stable candidates over {', '.join(views)}): "
                  f"chosen {consensus.chosen_}, ARI {_fmt(report.estimates['ari'])}.", ""]
    lines += ["Per extractor x method (k=4, no labels unless stated; stability = mean ARI of 80 % subsample "
              "clusterings vs the full one; CIs: bootstrap over images):", "",
              _markdown(pd.DataFrame(rows)), ""]
    lines += [f"Embedding time for the 600 test images: "
              + ", ".join(f"{n} {s:.1f} s" for n, s in embed_seconds.items()) + ".", ""]
    if skipped:
        lines += ["Skipped extractors: " + "; ".join(f"{n}: {r}" for n, r in skipped.items()), ""]
    return lines, data


def run(ctx: BenchContext) -> BenchSection:
    title = "Sub-task 2: generator attribution (quality)"
    lines, data = [], {}
    root = shared_bench_dir(ctx, "v1", "subtask2")
    if root is None:
        lines += ["Quality skipped: ../shared/bench/v1/subtask2 not found.", ""]
    else:
        quality_lines, data["quality"] = _quality(ctx, root)
        lines += ["### Quality on bench v1 subtask2/test (600 images, 4 generators, k=4)", ""] + quality_lines
    return BenchSection(title=title, markdown="\n".join(lines), data=data)
