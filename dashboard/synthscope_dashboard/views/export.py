"""Export and present: validated run files with the curation, figures as HTML + PNG."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from synthscope_dashboard.runs import write_run
from synthscope_dashboard.views.common import View, banner, esc


class ExportView(View):
    title = "Export"

    def __init__(self, state, figure_sources):
        super().__init__(state)
        self.figure_sources = figure_sources   # views whose figures can be saved

    def default_folder(self) -> Path:
        return self.state.session_file.parent.parent / "exports" / self.state.session_file.stem

    def build(self):
        workspace = self.state.workspace
        self.folder = widgets.Text(value=str(self.default_folder()), description="folder",
                                   layout=widgets.Layout(width="640px"))
        buttons = []
        if workspace.membership is not None:
            self.membership_button = widgets.Button(description="Write sub-task 1 run", icon="download", button_style="primary")
            self.membership_button.add_class("ss-export-st1")
            self.membership_button.on_click(lambda _: self.show(self.export_membership()))
            buttons.append(self.membership_button)
        if workspace.attribution is not None:
            self.attribution_button = widgets.Button(description="Write sub-task 2 run", icon="download", button_style="primary")
            self.attribution_button.add_class("ss-export-st2")
            self.attribution_button.on_click(lambda _: self.show(self.export_attribution()))
            buttons.append(self.attribution_button)
        self.figures_button = widgets.Button(description="Save figures (HTML + PNG)", icon="image")
        self.figures_button.on_click(lambda _: self.show(self.export_figures()))
        self.result = widgets.HTML()
        self.result.add_class("ss-export-result")
        intro = ("<p>Run files use the test images (or all images when there is no test split) and include your "
                 "curation: moved, merged, split clusters and every label set by hand. Each file is validated "
                 "after writing. Presentation mode (top right) hides every control.</p>")
        return [widgets.HTML(intro), self.control(self.folder),
                self.control(widgets.HBox(buttons + [self.figures_button])), self.result]

    def show(self, html: str) -> None:
        self.result.value = html

    def _scope(self, frame: pd.DataFrame) -> np.ndarray:
        test = (frame["split"] == "test").to_numpy()
        return test if test.any() else np.ones(len(frame), dtype=bool)

    def export_membership(self) -> str:
        frame = self.state.workspace.membership.frame
        scope = self._scope(frame)
        predictions = self.state.membership_predictions()[scope]
        series = pd.Series(predictions, index=frame["image_id"].to_numpy()[scope])
        path = Path(self.folder.value).expanduser() / "subtask1_run.csv"
        return self._report("sub-task 1", path, write_run(path, "membership", series),
                            f"{int(predictions.sum()):,} of {len(series):,} called used, "
                            f"{sum(k in set(frame['key'][scope]) for k in self.state.overrides)} by hand")

    def export_attribution(self) -> str:
        frame = self.state.workspace.attribution.frame
        scope = self._scope(frame)
        _, clusters = np.unique(self.state.assignments[scope], return_inverse=True)
        series = pd.Series(clusters.astype(np.int64), index=frame["image_id"].to_numpy()[scope])
        k = int(clusters.max()) + 1 if len(clusters) else 0
        path = Path(self.folder.value).expanduser() / "subtask2_run.csv"
        names = {int(c): self.state.cluster_name(c) for c in np.unique(self.state.assignments[scope])}
        legend = ", ".join(f"{i} = {esc(name)}" for i, name in enumerate(names.values()))
        note = (f"<br><b>note:</b> the clustering was asked for k = {self.state.k}, but your curation leaves {k} "
                "cluster(s) in this run." if k != self.state.k else "")
        return self._report("sub-task 2", path, write_run(path, "attribution", series, k=k),
                            f"{len(series):,} images in {k} clusters ({legend}){note}")

    def _report(self, what: str, path: Path, check, detail: str) -> str:
        self.state.status = f"{what} run written to {path}" if check.ok else f"{what} run NOT valid"
        if check.ok:
            return banner(f"<b>{what} run written and valid</b>: <code class='ss-run-path'>{esc(path)}</code><br>{detail}", "ok")
        return banner(f"<b>{what} run refused</b>: " + "<br>".join(esc(e) for e in check.errors), "bad")

    def export_figures(self) -> str:
        folder = Path(self.folder.value).expanduser() / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        written, problems = [], []
        for view in self.figure_sources:
            for name, figure in view.figures.items():
                plain = go.Figure(figure)
                html_path = folder / f"{name}.html"
                plain.write_html(html_path, include_plotlyjs=True)   # self-contained: works offline
                written.append(html_path)
                try:
                    png_path = folder / f"{name}.png"
                    plain.write_image(png_path, width=1000, height=600, scale=2)
                    written.append(png_path)
                except Exception as error:   # kaleido missing or broken: the HTML is still there
                    problems.append(f"{name}.png: {error}")
        if not written:
            return banner("No figures yet: open the views first (figures are made when their tab is first shown).", "info")
        listing = "<br>".join(f"<code>{esc(p)}</code>" for p in written)
        extra = "<br>" + "<br>".join(esc(p) for p in problems) if problems else ""
        return banner(f"<b>saved {len(written)} files</b><br>{listing}{extra}", "warn" if problems else "ok")
