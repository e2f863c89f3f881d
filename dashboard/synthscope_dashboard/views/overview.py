"""Overview: what was loaded, how it was read, and what each group looks like."""

from __future__ import annotations

import ipywidgets as widgets

from synthscope_dashboard.imaging import png_bytes
from synthscope_dashboard.views.common import View, banner, esc, glossary_html, term

SAMPLES_PER_GROUP = 6


class OverviewView(View):
    title = "Overview"

    def build(self):
        workspace = self.state.workspace
        self.guide = widgets.HTML(self.guide_html())
        self.glossary = widgets.HTML(glossary_html())
        self.datasets = widgets.HTML(self._datasets_html())
        parts = [self.guide, self.glossary, self.datasets]
        if workspace.messages:
            parts.append(widgets.HTML(banner("<br>".join(esc(m) for m in workspace.messages), "warn")))
        for summary in workspace.datasets:
            if summary.sample_loader is None:
                continue
            groups = sorted(summary.counts["group"].unique())
            for group in groups:
                images = summary.sample_loader(group, SAMPLES_PER_GROUP)
                thumbs = [widgets.Image(value=png_bytes(image, 96), format="png", width=96, height=96)
                          for image in images]
                label = widgets.HTML(f"<b>{esc(summary.split)} · {esc(group or '(flat)')}</b> "
                                     f"<span class='ss-status'>{esc(summary.task)}</span>",
                                     layout=widgets.Layout(width="190px"))
                parts.append(widgets.HBox([label, *thumbs]))
        return parts

    def guide_html(self) -> str:
        """What to do first, per sub-task loaded."""
        workspace = self.state.workspace
        steps = []
        if workspace.membership is not None:
            steps.append(("Sub-task 1 (training-data fingerprints)",
                          "read the gate (the dev leakage test) → check the CAUTION and the baseline → move the "
                          "threshold only on dev → export run and scores", [
                "<b>Read the gate</b>: the leakage test on dev (Training-data tab, the Leakage banner). Without a "
                "significant signal there is no membership finding.",
                "<b>Check the CAUTION and the baseline</b>: the " + term("generator-free baseline")
                + " and the trivial baselines (all used, all not used) beside every score.",
                "<b>Move the threshold only on dev</b>: the dev table is where it was fit; test-label scores stay "
                "hidden unless Evaluation mode is on (do not tune with it on).",
                "<b>Export</b> the run file and the scores file (Export tab)."]))
        if workspace.attribution is not None:
            steps.append(("Sub-task 2 (generator fingerprints)", "set k from the task → cluster → curate → export", [
                "<b>Set k from the task</b>: the number of generators the task states (the k box, or "
                "<code>synthscope dashboard --k N</code>).",
                "<b>Cluster</b>: re-cluster with that k (Generator fingerprints tab).",
                "<b>Curate</b>: lasso points, move, rename, merge or split clusters; undo is in the header.",
                "<b>Export</b> the run file (Export tab)."]))
        blocks = "".join(f"<div class='ss-guide-task'><b>{esc(name)}</b>: {esc(summary)}"
                         + "<ol>" + "".join(f"<li>{item}</li>" for item in items) + "</ol></div>"
                         for name, summary, items in steps)
        return banner("<div class='ss-guide'><b>Where to start</b>" + blocks + "</div>", "info")

    def _datasets_html(self) -> str:
        workspace = self.state.workspace
        rows = []
        for summary in workspace.datasets:
            counts = summary.counts
            by_role = counts.groupby(["role", "label"])["images"].sum()
            detail = ", ".join(f"{role}/{label}: {n}" for (role, label), n in by_role.items())
            skipped = (f"<br><span style='color:#cf3d3d'>skipped {len(summary.skipped)} file(s): "
                       + "; ".join(f"{esc(p)} ({esc(r)})" for p, r in summary.skipped[:5])
                       + (" …" if len(summary.skipped) > 5 else "") + "</span>") if summary.skipped else ""
            warnings = ("<br><span style='color:#b26a00'>" + "; ".join(esc(w) for w in summary.warnings[:5])
                        + "</span>") if summary.warnings else ""
            rows.append(f"<tr><td>{esc(summary.split)}</td><td>{esc(summary.task)}</td><td><code>{esc(summary.layout)}</code></td>"
                        f"<td>{int(counts['images'].sum())}</td><td>{esc(detail)}{skipped}{warnings}</td>"
                        f"<td><code>{esc(summary.root)}</code></td></tr>")
        tasks = {s.task for s in workspace.datasets}
        what = {"membership": "sub-task 1 (training-data fingerprints)",
                "attribution": "sub-task 2 (generator fingerprints)"}
        lead = " and ".join(what[t] for t in sorted(tasks, reverse=True) if t in what)
        return (f"<h3>Loaded {lead}</h3>"
                "<table class='ss-table'><tr><th>split</th><th>task</th><th>layout</th><th>images</th>"
                "<th>counts (role/label) and load report</th><th>folder</th></tr>" + "".join(rows) + "</table>")
