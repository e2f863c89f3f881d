"""Training-data fingerprints (sub-task 1): scores, threshold, metrics with CIs, leakage, nearest pairs."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from skimage.metrics import structural_similarity

from synthscope_dashboard.imaging import difference_image, png_bytes
from synthscope_dashboard.live_metrics import membership_baselines, membership_estimates
from synthscope_dashboard.views.common import View, banner, esc, estimate_row, fmt, metric_table

TABLE_ROWS = 200
ALL_GROUPS = ""
METRIC_LABELS = (("f1", "F1"), ("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"),
                 ("specificity", "specificity"), ("kappa", "Cohen's kappa"))


def best_f1_threshold(ranks: np.ndarray, labels: np.ndarray) -> float:
    """Threshold on the within-group rank that maximises F1 on dev (labels 1/0); images above it are 'used'."""
    order = np.argsort(-ranks, kind="stable")
    sorted_ranks, hits = ranks[order], (labels[order] == 1)
    f1 = 2 * np.cumsum(hits) / (np.arange(1, len(ranks) + 1) + hits.sum())
    cut_allowed = np.r_[sorted_ranks[1:] < sorted_ranks[:-1], True]   # never cut inside a tie
    best = int(np.argmax(np.where(cut_allowed, f1, -1)))
    lower = sorted_ranks[best + 1] if best + 1 < len(ranks) else 0.0
    return float((sorted_ranks[best] + lower) / 2)


class TrainingView(View):
    title = "Training-data fingerprints"

    def __init__(self, state):
        super().__init__(state)
        self.data = state.workspace.membership
        self.histogram: go.FigureWidget | None = None

    def build(self):
        state, frame = self.state, self.data.frame
        groups = sorted(frame["group"].unique())
        self.group = widgets.Dropdown(options=[("all models", ALL_GROUPS)] + [(g, g) for g in groups],
                                      value=state.membership_group, description="model")
        self.slider = widgets.FloatSlider(value=state.threshold, min=0.0, max=1.0, step=0.005, readout_format=".3f",
                                          description="threshold", continuous_update=False,
                                          layout=widgets.Layout(width="420px"))
        self.slider.add_class("ss-threshold")
        self.fit_button = widgets.Button(description="Fit on dev (max F1)", icon="magic",
                                         tooltip="threshold that maximises F1 on the labelled dev images")
        controls = self.control(widgets.VBox([
            widgets.HBox([self.group, self.slider, self.fit_button]),
            widgets.HTML("<span class='ss-status'>score = " + esc(self.data.score_name) + "; the threshold is on its rank "
                         "within each model's real images (0 = lowest), so it carries from a dev model folder to its test "
                         "folder. Images above it are called <b>used</b>.</span>"),
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
        self.slider.observe(lambda c: state.set_threshold(c["new"]), names="value")
        self.fit_button.on_click(lambda _: self.fit_on_dev())
        self.table.observe(self._on_table_pick, names="value")
        self.mark_used.on_click(lambda _: self._override(1))
        self.mark_not_used.on_click(lambda _: self._override(0))
        self.clear_override.on_click(lambda _: self._override(None))
        state.observe(self._on_threshold, names="threshold")
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
        frame = self.data.frame
        if self.state.membership_group == ALL_GROUPS:
            return np.arange(len(frame))
        return np.flatnonzero((frame["group"] == self.state.membership_group).to_numpy())

    def _make_histogram(self) -> go.FigureWidget:
        figure = go.FigureWidget(layout=go.Layout(
            height=360, barmode="overlay", margin={"l": 40, "r": 10, "t": 36, "b": 40},
            title={"text": "score rank within each model: used vs not-used (dev)", "font": {"size": 14}},
            xaxis={"title": "rank of the membership score (0 = least likely used)", "range": [0, 1]},
            yaxis={"title": "images"}, legend={"orientation": "h", "y": -0.25}, plot_bgcolor="white"))
        for name, color, visible in (("dev used", "#cf3d3d", True), ("dev not used", "#3d6fcf", True),
                                     ("test (unlabelled; click to show)", "#9aa0ad", "legendonly")):
            figure.add_trace(go.Histogram(x=[], name=name, opacity=0.55, marker={"color": color}, visible=visible,
                                          xbins={"start": 0, "end": 1, "size": 0.05}))
        figure.layout.shapes = [{"type": "line", "x0": self.state.threshold, "x1": self.state.threshold, "y0": 0, "y1": 1,
                                 "yref": "paper", "line": {"color": "#1f2430", "width": 2, "dash": "dash"}}]
        return figure

    def _on_group(self, change=None) -> None:
        frame = self.data.frame.iloc[self._rows()]
        ranks, labels, splits = frame["rank"].to_numpy(), frame["label"].to_numpy(), frame["split"].to_numpy()
        with self.histogram.batch_update():
            self.histogram.data[0].x = ranks[labels == 1]
            self.histogram.data[1].x = ranks[labels == 0]
            self.histogram.data[2].x = ranks[(labels < 0)]
        self.verdict.value = self.verdict_html()
        self._on_threshold()

    def _on_threshold(self, change=None) -> None:
        threshold = self.state.threshold
        if abs(self.slider.value - threshold) > 1e-9:
            self.slider.value = threshold
        with self.histogram.batch_update():
            self.histogram.layout.shapes[0].x0 = threshold
            self.histogram.layout.shapes[0].x1 = threshold
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
        leakage = self.data.leakage
        key = self.state.membership_group or "all"
        result = leakage.get(key) or leakage.get("all")
        if result is None:
            return banner("No labelled dev images here, so there is no leakage test: the threshold cannot be fit "
                          "and no membership claim can be made.", "warn")
        kind = "bad" if result.significant else "warn"
        head = "Leakage: YES" if result.significant else "Leakage: no significant signal"
        per_group = " · ".join(f"{esc(g)}: p = {r.p_value:.3g}" for g, r in leakage.items() if g != "all")
        return banner(f"<b>{head}</b> — {esc(result.message)}<br><span class='ss-status'>{esc(result.method)}"
                      f"{' · ' + per_group if per_group else ''}</span>", kind)

    def metrics_html(self, predictions: np.ndarray) -> str:
        frame = self.data.frame
        rows = self._rows()
        parts = []
        for column, caption in (("label", "dev (labelled)"), ("truth", "test (ground-truth file, evaluation only)")):
            truth = frame[column].to_numpy()[rows]
            mask = truth >= 0
            if column == "truth":
                mask = mask & (frame["split"].to_numpy()[rows] == "test")
            if mask.sum() == 0:
                continue
            y_true, y_pred = truth[mask], predictions[rows][mask]
            estimates = membership_estimates(y_true, y_pred, n_boot=1000)
            baselines = membership_baselines(y_true)
            table_rows = [estimate_row(label, estimates[name],
                                       [("all used", baselines["all_used"][name]),
                                        ("all not used", baselines["all_not_used"][name]),
                                        ("random", baselines["random"][name])])
                          for name, label in METRIC_LABELS]
            if column == "label":
                table_rows.append(estimate_row("ROC AUC (no threshold)", self.data.auc, [("random", 0.5)]))
            beats = estimates["f1"].ci_low > baselines["all_used"]["f1"]
            note = ("" if beats else "<br><span class='ss-status'>F1's CI does not clear the all-used baseline: "
                    "this threshold is not a finding.</span>")
            parts.append(metric_table(table_rows, f"{caption} · n = {int(mask.sum()):,}") + note)
        test = (frame["split"].to_numpy()[rows] == "test")
        if test.any():
            called = int(predictions[rows][test].sum())
            parts.append(f"<div class='ss-status'>test: {called:,} of {int(test.sum()):,} real images called used; "
                         f"{len(self.state.overrides)} set by hand</div>")
        return "".join(parts) or banner("no labelled images in this selection", "info")

    def _fill_table(self, predictions: np.ndarray) -> None:
        frame = self.data.frame
        rows = self._rows()
        order = rows[np.lexsort((-frame["score"].to_numpy()[rows], -frame["rank"].to_numpy()[rows]))][:TABLE_ROWS]
        overrides = self.state.overrides
        options = []
        for row in order.tolist():
            key = frame.at[row, "key"]
            label = frame.at[row, "label"]
            truth = {1: "dev label: used", 0: "dev label: not used"}.get(int(label), "unlabelled")
            call = "used" if predictions[row] else "not used"
            star = "*" if key in overrides else " "
            options.append((f"{frame.at[row, 'split']:<4} {frame.at[row, 'group']:<10} {frame.at[row, 'image_id']:<28} "
                            f"rank {frame.at[row, 'rank']:.3f}  call {call:<8}{star} {truth}", row))
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
                  f"rank {frame.at[row, 'rank']:.3f} · call: <b>{call}</b>"
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

    def fit_on_dev(self) -> None:
        frame = self.data.frame
        dev = (frame["label"] >= 0).to_numpy()
        if not dev.any():
            self.state.status = "no labelled dev images: the threshold cannot be fit (never fit on test labels)"
            return
        threshold = best_f1_threshold(frame["rank"].to_numpy()[dev], frame["label"].to_numpy()[dev])
        self.state.set_threshold(threshold)
        self.state.status = f"threshold fit on {int(dev.sum())} dev images (max F1): {threshold:.3f}"
