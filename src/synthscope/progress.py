"""Progress of a long run (the dashboard's first load, `synthscope prepare`) as plain events with an ETA.

A `ProgressTracker` holds a plan -- one step per data set and extractor (embedding), per layout, per
membership group -- each with an estimated cost, and calls `callback(ProgressEvent)` as the steps advance.
The ETA is the plan's remaining estimated cost times the pace measured so far (seconds per unit of
estimated cost), so it follows the machine's real speed. The core knows nothing of widgets: the
dashboard turns the events into a progress bar, the CLI into lines of text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

#: rough CPU seconds per image (or per real image scored) used only to weigh the steps against each other;
#: measured on the demo (cold cache, one core): the ETA's absolute scale comes from the measured pace
COST_PER_IMAGE = {"fingerprint": 0.018, "pixels": 0.003, "pixels-norm": 0.003, "pixels-128": 0.003,
                  "pixels-lung": 0.003, "lbp": 0.01, "score": 0.12, "project": 0.002}
DEFAULT_COST = 0.02


def cost_per_image(kind: str) -> float:
    return COST_PER_IMAGE.get(kind, DEFAULT_COST)


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands: the current step (its number in the plan, units done of its total) and the plan."""
    step: str                 # e.g. "embed fingerprint · subtask2/test"
    index: int                # 1-based number of the step in the plan (0 before the first)
    n_steps: int
    done: int                 # units of this step done
    total: int                # units of this step (images to compute; 0 when all are cached)
    unit: str
    elapsed_s: float          # since the tracker started
    eta_s: float | None       # seconds left for the whole plan at the pace so far; None until a pace is known
    fraction: float           # share of the plan's estimated cost done, 0..1
    finished: bool = False    # the whole plan is done

    def describe(self) -> str:
        """One line for a status bar or a log."""
        if self.finished:
            return f"done in {format_seconds(self.elapsed_s)}"
        count = f": {self.done:,} / {self.total:,} {self.unit}" if self.total else ""
        eta = (f" · about {format_seconds(self.eta_s)} left" if self.eta_s is not None
               else " · estimating the time left…")
        return (f"step {self.index} of {self.n_steps} · {self.step}{count} · {100 * self.fraction:.0f}%{eta}")


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass
class _Step:
    key: str
    label: str
    units: int
    unit: str
    cost: float
    done: int = 0
    finished: bool = False


class ProgressTracker:
    """Planned steps, advanced by `step(key)` (a callable(done, total) the embed functions accept), reported to
    `callback(ProgressEvent)` at each step's start and end and at most every `min_interval_s` in between.

    `clock` is injectable (tests use a fake one). A step that was not planned is added when it starts.
    """

    def __init__(self, callback: Callable[[ProgressEvent], None] | None, *, min_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.perf_counter):
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.steps: dict[str, _Step] = {}
        self.start = clock()
        self.current: _Step | None = None
        self._last_sent = -float("inf")

    # ---------------------------------------------------------------- the plan
    def plan(self, key: str, label: str, units: int, *, unit: str = "images", cost_per_unit: float = DEFAULT_COST,
             fixed_cost: float = 0.0) -> None:
        """Add a step: `units` of work at `cost_per_unit` estimated seconds each (plus `fixed_cost`)."""
        if key not in self.steps:
            self.steps[key] = _Step(key, label, int(units), unit, max(0.0, units * cost_per_unit + fixed_cost))

    def step(self, key: str, label: str | None = None, *, unit: str = "images") -> "StepProgress":
        """Start step `key` (adding it when unplanned); the returned callable(done, total) advances it."""
        if key not in self.steps:
            self.plan(key, label or key, 0, unit=unit)
        step = self.steps[key]
        if self.current is not None and self.current is not step and not self.current.finished:
            self._finish(self.current, report=False)
        self.current = step
        self._emit(force=True)
        return StepProgress(self, step)

    def skip(self, key: str) -> None:
        """A planned step turned out to have nothing to do (found cached): it no longer weighs in the ETA."""
        if key in self.steps:
            self.steps[key].cost, self.steps[key].finished = 0.0, True

    def finish(self) -> ProgressEvent:
        """The whole plan is done (steps not run, e.g. found cached, count as done)."""
        for step in self.steps.values():
            step.finished = True
        event = self.event(finished=True)
        if self.callback is not None:
            self.callback(event)
        return event

    # ---------------------------------------------------------------- reading it
    def _done_cost(self) -> float:
        done = 0.0
        for step in self.steps.values():
            if step.finished:
                done += step.cost
            elif step.units:
                done += step.cost * min(step.done, step.units) / step.units
        return done

    def event(self, finished: bool = False) -> ProgressEvent:
        total_cost = sum(step.cost for step in self.steps.values())
        done_cost = self._done_cost()
        elapsed = self.clock() - self.start
        fraction = 1.0 if finished or total_cost <= 0 else min(1.0, done_cost / total_cost)
        eta = None
        if finished:
            eta = 0.0
        elif done_cost > 0 and elapsed > 0:
            eta = (total_cost - done_cost) * elapsed / done_cost
        keys = list(self.steps)
        step = self.current
        return ProgressEvent(step=step.label if step else "starting", index=keys.index(step.key) + 1 if step else 0,
                             n_steps=len(keys), done=step.done if step else 0, total=step.units if step else 0,
                             unit=step.unit if step else "", elapsed_s=elapsed, eta_s=eta, fraction=fraction,
                             finished=finished)

    def _emit(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = self.clock()
        if not force and now - self._last_sent < self.min_interval_s:
            return
        self._last_sent = now
        self.callback(self.event())

    def _finish(self, step: _Step, report: bool = True) -> None:
        step.finished = True
        step.done = step.units
        if report:
            self._emit(force=True)


class StepProgress:
    """callable(done, total) for one step (the `progress` the core's embed functions take), and a context
    manager that marks the step finished on exit."""

    def __init__(self, tracker: ProgressTracker, step: _Step):
        self.tracker, self.step = tracker, step

    def __call__(self, done: int, total: int | None = None) -> None:
        step = self.step
        if total is not None and total != step.units:
            # the plan guessed another amount of work (e.g. fewer images left to compute): rescale its cost
            per_unit = step.cost / step.units if step.units else DEFAULT_COST
            step.units, step.cost = int(total), per_unit * int(total)
        step.done = int(done)
        self.tracker._emit(force=step.done >= step.units)

    def __enter__(self) -> "StepProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.tracker._finish(self.step)


def as_tracker(progress) -> ProgressTracker | None:
    """A tracker from what callers pass as `progress`: a tracker, a callable(ProgressEvent), or nothing."""
    if progress is None or progress is False or progress is True:
        return None
    if isinstance(progress, ProgressTracker):
        return progress
    return ProgressTracker(progress)
