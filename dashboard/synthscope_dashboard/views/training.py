"""Training-data fingerprints (sub-task 1): scores, threshold, metrics with CIs, leakage, nearest pairs."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from skimage.metrics import structural_similarity

from synthscope_dashboard.imaging import difference_image, png_bytes
from synthscope.membership import evaluate_predictions
from synthscope.metrics import membership_report
from synthscope_dashboard.views.common import View, banner, esc, estimate_row, fmt, metric_table

TABLE_ROWS = 200
N_BOOT = 1000   # as `synthscope membership`'s default --n-boot, so the page and the CLI print the same CIs
ALL_GROUPS = ""
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
        controls = self.control(widgets.VBox([
            widgets.HBox([self.group, self.slider, self.fit_button]),
            widgets.HTML("<span class='ss-status'>score = " + esc(self.data.score_name) + ". Each model's threshold "
                         "is fit on its dev group and applied unchanged to its test folder; an image at or above it "
                         "is called <b>used</b>.</span>"),
        ]))
        self.verdict = widgets.HTML()
        self.histogram = self._make_histogram()
        self.figures["scores"] = self.histogram
        self.metrics = widgets.HTML()
        self.metrics.add_class("ss-membership-metrics")
        self.table = widgets.Select(rows=14, layout=widgets.Layout(width="100%"))
        self.table.add_class("ss-score-table")
        self.pair_box = widgets.VBox()
        self.mark_used = widgets.Button(description="Mark used", icon="check")
        self.mark_not_used = widgets.Button(description="Mark not used", icon="times")
        self.clear_override = widgets.Button(description="Clear override", icon="undo")
        override_bar = self.control(widgets.HBox([self.mark_used, self.mark_not_used, self.clear_override]))

        self.group.observe(lambda c: setattr(state, "membership_group", c["new"]), names="value")
        self.slider.observe(self._on_slider, names="value")
        self.fit_button.on_click(lambda _: state.reset_thresholds())
        self.table.observe(self._on_table_pick, names="value")
        self.mark_used.on_click(lambda _: self._override(1))
        self.mark_not_used.on_click(lambda _: self._override(0))
        self.clear_override.on_click(lambda _: self._override(None))
        state.observe(self._on_threshold, names="thresholds")
        state.observe(self._on_group, names="membership_group")
        state.observe(self._on_overrides, names="overrides")
        state.observe(self._on_focus, names="focused_real")
        self._on_group()
        return [controls, self.verdict,
                widgets.HBox([widgets.VBox([self.histogram], layout=widgets.Layout(width="50%")),
                              widgets.VBox([self.metrics], layout=widgets.Layout(width="50%"))]),
                widgets.HTML("<b>Real images by score</b> <span class='ss-status'>(highest first; * = set by hand; "
                             "pick one to see its nearest generated images)</span>"),
                self.table, override_bar, self.pair_box]

    # ------------------------------------------------------------------ figures
    def _rows(self) -> np.ndarray:
        if self.state.membership_group == ALL_GROUPS:
            return np.arange(self.data.n)
        return self.data.pair_rows[self.state.membership_group]

    def _pair(self):
        return self.data.pairs.get(self.state.membership_group)

    def _make_histogram(self) -> go.FigureWidget:
        figure = go.FigureWidget(layout=go.Layout(
            height=360, barmode="overlay", margin={"l": 40, "r": 10, "t": 36, "b": 40},
            title={"text": "membership score: used vs not-used (dev)", "font": {"size": 14}},
            xaxis={"title": "score (higher = more likely used)"},
            yaxis={"title": "images"}, legend={"orientation": "h", "y": -0.25}, plot_bgcolor="white"))
        for name, color, visible in (("dev used", "#cf3d3d", True), ("dev not used", "#3d6fcf", True),
                                     ("test (unlabelled; click to show)", "#9aa0ad", "legendonly")):
            figure.add_trace(go.Histogram(x=[], name=name, opacity=0.55, marker={"color": color}, visible=visible,
                                          nbinsx=30))
        figure.layout.shapes = [{"type": "line", "x0": 0, "x1": 0, "y0": 0, "y1": 1, "yref": "paper",
                                 "line": {"color": "#1f2430", "width": 2, "dash": "dash"}}]
        return figure

    def _on_group(self, change=None) -> None:
        frame = self.data.frame.iloc[self._rows()]
        pooled = self._pair() is None      # several models: raw scores differ in scale, show percentiles
        values = frame["percentile" if pooled else "score"].to_numpy()
        labels = frame["label"].to_numpy()
        with self.histogram.batch_update():
            self.histogram.data[0].x = values[labels == 1]
            self.histogram.data[1].x = values[labels == 0]
            self.histogram.data[2].x = values[labels < 0]
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
        self._fill_table(predictions)

    # ------------------------------------------------------------------ panels
    def verdict_html(self) -> str:
        pairs = self.data.pairs
        shown = [self._pair()] if self._pair() is not None else list(pairs.values())
        parts = []
        for pair in shown:
            verdict = pair.verdict
            kind = "bad" if verdict.significant else "warn"
            head = "Leakage: YES" if verdict.significant else "Leakage: no significant signal"
            story = "".join(f"<li>{esc(line)}</li>" for line in pair.story)
            parts.append(banner(f"<b>{esc(pair.name)} · {head}</b> — {esc(verdict.message)}<br>"
                                f"<span class='ss-status'>{esc(verdict.method)} · score {esc(pair.primary)}, chosen as "
                                f"{esc(pair.choice)}</span><ul class='ss-story'>{story}</ul>", kind))
        return "".join(parts)

    def evaluations(self, predictions: np.ndarray) -> list[tuple[str, object]]:
        """(caption, core evaluation) per table on the page: dev labels (in-sample), then the ground-truth
        file (evaluation only) -- the same functions and numbers `synthscope membership --truth` prints."""
        frame = self.data.frame
        pair = self._pair()
        rows = self._rows()
        out = []
        for column, split, caption in (("label", "dev", "dev (labelled; the thresholds were fit here)"),
                                       ("truth", self.data.scored_split, "test (ground-truth file, evaluation only)")):
            if column == "truth" and split == "dev":
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
            parts.append(metric_table(table_rows, f"{caption} · n = {n:,}") + note)
        frame = self.data.frame
        rows = self._rows()
        scored = frame["split"].to_numpy()[rows] == self.data.scored_split
        if scored.any():
            called = int(predictions[rows][scored].sum())
            parts.append(f"<div class='ss-status'>{self.data.scored_split}: {called:,} of {int(scored.sum()):,} real "
                         f"images called used; {len(self.state.overrides)} set by hand</div>")
        return "".join(parts) or banner("no labelled images in this selection", "info")

    def _fill_table(self, predictions: np.ndarray) -> None:
        frame = self.data.frame
        rows = self._rows()
        order = rows[np.lexsort((-frame["score"].to_numpy()[rows], -frame["percentile"].to_numpy()[rows]))][:TABLE_ROWS]
        overrides = self.state.overrides
        options = []
        for row in order.tolist():
            key = frame.at[row, "key"]
            label = frame.at[row, "label"]
            truth = {1: "dev label: used", 0: "dev label: not used"}.get(int(label), "unlabelled")
            call = "used" if predictions[row] else "not used"
            star = "*" if key in overrides else " "
            options.append((f"{frame.at[row, 'split']:<4} {frame.at[row, 'group']:<10} {frame.at[row, 'image_id']:<28} "
                            f"score {frame.at[row, 'score']:.4g} (#{frame.at[row, 'rank']})  call {call:<8}{star} {truth}", row))
        previous = self.table.value
        with self.table.hold_trait_notifications():
            self.table.options = options
            if previous in order:
                self.table.value = previous

    def _on_table_pick(self, change) -> None:
        if change["new"] is not None:
            self.state.focused_real = int(change["new"])

    def _override(self, label) -> None:
        row = self.state.focused_real
        if row < 0:
            self.state.status = "pick a real image in the table first"
            return
        self.state.set_override(self.data.frame.at[row, "key"], label)

    def _on_focus(self, change=None) -> None:
        row = self.state.focused_real
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
            cards.append(self._card(difference_image(real, pair["image"]), f"real − generated<br>SSIM {ssim:.3f}"))
        self.pair_box.children = [widgets.HTML(header), widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap"))]

    @staticmethod
    def _card(image: np.ndarray, caption: str) -> widgets.Widget:
        return widgets.VBox([widgets.Image(value=png_bytes(image, 150), format="png", width=150, height=150),
                             widgets.HTML(f"<div class='ss-caption'>{caption}</div>")])
