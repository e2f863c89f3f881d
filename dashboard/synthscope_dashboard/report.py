"""A static, self-contained HTML report of the page's current state: what an analyst sends a colleague.

`write_report(state, path)` renders from an `AppState`, so the curation is in it (moved / merged / split /
renamed clusters, moved thresholds, labels set by hand). It opens without a kernel and without a network:
plotly.js is embedded inline, images are PNG data URIs, the style sheet is the page's own, and no font,
script or style is fetched from anywhere (`external_references` checks the written file).

The numbers come from the same core calls the views make (`synthscope.metrics.attribution_report`,
`synthscope.membership.evaluate_predictions`, n_boot = 1000), so they equal the page's tables. Scores
against test labels (a ground-truth file) appear only in the section marked "Evaluation".
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from synthscope_dashboard.imaging import cluster_color, colormap, data_url, to_uint8
from synthscope_dashboard.markup import PLOT_CONFIG, STYLE, banner, esc, estimate_row, fmt, metric_table
from synthscope_dashboard.tables import N_BOOT, ari_nmi_table, cluster_table_html   # N_BOOT: the views' and CLI's

GALLERY_SIZE = 12          # real images per model pair, highest score first
NEAREST = 3                # nearest generated images beside each real one
THUMB = 112                # px
MEMBERSHIP_METRICS = (("f1", "F1"), ("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                      ("specificity", "specificity"), ("kappa", "Cohen's kappa"), ("roc_auc", "ROC AUC (no threshold)"))

REPORT_STYLE = """
<style>
body { margin: 0; background: #f6f7fb; }
.ss-report { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; background: white; }
.ss-report h2 { margin: 22px 0 6px; border-bottom: 2px solid #1f2a44; padding-bottom: 3px; }
.ss-report h3 { margin: 14px 0 4px; }
.ss-evaluation { border: 2px dashed #cf3d3d; border-radius: 8px; padding: 6px 14px; margin-top: 24px; background: #fffafa; }
.ss-gallery-row { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 6px; margin: 6px 0;
                  border-bottom: 1px solid #e3e6ee; padding-bottom: 6px; }
.ss-gallery-row figure, .ss-fingerprint figure { margin: 0; text-align: center; }
.ss-gallery-row img, .ss-fingerprint img { display: block; border: 1px solid #d0d4de; }
.ss-fingerprints { display: flex; flex-wrap: wrap; gap: 8px; }
.ss-fingerprint { border: 1px solid #e3e6ee; border-radius: 6px; padding: 6px; }
.ss-fingerprint .ss-pair { display: flex; gap: 6px; }
</style>
"""


def data_uri(image: np.ndarray, size: int | None = None) -> str:
    return data_url(image, size, "png")


def img(image: np.ndarray, size: int, alt: str, role: str) -> str:
    return (f"<img src='{data_uri(image, size)}' width='{size}' height='{size}' alt='{esc(alt)}' "
            f"data-role='{role}'>")


# -- sub-task 2 -----------------------------------------------------------------------------------

def scatter_figure(state) -> go.Figure:
    """The current projection, one trace per curated cluster (so the legend names them)."""
    data = state.workspace.attribution
    xy = data.projections.get(state.projection)
    method = state.projection if xy is not None else "pca"
    xy = data.projections[method]
    frame = data.frame
    figure = go.Figure(layout=go.Layout(
        height=560, margin={"l": 40, "r": 10, "t": 40, "b": 40}, plot_bgcolor="white",
        title={"text": f"sub-task 2: {data.n:,} generated images, {method.upper()} of {data.extractor} features, "
                       "coloured by the curated clusters", "font": {"size": 14}},
        legend={"title": {"text": "cluster"}}, xaxis={"title": f"{method} 1"}, yaxis={"title": f"{method} 2"}))
    for cluster in state.clusters():
        rows = np.flatnonzero(state.assignments == cluster)
        text = (frame["image_id"].to_numpy()[rows] + " (" + frame["split"].to_numpy()[rows] + ")").tolist()
        figure.add_trace(go.Scatter(x=xy[rows, 0].tolist(), y=xy[rows, 1].tolist(), mode="markers",
                                    name=f"{state.cluster_name(cluster)} ({len(rows):,})", text=text,
                                    hoverinfo="text", marker={"color": cluster_color(cluster), "size": 6}))
    return figure


def attribution_tables(state) -> tuple[str, str]:
    """(dev tables, evaluation tables): the generator view's ARI / NMI with CIs and baseline."""
    frame, assignments = state.workspace.attribution.frame, state.assignments
    dev, test = (ari_nmi_table(frame, assignments, column, caption_prefix="sub-task 2 · ", n_boot=N_BOOT)
                 for column in ("known_label", "truth"))
    return dev, test


def cluster_table(state) -> str:
    labels = state.workspace.attribution.frame["known_label"].to_numpy()
    return cluster_table_html(state, labels, caption="curated clusters", label_header="majority dev label",
                              css_class="ss-clusters")


def fingerprints_html(state) -> str:
    """Mean residual and mean log power spectrum per cluster (core `cluster_fingerprints`, on the same
    sample of at most 64 images per cluster the generator view uses)."""
    from synthscope_dashboard.fingerprints import cluster_fingerprint_images, sample_members

    data = state.workspace.attribution
    rows = np.concatenate([sample_members(state.assignments, c) for c in state.clusters()])
    prints = cluster_fingerprint_images(data.load_images(rows), state.assignments[rows])
    cards = []
    for cluster, fingerprint in prints.items():
        name = state.cluster_name(cluster)
        cards.append(
            f"<div class='ss-fingerprint' data-cluster='{cluster}'><b><span class='ss-swatch' "
            f"style='background:{cluster_color(cluster)}'></span>{esc(name)}</b><div class='ss-pair'>"
            f"<figure>{img(to_uint8(fingerprint.mean_residual), 160, f'{name}: mean residual', 'fingerprint')}"
            "<figcaption class='ss-caption'>mean residual</figcaption></figure>"
            f"<figure>{img(colormap(to_uint8(fingerprint.mean_log_spectrum)), 160, f'{name}: mean log spectrum', 'fingerprint')}"
            "<figcaption class='ss-caption'>mean log power spectrum</figcaption></figure></div>"
            f"<div class='ss-caption' style='max-width:330px'>{esc(fingerprint.distinctive)}</div></div>")
    return "<div class='ss-fingerprints'>" + "".join(cards) + "</div>"


# -- sub-task 1 -----------------------------------------------------------------------------------

def membership_evaluations(state, pair_name: str, predictions: np.ndarray) -> list[tuple[str, str, object]]:
    """(split kind "dev" | "test", caption, core GroupEvaluation) for one pair: the training view's tables."""
    from synthscope.membership import evaluate_predictions

    data = state.workspace.membership
    pair, rows, frame = data.pairs[pair_name], data.pair_rows[pair_name], data.frame
    out = []
    for column, split, kind, caption in (("label", "dev", "dev", "dev (labelled; the thresholds were fit here)"),
                                         ("truth", data.scored_split, "test", "test (ground-truth file, evaluation only)")):
        if column == "truth" and split == "dev":
            continue
        mask = (frame["split"].to_numpy()[rows] == split) & (frame[column].to_numpy()[rows] >= 0)
        if mask.sum() == 0:
            continue
        chosen = rows[mask]
        out.append((kind, caption, evaluate_predictions(
            frame[column].to_numpy()[chosen], predictions[chosen], frame["score"].to_numpy()[chosen],
            group=pair.name, primary=pair.primary, labels=kind, baseline_table=pair.baselines.get(split),
            scan_groups=pair.scan_groups.get(split), n_boot=N_BOOT)))
    return out


def membership_table(pair_name: str, caption: str, evaluation) -> str:
    report = evaluation.report
    baselines = report.baselines
    labels = dict(MEMBERSHIP_METRICS)
    rows = [estimate_row(labels[name], report.estimates[name],
                         [("all used", baselines["all_used"][name]), ("all not used", baselines["all_not_used"][name]),
                          ("random", baselines["random"][name])])
            for name, _ in MEMBERSHIP_METRICS if name in report.estimates]
    n = next(iter(report.estimates.values())).n
    note = ("" if report.estimates["f1"].ci_low > baselines["all_used"]["f1"] else
            "<br><span class='ss-status'>F1's CI does not clear the all-used baseline: this threshold is not a finding.</span>")
    return metric_table(rows, f"{esc(pair_name)} · {caption} · n = {n:,}") + note


def verdict_html(pair) -> str:
    verdict = pair.verdict
    head = "Leakage: YES" if verdict.significant else "Leakage: no significant signal"
    story = "".join(f"<li>{esc(line)}</li>" for line in pair.story)
    return banner(f"<b class='ss-verdict'>{esc(pair.name)} · {head}</b> — {esc(verdict.message)}<br>"
                  f"<span class='ss-status'>{esc(verdict.method)} · score {esc(pair.primary)}, chosen as "
                  f"{esc(pair.choice)}</span><ul class='ss-story'>{story}</ul>", "bad" if verdict.significant else "warn")


def gallery_html(state, pair_name: str, predictions: np.ndarray, size: int = GALLERY_SIZE) -> str:
    """The `size` highest-scoring real images of the pair's scored folder, each beside its nearest
    generated images (the core run's nearest pairs)."""
    data = state.workspace.membership
    frame = data.frame
    rows = data.pair_rows[pair_name]
    scored = rows[frame["split"].to_numpy()[rows] == data.scored_split]
    if not len(scored):
        scored = rows
    order = scored[np.argsort(-frame["score"].to_numpy()[scored], kind="stable")][:size]
    if not len(order):
        return ""
    reals = data.load_real(order)
    threshold = state.thresholds[pair_name]
    out = []
    for row, real in zip(order.tolist(), reals):
        image_id = frame.at[row, "image_id"]
        key = frame.at[row, "key"]
        call = "used" if predictions[row] else "not used"
        hand = " (set by hand)" if key in state.overrides else ""
        cells = [f"<figure>{img(real, THUMB, image_id, 'gallery-real')}<figcaption class='ss-caption'>"
                 f"<b>{esc(image_id)}</b><br>score {fmt(frame.at[row, 'score'], 4)} (#{frame.at[row, 'rank']})<br>"
                 f"call: <b>{call}</b>{hand}</figcaption></figure>"]
        for near in data.nearest(row, NEAREST):
            cells.append(f"<figure>{img(near['image'], THUMB, near['image_id'], 'gallery-nearest')}"
                         f"<figcaption class='ss-caption'>nearest generated<br>{esc(near['image_id'])}<br>"
                         f"distance {fmt(near['distance'])}</figcaption></figure>")
        out.append(f"<div class='ss-gallery-row' data-real='{esc(image_id)}'>" + "".join(cells) + "</div>")
    return (f"<h4>highest-scoring real images of {esc(data.scored_split)} (threshold {threshold:.4g}; at or above "
            "it = used), each beside its nearest generated images</h4>" + "".join(out))


# -- 2025 sub-task 2 ------------------------------------------------------------------------------

def subsets_html(subsets, lowest: int = 20, novelty_alpha: float | None = None) -> str:
    """The 2025 tab: dev cross-validation (accuracy with baselines, confusion matrix, reliability diagram
    of the confidence) and the test assignments, least confident first, with the "none of these" count at
    the page's level (`novelty_alpha`; None = the run's)."""
    from synthscope_dashboard.calibration_plot import reliability_figure, reliability_html
    from synthscope_dashboard.markup import accuracy_table, confusion_html

    cv = subsets.cv
    parts = ["<section id='subsets'><h2>Sub-task 2 (2025) · training subsets</h2>",
             f"<p class='ss-status'>{len(subsets.classes)} subsets in <code>{esc(subsets.dev_root)}</code>: "
             + ", ".join(esc(c) for c in subsets.classes) + "</p>",
             accuracy_table(cv.report, f"dev, {cv.n_splits}-fold stratified cross-validation (out-of-fold) · "
                                       f"n = {len(cv.predictions):,}"),
             confusion_html(cv.confusion),
             "<h3>Reliability of the confidence</h3>",
             reliability_figure(subsets.reliability).to_html(full_html=False, include_plotlyjs=False,
                                                             div_id="ss-report-reliability",
                                                             config={"displaylogo": False, "responsive": True}),
             reliability_html(subsets.reliability)]
    if subsets.run is not None:
        predictions = subsets.predictions_at(novelty_alpha).sort_values(["confidence", "image_id"], kind="stable")
        alpha = subsets.run.options.novelty_alpha if novelty_alpha is None else novelty_alpha
        flagged = int(predictions["none_of_these"].sum())
        rows = "".join(f"<tr><td>{esc(r.image_id)}</td><td>{esc(r.subset)}</td>"
                       f"<td class='ss-value'>{fmt(r.confidence)}</td></tr>" for r in predictions.head(lowest).itertuples())
        counts = predictions["subset"].value_counts()
        parts.append(f"<p>{len(predictions):,} test images assigned: "
                     + ", ".join(f"{esc(c)} {int(counts.get(c, 0)):,}" for c in subsets.classes) + "</p>"
                     f"<p class='ss-none-of-these' data-flagged='{flagged}' data-level='{alpha:g}'><b>{flagged:,} of "
                     f"{len(predictions):,} test images are none of these</b> at level {alpha:g} (conformal p-value "
                     "below it: unlike every dev subset).</p>"
                     f"<table class='ss-table ss-subset-lowest'><caption>the {min(lowest, len(predictions))} least "
                     "confident assignments</caption><tr><th>image</th><th>subset</th><th>confidence</th></tr>"
                     + rows + "</table>")
    return "".join(parts) + "</section>"


# -- the page -------------------------------------------------------------------------------------

def report_html(state) -> str:
    """The report as one HTML string (see `write_report`)."""
    import plotly.offline

    workspace = state.workspace
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body, evaluation = [], []
    uses_plotly = False
    attribution = workspace.attribution
    if attribution is not None:
        uses_plotly = True
        figure = scatter_figure(state)
        dev_table, truth_table = attribution_tables(state)
        body.append("<section id='subtask2'><h2>Sub-task 2 · generator fingerprints</h2>"
                    f"<p class='ss-status'>k = {state.k} asked, {len(state.clusters())} clusters after curation; "
                    f"clustering {esc(state.method)} on {esc(attribution.extractor)} features.</p>"
                    + figure.to_html(full_html=False, include_plotlyjs=False, div_id="ss-report-scatter",
                                     config=PLOT_CONFIG)
                    + cluster_table(state) + (dev_table or banner("no dev labels: no attribution scores", "info"))
                    + "<h3>Fingerprints per cluster</h3>" + fingerprints_html(state) + "</section>")
        if truth_table:
            evaluation.append(truth_table)
    subsets = workspace.subsets
    if subsets is not None:
        uses_plotly = True
        body.append(subsets_html(subsets, novelty_alpha=state.novelty_alpha))
    membership = workspace.membership
    if membership is not None:
        predictions = state.membership_predictions()
        parts = [f"<section id='subtask1'><h2>Sub-task 1 · training-data fingerprints</h2>"
                 f"<p class='ss-status'>score = {esc(membership.score_name)}. Each model's threshold is fit on its "
                 f"dev group and applied unchanged to its test folder; {len(state.overrides)} label(s) set by hand.</p>"]
        for name, pair in membership.pairs.items():
            evaluations = membership_evaluations(state, name, predictions)
            parts.append(f"<div class='ss-pair-section' data-pair='{esc(name)}'><h3>{esc(name)}</h3>"
                         + verdict_html(pair)
                         + "".join(membership_table(name, caption, e) for kind, caption, e in evaluations if kind == "dev")
                         + gallery_html(state, name, predictions) + "</div>")
            evaluation += [membership_table(name, caption, e) for kind, caption, e in evaluations if kind == "test"]
        body.append("".join(parts) + "</section>")
    if evaluation:
        body.append("<section id='evaluation' class='ss-evaluation'><h2>Evaluation against test labels</h2>"
                    + banner("<b>Evaluation only.</b> These scores use the test ground-truth file, which never set a "
                             "threshold, a cluster or any other parameter above.", "warn")
                    + "".join(evaluation) + "</section>")
    plotly_js = f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>" if uses_plotly else ""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>synthscope report · {esc(Path(workspace.path).name)}</title>"
            + STYLE + REPORT_STYLE + plotly_js + "</head><body><div class='ss-app ss-report'>"
            "<div class='ss-header'><h2>synthscope report · fingerprints of generative models in lung CT</h2>"
            f"<div class='ss-sub'>{esc(workspace.path)} · written {now} · includes the curation at that time</div></div>"
            + "".join(body) + "</div></body></html>")


_EXTERNAL = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*['\"]?\s*(?:https?:)?//",
                       re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import\s+url\(\s*['\"]?(?:https?:)?//|@font-face", re.IGNORECASE)


def external_references(text: str) -> list[str]:
    """Tags or style rules outside the embedded plotly.js that would fetch from a network."""
    start, end = text.find("<script type='text/javascript'>"), text.find("</script>")
    if start >= 0 and end > start:   # plotly.js's own source holds URL strings it never fetches here
        text = text[:start] + text[end:]
    return [m.group(0) for m in _EXTERNAL.finditer(text)] + [m.group(0) for m in _CSS_IMPORT.finditer(text)]


def write_report(state, path) -> Path:
    """Write the report of `state` (an AppState) to `path` and return the path."""
    from synthscope.outputs import atomic_write_text

    return atomic_write_text(Path(path), report_html(state))   # whole or not at all, with the umask's mode
