"""The reliability diagram of the 2025 classifier's confidence, drawn for the page and the report.

The numbers are the core's (`synthscope.attribution.reliability_diagram`, on the dev cross-validation);
this module only lays them out: one plotly figure and one HTML table, shared by the 2025 view and the
static report so the two never differ.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from synthscope.metrics import Estimate
from synthscope_dashboard.markup import esc, estimate_row, fmt, metric_table

CURVE_STYLE = {"raw": {"color": "#9aa3b5", "dash": "dot", "symbol": "circle-open"},
               "calibrated": {"color": "#2f6fdf", "dash": "solid", "symbol": "circle"}}


def reliability_figure(diagram) -> go.Figure:
    """Accuracy against mean confidence per non-empty bin, raw and calibrated, beside the diagonal of
    perfect calibration; each point's hover and size say how many images the bin holds."""
    figure = go.Figure(layout=go.Layout(
        height=360, margin={"l": 50, "r": 10, "t": 40, "b": 45}, plot_bgcolor="white",
        title={"text": f"reliability of the confidence · dev, {diagram.n_splits}-fold cross-validation, "
                       f"n = {diagram.n_images:,}", "font": {"size": 14}},
        xaxis={"title": "mean confidence in the bin", "range": [0, 1.02], "gridcolor": "#e3e6ee"},
        yaxis={"title": "accuracy in the bin", "range": [0, 1.02], "gridcolor": "#e3e6ee"},
        legend={"x": 0.02, "y": 0.98}))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                line={"color": "#cf3d3d", "dash": "dash", "width": 1}, hoverinfo="skip"))
    largest = max(int(curve.bins["images"].max()) for curve in diagram.curves) or 1
    for curve in diagram.curves:
        bins = curve.bins[curve.bins["images"] > 0]
        style = CURVE_STYLE[curve.name]
        figure.add_trace(go.Scatter(
            x=bins["mean_confidence"], y=bins["accuracy"], mode="lines+markers",
            name=f"{curve.name} (ECE {curve.ece:.3f})", customdata=np.column_stack([bins["images"], bins["low"], bins["high"]]),
            line={"color": style["color"], "dash": style["dash"]},
            marker={"symbol": style["symbol"], "color": style["color"],
                    "size": 6 + 14 * np.sqrt(bins["images"].to_numpy() / largest)},
            hovertemplate=(f"{curve.name}<br>bin [%{{customdata[1]:.2f}}, %{{customdata[2]:.2f}})<br>"
                           "mean confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata[0]} images<extra></extra>")))
    return figure


def reliability_html(diagram) -> str:
    """ECE of each confidence (bootstrap CI, always-certain baseline) and the per-bin table."""
    rows = [estimate_row(f"ECE, {curve.name}", Estimate(f"ece_{curve.name}", curve.ece, *curve.ece_ci, diagram.n_images),
                         [("always certain (confidence 1)", diagram.always_certain_ece)],
                         "expected calibration error: the image-weighted mean |accuracy - confidence| over the bins "
                         "(0 = a confidence of 0.9 is right 9 times in 10)")
            for curve in (diagram.calibrated, diagram.raw)]
    raw, calibrated = diagram.raw.bins, diagram.calibrated.bins
    used = (raw["images"] > 0) | (calibrated["images"] > 0)
    cells = "".join(
        f"<tr data-bin='{i}'><td>[{raw['low'][i]:.2f}, {raw['high'][i]:.2f})</td>"
        f"<td class='ss-bin-images' data-curve='raw'>{int(raw['images'][i])}</td><td>{fmt(raw['mean_confidence'][i])}</td>"
        f"<td>{fmt(raw['accuracy'][i])}</td>"
        f"<td class='ss-bin-images' data-curve='calibrated'>{int(calibrated['images'][i])}</td>"
        f"<td>{fmt(calibrated['mean_confidence'][i])}</td><td>{fmt(calibrated['accuracy'][i])}</td></tr>"
        for i in np.flatnonzero(used.to_numpy()))
    bins = ("<table class='ss-table ss-reliability-bins'><caption>images per confidence bin (empty bins left out)"
            "</caption><tr><th>confidence bin</th><th>raw: images</th><th>mean confidence</th><th>accuracy</th>"
            "<th>calibrated: images</th><th>mean confidence</th><th>accuracy</th></tr>" + cells + "</table>")
    caption = (f"calibration of the confidence · dev, {diagram.n_splits}-fold cross-validation (out-of-fold) · "
               f"n = {diagram.n_images:,}, accuracy {diagram.accuracy:.3f}")
    return ("<div class='ss-reliability'>" + metric_table(rows, esc(caption)) + bins
            + "<div class='ss-status'>raw = the logistic regression's own probability; calibrated = after the "
              "temperature fit on out-of-fold dev logits (what the page and <code>attribute --scores</code> "
              "show). Calibration never changes a prediction.</div></div>")
