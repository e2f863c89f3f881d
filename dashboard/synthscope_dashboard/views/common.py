"""What every view shares: lazy building, controls hidden in presentation mode, figure registry."""

from __future__ import annotations

import functools
import logging
import traceback

import anywidget
import ipywidgets as widgets
import traitlets

# the HTML helpers live in markup.py (the static report uses them too); the views import them from here
from synthscope_dashboard.markup import STYLE, banner, esc, estimate_row, fmt, metric_table  # noqa: F401
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

    @staticmethod
    def transient_control(widget: widgets.Widget) -> widgets.Widget:
        """A control made again at each redraw (a gallery card's button): presentation mode hides it through
        its class (STYLE), so the view keeps no list of the old ones."""
        widget.add_class("ss-control")
        return widget

    def evaluation_only(self, html_text: str, what: str = "Test-label scores") -> str:
        """See `evaluation_only`: `html_text` in evaluation mode, else a note saying it is hidden."""
        return evaluation_only(self.state, html_text, what)

    def _on_presentation(self, change=None) -> None:
        for widget in self.controls:
            widget.layout.display = "none" if self.state.presentation else None


class ScrollIntoView(anywidget.AnyWidget):
    """Scrolls the page so that the panel around it (its closest ancestor matching `selector`) is on screen
    each time `request` grows; `handled` is the last request the page acted on (a request that arrives
    before the page has drawn this widget is acted on when it is drawn). The panel's images arrive after
    the request, so the page follows the panel's growth for a moment, scrolling as little as it can."""

    _esm = """
    export default {
      render({ model, el }) {
        let until = 0, tries = 0;
        const panel = () => el.closest(model.get("selector"));
        const scroll = () => { const p = panel(); if (p && p.offsetParent) p.scrollIntoView({ block: "nearest" }); };
        const observer = new ResizeObserver(() => { if (Date.now() < until) scroll(); });
        const request = () => {
          const wanted = model.get("request");
          if (model.get("handled") >= wanted) return;
          const p = panel();
          if (!p || !p.offsetParent) { if (tries++ < 40) setTimeout(request, 100); return; }   // not drawn yet
          model.set("handled", wanted);
          model.save_changes();
          until = Date.now() + 3000;
          observer.observe(p);
          scroll();
        };
        model.on("change:request", () => { tries = 0; request(); });
        request();
        return () => observer.disconnect();
      }
    }
    """
    selector = traitlets.Unicode(".ss-detail").tag(sync=True)
    request = traitlets.Int(0).tag(sync=True)
    handled = traitlets.Int(0).tag(sync=True)


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
                     "test labels (ground-truth file) and are for evaluation only.<span class='ss-eval-switch-hint'> "
                     "Switch <b>Evaluation mode</b> on in the header to see them; do not tune anything with it "
                     "on.</span></div>")   # presentation mode hides the switch, and so the hint (STYLE)


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
