"""HTML tables the page and the static report both show (one definition, so they never disagree)."""

from __future__ import annotations

import html

import numpy as np

from synthscope_dashboard.imaging import cluster_color


def cluster_table_html(state, labels: np.ndarray, *, caption: str = "clusters",
                       label_header: str = "majority known label", css_class: str = "") -> str:
    """One row per cluster: swatch and id, name, size, and the majority of `labels` ("" = unlabelled)."""
    rows = []
    for cluster in state.clusters():
        members = state.assignments == cluster
        known = labels[members]
        known = known[known != ""]
        if known.size:
            values, counts = np.unique(known, return_counts=True)
            majority = f"{html.escape(str(values[counts.argmax()]))} ({counts.max() / known.size:.0%} of {known.size})"
        else:
            majority = "–"
        rows.append(f"<tr><td><span class='ss-swatch' style='background:{cluster_color(cluster)}'></span>{cluster}</td>"
                    f"<td>{html.escape(state.cluster_name(cluster))}</td><td>{int(members.sum()):,}</td>"
                    f"<td>{majority}</td></tr>")
    classes = " ".join(filter(None, ["ss-table", css_class]))
    return (f"<table class='{classes}'><caption>{html.escape(caption)}</caption><tr><th>id</th><th>name</th>"
            f"<th>images</th><th>{html.escape(label_header)}</th></tr>" + "".join(rows) + "</table>")
