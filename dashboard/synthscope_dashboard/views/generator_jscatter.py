"""The main scatter drawn by jupyter-scatter (regl-scatterplot as an anywidget), for large workspaces.

Issue 22 item 1: plotly's FigureWidget misses a second per interaction from 50,000 points on (its trace
deltas travel as JSON, its selection events need private plotly names). jupyter-scatter keeps every point
in one binary float32 array (x, y, colour value, unused) and the selection, the filter and the hovered
point as synced traits, so:

- a box or lasso reaches the kernel as one binary int array (the `selection` trait), no bridge needed;
- the kernel's selection is shown with `Scatter.selection(rows)`: the row numbers, nothing else;
- the filter is `Scatter.filter(rows)`: the points stay in the page, only the kept rows are drawn;
- colour, Move, merge and split send the points array once (16 bytes a point), and nothing more;
- a hover sends one integer (`hovering`), a click selects the one point under the mouse, and a
  selection of exactly one image opens it beside its neighbours (the clicked-image panel).

Every point is drawn at its attribution row (index = row): no mapping from trace indices to rows.
Only public names of jupyter-scatter are used (`Scatter`, its `.xy/.color/.selection/.filter/.widget`
methods and the widget's synced `selection` / `hovering` traits); pyproject pins the range checked and
tests/test_jscatter_engine.py fails when they change.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from synthscope_dashboard.columns import BY_KEY, NUMBER
from synthscope_dashboard.views.generator_scatter import SCATTER_PX, THUMB_PX

ENGINES = ("auto", "plotly", "jscatter")
# auto: jupyter-scatter from this many generated images on; plotly below (its hover text, box outline and
# keyboard bridge, which the page's small-workspace browser tests pin). Measured in `make bench`'s browser
# section (README, dashboard scale): at 50,000 points plotly's Move and projection switch already miss 1 s.
JSCATTER_FROM = 20_000
NUMBER_MAP = "viridis"
HEIGHT = 520


def choose_engine(setting: str, n_points: int) -> str:
    """"plotly" or "jscatter" for an AppState.scatter_engine setting and a number of generated images."""
    if setting in ("plotly", "jscatter"):
        return setting
    return "jscatter" if n_points >= JSCATTER_FROM else "plotly"


class JScatterPart:
    """The jupyter-scatter engine's methods of `GeneratorsView` (used where `self.jscatter` is set)."""

    jscatter = None          # the jscatter.Scatter (None: the plotly engine draws the scatter)
    _jscatter_echo = False   # True while the kernel itself sets the widget's selection

    def _make_jscatter(self):
        import jscatter

        xy = self.data.projections[self.state.projection]
        scatter = jscatter.Scatter(x=np.asarray(xy[:, 0], dtype=np.float32), y=np.asarray(xy[:, 1], dtype=np.float32),
                                   height=HEIGHT, width=SCATTER_PX, size=3 if self.data.n > 5000 else 6,
                                   opacity_unselected=0.25, lasso_initiator=False, mouse_mode="lasso",
                                   tooltip=False, axes=False, reticle=False,
                                   zoom_on_selection=False, background_color="white",
                                   transition_points=False)
        self.jscatter = scatter
        self._jscatter_colors()
        if len(self.visible) < self.data.n:
            scatter.filter(self.visible)
        widget = scatter.widget
        widget.observe(self._on_jscatter_selection, names="selection")
        widget.observe(self._on_jscatter_hover, names="hovering")
        widget.add_class("ss-jscatter")
        self.scatter_title = widgets.HTML()
        self.scatter_title.add_class("ss-scatter-title")
        self._show_title()
        return widget

    def _jscatter_colors(self) -> None:
        """Colour by the colour column: categories as codes with one colour each, numbers on viridis."""
        key = self._color_key()
        if BY_KEY[key].kind == NUMBER:
            values = np.asarray(self.columns.values(key), dtype=np.float64)
            shown = values[self.visible]
            finite = shown[np.isfinite(shown)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            self.jscatter.legend(True, "top-right")   # its colour bar
            self.jscatter.color(by=np.nan_to_num(values, nan=low), map=NUMBER_MAP,
                                norm=(low, high if high > low else low + 1))
            return
        # the codes as numbers on a list of colours (code c → colour c): jupyter-scatter's categorical path builds
        # a Python dict over every point (0.6 s of kernel time at 1M); the legend is the page's own, above
        codes, colors = self._color_codes()
        self.jscatter.legend(False)
        self.jscatter.color(by=np.asarray(codes, dtype=np.float32), map=list(colors) or ["#888888"],
                            norm=(0.0, float(max(len(colors) - 1, 1))))

    def _show_title(self) -> None:
        self.scatter_title.value = f"<div class='ss-plot-title'><b>{self._title()}</b></div>"

    def _on_jscatter_selection(self, change) -> None:
        """The page's box, lasso or click: the rows it selected (point index = attribution row)."""
        if self._jscatter_echo:
            return
        rows = np.zeros(0, dtype=np.int64) if change["new"] is None else np.asarray(change["new"], dtype=np.int64)
        rows = np.unique(rows[(rows >= 0) & (rows < self.data.n)])
        rows = rows[np.isin(rows, self.visible)] if len(self.visible) < self.data.n else rows
        self.state.select(rows)
        if rows.size == 1:
            self.show_detail(int(rows[0]))   # a click selects the one point under the mouse: open it

    def _on_jscatter_hover(self, change) -> None:
        row = change["new"]
        if row is None or not 0 <= int(row) < self.data.n:
            return
        row = int(row)
        self.preview.value = self.png(row, THUMB_PX)
        self.preview_caption.value = f"<div class='ss-caption' style='text-align:left'>{self._describe(row)}</div>"

    def _push_selection_to_jscatter(self) -> None:
        selected = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        current = self.jscatter.widget.selection
        current = np.zeros(0, dtype=np.int64) if current is None else np.asarray(current, dtype=np.int64)
        if np.array_equal(np.sort(current), np.asarray(selected, dtype=np.int64)):
            return   # the page selected these itself
        self._jscatter_echo = True
        try:
            self.jscatter.selection(np.asarray(selected, dtype=np.int64) if len(selected) else None)
        finally:
            self._jscatter_echo = False

    def _jscatter_projection(self) -> None:
        xy = self.data.projections[self.state.projection]
        self.jscatter.xy(x=np.asarray(xy[:, 0], dtype=np.float32), y=np.asarray(xy[:, 1], dtype=np.float32),
                         animate=False)   # a 3 s transition of a million points is no help in software GL
        self._show_title()

    def _jscatter_filter(self) -> None:
        self.jscatter.filter(self.visible if len(self.visible) < self.data.n else None)
        self._jscatter_colors()   # a number's colour range follows the rows shown
        self._show_title()
