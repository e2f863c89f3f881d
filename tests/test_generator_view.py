"""The generator view (issue 15): every control restored with the curation, the task's k asked for
up front, caches re-read after `synthscope prepare`. Kernel side; the browser side is in
test_dashboard_browser.py."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np

from synthscope_dashboard.imaging import cluster_color

from test_dashboard_state import app, bench, bench_cache, loaded, workspace  # noqa: F401  (fixtures)

VIEW = "Generator fingerprints"


def _page(workspace, **options):
    from synthscope_dashboard.app import build

    dashboard = build(workspace=workspace, **options)
    dashboard.view(VIEW).ensure_built()
    return dashboard


def _chosen_text(view) -> str:
    html = view.metrics.value
    start = html.find("method chosen")
    return html[start:html.find("</summary>", start)] if start >= 0 else ""


def _assert_pixels_page(dashboard, pixel_assignments, pixel_labels):
    state, view = dashboard.state, dashboard.view(VIEW)
    assert state.workspace.attribution.extractor == "pixels" and state.extractor == "pixels"
    assert view.data is state.workspace.attribution
    assert view.extractor.value == "pixels", "the features dropdown says what the clusters were made on"
    assert view.method.value == "auto" and view.k.value == 4 and state.k == 4
    assert view.color_by.value == "known" and state.color_by == "known"
    assert view.projection.value == state.projection == "pca"
    assert np.array_equal(state.assignments, pixel_assignments)
    assert "pixels" in _chosen_text(view), _chosen_text(view)


def _assert_reclusters_on_pixels(dashboard, pixel_labels):
    dashboard.view(VIEW).recluster.click()   # on the restored features, not on the default ones
    assert np.array_equal(dashboard.state.assignments, pixel_labels)


def test_a_reload_restores_every_control_with_the_curation(workspace):
    fingerprint = workspace.attribution
    preheated = _page(dataclasses.replace(workspace))   # a Voila kernel started before the curation

    first = _page(workspace)
    view = first.view(VIEW)
    view.extractor.value = "pixels"
    view.k.value = 4
    view.method.value = "auto"
    view.recluster.click()
    first.state.color_by = "known"
    pixel_labels = first.state.assignments.copy()
    first.state.assign(np.arange(3), None)
    pixel_assignments = first.state.assignments.copy()
    first.state.flush()
    assert "pixels" in _chosen_text(view)

    # a reload: a new kernel loads the default (fingerprint) features, then restores the session
    second = _page(dataclasses.replace(workspace, attribution=fingerprint))
    assert "restored" in second.state.status
    _assert_pixels_page(second, pixel_assignments, pixel_labels)

    # the preheated kernel is shown the page: it picks up the newer curation, features included
    assert preheated.state.sync_with_session()
    _assert_pixels_page(preheated, pixel_assignments, pixel_labels)
    _assert_reclusters_on_pixels(second, pixel_labels)
    _assert_reclusters_on_pixels(preheated, pixel_labels)


def test_without_the_tasks_k_the_page_asks_for_it_and_warns_about_unseen_generators(workspace):
    dashboard = _page(workspace)
    state, view = dashboard.state, dashboard.view(VIEW)
    dev_generators = 3                          # make_bench: three dev folders, four generators in test
    assert state.k == dev_generators and state.k_source == "default"
    assert view.k_prompt.layout.display != "none"
    assert "How many generators does the task state?" in view.k_prompt_text.value
    assert "the test set may hold generators that dev does not" in view.k_warning.value
    view.k_answer.value = 4
    view.k_confirm.click()
    assert state.k == 4 and state.k_source == "analyst" and len(state.clusters()) == 4
    assert view.k_prompt.layout.display == "none" and view.k_warning.value == ""
    state.flush()
    again = _page(dataclasses.replace(workspace))   # a reload does not ask again
    assert again.state.k_source == "analyst" and again.view(VIEW).k_prompt.layout.display == "none"


def test_the_warning_stays_while_k_equals_the_dev_folders(workspace):
    dashboard = _page(workspace)
    view = dashboard.view(VIEW)
    view.k_answer.value = 3                     # the analyst says 3: allowed, but the warning stays
    view.k_confirm.click()
    assert view.k_prompt.layout.display == "none"
    assert "the test set may hold generators that dev does not" in view.k_warning.value


def test_the_tasks_k_is_not_asked_for(workspace):
    view = _page(workspace, k=4).view(VIEW)
    assert view.state.k_source == "task"
    assert view.k_prompt.layout.display == "none" and view.k_warning.value == ""


def test_reload_data_reads_layouts_that_prepare_cached_after_the_page_loaded(bench, bench_cache, tmp_path):
    """`synthscope prepare` run while the page is open (or after a preheated kernel loaded the data):
    the page finds the new layout without a reload and keeps the curation. Each page starts from a copy of
    the run's cache of the bench (no t-SNE in it: the first assertion says so)."""
    from synthscope.cache import EmbeddingCache
    from synthscope.projection import project
    from synthscope_dashboard.workspace import load_workspace

    for shown_by in ("button", "page shown"):
        cache = tmp_path / shown_by / "embeddings"
        shutil.copytree(bench_cache, cache)
        workspace = dataclasses.replace(load_workspace(bench, cache_dir=cache), cache_dir=tmp_path / shown_by)
        dashboard = _page(workspace)
        state, view = dashboard.state, dashboard.view(VIEW)
        assert "tsne" not in view.projection.options and "TSNE" in view.hint.value
        state.assign(np.arange(4), None)
        curated = state.assignments.copy()
        if shown_by == "page shown":   # nothing new yet: the page keeps what it said
            status = state.status
            dashboard.page_shown.shown += 1
            assert state.status == status and "tsne" not in view.projection.options
        # what `synthscope prepare` leaves in the cache (t-SNE here: no numba JIT)
        project(workspace.attribution.features, "tsne", cache=EmbeddingCache(cache))
        if shown_by == "button":
            view.reload_button.click()
        else:
            dashboard.page_shown.shown += 1   # the browser shows the page
        assert "tsne" in view.projection.options and "TSNE" not in view.hint.value
        assert state.projection == "tsne" and np.array_equal(state.assignments, curated)
        assert "TSNE now cached" in state.status


def _key(view, event, event_id, rows, **extra):
    view.bridge._on_message(view.bridge, {"event": event, "id": event_id, "page": "p", "points": [list(rows)],
                                          **extra}, [])


def test_digit_keys_move_the_shown_selection_and_ctrl_z_undoes(app):
    state, view = app.state, app.view(VIEW)
    before = state.assignments.copy()
    _key(view, "ready", 1, [])
    _key(view, "selected", 2, [3, 4, 5])
    target = next(c for c in state.clusters() if c != before[3])
    _key(view, "assign", 3, [3, 4, 5, 6], cluster=target)    # the plot shows another selection: refused
    assert np.array_equal(state.assignments, before) and state.status.startswith("not moved")
    assert list(state.selection) == [3, 4, 5, 6]
    _key(view, "assign", 4, [3, 4, 5, 6], cluster=99)        # no such cluster: refused
    assert np.array_equal(state.assignments, before) and "no cluster 99" in state.status
    _key(view, "assign", 5, [3, 4, 5, 6], cluster=target)
    assert set(state.assignments[[3, 4, 5, 6]]) == {target} and state.status.startswith("moved 4 images")
    _key(view, "undo", 6, [3, 4, 5, 6])
    assert np.array_equal(state.assignments, before) and state.status == "undone"
    state.presentation = True                                # presentation mode: keys change nothing
    _key(view, "assign", 7, [3, 4, 5, 6], cluster=target)
    assert np.array_equal(state.assignments, before)


def test_hover_shows_the_image_and_a_click_its_nearest_neighbours(app):
    from sklearn.metrics import pairwise_distances

    from synthscope_dashboard.imaging import png_bytes

    state, view = app.state, app.view(VIEW)
    data, trace = state.workspace.attribution, view.scatter.data[0]
    points = type("Points", (), {"point_inds": [7]})()
    decoded = []
    original = data.load_images
    data.load_images = lambda rows: decoded.append(len(rows)) or original(rows)
    try:
        view._on_hover(trace, points, None)
        assert view.preview.value == png_bytes(original(np.array([7]))[0], 128)
        assert data.frame.at[7, "image_id"] in view.preview_caption.value
        view._on_hover(trace, points, None)          # hovering back: from the cache, nothing decoded
        assert len(decoded) == 1
        view._on_click(trace, points, None)
    finally:
        data.load_images = original
    full, neighbours = view.detail.children[1].children
    assert str(full.width) == "512" and full.value == png_bytes(original(np.array([7]))[0], 512)
    assert len(neighbours.children) == 6
    space = data.model.transform({data.extractor: data.features})   # where the core's clustering was found
    distances = pairwise_distances(space[[7]], space)[0]
    distances[7] = np.inf
    expected = data.frame["image_id"].to_numpy()[np.argsort(distances, kind="stable")[:6]]
    shown = [card.children[1].value for card in neighbours.children]
    assert all(image_id in caption for image_id, caption in zip(expected, shown))


def test_the_clicked_image_panel_follows_a_move_of_that_image(app):
    """Issue 22 defect 8: the detail panel still named the old cluster after the image moved."""
    state, view = app.state, app.view(VIEW)
    view.show_detail(7)
    header = view.detail.children[0]
    assert state.cluster_name(int(state.assignments[7])) in header.value
    new = state.assign([7], None)
    state.rename(new, "moved here")
    header = view.detail.children[0]
    assert "moved here" in header.value, header.value
    assert f"background:{cluster_color(new)}" in header.value



def test_the_badge_and_captions_name_the_space_the_clusters_came_from(app):
    """Issue 22 defect 6: after switching features without re-clustering, the clicked image's caption
    called the new features "what the clustering sees" and the "method chosen" line named them. Now a
    badge says where the clusters came from and warns; neighbours stay in the clusters' space."""
    state, view = app.state, app.view(VIEW)
    fingerprint = state.workspace.attribution
    space = fingerprint.space_description()
    assert fingerprint.extractor == "fingerprint" and space.startswith("fingerprint, ")
    assert space.endswith(f"{fingerprint.model.reducers_['fingerprint'].pca_.n_components_} components")
    assert f"clusters: {space}" in view.space_badge.value and "Re-cluster" not in view.space_badge.value
    assignments = state.assignments.copy()
    view.extractor.value = "pixels"      # other features shown; the clusters stay until a re-cluster
    assert state.workspace.attribution.extractor == "pixels" and np.array_equal(state.assignments, assignments)
    assert f"clusters: {space}" in view.space_badge.value
    assert "<b>pixels</b>" in view.space_badge.value and "Re-cluster" in view.space_badge.value
    chosen = _chosen_text(view)
    assert "<b>fingerprint</b>" in chosen and "pixels" not in chosen, chosen
    view.show_detail(7)
    header = view.detail.children[0].value
    assert "pixels" not in header and space in header, header
    old_space = fingerprint.model.transform({"fingerprint": fingerprint.features})
    distances = np.linalg.norm(old_space - old_space[7], axis=1)
    distances[7] = np.inf
    rows, _ = view.nearest(7)
    assert list(rows) == list(np.argsort(distances, kind="stable")[:len(rows)])

    view.recluster.click()               # now the clusters come from the pixels
    pixels = state.workspace.attribution.space_description()
    assert pixels.startswith("pixels, ") and f"clusters: {pixels}" in view.space_badge.value
    assert "Re-cluster" not in view.space_badge.value
    view.show_detail(7)
    assert pixels in view.detail.children[0].value


def test_split_divides_a_cluster_in_the_clusterings_space(app):
    from synthscope.attribution import cluster_once

    state = app.state
    data = state.workspace.attribution
    cluster = int(np.bincount(state.assignments).argmax())
    members = np.flatnonzero(state.assignments == cluster)
    space = data.model.transform({data.extractor: data.features})
    expected = cluster_once(space[members], 2, "kmeans", 0)
    new = state.split(cluster)
    assert np.array_equal(state.assignments[members] == new, expected == 1)


def test_the_second_click_of_a_double_click_on_move_moves_nothing(app):
    """Issue 22 defect 12: a double-click on "Move selection" moved twice (into two new clusters). A move
    happens once per selection and target; a new selection of the same points, another target or an undo
    moves again, and a redraw that shows the same points is no new selection."""
    from synthscope_dashboard.views.generators import NEW_CLUSTER

    state, view = app.state, app.view(VIEW)
    _key(view, "ready", 1, [])
    _key(view, "selected", 2, [3, 4, 5])
    view.target.value = NEW_CLUSTER
    _key(view, "shown", 3, [3, 4, 5])
    view.move.click()
    first = state.assignments.copy()
    new = int(first[3])
    assert set(first[[3, 4, 5]]) == {new} and new not in state.clusters()[:-1]
    assert view.move.disabled, "the button says the selection is moved"
    _key(view, "changed", 4, [3, 4, 5])                # the move's redraw: the same points, no new selection
    _key(view, "shown", 5, [3, 4, 5])                  # the second click of the double-click
    view.move.click()
    assert np.array_equal(state.assignments, first), "moved twice"
    assert "not moved again" in state.status
    state.undo()                                       # one press, one undo step
    assert not state.can_undo and not view.move.disabled
    state.assign([3, 4, 5], new)                       # (back to the state after the first move)
    _key(view, "selected", 6, [3, 4, 5])               # a new box over the same points: it moves
    assert not view.move.disabled
    _key(view, "shown", 7, [3, 4, 5])
    view.move.click()
    assert state.status.startswith("moved 3 images") and int(state.assignments[3]) == max(state.clusters())
    assert int(state.assignments[3]) != new
    other = state.clusters()[0]
    view.target.value = other                          # the same selection to another target: it moves
    assert not view.move.disabled
    _key(view, "shown", 8, [3, 4, 5])
    view.move.click()
    assert set(state.assignments[[3, 4, 5]]) == {other}

