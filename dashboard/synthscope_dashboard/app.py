"""Assemble the dashboard: header (undo, presentation mode, status) over one tab per view."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

from synthscope_dashboard.state import AppState
from synthscope_dashboard.views.common import STYLE, banner, esc, guarded
from synthscope_dashboard.views.export import ExportView
from synthscope_dashboard.views.generators import GeneratorsView
from synthscope_dashboard.views.overview import OverviewView
from synthscope_dashboard.views.subsets import SubsetsView
from synthscope_dashboard.views.training import TrainingView
from synthscope_dashboard.workspace import Workspace, WorkspaceError, load_workspace

ENV_PATH = "SYNTHSCOPE_DASHBOARD_PATH"
ENV_K = "SYNTHSCOPE_DASHBOARD_K"
#: JSON of the CLI's loading options (size_policy, layout, manifest_csv, device) for the kernel
ENV_LOAD = "SYNTHSCOPE_DASHBOARD_LOAD"
ENV_ENGINE = "SYNTHSCOPE_SCATTER_ENGINE"   # the main scatter: auto (default), plotly or jscatter
LOAD_OPTIONS = ("size_policy", "layout", "manifest_csv", "device")


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


class ConnectionWatch(anywidget.AnyWidget):
    """Covers the page with "connection lost, nothing is saved" once the kernel is gone.

    Every page has a kernel of its own; when it dies (killed, out of memory, culled, the server
    stopped) the widgets stay on screen but clicks reach nothing. The browser side watches the kernel
    connection Voila's widget manager holds (status dead / restarting, websocket disconnected) and
    pings the kernel: pings that an idle kernel leaves unanswered mean this page's widgets are gone
    (an auto-restarted kernel is idle but knows nothing of them). The overlay also stops clicks.
    """

    _esm = """
    const LOST = "<b>Connection lost: nothing is saved.</b> The dashboard's kernel stopped or the server went "
      + "away, so clicks here reach nothing and no curation is saved from now on. "
      + "Reload the page to continue: what was autosaved before is restored.";
    export default {
      render({ model, el }) {
        const overlay = document.createElement("div");
        overlay.className = "ss-connection-lost";
        overlay.setAttribute("role", "alert");
        overlay.style.cssText = "display:none; position:fixed; inset:0; z-index:100000; background:rgba(30,30,40,0.55);"
          + "align-items:flex-start; justify-content:center; padding-top:80px;";
        overlay.innerHTML = "<div class='ss-connection-box' style='background:#fdeaea; border-left:6px solid #cf3d3d;"
          + " padding:14px 18px; border-radius:6px; max-width:720px; font-size:16px; color:#1f2430;"
          + " font-family:sans-serif; box-shadow:0 4px 18px rgba(0,0,0,0.3);'>" + LOST
          + "<div class='ss-connection-why' style='font-size:12px; color:#5b6478; margin-top:6px'></div></div>";
        document.body.appendChild(overlay);
        let lost = false;
        const lose = (why) => {
          if (lost) return;
          lost = true;
          overlay.querySelector(".ss-connection-why").textContent = "(" + why + ")";
          overlay.style.display = "flex";
          document.body.classList.add("ss-disconnected");
        };
        const manager = model.widget_manager;
        const kernel = manager && manager.kernel;
        const check = () => {
          if (!kernel) return;
          if (kernel.isDisposed) return lose("kernel connection closed");
          const status = kernel.status, connection = kernel.connectionStatus;
          if (["dead", "restarting", "autorestarting", "terminating"].includes(status)) lose("kernel " + status);
          else if (connection === "disconnected") lose("the server closed the connection");
        };
        if (kernel && kernel.statusChanged) kernel.statusChanged.connect(check);
        if (kernel && kernel.connectionStatusChanged) kernel.connectionStatusChanged.connect(check);
        check();
        // Heartbeat. Pings sent while the kernel is busy do not count (it answers them later); a page in
        // a background tab pings rarely, so what counts is unanswered pings, not the time since the last pong.
        let unanswered = 0, firstUnanswered = 0;
        model.on("msg:custom", (msg) => { if (msg && msg.event === "pong") { unanswered = 0; } });
        const interval = model.get("interval_ms");
        const timer = setInterval(() => {
          if (lost) { clearInterval(timer); return; }
          check();
          const busy = kernel && kernel.status === "busy";
          try { model.send({ event: "ping" }); } catch (error) { return lose("could not reach the kernel"); }
          if (busy) return;
          if (unanswered === 0) firstUnanswered = Date.now();
          unanswered += 1;
          if (unanswered > model.get("misses") && Date.now() - firstUnanswered > model.get("timeout_ms")) {
            lose("the kernel stopped answering");
          }
        }, interval);
        return () => { clearInterval(timer); overlay.remove(); };
      }
    }
    """
    interval_ms = traitlets.Int(3_000).tag(sync=True)
    timeout_ms = traitlets.Int(12_000).tag(sync=True)
    misses = traitlets.Int(3).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    def _on_message(self, widget, content, buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "ping":
            self.send({"event": "pong"})


class Dashboard(widgets.VBox):
    """The app widget; `.state` is its AppState and `.views` its views (for tests and notebooks)."""

    def __init__(self, state: AppState, *, export_dir=None):
        self.state = state
        self.views = [OverviewView(state)]
        workspace = state.workspace
        if workspace.attribution is not None:
            self.views.append(GeneratorsView(state))
        if workspace.membership is not None:
            self.views.append(TrainingView(state))
        if workspace.subsets is not None:
            self.views.append(SubsetsView(state))
        self.views.append(ExportView(state, figure_sources=self.views[:], export_root=export_dir))
        self.tabs = widgets.Tab(children=[view.root for view in self.views])
        for index, view in enumerate(self.views):
            self.tabs.set_title(index, view.title)
        self.tabs.observe(self._on_tab, names="selected_index")

        self.undo_button = widgets.Button(description="Undo", icon="undo", disabled=not state.can_undo,
                                          layout=widgets.Layout(width="90px"))
        self.undo_button.on_click(guarded(lambda _: state.undo(), state, "Undo"))
        self.present = widgets.ToggleButton(value=state.presentation, description="Presentation mode", icon="television",
                                            layout=widgets.Layout(width="180px"))
        widgets.link((self.present, "value"), (state, "presentation"))
        self.evaluation = widgets.ToggleButton(
            value=state.evaluation_mode, description="Evaluation mode", icon="flask",
            tooltip="Evaluation mode: shows test-label scores; do not tune with it on",
            layout=widgets.Layout(width="180px"))
        self.evaluation.add_class("ss-evaluation-toggle")
        self.evaluation_label = widgets.HTML("<div class='ss-eval-label'>Evaluation mode: shows test-label scores; "
                                             "do not tune with it on</div>", layout=widgets.Layout(width="180px"))
        self.evaluation.observe(lambda c: state.set_evaluation_mode(c["new"]), names="value")
        state.observe(lambda c: setattr(self.evaluation, "value", c["new"]), names="evaluation_mode")
        self.evaluation_banner = widgets.HTML()
        state.observe(self._on_evaluation, names="evaluation_mode")
        self._on_evaluation()
        self.status = widgets.HTML()

        def present(change):
            for button in (self.undo_button, self.evaluation, self.evaluation_label, self.prepare_button):
                button.layout.visibility = "hidden" if change["new"] else "visible"
            (self.add_class if change["new"] else self.remove_class)("ss-presenting")   # hides plotly's toolbars

        state.observe(present, names="presentation")
        self.prepare_button = widgets.Button(
            description="Prepare", layout=widgets.Layout(width="180px"),
            tooltip="What `synthscope prepare` does: embed with every extractor, cache UMAP and t-SNE (UMAP "
                    "compiles for about a minute), score membership; then re-read the caches (curation is kept)")
        self.prepare_button.add_class("ss-prepare")
        self.prepare_button.on_click(guarded(lambda _: self.prepare(), state, "Prepare"))
        self.prepare_panel = None
        self.status.add_class("ss-status-line")
        header = widgets.HTML(
            "<div class='ss-header'><h2>synthscope · fingerprints of generative models in lung CT</h2>"
            f"<div class='ss-sub'>{esc(workspace.path)}</div></div>", layout=widgets.Layout(flex="1"))
        state.observe(self._on_status, names=["status", "last_saved", "saving", "can_undo"])
        self._on_status()
        self.page_shown = PageShown()
        # a preheated kernel loaded the data long before this: re-read the caches if a layout was missing
        # then (`synthscope prepare` may have run since), and take up newer curation
        self.page_shown.observe(lambda _: (state.refresh_stale_caches(), state.sync_with_session()), names="shown")
        self.connection = ConnectionWatch()
        self.prepare_box = widgets.VBox()
        super().__init__([widgets.HTML(STYLE), self.page_shown, self.connection, widgets.HBox([header, widgets.VBox([self.present, self.evaluation, self.evaluation_label, self.undo_button, self.prepare_button])]),
                          self.evaluation_banner, self.status, self.prepare_box, self.tabs])
        self.add_class("ss-app")
        self._on_tab()

    def prepare(self, extractors=("fingerprint", "pixels"), projections=("umap", "tsne")):
        """Run `synthscope prepare` on this page's data (its defaults, the load's options) on a worker thread,
        its progress in the page; then re-read the caches. Returns the thread (None when one is running)."""
        from synthscope.datatree import prepare
        from synthscope_dashboard.views.progress import ProgressPanel, in_background

        if self.prepare_button.disabled:
            return None
        workspace, state = self.state.workspace, self.state
        loading = json.loads(os.environ.get(ENV_LOAD) or "{}")
        options = {key: loading[key] for key in LOAD_OPTIONS if key in (loading if isinstance(loading, dict) else {})}
        self.prepare_panel = panel = ProgressPanel(f"Preparing {workspace.path} (what `synthscope prepare` does)")
        self.prepare_box.children = [panel]
        self.prepare_button.disabled = True
        self.prepare_button.description = "Preparing…"

        def work(progress):
            from synthscope.cache import EmbeddingCache

            return prepare(workspace.path, extractors=extractors, projections=projections,
                           cache=EmbeddingCache(workspace.cache_dir), progress=False, say=lambda message: None,
                           on_progress=progress, **options)

        def done(items, error) -> None:
            self.prepare_button.disabled = False
            self.prepare_button.description = "Prepare"
            if error is not None:
                panel.say(f"prepare failed: {error}")
                state.status = f"prepare failed: {error}"
                return
            computed = sum(item.computed for item in items)
            panel.say(f"prepared: {computed} of {len(items)} steps computed, the rest were cached; caches re-read")
            if workspace.attribution_loader is not None and workspace.attribution is not None:
                state.reload_data()

        return in_background(work, panel, done, name="synthscope-prepare")

    def _on_tab(self, change=None) -> None:
        # Plotly figures must be created while their tab is visible, or Voila renders them empty.
        index = self.tabs.selected_index or 0
        self.views[index].ensure_built()

    def _on_evaluation(self, change=None) -> None:
        self.evaluation_banner.value = (
            "<div class='ss-banner ss-eval-banner' role='alert'>Evaluation mode: shows test-label scores; do not tune "
            "with it on. The numbers under \"test (ground-truth file, evaluation only)\" come from the test labels: "
            "a threshold or cluster moved while reading them is fit on test. Switch it off before curating.</div>"
            if self.state.evaluation_mode else "")

    def _on_status(self, change=None) -> None:
        if self.state.conflict is not None:
            saved = " · NOT saved (another tab saved newer curation)"
        elif self.state.saving:
            saved = " · saving…"
        elif self.state.last_saved:
            saved = f" · curation autosaved {self.state.last_saved}"   # the time the file reached the disk
        else:
            saved = ""
        self.status.value = f"<div class='ss-status'>{esc(self.state.status)}{esc(saved)}</div>"
        self.undo_button.disabled = not self.state.can_undo

    def view(self, title: str):
        return next(v for v in self.views if v.title == title)

    def show(self, title: str) -> None:
        self.tabs.selected_index = [v.title for v in self.views].index(title)


def build(path: str | os.PathLike | None = None, *, cache_dir=None, extractor: str = "fingerprint",
          workspace: Workspace | None = None, autosave: bool = True, export_dir=None, background: bool = False,
          on_progress=None, **state_options) -> widgets.Widget:
    """The dashboard widget for a data set folder, a dev/test pair or a bench root.

    `path` defaults to $SYNTHSCOPE_DASHBOARD_PATH. Bad input gives a page that says what is wrong.
    `export_dir` is the one folder exports may write under (default: $SYNTHSCOPE_DASHBOARD_EXPORT_DIR,
    else `<cache>/exports/<session>`). `state_options` set AppState traits before the first clustering
    (e.g. method="kmeans", k=5). `on_progress`: a callable(ProgressEvent) told of every loading step.
    `background=True` (the notebook's call) returns at once a page showing the load's progress, per data set
    and extractor with an ETA, which becomes the dashboard when the data is loaded (`views.progress.start_page`).
    """
    if "k" not in state_options and os.environ.get(ENV_K, "").strip():
        raw = os.environ[ENV_K].strip()   # `synthscope dashboard --k N`
        if not raw.isdigit() or int(raw) < 1:
            return widgets.HTML(STYLE + banner(f"<b>k = {esc(raw)} is not a number of generators</b> "
                                               f"(from <code>{ENV_K}</code>); give a whole number of at least 1.", "bad"))
        state_options["k"] = int(raw)
    engine = os.environ.get(ENV_ENGINE, "").strip()
    if "scatter_engine" not in state_options and engine in ("auto", "plotly", "jscatter"):
        state_options["scatter_engine"] = engine
    options = dict(extractor=extractor, autosave=autosave, export_dir=export_dir, **state_options)
    if workspace is not None:
        return _assemble(workspace, **options)
    path = path or os.environ.get(ENV_PATH)
    if not path:
        return widgets.HTML(STYLE + banner(
            "No data path given. Start the dashboard with <code>synthscope dashboard PATH</code> "
            f"or set <code>{ENV_PATH}</code>.", "bad"))
    if background:
        from synthscope_dashboard.views.progress import start_page

        def load(progress):
            from synthscope.progress import ProgressTracker

            tracker = ProgressTracker(progress)
            loaded, problem = _open(path, cache_dir, extractor, tracker)
            if loaded is not None and loaded.attribution is not None:
                tracker.step("cluster", "label-free clustering of the generated images", unit="")
            return {"problem": problem} if problem else {"workspace": loaded}

        def assemble(problem=None, workspace=None):
            return widgets.HTML(problem) if problem else _assemble(workspace, **options)

        return start_page(assemble, load, str(path))
    loaded, problem = _open(path, cache_dir, extractor, on_progress)
    return widgets.HTML(problem) if problem else _assemble(loaded, **options)


def _open(path, cache_dir, extractor: str, on_progress) -> tuple[Workspace | None, str | None]:
    """(the workspace, None), or (None, the HTML of a page saying what is wrong). Creates no widget, so a
    worker thread may call it."""
    try:
        loading = json.loads(os.environ.get(ENV_LOAD) or "{}")
        if not isinstance(loading, dict) or set(loading) - set(LOAD_OPTIONS):
            raise ValueError(f"{ENV_LOAD} must be a JSON object with keys among {', '.join(LOAD_OPTIONS)}")
        return load_workspace(Path(path), extractor=extractor, cache_dir=cache_dir, on_progress=on_progress,
                              **loading), None
    except (WorkspaceError, ValueError, FileNotFoundError) as error:
        return None, STYLE + banner(f"<b>Could not open {esc(path)}</b><br>{esc(error)}", "bad")
    except ImportError as error:
        return None, (STYLE + banner(f"A synthscope module the dashboard needs is missing: {esc(error)}", "bad")
                      + f"<pre>{esc(traceback.format_exc())}</pre>")


def _assemble(workspace: Workspace, *, extractor: str, autosave: bool, export_dir, **state_options) -> widgets.Widget:
    """The state (the first clustering) and the views over a loaded workspace."""
    k = state_options.get("k")
    if k is not None and workspace.attribution is not None:
        from synthscope.attribution import check_k

        clustered = int(workspace.attribution.scored.sum())   # the images the clustering is fit on
        try:
            check_k(k, clustered)
        except ValueError as error:
            return widgets.HTML(STYLE + banner(
                f"<b>k = {int(k)} cannot split the {clustered:,} sub-task 2 images the dashboard clusters</b>: "
                f"{esc(error)}. Start the dashboard with another <code>--k</code> (the number of generators the "
                "task states).", "bad"))
    try:
        state = AppState(workspace, autosave=autosave, **state_options)
    except ValueError as error:   # e.g. a k the clustering cannot reach on these images
        return widgets.HTML(STYLE + banner(f"<b>Could not cluster the sub-task 2 images</b>: {esc(error)}", "bad"))
    state.extractor = workspace.attribution.extractor if workspace.attribution is not None else extractor
    return Dashboard(state, export_dir=export_dir)
