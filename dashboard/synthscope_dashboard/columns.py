"""The columns the generator view colours, filters, sorts and bins by: one definition for all four.

Each column is a value per attribution row: a category (cluster, known label, split, group) or a
number (silhouette, distance to the cluster centre, outlier score). The numbers come from the core
(`synthscope.attribution.cluster_diagnostics`, `outlier_scores`) in the space the clusters were found in
(`AttributionData.clustering_space`: the core model's reducers), computed when first asked for and kept
until the clusters (or the clustering) change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORY, NUMBER = "category", "number"
N_BINS = 30


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str        # CATEGORY | NUMBER
    help: str


COLUMNS = (
    Column("cluster", "cluster", CATEGORY, "the cluster each image is in now (your curation)"),
    Column("known", "known label", CATEGORY,
           "the dev folder's generator; the test ground truth too, only in evaluation mode"),
    Column("split", "split", CATEGORY, "dev (labelled folders) or test"),
    Column("group", "folder", CATEGORY, "the folder the image was read from"),
    Column("silhouette", "silhouette", NUMBER,
           "-1 to 1: how much closer the image is to its own cluster than to the next one (low = misplaced?)"),
    Column("centre_distance", "distance to cluster centre", NUMBER,
           "Euclidean distance to the mean of its cluster, in the space the clusters were found in"),
    Column("outlier", "outlier score", NUMBER,
           "local outlier factor: about 1 for an image as dense as its neighbours, higher = lies apart"),
)
BY_KEY = {column.key: column for column in COLUMNS}


class PointColumns:
    """Values of every column for the rows of `state.workspace.attribution` (read at each call)."""

    def __init__(self, state):
        self.state = state
        self._cache: dict[str, tuple[object, np.ndarray]] = {}
        self.silhouette_kind = "exact"
        self._available = None   # (token, frame, columns) of the last available()

    @property
    def data(self):
        return self.state.workspace.attribution

    def available(self) -> list[Column]:
        """The columns this workspace offers; kept per (frame, test labels shown): at a million rows each
        check is an O(n) string comparison, and the view asks on every colour, move and redraw."""
        frame = self.data.frame
        token = (id(frame), bool(self.state.shows_test_labels()))
        if self._available is not None and self._available[0] == token and self._available[1] is frame:
            return list(self._available[2])
        shown = []
        for column in COLUMNS:
            if column.key == "known" and not ((frame["known_label"] != "").any() or
                                              (self.state.shows_test_labels() and (frame["truth"] != "").any())):
                continue
            if column.key == "group" and frame["group"].nunique() < 2:
                continue
            if column.key == "split" and frame["split"].nunique() < 2:
                continue
            shown.append(column)
        self._available = (token, frame, shown)
        return list(shown)

    def values(self, key: str) -> np.ndarray:
        """Strings for a category (cluster ids as ints), floats for a number."""
        frame, state = self.data.frame, self.state
        if key == "cluster":
            return np.asarray(state.assignments)
        if key == "known":
            if state.shows_test_labels():
                return frame["truth"].where(frame["truth"] != "", frame["known_label"]).to_numpy(dtype=object)
            return frame["known_label"].to_numpy(dtype=object)
        if key in ("split", "group"):
            return frame[key].astype(str).to_numpy(dtype=object)
        if key in ("silhouette", "centre_distance"):
            return self._diagnostics()[key]
        if key == "outlier":
            return self._cached("outlier", (id(self.data), id(self.data.model)), lambda: self._outliers())
        raise KeyError(f"no column {key!r}; the columns are {', '.join(BY_KEY)}")

    def _cached(self, name: str, token, compute) -> np.ndarray:
        hit = self._cache.get(name)
        if hit is not None and hit[0] == token:
            return hit[1]
        value = compute()
        self._cache[name] = (token, value)
        return value

    def _outliers(self) -> np.ndarray:
        from synthscope.attribution import outlier_scores

        return outlier_scores(self.data.clustering_space())

    def _diagnostics(self) -> dict[str, np.ndarray]:
        from synthscope.attribution import cluster_diagnostics

        assignments = np.asarray(self.state.assignments)
        token = (id(self.data), id(self.data.model), assignments.tobytes())

        def compute():
            diagnostics = cluster_diagnostics(self.data.clustering_space(), assignments)
            self.silhouette_kind = diagnostics.silhouette_kind
            return {"silhouette": diagnostics.silhouette, "centre_distance": diagnostics.centre_distance}

        return self._cached("diagnostics", token, compute)

    def label(self, key: str) -> str:
        column = BY_KEY[key]
        if key == "silhouette" and self.silhouette_kind == "centroid":
            return "silhouette (centroid form, > 5,000 images)"
        return column.label


def categories(values: np.ndarray) -> tuple[list, np.ndarray]:
    """Sorted distinct values (empty strings, "unlabelled", last) and the code of each row."""
    codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=False)   # no per-row Python loop
    first = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
    if values.dtype == object and any(v != v for v in first) and np.any(values == None):  # noqa: E711
        first = [None if v != v else v for v in first]   # factorize turns None into NaN: keep None
    order = sorted(range(len(first)), key=lambda i: (first[i] == "" or first[i] is None, str(first[i])
                   if not isinstance(first[i], (int, np.integer)) else f"{first[i]:09d}"))
    position = np.empty(len(first), dtype=np.int64)
    position[order] = np.arange(len(first))
    return [first[i] for i in order], position[codes].astype(np.int64)


@dataclass
class Bins:
    """Bars of a histogram over some rows: each bar's position, count and member rows."""
    x: list                    # bar centres (numbers) or category names
    width: list | None         # bar widths (numbers only)
    members: list[np.ndarray]  # rows per bar
    labels: list[str]          # readable bar names, e.g. "0.12 – 0.15"

    def rows(self, bars) -> np.ndarray:
        chosen = [self.members[int(b)] for b in bars if 0 <= int(b) < len(self.members)]
        return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def counts(self, rows: np.ndarray | None = None) -> list[int]:
        if rows is None:
            return [len(m) for m in self.members]
        return [int(np.isin(m, rows, assume_unique=True).sum()) for m in self.members]


def make_bins(values: np.ndarray, rows: np.ndarray, kind: str, names=None, n_bins: int = N_BINS) -> Bins:
    """Bars for `values[rows]`: N_BINS equal-width bins for a number, one bar per category."""
    rows = np.asarray(rows, dtype=np.int64)
    if kind == CATEGORY:
        distinct, codes = categories(values[rows])
        members = [rows[codes == i] for i in range(len(distinct))]
        labels = [names(v) if names else (str(v) if v != "" else "unlabelled") for v in distinct]
        return Bins(x=labels, width=None, members=members, labels=labels)
    finite = rows[np.isfinite(values[rows])]
    if finite.size == 0:
        return Bins(x=[], width=[], members=[], labels=[])
    low, high = float(values[finite].min()), float(values[finite].max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, n_bins + 1)
    index = np.clip(np.searchsorted(edges, values[finite], side="right") - 1, 0, n_bins - 1)
    members = [finite[index == b] for b in range(n_bins)]
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    return Bins(x=centres, width=np.diff(edges).tolist(), members=members,
                labels=[f"{a:.3g} – {b:.3g}" for a, b in zip(edges[:-1], edges[1:])])
