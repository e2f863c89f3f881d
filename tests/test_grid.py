"""The generator view's filter, sort, paging and move guard, without a page (synthscope_dashboard.grid)."""

from __future__ import annotations

import numpy as np

from synthscope_dashboard.grid import (category_filter, filter_mask, grid_order, move_refusal, page_bounds,
                                       range_filter, value_range)

SPLIT = np.array(["dev", "test", "dev", "test", "dev"])
SILHOUETTE = np.array([0.5, np.nan, -0.2, 0.9, 0.1])
IDS = np.array(["c", "a", "e", "b", "d"])


def _values(key):
    return {"split": SPLIT, "silhouette": SILHOUETTE, "image_id": IDS}[key]


def test_a_category_filter_keeps_its_values_and_is_json_able():
    spec = category_filter("split", (np.str_("test"),))
    assert spec == {"column": "split", "values": ["test"]} and type(spec["values"][0]) is str
    assert filter_mask(spec, _values, 5).tolist() == [False, True, False, True, False]


def test_a_range_filter_at_the_slider_ends_has_no_bound_and_drops_missing_values():
    assert range_filter("silhouette", -0.2, 0.9, -0.2, 0.9) == {"column": "silhouette", "low": None, "high": None}
    spec = range_filter("silhouette", 0.0, 0.9, -0.2, 0.9)
    assert spec == {"column": "silhouette", "low": 0.0, "high": None}
    assert filter_mask(spec, _values, 5).tolist() == [True, False, False, True, True]
    open_ended = filter_mask({"column": "silhouette", "low": None, "high": None}, _values, 5)
    assert open_ended.tolist() == [True, False, True, True, True]   # NaN is never kept by a number filter


def test_no_filter_or_an_unknown_column_keeps_every_row():
    assert filter_mask({}, _values, 5).all() and filter_mask({"column": "gone"}, _values, 5).all()
    assert filter_mask(None, _values, 3).tolist() == [True, True, True]


def test_value_range_ignores_missing_values():
    assert value_range(SILHOUETTE) == (-0.2, 0.9)
    assert value_range(np.array([np.nan])) == (0.0, 1.0)


def test_the_grid_sorts_the_selection_by_id_or_by_a_number_with_missing_last():
    selection = np.array([0, 1, 2, 3])
    assert grid_order(selection, "", True, _values).tolist() == [0, 1, 2, 3]   # as selected
    assert grid_order(selection, "image_id", False, _values).tolist() == [1, 3, 0, 2]
    assert grid_order(selection, "image_id", True, _values).tolist() == [2, 0, 3, 1]
    assert grid_order(selection, "silhouette", True, _values).tolist() == [3, 0, 2, 1]
    assert grid_order(selection, "silhouette", False, _values).tolist() == [1, 2, 0, 3]
    assert grid_order(None, "silhouette", True, _values).tolist() == []


def test_pages_are_clamped_to_the_pages_there_are():
    assert page_bounds(0, 3, 16) == (0, 1)
    assert page_bounds(33, 5, 16) == (2, 3)
    assert page_bounds(32, -1, 16) == (0, 2)


def test_a_move_is_refused_unless_the_plot_shows_the_kernels_selection():
    assert move_refusal(np.array([3, 1]), np.array([1, 3])) is None
    assert "did not report" in move_refusal(None, np.array([1, 3]))
    message = move_refusal(np.array([1, 2, 3]), np.array([1, 3]))
    assert "plot shows 3 selected images but 2" in message
