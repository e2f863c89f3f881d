"""Colour, filter and sort by any column, and one selection shared by the scatter, the column
histogram, the cluster table and the image grid (issue 15). Kernel side; the browser side is in
test_dashboard_browser_columns.py."""

from __future__ import annotations

import numpy as np
import pytest

from test_dashboard_state import app, bench, bench_cache, loaded, workspace  # noqa: F401  (fixtures)

VIEW = "Generator fingerprints"


def _message(bridge, event, event_id, points, metas=None):
    bridge._on_message(bridge, {"event": event, "id": event_id, "page": "p", "points": points,
                                **({"metas": metas} if metas is not None else {})}, [])


# ---------------------------------------------------------------- the core's per-image diagnostics
def test_cluster_diagnostics_are_sklearns_silhouette_and_the_centroid_form_above_the_limit():
    from sklearn.metrics import silhouette_samples

    from synthscope.attribution import cluster_diagnostics

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (60, 4)), rng.normal(5, 1, (60, 4))]
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    labels[0] = 1   # one image in the wrong cluster
    exact = cluster_diagnostics(X, labels)
    assert exact.silhouette_kind == "exact"
    np.testing.assert_allclose(exact.silhouette, silhouette_samples(X, labels), rtol=1e-12, atol=1e-12)
    assert exact.silhouette[0] < 0 < np.median(exact.silhouette)
    centre = X[labels == 1].mean(axis=0)
    np.testing.assert_allclose(exact.centre_distance[0], np.linalg.norm(X[0] - centre), rtol=1e-12)
    simplified = cluster_diagnostics(X, labels, exact_limit=10)
    assert simplified.silhouette_kind == "centroid"
    assert simplified.silhouette[0] < 0 and np.all(np.abs(simplified.silhouette) <= 1)
    assert np.corrcoef(simplified.silhouette, exact.silhouette)[0, 1] > 0.9
    single = cluster_diagnostics(X, np.zeros(len(X), int))
    assert np.all(single.silhouette == 0)


def test_outlier_scores_rank_an_isolated_image_first():
    from synthscope.attribution import outlier_scores

    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (200, 5)), [[12.0, 12, 12, 12, 12]]]
    scores = outlier_scores(X)
    assert scores.argmax() == 200 and scores[200] > 3 and abs(np.median(scores) - 1) < 0.2


# ---------------------------------------------------------------- colour by any column
@pytest.mark.parametrize("key", ["silhouette", "centre_distance", "outlier"])
def test_colour_by_a_number_draws_a_colour_bar_and_says_what_it_is(app, key):
    state, view = app.state, app.view(VIEW)
    assert key in [value for _, value in view.color_by.options]
    view.color_by.value = key
    assert state.color_by == key
    marker = view.scatter.data[0].marker
    values = view.columns.values(key)
    assert marker.showscale is True and marker.colorbar.title.text == view.columns.label(key)
    np.testing.assert_array_equal(np.asarray(marker.color, dtype=float), values[view.visible])
    assert marker.cmin == pytest.approx(values.min()) and marker.cmax == pytest.approx(values.max())
    assert "colour bar" in view.legend.value and view.columns.label(key) in view.scatter.layout.title.text
    view.color_by.value = "split"   # back to a category: swatches, no colour bar
    assert view.scatter.data[0].marker.showscale is False
    assert "data-label='dev'" in view.legend.value and "data-label='test'" in view.legend.value


def test_the_silhouette_follows_the_curation(app):
    state, view = app.state, app.view(VIEW)
    view.color_by.value = "silhouette"
    before = np.asarray(view.scatter.data[0].marker.color, dtype=float).copy()
    state.assign(np.arange(3), None)   # three images into a cluster of their own
    after = np.asarray(view.scatter.data[0].marker.color, dtype=float)
    assert not np.allclose(before, after)
    from synthscope.attribution import cluster_diagnostics

    data = state.workspace.attribution
    space = data.model.transform({data.extractor: data.features})   # the core clustering's space
    assert space.shape[1] == data.model.reducers_[data.extractor].pca_.n_components_
    expected = cluster_diagnostics(space, state.assignments).silhouette
    np.testing.assert_allclose(after, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- filter by any column
def test_a_filter_keeps_only_its_rows_everywhere_and_old_browser_indices_are_dropped(app):
    state, view = app.state, app.view(VIEW)
    frame = state.workspace.attribution.frame
    test_rows = np.flatnonzero(frame["split"].to_numpy() == "test")
    dev_rows = np.flatnonzero(frame["split"].to_numpy() == "dev")
    bridge = view.bridge
    _message(bridge, "ready", 1, [[]], [view.revision()])
    old_revision = view.revision()
    _message(bridge, "selected", 2, [[int(dev_rows[0]), int(test_rows[0])]], [old_revision])
    assert list(state.selection) == sorted([int(dev_rows[0]), int(test_rows[0])])

    view.filter_column.value = "split"
    assert view.filter_values.layout.display is None and set(view.filter_values.value) == {"dev", "test"}
    assert len(view.scatter.data[0].x) == len(frame), "choosing the column alone hides nothing"
    view.filter_values.value = ("test",)
    assert state.point_filter == {"column": "split", "values": ["test"]}
    trace = view.scatter.data[0]
    np.testing.assert_array_equal(view.visible, test_rows)
    assert len(trace.x) == len(test_rows) and trace.meta == view.revision() != old_revision
    assert list(state.selection) == [int(test_rows[0])], "the hidden dev image left the selection"
    assert "hides 1 selected" in state.status and f"{len(test_rows):,}</b> of {len(frame):,}" in view.filter_label.value

    # a selection the page computed on the old points is dropped: its indices mean other rows now
    _message(bridge, "selected", 3, [[0, 1]], [old_revision])
    assert list(state.selection) == [int(test_rows[0])]
    _message(bridge, "selected", 4, [[0, 1]], [view.revision()])
    assert list(state.selection) == test_rows[:2].tolist(), "indices are positions among the filtered points"

    view.filter_clear.click()
    assert state.point_filter == {} and len(view.scatter.data[0].x) == len(frame)


def test_a_numeric_filter_keeps_the_range(app):
    state, view = app.state, app.view(VIEW)
    view.filter_column.value = "outlier"
    values = view.columns.values("outlier")
    assert view.filter_range.layout.display is None and state.point_filter.get("low") is None
    middle = float(np.median(values))
    view.filter_range.value = (view.filter_range.min, middle)
    np.testing.assert_array_equal(view.visible, np.flatnonzero(values <= middle + 1e-12)[:len(view.visible)])
    assert np.all(values[view.visible] <= state.point_filter["high"]) and len(view.visible) < len(values)


# ---------------------------------------------------------------- one selection, linked
def test_a_box_over_histogram_bars_selects_their_images_in_the_scatter_and_grid(app):
    state, view = app.state, app.view(VIEW)
    view.color_by.value = "cluster"
    bins = view._bins
    cluster_rows = bins.members[0]
    meta = view.histogram.data[0].meta
    _message(view.histogram_bridge, "selected", 1, [[0], [0]], [meta, meta])
    np.testing.assert_array_equal(state.selection, np.sort(cluster_rows))
    assert list(view.scatter.data[0].selectedpoints) == np.flatnonzero(np.isin(view.visible, cluster_rows)).tolist()
    assert list(view.histogram.data[1].y)[0] == len(cluster_rows), "the histogram draws the selection on top"
    assert f"<b>{len(cluster_rows):,}</b> selected" in view.selected_label.value
    shown = [caption.value for _, caption in view._captions]
    assert len(shown) == min(len(cluster_rows), 16)
    # bars of older bins (the column changed since) are not read as the new ones
    view.color_by.value = "split"
    _message(view.histogram_bridge, "selected", 2, [[1], [1]], [meta, meta])
    np.testing.assert_array_equal(state.selection, np.sort(cluster_rows))


def test_selecting_a_cluster_selects_it_in_the_scatter_and_the_guard_accepts_the_move(app):
    state, view = app.state, app.view(VIEW)
    buttons = [b for b in view.cluster_select.children if hasattr(b, "on_click")]
    assert len(buttons) == len(state.clusters())
    buttons[1].click()
    cluster = state.clusters()[1]
    members = np.flatnonzero(state.assignments == cluster)
    np.testing.assert_array_equal(state.selection, members)
    positions = list(view.scatter.data[0].selectedpoints)
    assert positions == members.tolist()
    # the page reports what it highlights: the pushed selection, so Move selection goes ahead
    _message(view.bridge, "ready", 1, [positions], [view.revision()])
    _message(view.bridge, "shown", 2, [positions], [view.revision()])
    target = state.clusters()[0]
    view.target.value = target
    assert view.move_selection() == target and set(state.assignments[members]) == {target}


def test_the_grid_pages_the_selection_sorted_by_any_score(app):
    state, view = app.state, app.view(VIEW)
    state.select(np.arange(state.workspace.attribution.n))
    view.gallery_sort.value = "outlier"
    values = view.columns.values("outlier")
    order = view.gallery_rows()
    assert np.all(np.diff(values[order]) <= 0)
    rows_on_page = [row for row, _ in view._captions]
    assert rows_on_page == order[:16].tolist() and "outlier score" in view._captions[0][1].value
    view.gallery_descending.value = False
    assert np.all(np.diff(values[view.gallery_rows()]) >= 0)
    n = state.workspace.attribution.n
    if n > 16:
        view.gallery_next.click()
        assert view.gallery_page == 1 and [row for row, _ in view._captions] == view.gallery_rows()[16:32].tolist()
    card = view.gallery.children[0]
    card.children[2].click()   # "show": the image with its neighbours
    assert "Clicked image" in view.detail.children[0].value


# ---------------------------------------------------------------- sub-task 1: histogram and grid linked
def test_a_box_over_score_bars_picks_their_real_images_in_the_grid(app):
    state, view = app.state, app.view("Training-data fingerprints")
    view.ensure_built()
    frame = state.workspace.membership.frame
    rows = view._rows()
    trace = view.histogram.data[0]
    counts = list(trace.y)
    bars = [i for i, c in enumerate(counts) if c][:2]
    assert bars, "the fixture has dev-used images"
    _message(view.histogram_bridge, "ready", 1, [None, None, None], [trace.meta] * 3)
    _message(view.histogram_bridge, "selected", 2, [bars, [], None], [trace.meta] * 3)
    picked = state.real_selection
    assert len(picked) == sum(counts[b] for b in bars)
    scores = frame["score"].to_numpy()[picked]
    edges_low = trace.x[bars[0]] - trace.width[bars[0]] / 2
    edges_high = trace.x[bars[-1]] + trace.width[bars[-1]] / 2
    assert np.all((scores >= edges_low - 1e-9) & (scores <= edges_high + 1e-9))
    assert np.all(frame["label"].to_numpy()[picked] == 1), "bars of the dev-used trace hold dev-used images"
    assert set(view.grid_rows.tolist()) == set(picked.tolist()) and set(picked.tolist()) <= set(rows.tolist())
    assert f"<b>{len(picked):,}</b> images picked" in view.picked_label.value
    view.picked_clear.click()
    assert state.real_selection is None and len(view.grid_rows) == len(rows)


def test_the_focused_real_image_is_marked_on_the_histogram(app):
    state, view = app.state, app.view("Training-data fingerprints")
    view.ensure_built()
    row = int(view._rows()[0])
    state.focused_real = row
    marker = view.histogram.layout.shapes[1]
    assert marker.visible and marker.x0 == pytest.approx(state.workspace.membership.frame.at[row, "score"])
    state.focused_real = -1
    assert not view.histogram.layout.shapes[1].visible


def test_a_number_filter_is_applied_again_after_each_curation_step_and_says_what_it_hides(app):
    """Issue 22 defect 5: after curation, points outside the slider's range showed, and the selection
    shrank without a word (the curation's status line replaced the filter's)."""
    from synthscope_dashboard.grid import filter_mask

    state, view = app.state, app.view(VIEW)
    n = state.workspace.attribution.n

    def check_shown() -> None:
        expected = np.flatnonzero(filter_mask(state.point_filter, view.columns.values, n))
        np.testing.assert_array_equal(view.visible, expected)
        shown = view.columns.values("silhouette")[view.visible]
        shown_low, shown_high = view.filter_range.value
        assert view.filter_range.min <= shown_low <= shown.min() + 1e-12, "the slider shows every value it lets in"
        assert shown.max() <= shown_high + 1e-12 <= view.filter_range.max + 1e-12
        hidden = n - len(view.visible)
        assert (f"<b>{len(view.visible):,}</b> of {n:,} images shown · the filter hides {hidden:,}"
                in view.filter_label.value) == (hidden > 0), view.filter_label.value

    view.filter_column.value = "silhouette"
    low, high = view.filter_range.min, view.filter_range.max
    view.filter_range.value = (low, low + 0.8 * (high - low))   # the top end moved; the low end stays open
    first = state.clusters()
    state.merge(first[0], first[1])
    check_shown()
    state.split(first[1])
    check_shown()
    # three images of one cluster moved into another: their silhouettes fall below the first range
    state.assign(np.flatnonzero(state.assignments == state.clusters()[0])[:3], state.clusters()[-1])
    check_shown()
    assert view.columns.values("silhouette")[view.visible].min() < low, "what the old slider did not show"

    # both ends set: the images a merge and a split push out of the range leave the selection, and the page says so
    for _ in range(3):
        state.undo()
        check_shown()
    low, high = view.filter_range.min, view.filter_range.max
    view.filter_range.value = (low + 0.3 * (high - low), high - 0.1 * (high - low))
    state.select(view.visible)
    selected = len(state.selection)
    clusters = state.clusters()
    state.merge(clusters[0], clusters[1])
    check_shown()
    state.split(clusters[1])
    check_shown()
    dropped = selected - len(state.selection)
    assert dropped > 0 and state.status.startswith("split cluster")
    assert f"{dropped:,} selected images left the selection" in view.filter_label.value, view.filter_label.value
    state.select(view.visible[:2])   # a new selection: the note about the old one goes
    assert "left the selection" not in view.filter_label.value
