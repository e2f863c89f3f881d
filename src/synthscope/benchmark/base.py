"""What every benchmark section receives and returns."""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class BenchContext:
    shared_dir: Path | None      # ../shared, or None when absent (quality sections then skip)
    cache_dir: Path              # an isolated cache for the run
    out_dir: Path                # where report.md / report.json go
    quick: bool = False          # smaller sizes for a smoke run
    device: str = "auto"


@dataclass
class BenchSection:
    title: str
    markdown: str                          # the section body for report.md (tables, notes)
    data: dict[str, Any] = field(default_factory=dict)   # the same numbers, for report.json
    skipped: str | None = None             # reason, when the section could not run


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def shared_bench_dir(ctx: BenchContext, *parts: str) -> Path | None:
    if ctx.shared_dir is None:
        return None
    path = ctx.shared_dir.joinpath("bench", *parts)
    return path if path.exists() else None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
