"""Generator fingerprints (sub-task 2): scatter, curation of clusters, gallery, visual fingerprints."""

from __future__ import annotations

import collections

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from sklearn.metrics import silhouette_score

from synthscope_dashboard.columns import BY_KEY, CATEGORY, NUMBER, PointColumns, categories, make_bins
from synthscope_dashboard.fingerprints import cluster_fingerprints, sample_members
from synthscope_dashboard.imaging import (UNLABELLED_COLOR, cluster_color, colormap, known_label_color, png_bytes,
                                          to_uint8)
from synthscope_dashboard.tables import ARI_NMI_TABLES, N_BOOT, ari_nmi_table, cluster_table_html, labelled_rows
from synthscope_dashboard.views.common import View, banner, esc, fmt, guarded
from synthscope_dashboard.views.plot_selection import BridgedFigureWidget, SelectionBridge, clear_outline, mirror_selection
from synthscope_dashboard.workspace import CLUSTER_METHODS, PROJECTION_METHODS

GALLERY_SIZE = 16   # images per page of the selection grid
NUMBER_SCALE = "Viridis"
THUMB_PX, FULL_PX = 128, 512
N_NEIGHBOURS = 6
PNG_CACHE = 512   # PNG bytes kept per page (LRU): hovering back and forth decodes nothing
NEW_CLUSTER = -1


class GeneratorsView(View):
    title = "Generator fingerprints"

    def __init__(self, state):
        super().__init__(state)
        self.data = state.workspace.attribution
        self.scatter: go.FigureWidget | None = None
        self.bridge: SelectionBridge | None = None
        self._known_colors = None
        self._known_values: list[str] = []
        self._trace_selection: dict[int, np.ndarray] = {}   # per-trace parts of one plotly selection event
        self._png_cache: collections.OrderedDict = collections.OrderedDict()   # (row, px) -> PNG bytes
        self._neighbours = None   # NearestNeighbors on data.reduced_features(), fit on the first click
        self.columns = PointColumns(state)
        self.visible = np.arange(self.data.n, dtype=np.int64)   # rows the filter keeps, as the scatter holds them
        self._revision = 0        # +1 whenever the scatter's points are other rows (a filter); sent as trace meta
        self.gallery_page = 0

    # ------------------------------------------------------------------ build
    def build(self):
        state = self.state
        data = self.data = state.workspace.attribution   # a restore may have loaded other features
        available = [m for m in PROJECTION_METHODS if m in data.projections]
        if state.projection not in available:
            state.projection = "pca"
        self.projection = widgets.Dropdown(options=available, value=state.projection, description="projection",
                                           layout=widgets.Layout(width="190px"))
        self.color_by = widgets.Dropdown(options=self._column_options(), description="colour by",
                                         value=state.color_by if state.color_by in self._column_keys() else "cluster",
                                         layout=widgets.Layout(width="290px"))
        self.color_by.add_class("ss-color-by")
        # filter by any column: the scatter, histogram and selection keep only the rows it passes
        self.filter_column = widgets.Dropdown(options=[("no filter", "")] + self._column_options(), value="",
                                              description="filter", layout=widgets.Layout(width="290px"))
        self.filter_column.add_class("ss-filter-column")
        self.filter_values = widgets.SelectMultiple(options=[], rows=4, layout=widgets.Layout(width="220px",
                                                                                           display="none"))
        self.filter_values.add_class("ss-filter-values")
        self.filter_range = widgets.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.001,
                                                     readout_format=".3g", continuous_update=False,
                                                     layout=widgets.Layout(width="380px", display="none"))
        self.filter_range.add_class("ss-filter-range")
        self.filter_clear = widgets.Button(description="Clear filter", layout=widgets.Layout(width="110px"))
        self.filter_label = widgets.HTML()
        self.filter_label.add_class("ss-filter-label")
        self.k = widgets.BoundedIntText(value=state.k, min=1, max=64, description="k", layout=widgets.Layout(width="120px"),
                                        tooltip="number of generators: the task states it (synthscope dashboard --k N); "
                                                "the default is the number of dev generators")
        self.method = widgets.Dropdown(options=CLUSTER_METHODS, value=state.method if state.method in CLUSTER_METHODS else "auto",
                                       description="method", layout=widgets.Layout(width="190px"))
        self.recluster = widgets.Button(description="Re-cluster", tooltip="replaces the clusters (undo brings them back)")
        self.extractor = widgets.Dropdown(options=self._extractor_options(), value=data.extractor, description="features",
                                          disabled=state.workspace.attribution_loader is None,
                                          layout=widgets.Layout(width="220px"))
        self.hint = widgets.HTML()
        self.reload_button = widgets.Button(description="Reload data", disabled=state.workspace.attribution_loader is None,
                                            tooltip="read the embedding and projection caches again (after "
                                                    "`synthscope prepare`); the curation is kept")
        # k is part of the task statement: without `--k` the page asks for it before anything else
        self.k_prompt_text = widgets.HTML()
        self.k_answer = widgets.BoundedIntText(value=state.k, min=1, max=max(1, min(64, data.n)),
                                               layout=widgets.Layout(width="90px"))
        self.k_confirm = widgets.Button(description="Cluster with this k", button_style="warning",
                                        layout=widgets.Layout(width="170px", min_width="170px"))
        self.k_prompt = widgets.HBox([self.k_prompt_text, self.k_answer, self.k_confirm],
                                     layout=widgets.Layout(align_items="center"))
        self.k_prompt.add_class("ss-k-prompt")
        self.k_warning = widgets.HTML()
        self.k_warning.add_class("ss-k-warning")
        # shown only while a new extractor embeds images that are not cached yet
        self.embedding_progress = widgets.IntProgress(value=0, min=0, max=1, description="embedding",
                                                      bar_style="info", layout=widgets.Layout(display="none", width="420px"))
        self.embedding_what = widgets.HTML()
        top = self.control(widgets.VBox([
            widgets.HBox([self.extractor, self.projection, self.color_by, self.k, self.method, self.recluster,
                          self.reload_button]),
            widgets.HBox([self.embedding_progress, self.embedding_what]),
            widgets.HBox([self.filter_column, self.filter_values, self.filter_range, self.filter_clear,
                          self.filter_label], layout=widgets.Layout(align_items="center")),
            self.hint,
        ]))
        self._show_hint()

        self.scatter = self._make_scatter()
        self.figures["scatter"] = self.scatter
        # the browser's selection reaches the kernel through the bridge (see plot_selection.py)
        self.bridge = SelectionBridge(trace_rows=self._trace_rows, on_change=self._on_browser_selection,
                                      on_escape=self._on_escape, on_key=guarded(self._on_key, state, "the key"),
                                      revision=self.revision,
                                      on_report=lambda points: mirror_selection(self.scatter, points))
        self.legend = widgets.HTML()
        self.legend.add_class("ss-legend")
        self._show_legend()
        scatter_box = widgets.VBox([self.legend, self.scatter, self.bridge],
                                   layout=widgets.Layout(width="56%", align_self="flex-start"))
        scatter_box.add_class("ss-scatter-box")
        # the colour column's histogram: a box over its bars selects their images everywhere
        self.histogram = self._make_histogram()
        self.figures["column-histogram"] = self.histogram
        self.histogram_bridge = SelectionBridge(trace_rows=lambda: [], rows_for=self._histogram_rows,
                                                on_change=self._on_histogram_selection, on_escape=lambda rows: None,
                                                revision=lambda: f"bins-{self._histogram_revision}",
                                                follow_changes=False, follow_deselect=False,
                                                on_report=lambda points: mirror_selection(self.histogram, points))
        self.scatter.bridge, self.histogram.bridge = self.bridge, self.histogram_bridge
        histogram_box = widgets.VBox([self.histogram, self.histogram_bridge])
        histogram_box.add_class("ss-scatter-box")
        histogram_box.add_class("ss-column-histogram")
        self.metrics = widgets.HTML()
        self.cluster_table = widgets.HTML()
        self.cluster_select = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.cluster_select.add_class("ss-cluster-select")
        # images first: the point under the mouse, beside the plot; a click opens it with its neighbours
        self.preview = widgets.Image(value=png_bytes(np.full((THUMB_PX, THUMB_PX), 238, dtype=np.uint8)),
                                     format="png", width=THUMB_PX, height=THUMB_PX,
                                     layout=widgets.Layout(width=f"{THUMB_PX}px", height=f"{THUMB_PX}px"))
        self.preview_caption = widgets.HTML("<span class='ss-status'>hover over a point to see its image; "
                                            "click it for the full image and its nearest neighbours</span>")
        self.preview_box = widgets.HBox([self.preview, self.preview_caption], layout=widgets.Layout(min_height="130px"))
        self.preview_box.add_class("ss-preview")
        side = widgets.VBox([self.preview_box, self.metrics, self.cluster_table, self.control(self.cluster_select),
                             histogram_box], layout=widgets.Layout(width="44%"))
        self.detail = widgets.VBox()
        self.detail.add_class("ss-detail")

        # curation controls
        self.selected_label = widgets.HTML()
        self.target = widgets.Dropdown(description="move to", layout=widgets.Layout(width="230px"))
        self.move = widgets.Button(description="Move selection", button_style="primary")
        self.move.add_class("ss-move")
        self.move.add_class("ss-selection-guard")   # the page reports what the plot shows before the click
        self.rename_which = widgets.Dropdown(description="rename", layout=widgets.Layout(width="230px"))
        self.rename_text = widgets.Text(placeholder="new name", layout=widgets.Layout(width="150px"))
        self.rename_button = widgets.Button(description="Rename")
        self.merge_source = widgets.Dropdown(description="merge", layout=widgets.Layout(width="230px"))
        self.merge_target = widgets.Dropdown(description="into", layout=widgets.Layout(width="200px"))
        self.merge_button = widgets.Button(description="Merge")
        self.split_which = widgets.Dropdown(description="split", layout=widgets.Layout(width="230px"))
        self.split_button = widgets.Button(description="Split in two")
        curation = self.control(widgets.VBox([
            widgets.HBox([self.selected_label, self.target, self.move]),
            widgets.HBox([self.rename_which, self.rename_text, self.rename_button]),
            widgets.HBox([self.merge_source, self.merge_target, self.merge_button]),
            widgets.HBox([self.split_which, self.split_button]),
        ], layout=widgets.Layout(border="1px solid #e3e6ee", padding="6px", margin="4px 0")))

        self.gallery = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.gallery.add_class("ss-gallery")
        self.gallery_sort = widgets.Dropdown(options=self._sort_options(), value="", description="sort by",
                                             layout=widgets.Layout(width="300px"))
        self.gallery_descending = widgets.Dropdown(options=[("highest first", True), ("lowest first", False)],
                                                   value=True, layout=widgets.Layout(width="130px"))
        self.gallery_previous = widgets.Button(description="Previous", layout=widgets.Layout(width="90px"))
        self.gallery_next = widgets.Button(description="Next", layout=widgets.Layout(width="90px"))
        self.gallery_label = widgets.HTML()
        self.gallery_label.add_class("ss-gallery-label")
        self.fingerprint_button = widgets.Button(description="Show cluster fingerprints",
                                                 tooltip="mean residual and mean log power spectrum of each cluster")
        self.fingerprint_box = widgets.VBox()

        # wiring: widgets -> actions; state -> redraw
        self.projection.observe(lambda c: setattr(state, "projection", c["new"]), names="value")
        self.extractor.observe(lambda c: self.switch_extractor(c["new"]), names="value")
        self.color_by.observe(lambda c: setattr(state, "color_by", c["new"]), names="value")
        self.filter_column.observe(self._on_filter_column, names="value")
        self.filter_values.observe(lambda c: self._filter_from_controls(), names="value")
        self.filter_range.observe(lambda c: self._filter_from_controls(), names="value")
        self.filter_clear.on_click(lambda _: setattr(self.filter_column, "value", ""))
        state.observe(self._on_point_filter, names="point_filter")
        for widget in (self.gallery_sort, self.gallery_descending):
            widget.observe(lambda c: self._show_gallery(page=0), names="value")
        self.gallery_previous.on_click(lambda _: self._show_gallery(page=self.gallery_page - 1))
        self.gallery_next.on_click(lambda _: self._show_gallery(page=self.gallery_page + 1))
        self.recluster.on_click(lambda _: self.recluster_with(self.k.value))
        self.k_confirm.on_click(lambda _: self.recluster_with(self.k_answer.value))
        self.reload_button.on_click(lambda _: state.reload_data())
        self.move.on_click(lambda _: self.move_selection())
        self.rename_button.on_click(lambda _: state.rename(self.rename_which.value, self.rename_text.value))
        self.merge_button.on_click(lambda _: state.merge(self.merge_source.value, self.merge_target.value))
        self.split_button.on_click(lambda _: state.split(self.split_which.value))
        self.fingerprint_button.on_click(lambda _: self.show_fingerprints())
        state.observe(self._on_assignments, names=["assignments", "cluster_names"])
        state.observe(self._on_selection, names="selection")
        state.observe(self._on_projection, names="projection")
        state.observe(self._on_color_by, names="color_by")
        state.observe(lambda c: setattr(self.k, "value", c["new"]), names="k")
        # the controls follow the state (a restored session, undo), not only the other way round
        state.observe(lambda c: self._follow(self.method, c["new"]), names="method")
        state.observe(lambda c: self._follow(self.projection, c["new"]), names="projection")
        state.observe(lambda c: self._follow(self.color_by, c["new"]), names="color_by")
        state.observe(self._on_data, names="data_version")
        state.observe(self._on_evaluation_mode, names="evaluation_mode")
        state.observe(self._show_k_prompt, names=["k", "k_source", "presentation"])
        self._show_k_prompt()
        self._on_assignments()
        self._show_histogram()
        self._on_selection()
        return [self.k_prompt, self.k_warning, top,
                widgets.HBox([scatter_box, side]),
                curation,
                widgets.HTML("<b>Selected images</b> <span class='ss-status'>(drag a box or lasso on the scatter, "
                             "a box over the histogram's bars, or select a cluster)</span>"),
                widgets.HBox([self.gallery_sort, self.gallery_descending, self.gallery_previous, self.gallery_next,
                              self.gallery_label], layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
                self.gallery,
                self.detail,
                self.control(self.fingerprint_button),
                self.fingerprint_box]

    def _extractor_options(self) -> list[str]:
        try:
            from synthscope.features import list_extractors
            names = [info.name for info in list_extractors() if info.available and info.name != "open_clip"]
        except ImportError:
            names = []
        return sorted(set(names) | {self.data.extractor})

    def _show_hint(self) -> None:
        hint = "; ".join(self.data.projection_hints.values())
        if hint and self.state.workspace.attribution_loader is not None:
            hint += " Then press Reload data (the curation is kept)."
        self.hint.value = f"<span class='ss-status'>{esc(hint)}</span>" if hint else ""

    def switch_extractor(self, name: str) -> None:
        """Same images, other features: new projections; the clusters stay until you re-cluster."""
        state = self.state
        if name == self.data.extractor or state.workspace.attribution_loader is None:
            return
        state.status = f"embedding with {name} (cached after the first time; `synthscope prepare` does it ahead)…"
        try:
            state.load_extractor(name, progress=self._show_embedding_progress)
        finally:
            self.embedding_progress.layout.display = "none"
            self.embedding_what.value = ""
        state.status = f"features are now {name}; press Re-cluster to cluster on them (your clusters are kept until then)"

    def dev_generators(self) -> int:
        """How many generators the dev folders name (the default k)."""
        known = self.data.frame["known_label"]
        return int(known[known != ""].nunique())

    def recluster_with(self, k: int) -> None:
        """Re-cluster with k from the page: the analyst's answer replaces the default guess."""
        state = self.state
        if state.k_source == "default":
            state.k_source = "analyst"
        state.recluster(k, self.method.value)

    def _show_k_prompt(self, change=None) -> None:
        state, dev = self.state, self.dev_generators()
        asking = state.k_source == "default"
        guess = (f"k = {state.k} now, the number of dev generator folders" if dev and state.k == dev
                 else f"k = {state.k} now, a default")
        self.k_prompt_text.value = banner(
            "<b>How many generators does the task state?</b> The number of clusters is part of the task "
            f"statement ({esc(guess)}); give it here, or start the page with "
            "<code>synthscope dashboard PATH --k N</code>.", "warn")
        self.k_prompt.layout.display = "" if asking and not state.presentation else "none"
        if asking:
            self.k_answer.value = state.k
        warn = state.k_source != "task" and dev > 0 and state.k == dev
        self.k_warning.value = banner(
            f"k = {state.k} equals the number of dev folders: the test set may hold generators that dev does not "
            "(then they are forced into the dev generators' clusters). Use the k the task states.",
            "warn") if warn else ""

    @staticmethod
    def _follow(widget, value) -> None:
        if widget.value != value and value in [v if not isinstance(v, tuple) else v[1] for v in widget.options]:
            widget.value = value

    def _on_data(self, change=None) -> None:
        """workspace.attribution was replaced (other features, a restored session, re-read caches)."""
        data = self.state.workspace.attribution
        if not self.built:
            self.data = data
            return
        self.data = data
        self._known_colors = None
        self._neighbours = None   # other features: other neighbours
        self.columns = PointColumns(self.state)   # silhouette, outliers: on the new features
        self._refresh_column_options()
        self.visible = np.arange(data.n, dtype=np.int64)
        self._revision += 1
        self.scatter.data[0].meta = self.revision()
        self.scatter.data[0].text = self._hover_text()
        if self.extractor.value != data.extractor:
            self.extractor.options = sorted(set(self.extractor.options) | {data.extractor})
            self.extractor.value = data.extractor   # switch_extractor sees the same name: nothing reloads
        available = [m for m in PROJECTION_METHODS if m in data.projections]
        if self.state.projection not in available:
            self.state.projection = "pca"
        self.projection.options = available
        self.projection.value = self.state.projection
        self._on_projection()
        self._show_hint()
        self._on_assignments()
        self._update_marker()
        self._show_histogram()
        if self.state.point_filter:
            self.apply_filter()

    def _show_embedding_progress(self, done: int, total: int, what: str) -> None:
        """Widget messages go out while the kernel embeds, so the bar moves during the call."""
        self.embedding_progress.layout.display = ""
        self.embedding_progress.max = max(total, 1)
        self.embedding_progress.value = done
        self.embedding_what.value = f"<span class='ss-status'>{esc(what)}: {done:,} / {total:,} images</span>"

    def _make_scatter(self) -> go.FigureWidget:
        data, state = self.data, self.state
        xy = data.projections[state.projection]
        rows = self.visible
        figure = BridgedFigureWidget(
            data=[go.Scattergl(x=xy[rows, 0], y=xy[rows, 1], mode="markers", text=self._hover_text()[rows],
                               hovertemplate="%{text}<extra></extra>", meta=self.revision(),
                               marker={"size": 5 if data.n > 5000 else 7, "opacity": 0.85,
                                       "line": {"width": 0}, **self._marker()},
                               selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 0.25}})],
            layout=go.Layout(height=520, margin={"l": 30, "r": 10, "t": 36, "b": 30}, dragmode="lasso",
                             title={"text": self._title(), "font": {"size": 14}}, showlegend=False,
                             plot_bgcolor="white", xaxis={"showgrid": False, "zeroline": False},
                             yaxis={"showgrid": False, "zeroline": False}))
        for trace in figure.data:   # every trace, or Voila drops some selections
            trace.on_selection(self._on_plot_selection)
            trace.on_deselect(lambda trace, points: self._on_plot_selection(trace, points, None))
            trace.on_hover(self._on_hover)
            trace.on_click(self._on_click)
        return figure

    def _hover_text(self) -> np.ndarray:
        frame = self.data.frame
        return (frame["split"] + " · " + frame["image_id"] + "<br>" + frame["group"]).to_numpy()

    def revision(self) -> str:
        """The version of the scatter's points (trace meta): other rows after every refilter."""
        return f"points-{self._revision}"

    def _trace_rows(self) -> list[np.ndarray]:
        """The attribution rows behind each trace's points (one trace holds the rows the filter keeps)."""
        return [self.visible]

    def _title(self) -> str:
        key = self._color_key()
        mode = self.columns.label(key) + (" (grey = unlabelled)" if key == "known" else "")
        shown = (f"{len(self.visible):,} of {self.data.n:,}" if len(self.visible) < self.data.n
                 else f"{self.data.n:,}")
        return f"{shown} generated images · {self.state.projection.upper()} · colour = {mode}"

    def _column_keys(self) -> list[str]:
        return [column.key for column in self.columns.available()]

    def _column_options(self) -> list[tuple[str, str]]:
        return [(column.label, column.key) for column in self.columns.available()]

    def _sort_options(self) -> list[tuple[str, str]]:
        numbers = [(column.label, column.key) for column in self.columns.available() if column.kind == NUMBER]
        return [("as selected", ""), ("image id", "image_id"), ("cluster", "cluster")] + numbers

    def _color_key(self) -> str:
        key = self.state.color_by
        return key if key in self._column_keys() else "cluster"

    def _labels(self) -> np.ndarray:
        """Known label per point: the dev folders', and the test ground truth only in evaluation mode
        (test labels are never shown while an analyst tunes)."""
        return self.columns.values("known")

    def _on_evaluation_mode(self, change=None) -> None:
        self._known_colors = None
        self._refresh_column_options()
        if self._color_key() == "known" or self.state.point_filter.get("column") == "known":
            self._on_color_by()
        self.metrics.value = self.metrics_html()
        self.cluster_table.value = self.cluster_table_html()

    def _refresh_column_options(self) -> None:
        options = self._column_options()
        for dropdown, extra in ((self.color_by, []), (self.filter_column, [("no filter", "")])):
            keep = dropdown.value
            dropdown.options = extra + options
            valid = [value for _, value in dropdown.options]
            dropdown.value = keep if keep in valid else valid[0]
        self.gallery_sort.options = self._sort_options()

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

    # ------------------------------------------------------------------ filter
    def _on_filter_column(self, change=None) -> None:
        """A new filter column: its controls show every value (nothing is hidden until one is changed)."""
        key = self.filter_column.value
        self.filter_values.layout.display = "none"
        self.filter_range.layout.display = "none"
        if not key:
            self.state.point_filter = {}
            return
        values = self.columns.values(key)
        self._setting_filter = True
        try:
            if BY_KEY[key].kind == CATEGORY:
                distinct, _ = categories(values)
                names = self._value_names(key)
                self.filter_values.options = [(names(v), v) for v in distinct]
                self.filter_values.value = tuple(distinct)
                self.filter_values.layout.display = None
            else:
                finite = values[np.isfinite(values)]
                low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
                high = high if high > low else low + 1.0
                self.filter_range.min, self.filter_range.max = -1e300, 1e300
                self.filter_range.min, self.filter_range.max = low, high
                self.filter_range.step = (high - low) / 500
                self.filter_range.value = (low, high)
                self.filter_range.layout.display = None
        finally:
            self._setting_filter = False
        self._filter_from_controls()

    _setting_filter = False

    def _value_names(self, key: str):
        if key == "cluster":
            return lambda v: f"{self.state.cluster_name(int(v))} ({int(v)})"
        return lambda v: str(v) if v != "" else "unlabelled"

    def _filter_from_controls(self) -> None:
        if self._setting_filter:
            return
        key = self.filter_column.value
        if not key:
            self.state.point_filter = {}
        elif BY_KEY[key].kind == CATEGORY:
            self.state.point_filter = {"column": key, "values": [v.item() if hasattr(v, "item") else v
                                                                 for v in self.filter_values.value]}
        else:
            low, high = self.filter_range.value
            # the slider's ends mean "no bound": the ends are rounded to its step
            at_min, at_max = low <= self.filter_range.min, high >= self.filter_range.max
            self.state.point_filter = {"column": key, "low": None if at_min else float(low),
                                       "high": None if at_max else float(high)}

    def filter_mask(self) -> np.ndarray:
        """Which rows the current filter keeps."""
        spec = self.state.point_filter or {}
        key = spec.get("column")
        if not key or key not in BY_KEY:
            return np.ones(self.data.n, dtype=bool)
        values = self.columns.values(key)
        if BY_KEY[key].kind == CATEGORY:
            return np.isin(values, np.asarray(spec.get("values", []), dtype=values.dtype))
        keep = np.isfinite(values)
        if spec.get("low") is not None:
            keep &= values >= spec["low"]
        if spec.get("high") is not None:
            keep &= values <= spec["high"]
        return keep

    def _on_point_filter(self, change=None) -> None:
        self.apply_filter()

    def apply_filter(self) -> None:
        """The scatter holds the rows the filter keeps; the selection keeps only those rows."""
        visible = np.flatnonzero(self.filter_mask()).astype(np.int64)
        if np.array_equal(visible, self.visible) and self.scatter is not None:
            return
        self.visible = visible
        self._revision += 1
        xy = self.data.projections[self.state.projection]
        selection = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        kept = selection[np.isin(selection, visible)]
        clear_outline(self.scatter)
        with self.scatter.batch_update():
            trace = self.scatter.data[0]
            trace.selectedpoints = None
            trace.x, trace.y = xy[visible, 0], xy[visible, 1]
            trace.text = self._hover_text()[visible]
            trace.meta = self.revision()
            self._set_marker(trace, self._marker())
            self.scatter.layout.title.text = self._title()
        n = self.data.n
        self.filter_label.value = ("" if len(visible) == n else
                                   f"<span class='ss-status'><b>{len(visible):,}</b> of {n:,} images shown</span>")
        self.bridge.reported = None
        self.state.select(kept)
        if len(kept) < len(selection):
            self.state.status = (f"the filter hides {len(selection) - len(kept):,} selected images: "
                                 f"{len(kept):,} stay selected")
        self._show_histogram()

    # ------------------------------------------------------------------ reactions
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
        inds = list(getattr(points, "point_inds", []) or [])
        if not inds:
            return None
        index = next((i for i, t in enumerate(self.scatter.data) if t is trace), 0)
        rows_of = self._trace_rows()
        return int(rows_of[index][inds[0]]) if index < len(rows_of) else int(inds[0])

    def _describe(self, row: int) -> str:
        frame, cluster = self.data.frame, int(self.state.assignments[row])
        known = frame.at[row, "known_label"]
        return (f"<b>{esc(frame.at[row, 'image_id'])}</b> · {esc(frame.at[row, 'split'])}"
                f"{' · ' + esc(known) if known else ''}<br><span class='ss-swatch' "
                f"style='background:{cluster_color(cluster)}'></span>{esc(self.state.cluster_name(cluster))}")

    def _on_hover(self, trace, points, state=None) -> None:
        row = self._point_row(trace, points)
        if row is None:
            return
        self.preview.value = self.png(row, THUMB_PX)
        self.preview_caption.value = f"<div class='ss-caption' style='text-align:left'>{self._describe(row)}</div>"

    def _on_click(self, trace, points, state=None) -> None:
        row = self._point_row(trace, points)
        if row is not None:
            self.show_detail(row)

    def nearest(self, row: int, k: int = N_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest other generated images in the clustering's feature space (rows, distances)."""
        from sklearn.neighbors import NearestNeighbors

        X = self.data.reduced_features()
        if self._neighbours is None:
            self._neighbours = NearestNeighbors(n_neighbors=min(k + 1, len(X))).fit(X)
        distances, rows = self._neighbours.kneighbors(X[[row]], n_neighbors=min(k + 1, len(X)))
        keep = rows[0] != row
        return rows[0][keep][:k], distances[0][keep][:k]

    def show_detail(self, row: int) -> None:
        """The image at full size beside its nearest neighbours in the feature space."""
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
        self.detail.children = [
            widgets.HTML(f"<b>Clicked image</b> <span class='ss-status'>{self._describe(row)} · its "
                         f"{len(rows)} nearest generated neighbours in the {esc(self.data.extractor)} features "
                         "(what the clustering sees)</span>"),
            widgets.HBox([full, neighbours])]

    def _on_browser_selection(self, rows: np.ndarray) -> None:
        self.state.select(rows)

    def _on_escape(self, rows: np.ndarray) -> None:
        """Escape in the page: the plot has dropped its selection (rows: what it still shows)."""
        self.state.select(rows)
        self.state.status = "selection cleared" if rows.size == 0 else f"{rows.size:,} images still selected"

    def _refuse_unless_shown(self, shown: np.ndarray | None) -> bool:
        """True (and the status says why) when the kernel's selection is not the one the plot shows."""
        state = self.state
        selected = state.selection if state.selection is not None else np.zeros(0, dtype=np.int64)
        if shown is None:
            state.status = ("not moved: the page did not report what the plot shows; "
                            "press Move selection again")
            return True
        if not np.array_equal(np.sort(shown), np.sort(selected)):
            state.select(shown)
            state.status = (f"not moved: the plot shows {len(shown):,} selected images but {len(selected):,} "
                            "were selected here (a selection event arrived late); the selection now follows "
                            "the plot: check it and press Move selection again")
            return True
        return False

    def move_selection(self) -> int:
        """Move the selected images to the target cluster, only if they are the ones the plot shows."""
        state = self.state
        cluster = None if self.target.value == NEW_CLUSTER else self.target.value
        bridge = self.bridge
        if bridge is not None and bridge.live:
            shown, bridge.shown = bridge.shown, None   # each press needs its own report from the page
            if self._refuse_unless_shown(shown):
                return -1
        return state.assign(state.selection, cluster)

    def _on_key(self, event: str, shown: np.ndarray, content: dict) -> None:
        """Keys in the page (plot_selection.py): Ctrl+Z undoes, a digit moves the selection the plot
        shows to the cluster of that number, with the checks of Move selection."""
        state = self.state
        if state.presentation:
            return
        if event == "undo":
            state.undo()
            return
        cluster = content.get("cluster")
        if not isinstance(cluster, int) or isinstance(cluster, bool) or cluster not in state.clusters():
            state.status = (f"not moved: there is no cluster {cluster} (keys 0-9 move the selection to the cluster "
                            "of that id; use Move selection for a new cluster)")
            return
        if self._refuse_unless_shown(shown):
            return
        state.assign(state.selection, cluster)

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
        with self.scatter.batch_update():
            self._set_marker(self.scatter.data[0], self._marker())

    def _on_projection(self, change=None) -> None:
        xy = self.data.projections[self.state.projection]
        clear_outline(self.scatter)   # an outline drawn in the old coordinates would select other points here
        with self.scatter.batch_update():
            self.scatter.data[0].x = xy[self.visible, 0]
            self.scatter.data[0].y = xy[self.visible, 1]
            self.scatter.layout.title.text = self._title()

    def _on_color_by(self, change=None) -> None:
        if self.color_by.value != self._color_key():
            self._follow(self.color_by, self._color_key())
        self._update_marker(force=True)
        self.scatter.layout.title.text = self._title()
        self._show_legend()
        self._show_histogram()

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

    # ------------------------------------------------------------------ the column histogram
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

    # ------------------------------------------------------------------ selection, everywhere
    def select_cluster(self, cluster: int) -> None:
        """Select the images of one cluster (those the filter keeps)."""
        members = np.flatnonzero(self.state.assignments == cluster)

        self.state.select(members[np.isin(members, self.visible)])

    def _push_selection_to_plot(self) -> None:
        """Show in the scatter a selection made elsewhere (histogram, clusters, Escape, undo)."""
        selected = self.state.selection if self.state.selection is not None else np.zeros(0, dtype=np.int64)
        reported = self.bridge.reported if self.bridge is not None else None
        if reported is not None and np.array_equal(reported, selected):
            return   # the plot already shows it (it was selected there)
        positions = np.flatnonzero(np.isin(self.visible, selected))
        clear_outline(self.scatter)   # the lasso outline drawn earlier is not this selection
        self.scatter.data[0].selectedpoints = positions.tolist() if positions.size else None

    def _on_assignments(self, change=None) -> None:
        state = self.state
        key = self._color_key()
        if key in ("cluster", "silhouette", "centre_distance"):
            self._update_marker()
            self._show_histogram()
        if key == "cluster":
            self._show_legend()
        options = [(f"{state.cluster_name(c)} ({c})", c) for c in state.clusters()]
        clusters = state.clusters()
        for dropdown, extra in ((self.target, [("+ new cluster", NEW_CLUSTER)]), (self.rename_which, []),
                                (self.merge_source, []), (self.merge_target, []), (self.split_which, [])):
            previous = dropdown.value
            dropdown.options = options + extra
            valid = [value for _, value in dropdown.options]
            if previous in valid:
                dropdown.value = previous
            elif valid:
                dropdown.value = NEW_CLUSTER if extra else valid[0]
        if len(clusters) > 1 and self.merge_target.value == self.merge_source.value:
            self.merge_target.value = clusters[1]
        self.metrics.value = self.metrics_html()
        self.cluster_table.value = self.cluster_table_html()
        self._show_cluster_buttons()
        self._update_captions()   # a move, merge, split or rename changes the gallery's cluster names
        if self.state.point_filter.get("column") in ("cluster", "silhouette", "centre_distance"):
            self.apply_filter()

    def _show_cluster_buttons(self) -> None:
        buttons = [widgets.HTML("<span class='ss-status'>select&nbsp;</span>")]
        for cluster in self.state.clusters():
            button = widgets.Button(description=f"{self.state.cluster_name(cluster)}", tooltip=f"select cluster {cluster}",
                                    layout=widgets.Layout(width="auto"))
            button.add_class("ss-select-cluster")
            button.on_click(guarded(lambda _, c=cluster: self.select_cluster(c), self.state, "Select cluster"))
            buttons.append(button)
        self.cluster_select.children = buttons

    def _on_selection(self, change=None) -> None:
        selection = self.state.selection
        n = 0 if selection is None else len(selection)
        self.selected_label.value = f"<b>{n:,}</b> selected&nbsp;"
        self._push_selection_to_plot()
        self._update_histogram_selection()
        self._show_gallery(page=0)

    def gallery_rows(self) -> np.ndarray:
        """The selected rows in the grid's order."""
        selection = self.state.selection
        if selection is None or not len(selection):
            return np.zeros(0, dtype=np.int64)
        key = self.gallery_sort.value
        if not key:
            return selection
        if key == "image_id":
            order = np.argsort(self.data.frame["image_id"].astype(str).to_numpy()[selection], kind="stable")
            return selection[order if not self.gallery_descending.value else order[::-1]]
        values = np.asarray(self.columns.values(key), dtype=float)[selection]
        values = np.where(np.isnan(values), -np.inf, values)
        order = np.argsort(-values if self.gallery_descending.value else values, kind="stable")
        return selection[order]

    def _show_gallery(self, page: int = 0) -> None:
        rows = self.gallery_rows()
        n_pages = max(1, -(-len(rows) // GALLERY_SIZE))
        self.gallery_page = page = min(max(page, 0), n_pages - 1)
        self.gallery_previous.disabled = page == 0
        self.gallery_next.disabled = page >= n_pages - 1
        if not len(rows):
            self._captions = []
            self.gallery_label.value = ""
            self.gallery.children = [widgets.HTML("<span class='ss-status'>nothing selected</span>")]
            return
        shown = rows[page * GALLERY_SIZE:(page + 1) * GALLERY_SIZE]
        self.gallery_label.value = (f"<span class='ss-status'>page {page + 1} of {n_pages} · images "
                                    f"{page * GALLERY_SIZE + 1:,}–{page * GALLERY_SIZE + len(shown):,} of "
                                    f"{len(rows):,}</span>")
        images = self.data.load_images(shown)
        cards, self._captions = [], []
        for index, image in zip(shown.tolist(), images):
            caption = widgets.HTML(self._caption(index))
            self._captions.append((index, caption))
            open_button = widgets.Button(description="show", tooltip="full size, beside its nearest neighbours",
                                         layout=widgets.Layout(width="96px"))
            open_button.on_click(guarded(lambda _, row=index: self.show_detail(row), self.state, "show"))
            card = widgets.VBox([widgets.Image(value=png_bytes(image, 96), format="png", width=96, height=96),
                                 caption, open_button])
            card.add_class("ss-gallery-card")
            cards.append(card)
        self.gallery.children = cards

    def _caption(self, index: int) -> str:
        cluster = self.state.assignments[index]
        key = self.gallery_sort.value if hasattr(self, "gallery_sort") else ""
        extra = ""
        if key and key not in ("image_id", "cluster"):
            extra = f"<br>{esc(BY_KEY[key].label)} {float(self.columns.values(key)[index]):.3g}"
        return (f"<div class='ss-caption' data-row='{index}'>{esc(self.data.frame.at[index, 'image_id'])}<br>"
                f"<span class='ss-swatch' style='background:{cluster_color(cluster)}'></span>"
                f"{esc(self.state.cluster_name(cluster))}{extra}</div>")

    def _update_captions(self) -> None:
        for index, caption in getattr(self, "_captions", []):
            caption.value = self._caption(index)

    # ------------------------------------------------------------------ panels
    def metrics_html(self) -> str:
        state, frame = self.state, self.data.frame
        assignments = state.assignments
        parts = []
        for column in ARI_NMI_TABLES:
            if column == "truth" and labelled_rows(frame, column).sum() >= 2 and not state.shows_test_labels():
                parts.append(self.evaluation_only("", "Test ARI / NMI (ground-truth file)"))
                continue
            table = ari_nmi_table(frame, assignments, column, n_boot=N_BOOT)
            if table:
                parts.append(table)
        if not parts:
            X = self.data.reduced_features()
            k = len(np.unique(assignments))
            if 1 < k < len(X):
                score = silhouette_score(X, assignments, sample_size=min(len(X), 1500), random_state=0)
                parts.append(banner(f"No labels here: silhouette {fmt(score)} (from -1 to 1; higher = tighter, "
                                    f"better separated clusters; on 1,500 sampled images).", "info"))
        if self.data.selection_table is not None and len(self.data.selection_table) > 1:
            chosen = self.data.chosen or {}
            parts.append(f"<details><summary>method chosen without labels: <b>{esc(chosen.get('method', '?'))}</b> on "
                         + (f"the <b>{esc(self.data.extractor)}</b> features, " if chosen.get('view') == self.data.extractor
                            else f"<b>{esc(chosen.get('view', '?'))}</b> of the <b>{esc(self.data.extractor)}</b> features, ")
                         + f"k = {self.data.clustered_with[0] if self.data.clustered_with else '?'} "
                         "(most stable under resampling, then best silhouette)"
                         "</summary>" + self.data.selection_table.to_html(
                             index=False, classes="ss-table", border=0, float_format=lambda v: f"{v:.3f}") + "</details>")
        return "".join(parts)

    def cluster_table_html(self) -> str:
        return cluster_table_html(self.state, self._labels())

    def show_fingerprints(self) -> None:
        state = self.state
        self.fingerprint_box.children = [widgets.HTML("<span class='ss-status'>computing…</span>")]
        rows = np.concatenate([sample_members(state.assignments, c) for c in state.clusters()])
        images = self.data.load_images(rows)
        prints = cluster_fingerprints(images, state.assignments[rows])
        cards = []
        for cluster, fingerprint in prints.items():
            residual = png_bytes(to_uint8(fingerprint.mean_residual), 160)
            spectrum = png_bytes(colormap(to_uint8(fingerprint.mean_log_spectrum)), 160)
            cards.append(widgets.VBox([
                widgets.HTML(f"<b><span class='ss-swatch' style='background:{cluster_color(cluster)}'></span>"
                             f"{esc(state.cluster_name(cluster))}</b>"),
                widgets.HBox([widgets.VBox([widgets.Image(value=residual, format="png", width=160),
                                            widgets.HTML("<div class='ss-caption'>mean residual</div>")]),
                              widgets.VBox([widgets.Image(value=spectrum, format="png", width=160),
                                            widgets.HTML("<div class='ss-caption'>mean log power spectrum</div>")])]),
                widgets.HTML(f"<div class='ss-caption' style='max-width:330px'>{esc(fingerprint.distinctive)}</div>"),
            ], layout=widgets.Layout(border="1px solid #e3e6ee", padding="4px", margin="4px")))
        self.fingerprint_box.children = [widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap"))]
