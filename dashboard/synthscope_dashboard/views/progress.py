"""The first load and `prepare` made visible: the core's progress events (synthscope.progress) as a widget.

Voila shows a cell's widgets only once every cell has run, so a page whose cell loads the data shows only
"Running…" until it is done. `start_page` therefore returns at once with a `ProgressPanel` and loads on a
worker thread; every progress event and the finished dashboard are handed to the kernel's event loop
(`call_soon_threadsafe`), so widgets are only ever created or changed on the kernel's own thread while the
browser already shows the panel. Without a running event loop (plain Python, tests) they run directly.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from typing import Callable

import ipywidgets as widgets

from synthscope.progress import ProgressEvent, format_seconds
from synthscope_dashboard.views.common import esc


class ProgressPanel(widgets.VBox):
    """A bar, the current step with its ETA, and the finished steps with their times: a callable(ProgressEvent)."""

    def __init__(self, title: str):
        self.title = widgets.HTML(f"<div class='ss-progress-title'><b>{esc(title)}</b></div>")
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="420px"))
        self.line = widgets.HTML("<div class='ss-progress-line'>starting…</div>")
        self.done_steps = widgets.HTML()
        self.events: list[ProgressEvent] = []
        self._finished: list[tuple[str, float]] = []   # (step, seconds it took)
        self._step_started: dict[str, float] = {}
        super().__init__([self.title, widgets.HBox([self.bar]), self.line, self.done_steps])
        self.add_class("ss-progress")

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self.bar.value = float(event.fraction)
        self.line.value = f"<div class='ss-progress-line'>{esc(event.describe())}</div>"
        self._step_started.setdefault(event.step, event.elapsed_s)
        if (not event.finished and event.total and event.done >= event.total
                and event.step not in dict(self._finished)):
            self._finished.append((event.step, event.elapsed_s - self._step_started[event.step]))
            lines = [f"✓ {esc(step)} ({format_seconds(seconds)})" for step, seconds in self._finished[-8:]]
            self.done_steps.value = "<div class='ss-progress-done'>" + "<br>".join(lines) + "</div>"

    def say(self, message: str) -> None:
        self.line.value = f"<div class='ss-progress-line'>{esc(message)}</div>"


def _kernel_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def in_background(work: Callable[[Callable[[ProgressEvent], None]], object], panel: ProgressPanel,
                  done: Callable[[object, BaseException | None], None], name: str = "synthscope-work") -> threading.Thread:
    """Run `work(progress)` on a thread; `progress` events reach `panel`, and `done(result, error)` runs, on
    the kernel's event loop (the calling thread's), or directly when there is none."""
    loop = _kernel_loop()

    def post(function, *args) -> None:
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(function, *args)
        else:
            function(*args)

    def run() -> None:
        try:
            result, error = work(lambda event: post(panel, event)), None
        except BaseException as caught:   # said in the page, never lost in a thread
            result, error = None, caught
            # the traceback goes to the server's log (the kernel's own stderr), never into the page
            print(traceback.format_exc(), file=sys.__stderr__, flush=True)
        post(done, result, error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def start_page(build: Callable[..., widgets.Widget], load: Callable[..., object], path: str | None,
               **options) -> widgets.VBox:
    """The notebook's page: a progress panel at once; the dashboard (or what went wrong) when `load(progress)`
    -- the slow part of `build`, returning its keyword arguments -- has run on a worker thread."""
    panel = ProgressPanel(f"Loading {path or 'the data'}: the first load embeds the images and scores them "
                          "(later loads read the cache)")
    page = widgets.VBox([panel])
    page.add_class("ss-page")

    def finish(loaded, error) -> None:
        from synthscope_dashboard.views.common import STYLE, banner

        if error is not None:
            page.children = [widgets.HTML(STYLE + banner(
                f"<b>Could not open {esc(path)}</b><br>{esc(type(error).__name__)}: {esc(error)}<br>"
                "The traceback is in the log of the terminal that runs <code>synthscope dashboard</code>.", "bad"))]
        else:
            page.children = [build(**loaded)]

    page.loading = in_background(lambda progress: load(progress), panel, finish, name="synthscope-load")
    page.panel = panel
    return page
