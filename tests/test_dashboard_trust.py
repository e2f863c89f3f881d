"""Issue 14 (dashboard half): lose no curation, write nowhere it should not. Kernel side, no browser.

Two pages on the same data, unreadable and hand-edited session files, when "autosaved" is shown,
the export root, errors of button handlers, figures after a selection, and the CLI's checks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from test_dashboard_state import bench, bench_cache, loaded, make_bench, workspace  # noqa: F401  (fixtures)


#: the first membership pair of the test bench (its threshold is in score units, fit on model_1's dev group)
PAIR = "model_1 -> folder_1"


def _sessions(state) -> Path:
    return state.session_file.parent


# ------------------------------------------------------------------------------------------------ two tabs


def test_two_pages_on_the_same_data_never_overwrite_each_other(workspace):
    from synthscope_dashboard.state import AppState

    first, second = AppState(workspace), AppState(workspace)     # two tabs opened on the same data
    fitted = first.thresholds[PAIR]                                # the dev fit both pages open with
    first.assign(np.arange(4), None)
    first.rename(0, "grid GAN")
    first.flush()
    saved = json.loads(first.session_file.read_text())
    # two saves, or one when the writer coalesced them (the newest payload wins while a write is pending)
    assert saved["revision"] in (1, 2) and saved["cluster_names"] == {"0": "grid GAN"}

    second.set_threshold(PAIR, 0.9)          # based on the file as it was before the first tab's saves
    second.flush()
    on_disk = json.loads(first.session_file.read_text())
    assert on_disk["cluster_names"] == {"0": "grid GAN"} and on_disk["thresholds"][PAIR] == fitted, "first tab's work survives"
    assert on_disk["revision"] == saved["revision"]
    assert second.conflict is not None
    assert "another tab saved newer curation at" in second.status and "reload to continue" in second.status
    kept = json.loads(second.conflict.conflict_copy.read_text())
    assert kept["thresholds"][PAIR] == 0.9, "the refused curation is kept beside, not dropped"

    second.set_threshold(PAIR, 0.95)         # still refused, still said
    second.flush()
    assert json.loads(first.session_file.read_text())["thresholds"][PAIR] == fitted
    assert "another tab saved newer curation" in second.status

    first.set_threshold(PAIR, 0.3)           # the tab that is up to date keeps saving
    first.flush()
    after = json.loads(first.session_file.read_text())
    assert after["thresholds"][PAIR] == 0.3 and first.conflict is None and after["revision"] == saved["revision"] + 1

    reloaded = AppState(workspace)     # "reload to continue": the newest curation, and saves again
    assert reloaded.thresholds[PAIR] == 0.3 and reloaded.cluster_names == {"0": "grid GAN"}
    reloaded.set_threshold(PAIR, 0.4)
    reloaded.flush()
    assert reloaded.conflict is None and json.loads(reloaded.session_file.read_text())["revision"] == after["revision"] + 1


def test_a_session_without_revision_is_read_and_continued(workspace):
    """Files written before the revision counter count as revision 0."""
    from synthscope_dashboard.state import AppState

    state = AppState(workspace)
    state.set_threshold(PAIR, 0.6)
    state.flush()
    payload = json.loads(state.session_file.read_text())
    del payload["revision"]
    state.session_file.write_text(json.dumps(payload))
    again = AppState(workspace)
    assert again.thresholds[PAIR] == 0.6
    again.set_threshold(PAIR, 0.7)
    again.flush()
    assert again.conflict is None and json.loads(again.session_file.read_text())["revision"] == 1


# ------------------------------------------------------------------------------------------------ unreadable files


@pytest.mark.parametrize("content", ['{"version": 1, "threshold": 0.7, "overr', '{"version": 99, "threshold": 0.2}'],
                         ids=["truncated", "newer-version"])
def test_an_unreadable_session_is_backed_up_before_the_first_click_replaces_it(workspace, content):
    from synthscope_dashboard.state import AppState, session_path

    path = session_path(workspace.cache_dir, workspace.path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    state = AppState(workspace)
    backups = list(path.parent.glob(f"{path.stem}.bak-*.json"))
    assert len(backups) == 1 and backups[0].read_text() == content
    assert "could not restore" in state.status and str(backups[0]) in state.status
    assert path.read_text() == content, "nothing is replaced before a change"
    AppState(workspace)                                  # a reload makes no second copy
    assert len(list(path.parent.glob(f"{path.stem}.bak-*.json"))) == 1
    state.set_threshold(PAIR, 0.8)
    state.flush()
    assert json.loads(path.read_text())["thresholds"][PAIR] == 0.8
    assert backups[0].read_text() == content, "the backup survives the overwrite"


def test_a_file_damaged_after_loading_is_backed_up_by_the_writer(workspace):
    from synthscope_dashboard.state import AppState

    state = AppState(workspace)
    state.set_threshold(PAIR, 0.6)
    state.flush()
    state.session_file.write_text("{trunc")                # e.g. a disk full while another program wrote
    state.set_threshold(PAIR, 0.65)
    state.flush()
    backups = list(_sessions(state).glob("*.bak-*.json"))
    assert [b.read_text() for b in backups] == ["{trunc"]
    assert str(backups[0]) in state.status
    assert json.loads(state.session_file.read_text())["thresholds"][PAIR] == 0.65


@pytest.mark.parametrize("field,value", [("thresholds", "high"), ("k", "four"), ("overrides", ["a"]),
                                         ("cluster_names", {"x": 3}), ("assignments", {"a": "b"}),
                                         ("thresholds", {"model_1 -> folder_1": "x"}), ("k", 10_000)])
def test_a_session_field_of_the_wrong_type_is_ignored_with_a_message(workspace, field, value):
    from synthscope_dashboard.app import build
    from synthscope_dashboard.state import AppState, session_path

    state = AppState(workspace)
    state.rename(0, "kept name")
    state.flush()
    path = session_path(workspace.cache_dir, workspace.path)
    payload = json.loads(path.read_text())
    payload[field] = value
    path.write_text(json.dumps(payload))
    dashboard = build(workspace=workspace)           # no exception: the page opens
    assert f"ignored {field}" in dashboard.state.status
    backups = list(path.parent.glob(f"{path.stem}.bak-*.json"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())[field] == value
    assert str(backups[0]) in dashboard.state.status
    if field != "cluster_names":
        assert dashboard.state.cluster_names == {"0": "kept name"}, "the good fields are restored"
    assert all(np.isfinite(v) for v in dashboard.state.thresholds.values()) and 1 <= dashboard.state.k <= workspace.attribution.n


# ------------------------------------------------------------------------------------------------ autosaved


def test_autosaved_is_shown_only_after_the_write_reached_the_disk(workspace, monkeypatch):
    import synthscope_dashboard.session as session_module
    import synthscope_dashboard.state as state_module
    from synthscope_dashboard.app import Dashboard

    release, entered = threading.Event(), threading.Event()
    real_write = session_module.write_json_atomic

    def slow_write(path, payload):
        if path.suffix == ".json" and ".conflict-" not in path.name:
            entered.set()
            assert release.wait(30)
        real_write(path, payload)

    monkeypatch.setattr(session_module, "write_json_atomic", slow_write)
    dashboard = Dashboard(state_module.AppState(workspace))
    state = dashboard.state
    state.set_threshold(PAIR, 0.7)
    assert entered.wait(10)
    assert state.last_saved == "" and not state.session_file.exists()
    assert "saving" in dashboard.status.value and "autosaved" not in dashboard.status.value
    release.set()
    state.flush()
    assert state.session_file.exists() and state.last_saved
    assert f"autosaved {state.last_saved}" in dashboard.status.value and "saving" not in dashboard.status.value


def test_a_report_applied_at_once_does_not_leave_saving_on(workspace):
    """The kernel's loop may apply the writer's report before the writer has marked itself idle; the
    page then asked "writes pending?", got yes, and showed "saving..." forever (seen once in CI)."""
    import synthscope_dashboard.state as state_module

    state = state_module.AppState(workspace)
    state._loop = None                       # no loop: apply on the writer thread, the moment it reports
    applied = threading.Event()
    report = state._on_outcome

    def report_and_apply(outcome):
        report(outcome)
        state._apply_outcomes()
        applied.set()

    state._on_outcome = report_and_apply
    state.set_threshold(PAIR, 0.6)
    assert applied.wait(30)
    assert state.last_saved and state.saving is False


def test_a_failed_write_is_shown_and_never_called_autosaved(workspace, monkeypatch):
    import synthscope_dashboard.session as session_module
    import synthscope_dashboard.state as state_module

    def failing_write(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session_module, "write_json_atomic", failing_write)
    state = state_module.AppState(workspace)
    state.set_threshold(PAIR, 0.7)
    state.flush()
    assert "could not save the session" in state.status and "No space left" in state.status
    assert state.last_saved == ""


def test_the_writer_hands_outcomes_to_the_kernel_loop(workspace):
    """In a kernel the outcome is applied by a callback on the kernel's event loop, not by flush()."""
    import asyncio

    from synthscope_dashboard.state import AppState, session_writer

    async def main():
        state = AppState(workspace)
        assert state._loop is asyncio.get_running_loop()
        applied_on = []
        original = state._apply_outcomes
        state._apply_outcomes = lambda: (applied_on.append(threading.current_thread()), original())[1]
        state.set_threshold(PAIR, 0.7)
        applied_on.clear()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if state.last_saved:
                break
        return state, applied_on

    state, applied_on = asyncio.run(main())
    assert state.last_saved, "set by the loop callback without any flush()"
    assert applied_on and all(t is threading.main_thread() for t in applied_on)
    session_writer().flush()


# ------------------------------------------------------------------------------------------------ export root


@pytest.fixture
def export_app(workspace, tmp_path):
    from synthscope_dashboard.app import build

    dashboard = build(workspace=workspace, export_dir=tmp_path / "exports")
    for view in dashboard.views:
        view.ensure_built()
    return dashboard


def test_exports_stay_inside_the_export_root(export_app, tmp_path):
    view = export_app.view("Export")
    root = (tmp_path / "exports").resolve()
    assert str(root) in view.root_note.value, "the page shows where files go"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root).mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(outside)
    for bad in ["../outside", "../../..", str(outside), "/tmp", "a/../../outside", "link", "link/deeper", "~"]:
        view.folder.value = bad
        view.membership_button.click()
        assert "refused" in view.result.value, bad
        assert "refused" in export_app.state.status, bad
    assert not list(outside.iterdir()), "nothing was written outside the root"
    assert not (tmp_path / "exports" / "~").exists()
    view.folder.value = "round 1"
    view.membership_button.click()
    assert (root / "round 1" / "subtask1_run.csv").is_file() and "valid" in view.result.value
    view.folder.value = ""
    view.membership_button.click()
    assert (root / "subtask1_run.csv").is_file()


def test_exports_never_overwrite_a_run_file(export_app, tmp_path):
    state, view = export_app.state, export_app.view("Export")
    root = tmp_path / "exports"
    view.membership_button.click()
    first = (root / "subtask1_run.csv").read_text()
    frame = state.workspace.membership.frame
    row = int(np.flatnonzero((frame.split == "test").to_numpy())[0])
    state.set_override(frame.key[row], 1 - int(state.membership_predictions()[row]))
    view.membership_button.click()
    view.membership_button.click()
    assert (root / "subtask1_run.csv").read_text() == first, "the first run file is untouched"
    assert (root / "subtask1_run-2.csv").read_text() != first
    assert (root / "subtask1_run-3.csv").is_file()
    assert "subtask1_run-3.csv" in view.result.value
    view.attribution_button.click()
    view.attribution_button.click()
    assert sorted(p.name for p in root.glob("subtask2_run*.csv")) == ["subtask2_run-2.csv", "subtask2_run.csv"]
    assert not list(root.glob("*.tmp")), "no temporary file is left behind"


def test_exports_get_the_mode_the_umask_gives_a_new_file(export_app, tmp_path):
    """Issue 23: the report was written 0600 (filled into mkstemp's file) while run files were 0644."""
    view = export_app.view("Export")
    previous = os.umask(0o002)   # a group-writable umask, so the expected mode is not a hard-coded 0644
    try:
        for button in (view.membership_button, view.scores_button, view.attribution_button, view.report_button,
                       view.figures_button):
            button.click()
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "exports").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"subtask1_run.csv", "subtask2_run.csv", "synthscope_report.html", "scatter.html"} <= names, names
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(0o664) for p in files}


def test_the_export_root_comes_from_the_command_line(workspace, tmp_path, monkeypatch):
    from synthscope_dashboard.app import build

    default = build(workspace=workspace).view("Export")
    sessions = default.state.session_file.parent
    assert default.export_root == (sessions.parent / "exports" / default.state.session_file.stem).resolve()
    monkeypatch.setenv("SYNTHSCOPE_DASHBOARD_EXPORT_DIR", str(tmp_path / "from-cli"))
    assert build(workspace=workspace).view("Export").export_root == (tmp_path / "from-cli").resolve()


# ------------------------------------------------------------------------------------------------ handlers and figures


def test_a_failing_button_handler_says_so_in_the_status_line(export_app, monkeypatch):
    view = export_app.view("Export")

    def broken(**_):   # export_figures takes a progress callback
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(view, "export_figures", broken)
    view.figures_button.click()
    assert "failed" in export_app.state.status and "disk on fire" in export_app.state.status
    generators = export_app.view("Generator fingerprints")           # every view's buttons are guarded
    monkeypatch.setattr(export_app.state.workspace.attribution, "split_labels",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("no split today")))
    generators.split_button.click()
    assert "no split today" in export_app.state.status and "failed" in export_app.state.status


def test_figures_are_saved_after_a_scatter_selection(export_app, tmp_path):
    generators = export_app.view("Generator fingerprints")
    scatter = generators.scatter
    # what plotly.js sends back after a box select (seen in the browser test): the outline, whose line
    # colour is JS `undefined` (plotly.py's Undefined sentinel, which its validator rejects), and the
    # selected points per trace
    from plotly.basedatatypes import Undefined

    scatter.plotly_relayout({"selections": [{"type": "rect", "xref": "x", "yref": "y", "x0": -1, "x1": 1,
                                              "y0": -1, "y1": 1, "line": {"width": 1, "dash": "dot",
                                                                          "color": Undefined}}]})
    with pytest.raises(ValueError):
        __import__("plotly.graph_objects").graph_objects.Figure(scatter)   # what the old export did
    scatter.data[0].selectedpoints = [0, 1, 2]
    view = export_app.view("Export")
    view.folder.value = "figs"
    view.figures_button.click()
    folder = tmp_path / "exports" / "figs" / "figures"
    assert sorted(p.name for p in folder.iterdir()) == ["column-histogram.html", "column-histogram.png", "scatter.html",
                                                         "scatter.png", "scores.html", "scores.png"], \
        view.result.value
    view.figures_button.click()                      # a second save does not replace the first
    assert (tmp_path / "exports" / "figs" / "figures-2" / "scatter.html").is_file()



def test_a_png_writer_that_hangs_costs_one_timeout_and_the_html_is_still_saved(export_app, tmp_path, monkeypatch):
    """Kaleido's browser can die and leave write_image waiting for ever (a make test run hung on this test's
    neighbour): each PNG gets a time limit, a hung one is reported and not retried, and the HTML stays."""
    import plotly.graph_objects as go

    from synthscope_dashboard.views import export

    release, calls = threading.Event(), []

    def hang(self, path, **kwargs):
        calls.append(Path(path).name)
        release.wait(60)

    monkeypatch.setattr(go.Figure, "write_image", hang)
    monkeypatch.setattr(export, "PNG_TIMEOUT_S", 0.5)
    try:
        view = export_app.view("Export")
        view.folder.value = "hung"
        view.figures_button.click()
        folder = tmp_path / "exports" / "hung" / "figures"
        names = sorted(p.name for p in folder.iterdir())
        assert names and all(name.endswith(".html") for name in names), names
        assert sorted(calls) == sorted(name.replace(".html", ".png") for name in names)   # one try each
        assert "did not finish the image in 0.5 s" in view.result.value, view.result.value
    finally:
        release.set()


def test_a_png_writer_that_fails_once_is_tried_again():
    from synthscope_dashboard.views.export import _write_png

    class FailsOnce:
        tries = 0

        def write_image(self, path, **kwargs):
            self.tries += 1
            if self.tries == 1:
                raise RuntimeError("kaleido_scopes is not defined")

    figure = FailsOnce()
    assert _write_png(figure, "unused.png", timeout_s=5) is None and figure.tries == 2


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_refuses_a_k_larger_than_the_images_allow(tmp_path):
    from typer.testing import CliRunner

    from synthscope.cli import app

    root = make_bench(tmp_path / "bench", n=3)
    result = CliRunner().invoke(app, ["dashboard", str(root), "--k", "100", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "--k 100" in result.output and "12" in result.output and "Traceback" not in result.output


def test_cli_checks_k_against_the_test_images_the_page_clusters(tmp_path):
    """Issue 23: the check counted dev and test images (21 here), so --k 15 was served and then refused by
    the page, which clusters the 12 test images only (and places the dev images in those clusters)."""
    from typer.testing import CliRunner

    from synthscope.cli import app

    root = make_bench(tmp_path / "bench", n=3)   # sub-task 2: 9 dev and 12 test generated images
    with socket.socket() as sock:   # a busy port: a --k the check lets through stops there, before serving
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        for k in ("15", "12", "1"):   # what the page's clustering refuses (check_k: 2 <= k < 12)
            result = CliRunner().invoke(app, ["dashboard", str(root), "--k", k, "--port", port])
            assert result.exit_code == 2 and f"--k {k} cannot be used for the 12 sub-task 2 images" in result.output, \
                result.output
        result = CliRunner().invoke(app, ["dashboard", str(root), "--k", "11", "--port", port])
    assert result.exit_code == 2 and "is in use" in result.output and "--k" not in result.output, result.output


def test_the_kernel_refuses_a_k_larger_than_the_images_allow(workspace, monkeypatch):
    from synthscope_dashboard.app import build

    monkeypatch.setenv("SYNTHSCOPE_DASHBOARD_K", "100000")
    page = build(workspace=workspace)
    assert "k = 100000" in page.value and "Traceback" not in page.value


def test_cli_refuses_a_busy_port(tmp_path):
    from typer.testing import CliRunner

    from synthscope.cli import app

    root = make_bench(tmp_path / "bench", n=3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", str(root), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 is in use" in result.output


def test_the_voila_command_culls_idle_kernels_and_never_moves_port(tmp_path):
    from synthscope.commands.dashboard import voila_command

    argv, env = voila_command(tmp_path, port=8899, export_dir=tmp_path / "out")
    assert "--port_retries=0" in argv or "--Voila.port_retries=0" in argv
    assert "--MappingKernelManager.cull_idle_timeout=300" in argv
    assert "--MappingKernelManager.cull_interval=60" in argv
    assert "--MappingKernelManager.cull_connected=False" in argv
    assert "--preheat_kernel=True" in argv and "--pool_size=1" in argv
    assert env["SYNTHSCOPE_DASHBOARD_EXPORT_DIR"] == str((tmp_path / "out").resolve())
    short = voila_command(tmp_path, cull_idle_timeout=20, cull_interval=5)[0]
    assert "--MappingKernelManager.cull_idle_timeout=20" in short and "--MappingKernelManager.cull_interval=5" in short
