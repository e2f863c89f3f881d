"""Export and present: validated run files with the curation, figures as HTML + PNG."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path, PureWindowsPath

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from synthscope_dashboard.markup import PLOT_CONFIG
from synthscope_dashboard.runs import RunCheck, write_run
from synthscope_dashboard.views.common import View, banner, esc


ENV_EXPORT_DIR = "SYNTHSCOPE_DASHBOARD_EXPORT_DIR"   # `synthscope dashboard --export-dir DIR`


class ExportRefused(ValueError):
    """A sub-folder that would leave the export root."""


def default_export_root(state) -> Path:
    """`<cache>/exports/<session>`: beside the session store, one folder per data set."""
    return state.session_file.parent.parent / "exports" / state.session_file.stem


def inside(root: Path, sub: str) -> Path:
    """`root / sub`, resolved, or ExportRefused when `sub` is absolute, has `..`, or leads out through a link.

    The page has no authentication, so any local process can drive it: it must never be a way to write
    elsewhere on the disk.
    """
    text = (sub or "").strip()
    if not text:
        return root
    if text.startswith("~") or Path(text).is_absolute() or PureWindowsPath(text).is_absolute():
        raise ExportRefused(f"{text!r} is not a sub-folder name: give a folder relative to the export root")
    parts = Path(text).parts
    if ".." in parts:
        raise ExportRefused(f"{text!r} leaves the export root ('..' is not allowed)")
    target = (root / text).resolve()   # follows links: a link pointing out is caught here
    if target != root and root not in target.parents:
        raise ExportRefused(f"{text!r} leads out of the export root (through a link to {target})")
    return target


def link_new(source: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Give `source` the first free name `stem.suffix`, `stem-2.suffix`, … in `folder` and remove `source`.
    os.link fails on an existing name, so a file that is there (even one made a moment ago by another
    page) is never replaced."""
    for number in range(1, 10_000):
        candidate = folder / (f"{stem}{suffix}" if number == 1 else f"{stem}-{number}{suffix}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            continue
        source.unlink()
        return candidate
    raise ExportRefused(f"{folder} already holds 9,999 files named {stem}-N{suffix}")


def new_folder(parent: Path, name: str) -> Path:
    for number in range(1, 10_000):
        candidate = parent / (name if number == 1 else f"{name}-{number}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise ExportRefused(f"{parent} already holds 9,999 folders named {name}-N")


def plain_figure(figure) -> go.Figure:
    """A static copy of a FigureWidget. A scatter selection leaves its outline in layout.selections (in
    the form plotly.js sends it, which plotly.py's validator rejects) and selectedpoints on the traces:
    neither belongs in a saved figure."""
    spec = figure.to_dict()
    layout = spec.get("layout", {})
    for key in ("selections", "activeselection", "newselection"):
        layout.pop(key, None)
    for trace in spec.get("data", []):
        trace.pop("selectedpoints", None)
    try:
        return go.Figure(spec)
    except ValueError:   # some other state plotly.js sent back: drop what does not validate
        return go.Figure(spec, skip_invalid=True)


class ExportView(View):
    title = "Export"

    def __init__(self, state, figure_sources, export_root: str | os.PathLike | None = None):
        super().__init__(state)
        self.figure_sources = figure_sources   # views whose figures can be saved
        root = export_root or os.environ.get(ENV_EXPORT_DIR) or default_export_root(state)
        self.export_root = Path(root).expanduser().resolve()

    def build(self):
        workspace = self.state.workspace
        self.folder = widgets.Text(value="", description="sub-folder", placeholder="(none: the export root itself)",
                                   layout=widgets.Layout(width="640px"))
        self.folder.add_class("ss-export-folder")
        self.root_note = widgets.HTML(
            f"<div class='ss-export-root'>Files are written under the export root "
            f"<code class='ss-export-root-path'>{esc(self.export_root)}</code> (set it with "
            "<code>synthscope dashboard --export-dir DIR</code>), in the sub-folder named below. A path that leaves "
            "the root (<code>..</code>, an absolute path, a link out) is refused. An existing file is never "
            "replaced: a second run is written as <code>subtask1_run-2.csv</code>, then <code>-3</code>, …; "
            "figures go to <code>figures/</code>, then <code>figures-2/</code>, ….</div>")
        buttons = []
        if workspace.membership is not None:
            self.membership_button = widgets.Button(description="Write sub-task 1 run", icon="download", button_style="primary")
            self.membership_button.add_class("ss-export-st1")
            self.membership_button.on_click(lambda _: self.show(self.export_membership()))
            buttons.append(self.membership_button)
            self.scores_button = widgets.Button(description="Write sub-task 1 scores", icon="download",
                                                tooltip="image_id,score,rank per real image, as `membership --scores`")
            self.scores_button.add_class("ss-export-scores")
            self.scores_button.on_click(lambda _: self.show(self.export_scores()))
            buttons.append(self.scores_button)
        if workspace.attribution is not None:
            self.attribution_button = widgets.Button(description="Write sub-task 2 run", icon="download", button_style="primary")
            self.attribution_button.add_class("ss-export-st2")
            self.attribution_button.on_click(lambda _: self.show(self.export_attribution()))
            buttons.append(self.attribution_button)
            self.attribution_scores_button = widgets.Button(
                description="Write sub-task 2 scores", icon="download",
                tooltip="image_id,prediction,confidence,novelty per image (assignment margin, outlier score), as "
                        "`synthscope attribute TEST --k K --scores FILE`")
            self.attribution_scores_button.add_class("ss-export-st2-scores")
            self.attribution_scores_button.on_click(lambda _: self.show(self.export_attribution_scores()))
            buttons.append(self.attribution_scores_button)
        if workspace.subsets is not None and workspace.subsets.run is not None:
            self.subset_button = widgets.Button(description="Write 2025 sub-task 2 run", icon="download",
                                                button_style="primary",
                                                tooltip="<image_id>,<subset> per test image, as `synthscope attribute "
                                                        "TEST --dev DEV`")
            self.subset_button.add_class("ss-export-subsets")
            self.subset_button.on_click(lambda _: self.show(self.export_subsets()))
            buttons.append(self.subset_button)
            self.subset_scores_button = widgets.Button(
                description="Write 2025 sub-task 2 scores", icon="download",
                tooltip="image_id,prediction,confidence,novelty per test image, as `synthscope attribute TEST "
                        "--dev DEV --scores FILE`")
            self.subset_scores_button.add_class("ss-export-subset-scores")
            self.subset_scores_button.on_click(lambda _: self.show(self.export_subset_scores()))
            buttons.append(self.subset_scores_button)
        self.figures_button = widgets.Button(description="Save figures (HTML + PNG)", icon="image")
        self.figures_button.add_class("ss-export-figures")
        self.figures_button.on_click(lambda _: self.save_figures())
        self.report_button = widgets.Button(description="Export report (HTML)", icon="file-text-o",
                                            tooltip="one self-contained HTML file (no kernel, no network needed): "
                                                    "scatter, fingerprints, tables, verdicts, galleries")
        self.report_button.add_class("ss-export-report")
        self.report_button.on_click(lambda _: self.show(self.export_report()))
        self.result = widgets.HTML()
        self.result.add_class("ss-export-result")
        intro = ("<p>Run files use the test images (or all images when there is no test split) and include your "
                 "curation: moved, merged, split clusters and every label set by hand. Each file is validated "
                 "after writing. Presentation mode (top right) hides every control.</p>")
        return [widgets.HTML(intro), self.root_note, self.control(self.folder),
                self.control(widgets.HBox(buttons + [self.figures_button, self.report_button],
                                                 layout=widgets.Layout(flex_flow="row wrap"))), self.result]

    def target(self) -> Path:
        """The folder the sub-folder box names, made if needed; ExportRefused when it leaves the root."""
        self.export_root.mkdir(parents=True, exist_ok=True)
        folder = inside(self.export_root, self.folder.value)
        folder.mkdir(parents=True, exist_ok=True)
        inside(self.export_root, str(folder.relative_to(self.export_root)))   # no link swapped in meanwhile
        return folder

    def refused(self, what: str, error: Exception) -> str:
        self.state.status = f"{what} refused: {error}"
        return banner(f"<b>{esc(what)} refused</b>: {esc(error)}<br>Export root: <code>{esc(self.export_root)}</code>",
                      "bad")

    def write_new(self, name: str, kind: str, series: pd.Series, k: int | None = None):
        """Write and validate a run file into a temporary name, then give it the first free name."""
        return self.write_new_file(name, lambda tmp: write_run(tmp, kind, series, k=k))

    def write_new_file(self, name: str, write):
        """`write(tmp) -> RunCheck` into a temporary name, then the first free name: never overwrite."""
        from synthscope.outputs import process_umask

        folder = self.target()
        stem, suffix = name.rsplit(".", 1)
        handle, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=folder)
        # mkstemp makes 0600 files, and a writer that fills this one in place keeps that mode: an export
        # gets the mode any new file gets here (0644 under umask 022), as the CLI's run files do
        os.fchmod(handle, 0o666 & ~process_umask())
        os.close(handle)
        tmp = Path(tmp)
        try:
            check = write(tmp)
            path = link_new(tmp, folder, stem, "." + suffix) if check.ok else folder / name
        finally:
            tmp.unlink(missing_ok=True)
        return path, check

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
        try:
            path, check = self.write_new("subtask1_run.csv", "membership", series)
        except ExportRefused as error:
            return self.refused("sub-task 1 run", error)
        return self._report("sub-task 1", path, check,
                            f"{int(predictions.sum()):,} of {len(series):,} called used, "
                            f"{sum(k in set(frame['key'][scope]) for k in self.state.overrides)} by hand")

    def export_scores(self) -> str:
        """image_id,score,rank per scored real image: the file `synthscope membership --scores` writes."""
        from synthscope.score_files import write_score_file
        from synthscope.submission import SubmissionError

        run = self.state.workspace.membership.run
        if run is None:
            return banner("These membership scores do not come from a core run, so there is no scores file.", "info")
        table = run.scores_table()

        def write(tmp: Path) -> RunCheck:
            try:
                write_score_file(tmp, table, expected_ids=table["image_id"])
            except SubmissionError as error:
                return RunCheck(False, [str(error)])
            return RunCheck(True)

        try:
            path, check = self.write_new_file("subtask1_scores.csv", write)
        except ExportRefused as error:
            return self.refused("sub-task 1 scores", error)
        return self._report("sub-task 1 scores", path, check,
                            f"{len(table):,} real images: score (higher = more likely used) and rank within its "
                            f"folder (1 = most likely used); the scores do not change with the threshold")

    def export_attribution(self) -> str:
        frame = self.state.workspace.attribution.frame
        scope = self._scope(frame)
        _, clusters = np.unique(self.state.assignments[scope], return_inverse=True)
        series = pd.Series(clusters.astype(np.int64), index=frame["image_id"].to_numpy()[scope])
        k = int(clusters.max()) + 1 if len(clusters) else 0
        names = {int(c): self.state.cluster_name(c) for c in np.unique(self.state.assignments[scope])}
        legend = ", ".join(f"{i} = {esc(name)}" for i, name in enumerate(names.values()))
        note = (f"<br><b>note:</b> the clustering was asked for k = {self.state.k}, but your curation leaves {k} "
                "cluster(s) in this run." if k != self.state.k else "")
        try:
            path, check = self.write_new("subtask2_run.csv", "attribution", series, k=k)
        except ExportRefused as error:
            return self.refused("sub-task 2 run", error)
        return self._report("sub-task 2", path, check,
                            f"{len(series):,} images in {k} clusters ({legend}){note}")

    def export_attribution_scores(self) -> str:
        """image_id,prediction,confidence,novelty per image of the run file (the curated clusters, numbered
        as `export_attribution` numbers them): before any curation, the file `synthscope attribute TEST
        --k K --method METHOD --scores FILE` writes."""
        frame, state = self.state.workspace.attribution.frame, self.state
        scope = self._scope(frame)
        _, clusters = np.unique(state.assignments[scope], return_inverse=True)
        table = state.workspace.attribution.scores_table(clusters.astype(np.int64), state.k, state.method)
        path, check = self._write_scores(table, "subtask2_scores.csv")
        if path is None:
            return self.refused("sub-task 2 scores", check)
        return self._report("sub-task 2 scores", path, check,
                            f"{len(table):,} images: confidence = assignment margin (0 = halfway to another "
                            "cluster), novelty = outlier score (LOF, about 1 = typical); clusters as in the run file")

    def _write_scores(self, table: pd.DataFrame, name: str):
        """The core's scores writer into a new file: (path, RunCheck), or (None, the refusal)."""
        from synthscope.score_files import write_attribution_scores
        from synthscope.submission import SubmissionError

        def write(tmp: Path) -> RunCheck:
            try:
                write_attribution_scores(tmp, table)
            except SubmissionError as error:
                return RunCheck(False, [str(error)])
            return RunCheck(True)

        try:
            return self.write_new_file(name, write)
        except ExportRefused as error:
            return None, error

    def export_subsets(self) -> str:
        """The 2025 sub-task 2 run (`<image_id>,<subset>`): the core run's own writer, then validated
        against the test ids and the dev subsets -- the file `synthscope attribute` writes."""
        from synthscope.submission import SubmissionError, validate_run

        subsets = self.state.workspace.subsets
        run = subsets.run
        ids = [str(i) for i in run.labels.index]

        def write(tmp: Path) -> RunCheck:
            try:
                run.write(tmp, expected_ids=ids)
            except SubmissionError as error:
                return RunCheck(False, [str(error)])
            result = validate_run(tmp, "subset", ids, allowed_labels=subsets.classes)
            return RunCheck(bool(result.ok), list(result.errors))

        try:
            path, check = self.write_new_file("subtask2_subsets_run.csv", write)
        except ExportRefused as error:
            return self.refused("2025 sub-task 2 run", error)
        counts = run.labels.value_counts()
        return self._report("2025 sub-task 2", path, check,
                            f"{len(ids):,} images: " + ", ".join(f"{esc(s)} {int(counts.get(s, 0)):,}"
                                                                 for s in subsets.classes))

    def export_subset_scores(self) -> str:
        """image_id,prediction,confidence,novelty per test image: the core's writer, so the bytes are the
        file `synthscope attribute TEST --dev DEV --scores FILE` writes (at any --novelty-alpha)."""
        table = self.state.workspace.subsets.run.scores_table()
        path, check = self._write_scores(table, "subtask2_subsets_scores.csv")
        if path is None:
            return self.refused("2025 sub-task 2 scores", check)
        alpha = self.state.novelty_alpha
        flagged = int(self.state.subset_predictions()["none_of_these"].sum())
        return self._report("2025 sub-task 2 scores", path, check,
                            f"{len(table):,} images: calibrated confidence and novelty = 1 - conformal p-value; "
                            f"{flagged:,} flagged none of these at level {alpha:g} (novelty above {1 - alpha:g}), as "
                            f"<code>attribute --novelty-alpha {alpha:g}</code> flags them; the file is the same at "
                            "every level")

    def _report(self, what: str, path: Path, check, detail: str) -> str:
        kind = "file" if what.endswith("scores") else "run"
        self.state.status = f"{what} {kind} written to {path}" if check.ok else f"{what} {kind} NOT valid"
        if check.ok:
            return banner(f"<b>{what} {kind} written and valid</b>: <code class='ss-run-path'>{esc(path)}</code><br>{detail}", "ok")
        return banner(f"<b>{what} {kind} refused</b>: " + "<br>".join(esc(e) for e in check.errors), "bad")

    def export_report(self) -> str:
        """The static report (`synthscope_dashboard.report`) of the current curation, never overwriting."""
        import time

        from synthscope_dashboard.report import external_references, write_report

        def write(tmp: Path) -> RunCheck:
            write_report(self.state, tmp)
            found = external_references(tmp.read_text(encoding="utf-8"))
            return RunCheck(not found, [f"the report would fetch {ref!r}" for ref in found])

        start = time.perf_counter()
        try:
            path, check = self.write_new_file("synthscope_report.html", write)
        except ExportRefused as error:
            return self.refused("report", error)
        seconds = time.perf_counter() - start
        if not check.ok:
            self.state.status = "report NOT written"
            return banner("<b>report refused</b>: " + "<br>".join(esc(e) for e in check.errors), "bad")
        self.state.status = f"report written to {path}"
        return banner(f"<b>report written</b>: <code class='ss-report-path'>{esc(path)}</code><br>"
                      f"{path.stat().st_size / 1024:,.0f} KB in {seconds:.1f} s; one file that opens in any browser "
                      "without the dashboard or a network", "ok")

    def save_figures(self) -> None:
        """Save figures with feedback (issue 22 defect 3): a PNG starts a headless browser, so a save takes
        seconds per figure. Meanwhile the button is disabled and the box says which figure is being saved
        (widget messages go out during the call), never the previous export's text."""
        button = self.figures_button
        self.show(banner("<b>saving figures…</b>", "info"))   # first: the page never shows the old text disabled
        button.disabled = True
        try:
            self.show(self.export_figures(progress=lambda done, total, name: self.show(banner(
                f"<b>saving figures…</b> {done + 1} of {total}: <code>{esc(name)}</code> (HTML, then PNG)", "info"))))
        except Exception:
            self.show(banner("<b>saving figures failed</b>: the status line says why", "bad"))
            raise
        finally:
            button.disabled = False

    def export_figures(self, progress=None) -> str:
        """Write every view's figures as HTML + PNG into a new `figures/` folder; `progress(done, total,
        name)` is called before each figure."""
        if not any(view.figures for view in self.figure_sources):
            return banner("No figures yet: open the views first (figures are made when their tab is first shown).", "info")
        try:
            folder = new_folder(self.target(), "figures")
        except ExportRefused as error:
            return self.refused("saving figures", error)
        written, problems = [], []
        named = [(name, figure) for view in self.figure_sources for name, figure in view.figures.items()]
        for done, (name, figure) in enumerate(named):
            if progress is not None:
                progress(done, len(named), name)
            plain = plain_figure(figure)
            html_path = folder / f"{name}.html"
            plain.write_html(html_path, include_plotlyjs=True, config=PLOT_CONFIG)   # self-contained, offline
            written.append(html_path)
            png_path = folder / f"{name}.png"
            error = _write_png(plain, png_path)
            if error is None:
                written.append(png_path)
            else:   # kaleido missing or broken: the HTML is still there
                problems.append(f"{name}.png: {error}")
        if not written:
            return banner("No figures yet: open the views first (figures are made when their tab is first shown).", "info")
        self.state.status = f"saved {len(written)} figure files to {folder}"
        listing = "<br>".join(f"<code>{esc(p)}</code>" for p in written)
        extra = "<br>" + "<br>".join(esc(p) for p in problems) if problems else ""
        return banner(f"<b>saved {len(written)} files</b><br>{listing}{extra}", "warn" if problems else "ok")


#: seconds one PNG may take; kaleido's browser can die and leave its event loop waiting for ever
#: (seen once in make test: the "Save figures" click never returned)
PNG_TIMEOUT_S = 120.0


def _write_png(figure, path, attempts: int = 2, timeout_s: float | None = None):
    """Write a PNG through kaleido; None when written, else the last error. Kaleido starts a headless
    browser per call, and on a loaded machine its page can be evaluated before its scripts load
    ("kaleido_scopes is not defined"): one more try starts a fresh browser. Each try runs in a daemon thread
    given `timeout_s` (PNG_TIMEOUT_S): a try that hangs is left behind and reported, and not tried again."""
    timeout_s = PNG_TIMEOUT_S if timeout_s is None else timeout_s
    error = None
    for _ in range(attempts):
        outcome: list = []

        def write():
            try:
                figure.write_image(path, width=1000, height=600, scale=2)
                outcome.append(None)
            except Exception as caught:
                outcome.append(caught)

        worker = threading.Thread(target=write, name="synthscope-png", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if not outcome:
            return TimeoutError(f"kaleido did not finish the image in {timeout_s:g} s (its browser may have died)")
        if outcome[0] is None:
            return None
        error = outcome[0]
    return error

