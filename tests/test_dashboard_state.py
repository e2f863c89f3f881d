"""The dashboard without a browser: AppState actions, every view, autosave/restore, undo, export."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import ipywidgets as widgets
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.metrics import adjusted_rand_score, cohen_kappa_score, f1_score, normalized_mutual_info_score

# ------------------------------------------------------------------------------------------------
# A small bench in the 2024 layouts, like ../shared/bench/v1: subtask1/{dev,test}, subtask2/{dev,test}


def _real_slice(rng: np.random.Generator) -> np.ndarray:
    """A CT-like slice: a body ellipse with two darker lungs and a few bright blobs."""
    yy, xx = np.mgrid[0:256, 0:256]
    image = np.full((256, 256), 10.0)
    body = ((xx - 128) / rng.uniform(95, 115)) ** 2 + ((yy - 128) / rng.uniform(75, 95)) ** 2 < 1
    image[body] = 150
    for side in (-1, 1):
        lung = ((xx - 128 - side * rng.uniform(40, 50)) / rng.uniform(28, 36)) ** 2 + ((yy - 120) / rng.uniform(45, 55)) ** 2 < 1
        image[lung] = 40
    for _ in range(4):
        cy, cx, r = rng.uniform(60, 196), rng.uniform(60, 196), rng.uniform(4, 12)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(120, 230)
    return gaussian_filter(image, 1.5) + rng.normal(0, 3, (256, 256))


def _generate(kind: str, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Generators with distinct fingerprints: a checkerboard grid, white noise, blur, stripes."""
    yy, xx = np.mgrid[0:256, 0:256]
    if kind == "grid":
        out = base + 10 * (((xx // 2) + (yy // 2)) % 2 - 0.5)
    elif kind == "noise":
        out = base + rng.normal(0, 14, base.shape)
    elif kind == "blur":
        out = gaussian_filter(base, 2.5)
    elif kind == "stripes":
        out = base + 12 * np.sin(xx * np.pi / 3)
    else:
        raise ValueError(kind)
    return out


def _save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)


def make_bench(root: Path, seed: int = 0, n: int = 16) -> Path:
    """subtask1: model_1 leaks (its generated images are near-copies of its used images), model_2
    does not; subtask2: three dev generators, four in test (one unseen), with test ground truth."""
    rng = np.random.default_rng(seed)
    st1 = root / "subtask1"
    truth1 = []
    for number, leaks in ((1, True), (2, False)):
        for split in ("dev", "test"):
            used = [_real_slice(rng) for _ in range(n)]
            not_used = [_real_slice(rng) for _ in range(n)]
            sources = used if leaks else [_real_slice(rng) for _ in range(n)]
            folder = st1 / split / (f"model_{number}" if split == "dev" else f"folder_{number}")
            for i, base in enumerate(sources * 2):
                _save(folder / "generated" / f"generated_{number}_{i + 1:06d}.png", base + rng.normal(0, 2, base.shape))
            if split == "dev":
                for i, image in enumerate(used):
                    _save(folder / "real_used" / f"real_used_{number}_{i + 1:06d}.png", image)
                for i, image in enumerate(not_used):
                    _save(folder / "real_not_used" / f"real_not_used_{number}_{i + 1:06d}.png", image)
            else:
                order = rng.permutation(2 * n)
                for position, index in enumerate(order):
                    image, was_used = (used[index], 1) if index < n else (not_used[index - n], 0)
                    image_id = f"real_unknown_{number}_{position + 1:06d}"
                    _save(folder / "real_unknown" / f"{image_id}.png", image)
                    truth1.append((image_id, was_used))
    pd.DataFrame(truth1, columns=["image_id", "used"]).to_csv(st1 / "test_ground_truth.csv", index=False)
    st2 = root / "subtask2"
    for model, kind in enumerate(("grid", "noise", "blur"), 1):
        for i in range(n):
            _save(st2 / "dev" / f"model_{model}" / f"model_{model}_{i + 1:04d}.png", _generate(kind, _real_slice(rng), rng))
    truth2, items = [], [(m, kind) for m, kind in enumerate(("grid", "noise", "blur", "stripes"), 1) for _ in range(n)]
    for position, index in enumerate(rng.permutation(len(items))):
        model, kind = items[index]
        image_id = f"generated_unknown_{position + 1:05d}"
        _save(st2 / "test" / "generated_unknown" / f"{image_id}.png", _generate(kind, _real_slice(rng), rng))
        truth2.append((image_id, f"model_{model}"))
    pd.DataFrame(truth2, columns=["image_id", "model"]).to_csv(st2 / "test_ground_truth.csv", index=False)
    return root


@pytest.fixture(scope="module")
def bench(built_once) -> Path:
    """make_bench(), built once per test run and only read by the modules that take it (conftest.build_once)."""
    return built_once("bench", make_bench)


@pytest.fixture(scope="module")
def bench_cache(bench, built_once) -> Path:
    """The cache of one load_workspace(bench) per test run (embeddings, membership runs; no t-SNE), to be
    copied, never written to."""
    from synthscope_dashboard.workspace import load_workspace

    return built_once("bench-cache", lambda folder: load_workspace(bench, cache_dir=folder))


@pytest.fixture(scope="module")
def loaded(bench, bench_cache, tmp_path_factory):
    """The bench loaded with a cache dir of the module's own, into which the cache of one load per test
    run (bench_cache) is copied first: load_workspace reads it as it reads a user's."""
    from synthscope_dashboard.workspace import load_workspace

    cache = tmp_path_factory.mktemp("embeddings")
    shutil.copytree(bench_cache, cache, dirs_exist_ok=True)
    return load_workspace(bench, cache_dir=cache)


@pytest.fixture
def workspace(loaded, tmp_path):
    """The loaded workspace with a cache dir of its own, so each test starts without a session."""
    return dataclasses.replace(loaded, cache_dir=tmp_path / "cache")


@pytest.fixture
def app(workspace):
    from synthscope_dashboard.app import build

    dashboard = build(workspace=workspace)
    for view in dashboard.views:
        view.ensure_built()
    return dashboard


# ------------------------------------------------------------------------------------------------


def test_workspace_reads_a_bench_root_with_both_subtasks(loaded):
    assert {(s.task, s.split) for s in loaded.datasets} == {
        ("membership", "dev"), ("membership", "test"), ("attribution", "dev"), ("attribution", "test")}
    attribution = loaded.attribution
    assert attribution.n == 3 * 16 + 4 * 16
    assert attribution.k == 3            # the dev generators: test ground truth never sets a parameter
    assert set(attribution.frame.loc[attribution.frame.split == "dev", "known_label"]) == {"model_1", "model_2", "model_3"}
    assert (attribution.frame.loc[attribution.frame.split == "test", "known_label"] == "").all()
    membership = loaded.membership
    assert len(membership.frame) == 2 * 2 * 32
    assert set(membership.frame.loc[membership.frame.split == "test", "label"]) == {-1}   # test labels never read
    assert set(membership.frame.loc[membership.frame.split == "test", "truth"]) == {0, 1}
    leaky, clean = membership.pairs["model_1 -> folder_1"], membership.pairs["model_2 -> folder_2"]
    assert leaky.verdict.significant                               # positive control: near-copies are found
    # the column is chosen on dev labels (the default stays unless dev evidence overturns it), and every
    # verdict is set against the generator-free baseline
    assert "dev AUC" in leaky.choice and "on dev group model_1" in leaky.choice
    assert ("the default column, kept" in leaky.choice) != ("overturned the default on dev" in leaky.choice)
    assert "same run as `synthscope membership`" in membership.score_name
    assert "generator-free baseline" in leaky.verdict.message.lower()
    assert not clean.verdict.significant                          # null: independent draws


def test_every_view_renders_with_scores_cis_and_baselines(app):
    titles = [view.title for view in app.views]
    assert titles == ["Overview", "Generator fingerprints", "Training-data fingerprints", "Export"]
    generators = app.view("Generator fingerprints")
    assert len(generators.scatter.data) == 1 and generators.scatter.data[0].type == "scattergl"
    assert len(generators.scatter.data[0].x) == app.state.workspace.attribution.n
    assert "ARI" in generators.metrics.value and "single cluster" in generators.metrics.value
    training = app.view("Training-data fingerprints")
    assert "all used" in training.metrics.value and "ROC AUC" in training.metrics.value
    assert "Leakage" in training.verdict.value
    assert "subtask1" in app.view("Overview").datasets.value


def _metric(html: str, name: str, occurrence: int = 0) -> float:
    marker = f"data-metric='{name}'>"
    start = [i for i in range(len(html)) if html.startswith(marker, i)][occurrence] + len(marker)
    return float(html[start:html.index("<", start)])


def test_selection_reassigns_points_and_changes_ari(app):
    state, view = app.state, app.view("Generator fingerprints")
    before = _metric(view.metrics.value, "ari")
    frame = state.workspace.attribution.frame
    dev_model_1 = np.flatnonzero((frame.known_label == "model_1").to_numpy())
    view._on_plot_selection(view.scatter.data[0], type("Points", (), {"point_inds": dev_model_1[:10].tolist()})(), None)
    assert list(state.selection) == sorted(dev_model_1[:10])
    assert len(view.gallery.children) == 10
    view.target.value = -1                    # "+ new cluster"
    view.move.click()
    new_cluster = int(state.assignments[dev_model_1[0]])
    assert (state.assignments[dev_model_1[:10]] == new_cluster).all()
    assert new_cluster not in np.delete(state.assignments, dev_model_1[:10])
    assert _metric(view.metrics.value, "ari") != before
    assert list(view.scatter.data[0].marker.color).count(view.scatter.data[0].marker.color[dev_model_1[0]]) >= 10


def _bridge_message(view, event, event_id, rows, page="page-1"):
    view.bridge._on_message(view.bridge, {"event": event, "id": event_id, "page": page,
                                          "points": [None if rows is None else list(rows)]}, [])


def test_the_browser_selection_wins_and_a_move_on_another_one_is_refused(app):
    state, view = app.state, app.view("Generator fingerprints")
    before = state.assignments.copy()
    _bridge_message(view, "ready", 1, None)
    assert view.bridge.live and len(state.selection) == 0
    _bridge_message(view, "selected", 2, [5, 3, 4])
    assert list(state.selection) == [3, 4, 5]
    _bridge_message(view, "selected", 2, [9])          # a repeated or late id changes nothing
    assert list(state.selection) == [3, 4, 5]
    view._on_plot_selection(view.scatter.data[0], type("Points", (), {"point_inds": [1]})(), None)
    assert list(state.selection) == [3, 4, 5], "plotly's lossy callback is ignored once the bridge is live"

    # the page shows another selection than the kernel's (an event was lost): refuse, adopt the page's
    _bridge_message(view, "shown", 3, [3, 4, 5, 6])
    view.target.value = -1
    view.move.click()
    assert np.array_equal(state.assignments, before)
    assert state.status.startswith("not moved") and "4 selected" in state.status
    assert list(state.selection) == [3, 4, 5, 6]
    view.move.click()                                  # no fresh report from the page: refused too
    assert np.array_equal(state.assignments, before) and state.status.startswith("not moved")
    _bridge_message(view, "shown", 4, [3, 4, 5, 6])
    view.move.click()
    moved = np.flatnonzero(state.assignments != before)
    assert list(moved) == [3, 4, 5, 6] and len(set(state.assignments[moved])) == 1
    assert state.status.startswith("moved 4 images")

    _bridge_message(view, "deselected", 5, None)       # double-click in the plot
    assert len(state.selection) == 0
    _bridge_message(view, "selected", 6, [1, 2])
    _bridge_message(view, "escape", 7, None)
    assert len(state.selection) == 0 and state.status == "selection cleared"


def test_per_trace_selection_callbacks_are_combined(app):
    state, view = app.state, app.view("Generator fingerprints")
    view._trace_rows = lambda: [np.array([0, 2, 4]), np.array([1, 3, 5])]   # as if the rows were split in two traces
    trace = view.scatter.data[0]
    view.scatter.add_trace(go_scatter())
    first, second = view.scatter.data
    view._on_plot_selection(first, type("Points", (), {"point_inds": [0, 2]})(), None)
    assert len(state.selection) == 0, "waits for the last trace of the event"
    view._on_plot_selection(second, type("Points", (), {"point_inds": [1]})(), None)
    assert list(state.selection) == [0, 3, 4]
    assert trace is first


def go_scatter():
    import plotly.graph_objects as go

    return go.Scattergl(x=[0, 1, 2], y=[0, 1, 2])


def test_gallery_captions_follow_moves_merges_and_renames(app):
    state, view = app.state, app.view("Generator fingerprints")
    rows = np.flatnonzero(state.assignments == state.assignments[0])[:3]
    state.select(rows)
    captions = lambda: [card.children[1].value for card in view.gallery.children]   # noqa: E731
    assert all(state.cluster_name(state.assignments[0]) in text for text in captions())
    target = state.assign(rows, None)
    assert all(f"cluster {target}<" in text for text in captions()), captions()
    state.rename(target, "grid artefacts")
    assert all("grid artefacts" in text for text in captions())
    other = next(c for c in state.clusters() if c != target)
    state.merge(target, other)
    assert all(state.cluster_name(other) in text and "grid artefacts" not in text for text in captions())
    state.undo()
    assert all("grid artefacts" in text for text in captions())


def test_rename_merge_split(app):
    state = app.state
    clusters = state.clusters()
    state.rename(clusters[0], "checkerboard GAN")
    assert state.cluster_name(clusters[0]) == "checkerboard GAN"
    assert "checkerboard GAN" in app.view("Generator fingerprints").cluster_table.value
    size_a, size_b = (state.assignments == clusters[0]).sum(), (state.assignments == clusters[1]).sum()
    state.merge(clusters[1], clusters[0])
    assert (state.assignments == clusters[0]).sum() == size_a + size_b
    assert clusters[1] not in state.clusters()
    new = state.split(clusters[0])
    assert new in state.clusters() and 0 < (state.assignments == new).sum() < size_a + size_b


def test_threshold_changes_membership_metrics_and_resets_to_the_dev_fit(app):
    state, view = app.state, app.view("Training-data fingerprints")
    membership = state.workspace.membership
    pair = state.membership_group
    assert pair == next(iter(membership.pairs)), "the page opens on the first model pair"
    fitted = state.thresholds[pair]
    rows = membership.pair_rows[pair]
    scores = membership.frame.score.to_numpy()[rows]
    low, high = (float(np.quantile(scores, q)) for q in (0.2, 0.8))
    state.set_threshold(pair, low)
    f1_low = _metric(view.metrics.value, "f1")
    view.slider.value = high
    assert state.thresholds[pair] == pytest.approx(high)
    assert _metric(view.metrics.value, "f1") != f1_low
    assert view.histogram.layout.shapes[0].x0 == pytest.approx(high)
    frame = membership.frame
    predictions = state.membership_predictions()
    dev = rows[(frame.label.to_numpy()[rows] >= 0)]
    assert np.array_equal(predictions[rows], (scores >= high).astype(int)), "score >= threshold is used"
    assert _metric(view.metrics.value, "f1") == pytest.approx(f1_score(frame.label[dev], predictions[dev]), abs=1e-3)
    view.fit_button.click()
    assert state.thresholds[pair] == fitted and "fitted values" in state.status


def test_override_changes_the_call_of_one_image(app):
    state, view = app.state, app.view("Training-data fingerprints")
    frame = state.workspace.membership.frame
    row = int(np.flatnonzero((frame.split == "test").to_numpy())[0])
    state.focused_real = row
    assert view.pair_box.children, "the nearest-pair gallery shows"
    assert "SSIM" in view.pair_box.children[1].children[2].children[1].value
    wanted = 1 - int(state.membership_predictions()[row])
    (view.mark_used if wanted else view.mark_not_used).click()
    assert state.membership_predictions()[row] == wanted
    assert state.overrides == {frame.key[row]: wanted}


def test_autosave_restores_curation_in_a_new_state(workspace):
    from synthscope_dashboard.state import AppState

    state = AppState(workspace)
    state.assign(np.arange(5), None)
    state.rename(0, "grid")
    pair = state.membership_group
    state.set_threshold(pair, 0.7)
    key = workspace.membership.frame.key[3]
    state.set_override(key, 1)
    state.flush()                            # autosaves are written on a background thread
    saved = json.loads(state.session_file.read_text())
    assert saved["thresholds"][pair] == 0.7 and saved["overrides"] == {key: 1}
    assert not list(state.session_file.parent.glob("*.tmp")), "atomic write leaves no temporary file"
    restored = AppState(workspace)          # a reload or a restarted kernel
    assert np.array_equal(restored.assignments, state.assignments)
    assert restored.cluster_names == {"0": "grid"} and restored.thresholds[pair] == 0.7
    assert restored.overrides == {key: 1} and "restored" in restored.status


def test_a_preheated_state_picks_up_newer_curation_when_shown(workspace):
    """Voila runs the notebook before the page is opened; the page must show the latest save."""
    from synthscope_dashboard.state import AppState

    preheated = AppState(workspace)
    assert not preheated.sync_with_session()          # nothing newer yet
    other = AppState(workspace)                        # e.g. the page before a reload
    other.assign(np.arange(3), None)
    pair = other.membership_group
    other.set_threshold(pair, 0.9)
    assert preheated.sync_with_session()
    assert np.array_equal(preheated.assignments, other.assignments) and preheated.thresholds[pair] == 0.9
    assert not preheated.sync_with_session()          # already up to date


def test_colour_by_known_labels_and_back(app):
    view = app.view("Generator fingerprints")
    app.state.color_by = "known"
    codes = np.asarray(view.scatter.data[0].marker.color)
    frame = app.state.workspace.attribution.frame
    assert len(set(codes[(frame.split == "dev").to_numpy()])) == 3
    app.state.color_by = "cluster"
    assert np.array_equal(np.asarray(view.scatter.data[0].marker.color), app.state.assignments)


def test_known_labels_have_their_own_colours_and_a_legend(app):
    import re

    from synthscope_dashboard.imaging import CLUSTER_COLORS, UNLABELLED_COLOR

    view, state = app.view("Generator fingerprints"), app.state
    assert "clusters table" in view.legend.value
    state.evaluation_mode = True      # test points carry their ground truth only in evaluation mode
    state.color_by = "known"
    legend = dict(re.findall(r"data-label='([^']*)' data-color='([^']*)'", view.legend.value))
    frame = state.workspace.attribution.frame
    labels = frame["truth"].where(frame["truth"] != "", frame["known_label"])
    assert set(legend) - {"unlabelled"} == set(labels[labels != ""])
    assert not set(legend.values()) & set(CLUSTER_COLORS), "a known label never wears a cluster's colour"
    # the scatter draws each label in its legend colour
    codes = np.asarray(view.scatter.data[0].marker.color)
    scale = view.scatter.data[0].marker.colorscale
    n = len(scale) // 2
    colour_of_code = {i: scale[2 * i][1] for i in range(n)}
    for label, colour in legend.items():
        rows = (labels == label).to_numpy() if label != "unlabelled" else (labels == "").to_numpy()
        assert {colour_of_code[c] for c in codes[rows]} == {colour}
    if "unlabelled" in legend:
        assert legend["unlabelled"] == UNLABELLED_COLOR
    state.color_by = "cluster"
    assert "data-label" not in view.legend.value


def test_corrupt_session_is_reported_and_kept(workspace):
    from synthscope_dashboard.state import AppState, session_path

    path = session_path(workspace.cache_dir, workspace.path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    state = AppState(workspace)
    assert "could not restore" in state.status and path.read_text() == "{not json"
    assert state.assignments is not None


def test_undo_reverts_the_last_actions(workspace):
    from synthscope_dashboard.state import AppState

    state = AppState(workspace)
    original = state.assignments.copy()
    pair, fitted = state.membership_group, dict(state.thresholds)
    state.assign(np.arange(4), None)
    state.rename(1, "blur")
    for value in (0.1, 0.2, 0.3):      # one slider drag = one undo step
        state.set_threshold(pair, value)
    state.undo()
    assert state.thresholds == fitted and state.cluster_names == {"1": "blur"}
    state.undo()
    assert state.cluster_names == {}
    state.undo()
    assert np.array_equal(state.assignments, original) and not state.can_undo
    assert AppState(workspace).thresholds == fitted, "the undone state is what was saved"


def test_export_writes_valid_run_files_with_the_curation(app, tmp_path):
    from synthscope_dashboard.runs import validate_run_file

    state, view = app.state, app.view("Export")
    frame = state.workspace.membership.frame
    row = int(np.flatnonzero((frame.split == "test").to_numpy())[0])
    state.set_override(frame.key[row], 1)
    state.set_override(frame.key[row + 1], 0)
    view.folder.value = "runs"                 # a sub-folder of the export root
    runs = view.export_root / "runs"
    view.membership_button.click()
    assert "valid" in view.result.value
    run = pd.read_csv(runs / "subtask1_run.csv", header=None, names=["image_id", "used"]).set_index("image_id")["used"]
    test_ids = frame.image_id[frame.split == "test"].tolist()
    assert sorted(run.index) == sorted(test_ids)
    assert run[frame.image_id[row]] == 1 and run[frame.image_id[row + 1]] == 0
    assert validate_run_file(runs / "subtask1_run.csv", "membership", test_ids).ok

    attribution = state.workspace.attribution.frame
    state.assign(np.flatnonzero((attribution.split == "test").to_numpy())[:3], None)
    view.attribution_button.click()
    assert "valid" in view.result.value
    run2 = pd.read_csv(runs / "subtask2_run.csv", header=None, names=["image_id", "cluster"])
    assert sorted(run2.image_id) == sorted(attribution.image_id[attribution.split == "test"])
    assert sorted(run2.cluster.unique()) == list(range(run2.cluster.nunique()))
    first = attribution.image_id[np.flatnonzero((attribution.split == "test").to_numpy())[:3]]
    assert run2.set_index("image_id").cluster[first].nunique() == 1


def test_presentation_mode_hides_every_control(app):
    app.state.presentation = True
    controls = [w for view in app.views for w in view.controls]
    assert controls and all(w.layout.display == "none" for w in controls)
    app.state.presentation = False
    assert all(w.layout.display is None for w in controls)


def test_bad_paths_give_a_clear_page(tmp_path, monkeypatch):
    from synthscope_dashboard import build

    monkeypatch.delenv("SYNTHSCOPE_DASHBOARD_PATH", raising=False)
    assert "No data path" in build().value
    empty = tmp_path / "empty"
    empty.mkdir()
    page = build(empty).value
    assert "Could not open" in page and str(empty) in page
    assert "Could not open" in build(tmp_path / "missing").value


def test_cli_finds_the_notebook_and_rejects_a_missing_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from synthscope.cli import app
    from synthscope.commands.dashboard import find_notebook, voila_command

    notebook = find_notebook()
    assert notebook.name == "app.ipynb" and "build(background=True)" in notebook.read_text()
    argv, env = voila_command(tmp_path, port=8899)
    assert env["SYNTHSCOPE_DASHBOARD_PATH"] == str(tmp_path.resolve())
    assert "--port=8899" in argv and "--Voila.ip=127.0.0.1" in argv and str(notebook) in argv
    result = CliRunner().invoke(app, ["dashboard", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "not found" in result.output
    monkeypatch.delenv("SYNTHSCOPE_DASHBOARD_K", raising=False)
    assert "SYNTHSCOPE_DASHBOARD_K" not in voila_command(tmp_path)[1], "no --k: the page asks the dev count"
    assert voila_command(tmp_path, k=4)[1]["SYNTHSCOPE_DASHBOARD_K"] == "4"


def test_the_dashboard_opens_on_the_cached_umap_layout(workspace):
    from synthscope_dashboard.app import build

    attribution = workspace.attribution
    layout = np.random.default_rng(0).normal(size=(attribution.n, 2)).astype(np.float32)

    def with_layouts(*methods):
        projections = {"pca": attribution.projections["pca"], **{m: layout for m in methods}}
        return dataclasses.replace(workspace, attribution=dataclasses.replace(attribution, projections=projections))

    assert build(workspace=with_layouts()).state.projection == "pca"           # nothing cached: live PCA
    assert build(workspace=with_layouts("tsne")).state.projection == "tsne"
    with_umap = with_layouts("tsne", "umap")
    assert build(workspace=with_umap).state.projection == "umap"              # UMAP first
    assert build(workspace=with_umap, projection="pca").state.projection == "pca"


def test_the_task_k_from_the_command_line_reaches_the_clustering(workspace, monkeypatch):
    """`synthscope dashboard --k 4` sets the environment the Voila kernel reads; the default k is the dev
    generator count (3 here), never the number of classes in the test ground truth."""
    from synthscope_dashboard.app import build

    assert build(workspace=workspace).state.k == 3
    monkeypatch.setenv("SYNTHSCOPE_DASHBOARD_K", "4")
    state = build(workspace=workspace).state
    assert state.k == 4 and len(np.unique(state.assignments)) == 4


def test_figures_are_saved_as_html_and_png(app, tmp_path):
    view = app.view("Export")
    view.figures_button.click()
    figures = view.export_root / "figures"
    saved = sorted(p.name for p in figures.iterdir())
    assert saved == ["column-histogram.html", "column-histogram.png", "scatter.html", "scatter.png", "scores.html",
                     "scores.png"], view.result.value
    assert (figures / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Plotly" in (figures / "scatter.html").read_text()[:5_000_000]


def test_switching_features_keeps_the_curation_until_reclustering(app):
    state, view = app.state, app.view("Generator fingerprints")
    state.assign(np.arange(3), None)
    curated = state.assignments.copy()
    old_x = np.asarray(view.scatter.data[0].x).copy()
    seen = []   # the progress bar while the uncached lbp features are computed
    view.embedding_progress.observe(lambda change: seen.append((change["new"], view.embedding_progress.max,
                                                                view.embedding_progress.layout.display)), names="value")
    view.extractor.value = "lbp"
    assert seen and seen[-1][0] == seen[-1][1] and {display for *_, display in seen} == {""}
    assert sum(total for done, total, _ in seen if done == total) == state.workspace.attribution.n
    assert view.embedding_progress.layout.display == "none"       # hidden again afterwards
    assert state.workspace.attribution.extractor == "lbp" and state.extractor == "lbp"
    assert state.workspace.attribution.features.shape[0] == len(curated)
    assert not np.allclose(np.asarray(view.scatter.data[0].x), old_x)
    assert np.array_equal(state.assignments, curated)
    view.recluster.click()
    assert len(state.clusters()) == state.k


def test_cluster_fingerprints_show_one_card_per_cluster(app):
    view = app.view("Generator fingerprints")
    view.fingerprint_button.click()
    cards = view.fingerprint_box.children[0].children
    assert len(cards) == len(app.state.clusters())
    residual_png = cards[0].children[1].children[0].children[0].value
    assert residual_png[:4] == b"\x89PNG" and "distinctive" in cards[0].children[2].value


def test_single_data_sets_of_either_subtask(bench, tmp_path):
    from synthscope_dashboard.app import build

    only_st2 = build(bench / "subtask2" / "dev", cache_dir=tmp_path)
    assert [v.title for v in only_st2.views] == ["Overview", "Generator fingerprints", "Export"]
    only_st2.view("Generator fingerprints").ensure_built()
    assert "ARI" in only_st2.view("Generator fingerprints").metrics.value

    only_st1_test = build(bench / "subtask1" / "test", cache_dir=tmp_path)
    assert [v.title for v in only_st1_test.views] == ["Overview", "Training-data fingerprints", "Export"]
    training = only_st1_test.view("Training-data fingerprints")
    training.ensure_built()
    # no dev labels: the label-free data-copying test gates, the threshold is label-free (never test labels)
    assert "no labelled dev set" in training.verdict.value and "label-free" in training.verdict.value
    pair = next(iter(only_st1_test.state.workspace.membership.pairs.values()))
    assert pair.threshold_method == "mixture"
    only_st1_test.state.set_threshold(pair.name, pair.default_threshold + 1.0)
    training.fit_button.click()
    assert only_st1_test.state.thresholds[pair.name] == pair.default_threshold
    export = only_st1_test.view("Export")
    export.ensure_built()
    export.folder.value = "runs"
    export.membership_button.click()
    assert "valid" in export.result.value


def test_the_dashboard_takes_the_clis_loading_options(tmp_path, monkeypatch):
    """`synthscope dashboard --size-policy/--layout/--manifest/--device` reach the kernel's loading."""
    from synthscope.commands.dashboard import ENV_LOAD, voila_command
    from synthscope_dashboard.app import build
    from synthscope_dashboard.workspace import load_workspace

    root = make_bench(tmp_path / "bench", n=3)
    odd = root / "subtask2" / "test" / "generated_unknown" / "generated_unknown_00001.png"
    Image.open(odd).resize((300, 280)).save(odd)              # one image of another size
    refused = load_workspace(root / "subtask2", cache_dir=tmp_path / "c")   # the default policy refuses it
    assert refused.attribution.n == 3 * 3 and any("resize" in m for m in refused.messages), refused.messages
    loaded = load_workspace(root / "subtask2", cache_dir=tmp_path / "c", size_policy="resize")
    assert loaded.attribution.n == 3 * 3 + 4 * 3
    _, env = voila_command(root, load_options={"size_policy": "resize", "layout": None, "device": "auto"})
    assert json.loads(env[ENV_LOAD]) == {"size_policy": "resize"}, "defaults are not passed on"
    monkeypatch.setenv(ENV_LOAD, json.dumps({"size_policy": "resize"}))
    assert build(root / "subtask2", cache_dir=tmp_path / "c").state.workspace.attribution.n == 21
    monkeypatch.setenv(ENV_LOAD, json.dumps({"colour": "red"}))
    assert "keys among size_policy, layout, manifest_csv, device" in build(root / "subtask2", cache_dir=tmp_path).value


# ------------------------------------------------------------------------------------------------
# Issue 15: evaluation mode, the score grid, presentation mode, the guided start


def _training_tables(html: str) -> list[str]:
    return re.findall(r"<caption>([^<]*)</caption>", html)


def test_evaluation_mode_hides_test_label_scores_until_switched_on(app, workspace):
    from synthscope_dashboard.state import AppState
    from synthscope_dashboard.views.common import evaluation_only

    state, view = app.state, app.view("Training-data fingerprints")
    assert state.evaluation_mode is False, "a page opens with evaluation mode off"
    captions = _training_tables(view.metrics.value)
    assert len(captions) == 1 and captions[0].startswith("dev (labelled"), captions
    assert "ground-truth file, evaluation only" not in view.metrics.value
    assert "ss-eval-hidden" in view.metrics.value and "Evaluation mode" in view.metrics.value
    assert app.evaluation_banner.value == ""
    assert "secret" not in evaluation_only(state, "secret") and "hidden" in evaluation_only(state, "secret")

    app.evaluation.value = True                       # the header toggle
    assert state.evaluation_mode is True
    assert "evaluation mode ON" in state.status and "do not tune" in state.status
    assert "do not tune with it on" in app.evaluation_banner.value
    captions = _training_tables(view.metrics.value)
    assert [c.split(" · ")[0] for c in captions] == ["dev (labelled; the thresholds were fit here)",
                                                     "test (ground-truth file, evaluation only)"]
    assert "ss-eval-hidden" not in view.metrics.value
    assert evaluation_only(state, "secret") == "secret"
    # the test table is the test rows' truth against the page's calls
    frame, pair = state.workspace.membership.frame, state.membership_group
    rows = state.workspace.membership.pair_rows[pair]
    test = rows[(frame.split.to_numpy()[rows] == "test") & (frame.truth.to_numpy()[rows] >= 0)]
    predictions = state.membership_predictions()
    assert _metric(view.metrics.value, "f1", 1) == pytest.approx(f1_score(frame.truth[test], predictions[test]), abs=1e-3)
    assert view.metrics.value.count("ss-scan-ci") == 2   # the dev and the test scan-group bootstrap lines

    # it is not saved: a reload (a new state on the same session file) opens with it off
    state.set_threshold(pair, state.thresholds[pair] + 0.01)
    state.flush()
    assert "evaluation_mode" not in json.loads(state.session_file.read_text())
    again = AppState(workspace)
    assert again.thresholds[pair] == state.thresholds[pair] and again.evaluation_mode is False

    app.evaluation.value = False
    assert "evaluation mode off" in state.status and app.evaluation_banner.value == ""
    assert len(_training_tables(view.metrics.value)) == 1
    state.presentation = True
    assert app.evaluation.layout.visibility == "hidden" and "ss-presenting" in app._dom_classes


def test_score_grid_pages_sorts_searches_and_filters(app):
    from synthscope_dashboard.imaging import png_bytes
    from synthscope_dashboard.views.training import ALL_GROUPS, PAGE_SIZE

    state, view = app.state, app.view("Training-data fingerprints")
    membership = state.workspace.membership
    frame = membership.frame
    rows = membership.pair_rows[state.membership_group]
    assert len(rows) == 64 and PAGE_SIZE == 24
    shown = lambda: [c for c in view.cells if c.layout.display != "none"]   # noqa: E731
    assert len(shown()) == 24 and "page 1 of 3" in view.page_label.value and "of 64" in view.page_label.value
    assert view.prev_page.disabled and not view.next_page.disabled
    scores = frame.score.to_numpy()[view.grid_rows]
    assert sorted(view.grid_rows.tolist()) == sorted(rows.tolist()) and np.all(np.diff(scores) <= 0)
    first = int(view.page_rows[0])
    assert view.cells[0].children[0].value == png_bytes(membership.load_real(np.array([first]))[0], 96)
    assert frame.image_id[first] in view.cells[0].children[1].value
    misses = view.thumbnail.cache_info().misses
    view.next_page.click()
    view.next_page.click()
    assert "page 3 of 3" in view.page_label.value and len(shown()) == 64 - 48 and view.next_page.disabled
    view.prev_page.click()
    view.prev_page.click()
    assert view.thumbnail.cache_info().misses == misses + 40, "each thumbnail is decoded once"

    view.descending.value = False
    assert np.all(np.diff(frame.score.to_numpy()[view.grid_rows]) >= 0) and "page 1 of 3" in view.page_label.value
    view.sort.value = "nearest_distance"
    distances = frame.nearest_distance.to_numpy()[view.grid_rows]
    assert np.all(np.diff(distances) >= 0)
    closest = int(view.grid_rows[0])
    assert membership.nearest(closest, 1)[0]["distance"] == pytest.approx(distances[0])
    assert [label for label, _ in view.sort.options] == ["membership score", "rank in its folder",
                                                         "percentile in its folder",
                                                         "distance to the nearest generated image"]
    view.sort.value = "rank"
    view.descending.value = True
    assert np.all(np.diff(frame["rank"].to_numpy()[view.grid_rows]) <= 0)

    view.search.value = "UNKNOWN_1_00001"            # substring, any case
    ids = frame.image_id.to_numpy()[view.grid_rows]
    assert len(ids) == 10 and all("real_unknown_1_00001" in i for i in ids)   # 000010 .. 000019
    view.search.value = ""
    view.split_filter.value = "dev"
    assert set(frame.split.to_numpy()[view.grid_rows]) == {"dev"} and len(view.grid_rows) == 32
    view.split_filter.value = ""
    predictions = state.membership_predictions()
    view.call_filter.value = "used"
    used = view.grid_rows
    assert len(used) and (predictions[used] == 1).all()
    view.call_filter.value = "not used"
    assert (predictions[view.grid_rows] == 0).all() and len(view.grid_rows) + len(used) == 64
    view.call_filter.value = ""

    # click a thumbnail: it is focused, its nearest generated images show, the override buttons act on it
    view.cells[3].children[2].click()
    row = int(view.page_rows[3])
    assert state.focused_real == row and frame.image_id[row] in view.pair_box.children[0].value
    assert "ss-thumb-focused" in view.cells[3]._dom_classes
    wanted = 1 - int(predictions[row])
    (view.mark_used if wanted else view.mark_not_used).click()
    assert state.overrides == {frame.key[row]: wanted}
    view.hand_filter.value = "hand"
    assert view.grid_rows.tolist() == [row] and "*" in view.cells[0].children[1].value
    view.hand_filter.value = "rule"
    assert len(view.grid_rows) == 63 and row not in view.grid_rows
    view.hand_filter.value = ""
    view.clear_override.click()
    assert state.overrides == {}

    view.group.value = ALL_GROUPS                     # every model pair: no 200-row cap, every image is reachable
    assert len(view.grid_rows) == membership.n == 128 and "page 1 of 6" in view.page_label.value


def test_presentation_mode_hides_every_control_and_shows_each_threshold(app):
    from synthscope_dashboard.views.training import ALL_GROUPS

    state = app.state
    training, overview = app.view("Training-data fingerprints"), app.view("Overview")
    pair = state.membership_group
    fitted = state.thresholds[pair]
    assert f"threshold {fitted:.4g} (fit on dev)" in training.threshold_text.value
    state.presentation = True
    interactive = (widgets.Button, widgets.Dropdown, widgets.Text, widgets.FloatSlider, widgets.ToggleButton)

    def hidden(widget, ancestors):
        return any(w.layout.display == "none" for w in [widget, *ancestors])

    def walk(widget, ancestors=()):
        yield widget, ancestors
        for child in getattr(widget, "children", ()) or ():
            yield from walk(child, (*ancestors, widget))

    for view in (training, overview):
        found = [(w, a) for w, a in walk(view.root) if isinstance(w, interactive)]
        assert view is overview or len(found) > 10
        assert all(hidden(w, a) for w, a in found), [w.description for w, a in found if not hidden(w, a)]
    assert not hidden(training.threshold_text, ()) and not hidden(training.grid, ())
    state.set_threshold(pair, fitted + 0.5)
    assert f"threshold {fitted + 0.5:.4g} (moved by hand; fit on dev: {fitted:.4g})" in training.threshold_text.value
    training.group.value = ALL_GROUPS
    assert training.threshold_text.value.count("ss-threshold-value") == 2
    assert "model_2 -&gt; folder_2</b>: threshold" in training.threshold_text.value


def test_overview_guides_the_first_steps_with_a_glossary_and_tooltips(app):
    from synthscope_dashboard.imaging import difference_image, difference_scale
    from synthscope_dashboard.views.common import GLOSSARY, with_terms

    overview = app.view("Overview")
    guide = overview.guide.value
    assert "set k from the task → cluster → curate → export" in guide
    assert ("read the gate (the dev leakage test) → check the CAUTION and the baseline → move the threshold only on "
            "dev → export run and scores") in guide
    assert "<details" in overview.glossary.value
    for name in ("pixels-norm:distance", "Bonferroni ×N", "scan-group bootstrap", "generator-free baseline",
                 "(fx, fy) cycles/px", "images:patches", "images:registered"):
        assert f"<th class='ss-term-name'>{name}</th>" in overview.glossary.value.replace("&#x27;", "'"), name
    marked = with_terms("score pixels-norm:distance, Bonferroni x4, <b title='generator-free baseline'>x</b>")
    assert marked.count("<abbr class='ss-term'") == 2 and "title='generator-free baseline'" in marked
    training = app.view("Training-data fingerprints")
    assert "<abbr class='ss-term'" in training.verdict.value and "scan-group bootstrap</abbr>" in training.metrics.value
    assert "number of score columns" in GLOSSARY["Bonferroni ×N"]

    # the difference cards carry a colour bar with their scale: blue -s .. white .. red +s grey levels
    state = app.state
    row = int(np.flatnonzero((state.workspace.membership.frame.split == "dev").to_numpy())[0])
    state.focused_real = row
    real = state.workspace.membership.load_real(np.array([row]))[0]
    nearest = state.workspace.membership.nearest(row, 1)[0]["image"]
    scale = difference_scale(real, nearest)
    caption = training.pair_box.children[1].children[2].children[1].value
    assert "ss-colorbar" in caption and f"−{scale}</span>" in caption and f"+{scale}</span>" in caption
    a, b = np.array([[100, 50, 80]], np.uint8), np.array([[60, 50, 120]], np.uint8)
    assert difference_scale(a, b) == 40            # what the bar's ends read
    assert difference_image(a, b)[0].tolist() == [[255, 0, 0], [255, 255, 255], [0, 0, 255]]


def test_the_generator_view_shows_test_truth_only_in_evaluation_mode(app):
    state, view = app.state, app.view("Generator fingerprints")
    frame = state.workspace.attribution.frame
    test = (frame.split == "test").to_numpy()
    assert "test images (ground-truth file" not in view.metrics.value and "ss-eval-hidden" in view.metrics.value
    state.color_by = "known"
    codes, colors = view._color_codes()
    assert set(codes[test].tolist()) == {len(colors) - 1}, "test points are unlabelled while tuning"
    state.evaluation_mode = True
    assert "test images (ground-truth file, evaluation only)" in view.metrics.value
    codes, colors = view._color_codes()
    assert len(set(codes[test].tolist())) == 4, "in evaluation mode the test truth colours the test points"
    state.evaluation_mode = False
    assert "test images (ground-truth file" not in view.metrics.value


# ------------------------------------------------------------------------------------------------
# Issue 22: nothing forgotten on reload; the score line of the model shown


def _html_widgets(widget):
    if isinstance(widget, widgets.HTML):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from _html_widgets(child)


def test_the_score_line_names_the_column_of_the_model_shown(app):
    """Issue 22 defect 10: with model_2 chosen, the line under the slider named model_1's column choice."""
    from synthscope_dashboard.markup import esc

    state, view = app.state, app.view("Training-data fingerprints")
    pairs = state.workspace.membership.pairs
    assert len({pair.choice for pair in pairs.values()}) == len(pairs) > 1, "the bench's pairs chose differently"

    def score_line() -> str:
        lines = [w.value for w in _html_widgets(view.root) if "score = " in w.value]
        assert len(lines) == 1, lines
        return lines[0]

    for name, pair in pairs.items():
        view.group.value = name
        line = score_line()
        assert f"score = {esc(pair.primary)}" in line and esc(pair.choice) in line, (name, line)
        others = [p for p in pairs.values() if p.name != name]
        assert not any(esc(other.choice) in line for other in others), (name, line)
    view.group.value = ""   # every model: each one's column, by name
    line = score_line()
    assert all(esc(pair.name) in line and esc(pair.choice) in line for pair in pairs.values()), line


def _old_session(state) -> dict:
    """A session file as the version-1 writer (before issue 22) wrote it: no filter, sort nor undo."""
    keys = state.workspace.attribution.keys.tolist()
    return {"version": 1, "data_path": state.workspace.path, "saved_at": "2026-11-30T10:00:00+00:00",
            "extractor": state.workspace.attribution.extractor, "projection": "pca", "k": 4, "method": "auto",
            "k_source": "analyst", "color_by": "split", "cluster_names": {"0": "grid"},
            "thresholds": dict(state.thresholds), "overrides": {},
            "assignments": {key: (i % 4) for i, key in enumerate(keys)}, "writer": "old-page", "sequence": 3,
            "revision": 7}


def test_a_session_file_of_the_old_version_is_still_read(workspace):
    from synthscope_dashboard.state import AppState

    probe = AppState(workspace, autosave=False, restore=False)
    old = _old_session(probe)
    probe.session_file.parent.mkdir(parents=True, exist_ok=True)
    probe.session_file.write_text(json.dumps(old))
    state = AppState(workspace)
    assert "restored" in state.status and "could not restore" not in state.status, state.status
    assert state.assignments.tolist() == list(old["assignments"].values())
    assert state.cluster_names == {"0": "grid"} and state.color_by == "split" and state.k == 4
    assert state.point_filter == {} and not state.can_undo
    state.rename(1, "noise")                 # the next save writes the new version, history included
    state.flush()
    saved = json.loads(state.session_file.read_text())
    from synthscope_dashboard.session import SESSION_VERSION
    assert saved["version"] == SESSION_VERSION > 1 and saved["revision"] == 8
    again = AppState(workspace)
    assert again.can_undo
    again.undo()
    assert again.cluster_names == {"0": "grid"}
    again.flush()
    # a file from a newer version than this code is kept, not read
    newer = {**saved, "version": SESSION_VERSION + 1}
    state.session_file.write_text(json.dumps(newer))
    assert "could not restore" in AppState(workspace).status


def test_the_session_keeps_the_scatter_engine(workspace):
    """Issue 22 item 3: the engine control (auto / plotly / jupyter-scatter) was forgotten on reload. A
    version-3 file (no engine) is still read; an engine the page was started with (SYNTHSCOPE_SCATTER_ENGINE)
    is kept over the saved one."""
    from synthscope_dashboard.session import SESSION_VERSION
    from synthscope_dashboard.state import AppState

    first = AppState(workspace)
    assert first.scatter_engine == "auto"
    first.scatter_engine = "jscatter"        # saved as it changes, like the filter
    first.flush()
    saved = json.loads(first.session_file.read_text())
    assert saved["version"] == SESSION_VERSION == 4 and saved["scatter_engine"] == "jscatter"
    assert AppState(workspace).scatter_engine == "jscatter"
    assert AppState(workspace, scatter_engine="plotly").scatter_engine == "plotly"
    old = {key: value for key, value in saved.items() if key != "scatter_engine"}
    first.session_file.write_text(json.dumps({**old, "version": 3}))
    again = AppState(workspace)
    assert "restored" in again.status and "could not" not in again.status, again.status
    assert again.scatter_engine == "auto"
    first.session_file.write_text(json.dumps({**saved, "scatter_engine": "bokeh"}))
    damaged = AppState(workspace)
    assert damaged.scatter_engine == "auto" and "scatter_engine" in damaged.status


def test_a_reload_keeps_the_filter_the_grid_sort_and_the_undo_history(workspace):
    """Issue 22 defect 4 (item 3): a reload lost the filter, the grids' sort and the undo history."""
    from synthscope_dashboard.app import build

    first = build(workspace=workspace)
    for view in first.views:
        view.ensure_built()
    state, view = first.state, first.view("Generator fingerprints")
    training = first.view("Training-data fingerprints")
    original = state.assignments.copy()
    moved = state.assign(np.arange(5), None)
    state.rename(moved, "five")
    after_two = state.assignments.copy()
    state.split(moved)
    view.filter_column.value = "outlier"
    low, high = view.filter_range.min, view.filter_range.max
    view.filter_range.value = (low, low + 0.6 * (high - low))
    spec = dict(state.point_filter)
    visible = view.visible.copy()
    assert spec["column"] == "outlier" and spec["high"] is not None and len(visible) < state.workspace.attribution.n
    view.gallery_sort.value = "silhouette"
    view.gallery_descending.value = False
    training.sort.value = "percentile"
    training.descending.value = False
    state.flush()

    second = build(workspace=dataclasses.replace(workspace))   # the page reloaded: a new kernel
    for other in second.views:
        other.ensure_built()
    state2, view2 = second.state, second.view("Generator fingerprints")
    training2 = second.view("Training-data fingerprints")
    assert state2.point_filter == spec
    assert view2.filter_column.value == "outlier" and view2.filter_range.layout.display is None
    assert view2.filter_range.value[1] == pytest.approx(spec["high"])
    np.testing.assert_array_equal(view2.visible, visible)
    assert len(view2.scatter.data[0].x) == len(visible)
    assert (view2.gallery_sort.value, view2.gallery_descending.value) == ("silhouette", False)
    assert (training2.sort.value, training2.descending.value) == ("percentile", False)
    assert state2.can_undo
    state2.undo()                                 # the split, then the rename, then the move
    assert np.array_equal(state2.assignments, after_two) and state2.cluster_name(moved) == "five"
    state2.undo()
    assert state2.cluster_name(moved) != "five"
    state2.undo()
    assert np.array_equal(state2.assignments, original) and not state2.can_undo
