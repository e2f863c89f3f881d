"""What every view shares: lazy building, controls hidden in presentation mode, figure registry."""

from __future__ import annotations

import functools
import html
import logging
import traceback

import ipywidgets as widgets

from synthscope.metrics import Estimate
from synthscope_dashboard.state import AppState


class View:
    """A tab's content. `root` exists at once; the widgets inside it are made on first show."""

    title = "view"

    def __init__(self, state: AppState):
        self.state = state
        self.root = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.root.add_class("ss-view")
        self.controls: list[widgets.Widget] = []
        self.figures: dict[str, object] = {}   # name -> plotly FigureWidget, for export
        self.built = False
        state.observe(self._on_presentation, names="presentation")

    def ensure_built(self) -> None:
        if not self.built:
            self.built = True
            self.root.children = self.build()
            guard_buttons(self.root, self.state)
            self._on_presentation()

    def on_click(self, button: widgets.Button, handler) -> None:
        """`button.on_click(handler)`, with the handler's errors shown in the status line."""
        button.on_click(guarded(handler, self.state, button.description or "the action"))

    def build(self) -> list[widgets.Widget]:
        raise NotImplementedError

    def control(self, widget: widgets.Widget) -> widgets.Widget:
        """Register a widget that presentation mode hides."""
        self.controls.append(widget)
        return widget

    def evaluation_only(self, html_text: str, what: str = "Test-label scores") -> str:
        """See `evaluation_only`: `html_text` in evaluation mode, else a note saying it is hidden."""
        return evaluation_only(self.state, html_text, what)

    def _on_presentation(self, change=None) -> None:
        for widget in self.controls:
            widget.layout.display = "none" if self.state.presentation else None


_LOG = logging.getLogger("synthscope_dashboard")
_GUARDED = "_synthscope_guarded"


def guarded(handler, state, label: str):
    """A click handler whose exception becomes `state.status = "<label> failed: <message>"`.

    ipywidgets catches a handler's exception and prints its traceback into the kernel's output, which
    Voila shows nowhere: without this a failing button looks like a button that does nothing.
    """
    if getattr(handler, _GUARDED, False):
        return handler

    @functools.wraps(handler)
    def run(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:   # shown, logged to the server log, and the page stays usable
            _LOG.error("%s failed:\n%s", label, traceback.format_exc())
            message = str(error) or type(error).__name__
            state.status = f"{label} failed: {type(error).__name__}: {message}"
            return None

    setattr(run, _GUARDED, True)
    return run


def guard_buttons(widget, state) -> None:
    """Guard every click handler of every Button under `widget` (views register theirs with plain
    `on_click`; this runs once the view is built)."""
    seen: set[int] = set()
    stack = [widget]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, widgets.Button):
            dispatcher = item._click_handlers
            dispatcher.callbacks = [guarded(cb, state, item.description or item.tooltip or "the action")
                                    for cb in dispatcher.callbacks]
        stack.extend(getattr(item, "children", ()) or ())


EVALUATION_HIDDEN = ("<div class='ss-banner ss-info ss-eval-hidden'>{what} hidden: they are computed from the "
                     "test labels (ground-truth file) and are for evaluation only. Switch <b>Evaluation mode</b> "
                     "on in the header to see them; do not tune anything with it on.</div>")


def evaluation_only(state: AppState, html_text: str, what: str = "Test-label scores") -> str:
    """`html_text` when evaluation mode is on, else a note that says what is hidden and why.

    Every view that shows a number computed from test labels (ground truth) wraps it in this and
    redraws on `state.observe(..., names="evaluation_mode")`."""
    return html_text if state.shows_test_labels() else EVALUATION_HIDDEN.format(what=esc(what))


#: terms the pages use, with what they mean (the glossary on the overview and the tooltips)
GLOSSARY = {
    "space:score": "A score column is named space:score: the image space the distances are measured in "
                   "(e.g. pixels-norm, 64 px grey levels z-scored per image) and the score computed there "
                   "(e.g. distance, minus the distance to the nearest generated image). pixels-norm:distance "
                   "is that score in that space.",
    "pixels-norm:distance": "Score column: minus the distance from a real image to its nearest generated image, "
                            "measured on 64 px images whose grey levels are z-scored per image. Higher = closer "
                            "to a generated image = more likely used.",
    "Bonferroni ×N": " the p-value is multiplied by N, the number of score columns the column was "
                  "chosen among, so picking the best of N does not look like a finding by chance.",
    "scan-group bootstrap": "Confidence intervals that resample whole groups of neighbouring slices (found without "
                            "labels) instead of single images: slices of one scan are not independent, so this "
                            "CI is the honest, wider one.",
    "generator-free baseline": "The same test computed without the generated images (e.g. how close a real image "
                               "is to the other real images). If it separates used from not used as well, the "
                               "signal is in the split of the real images, not a fingerprint of training.",
    "(fx, fy) cycles/px": "A spatial frequency of the noise-residual spectrum: fx cycles per pixel across, fy "
                          "down (0.5 = the finest, every second pixel). Peaks there are a generator's fingerprint "
                          "(e.g. up-sampling grids).",
    "images:patches": "Score from patches: each real image is compared patch by patch with the generated "
                      "images, so a copied region counts even when the whole slice is not copied.",
    "images:registered": "Score after registration: each generated image is aligned (shifted, scaled) to the real "
                         "image before they are compared, so a shifted copy is still found.",
}
#: the text the pages print -> glossary entry (longest first when marking up)
_TERM_PATTERNS = (("pixels-norm:distance", "pixels-norm:distance"), ("images:registered", "images:registered"),
                  ("images:patches", "images:patches"), ("scan-group bootstrap", "scan-group bootstrap"),
                  ("generator-free baseline", "generator-free baseline"), ("cycles/px", "(fx, fy) cycles/px"),
                  ("Bonferroni", "Bonferroni ×N"))


def term(text: str, key: str | None = None) -> str:
    """`text` (HTML-escaped) with its glossary explanation as a tooltip."""
    return (f"<abbr class='ss-term' title='{esc(GLOSSARY[key or text])}'>{esc(text)}</abbr>")


def with_terms(html_text: str) -> str:
    """Put a tooltip on the first occurrence of each glossary term in already-escaped HTML text
    (outside tags)."""
    import re

    for text, key in _TERM_PATTERNS:
        pattern = re.compile(r"(?<![\w:-])" + re.escape(esc(text)) + r"(?![^<]*>)")
        html_text = pattern.sub(lambda m: term(text, key), html_text, count=1)
    return html_text


def glossary_html() -> str:
    items = "".join(f"<tr><th class='ss-term-name'>{esc(name)}</th><td>{esc(text)}</td></tr>" for name, text in GLOSSARY.items())
    return (f"<details class='ss-glossary'><summary>Glossary: the terms this page uses</summary>"
            f"<table class='ss-table'>{items}</table></details>")


def difference_colorbar(scale: int, left: str = "generated brighter", right: str = "real brighter") -> str:
    """A colour bar for `imaging.difference_image`: blue -scale .. white 0 .. red +scale grey levels."""
    return ("<div class='ss-colorbar' title='difference in grey levels (0-255), real minus generated'>"
            "<div class='ss-colorbar-bar'></div><div class='ss-colorbar-ticks'>"
            f"<span>−{int(scale)}</span><span>0</span><span>+{int(scale)}</span></div>"
            f"<div class='ss-colorbar-ticks'><span>{esc(left)}</span><span>{esc(right)}</span></div></div>")


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
