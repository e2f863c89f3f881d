"""Where this process runs: the cache directory, the compute device and how many threads torch uses.

One leaf module (it imports nothing else from synthscope), so the cache, the extractors and the lab
share one rule each without importing one another.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "SYNTHSCOPE_CACHE_DIR"
DEVICES = ("auto", "cpu", "cuda")


class DeviceUnavailable(ValueError):
    """The device asked for does not exist here (e.g. cuda without a GPU) or is not a device name."""


def default_cache_dir() -> Path:
    """$SYNTHSCOPE_CACHE_DIR when set, else the user cache dir (never inside a data folder)."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("synthscope", appauthor=False))


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; "cpu", "cuda" and "cuda:N" are checked."""
    import torch

    device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise DeviceUnavailable(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {device!r} was asked for but torch sees no CUDA GPU here")
    return device


def available_cpus() -> int:
    """The cores this process may run on, not the machine's count (containers often get fewer)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_threads() -> int:
    """Torch threads for CPU work: every available core, but one when the machine is already busy
    (with more runnable processes than cores, OpenMP threads mostly wait for each other: measured 10x
    slower here with 2 threads than with 1 under a load of 8 on 2 cores)."""
    cpus = available_cpus()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not available on this platform
        busy = 0.0
    return 1 if busy >= cpus else cpus


def cap_torch_threads() -> None:
    """Never more torch threads than available cores (inference; training uses `choose_threads`)."""
    import torch

    if torch.get_num_threads() > available_cpus():
        torch.set_num_threads(available_cpus())


#: below this many points, BLAS/OpenMP work runs on one thread: under load, 2 threads made PCA on 5k points
#: 100x slower here (0.75 s vs 0.007 s), and small inputs gain nothing from more
SINGLE_THREAD_BELOW = 50_000


def small_input_threads(n_points: int):
    """Context manager: one BLAS/OpenMP thread below `SINGLE_THREAD_BELOW` points, all threads above.
    Clustering, projections and the dashboard's PCA share this rule."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if n_points < SINGLE_THREAD_BELOW else None)
