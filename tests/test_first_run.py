"""Issue 22 item 4 / defect 2: the first load and `prepare` report progress per data set and extractor with
an ETA (core `synthscope.progress`), and the session keeps which features the clusters were made on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from synthscope.progress import ProgressTracker

from test_dashboard_state import bench, bench_cache, loaded  # noqa: F401  (fixtures: the run's bench, its cache)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_eta_is_the_remaining_planned_cost_at_the_measured_pace():
    clock, events = FakeClock(), []
    tracker = ProgressTracker(events.append, min_interval_s=0.0, clock=clock)
    tracker.plan("a", "fingerprint features of dev", 100, cost_per_unit=0.02)    # 2 s estimated
    tracker.plan("b", "pixels features of dev", 100, cost_per_unit=0.02)         # 2 s estimated
    assert tracker.event().eta_s is None                                        # no pace yet
    with tracker.step("a") as tick:
        tick(0, 100)
        clock.now += 8.0                     # this machine is 4x slower than the estimate
        tick(50, 100)
    assert events[-2].done == 50 and events[-2].index == 1 and events[-2].n_steps == 2
    assert events[-2].fraction == pytest.approx(0.25)
    assert events[-2].eta_s == pytest.approx(24.0)     # 3 s estimated left x 4 = 24 s
    clock.now += 8.0
    step = tracker.step("b")
    assert events[-1].step == "pixels features of dev" and events[-1].eta_s == pytest.approx(16.0)
    step(0, 25)                              # fewer images left to compute than planned: the step shrinks
    assert events[-1].eta_s == pytest.approx(0.5 * 16.0 / 2.0)
    step.__exit__(None, None, None)
    final = tracker.finish()
    assert final.finished and final.eta_s == 0.0 and final.fraction == 1.0
    assert "done in" in final.describe() and "step 2 of 2" in events[-2].describe()


def test_a_step_found_cached_no_longer_weighs_in_the_eta():
    clock = FakeClock()
    tracker = ProgressTracker(None, clock=clock)
    tracker.plan("umap", "UMAP", 100, fixed_cost=60.0)
    tracker.plan("embed", "embed", 10, cost_per_unit=1.0)
    with tracker.step("embed") as tick:
        clock.now += 5.0
        tick(5, 10)
        assert tracker.event().eta_s == pytest.approx((60.0 + 100 * 0.02 + 5.0) * 5.0 / 5.0)
        tracker.skip("umap")
        assert tracker.event().eta_s == pytest.approx(5.0)


@pytest.fixture(scope="module")
def quick_demo(quick_demo_root):
    """The run's quick demo (conftest: seed 0, on the CPU), read only: loads write to caches of their own."""
    return quick_demo_root


def _steps(events) -> list[str]:
    return list(dict.fromkeys(event.step for event in events if not event.finished))


@pytest.mark.timeout(900)
def test_a_cold_first_load_reports_every_data_set_and_extractor_with_an_eta(quick_demo, tmp_path):
    """The page's loading code on the demo with an empty cache: one step per data set and extractor,
    membership group and the clustering; fractions only grow; an ETA once a pace is known; a warm load
    has nothing left to compute."""
    from synthscope_dashboard.workspace import load_workspace

    events = []
    tracker = ProgressTracker(events.append, min_interval_s=0.0)
    workspace = load_workspace(quick_demo, cache_dir=tmp_path / "cache", on_progress=tracker)
    with tracker.step("cluster"):
        pass
    tracker.finish()
    steps = _steps(events)
    for split in ("dev", "test"):
        assert f"fingerprint features of subtask2/{split}" in steps, steps
        for space in ("pixels-norm", "pixels-128", "pixels-lung", "fingerprint"):
            assert f"{'fingerprint' if space == 'fingerprint' else 'pixels'} features ({space}) of subtask1/{split}" \
                in steps, steps
    assert "membership scores of folder_1" in steps and "membership scores of folder_2" in steps, steps
    assert steps[-1] == "label-free clustering of the generated images"
    embedded = [e for e in events if e.step == "fingerprint features of subtask2/test" and e.total]
    assert embedded[-1].done == embedded[-1].total == int((workspace.attribution.frame["split"] == "test").sum())
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(e.n_steps == len(tracker.steps) for e in events)
    paced = [e for e in events if e.eta_s is not None and not e.finished]
    assert paced and all(np.isfinite(e.eta_s) and e.eta_s >= 0 for e in paced)
    # plausible: elapsed + ETA never claims a finished run is far off, nor a half-done one is over
    midway = [e for e in paced if 0.2 < e.fraction < 0.8]
    assert midway and all(e.eta_s > 0 for e in midway)
    assert events[-1].finished and events[-1].eta_s == 0.0

    again = []
    warm = ProgressTracker(again.append, min_interval_s=0.0)
    load_workspace(quick_demo, cache_dir=tmp_path / "cache", on_progress=warm)
    assert all(step.cost == 0 for key, step in warm.steps.items() if key != "cluster"), warm.steps


@pytest.mark.timeout(900)
def test_prepare_reports_its_steps_and_the_page_button_runs_it(quick_demo, tmp_path, monkeypatch):
    """`prepare(on_progress=...)` (the CLI's work) tells of each extractor, data set and projection; the
    page's Prepare button runs it on a worker thread with the same events, then re-reads the caches."""
    from synthscope_dashboard.app import build

    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    app = build(quick_demo / "subtask2", cache_dir=tmp_path / "cache", autosave=False)
    assert "tsne" not in app.state.workspace.attribution.projections
    thread = app.prepare(projections=("tsne",))
    thread.join()
    events = app.prepare_panel.events
    steps = _steps(events)
    assert "pixels features of subtask2/dev" in steps and "fingerprint features of subtask2/test" in steps, steps
    assert any(step.startswith("TSNE of fingerprint") for step in steps), steps
    assert events[-1].finished and "prepared" in app.prepare_panel.line.value
    assert "tsne" in app.state.workspace.attribution.projections          # re-read after prepare
    assert not app.prepare_button.disabled and app.prepare_button.description == "Prepare"


def _clustered_session(state, clustered_on: str | None) -> dict:
    payload = state.to_session()
    payload.pop("clustered_on", None)
    if clustered_on is not None:
        payload["clustered_on"] = clustered_on
    return payload


def test_the_session_keeps_the_features_the_clusters_were_made_on(loaded, tmp_path):
    """Cluster on fingerprint, show pixels without re-clustering: the reload shows pixels over the
    fingerprint clusters (the model, its space and the 'features differ' warning), not a pixels re-cluster."""
    from synthscope_dashboard.session import SESSION_VERSION
    from synthscope_dashboard.state import AppState

    first = AppState(dataclasses.replace(loaded, cache_dir=tmp_path / "cache"))
    assert first.workspace.attribution.clustered_on == "fingerprint"
    first.rename(0, "kept")
    first.load_extractor("pixels")
    assert first.workspace.attribution.space_differs
    first.rename(1, "pixels shown")
    first.flush()
    saved = json.loads(first.session_file.read_text())
    assert saved["version"] == SESSION_VERSION == 4
    assert saved["extractor"] == "pixels" and saved["clustered_on"] == "fingerprint"

    again = AppState(dataclasses.replace(loaded, cache_dir=tmp_path / "cache"))
    data = again.workspace.attribution
    assert again.extractor == "pixels" and data.extractor == "pixels"
    assert data.clustered_on == "fingerprint" and data.space_differs, again.status
    assert "fingerprint" in data.space_description()
    np.testing.assert_array_equal(again.assignments, first.assignments)
    assert again.cluster_names == first.cluster_names


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_session_file_is_read_as_clustered_on_its_features(loaded, tmp_path, version):
    """Version 1 and 2 files have no `clustered_on`: their clusters were made on the features they name."""
    from synthscope_dashboard.state import AppState

    probe = AppState(dataclasses.replace(loaded, cache_dir=tmp_path / "cache"), autosave=False, restore=False)
    keys = probe.workspace.attribution.keys.tolist()
    old = {"version": version, "data_path": probe.workspace.path, "saved_at": "2026-12-01T10:00:00+00:00",
           "extractor": "pixels", "projection": "pca", "k": 3, "method": "kmeans", "k_source": "analyst",
           "color_by": "cluster", "cluster_names": {"0": "old"}, "thresholds": {}, "overrides": {},
           "assignments": {key: i % 3 for i, key in enumerate(keys)}, "revision": 2}
    if version == 2:
        old.update(point_filter={}, grid_sort={}, undo=[])
    probe.session_file.parent.mkdir(parents=True, exist_ok=True)
    probe.session_file.write_text(json.dumps(old))
    state = AppState(dataclasses.replace(loaded, cache_dir=tmp_path / "cache"))
    assert "restored" in state.status and "could not" not in state.status, state.status
    data = state.workspace.attribution
    assert state.extractor == "pixels" and data.clustered_on == "pixels" and not data.space_differs
    assert data.clustered_with == (3, "kmeans") and state.cluster_names == {"0": "old"}
    assert state.assignments.tolist() == [i % 3 for i in range(len(keys))]


def test_the_background_page_says_what_is_wrong_without_a_traceback(tmp_path, monkeypatch):
    """The notebook's page (build(background=True)) for a folder with nothing readable: the error page,
    as build() gives it, once the worker thread is done; an unexpected error is named, its traceback kept
    out of the page."""
    from synthscope_dashboard.app import build

    empty = tmp_path / "empty"
    empty.mkdir()
    page = build(empty, background=True)
    page.loading.join()
    assert len(page.children) == 1 and "Could not open" in page.children[0].value and str(empty) in page.children[0].value

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("synthscope_dashboard.app.load_workspace", broken)
    page = build(empty, background=True)
    page.loading.join()
    text = page.children[0].value
    assert "RuntimeError: disk on fire" in text and "Traceback" not in text and "terminal" in text


def test_the_progress_panel_shows_the_step_its_eta_and_each_finished_step_with_its_time():
    from synthscope_dashboard.views.progress import ProgressPanel

    clock, panel = FakeClock(), ProgressPanel("Loading")
    tracker = ProgressTracker(panel, min_interval_s=0.0, clock=clock)
    tracker.plan("a", "fingerprint features of subtask2/dev", 10)
    tracker.plan("b", "fingerprint features of subtask2/test", 10)
    with tracker.step("a") as tick:
        clock.now += 3.0
        tick(10, 10)
    with tracker.step("b") as tick:
        clock.now += 1.0
        tick(5, 10)
        assert "step 2 of 2 · fingerprint features of subtask2/test: 5 / 10 images · 75%" in panel.line.value
        assert "about 1 s left" in panel.line.value and panel.bar.value == pytest.approx(0.75)
        clock.now += 1.0
        tick(10, 10)
    assert "✓ fingerprint features of subtask2/dev (3 s)" in panel.done_steps.value
    assert "✓ fingerprint features of subtask2/test (2 s)" in panel.done_steps.value
    tracker.finish()
    assert "done in 5 s" in panel.line.value and panel.bar.value == 1.0
