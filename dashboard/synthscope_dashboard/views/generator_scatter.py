"""The generator view's scatter: its figure and markers, plotly's own selection callbacks, the hover
preview and the clicked image with its nearest neighbours.

A part of `GeneratorsView` (views/generators.py), which inherits it: the methods are the view's own,
moved here unchanged so that the view's module holds the controls and the curation. The scatter's
selection reaches the kernel through the bridge (see plot_selection.py), which the view wires in build().
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from synthscope_dashboard.columns import BY_KEY, NUMBER, categories
from synthscope_dashboard.imaging import (UNLABELLED_COLOR, cluster_color, known_label_color, png_bytes,
                                         thumbnail_data_url)
from synthscope_dashboard.views.common import ScrollIntoView, esc
from synthscope_dashboard.views.hover_thumbnail import HoverThumbnail
from synthscope_dashboard.views.plot_selection import BridgedFigureWidget, clear_outline, rows_digest

NUMBER_SCALE = "Viridis"
THUMB_PX, FULL_PX = 128, 512
SCATTER_PX = 660   # fits its box (56 % of the page) at 1280 px
N_NEIGHBOURS = 6
PNG_CACHE = 512   # PNG bytes kept per page (LRU): hovering back and forth decodes nothing


class ScatterPart:
    """The scatter's methods of `GeneratorsView` (state, data, columns, visible, bridge are the view's)."""

    def _make_scatter(self) -> go.FigureWidget:
        data, state = self.data, self.state
        xy = data.projections[state.projection]
        rows = self.visible
        figure = BridgedFigureWidget(
            # customdata: each point's row, read by the page's events (the rows it shows, whatever the kernel's copy)
            data=[go.Scattergl(x=xy[rows, 0], y=xy[rows, 1], mode="markers", text=self._hover_text()[rows],
                               customdata=rows.astype(np.int32),
                               hovertemplate="%{text}<extra></extra>", meta=self.revision(),
                               marker={"size": 5 if data.n > 5000 else 7, "opacity": 0.85,
                                       "line": {"width": 0}, **self._marker()},
                               selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 0.25}})],
            # 660 px wide: the widget draws a plot before it is in the page, so one without a width got plotly's
            # default 700 px, which at 1280 px ran 20 px into the panel beside it (issue 22 defect 11)
            layout=go.Layout(height=520, width=SCATTER_PX, margin={"l": 30, "r": 10, "t": 36, "b": 30}, dragmode="lasso",
                             title={"text": self._title(), "font": {"size": 14}}, showlegend=False,
                             plot_bgcolor="white", xaxis={"showgrid": False, "zeroline": False},
                             yaxis={"showgrid": False, "zeroline": False}))
        for trace in figure.data:   # every trace, or Voila drops some selections
            trace.on_selection(self._on_plot_selection)
            trace.on_deselect(lambda trace, points: self._on_plot_selection(trace, points, None))
            trace.on_hover(self._on_hover)
            trace.on_click(self._on_click)
        return figure

    def _set_title(self) -> None:
        if self.jscatter is not None:
            self._show_title()
        else:
            self.scatter.layout.title.text = self._title()

    def _hover_text(self) -> np.ndarray:
        frame = self.data.frame
        return (frame["split"] + " · " + frame["image_id"] + "<br>" + frame["group"]).to_numpy()

    def revision(self) -> str:
        """The version of the scatter's points (trace meta): other rows after every refilter."""
        return f"points-{self._revision}"

    def _trace_rows(self) -> list[np.ndarray]:
        """The attribution rows behind each trace's points (one trace holds the rows the filter keeps)."""
        return [self.visible]

    def _trace_digests(self) -> list[str]:
        """What the page's traces must hold (plot_selection.rows_digest of meta and customdata)."""
        return [rows_digest(self.revision(), rows) for rows in self._trace_rows()]

    _redraws = 0   # scatters drawn again because the page's traces held other rows than the kernel's
    MAX_REDRAWS = 3

    def _redraw_stale_scatter(self) -> None:
        """The page's scatter holds other rows than the kernel's, or none: draw it again as a new figure.

        Issue 22, after a cold load under load: plotly.py opens a FigureWidget's comm with an empty figure and
        sends its data in two updates after; anywidget holds the model's messages until plotly's 5 MB module
        is imported, and a view made meantime draws the empty state and never redraws for the data (the
        "empty scatter"). And a page that takes the widget state from the kernel (Voila's widget restore) gets
        the figure as it was built, not as it is now. A new figure's state is the current one."""
        if self.jscatter is not None or self.scatter is None or self._redraws >= self.MAX_REDRAWS:
            return
        self._redraws += 1
        old = [w for w in self.scatter_box.children if w is not self.legend]
        self.scatter_box.children = [self.legend, *self._make_main_scatter()]
        for widget in old:
            widget.close()
        self._push_selection_to_plot()
        self.state.status = "the scatter in the page was out of date (an older version of its points): drawn again"

    def _title(self) -> str:
        key = self._color_key()
        mode = self.columns.label(key) + (" (grey = unlabelled)" if key == "known" else "")
        shown = (f"{len(self.visible):,} of {self.data.n:,}" if len(self.visible) < self.data.n
                 else f"{self.data.n:,}")
        return f"{shown} generated images · {self.state.projection.upper()} · colour = {mode}"

    def _category_colors(self, key: str) -> tuple[np.ndarray, list[str], list[str]]:
        """(code per row, colour per code, name per code) of a category column."""
        if key == "cluster":
            assignments = np.asarray(self.state.assignments)
            n_colors = int(assignments.max()) + 1
            return assignments, [cluster_color(c) for c in range(n_colors)], \
                [self.state.cluster_name(c) for c in range(n_colors)]
        if key == "known" and self._known_colors is not None:
            return self._known_colors
        values, codes = categories(self.columns.values(key))
        named = [v for v in values if v != ""]
        colors = [known_label_color(i) for i in range(len(named))] + ([UNLABELLED_COLOR] if "" in values else [])
        names = [str(v) for v in named] + (["unlabelled"] if "" in values else [])
        result = (codes, colors, names)
        if key == "known":
            self._known_colors = result
        return result

    def _color_codes(self) -> tuple[np.ndarray, list[str]]:
        """One integer per point and the colour of each integer (numbers, not 20,000 colour strings:
        plotly validates every string, which costs seconds)."""
        codes, colors, names = self._category_colors(self._color_key())
        self._known_values = names
        return codes, colors

    def _marker(self) -> dict:
        key = self._color_key()
        if BY_KEY[key].kind == NUMBER:
            values = self.columns.values(key)
            shown = values[self.visible]
            finite = shown[np.isfinite(shown)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            return {"color": shown, "colorscale": NUMBER_SCALE, "cmin": low, "cmax": high if high > low else low + 1,
                    "showscale": True, "colorbar": {"title": {"text": self.columns.label(key)}, "thickness": 12}}
        codes, colors = self._color_codes()
        n = max(len(colors), 1)
        scale = []
        for i, color in enumerate(colors):
            scale += [[i / n, color], [(i + 1) / n, color]]
        # int32 travels as a binary array; int64 would go as a JSON list (JavaScript has no int64 arrays)
        return {"color": codes[self.visible].astype(np.int32), "colorscale": scale, "cmin": -0.5, "cmax": n - 0.5,
                "showscale": False}

    def _on_plot_selection(self, trace, points, selector) -> None:
        """plotly's own selection callback, called once per trace for one event: the parts are combined.

        Used only where no page has attached the bridge (a notebook front end without it, tests): in a
        browser the bridge is the one source, since these callbacks can be lost behind hover events.
        """
        if self.bridge is not None and self.bridge.live:
            return
        index = next((i for i, t in enumerate(self.scatter.data) if t is trace), 0)
        rows_of = self._trace_rows()
        inds = np.asarray(points.point_inds, dtype=np.int64)
        self._trace_selection[index] = rows_of[index][inds] if index < len(rows_of) else inds
        if index == len(self.scatter.data) - 1:   # plotly dispatches to the traces in order
            parts = list(self._trace_selection.values())
            self._trace_selection = {}
            self.state.select(np.concatenate(parts) if parts else [])

    def png(self, row: int, px: int) -> bytes:
        """PNG bytes of one generated image at `px` pixels, from a small LRU cache."""
        key = (int(row), int(px))
        cached = self._png_cache.get(key)
        if cached is None:
            cached = png_bytes(self.data.load_images(np.array([row], dtype=np.int64))[0], px)
            self._png_cache[key] = cached
            while len(self._png_cache) > PNG_CACHE:
                self._png_cache.popitem(last=False)
        else:
            self._png_cache.move_to_end(key)
        return cached

    def _point_row(self, trace, points) -> int | None:
        """The row of plotly's hover or click callback, None when the page's point is not at the kernel's
        position for that index (the page holds another version of the trace: its index means another row)."""
        inds = list(getattr(points, "point_inds", []) or [])
        if not inds:
            return None
        index = next((i for i, t in enumerate(self.scatter.data) if t is trace), 0)
        rows_of = self._trace_rows()
        if index >= len(rows_of) or not 0 <= inds[0] < len(rows_of[index]):
            return None
        xs, ys = list(getattr(points, "xs", []) or []), list(getattr(points, "ys", []) or [])
        if xs and ys and trace.x is not None and trace.y is not None:
            # the page may hand back float32-rounded positions (WebGL): equal within float32's precision
            if not np.allclose([xs[0], ys[0]], [trace.x[inds[0]], trace.y[inds[0]]], rtol=1e-6, atol=1e-6):
                return None
        return int(rows_of[index][inds[0]])

    def _describe(self, row: int) -> str:
        frame, cluster = self.data.frame, int(self.state.assignments[row])
        known = frame.at[row, "known_label"]
        return (f"<b>{esc(frame.at[row, 'image_id'])}</b> · {esc(frame.at[row, 'split'])}"
                f"{' · ' + esc(known) if known else ''}<br><span class='ss-swatch' "
                f"style='background:{cluster_color(cluster)}'></span>{esc(self.state.cluster_name(cluster))}")

    def _make_hover_thumbnail(self) -> HoverThumbnail:
        """The hovered image beside the cursor (issue 22 item 6); its caption follows every cluster change."""
        if getattr(self, "hover_thumbnail", None) is None:   # once: an engine switch draws the plotly scatter again
            self.state.observe(lambda change: self.hover_thumbnail.changed(), names=["assignments", "cluster_names"])
            self.state.observe(lambda change: self.hover_thumbnail.forget(), names="data_version")
        else:
            self.hover_thumbnail.close()
        self.hover_thumbnail = HoverThumbnail(row_of=self._hovered_row, thumbnail=self._thumbnail_url,
                                              caption=self._describe)
        return self.hover_thumbnail

    def _hovered_row(self, curve: int, point: int, meta: str, row: int | None = None) -> int | None:
        """The row of a point the page hovered: `row`, the one its trace names (customdata), when the trace
        still holds it; without it, by index, None when the page's points are an older version."""
        rows_of = self._trace_rows()
        if not 0 <= curve < len(rows_of):
            return None
        if row is not None:
            return int(row) if np.any(rows_of[curve] == row) else None
        if meta != self.revision() or not 0 <= point < len(rows_of[curve]):
            return None
        return int(rows_of[curve][point])

    def _thumbnail_url(self, row: int) -> str:
        return thumbnail_data_url(self.data.load_images(np.array([row], dtype=np.int64))[0])

    def _on_hover(self, trace, points, state=None) -> None:
        row = self._point_row(trace, points)
        if row is None:
            return
        self.preview.value = self.png(row, THUMB_PX)
        self.preview_caption.value = f"<div class='ss-caption' style='text-align:left'>{self._describe(row)}</div>"

    def _on_click(self, trace, points, state=None) -> None:
        if self.bridge is not None and self.bridge.live:
            return   # the bridge reports clicks with the row the page's trace names (_on_clicked_row)
        row = self._point_row(trace, points)
        if row is not None:
            self.show_detail(row)

    def nearest(self, row: int, k: int = N_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest other generated images in the space the clusters were found in (rows, distances)."""
        from sklearn.neighbors import NearestNeighbors

        X = self.data.clustering_space()
        if self._neighbours is None or self._neighbours[0] is not self.data.model:   # a re-cluster: its space
            self._neighbours = (self.data.model, NearestNeighbors(n_neighbors=min(k + 1, len(X))).fit(X))
        distances, rows = self._neighbours[1].kneighbors(X[[row]], n_neighbors=min(k + 1, len(X)))
        keep = rows[0] != row
        return rows[0][keep][:k], distances[0][keep][:k]

    def show_detail(self, row: int, scroll: bool = True) -> None:
        """The image at full size beside its nearest neighbours in the feature space; `scroll`: the page
        scrolls it into view (a click, not a redraw after a move)."""
        self._detail_row = row   # redrawn when clusters change, so its cluster names stay true
        rows, distances = self.nearest(row)
        full = widgets.Image(value=self.png(row, FULL_PX), format="png", width=FULL_PX, height=FULL_PX)
        full.add_class("ss-detail-full")
        cards = []
        for other, distance in zip(rows.tolist(), distances.tolist()):
            cards.append(widgets.VBox([
                widgets.Image(value=self.png(other, THUMB_PX), format="png", width=THUMB_PX, height=THUMB_PX),
                widgets.HTML(f"<div class='ss-caption'>{self._describe(other)}<br>distance {distance:.2f}</div>")]))
        neighbours = widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap", align_content="flex-start"))
        neighbours.add_class("ss-neighbours")
        if getattr(self, "_detail_scroll", None) is None:
            self._detail_scroll = ScrollIntoView(selector=".ss-detail")
        self.detail.children = [
            widgets.HTML(f"<b>Clicked image</b> <span class='ss-status'>{self._describe(row)} · its "
                         f"{len(rows)} nearest generated neighbours in the space the clusters were found in "
                         f"({esc(self.data.space_description())})</span>"),
            widgets.HBox([full, neighbours]), self._detail_scroll]
        if scroll:
            self._detail_scroll.request += 1

    @staticmethod
    def _set_marker(trace, marker: dict) -> None:
        current = trace.marker
        current.color = marker["color"]
        current.colorscale = marker["colorscale"]
        current.cmin, current.cmax = marker["cmin"], marker["cmax"]
        current.showscale = marker["showscale"]
        if marker.get("colorbar"):
            current.colorbar = marker["colorbar"]

    def _update_marker(self, force: bool = False) -> None:
        if self.jscatter is not None:
            self._jscatter_colors()
            return
        with self.scatter.batch_update():
            self._set_marker(self.scatter.data[0], self._marker())

    def _on_projection(self, change=None) -> None:
        if self.jscatter is not None:
            self._jscatter_projection()
            return
        xy = self.data.projections[self.state.projection]
        clear_outline(self.scatter)   # an outline drawn in the old coordinates would select other points here
        with self.scatter.batch_update():
            self.scatter.data[0].x = xy[self.visible, 0]
            self.scatter.data[0].y = xy[self.visible, 1]
            self.scatter.layout.title.text = self._title()

    def _show_legend(self) -> None:
        """Every colouring says what its colours mean: swatches for a category, a colour bar for a number."""
        key = self._color_key()
        column = BY_KEY[key]
        if column.kind == NUMBER:
            self.legend.value = (f"<span class='ss-status'>colour = {esc(self.columns.label(key))} (colour bar at the "
                                 f"right): {esc(column.help)}</span>")
            return
        if key == "cluster":
            self.legend.value = "<span class='ss-status'>colour = cluster, as in the clusters table</span>"
            return
        codes, colors = self._color_codes()
        present = set(np.unique(codes[self.visible]).tolist())
        items = [f"<span class='ss-legend-item' data-label='{esc(value)}' data-color='{color}'>"
                 f"<span class='ss-swatch' style='background:{color}'></span>{esc(value)}</span>"
                 for i, (value, color) in enumerate(zip(self._known_values, colors)) if i in present]
        what = ("known label (dev folders; test ground truth only in evaluation mode)" if key == "known"
                else esc(column.label))
        self.legend.value = f"<span class='ss-status'>colour = {what}: </span>" + " ".join(items)

    def _push_selection_to_plot(self) -> None:
        """Show in the scatter a selection made elsewhere (histogram, clusters, Escape, undo)."""
        if self.jscatter is not None:
            self._push_selection_to_jscatter()
            return
        selected = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        reported = self.bridge.reported if self.bridge is not None else None
        if reported is not None and np.array_equal(reported, selected):
            return   # the plot already shows it (it was selected there)
        positions = np.flatnonzero(np.isin(self.visible, selected))
        clear_outline(self.scatter)   # the lasso outline drawn earlier is not this selection
        self.scatter.data[0].selectedpoints = positions.tolist() if positions.size else None
        if self.bridge is not None:
            # the plot now shows this, not what it reported last: a later selection equal to that older
            # report (a late histogram report, say) must be pushed again, not skipped as already shown
            self.bridge.reported = np.asarray(selected, dtype=np.int64)
