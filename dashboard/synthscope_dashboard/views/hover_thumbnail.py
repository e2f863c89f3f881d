"""The hovered image beside the cursor, on the plotly scatter (issue 22 item 6).

`HoverThumbnail` sits in the same `.ss-scatter-box` as the FigureWidget it watches. In the page it
listens to the plot's public `plotly_hover` / `plotly_unhover` events and shows a small floating box
(`.ss-hover-thumb`: a 96 px WebP and a caption) beside the cursor. It asks the kernel for a point's
thumbnail with a custom message (custom messages go out at once and are never merged with the figure's
own hover and click messages, so hovering cannot replace a click or a selection) and keeps the answer:
hovering back shows it without asking again. The box takes no pointer events, so clicks, boxes and
lassos reach the plot under it.

Captions name the cluster: `version` grows whenever clusters change (a move, merge, split, rename,
undo), which drops the page's captions, and the shown caption is asked for again. Images are kept per
(trace version, point): a refilter gives the points a new trace `meta`, so a kept image never shows
for another row. `data-latency-ms` on the box: milliseconds from the hover event to the image shown.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import anywidget
import traitlets

HOVER_JS = r"""
function plotOf(el) {
  const box = el.closest('.ss-scatter-box');
  return box ? box.querySelector('.js-plotly-plot') : null;
}
export default {
  render({ model, el }) {
    const box = document.createElement('div');
    box.className = 'ss-hover-thumb';
    box.style.cssText = 'position:fixed;display:none;z-index:10000;pointer-events:none;background:white;' +
      'border:1px solid #9aa3b5;border-radius:4px;padding:3px;box-shadow:0 2px 8px rgba(0,0,0,.25);' +
      'font:11px/1.3 sans-serif;max-width:' + (model.get('px') + 120) + 'px';
    const img = document.createElement('img');
    img.width = img.height = model.get('px');
    img.style.cssText = 'display:block;background:#eee';
    const caption = document.createElement('div');
    caption.className = 'ss-hover-caption';
    box.append(img, caption);
    document.body.appendChild(box);
    const images = new Map(), captions = new Map();   // key -> data URL; key -> caption HTML (this version)
    let gd = null, current = null, since = 0, x = 0, y = 0, id = 0;
    const place = () => {
      // above the cursor (plotly's own label opens to the point's left or right), below where there is no room
      const w = box.offsetWidth, h = box.offsetHeight, gap = 14;
      const left = Math.max(4, Math.min(x - w / 2, window.innerWidth - w - 4));
      const top = y - h - gap >= 4 ? y - h - gap : Math.min(y + gap, window.innerHeight - h - 4);
      box.style.left = left + 'px'; box.style.top = top + 'px';
    };
    const show = () => {
      const url = images.get(current), text = captions.get(current);
      if (url === undefined) { box.style.display = 'none'; return; }
      if (img.getAttribute('src') !== url) img.src = url;
      img.dataset.key = current;
      caption.innerHTML = text === undefined ? '' : text;
      box.style.display = 'block';
      if (since) { box.dataset.latencyMs = (performance.now() - since).toFixed(1); since = 0; }
      place();
    };
    const hide = () => { current = null; box.style.display = 'none'; };
    const rowOf = (curve, point) => {   // the row the page's own trace names for the point (its customdata)
      const t = gd && gd.data ? gd.data[curve] : null;
      return t && t.customdata && t.customdata.length !== undefined && point < t.customdata.length
        ? Number(t.customdata[point]) : null;
    };
    const ask = (key, curve, point, meta) => {
      id += 1;
      model.send({ event: 'hover', id, key, curve, point, meta, row: rowOf(curve, point), image: !images.has(key) });
    };
    const onHover = (data) => {
      const p = data && data.points && data.points[0];
      if (!p || !gd.offsetParent) return;
      if (data.event && data.event.clientX !== undefined) { x = data.event.clientX; y = data.event.clientY; }
      const trace = gd.data[p.curveNumber] || {};
      const meta = trace.meta === undefined || trace.meta === null ? '' : String(trace.meta);
      const key = meta + '|' + p.curveNumber + ':' + p.pointNumber;
      current = key; since = performance.now();
      box.dataset.key = key;
      if (images.has(key)) show(); else box.style.display = 'none';
      if (!images.has(key) || !captions.has(key)) ask(key, p.curveNumber, p.pointNumber, meta);
    };
    const onMove = (e) => { x = e.clientX; y = e.clientY; if (current && box.style.display === 'block') place(); };
    const attach = () => {
      const plot = plotOf(el);
      if (!plot || !plot.on || plot === gd) return;
      gd = plot;
      gd.on('plotly_hover', onHover);
      gd.on('plotly_unhover', hide);
      gd.addEventListener('pointermove', onMove, true);
      gd.addEventListener('pointerdown', hide, true);   // a drag (box, lasso) or a click: the image steps aside
      gd.addEventListener('pointerleave', hide);
    };
    attach();
    const timer = setInterval(() => { attach(); if (current && gd && !gd.offsetParent) hide(); }, 400);
    model.on('msg:custom', (msg) => {
      if (!msg || msg.key === undefined) return;
      if (msg.url) images.set(msg.key, msg.url);
      if (msg.caption !== undefined) captions.set(msg.key, msg.caption);
      if (msg.key === current) show();
    });
    model.on('change:version', () => {
      captions.clear();
      if (current) { const [meta, rest] = current.split('|'); const [c, p] = rest.split(':');
        ask(current, Number(c), Number(p), meta); }
    });
    window.addEventListener('scroll', hide, true);
    return () => {
      clearInterval(timer);
      window.removeEventListener('scroll', hide, true);
      if (gd) {
        gd.removeEventListener('pointermove', onMove, true);
        gd.removeEventListener('pointerdown', hide, true);
        gd.removeEventListener('pointerleave', hide);
        if (gd.removeListener) { gd.removeListener('plotly_hover', onHover); gd.removeListener('plotly_unhover', hide); }
      }
      box.remove();
    };
  }
}
"""


class HoverThumbnail(anywidget.AnyWidget):
    """`row_of(curve, point, meta, row)` -> the row under the cursor: `row`, the one the page's trace names
    (its customdata; None without), when the traces still hold it, else None; without `row`, by index, None
    when `meta` is not the traces' current version (the page hovered points that have since been refiltered); `thumbnail(row)` -> its
    data URL (kept here, LRU of `keep`); `caption(row)` -> HTML. `changed()` after clusters change
    (captions), `forget()` after other data (images)."""

    _esm = HOVER_JS
    px = traitlets.Int(96).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)

    def __init__(self, row_of: Callable[[int, int, str, int | None], int | None], thumbnail: Callable[[int], str],
                 caption: Callable[[int], str], keep: int = 4096, **kwargs):
        super().__init__(**kwargs)
        self._row_of, self._thumbnail, self._caption, self._keep = row_of, thumbnail, caption, keep
        self._urls: collections.OrderedDict[int, str] = collections.OrderedDict()
        self.answered = 0   # hover requests answered (tests, debugging)
        self.on_msg(self._on_message)

    def changed(self) -> None:
        self.version += 1

    def forget(self) -> None:
        self._urls.clear()
        self.version += 1

    def url(self, row: int) -> str:
        url = self._urls.get(row)
        if url is None:
            url = self._urls[row] = self._thumbnail(row)
            while len(self._urls) > self._keep:
                self._urls.popitem(last=False)
        else:
            self._urls.move_to_end(row)
        return url

    def answer(self, content: dict) -> dict | None:
        """The reply to one hover message (None: stale or not a point)."""
        try:
            curve, point, meta = int(content["curve"]), int(content["point"]), str(content.get("meta", ""))
        except (KeyError, TypeError, ValueError):
            return None
        named = content.get("row")
        row = self._row_of(curve, point, meta, named if isinstance(named, int) and not isinstance(named, bool) else None)
        if row is None:
            return None
        reply = {"key": content.get("key"), "caption": self._caption(row)}
        if content.get("image", True):
            reply["url"] = self.url(row)
        return reply

    def _on_message(self, widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("event") != "hover":
            return
        reply = self.answer(content)
        if reply is not None:
            self.answered += 1
            self.send(reply)
