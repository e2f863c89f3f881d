"""The browser's box/lasso selection, delivered to the kernel without loss.

Why not plotly's `on_selection`: a FigureWidget sends hover, unhover, click, selection and deselect
events through one synced trait (`_js2py_pointsCallback`). While the page waits for the kernel to
acknowledge a message on a widget, ipywidgets merges that widget's further state updates into a buffer
in which the last value of each trait wins. A selection made while a hover message is unanswered
(a busy kernel) is therefore replaced by the hover or unhover that follows the mouse release, and the
kernel keeps the previous selection while the plot highlights the new one.

`SelectionBridge` listens to the plot in the page and sends every selection as a custom message
(custom messages are sent at once, never merged): one message per selection event, numbered, with
the points of every trace read from the plot's `selectedpoints` (what it highlights), and again whenever
the highlight changes otherwise. It also reports what the plot shows when the analyst presses a guarded
button ("Move selection"), so the kernel can refuse to act on a selection that is not the one on screen,
and clears the selection on Escape.

Keys (while the plot is on screen and no text box has the focus): Ctrl+Z (or Cmd+Z) sends "undo",
a digit 0-9 sends "assign" with that cluster number and the points the plot highlights at the key
press, so the kernel can make the same check as for "Move selection".
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import numpy as np
import plotly.graph_objects as go
import traitlets
from plotly.serializers import custom_serializers

from synthscope_dashboard.markup import PLOT_CONFIG

BRIDGE_JS = r"""
function plotOf(el) {
  const box = el.closest('.ss-scatter-box');
  return box ? box.querySelector('.js-plotly-plot') : null;
}
function shownPoints(gd) {
  return (gd && gd.data ? gd.data : []).map(t =>
    t.selectedpoints === undefined || t.selectedpoints === null ? null : Array.from(t.selectedpoints, Number));
}
function metas(gd) {   // which version of the traces' data the indices refer to (set by the kernel)
  return (gd && gd.data ? gd.data : []).map(t => t.meta === undefined || t.meta === null ? null : String(t.meta));
}
function signature(points, gd) {   // cheap, order-sensitive summary of what the plot highlights
  return metas(gd).join(',') + '/' +
    points.map(p => p === null ? 'n' : p.length + ':' + p.reduce((a, v, i) => (a + (i + 1) * v) % 1000000007, 0)).join('|');
}
function idsOf(gd, points) {   // the row each highlighted point stands for, as the page's own trace says
  return (gd && gd.data ? gd.data : []).map((t, k) => {
    const p = points[k];
    if (p === null || p === undefined || !t.customdata || t.customdata.length === undefined) return null;
    return p.map(i => Number(t.customdata[i]));
  });
}
function digests(gd) {   // which rows the page's traces hold, in which order (see rows_digest in Python)
  return (gd && gd.data ? gd.data : []).map(t => {
    const ids = t.customdata && t.customdata.length !== undefined ? t.customdata : null;
    if (ids === null) return null;
    let sum = 0;
    for (let i = 0; i < ids.length; i++) sum = (sum + ((i + 1) * (Number(ids[i]) + 1)) % 1000000007) % 1000000007;
    return (t.meta === undefined || t.meta === null ? '' : String(t.meta)) + '/' + ids.length + '/' + sum;
  });
}
export default {
  render({ model, el }) {
    let id = 0, gd = null, last = null, dragging = false, held = null;
    const page = Math.random().toString(36).slice(2);   // ids count per page view
    const report = (event, extra) => {
      id += 1;
      const points = shownPoints(gd);
      last = signature(points, gd);
      held = digests(gd).join(',');
      model.send({ event, id, page, points, ids: idsOf(gd, points), metas: metas(gd), digests: digests(gd),
                   ...(extra || {}) });
    };
    const onClick = (data) => {   // the row the clicked point stands for in the page's own trace
      const p = data && data.points && data.points[0];
      if (!p || !gd) return;
      const t = gd.data[p.curveNumber] || {};
      const row = t.customdata && t.customdata.length !== undefined ? Number(t.customdata[p.pointNumber]) : null;
      report('click', { curve: p.curveNumber, point: p.pointNumber, row });
    };
    const attach = () => {
      const plot = plotOf(el);
      if (!plot || !plot.on || plot === gd) return;
      gd = plot;
      if (model.get('exclusive') && gd.removeAllListeners) {
        // the bridge is the one source of selections: the figure's own listeners would send every selected
        // point with its x and y again (megabytes at 50,000 points) through the lossy path
        gd.removeAllListeners('plotly_selected');
        gd.removeAllListeners('plotly_deselect');
      }
      // selectedpoints are up to date once plotly's own handlers have run: report on the next tick
      gd.on('plotly_selected', () => setTimeout(() => report('selected'), 0));
      gd.on('plotly_deselect', () => setTimeout(() => report('deselected'), 0));
      if (model.get('clicks')) gd.on('plotly_click', onClick);
      gd.addEventListener('pointerdown', () => { dragging = true; }, true);
      report('ready');
    };
    const up = () => { dragging = false; };
    document.addEventListener('pointerup', up, true);
    const tick = () => {
      attach();
      // whatever else changes the highlight (a redraw, a relayout of the selections) is reported too
      if (gd && !dragging && signature(shownPoints(gd), gd) !== last) report('changed');
      // the traces now hold other rows (a redraw): the kernel checks them against its own
      else if (gd && held !== null && digests(gd).join(',') !== held) report('data');
    };
    // the kernel found the page's rows differ from its own: report again once updates on their way have landed
    model.on('msg:custom', (msg) => { if (msg && msg.event === 'verify') setTimeout(() => report('verify'), 1000); });
    tick();
    const timer = setInterval(tick, 400);   // the plot renders after this widget, and may re-render
    const view = el.closest('.ss-view') || document;
    const guard = (e) => {
      if (!gd || !e.target.closest) return;
      if (e.type === 'keydown' && !(e.key === 'Enter' || e.key === ' ')) return;
      if (e.target.closest('.ss-selection-guard')) report('shown');   // before the button's click message
    };
    const escape = (e) => {
      // Escape = plotly's own deselect (a double-click on the plot's drag layer); its plotly_deselect
      // then reports the cleared selection like any other
      if (e.key !== 'Escape' || !gd || !gd.offsetParent) return;
      const drag = gd.querySelector('.nsewdrag');
      if (!drag) return;
      const r = drag.getBoundingClientRect();
      const fire = (type) => drag.dispatchEvent(new MouseEvent(type, { bubbles: true, cancelable: true, view: window,
        clientX: r.left + 2, clientY: r.top + 2, button: 0, buttons: type === 'mousedown' ? 1 : 0 }));
      fire('mousedown'); fire('mouseup'); fire('mousedown'); fire('mouseup');
      setTimeout(() => report('escape'), 0);
    };
    const typing = (t) => t && t.closest && (t.closest('input, textarea, select, [contenteditable="true"]') !== null);
    const keys = (e) => {
      if (!model.get('answers_keys')) return;
      if (!gd || !gd.offsetParent || typing(e.target) || e.altKey) return;
      if ((e.ctrlKey || e.metaKey) && !e.shiftKey && (e.key === 'z' || e.key === 'Z')) {
        e.preventDefault();
        report('undo');
      } else if (!e.ctrlKey && !e.metaKey && /^[0-9]$/.test(e.key)) {
        e.preventDefault();
        id += 1;
        const points = shownPoints(gd);
        last = signature(points, gd);
        model.send({ event: 'assign', cluster: Number(e.key), id, page, points, metas: metas(gd) });
      }
    };
    view.addEventListener('pointerdown', guard, true);
    view.addEventListener('keydown', guard, true);
    document.addEventListener('keydown', escape);
    document.addEventListener('keydown', keys);
    return () => {
      document.removeEventListener('keydown', keys);
      clearInterval(timer);
      if (gd && gd.removeListener) gd.removeListener('plotly_click', onClick);
      document.removeEventListener('pointerup', up, true);
      view.removeEventListener('pointerdown', guard, true);
      view.removeEventListener('keydown', guard, true);
      document.removeEventListener('keydown', escape);
    };
  }
}
"""


class SelectionBridge(anywidget.AnyWidget):
    """Put it in the same `.ss-scatter-box` container as the FigureWidget it watches.

    `on_change(rows)` gets the selected rows (over every trace, mapped by `trace_rows`, or by
    `rows_for(points)` where one point stands for several rows, e.g. a histogram bar) after each
    browser selection or deselection, and, with `follow_changes`, whenever the highlight changed
    otherwise. Without `follow_deselect` a deselect is not passed on (a plot whose highlight the kernel
    clears when another view selects: plotly.js reports that clearing as a deselect). `live` is True once a page has attached it to its plot; `shown` holds the rows the plot
    showed at the last guarded button press (None before any); `reported` the rows of the last report.

    `revision()` names the version of the traces' data (each trace's `meta`): a message about older
    data (the kernel has refiltered the points since) is dropped, since its indices mean other rows.
    `on_report(points)` hears every accepted report with the raw per-trace indices (see `mirror_selection`).

    Rows by id, not by index: a trace whose `customdata` holds its points' rows gets every selection, key
    and click as the rows the page's own trace names (what the analyst sees beside each point), never as
    positions looked up in the kernel's copy, which can differ from the page's (issue 22: after a cold load
    the page drew a figure state other than the kernel's, see GeneratorsView._redraw_stale_scatter). With `digest()` (`rows_digest` of each trace as
    the kernel holds it), the page's traces are checked on attach and after every redraw; when they still
    differ a second later, `on_stale()` is called (the view draws the scatter again). `on_click(row)`
    gets a clicked point's row (the page's plotly_click, read from its trace), with `clicks`.
    """

    _esm = BRIDGE_JS
    live = traitlets.Bool(False)
    answers_keys = traitlets.Bool(True).tag(sync=True)   # only one bridge per page answers the keyboard
    exclusive = traitlets.Bool(True).tag(sync=True)      # the figure's own selection events are switched off
    clicks = traitlets.Bool(False).tag(sync=True)        # the page reports clicks (with the clicked row)

    def __init__(self, trace_rows: Callable[[], list[np.ndarray]], on_change: Callable[[np.ndarray], None],
                 on_escape: Callable[[np.ndarray], None],
                 on_key: Callable[[str, np.ndarray, dict], None] | None = None, *,
                 rows_for: Callable[[list], np.ndarray] | None = None,
                 revision: Callable[[], str | None] = lambda: None, follow_changes: bool = True,
                 follow_deselect: bool = True, on_report: Callable[[list], None] | None = None,
                 digest: Callable[[], list[str | None]] | None = None, on_stale: Callable[[], None] | None = None,
                 on_click: Callable[[int], None] | None = None, **kwargs):
        super().__init__(answers_keys=on_key is not None, clicks=on_click is not None, **kwargs)
        self._digest, self._on_stale, self._on_click = digest, on_stale, on_click
        self.mismatches = 0   # reports whose rows differed from the kernel's (tests, debugging)
        self._on_key = on_key
        self._rows_for = rows_for
        self._revision = revision
        self._follow_changes = follow_changes
        self._follow_deselect = follow_deselect
        self._on_report = on_report
        self.reported: np.ndarray | None = None
        self._trace_rows = trace_rows
        self._on_change = on_change
        self._on_escape = on_escape
        self.shown: np.ndarray | None = None
        self._last_id: dict[str, int] = {}          # page view -> id of the last event applied
        self.events: list[tuple[str, int, int]] = []   # (event, id, n rows): what arrived, for debugging
        self.on_msg(self._on_message)

    def rows(self, points, ids=None) -> np.ndarray:
        """The selected rows of every trace together (a trace without selectedpoints has none). `ids`: per
        trace, the rows the page's trace names for those points (its customdata); they win over the indices,
        and only rows the trace holds now count (a row the kernel has filtered out since is not selected)."""
        if self._rows_for is not None:
            return np.unique(np.asarray(self._rows_for(points or []), dtype=np.int64))
        rows_of = self._trace_rows()
        chosen = []
        for trace, indices in enumerate(points or []):
            if indices and trace < len(rows_of):
                named = ids[trace] if isinstance(ids, list) and trace < len(ids) else None
                if isinstance(named, list) and len(named) == len(indices):
                    named = np.asarray([v for v in named if isinstance(v, int) and not isinstance(v, bool)],
                                       dtype=np.int64)
                    chosen.append(named[np.isin(named, rows_of[trace])])
                    continue
                indices = np.asarray(indices, dtype=np.int64)
                indices = indices[(indices >= 0) & (indices < len(rows_of[trace]))]
                chosen.append(rows_of[trace][indices])
        return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def _check_rows(self, event: str, digests) -> None:
        """Compare the rows the page's traces hold with the kernel's; ask again, then redraw."""
        if self._digest is None or not isinstance(digests, list):
            return
        expected = self._digest()
        if all(page == kernel for page, kernel in zip(digests, expected)) and len(digests) == len(expected):
            return
        self.mismatches += 1
        self.events.append((f"{event} (page holds other rows)", -1, -1))
        if event == "verify":
            if self._on_stale is not None:
                self._on_stale()
        else:
            self.send({"event": "verify"})   # an update on its way may not have landed yet

    def _on_message(self, widget, content, buffers) -> None:
        if not isinstance(content, dict) or "event" not in content:
            return
        event, event_id, page = content["event"], int(content.get("id", 0)), str(content.get("page", ""))
        self._check_rows(event, content.get("digests"))   # every report says which rows the page's traces hold
        if event in ("data", "verify"):
            return
        if event == "click":
            row = content.get("row")
            rows_of = self._trace_rows()
            curve = content.get("curve")
            if (self._on_click is not None and isinstance(row, int) and isinstance(curve, int)
                    and 0 <= curve < len(rows_of) and np.any(rows_of[curve] == row)):
                self._on_click(row)
            return
        revision = self._revision()
        metas = content.get("metas") or []
        if revision is not None and metas and any(meta not in (None, revision) for meta in metas):
            self.events.append((f"{event} (stale data)", event_id, -1))
            if event == "shown":
                self.shown = None     # the guarded action is refused: the page must report again
            return                    # the indices refer to the points before the last refilter
        rows = self.rows(content.get("points"), content.get("ids"))
        self.events.append((event, event_id, int(rows.size)))
        del self.events[:-200]
        if event_id <= self._last_id.get(page, 0):
            return                  # a late message from an older event never overrides a newer one
        self._last_id[page] = event_id
        if self._on_report is not None:
            self._on_report(content.get("points") or [])   # what the plot highlights now, per trace
        if event != "shown":
            self.reported = rows
        if event == "ready":
            self.live = True
            if self._follow_changes:
                self._on_change(rows)   # a (re)drawn plot starts from what it shows
        elif (event == "selected" or (event == "deselected" and self._follow_deselect)
              or (event == "changed" and self._follow_changes)):
            self._on_change(rows)
        elif event == "shown":
            self.shown = rows
        elif event == "escape":
            self._on_escape(rows)
        elif event in ("undo", "assign") and self._on_key is not None:
            self._on_key(event, rows, content)


def rows_digest(meta, rows) -> str:
    """What the page's `digests()` computes from a trace's meta and customdata (its rows, in order): equal
    strings mean the page's trace holds these rows in this order (a checksum, exact in JavaScript's doubles
    up to ~90 million points)."""
    rows = np.asarray(rows, dtype=np.int64)
    terms = ((np.arange(1, rows.size + 1, dtype=np.int64) * (rows + 1)) % 1_000_000_007)
    return f"{'' if meta is None else meta}/{rows.size}/{int(terms.sum() % 1_000_000_007)}"


def mirror_selection(figure, points) -> None:
    """Make the kernel's copy of `figure` hold the selectedpoints the page reported, without sending
    anything back. plotly.js never syncs a browser selection to plotly.py, and plotly.py drops an update
    that equals its own copy: without this, highlighting again what was highlighted before the analyst
    selected elsewhere would silently do nothing."""
    for index, indices in enumerate(points[:len(figure.data)]):
        value = None if indices is None else [int(i) for i in indices]
        if figure.data[index].selectedpoints != value:
            figure._perform_plotly_restyle({"selectedpoints": [value]}, [index])


def clear_outline(figure) -> None:
    """Remove the box or lasso outline from the page's plot. Sent even when plotly.py's copy holds no
    outline (the page does not always sync it back): plotly.js re-selects the points inside a remaining
    outline at every redraw, which would bring back a selection the analyst replaced elsewhere."""
    if figure.layout.selections:
        figure._perform_plotly_relayout({"selections": []})
    figure._send_relayout_msg({"selections": []})


def _no_echo(trait):
    return trait.tag(sync=True, echo_update=False, **custom_serializers)


class LocalFigureWidget(go.FigureWidget):
    """A FigureWidget drawn with `PLOT_CONFIG`: no "Share chart..." upload button, no plotly.com logo link.

    plotly.py has no public config for FigureWidget (plotly/plotly.py#1074): its front end passes the
    synced `_config` trait to Plotly.newPlot, and plotly.py fills it in the constructor. pyproject caps
    plotly to the releases checked, and tests/test_plotly_config.py fails when a release renames the
    trait or stops reading it. Every FigureWidget of the page is one of these.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # not `responsive`: the page's plots keep their size (a 1280 px page drew the scatter empty with it)
        self._config = {**(self._config or {}), **{k: v for k, v in PLOT_CONFIG.items() if k != "responsive"}}


class BridgedFigureWidget(LocalFigureWidget):
    """A FigureWidget for a plot whose selections come through a SelectionBridge.

    ipywidgets echoes every state update from the page back to it (at 50,000 points a box selection came
    back as 2 MB), and plotly.py answers a selection event by writing selectedpoints back, which redraws
    the plot once more. Neither is needed here: the page already shows its selection, and
    `mirror_selection` keeps the kernel's copy up to date.
    """

    _js2py_traceDeltas = _no_echo(traitlets.Dict(allow_none=True))
    _js2py_layoutDelta = _no_echo(traitlets.Dict(allow_none=True))
    _js2py_restyle = _no_echo(traitlets.Dict(allow_none=True))
    _js2py_relayout = _no_echo(traitlets.Dict(allow_none=True))
    _js2py_update = _no_echo(traitlets.Dict(allow_none=True))
    _js2py_pointsCallback = _no_echo(traitlets.Dict(allow_none=True))

    bridge: SelectionBridge | None = None   # set by the view; its selections count once it is live

    @traitlets.observe("_js2py_pointsCallback")
    def _handler_js2py_pointsCallback(self, change):
        data = change["new"]
        live = self.bridge is not None and self.bridge.live
        if live and data and data.get("event_type") in ("plotly_selected", "plotly_deselect"):
            self._js2py_pointsCallback = None   # the bridge reports selections; hover and click pass on
            return
        super()._handler_js2py_pointsCallback(change)
