"""Assemble the dashboard: header (undo, presentation mode, status) over one tab per view."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

from synthscope_dashboard.state import AppState
from synthscope_dashboard.views.common import STYLE, banner, esc
from synthscope_dashboard.views.export import ExportView
from synthscope_dashboard.views.generators import GeneratorsView
from synthscope_dashboard.views.overview import OverviewView
from synthscope_dashboard.views.training import TrainingView
from synthscope_dashboard.workspace import Workspace, WorkspaceError, load_workspace

ENV_PATH = "SYNTHSCOPE_DASHBOARD_PATH"
ENV_K = "SYNTHSCOPE_DASHBOARD_K"


class PageShown(anywidget.AnyWidget):
    """Tells the kernel when a browser actually shows the page (a preheated kernel ran long before)."""

    _esm = """
    export default { render({ model, el }) { model.send({ event: "shown" }); } }
    """
    shown = traitlets.Int(0)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    def _on_message(self, widget, content, buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "shown":
            self.shown += 1


class Dashboard(widgets.VBox):
    """The app widget; `.state` is its AppState and `.views` its views (for tests and notebooks)."""

    def __init__(self, state: AppState):
        self.state = state
        self.views = [OverviewView(state)]
        workspace = state.workspace
        if workspace.attribution is not None:
            self.views.append(GeneratorsView(state))
        if workspace.membership is not None:
            self.views.append(TrainingView(state))
        self.views.append(ExportView(state, figure_sources=self.views[:]))
        self.tabs = widgets.Tab(children=[view.root for view in self.views])
        for index, view in enumerate(self.views):
            self.tabs.set_title(index, view.title)
        self.tabs.observe(self._on_tab, names="selected_index")

        self.undo_button = widgets.Button(description="Undo", icon="undo", disabled=not state.can_undo,
                                          layout=widgets.Layout(width="90px"))
        self.undo_button.on_click(lambda _: state.undo())
        self.present = widgets.ToggleButton(value=state.presentation, description="Presentation mode", icon="television",
                                            layout=widgets.Layout(width="180px"))
        widgets.link((self.present, "value"), (state, "presentation"))
        self.status = widgets.HTML()
        state.observe(lambda c: setattr(self.undo_button.layout, "visibility", "hidden" if c["new"] else "visible"),
                      names="presentation")
        self.status.add_class("ss-status-line")
        header = widgets.HTML(
            "<div class='ss-header'><h2>synthscope · fingerprints of generative models in lung CT</h2>"
            f"<div class='ss-sub'>{esc(workspace.path)}</div></div>", layout=widgets.Layout(flex="1"))
        state.observe(self._on_status, names=["status", "last_saved", "can_undo"])
        self._on_status()
        self.page_shown = PageShown()
        self.page_shown.observe(lambda _: state.sync_with_session(), names="shown")
        super().__init__([widgets.HTML(STYLE), self.page_shown, widgets.HBox([header, widgets.VBox([self.present, self.undo_button])]),
                          self.status, self.tabs])
        self.add_class("ss-app")
        self._on_tab()

    def _on_tab(self, change=None) -> None:
        # Plotly figures must be created while their tab is visible, or Voila renders them empty.
        index = self.tabs.selected_index or 0
        self.views[index].ensure_built()

    def _on_status(self, change=None) -> None:
        saved = f" · curation autosaved {self.state.last_saved}" if self.state.last_saved else ""
        self.status.value = f"<div class='ss-status'>{esc(self.state.status)}{esc(saved)}</div>"
        self.undo_button.disabled = not self.state.can_undo

    def view(self, title: str):
        return next(v for v in self.views if v.title == title)

    def show(self, title: str) -> None:
        self.tabs.selected_index = [v.title for v in self.views].index(title)


def build(path: str | os.PathLike | None = None, *, cache_dir=None, extractor: str = "fingerprint",
          workspace: Workspace | None = None, autosave: bool = True, **state_options) -> widgets.Widget:
    """The dashboard widget for a data set folder, a dev/test pair or a bench root.

    `path` defaults to $SYNTHSCOPE_DASHBOARD_PATH. Bad input gives a page that says what is wrong.
    `state_options` set AppState traits before the first clustering (e.g. method="kmeans", k=5).
    """
    if "k" not in state_options and os.environ.get(ENV_K, "").isdigit():
        state_options["k"] = int(os.environ[ENV_K])   # `synthscope dashboard --k N`
    if workspace is None:
        path = path or os.environ.get(ENV_PATH)
        if not path:
            return widgets.HTML(STYLE + banner(
                "No data path given. Start the dashboard with <code>synthscope dashboard PATH</code> "
                f"or set <code>{ENV_PATH}</code>.", "bad"))
        progress = widgets.HTML()
        try:
            workspace = load_workspace(Path(path), extractor=extractor, cache_dir=cache_dir,
                                       progress=lambda message: setattr(progress, "value", esc(message)))
        except (WorkspaceError, ValueError, FileNotFoundError) as error:
            return widgets.HTML(STYLE + banner(f"<b>Could not open {esc(path)}</b><br>{esc(error)}", "bad"))
        except ImportError as error:
            return widgets.HTML(STYLE + banner(f"A synthscope module the dashboard needs is missing: {esc(error)}", "bad")
                                + f"<pre>{esc(traceback.format_exc())}</pre>")
    state = AppState(workspace, autosave=autosave, **state_options)
    state.extractor = workspace.attribution.extractor if workspace.attribution is not None else extractor
    return Dashboard(state)
