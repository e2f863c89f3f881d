"""The generator view's filter by any column: its controls, the rows it keeps, and what it hides.

A part of `GeneratorsView` (views/generators.py), which inherits it. The filter is the state's
`point_filter` (saved in the session); its controls follow the state (a restored session) and the
column's values (silhouette, distance to the centre and the clusters change with every curation step:
issue 22 defect 5), and its label says how many images it hides and which selected images it took out.
"""

from __future__ import annotations

import numpy as np

from synthscope_dashboard.columns import BY_KEY, CATEGORY, categories
from synthscope_dashboard.grid import category_filter, filter_mask, range_filter, value_range
from synthscope_dashboard.views.plot_selection import clear_outline


class FilterPart:
    """The filter's methods of `GeneratorsView`."""

    def _on_filter_column(self, change=None) -> None:
        """A new filter column: its controls show every value (nothing is hidden until one is changed)."""
        if self._setting_filter:
            return
        key = self.filter_column.value
        if not key:
            self.state.point_filter = {}
            return
        values = self.columns.values(key)
        spec = (category_filter(key, categories(values)[0]) if BY_KEY[key].kind == CATEGORY
                else {"column": key, "low": None, "high": None})
        self._show_filter_controls(spec)
        self._filter_from_controls()

    _setting_filter = False

    def _show_filter_controls(self, spec: dict | None = None) -> None:
        """The filter's controls show `spec` (the state's filter by default) over the column's values now:
        after a restore, and after a curation step changed the values (silhouette, distance, clusters)."""
        spec = self.state.point_filter if spec is None else spec
        key = spec.get("column", "") if spec else ""
        if key not in self._column_keys():
            key = ""
        self._setting_filter = True
        try:
            self.filter_column.value = key
            self.filter_values.layout.display = "none"
            self.filter_range.layout.display = "none"
            if not key:
                return
            values = self.columns.values(key)
            if BY_KEY[key].kind == CATEGORY:
                distinct, _ = categories(values)
                names = self._value_names(key)
                self.filter_values.options = [(names(v), v) for v in distinct]
                chosen = spec.get("values", [])
                self.filter_values.value = tuple(v for v in distinct if v in chosen)
                self.filter_values.layout.display = None
                return
            # the slider spans the values and the filter's own ends; an open end sits at the values' end
            low, high = spec.get("low"), spec.get("high")
            lowest, highest = value_range(values)
            span = max(max(highest, high if high is not None else highest)
                       - min(lowest, low if low is not None else lowest), 1e-9)
            pad = span / 500
            slider_min = lowest if low is None else min(lowest, low - pad) if low <= lowest else lowest
            slider_max = highest if high is None else max(highest, high + pad) if high >= highest else highest
            if slider_max <= slider_min:
                slider_max = slider_min + 1.0
            self.filter_range.min, self.filter_range.max = -1e300, 1e300
            self.filter_range.min, self.filter_range.max = slider_min, slider_max
            self.filter_range.step = (slider_max - slider_min) / 500
            self.filter_range.value = (slider_min if low is None else low, slider_max if high is None else high)
            self.filter_range.layout.display = None
        finally:
            self._setting_filter = False

    def _value_names(self, key: str):
        if key == "cluster":
            return lambda v: f"{self.state.cluster_name(int(v))} ({int(v)})"
        return lambda v: str(v) if v != "" else "unlabelled"

    def _filter_from_controls(self) -> None:
        if self._setting_filter:
            return
        self.state.point_filter = self._controls_filter()

    def filter_mask(self) -> np.ndarray:
        """Which rows the current filter keeps."""
        return filter_mask(self.state.point_filter, self.columns.values, self.data.n)

    def _on_point_filter(self, change=None) -> None:
        if not self._setting_filter and self.state.point_filter != self._controls_filter():
            self._show_filter_controls()   # set elsewhere (a restored session): the controls follow
        self.apply_filter()

    def _controls_filter(self) -> dict:
        """The filter the controls show now."""
        key = self.filter_column.value
        if not key:
            return {}
        if BY_KEY[key].kind == CATEGORY:
            return category_filter(key, self.filter_values.value)
        low, high = self.filter_range.value
        return range_filter(key, low, high, self.filter_range.min, self.filter_range.max)

    def apply_filter(self) -> None:
        """The scatter holds the rows the filter keeps; the selection keeps only those rows, and the filter's
        label says what it hides and which selected images it took out of the selection."""
        visible = np.flatnonzero(self.filter_mask()).astype(np.int64)
        if not (np.array_equal(visible, self.visible) and (self.scatter is not None or self.jscatter is not None)):
            self._show_rows(visible)
        self._show_filter_label()

    def _show_rows(self, visible: np.ndarray) -> None:
        self.visible = visible
        self._revision += 1
        xy = self.data.projections[self.state.projection]
        selection = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        kept = selection[np.isin(selection, visible)]
        if self.jscatter is not None:
            self._jscatter_filter()   # the points stay in the page; only the kept rows are drawn
        else:
            clear_outline(self.scatter)
            with self.scatter.batch_update():
                trace = self.scatter.data[0]
                trace.selectedpoints = None
                trace.x, trace.y = xy[visible, 0], xy[visible, 1]
                trace.text = self._hover_text()[visible]
                trace.customdata = visible.astype(np.int32)
                trace.meta = self.revision()
                self._set_marker(trace, self._marker())
                self.scatter.layout.title.text = self._title()
            self.bridge.reported = None
        self._filtering = True
        try:
            self.state.select(kept)
        finally:
            self._filtering = False
        if len(kept) < len(selection):
            self._filter_dropped += len(selection) - len(kept)
            self.state.status = (f"the filter hides {len(selection) - len(kept):,} selected images: "
                                 f"{len(kept):,} stay selected")
        self._show_histogram()

    _filtering = False     # True while the filter takes hidden rows out of the selection
    _filter_dropped = 0    # selected images the filter took out since the analyst last selected

    def _show_filter_label(self) -> None:
        n, shown = self.data.n, len(self.visible)
        parts = []
        if shown < n:
            parts.append(f"<b>{shown:,}</b> of {n:,} images shown · the filter hides {n - shown:,}")
        if self._filter_dropped:
            parts.append(f"{self._filter_dropped:,} selected images left the selection: the filter hides them "
                         "(their values changed, or the filter did)")
        self.filter_label.value = f"<span class='ss-status'>{' · '.join(parts)}</span>" if parts else ""
