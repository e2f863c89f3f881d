"""Issue 22 item 1: the generator view's jupyter-scatter engine, kernel side (the browser test is in
test_dashboard_browser_jscatter.py). The page's selection arrives as the widget's `selection` trait
(the set the page counts and Move moves), colour and Move change the points' colour values, the filter
and the projection switch reach the widget, and the jupyter-scatter names the engine uses still exist.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from test_dashboard_state import bench, bench_cache, loaded, workspace  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def view(workspace):  # noqa: F811
    from synthscope_dashboard.app import build

    dashboard = build(workspace=workspace, autosave=False, scatter_engine="jscatter")
    generators = next(v for v in dashboard.views if v.title.startswith("Generator"))
    generators.ensure_built()
    return generators


def test_the_jupyter_scatter_names_the_engine_uses_exist_in_the_pinned_range():
    """Only public jupyter-scatter names are used; this fails when a release renames one of them."""
    import jscatter
    from packaging.requirements import Requirement
    from packaging.version import Version

    for method in ("xy", "color", "selection", "filter", "widget", "legend", "tooltip"):
        assert callable(getattr(jscatter.Scatter, method, None)) or isinstance(
            getattr(jscatter.Scatter, method, None), property), method
    traits = jscatter.widget.JupyterScatter.class_traits()
    for name in ("selection", "hovering", "points", "filter", "color"):
        assert traits[name].metadata.get("sync") is True, name
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirement = next(Requirement(r) for r in project["optional-dependencies"]["dashboard"]
                       if Requirement(r).name == "jupyter-scatter")
    assert any(spec.operator == "<" for spec in requirement.specifier), "jupyter-scatter needs an upper bound"
    assert Version(jscatter.__version__) in requirement.specifier


def test_auto_picks_plotly_below_the_threshold_and_jscatter_from_it():
    from synthscope_dashboard.views.generator_jscatter import JSCATTER_FROM, choose_engine

    assert choose_engine("auto", JSCATTER_FROM - 1) == "plotly"
    assert choose_engine("auto", JSCATTER_FROM) == "jscatter"
    assert choose_engine("plotly", 10 ** 7) == "plotly" and choose_engine("jscatter", 5) == "jscatter"


def test_a_page_selection_is_the_kernels_selection_and_move_recolours(view):
    state, widget = view.state, view.jscatter.widget
    assert view.scatter is None and view.bridge is None and widget.points.shape[0] == view.data.n
    rows = np.flatnonzero(state.assignments == state.assignments[0])[:5]
    widget.selection = rows.astype(np.int32)[::-1]            # what the page sends after a lasso
    assert np.array_equal(state.selection, np.sort(rows))
    assert f"<b>{len(rows):,}</b> selected" in view.selected_label.value
    view.target.value = -1                                    # + new cluster
    target = view.move_selection()
    assert (state.assignments[rows] == target).all()
    # colour value = code / (colours - 1) on a list of colours, one per cluster id
    codes = np.rint(np.asarray(widget.points[:, 2], dtype=np.float64) * (len(widget.color) - 1)).astype(int)
    assert (codes[rows] == target).all(), "the moved points carry their new cluster's colour"
    others = np.setdiff1d(np.arange(view.data.n), rows)
    assert np.array_equal(codes[others], state.assignments[others])
    assert len(widget.color) >= target + 1


def test_a_kernel_selection_reaches_the_page_and_one_point_opens_its_image(view):
    state, widget = view.state, view.jscatter.widget
    view.select_cluster(int(state.assignments[3]))
    assert np.array_equal(np.sort(np.asarray(widget.selection)), state.selection)
    widget.selection = np.array([3], dtype=np.int32)          # a click selects the point under the mouse
    assert list(state.selection) == [3]
    assert "Clicked image" in view.detail.children[0].value
    widget.hovering = 4
    assert view.data.frame.at[4, "image_id"] in view.preview_caption.value


def test_colour_by_a_number_filter_and_projection_reach_the_widget(view):
    from synthscope_dashboard.columns import BY_KEY, NUMBER

    state, widget = view.state, view.jscatter.widget
    key = next(c.key for c in view.columns.available() if c.kind == NUMBER)
    state.color_by = key
    values = np.asarray(view.columns.values(key), dtype=float)
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(np.asarray(widget.points[order, 2])) >= -1e-6), "colour value follows the column"
    assert BY_KEY[key].label in view.scatter_title.value
    x_before = np.asarray(widget.points[:, 0]).copy()
    if len(view.projection.options) > 1:
        state.projection = [p for p in view.projection.options if p != state.projection][0]
        assert not np.allclose(np.asarray(widget.points[:, 0]), x_before)
    state.point_filter = {"column": "cluster", "values": [int(state.assignments[0])]}
    kept = np.flatnonzero(state.assignments == state.assignments[0])
    assert np.array_equal(np.asarray(widget.filter), kept)
    widget.selection = np.arange(view.data.n, dtype=np.int32)   # hidden points never count
    assert np.array_equal(state.selection, kept)


def test_hover_sends_the_thumbnail_beside_the_cursor_and_leaving_hides_it(view):
    companion, widget = view.companion, view.jscatter.widget
    widget.hovering = 4
    assert companion.row == 4 and companion.thumbnail.startswith(b"\x89PNG")
    assert view.data.frame.at[4, "image_id"] in companion.caption
    widget.hovering = None
    assert companion.row == -1


def test_a_digit_key_moves_what_the_plot_shows_and_ctrl_z_undoes(view):
    state, widget = view.state, view.jscatter.widget
    rows = np.flatnonzero(state.assignments != 1)[:3]
    widget.selection = rows.astype(np.int32)
    before = np.asarray(state.assignments).copy()
    view.companion._message(view.companion, {"event": "assign", "cluster": 1}, [])
    assert (state.assignments[rows] == 1).all() and "moved 3 images to cluster 1" in state.status
    view.companion._message(view.companion, {"event": "undo"}, [])
    assert np.array_equal(state.assignments, before)
    view.companion._message(view.companion, {"event": "assign", "cluster": 63}, [])
    assert np.array_equal(state.assignments, before) and "no cluster 63" in state.status


def test_the_engine_control_redraws_the_scatter_with_the_other_engine(view):
    state = view.state
    view.select_cluster(int(state.assignments[0]))
    selected = np.asarray(state.selection).copy()
    view.engine_control.value = "plotly"
    assert state.scatter_engine == "plotly" and view.jscatter is None and view.scatter is not None
    assert view.scatter in view.scatter_box.children and view.figures["scatter"] is view.scatter
    assert sorted(view.scatter.data[0].selectedpoints) == sorted(np.flatnonzero(np.isin(view.visible, selected)))
    state.scatter_engine = "jscatter"
    assert view.engine_control.value == "jscatter" and view.scatter is None
    assert view.jscatter.widget in view.scatter_box.children and view.companion in view.scatter_box.children
    assert np.array_equal(np.sort(np.asarray(view.jscatter.widget.selection)), selected)


def test_save_figures_saves_a_plotly_figure_of_a_random_subsample(view, monkeypatch):
    from synthscope_dashboard.views import generator_jscatter
    from synthscope_dashboard.views.export import plain_figure

    def x_of(figure) -> np.ndarray:   # plotly 6 keeps arrays as {"dtype", "bdata"}
        import base64

        x = figure.data[0].x
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else np.asarray(x)

    figure = plain_figure(view.figures["scatter"])
    assert len(x_of(figure)) == view.data.n
    monkeypatch.setattr(generator_jscatter, "SAVED_POINTS", 5)
    figure = plain_figure(view.figures["scatter"])
    xy = view.data.projections[view.state.projection]
    assert len(x_of(figure)) == 5 and np.isin(x_of(figure), xy[:, 0]).all()
    assert "5 drawn at random" in figure.layout.title.text


def test_large_workspaces_compute_the_scores_on_request(view, monkeypatch):
    from synthscope_dashboard.views import generator_jscatter

    state = view.state
    fresh = view.metrics.value
    monkeypatch.setattr(generator_jscatter, "LAZY_SUMMARIES_FROM", 1)
    view.select_cluster(int(state.assignments[0]))
    view.target.value = -1
    target = view.move_selection()
    assert "before the last curation step" in view.metrics.value and fresh in view.metrics.value
    assert view.summaries_button.layout.display == "" and f">{target}</td>" in view.cluster_table.value
    view.summaries_button.click()
    assert "before the last curation step" not in view.metrics.value
    assert view.summaries_button.layout.display == "none"
