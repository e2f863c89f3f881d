"""Generator fingerprints (sub-task 2): scatter, curation of clusters, gallery, visual fingerprints.

The view holds the controls and their wiring; the scatter (generator_scatter.py) and the column
histogram (generator_histogram.py) are parts of it in modules of their own, and the filter, sort,
paging and move-guard logic is plain code in synthscope_dashboard/grid.py.
"""

from __future__ import annotations

import collections

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from synthscope_dashboard.columns import BY_KEY, NUMBER, PointColumns
from synthscope_dashboard.fingerprints import cluster_fingerprint_images, sample_members
from synthscope_dashboard.grid import grid_order, move_refusal, page_bounds
from synthscope_dashboard.imaging import cluster_color, colormap, png_bytes, to_uint8
from synthscope_dashboard.tables import ARI_NMI_TABLES, N_BOOT, ari_nmi_table, cluster_table_html, labelled_rows
from synthscope_dashboard.views.common import View, banner, esc, fmt, guarded
from synthscope_dashboard.views.generator_filter import FilterPart
from synthscope_dashboard.views.generator_histogram import HistogramPart
from synthscope_dashboard.views.generator_jscatter import JScatterPart
from synthscope_dashboard.views.generator_scatter import THUMB_PX, ScatterPart
from synthscope_dashboard.views.plot_selection import SelectionBridge, mirror_selection
from synthscope_dashboard.workspace import CLUSTER_METHODS, PROJECTION_METHODS

GALLERY_SIZE = 16   # images per page of the selection grid
GRID = "selection"   # this view's grid in AppState.grid_sort
NEW_CLUSTER = -1


class GeneratorsView(ScatterPart, JScatterPart, HistogramPart, FilterPart, View):
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
        self._neighbours = None   # (model, NearestNeighbors) in data.clustering_space(), fit on the first click
        self.columns = PointColumns(state)
        self.visible = np.arange(self.data.n, dtype=np.int64)   # rows the filter keeps, as the scatter holds them
        self._revision = 0        # +1 whenever the scatter's points are other rows (a filter); sent as trace meta
        self._selection_version = 0   # +1 at every new selection (box, lasso, histogram, cluster, Escape, undo)
        self._moved = None            # (selection version, target) of the last move: a press moves it once
        self.gallery_page = 0
        self._detail_row: int | None = None   # the clicked image the detail panel shows

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
        self.engine_control = self._make_engine_control()   # auto / plotly / jupyter-scatter
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
                          self.reload_button, self.engine_control],
                         layout=widgets.Layout(flex_flow="row wrap")),   # 1280 px: all shown
            widgets.HBox([self.embedding_progress, self.embedding_what]),
            widgets.HBox([self.filter_column, self.filter_values, self.filter_range, self.filter_clear,
                          self.filter_label], layout=widgets.Layout(align_items="center")),
            self.hint,
        ]))
        self._show_hint()
        # which space and method the clusters come from, and a warning when the features shown are others
        self.space_badge = widgets.HTML()
        self.space_badge.add_class("ss-space-badge")
        if state.point_filter and state.point_filter.get("column") not in self._column_keys():
            state.point_filter = {}        # a saved filter on a column this page does not offer
        self._show_filter_controls()   # a restored session's filter (issue 22 item 3)
        self.visible = np.flatnonzero(self.filter_mask()).astype(np.int64)
        self._show_filter_label()

        # the main scatter: plotly below a size, jupyter-scatter above it, or as the engine control says
        drawn = self._make_main_scatter()   # (views/generator_jscatter.py)
        self.legend = widgets.HTML()
        self.legend.add_class("ss-legend")
        self._show_legend()
        self.scatter_box = scatter_box = widgets.VBox([self.legend, *drawn],
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
        self.histogram.bridge = self.histogram_bridge
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
        side = widgets.VBox([self.preview_box, self._make_summaries_button(), self.metrics, self.cluster_table, self.control(self.cluster_select),
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
        saved_sort = state.grid_sort.get(GRID, {})
        sort_keys = [value for _, value in self._sort_options()]
        self.gallery_sort = widgets.Dropdown(options=self._sort_options(), description="sort by",
                                             value=saved_sort.get("column") if saved_sort.get("column") in sort_keys
                                             else "", layout=widgets.Layout(width="300px"))
        self.gallery_descending = widgets.Dropdown(options=[("highest first", True), ("lowest first", False)],
                                                   value=saved_sort.get("descending", True) is not False,
                                                   layout=widgets.Layout(width="130px"))
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
            widget.observe(lambda c: self._on_gallery_sort(), names="value")
        state.observe(self._follow_grid_sort, names="grid_sort")
        self.gallery_previous.on_click(lambda _: self._show_gallery(page=self.gallery_page - 1))
        self.gallery_next.on_click(lambda _: self._show_gallery(page=self.gallery_page + 1))
        self.recluster.on_click(lambda _: self.recluster_with(self.k.value))
        self.k_confirm.on_click(lambda _: self.recluster_with(self.k_answer.value))
        self.reload_button.on_click(lambda _: state.reload_data())
        self.move.on_click(lambda _: self.move_selection())
        self.target.observe(lambda c: self._show_move_button(), names="value")
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
        state.observe(lambda c: self._show_space_badge(), names=["assignments", "data_version"])
        self._show_space_badge()
        self._show_k_prompt()
        self._on_assignments()
        self._show_histogram()
        self._on_selection()
        return [self.k_prompt, self.k_warning, top, self.space_badge,
                widgets.HBox([scatter_box, side]),
                curation,
                self.detail,   # above the gallery, and scrolled into view on a click (issue 22 defect 7)
                widgets.HTML("<b>Selected images</b> <span class='ss-status'>(drag a box or lasso on the scatter, "
                             "a box over the histogram's bars, or select a cluster)</span>"),
                widgets.HBox([self.control(widgets.HBox([self.gallery_sort, self.gallery_descending, self.gallery_previous,
                                                         self.gallery_next])), self.gallery_label],
                             layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
                self.gallery,
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
            hint += " After the command, press Reload data (Prepare re-reads by itself; the curation is kept)."
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

    def _show_space_badge(self) -> None:
        data = self.state.workspace.attribution
        space = data.space_description()
        text = f"<span class='ss-badge' data-space='{esc(data.clustered_on or '')}'>clusters: {esc(space)}</span>"
        if data.space_differs:
            text += " " + banner(
                f"The layout and the features menu show the <b>{esc(data.extractor)}</b> features, but the clusters "
                f"were found in <b>{esc(data.clustered_on)}</b>: silhouette, distance to centre, outlier score, "
                f"neighbours and split are measured there. Press Re-cluster to cluster on {esc(data.extractor)}.", "warn")
        self.space_badge.value = text

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
        if self.jscatter is not None:   # other points: a new widget, in the same place
            old = self.jscatter.widget
            self.scatter_box.children = [self.legend, *self._make_main_scatter()]
            old.close()
        else:
            with self.scatter.batch_update():   # one message: the page never holds one without the other
                self.scatter.data[0].meta = self.revision()
                self.scatter.data[0].text = self._hover_text()
                self.scatter.data[0].customdata = self.visible.astype(np.int32)
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
            self._show_filter_controls()
            self.apply_filter()

    def _show_embedding_progress(self, done: int, total: int, what: str) -> None:
        """Widget messages go out while the kernel embeds, so the bar moves during the call."""
        self.embedding_progress.layout.display = ""
        self.embedding_progress.max = max(total, 1)
        self.embedding_progress.value = done
        self.embedding_what.value = f"<span class='ss-status'>{esc(what)}: {done:,} / {total:,} images</span>"

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

    # ------------------------------------------------------------------ reactions
    def _on_browser_selection(self, rows: np.ndarray) -> None:
        events = self.bridge.events if self.bridge is not None else []
        gesture = not events or events[-1][0] in ("selected", "deselected")
        selection = self.state.selection
        if not gesture and selection is not None and np.array_equal(rows, selection):
            return   # a redraw that shows the same points is no new selection (it would re-arm Move selection)
        self.state.select(rows)

    def _on_escape(self, rows: np.ndarray) -> None:
        """Escape in the page: the plot has dropped its selection (rows: what it still shows)."""
        self.state.select(rows)
        self.state.status = "selection cleared" if rows.size == 0 else f"{rows.size:,} images still selected"

    def _refuse_unless_shown(self, shown: np.ndarray | None) -> bool:
        """True (and the status says why) when the kernel's selection is not the one the plot shows."""
        state = self.state
        selected = state.selection if state.selection is not None else np.zeros(0, dtype=np.int64)
        refusal = move_refusal(shown, selected)
        if refusal is None:
            return False
        if shown is not None:
            state.select(shown)   # the selection follows the plot
        state.status = refusal
        return True

    def move_selection(self) -> int:
        """Move the selected images to the target cluster, only if they are the ones the plot shows, and
        once per selection and target: the second click of a double-click finds the selection it would move
        already moved (issue 22 defect 12), while a new box over the same points is a new selection."""
        state = self.state
        cluster = None if self.target.value == NEW_CLUSTER else self.target.value
        bridge = self.bridge
        if bridge is not None and bridge.live:
            shown, bridge.shown = bridge.shown, None   # each press needs its own report from the page
            if self._refuse_unless_shown(shown):
                return -1
        if self._moved == (self._selection_version, self.target.value):
            state.status = (f"not moved again: these {len(state.selection):,} images were moved by the first click "
                            "(a double-click presses twice); select them again to move them again")
            return -1
        target = state.assign(state.selection, cluster)
        if target >= 0:   # recorded after the move's own redraw, which forgets an older move (_on_assignments)
            self._moved = (self._selection_version, self.target.value)
            self._show_move_button()
        return target

    def _show_move_button(self) -> None:
        """Greyed out once the selection is moved, until another selection, target or curation step."""
        moved = self._moved == (self._selection_version, self.target.value)
        self.move.disabled = moved
        self.move.tooltip = "moved; select again (or pick another target) to move again" if moved else ""

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

    def _on_color_by(self, change=None) -> None:
        if self.color_by.value != self._color_key():
            self._follow(self.color_by, self._color_key())
        self._update_marker(force=True)
        self._set_title()
        self._show_legend()
        self._show_histogram()

    # ------------------------------------------------------------------ selection, everywhere
    def select_cluster(self, cluster: int) -> None:
        """Select the images of one cluster (those the filter keeps)."""
        members = np.flatnonzero(self.state.assignments == cluster)

        self.state.select(members[np.isin(members, self.visible)])

    def _on_assignments(self, change=None) -> None:
        state = self.state
        self._moved = None   # after an undo, a merge or another move, the same selection may move again
        self._show_move_button()
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
        self._refresh_summaries()   # at once, or on request in large workspaces
        self._show_cluster_buttons()
        self._update_captions()   # a move, merge, split or rename changes the gallery's cluster names
        if self._detail_row is not None:
            self.show_detail(self._detail_row, scroll=False)   # and the clicked image's (issue 22 defect 8)
        if self.state.point_filter.get("column") in ("cluster", "silhouette", "centre_distance"):
            # these values change with every move, merge and split: the filter is applied to the new values,
            # and its controls show the new range, so nothing outside the slider's ends is shown (defect 5)
            self._show_filter_controls()
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
        if not self._filtering and self._filter_dropped:
            self._filter_dropped = 0      # the analyst selected anew: the note about the old selection goes
            self._show_filter_label()
        self._selection_version += 1   # a new selection: Move selection moves it (once)
        self._show_move_button()
        selection = self.state.selection
        n = 0 if selection is None else len(selection)
        self.selected_label.value = f"<b>{n:,}</b> selected&nbsp;"
        self._push_selection_to_plot()
        self._update_histogram_selection()
        self._show_gallery(page=0)

    def _on_gallery_sort(self) -> None:
        if not self._following_sort:
            self.state.set_grid_sort(GRID, self.gallery_sort.value, self.gallery_descending.value)
        self._show_gallery(page=0)

    def _follow_grid_sort(self, change=None) -> None:
        """A restored session's sort: the grid's controls follow it."""
        saved = self.state.grid_sort.get(GRID, {})
        self._following_sort = True
        try:
            self._follow(self.gallery_sort, saved.get("column", ""))
            self._follow(self.gallery_descending, saved.get("descending", True) is not False)
        finally:
            self._following_sort = False

    _following_sort = False

    def gallery_rows(self) -> np.ndarray:
        """The selected rows in the grid's order."""
        def values_of(key: str) -> np.ndarray:
            if key == "image_id":
                return self.data.frame["image_id"].astype(str).to_numpy()
            return self.columns.values(key)

        return grid_order(self.state.selection, self.gallery_sort.value, self.gallery_descending.value, values_of)

    def _show_gallery(self, page: int = 0) -> None:
        rows = self.gallery_rows()
        page, n_pages = page_bounds(len(rows), page, GALLERY_SIZE)
        self.gallery_page = page
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
            open_button = self.transient_control(widgets.Button(
                description="show", tooltip="full size, beside its nearest neighbours", layout=widgets.Layout(width="96px")))
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
            k = len(np.unique(assignments))
            if 1 < k < self.data.n:   # the mean of the silhouette column: one silhouette per page
                score = float(np.mean(self.columns.values("silhouette")))
                kind = " (centroid form)" if self.columns.silhouette_kind == "centroid" else ""
                parts.append(banner(f"No labels here: mean silhouette{kind} {fmt(score)} (from -1 to 1; higher = "
                                    "tighter, better separated clusters; in the space the clusters were found in: "
                                    f"{esc(self.data.space_description())}).", "info"))
        if self.data.selection_table is not None and len(self.data.selection_table) > 1:
            chosen = self.data.chosen or {}
            parts.append(f"<details><summary>method chosen without labels: <b>{esc(chosen.get('method', '?'))}</b> on "
                         f"the <b>{esc(chosen.get('view', '?'))}</b> features "
                         f"({esc(self.data.space_description())}), "
                         + f"k = {self.data.clustered_with[0] if self.data.clustered_with else '?'} "
                         "(most stable under resampling; the silhouette breaks exact ties)"
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
        prints = cluster_fingerprint_images(images, state.assignments[rows])
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
