"""HTML tables the page and the static report both show (one definition, so they never disagree)."""

from __future__ import annotations

import html

import numpy as np

from synthscope_dashboard.imaging import cluster_color
from synthscope_dashboard.markup import estimate_row, metric_table

N_BOOT = 1000   # as `synthscope attribute --truth`, so the page, the report and the CLI print the same CIs
#: sub-task 2's two ARI / NMI tables: label column -> (caption, note)
ARI_NMI_TABLES = {
    "known_label": ("dev images (labelled by their folders)", "how well the clusters recover the dev generators"),
    "truth": ("test images (ground-truth file, evaluation only)", "never used to fit anything"),
}


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


def labelled_rows(frame, column: str) -> np.ndarray:
    """Which rows carry a label in `column` ("truth": test rows of the ground-truth file only)."""
    mask = (frame[column] != "").to_numpy()
    if column == "truth":
        mask = mask & (frame["split"] == "test").to_numpy()
    return mask


def ari_nmi_table(frame, assignments: np.ndarray, column: str, *, caption_prefix: str = "",
                  n_boot: int = N_BOOT) -> str:
    """ARI and NMI of the clusters against the labels of `column`, with bootstrap CIs and the
    single-cluster baseline; "" when fewer than two rows are labelled."""
    from synthscope.metrics import attribution_report

    caption, note = ARI_NMI_TABLES[column]
    mask = labelled_rows(frame, column)
    if mask.sum() < 2:
        return ""
    estimates = attribution_report(frame[column].to_numpy()[mask], assignments[mask], n_boot=n_boot).estimates
    rows = [estimate_row("ARI", estimates["ari"], [("single cluster", 0.0)], note),
            estimate_row("NMI", estimates["nmi"], [("single cluster", 0.0)], note)]
    return metric_table(rows, f"{caption_prefix}{caption} · n = {int(mask.sum()):,}")
