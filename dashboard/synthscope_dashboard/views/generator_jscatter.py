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

- the hovered image shows beside the cursor (JScatterCompanion, PNG bytes of that one image), and the
  companion answers the plotly engine's keys (0-9 move the selection to that cluster, Ctrl+Z undoes);
- "Save figures" saves a plotly figure of SAVED_POINTS points drawn at random (SubsampleFigure);
- the page's "scatter:" control (AppState.scatter_engine) redraws the plot with the other engine.

Where the time goes at 1M (README, dashboard scale): after the scores went on request, the kernel's
share of a Move is ~0.4 CPU s; the page's is jupyter-scatter 1.0.1 decoding the points array into one
JavaScript array per point, then regl-scatterplot's upload and redraw on software GL.

Every point is drawn at its attribution row (index = row): no mapping from trace indices to rows.
Only public names of jupyter-scatter are used (`Scatter`, its `.xy/.color/.selection/.filter/.widget`
methods and the widget's synced `selection` / `hovering` traits); pyproject pins the range checked and
tests/test_jscatter_engine.py fails when they change.
"""

from __future__ import annotations

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from synthscope_dashboard.columns import BY_KEY, NUMBER
from synthscope_dashboard.views.common import banner, guarded
from synthscope_dashboard.views.generator_scatter import SCATTER_PX, THUMB_PX
from synthscope_dashboard.views.plot_selection import SelectionBridge, mirror_selection

ENGINES = ("auto", "plotly", "jscatter")
# auto: jupyter-scatter from this many generated images on; plotly below (its hover text, box outline and
# keyboard bridge, which the page's small-workspace browser tests pin). Measured in `make bench`'s browser
# section (README, dashboard scale): at 50,000 points plotly's Move and projection switch already miss 1 s.
JSCATTER_FROM = 20_000
NUMBER_MAP = "viridis"
HEIGHT = 520
# from this many generated images on, the scores (ARI / NMI with bootstrap CIs: 10 s of kernel time per move at
# 200,000 images, 47 CPU s at 1,000,000) are computed when asked ("Update scores"), not at load and after every
# curation step: Move then costs the recolouring. Below it they follow every step, as before.
LAZY_SUMMARIES_FROM = 100_000
SAVED_POINTS = 20_000   # "Save figures" of this engine: a plotly figure of this many points drawn at random
ENGINE_LABELS = [("scatter: auto", "auto"), ("scatter: plotly", "plotly"), ("scatter: jupyter-scatter", "jscatter")]


class JScatterCompanion(anywidget.AnyWidget):
    """Beside the jupyter-scatter plot (the closest `.ss-scatter-box`'s `.ss-jscatter`): the hovered image as a
    thumbnail beside the cursor, and the keys of the plotly engine's bridge (plot_selection.py): Ctrl+Z (or
    Cmd+Z) sends "undo", a digit 0-9 sends "assign" with that cluster number, while the plot is on screen
    and no text box has the focus. The thumbnail is PNG bytes (a binary buffer, no base64) for `row`; it
    shows only while the cursor is over the plot and `row` >= 0 (the kernel sets -1 when no point is hovered)."""

    _esm = """
    export default {
      render({ model, el }) {
        const box = document.createElement('div');
        box.className = 'ss-hover-thumb';
        box.style.cssText = 'position:fixed;z-index:1000;display:none;pointer-events:none;background:white;' +
          'border:1px solid #c8ccd6;box-shadow:0 2px 6px rgba(0,0,0,.25);padding:3px;font:11px sans-serif;max-width:160px';
        const img = document.createElement('img');
        img.width = 128; img.height = 128;
        const caption = document.createElement('div');
        box.append(img, caption);
        document.body.appendChild(box);
        let x = 0, y = 0, over = false, url = null;
        const plot = () => { const b = el.closest('.ss-scatter-box'); return b && b.querySelector('.ss-jscatter'); };
        const place = () => {
          let left = x + 18, top = y + 18;
          if (left + 170 > innerWidth) left = x - 178;
          if (top + 190 > innerHeight) top = y - 198;
          box.style.left = left + 'px'; box.style.top = top + 'px';
        };
        const show = () => {
          const on = over && url !== null && model.get('row') >= 0;
          box.style.display = on ? 'block' : 'none';
          if (on) place();
        };
        const image = () => {
          const bytes = model.get('thumbnail');
          if (url) URL.revokeObjectURL(url);
          url = bytes && bytes.byteLength ? URL.createObjectURL(new Blob([bytes], { type: 'image/png' })) : null;
          img.src = url || '';
          caption.innerHTML = model.get('caption');
          box.dataset.row = String(model.get('row'));
          show();
        };
        const move = (e) => {
          const p = plot();
          over = !!(p && p.offsetParent && e.target && p.contains(e.target));
          x = e.clientX; y = e.clientY;
          show();
        };
        const typing = (t) => t && t.closest && (t.closest('input, textarea, select, [contenteditable="true"]') !== null);
        const keys = (e) => {
          const p = plot();
          if (!model.get('answers_keys') || !p || !p.offsetParent || typing(e.target) || e.altKey) return;
          if ((e.ctrlKey || e.metaKey) && !e.shiftKey && (e.key === 'z' || e.key === 'Z')) {
            e.preventDefault();
            model.send({ event: 'undo' });
          } else if (!e.ctrlKey && !e.metaKey && /^[0-9]$/.test(e.key)) {
            e.preventDefault();
            model.send({ event: 'assign', cluster: Number(e.key) });
          }
        };
        model.on('change:thumbnail', image);
        model.on('change:row', image);
        document.addEventListener('mousemove', move, true);
        document.addEventListener('keydown', keys);
        image();
        return () => {
          document.removeEventListener('mousemove', move, true);
          document.removeEventListener('keydown', keys);
          if (url) URL.revokeObjectURL(url);
          box.remove();
        };
      }
    }
    """
    thumbnail = traitlets.Bytes(b"").tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    row = traitlets.Int(-1).tag(sync=True)
    answers_keys = traitlets.Bool(True).tag(sync=True)

    def __init__(self, on_key=None, **kwargs):
        super().__init__(**kwargs)
        self._on_key = on_key
        self.on_msg(self._message)

    def _message(self, widget, content, buffers) -> None:
        if self._on_key is not None and isinstance(content, dict) and content.get("event") in ("undo", "assign"):
            self._on_key(content["event"], content)


class SubsampleFigure:
    """What "Save figures" saves for the jupyter-scatter engine (export.py calls `to_dict()`): a plotly figure of
    `SAVED_POINTS` points drawn at random (fixed seed) from those shown, coloured as on the page, built only
    when saved. An offline HTML of a million points would be ~100 MB and its PNG minutes of kaleido."""

    def __init__(self, view):
        self.view = view

    def to_dict(self) -> dict:
        import plotly.graph_objects as go

        view = self.view
        rows = view.visible
        if len(rows) > SAVED_POINTS:
            rows = np.sort(np.random.default_rng(0).choice(rows, SAVED_POINTS, replace=False))
        xy = view.data.projections[view.state.projection]
        marker = view._marker()   # the plotly engine's colours, for the rows it shows
        position = np.searchsorted(view.visible, rows)
        marker["color"] = np.asarray(marker["color"])[position]
        figure = go.Figure(go.Scattergl(x=xy[rows, 0], y=xy[rows, 1], mode="markers", text=view._hover_text()[rows],
                                        hovertemplate="%{text}<extra></extra>",
                                        marker={"size": 4, "opacity": 0.85, "line": {"width": 0}, **marker}),
                           layout=go.Layout(height=520, width=SCATTER_PX, showlegend=False, plot_bgcolor="white",
                                            title={"text": view._title() + (f" · {len(rows):,} drawn at random"
                                                                            if len(rows) < len(view.visible) else ""),
                                                   "font": {"size": 14}},
                                            xaxis={"showgrid": False, "zeroline": False},
                                            yaxis={"showgrid": False, "zeroline": False}))
        return figure.to_dict()


def choose_engine(setting: str, n_points: int) -> str:
    """"plotly" or "jscatter" for an AppState.scatter_engine setting and a number of generated images."""
    if setting in ("plotly", "jscatter"):
        return setting
    return "jscatter" if n_points >= JSCATTER_FROM else "plotly"


class JScatterPart:
    """The jupyter-scatter engine's methods of `GeneratorsView` (used where `self.jscatter` is set), and the
    engine switch: `_make_main_scatter` draws the main scatter with the engine AppState.scatter_engine picks."""

    jscatter = None          # the jscatter.Scatter (None: the plotly engine draws the scatter)
    companion = None         # its JScatterCompanion: hover thumbnail beside the cursor, keys
    _jscatter_echo = False   # True while the kernel itself sets the widget's selection
    _summaries_stale = False

    def _make_engine_control(self) -> widgets.Dropdown:
        control = widgets.Dropdown(options=ENGINE_LABELS, value=self.state.scatter_engine,
                                   layout=widgets.Layout(width="210px"),
                                   tooltip="auto: jupyter-scatter (WebGL, binary arrays) from "
                                           f"{JSCATTER_FROM:,} generated images, plotly below")
        control.add_class("ss-scatter-engine")
        control.observe(lambda c: setattr(self.state, "scatter_engine", c["new"]), names="value")
        self.state.observe(self._on_scatter_engine, names="scatter_engine")
        return control

    def _make_main_scatter(self) -> list:
        """The main scatter's widgets (title or figure, then its companion or bridge) for the chosen engine."""
        state = self.state
        self.engine = choose_engine(state.scatter_engine, self.data.n)
        self.jscatter = None
        if self.engine == "jscatter":
            self.scatter, self.bridge = None, None   # selection, hover and click are the widget's traits
            if getattr(self, "hover_thumbnail", None) is not None:   # the plotly engine's, before a switch
                self.hover_thumbnail.close()
            widget = self._make_jscatter()
            self.figures["scatter"] = SubsampleFigure(self)
            return [self.scatter_title, widget, self.companion]
        if self.companion is not None:   # the jupyter-scatter engine's, before a switch
            self.companion.close()
        self.companion = None
        self.scatter = self._make_scatter()
        self.figures["scatter"] = self.scatter
        # the browser's selection reaches the kernel through the bridge (see plot_selection.py)
        self.bridge = SelectionBridge(trace_rows=self._trace_rows, on_change=self._on_browser_selection,
                                      on_escape=self._on_escape, on_key=guarded(self._on_key, state, "the key"),
                                      revision=self.revision,
                                      on_report=lambda points: mirror_selection(self.scatter, points),
                                      digest=self._trace_digests, on_stale=self._redraw_stale_scatter,
                                      on_click=self.show_detail)
        self.scatter.bridge = self.bridge
        return [self.scatter, self.bridge, self._make_hover_thumbnail()]   # the image beside the cursor

    def _on_scatter_engine(self, change=None) -> None:
        """The page's engine control: the other engine draws the same points, colours and selection."""
        if getattr(self, "engine_control", None) is not None and self.engine_control.value != self.state.scatter_engine:
            self.engine_control.value = self.state.scatter_engine
        if not self.built or choose_engine(self.state.scatter_engine, self.data.n) == self.engine:
            return
        old = [w for w in self.scatter_box.children if w is not self.legend]
        if self.jscatter is not None:
            old.append(self.jscatter.widget)
        self.scatter_box.children = [self.legend, *self._make_main_scatter()]
        for widget in old:
            if widget is not getattr(self, "scatter_title", None):
                widget.close()
        self._push_selection_to_plot()
        self.state.status = f"scatter drawn by {'jupyter-scatter' if self.jscatter is not None else 'plotly'}"

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
        if self.companion is not None:
            self.companion.close()
        self.companion = JScatterCompanion(on_key=guarded(self._on_jscatter_key, self.state, "the key"))
        if getattr(self, "scatter_title", None) is None:
            self.scatter_title = widgets.HTML()
            self.scatter_title.add_class("ss-scatter-title")
        self._show_title()
        return widget

    def _page_rows(self, rows) -> np.ndarray:
        """Rows the page sent (a selection): in range, sorted, unique, and only those the filter keeps."""
        rows = np.zeros(0, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < self.data.n)]
        if rows.size > 1 and not np.all(rows[1:] > rows[:-1]):   # the page's order: sort only when needed
            rows = np.unique(rows)
        return rows[np.isin(rows, self.visible)] if len(self.visible) < self.data.n else rows

    def _on_jscatter_key(self, event: str, content: dict) -> None:
        """A digit or Ctrl+Z over the jupyter-scatter plot: as on the plotly engine (`_on_key`); what the plot
        shows is the widget's synced selection, which arrived before the key (one websocket, in order)."""
        self._on_key(event, self._page_rows(self.jscatter.widget.selection), content)

    def _refresh_summaries(self, force: bool = False) -> None:
        """The scores (ARI / NMI with bootstrap CIs) and the clusters table after a curation step. Below
        LAZY_SUMMARIES_FROM images both at once; from it the clusters table at once and the scores on request
        ("Update scores"): their bootstrap is ~10 s of kernel time at 200,000 images, ~45 s at 1,000,000."""
        self.cluster_table.value = self.cluster_table_html()
        if force or self.data.n < LAZY_SUMMARIES_FROM:
            self._summaries_stale = False
            self.metrics.value = self.metrics_html()
        elif not self._summaries_stale:
            self._summaries_stale = True
            when = "before the last curation step" if self.metrics.value else "not computed yet"
            self.metrics.value = banner(f"Scores {when}: with {self.data.n:,} images they are computed on request "
                                        "(Update scores).", "warn") + self.metrics.value
        self.summaries_button.layout.display = "" if self._summaries_stale else "none"

    def _make_summaries_button(self) -> widgets.Button:
        self.summaries_button = widgets.Button(description="Update scores", icon="refresh",
                                               layout=widgets.Layout(display="none"))
        self.summaries_button.add_class("ss-update-scores")
        self.summaries_button.on_click(guarded(lambda _: self._refresh_summaries(force=True), self.state,
                                               "Update scores"))
        return self.summaries_button

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
        rows = self._page_rows(change["new"])
        self.state.select(rows)
        if rows.size == 1:
            self.show_detail(int(rows[0]))   # a click selects the one point under the mouse: open it

    def _on_jscatter_hover(self, change) -> None:
        """The hovered point: its thumbnail beside the cursor (the companion) and in the preview panel."""
        row = change["new"]
        if row is None or not 0 <= int(row) < self.data.n:
            self.companion.row = -1
            return
        row = int(row)
        png, caption = self.png(row, THUMB_PX), self._describe(row)
        with self.companion.hold_sync():
            self.companion.thumbnail, self.companion.caption, self.companion.row = png, caption, row
        self.preview.value = png
        self.preview_caption.value = f"<div class='ss-caption' style='text-align:left'>{caption}</div>"

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
