"""HTML helpers without widgets: escaping, number formats, metric tables with CIs and baselines, banners,
the page's style sheet, and the 2025 subset tables. The views (through views/common.py) and the static
report (report.py) both use them, so the report never imports a view.
"""

from __future__ import annotations

import html

from synthscope.metrics import Estimate


def esc(text) -> str:
    return html.escape(str(text))


def fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def estimate_row(label: str, estimate: Estimate, baselines: list[tuple[str, float]] = (), help_text: str = "") -> str:
    base = " · ".join(f"{esc(name)} {fmt(value)}" for name, value in baselines)
    return (f"<tr title='{esc(help_text)}'><td class='ss-metric'>{esc(label)}</td>"
            f"<td class='ss-value' data-metric='{esc(estimate.name)}'>{fmt(estimate.value)}</td>"
            f"<td class='ss-ci'>[{fmt(estimate.ci_low)}, {fmt(estimate.ci_high)}]</td>"
            f"<td class='ss-base'>{base}</td></tr>")


def metric_table(rows: list[str], caption: str = "") -> str:
    head = ("<tr><th>metric</th><th>value</th><th>95% bootstrap CI</th><th>trivial baselines</th></tr>")
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f"<table class='ss-table'>{cap}{head}{''.join(rows)}</table>"


#: plotly.js config of every plot: the page's, the saved figures' and the report's (issue 22 item 5). plotly.js
#: 3 shows a "Share chart..." button that uploads the chart to Plotly Cloud and a logo linking to plotly.com
#: unless told not to; nothing here may leave the machine.
PLOT_CONFIG = {"displaylogo": False, "showSendToCloud": False, "modeBarButtonsToRemove": ["sendChartToCloud"],
               "responsive": True}


def banner(text: str, kind: str) -> str:
    """kind: ok | warn | bad | info"""
    return f"<div class='ss-banner ss-{kind}'>{text}</div>"


STYLE = """
<style>
.ss-app { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color:#1f2430; }
.ss-header { background:#1f2a44; color:white; padding:10px 16px; border-radius:6px; }
.ss-header h2 { margin:0; font-size:20px; color:white; }
.ss-header .ss-sub { color:#c9d3ea; font-size:12px; }
.ss-table { border-collapse:collapse; font-size:13px; margin:4px 0; }
.ss-table caption { text-align:left; font-weight:600; padding:4px 0; }
.ss-table th { text-align:left; background:#eef1f7; padding:3px 8px; font-weight:600; }
.ss-table td { padding:3px 8px; border-bottom:1px solid #e3e6ee; }
.ss-value { font-weight:700; font-variant-numeric: tabular-nums; }
.ss-ci, .ss-base { color:#5b6478; font-variant-numeric: tabular-nums; }
.ss-banner { padding:8px 12px; border-radius:6px; margin:4px 0; font-size:14px; }
.ss-ok { background:#e7f6ec; border-left:5px solid #2e9d57; }
.ss-warn { background:#fff5e0; border-left:5px solid #e39b17; }
.ss-bad { background:#fdeaea; border-left:5px solid #cf3d3d; }
.ss-info { background:#eaf1fd; border-left:5px solid #3d6fcf; }
.ss-swatch { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:4px; vertical-align:middle; }
.ss-legend-item { display:inline-block; font-size:12px; margin-right:10px; white-space:nowrap; }
.ss-caption { font-size:11px; color:#5b6478; text-align:center; }
.ss-status { font-size:12px; color:#394260; }
.ss-badge { font-size:12px; color:#20305a; background:#eef1f8; border:1px solid #cfd6e6; border-radius:10px; padding:1px 8px; }
.ss-card { border:1px solid #e3e6ee; border-radius:6px; padding:6px 10px; margin:4px; background:white; }
.ss-app .lm-TabBar-tab { flex: 0 0 auto !important; min-width: 190px !important; max-width: none !important; font-size:14px; }
/* no icon font: Voila's Font Awesome comes from a CDN, which offline machines cannot reach */
.ss-app .jupyter-button i.fa { display: none; }
.ss-app .jupyter-button { width: auto; min-width: 90px; padding: 0 12px; }
/* a width: 100% widget keeps ipywidgets' 2 px side margins: 4 px too wide, the tab scrolled sideways */
.ss-app .ss-score-table { margin-left: 0; margin-right: 0; }
.ss-score-table select { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px; }
.ss-app details summary { cursor: pointer; font-size: 13px; margin: 4px 0; }
.ss-presenting .modebar-container, .ss-presenting .modebar { display:none !important; }
/* a box or lasso outline is no handle (editSelection is off): plotly.js still gives its transparent fill
   pointer-events: all, so a box or lasso started inside the previous outline never reached the drag layer and
   the drag selected the page's text instead (issue 22 defect 12) */
.ss-scatter-box .selectionlayer path { pointer-events: none !important; }
.ss-scatter-box .js-plotly-plot { user-select: none; -webkit-user-select: none; }
/* presentation mode (issue 22 defect 9): no control, selection outline, local path or hint at a hidden switch */
.ss-presenting .ss-control, .ss-presenting .ss-sub, .ss-presenting .ss-eval-switch-hint { display:none !important; }
.ss-presenting .js-plotly-plot :is(.selectionlayer, .outline-controllers, .select-outline) { display:none; }
.ss-term { text-decoration: underline dotted #5b6478; cursor: help; }
.ss-glossary th { white-space:nowrap; vertical-align:top; background:none; }
.ss-glossary td { font-size:12px; color:#394260; max-width:900px; }
.ss-eval-label { font-size:11px; line-height:1.2; color:#8a2a2a; }
.ss-eval-banner { background:#fdeaea; border:2px solid #cf3d3d; font-weight:600; }
.ss-colorbar { width:150px; font-size:10px; color:#5b6478; }
.ss-colorbar-bar { height:8px; border:1px solid #c8ccd6; background:linear-gradient(to right, rgb(0,0,255), white, rgb(255,0,0)); }
.ss-colorbar-ticks { display:flex; justify-content:space-between; }
.ss-thumb { border:2px solid transparent; border-radius:4px; margin:2px; }
.ss-thumb-caption { font-size:10px; line-height:1.3; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:126px; }
.ss-thumb-focused { border-color:#1f2a44; }
.ss-thumb .jupyter-button { width:124px !important; min-width:0 !important; font-size:11px; padding:0 4px; }
.ss-guide ol { margin:4px 0 4px 18px; padding:0; }
</style>
"""


def confusion_html(confusion) -> str:
    """Counts, dev subset (rows) x predicted subset (columns); the diagonal is correct."""
    head = "".join(f"<th>{esc(c)}</th>" for c in confusion.columns)
    rows = []
    for subset, counts in confusion.iterrows():
        cells = "".join(
            f"<td class='ss-value' data-true='{esc(subset)}' data-predicted='{esc(col)}' "
            f"style='background:{'#e7f6ec' if col == subset else ('#fdeaea' if value else 'white')}'>{int(value)}</td>"
            for col, value in counts.items())
        rows.append(f"<tr><th>{esc(subset)}</th>{cells}<td class='ss-ci'>{int(counts.sum())}</td></tr>")
    return ("<table class='ss-table ss-confusion'><caption>dev cross-validated confusion matrix (rows: the subset an "
            "image came from; columns: the subset predicted by a classifier that never saw it)</caption>"
            f"<tr><th>subset \\ predicted</th>{head}<th>images</th></tr>" + "".join(rows) + "</table>")


def accuracy_table(report, caption: str) -> str:
    baselines = report.baselines
    row = estimate_row("accuracy", report.estimates["accuracy"],
                       [("majority subset", baselines["majority_class"]["accuracy"]),
                        ("uniform random", baselines["random"]["accuracy"])])
    return metric_table([row], caption)
