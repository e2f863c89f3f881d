"""What every benchmark section receives and returns."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
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


def measure_in_subprocess(module: str, name: str, timeout: float = 3600, **kwargs) -> dict:
    """`python -m module name JSON` in a fresh interpreter (its own peak RSS; wall time around it): the module's
    measurement `name` with `kwargs`, read back from the last line it prints (one JSON object)."""
    print(f"[bench]   {name} {kwargs}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, name, json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ})
    if done.returncode != 0:
        return {**kwargs, "error": (done.stderr or done.stdout).strip().splitlines()[-1:], "process_s": 0.0}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    print(f"[bench]     -> {json.dumps(result, default=str)[:400]}", flush=True)
    return result


def print_measurement(measurements: dict[str, Callable[..., dict]], argv: list[str]) -> int:
    """The other side of `measure_in_subprocess`: run measurement argv[0] with the JSON kwargs argv[1], print it."""
    import numpy as np

    name, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    result = measurements[name](**kwargs)
    print(json.dumps(result, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    return 0


def format_mb(value: float) -> str:
    """A size in MiB as the reports write it (GiB from 1,024 MiB)."""
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
