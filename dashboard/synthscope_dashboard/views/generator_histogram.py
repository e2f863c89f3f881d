"""The generator view's column histogram: bars of the colour column over the images the filter keeps,
the selection drawn on top; a box over its bars selects their images everywhere.

A part of `GeneratorsView` (views/generators.py), which inherits it; the methods are the view's own,
moved here unchanged.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from synthscope_dashboard.columns import BY_KEY, CATEGORY, make_bins
from synthscope_dashboard.views.plot_selection import BridgedFigureWidget, clear_outline


class HistogramPart:
    """The histogram's methods of `GeneratorsView`."""

    def _make_histogram(self) -> go.FigureWidget:
        figure = BridgedFigureWidget(layout=go.Layout(
            height=230, width=560, barmode="overlay", dragmode="select", margin={"l": 40, "r": 10, "t": 30, "b": 40},
            title={"text": "", "font": {"size": 12}}, showlegend=False, plot_bgcolor="white",
            yaxis={"title": "images"}, bargap=0.05))
        figure.add_trace(go.Bar(x=[], y=[], name="shown", marker={"color": "#9aa0ad"},
                                selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 0.45}},
                                hovertemplate="%{customdata}: %{y} images<extra></extra>"))
        figure.add_trace(go.Bar(x=[], y=[], name="selected", marker={"color": "#1f2430"}, opacity=0.75,
                                hovertemplate="%{customdata}: %{y} selected<extra></extra>"))
        self._bins = None
        self._histogram_revision = 0
        self._histogram_selected = None   # rows the histogram's own box selected
        return figure

    def _histogram_rows(self, points) -> np.ndarray:
        """The images of the bars the histogram highlights (each bar is many images)."""
        if self._bins is None:
            return np.zeros(0, dtype=np.int64)
        bars = sorted({int(i) for trace in points if trace for i in trace})
        return self._bins.rows(bars)

    def _show_histogram(self) -> None:
        """Bars of the colour column over the images the filter keeps, the selection drawn on top."""
        if getattr(self, "histogram", None) is None:
            return
        key = self._color_key()
        column = BY_KEY[key]
        names = self._value_names(key) if key == "cluster" else None
        self._bins = bins = make_bins(self.columns.values(key), self.visible, column.kind, names=names)
        self._histogram_revision += 1
        self._histogram_selected = None
        meta = f"bins-{self._histogram_revision}"
        selected = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        colors = "#9aa0ad"
        if column.kind == CATEGORY:
            all_codes, palette, _ = self._category_colors(key)
            colors = [palette[int(all_codes[members[0]])] if len(members) else "#9aa0ad" for members in bins.members]
        clear_outline(self.histogram)
        with self.histogram.batch_update():
            shown, overlay = self.histogram.data
            for trace in (shown, overlay):
                trace.selectedpoints = None
                trace.x = bins.x
                trace.width = bins.width
                trace.customdata = bins.labels
                trace.meta = meta
            shown.y = bins.counts()
            overlay.y = bins.counts(selected)
            self.histogram.layout.title.text = (f"{self.columns.label(key)}: drag a box over bars to select "
                                                "their images")
            self.histogram.layout.xaxis.type = "category" if column.kind == CATEGORY else "linear"
        # not inside the batch: plotly.py would send the other trace's colour as null there, and plotly.js
        # would reset it to the default colourway's
        shown.marker.color = colors

    def _on_histogram_selection(self, rows: np.ndarray) -> None:
        rows = rows[np.isin(rows, self.visible)]
        self._histogram_selected = rows
        self.state.select(rows)

    def _update_histogram_selection(self) -> None:
        if getattr(self, "histogram", None) is None or self._bins is None:
            return
        selected = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        mine = self._histogram_selected
        clearing = mine is not None and not np.array_equal(mine, selected)
        if clearing:
            clear_outline(self.histogram)   # another view selected: the histogram's box no longer holds
        with self.histogram.batch_update():
            self.histogram.data[1].y = self._bins.counts(selected)
            if clearing:
                self._histogram_selected = None
                for trace in self.histogram.data:
                    trace.selectedpoints = None
