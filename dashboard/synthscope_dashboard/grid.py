"""The generator view's filter, sort, paging and move guard, without widgets.

The view (views/generators.py) reads its controls and calls these; they take arrays and plain values
and return arrays, specs and messages, so they are tested without a page.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from synthscope_dashboard.columns import BY_KEY, CATEGORY

#: values of one column per attribution row, by column key ("image_id" too, for the grid's sort)
ValuesOf = Callable[[str], np.ndarray]


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(lowest, highest) finite value; (0, 1) when there is none."""
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def category_filter(key: str, chosen) -> dict:
    """The point filter that keeps the rows whose `key` value is one of `chosen` (JSON-able values)."""
    return {"column": key, "values": [v.item() if hasattr(v, "item") else v for v in chosen]}


def range_filter(key: str, low: float, high: float, slider_min: float, slider_max: float) -> dict:
    """The point filter of a number column; a slider end at its limit means "no bound" (the ends are
    rounded to the slider's step)."""
    at_min, at_max = low <= slider_min, high >= slider_max
    return {"column": key, "low": None if at_min else float(low), "high": None if at_max else float(high)}


def filter_mask(spec: dict, values_of: ValuesOf, n: int) -> np.ndarray:
    """Which of the `n` rows the point filter `spec` keeps."""
    spec = spec or {}
    key = spec.get("column")
    if not key or key not in BY_KEY:
        return np.ones(n, dtype=bool)
    values = values_of(key)
    if BY_KEY[key].kind == CATEGORY:
        return np.isin(values, np.asarray(spec.get("values", []), dtype=values.dtype))
    keep = np.isfinite(values)
    if spec.get("low") is not None:
        keep &= values >= spec["low"]
    if spec.get("high") is not None:
        keep &= values <= spec["high"]
    return keep


def grid_order(selection, key: str, descending: bool, values_of: ValuesOf) -> np.ndarray:
    """The selected rows in the grid's order: as selected (key ""), by image id, or by a number column
    (missing values last when highest first)."""
    if selection is None or not len(selection):
        return np.zeros(0, dtype=np.int64)
    if not key:
        return selection
    if key == "image_id":
        order = np.argsort(values_of("image_id")[selection], kind="stable")
        return selection[order if not descending else order[::-1]]
    values = np.asarray(values_of(key), dtype=float)[selection]
    values = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-values if descending else values, kind="stable")
    return selection[order]


def page_bounds(n_rows: int, page: int, size: int) -> tuple[int, int]:
    """(page clamped to the pages there are, number of pages); an empty grid has one page."""
    n_pages = max(1, -(-n_rows // size))
    return min(max(page, 0), n_pages - 1), n_pages


def move_refusal(shown: np.ndarray | None, selected: np.ndarray) -> str | None:
    """Why a move must not happen (the status line's text), or None when the kernel's selection is the
    one the plot shows. `shown`: what the page reported; None when it reported nothing."""
    if shown is None:
        return ("not moved: the page did not report what the plot shows; "
                "press Move selection again")
    if not np.array_equal(np.sort(shown), np.sort(selected)):
        return (f"not moved: the plot shows {len(shown):,} selected images but {len(selected):,} "
                "were selected here (a selection event arrived late); the selection now follows "
                "the plot: check it and press Move selection again")
    return None
