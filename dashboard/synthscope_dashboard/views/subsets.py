"""2025 sub-task 2: supervised attribution of generated images to the training subsets of the dev tree.

The predictions are the core's `run_attribution(test, dev)` (what `synthscope attribute TEST --dev DEV`
writes); the confusion matrix is `cross_validated_subsets(dev)`: stratified K-fold on the dev
generated images with the same classifier, so it says how far to trust the test assignments, and its
reliability diagram (`reliability_diagram`) says how far to trust each confidence. The "none of these"
level lives in `AppState.novelty_alpha`; this view only draws it.
"""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from synthscope_dashboard.calibration_plot import reliability_figure, reliability_html
from synthscope_dashboard.grid import page_bounds
from synthscope_dashboard.imaging import png_bytes
from synthscope_dashboard.markup import accuracy_table, confusion_html
from synthscope_dashboard.views.common import View, banner, esc, fmt
from synthscope_dashboard.views.plot_selection import LocalFigureWidget

TABLE_ROWS = 200
THUMBS = 8
SORTS = (("confidence, lowest first", "confidence"), ("novelty, highest first", "novelty"), ("image id", "image_id"),
         ("subset, then confidence", "subset"))
#: the levels the slider offers (conformal p-value cut of "none of these"); the CLI's default is among them
NOVELTY_LEVELS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


class SubsetsView(View):
    title = "Training subsets (2025)"

    def __init__(self, state):
        super().__init__(state)
        self.data = state.workspace.subsets

    def build(self):
        data = self.data
        cv = data.cv
        self.summary = widgets.HTML(self.summary_html())
        self.summary.add_class("ss-subset-summary")
        self.confusion = widgets.HTML(confusion_html(cv.confusion))
        self.confusion.add_class("ss-subset-confusion")
        self.reliability = LocalFigureWidget(reliability_figure(data.reliability))   # no cloud share, no logo link
        self.figures["subset_reliability"] = self.reliability
        self.reliability_table = widgets.HTML(reliability_html(data.reliability))
        self.reliability_table.add_class("ss-subset-reliability")
        parts = [self.summary, self.confusion, self.reliability, self.reliability_table]
        if data.run is None:
            parts.append(widgets.HTML(banner("No test folder beside the dev tree: only the dev cross-validation is "
                                             "shown. Add <code>test/generated_unknown/</code> to assign images.", "info")))
            return parts
        self.histogram = self._histogram()
        self.figures["subset_confidence"] = self.histogram
        self.sort = widgets.Dropdown(options=SORTS, value="confidence", description="sort by",
                                     layout=widgets.Layout(width="320px"))
        self.table = widgets.HTML()
        self.table.add_class("ss-subset-table")
        self.thumbs = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        # the table pages like the generator grid (issue 22 defect 13: it stopped at the first 200)
        self.table_page = 0
        self.table_previous = widgets.Button(description="Previous", layout=widgets.Layout(width="90px"))
        self.table_next = widgets.Button(description="Next", layout=widgets.Layout(width="90px"))
        self.table_previous.on_click(lambda _: self._fill(page=self.table_page - 1))
        self.table_next.on_click(lambda _: self._fill(page=self.table_page + 1))
        self.sort.observe(lambda change: self._fill(), names="value")
        self.level = widgets.SelectionSlider(options=self._level_options(), value=self.state.novelty_alpha,
                                             description="none of these at p <", continuous_update=False,
                                             style={"description_width": "initial"}, layout=widgets.Layout(width="520px"))
        self.level.add_class("ss-novelty-level")
        self.level.observe(lambda change: self.state.set_novelty_alpha(change["new"]), names="value")
        self.state.observe(self._on_level, names="novelty_alpha")
        self._fill()
        self._thumbs()
        level_help = widgets.HTML(
            "<div class='ss-status'>An image is <b>none of these</b> when its conformal p-value is below the level: "
            "about that share of images of a known subset is flagged by chance. The run and scores files do not "
            f"change with it (the scores file holds novelty = 1 - p). {self._p_floor()}</div>")
        self.level_count = widgets.HTML(self.level_count_html())
        self.level_count.add_class("ss-level-count")
        return parts + [self.histogram, self.control(widgets.VBox([widgets.HBox([self.level, self.level_count]), level_help])),
                        self.control(self.sort),
                        widgets.HTML("<b>Test images with the lowest confidence</b> <span class='ss-status'>(check "
                                     "these first)</span>"), self.thumbs,
                        self.control(widgets.HBox([self.table_previous, self.table_next])), self.table]

    def summary_html(self) -> str:
        data, cv = self.data, self.data.cv
        lines = [f"<b>{len(data.classes)} training subsets</b> in the dev tree <code>{esc(data.dev_root)}</code>: "
                 + ", ".join(esc(c) for c in data.classes) + "."]
        if data.run is not None:
            predictions = self.state.subset_predictions()
            alpha = self.state.novelty_alpha
            counts = predictions["subset"].value_counts()
            lines.append(f"{len(predictions):,} test images of <code>{esc(data.test_root)}</code> assigned: "
                         + ", ".join(f"{esc(s)} {int(counts.get(s, 0)):,}" for s in data.classes)
                         + f"; median confidence {fmt(float(predictions['confidence'].median()))}.")
            lines.append(f"<span class='ss-none-of-these' data-flagged='{int(predictions['none_of_these'].sum())}' "
                         f"data-level='{alpha:g}'><b>{int(predictions['none_of_these'].sum()):,} of "
                         f"{len(predictions):,} test images are none of these</b> at level {alpha:g} (conformal "
                         "p-value below it: unlike every dev subset; sort by novelty to see them).</span>")
            lines += [esc(line) for line in data.run.describe(alpha)]
        return ("<br>".join(lines) + accuracy_table(
            cv.report, f"dev, {cv.n_splits}-fold stratified cross-validation (out-of-fold) · n = {len(cv.predictions):,}"))

    def _histogram(self) -> go.FigureWidget:
        predictions = self.data.predictions
        figure = LocalFigureWidget(layout=go.Layout(
            height=300, barmode="stack", margin={"l": 40, "r": 10, "t": 36, "b": 40}, plot_bgcolor="white",
            title={"text": "confidence of each test assignment (probability of the predicted subset)", "font": {"size": 14}},
            xaxis={"title": "confidence", "range": [0, 1]}, yaxis={"title": "images"}))
        for subset in self.data.classes:
            values = predictions.loc[predictions["subset"] == subset, "confidence"].to_numpy()
            figure.add_trace(go.Histogram(x=values, name=subset, xbins={"start": 0, "end": 1, "size": 0.05}))
        return figure

    def level_count_html(self) -> str:
        predictions = self.state.subset_predictions()
        return (f"<span class='ss-status'>→ <b>{int(predictions['none_of_these'].sum()):,}</b> of "
                f"{len(predictions):,} flagged</span>")

    def _level_options(self) -> list[tuple[str, float]]:
        levels = sorted(set(NOVELTY_LEVELS) | {float(self.state.novelty_alpha)})
        return [(f"{level:g}", level) for level in levels]

    def _p_floor(self) -> str:
        model = self.data.run.novelty_model
        if model is None:
            return "The novelty could not be assessed on this dev tree, so nothing is flagged."
        n = len(model.calibration_scores_)
        return (f"With {n:,} dev images the smallest p-value is 1/{n + 1:,} = {1 / (n + 1):.3g}: a lower level "
                "flags nothing.")

    def _on_level(self, change=None) -> None:
        alpha = float(self.state.novelty_alpha)
        if alpha not in [value for _, value in self.level.options]:
            self.level.options = self._level_options()
        self.level.value = alpha
        self.summary.value = self.summary_html()
        self.level_count.value = self.level_count_html()
        self._fill(page=self.table_page)

    def ordered(self):
        predictions = self.state.subset_predictions()
        key = self.sort.value if hasattr(self, "sort") else "confidence"
        if key == "novelty":
            return predictions.assign(_n=-predictions["novelty"]).sort_values(["_n", "image_id"], kind="stable",
                                                                              na_position="last").drop(columns="_n")
        by = {"confidence": ["confidence", "image_id"], "image_id": ["image_id"], "subset": ["subset", "confidence"]}[key]
        return predictions.sort_values(by, kind="stable")

    def _fill(self, page: int = 0) -> None:
        ordered = self.ordered()
        page, n_pages = page_bounds(len(ordered), page, TABLE_ROWS)
        self.table_page = page
        self.table_previous.disabled = page == 0
        self.table_next.disabled = page >= n_pages - 1
        shown = ordered.iloc[page * TABLE_ROWS:(page + 1) * TABLE_ROWS]
        rows = "".join(f"<tr><td>{esc(r.image_id)}</td><td>{esc(r.subset)}</td>"
                       f"<td class='ss-value' data-confidence='{r.confidence:.6f}'>{fmt(r.confidence)}</td>"
                       f"<td class='ss-novelty' data-novelty='{r.novelty:.6f}' data-flagged='{int(r.none_of_these)}'>"
                       f"{fmt(r.novelty)}"
                       f"{' <b>none of these</b>' if r.none_of_these else ''}</td></tr>"
                       for r in shown.itertuples())
        more = (f"<div class='ss-status ss-subset-page'>page {page + 1} of {n_pages} · images "
                f"{page * TABLE_ROWS + 1:,}–{page * TABLE_ROWS + len(shown):,} of {len(ordered):,}</div>"
                if n_pages > 1 else "")
        self.table.value = ("<table class='ss-table'><tr><th>image</th><th>subset</th><th>confidence</th>"
                            "<th>novelty</th></tr>"
                            + rows + "</table>" + more)

    def _thumbs(self) -> None:
        lowest = self.data.predictions.sort_values(["confidence", "image_id"], kind="stable").head(THUMBS)
        images = self.data.load_test_images(lowest.index.to_numpy())
        self.thumbs.children = [
            widgets.VBox([widgets.Image(value=png_bytes(image, 96), format="png", width=96, height=96),
                          widgets.HTML(f"<div class='ss-caption'>{esc(r.image_id)}<br>{esc(r.subset)} "
                                       f"({fmt(r.confidence, 2)})</div>")])
            for image, r in zip(images, lowest.itertuples())]
