"""Training-data fingerprints (sub-task 1): scores, threshold, metrics with CIs, leakage, nearest pairs."""

from __future__ import annotations

import functools

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from skimage.metrics import structural_similarity

from synthscope_dashboard.imaging import difference_image, difference_scale, png_bytes
from synthscope.membership import evaluate_predictions
from synthscope.metrics import membership_report
from synthscope_dashboard.views.common import (View, banner, difference_colorbar, esc, estimate_row, fmt,
                                                metric_table, with_terms)
from synthscope_dashboard.views.plot_selection import BridgedFigureWidget, SelectionBridge, clear_outline, mirror_selection

N_BINS = 30
HISTOGRAM_TRACES = (("dev used", "#cf3d3d", True), ("dev not used", "#3d6fcf", True),
                    ("test (unlabelled; click to show)", "#9aa0ad", "legendonly"))

PAGE_SIZE = 24          # thumbnails per page of the score grid
THUMB_PX = 96
LABEL_FREE_METHODS = ("mixture", "prevalence")   # threshold fits that need no labels (no dev group)
SORT_COLUMNS = (("score", "membership score"), ("rank", "rank in its folder"), ("percentile", "percentile in its folder"),
                ("nearest_distance", "distance to the nearest generated image"))
N_BOOT = 1000   # as `synthscope membership`'s default --n-boot, so the page and the CLI print the same CIs
ALL_GROUPS = ""
GRID = "scores"   # this view's grid in AppState.grid_sort
METRIC_LABELS = (("f1", "F1"), ("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                 ("specificity", "specificity"), ("kappa", "Cohen's kappa"))


class TrainingView(View):
    title = "Training-data fingerprints"

    def __init__(self, state):
        super().__init__(state)
        self.data = state.workspace.membership
        self.histogram: go.FigureWidget | None = None

    def build(self):
        state = self.state
        pairs = list(self.data.pairs)
        self.group = widgets.Dropdown(options=[(p, p) for p in pairs] + ([("all models", ALL_GROUPS)] if len(pairs) > 1 else []),
                                      value=state.membership_group, description="model",
                                      layout=widgets.Layout(width="320px"))
        self.slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.001, readout_format=".4g",
                                          description="threshold", continuous_update=False,
                                          layout=widgets.Layout(width="420px"))
        self.slider.add_class("ss-threshold")
        self.fit_button = widgets.Button(description="Reset to the fitted threshold",
                                         tooltip="every model's threshold back to the one fit on its dev group, or "
                                                 "label-free without dev (what `synthscope membership` applies)",
                                         layout=widgets.Layout(width="auto"))
        # the score column and why it was chosen, for the model shown: each pair chose its own (defect 10)
        self.score_line = widgets.HTML()
        self.score_line.add_class("ss-score-line")
        controls = self.control(widgets.VBox([widgets.HBox([self.group, self.slider, self.fit_button]),
                                              self.score_line]))
        self.verdict = widgets.HTML()
        self.histogram = self._make_histogram()
        self.figures["scores"] = self.histogram
        # a box over the histogram's bars selects their real images in the grid below
        self.histogram_bridge = SelectionBridge(trace_rows=lambda: [], rows_for=self._histogram_rows,
                                                on_change=self._on_histogram_selection, on_escape=lambda rows: None,
                                                revision=lambda: f"bins-{self._bins_revision}",
                                                follow_changes=False, follow_deselect=False,
                                                on_report=lambda points: mirror_selection(self.histogram, points))
        self.histogram.bridge = self.histogram_bridge
        histogram_box = widgets.VBox([self.histogram, self.histogram_bridge], layout=widgets.Layout(width="50%"))
        histogram_box.add_class("ss-scatter-box")
        histogram_box.add_class("ss-score-histogram")
        self.metrics = widgets.HTML()
        self.metrics.add_class("ss-membership-metrics")
        self.threshold_text = widgets.HTML()
        self.threshold_text.add_class("ss-threshold-values")
        self._build_grid()
        self.pair_box = widgets.VBox()
        self.mark_used = widgets.Button(description="Mark used", icon="check")
        self.mark_not_used = widgets.Button(description="Mark not used", icon="times")
        self.clear_override = widgets.Button(description="Clear override", icon="undo")
        override_bar = self.control(widgets.HBox([self.mark_used, self.mark_not_used, self.clear_override]))

        self.group.observe(lambda c: setattr(state, "membership_group", c["new"]), names="value")
        self.slider.observe(self._on_slider, names="value")
        self.fit_button.on_click(lambda _: state.reset_thresholds())
        self.mark_used.on_click(lambda _: self._override(1))
        self.mark_not_used.on_click(lambda _: self._override(0))
        self.clear_override.on_click(lambda _: self._override(None))
        state.observe(self._on_threshold, names="thresholds")
        state.observe(self._on_group, names="membership_group")
        state.observe(self._on_overrides, names="overrides")
        state.observe(self._on_focus, names="focused_real")
        state.observe(self._on_real_selection, names="real_selection")
        state.observe(lambda _: self._refresh_numbers(), names="evaluation_mode")
        self._on_group()
        return [controls, self.threshold_text, self.verdict,
                widgets.HBox([histogram_box, widgets.VBox([self.metrics], layout=widgets.Layout(width="50%"))]),
                widgets.HTML("<b>Real images by score</b> <span class='ss-status'>(* = set by hand; "
                             "click one to see its nearest generated images)</span>"),
                self.grid_controls, self.page_label, self.grid, override_bar, self.pair_box]

    # ------------------------------------------------------------------ the score grid
    def _build_grid(self) -> None:
        frame = self.data.frame
        columns = [(label, column) for column, label in SORT_COLUMNS if column in frame]
        small = widgets.Layout(width="auto")
        saved = self.state.grid_sort.get(GRID, {})   # a restored session's sort (issue 22 item 3)
        self.sort = widgets.Dropdown(options=columns, description="sort by", layout=small,
                                     value=saved.get("column") if saved.get("column") in dict(SORT_COLUMNS) and
                                     saved.get("column") in frame else "score")
        self.descending = widgets.Dropdown(options=[("highest first", True), ("lowest first", False)],
                                           value=saved.get("descending", True) is not False, layout=small)
        self.search = widgets.Text(placeholder="image id contains…", description="search", continuous_update=True,
                                   layout=widgets.Layout(width="260px"))
        splits = [s for s in ("dev", "test") if (frame["split"] == s).any()]
        self.split_filter = widgets.Dropdown(options=[("every split", "")] + [(s, s) for s in splits], value="",
                                             description="split", layout=small)
        self.call_filter = widgets.Dropdown(options=[("any call", ""), ("called used", "used"),
                                                     ("called not used", "not used")], value="", layout=small)
        self.hand_filter = widgets.Dropdown(options=[("by hand or not", ""), ("set by hand", "hand"),
                                                     ("not set by hand", "rule")], value="", layout=small)
        self.prev_page = widgets.Button(description="Previous", icon="chevron-left")
        self.next_page = widgets.Button(description="Next", icon="chevron-right")
        self.page_label = widgets.HTML()
        self.page_label.add_class("ss-page-label")
        self.picked_label = widgets.HTML()
        self.picked_label.add_class("ss-picked-label")
        self.picked_clear = widgets.Button(description="Show every image", layout=widgets.Layout(width="auto",
                                                                                                 display="none"))
        self.picked_clear.on_click(lambda _: setattr(self.state, "real_selection", None))
        self.grid_controls = self.control(widgets.VBox([
            widgets.HBox([self.sort, self.descending, self.search], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.split_filter, self.call_filter, self.hand_filter, self.prev_page, self.next_page],
                         layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.picked_label, self.picked_clear], layout=widgets.Layout(align_items="center")),
        ]))
        self.cells = []
        for index in range(PAGE_SIZE):
            image = widgets.Image(format="png", width=THUMB_PX, height=THUMB_PX)
            caption = widgets.HTML()
            button = self.control(widgets.Button(description="show", layout=widgets.Layout(width="124px")))
            button.on_click(lambda _, index=index: self._on_cell(index))
            cell = widgets.VBox([image, caption, button], layout=widgets.Layout(width="140px", align_items="center"))
            cell.add_class("ss-thumb")
            self.cells.append(cell)
        self.grid = widgets.HBox(self.cells, layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        self.grid.add_class("ss-score-grid")
        self.page = 0
        self.grid_rows = np.zeros(0, dtype=np.int64)   # every row the filters keep, in the sort order
        self.page_rows = np.zeros(0, dtype=np.int64)   # the rows on the page shown
        self.thumbnail = functools.lru_cache(maxsize=2048)(self._thumbnail_png)
        for widget in (self.sort, self.descending, self.search, self.split_filter, self.call_filter, self.hand_filter):
            widget.observe(lambda _: self._fill_grid(page=0), names="value")
        for widget in (self.sort, self.descending):
            widget.observe(lambda _: self._following_sort or self.state.set_grid_sort(
                GRID, self.sort.value, self.descending.value), names="value")
        self.state.observe(self._follow_grid_sort, names="grid_sort")
        self.prev_page.on_click(lambda _: self._fill_grid(page=self.page - 1))
        self.next_page.on_click(lambda _: self._fill_grid(page=self.page + 1))

    def _follow_grid_sort(self, change=None) -> None:
        saved = self.state.grid_sort.get(GRID, {})
        self._following_sort = True
        try:
            if saved.get("column") in [value for _, value in self.sort.options]:
                self.sort.value = saved["column"]
            self.descending.value = saved.get("descending", True) is not False
        finally:
            self._following_sort = False

    _following_sort = False

    def _thumbnail_png(self, row: int) -> bytes:
        """PNG bytes of one real image's thumbnail (cached per row: a page is decoded once)."""
        return png_bytes(self.data.load_real(np.array([row]))[0], THUMB_PX)

    @property
    def n_pages(self) -> int:
        return max(1, -(-len(self.grid_rows) // PAGE_SIZE))

    def filtered_rows(self, predictions: np.ndarray | None = None) -> np.ndarray:
        """The rows of the chosen model pair that pass the search and filters, in the chosen order."""
        frame = self.data.frame
        predictions = self.state.membership_predictions() if predictions is None else predictions
        rows = self._rows()
        keep = np.ones(len(rows), dtype=bool)
        picked = self.state.real_selection
        if picked is not None:
            keep &= np.isin(rows, picked)
        if self.split_filter.value:
            keep &= frame["split"].to_numpy()[rows] == self.split_filter.value
        if self.call_filter.value:
            keep &= predictions[rows] == (1 if self.call_filter.value == "used" else 0)
        if self.hand_filter.value:
            by_hand = frame["key"].iloc[rows].isin(list(self.state.overrides)).to_numpy()
            keep &= by_hand if self.hand_filter.value == "hand" else ~by_hand
        needle = self.search.value.strip().lower()
        if needle:
            keep &= frame["image_id"].iloc[rows].astype(str).str.lower().str.contains(needle, regex=False).to_numpy()
        rows = rows[keep]
        values = frame[self.sort.value].to_numpy(dtype=float)[rows]
        ids = frame["image_id"].astype(str).to_numpy()[rows]
        values = np.where(np.isnan(values), -np.inf if self.descending.value else np.inf, values)
        order = np.lexsort((ids, -values if self.descending.value else values))
        return rows[order]

    def _fill_grid(self, predictions: np.ndarray | None = None, page: int | None = None) -> None:
        frame = self.data.frame
        predictions = self.state.membership_predictions() if predictions is None else predictions
        self.grid_rows = self.filtered_rows(predictions)
        self.page = min(max(self.page if page is None else page, 0), self.n_pages - 1)
        self.page_rows = self.grid_rows[self.page * PAGE_SIZE:(self.page + 1) * PAGE_SIZE]
        overrides = self.state.overrides
        column, label = self.sort.value, dict(SORT_COLUMNS)[self.sort.value]
        for index, cell in enumerate(self.cells):
            if index >= len(self.page_rows):
                cell.layout.display = "none"
                continue
            row = int(self.page_rows[index])
            image, caption, _ = cell.children
            image.value = self.thumbnail(row)
            key = frame.at[row, "key"]
            truth = {1: "dev: used", 0: "dev: not used"}.get(int(frame.at[row, "label"]), "unlabelled")
            call = "used" if predictions[row] else "not used"
            extra = "" if column in ("score", "rank") else f"<br>{esc(label.split(' ')[0])} {frame.at[row, column]:.4g}"
            caption.value = (f"<div class='ss-caption ss-thumb-caption' data-row='{row}'><b>{esc(frame.at[row, 'image_id'])}</b>"
                             f"<br>{esc(frame.at[row, 'split'])} · {frame.at[row, 'score']:.4g} · #{frame.at[row, 'rank']}"
                             f"{extra}<br><b>{call}</b>{' *' if key in overrides else ''} · {truth}</div>")
            cell.layout.display = None
            if row == self.state.focused_real:
                cell.add_class("ss-thumb-focused")
            else:
                cell.remove_class("ss-thumb-focused")
        shown = len(self.grid_rows)
        first = self.page * PAGE_SIZE + 1 if shown else 0
        self.page_label.value = (f"<span class='ss-status'>page {self.page + 1} of {self.n_pages} · images "
                                 f"{first:,}–{self.page * PAGE_SIZE + len(self.page_rows):,} of {shown:,}"
                                 f"{'' if shown else ' (no image matches the search and filters)'}</span>")
        self.prev_page.disabled = self.page == 0
        self.next_page.disabled = self.page >= self.n_pages - 1

    def _on_cell(self, index: int) -> None:
        if index < len(self.page_rows):
            self.state.focused_real = int(self.page_rows[index])

    # ------------------------------------------------------------------ figures
    def _rows(self) -> np.ndarray:
        if self.state.membership_group == ALL_GROUPS:
            return np.arange(self.data.n)
        return self.data.pair_rows[self.state.membership_group]

    def _pair(self):
        return self.data.pairs.get(self.state.membership_group)

    def _make_histogram(self) -> go.FigureWidget:
        figure = BridgedFigureWidget(layout=go.Layout(
            height=360, barmode="overlay", margin={"l": 40, "r": 10, "t": 36, "b": 40},
            title={"text": "membership score: used vs not-used (dev)", "font": {"size": 14}},
            xaxis={"title": "score (higher = more likely used)"},
            yaxis={"title": "images"}, legend={"orientation": "h", "y": -0.25}, plot_bgcolor="white"))
        figure.layout.dragmode = "select"
        for name, color, visible in HISTOGRAM_TRACES:
            figure.add_trace(go.Bar(x=[], y=[], name=name, opacity=0.55, marker={"color": color}, visible=visible,
                                    selected={"marker": {"opacity": 0.9}}, unselected={"marker": {"opacity": 0.25}},
                                    hovertemplate="%{customdata}: %{y} images<extra>%{fullData.name}</extra>"))
        figure.layout.shapes = [{"type": "line", "x0": 0, "x1": 0, "y0": 0, "y1": 1, "yref": "paper",
                                 "line": {"color": "#1f2430", "width": 2, "dash": "dash"}},
                                {"type": "line", "x0": 0, "x1": 0, "y0": 0, "y1": 1, "yref": "paper", "visible": False,
                                 "line": {"color": "#e8a317", "width": 2, "dash": "dot"}}]   # the focused image
        self._bins_revision = 0
        self._bin_members: list[list[np.ndarray]] = [[] for _ in HISTOGRAM_TRACES]
        return figure

    def _histogram_rows(self, points) -> np.ndarray:
        """The real images of the bars the histogram highlights (each bar holds many)."""
        chosen = [self._bin_members[trace][int(bar)] for trace, bars in enumerate(points[:len(self._bin_members)])
                  if bars for bar in bars if 0 <= int(bar) < len(self._bin_members[trace])]
        return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def _on_histogram_selection(self, rows: np.ndarray) -> None:
        self.state.real_selection = rows if rows.size else None

    def _on_real_selection(self, change=None) -> None:
        picked = self.state.real_selection
        if picked is None:
            self.picked_label.value = ""
            self.picked_clear.layout.display = "none"
            if any(trace.selectedpoints for trace in self.histogram.data):
                clear_outline(self.histogram)
                with self.histogram.batch_update():
                    for trace in self.histogram.data:
                        trace.selectedpoints = None
        else:
            self.picked_label.value = (f"<span class='ss-status'><b>{len(picked):,}</b> images picked in the "
                                       "histogram: the grid shows only them</span>")
            self.picked_clear.layout.display = None
        self._fill_grid(page=0)

    def _on_group(self, change=None) -> None:
        rows = self._rows()
        frame = self.data.frame.iloc[rows]
        pooled = self._pair() is None      # several models: raw scores differ in scale, show percentiles
        values = frame["percentile" if pooled else "score"].to_numpy(dtype=float)
        labels = frame["label"].to_numpy()
        finite = values[np.isfinite(values)]
        edges = np.histogram_bin_edges(finite if finite.size else [0.0, 1.0], bins=N_BINS)
        centres, widths = ((edges[:-1] + edges[1:]) / 2).tolist(), np.diff(edges).tolist()
        bin_of = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, N_BINS - 1)
        names = [f"{a:.4g} – {b:.4g}" for a, b in zip(edges[:-1], edges[1:])]
        self._bins_revision += 1
        self._bin_members = []
        self.state.real_selection = None   # another model: other images
        clear_outline(self.histogram)
        with self.histogram.batch_update():
            for trace, part in zip(self.histogram.data, (labels == 1, labels == 0, labels < 0)):
                part = part & np.isfinite(values)
                members = [rows[part & (bin_of == b)] for b in range(N_BINS)]
                self._bin_members.append(members)
                trace.selectedpoints = None
                trace.x, trace.width, trace.customdata = centres, widths, names
                trace.y = [len(m) for m in members]
                trace.meta = f"bins-{self._bins_revision}"
            self.histogram.layout.xaxis.title.text = ("percentile of the score within its model (pooled models)"
                                                      if pooled else "score (higher = more likely used)")
        if not pooled:
            scores = frame["score"].to_numpy()
            threshold = self.state.thresholds[self._pair().name]
            low, high = min(float(scores.min()), threshold), max(float(scores.max()), threshold)
            span = max(high - low, 1e-9)
            low, high = low - 0.01 * span, high + 0.01 * span
            self._syncing = True      # moving the bounds clamps the value: that is no analyst's move
            try:
                if low > self.slider.max:
                    self.slider.max = high
                self.slider.min = low
                self.slider.max = high
                self.slider.step = span / 400
                self.slider.value = threshold
            finally:
                self._syncing = False
        self.slider.disabled = pooled
        self.score_line.value = self.score_line_html()
        self.verdict.value = self.verdict_html()
        self._on_threshold()

    def _on_slider(self, change) -> None:
        pair = self._pair()
        if pair is not None and not self._syncing:
            self.state.set_threshold(pair.name, change["new"])

    _syncing = False

    def _on_threshold(self, change=None) -> None:
        pair = self._pair()
        if pair is not None:
            threshold = self.state.thresholds[pair.name]
            if abs(self.slider.value - threshold) > 1e-12:
                self._syncing = True
                try:
                    self.slider.value = threshold
                finally:
                    self._syncing = False
        with self.histogram.batch_update():
            shape = self.histogram.layout.shapes[0]
            shape.visible = pair is not None
            if pair is not None:
                shape.x0 = shape.x1 = self.state.thresholds[pair.name]
        self._refresh_numbers()

    def _on_overrides(self, change=None) -> None:
        self._refresh_numbers()
        self._on_focus()

    def _refresh_numbers(self) -> None:
        predictions = self.state.membership_predictions()
        self.metrics.value = self.metrics_html(predictions)
        self.threshold_text.value = self.threshold_html()
        self._fill_grid(predictions)

    # ------------------------------------------------------------------ panels
    def threshold_html(self) -> str:
        """Each shown pair's threshold value as text (kept in presentation mode, where the slider is hidden)."""
        frame = self.data.frame
        shown = [self._pair()] if self._pair() is not None else list(self.data.pairs.values())
        parts = []
        for pair in shown:
            value = self.state.thresholds[pair.name]
            rows = self.data.pair_rows[pair.name]
            has_dev = bool(((frame["split"].to_numpy()[rows] == "dev") & (frame["label"].to_numpy()[rows] >= 0)).any())
            fitted = "fit on dev" if has_dev and pair.threshold_method not in LABEL_FREE_METHODS else \
                f"label-free, {pair.threshold_method}"
            source = (fitted if value == pair.default_threshold
                      else f"moved by hand; {fitted}: {pair.default_threshold:.4g}")
            parts.append(f"<span class='ss-threshold-value' data-pair='{esc(pair.name)}'><b>{esc(pair.name)}</b>: "
                         f"threshold {value:.4g} ({esc(source)})</span>")
        return "<div class='ss-status'>" + " · ".join(parts) + "</div>"

    def score_line_html(self) -> str:
        """Which score column decides the calls of the model shown (every model's, by name, when pooled)."""
        shown = [self._pair()] if self._pair() is not None else list(self.data.pairs.values())
        named = len(shown) > 1
        columns = "; ".join((f"{esc(pair.name)}: " if named else "") + f"{esc(pair.primary)} ({esc(pair.choice)})"
                            for pair in shown)
        return (f"<span class='ss-status'>score = {columns}; reference: each folder's own real images, "
                "leave-one-out, the same run as `synthscope membership`. Each model's threshold is fit on its dev "
                "group and applied unchanged to its test folder; an image at or above it is called "
                "<b>used</b>.</span>")

    def verdict_html(self) -> str:
        pairs = self.data.pairs
        shown = [self._pair()] if self._pair() is not None else list(pairs.values())
        parts = []
        for pair in shown:
            verdict = pair.verdict
            kind = "bad" if verdict.significant else "warn"
            head = "Leakage: YES" if verdict.significant else "Leakage: no significant signal"
            story = "".join(f"<li>{esc(line)}</li>" for line in pair.story)
            parts.append(banner(with_terms(f"<b>{esc(pair.name)} · {head}</b> — {esc(verdict.message)}<br>"
                                f"<span class='ss-status'>{esc(verdict.method)} · score {esc(pair.primary)}, chosen as "
                                f"{esc(pair.choice)}</span><ul class='ss-story'>{story}</ul>"), kind))
        return "".join(parts)

    def evaluations(self, predictions: np.ndarray, include_test: bool | None = None) -> list[tuple[str, object]]:
        """(caption, core evaluation) per table on the page: dev labels (in-sample), then the ground-truth
        file (evaluation only, and only in evaluation mode unless `include_test`) -- the same functions and
        numbers `synthscope membership --truth` prints."""
        include_test = self.state.shows_test_labels() if include_test is None else include_test
        frame = self.data.frame
        pair = self._pair()
        rows = self._rows()
        out = []
        for column, split, caption in (("label", "dev", "dev (labelled; the thresholds were fit here)"),
                                       ("truth", self.data.scored_split, "test (ground-truth file, evaluation only)")):
            if column == "truth" and (split == "dev" or not include_test):
                continue
            mask = (frame["split"].to_numpy()[rows] == split) & (frame[column].to_numpy()[rows] >= 0)
            if mask.sum() == 0:
                continue
            chosen = rows[mask]
            y, called = frame[column].to_numpy()[chosen], predictions[chosen]
            if pair is None:
                out.append((caption, membership_report(y, called, n_boot=N_BOOT)))
                continue
            out.append((caption, evaluate_predictions(
                y, called, frame["score"].to_numpy()[chosen], group=pair.name, primary=pair.primary,
                labels="dev" if split == "dev" else "test", baseline_table=pair.baselines.get(split),
                scan_groups=pair.scan_groups.get(split), n_boot=N_BOOT)))
        return out

    def _has_test_labels(self) -> bool:
        frame, rows = self.data.frame, self._rows()
        split = self.data.scored_split
        return split != "dev" and bool(((frame["split"].to_numpy()[rows] == split)
                                        & (frame["truth"].to_numpy()[rows] >= 0)).any())

    def metrics_html(self, predictions: np.ndarray) -> str:
        parts = []
        for caption, evaluation in self.evaluations(predictions):
            report = getattr(evaluation, "report", evaluation)
            baselines = report.baselines
            names = [name for name, _ in METRIC_LABELS] + [m for m in ("roc_auc",) if m in report.estimates]
            table_rows = [estimate_row(dict(METRIC_LABELS + (("roc_auc", "ROC AUC (no threshold)"),))[name],
                                       report.estimates[name],
                                       [("all used", baselines["all_used"][name]),
                                        ("all not used", baselines["all_not_used"][name]),
                                        ("random", baselines["random"][name])])
                          for name in names]
            beats = report.estimates["f1"].ci_low > baselines["all_used"]["f1"]
            note = ("" if beats else "<br><span class='ss-status'>F1's CI does not clear the all-used baseline: "
                    "this threshold is not a finding.</span>")
            scan = getattr(evaluation, "scan_report", None)
            if scan is not None:
                note += ("<br><span class='ss-status ss-scan-ci'>scan-group bootstrap ("
                         f"{evaluation.n_scan_groups} groups of neighbouring slices): "
                         + ", ".join(f"{m} [{scan.estimates[m].ci_low:.3f}, {scan.estimates[m].ci_high:.3f}]"
                                     for m in ("roc_auc", "f1", "kappa") if m in scan.estimates) + "</span>")
            n = next(iter(report.estimates.values())).n
            parts.append(with_terms(metric_table(table_rows, f"{caption} · n = {n:,}") + note))
        if not self.state.shows_test_labels() and self._has_test_labels():
            parts.append(self.evaluation_only("", "Test-label scores and their scan-group bootstrap"))
        frame = self.data.frame
        rows = self._rows()
        scored = frame["split"].to_numpy()[rows] == self.data.scored_split
        if scored.any():
            called = int(predictions[rows][scored].sum())
            parts.append(f"<div class='ss-status'>{self.data.scored_split}: {called:,} of {int(scored.sum()):,} real "
                         f"images called used; {len(self.state.overrides)} set by hand</div>")
        return "".join(parts) or banner("no labelled images in this selection", "info")

    def _override(self, label) -> None:
        row = self.state.focused_real
        if row < 0:
            self.state.status = "click a real image in the grid first"
            return
        self.state.set_override(self.data.frame.at[row, "key"], label)

    def _on_focus(self, change=None) -> None:
        row = self.state.focused_real
        marker = self.histogram.layout.shapes[1]
        marker.visible = row >= 0 and self._pair() is not None
        if row >= 0:
            marker.x0 = marker.x1 = float(self.data.frame.at[row, "score"])
        for cell, shown in zip(self.cells, self.page_rows.tolist() + [-2] * PAGE_SIZE):
            (cell.add_class if shown == row else cell.remove_class)("ss-thumb-focused")
        if row < 0:
            self.pair_box.children = []
            return
        frame = self.data.frame
        real = self.data.load_real(np.array([row]))[0]
        pairs = self.data.nearest(row, 3)
        key = frame.at[row, "key"]
        override = self.state.overrides.get(key)
        call = "used" if self.state.membership_predictions()[row] else "not used"
        header = (f"<b>{esc(frame.at[row, 'image_id'])}</b> ({esc(frame.at[row, 'group'])}, {esc(frame.at[row, 'split'])}) · "
                  f"score {frame.at[row, 'score']:.4g} (#{frame.at[row, 'rank']} in its folder) · call: <b>{call}</b>"
                  + (" (set by hand)" if override is not None else ""))
        cards = [self._card(real, "real")]
        for pair in pairs:
            ssim = structural_similarity(real, pair["image"], data_range=255)
            cards.append(self._card(pair["image"], f"nearest generated<br>{esc(pair['image_id'])}<br>distance {fmt(pair['distance'])}"))
            cards.append(self._card(difference_image(real, pair["image"]),
                                    f"real − generated<br>SSIM {ssim:.3f}"
                                    + difference_colorbar(difference_scale(real, pair["image"]))))
        self.pair_box.children = [widgets.HTML(header), widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap"))]

    @staticmethod
    def _card(image: np.ndarray, caption: str) -> widgets.Widget:
        return widgets.VBox([widgets.Image(value=png_bytes(image, 150), format="png", width=150, height=150),
                             widgets.HTML(f"<div class='ss-caption'>{caption}</div>")])
