"""Fixtures shared by every test module."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SYNTHSCOPE_SHARED_DIR", REPO_ROOT.parent / "shared"))


def pytest_configure(config):
    """`make test` starts the browser pass in the background of its shell, and a shell starts a background
    command with SIGINT ignored: Ctrl-C would stop the other pass and leave this one and its Voila servers
    running. Take SIGINT back, so Ctrl-C stops it as it stops a run in the foreground (fixtures stop servers)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (benchmark data); tests that need it skip with the reason when it is absent."""
    if not (SHARED_DIR / "bench" / "v1").is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DIR} (set SYNTHSCOPE_SHARED_DIR); users won't have it")
    return SHARED_DIR


@pytest.fixture(scope="session")
def iqoth_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "iqoth256"
    if not path.is_dir():
        pytest.skip(f"real CT pool not found at {path}")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread while a module trains generators: two cores shared by several processes, and
    OpenMP threads would wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own cache dir so tests never touch the user's cache or each other."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(cache))
    return cache


#: a folder that several pytest runs started together share their built-once folders in (`make test` sets it
#: for its two passes, which run at the same time); without it, each run builds its own in its base temp dir
BUILT_ONCE_ENV = "SYNTHSCOPE_TEST_BUILT_ONCE"


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `name`, made by `build(folder)` once per test run and shared by every module and every
    xdist worker of the run (they share the parent of their base temp dirs), and by the other runs that
    $SYNTHSCOPE_TEST_BUILT_ONCE names the same folder for; a file lock makes the others wait for the first.
    Shared folders are inputs: tests only read them (or copy from them)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    if os.environ.get(BUILT_ONCE_ENV):
        root = Path(os.environ[BUILT_ONCE_ENV])
    folder = root / "built-once" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder.parent / f"{name}.done").exists():
            shutil.rmtree(folder, ignore_errors=True)   # a build that failed half way
            build(folder)
            (folder.parent / f"{name}.done").touch()
    return folder


@pytest.fixture(scope="session")
def built_once(tmp_path_factory) -> Callable[[str, Callable[[Path], object]], Path]:
    """build_once for this run: built_once(name, build) -> the shared folder."""
    return lambda name, build: build_once(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def quick_demo_root(built_once) -> Path:
    """The quick demo (build_demo(quick=True) on the CPU), built once per run into a tmp dir (not the user's
    cache) and only read: the notebooks run on it and the first-run tests load it cold into caches of their
    own. (test_demo builds its own: its tests rebuild and force-rebuild the demo they are given.)"""
    from synthscope.demo import build_demo

    def build(folder: Path) -> None:
        build_demo(out_dir=folder / "demo", quick=True, device="cpu")

    return built_once("quick_demo", build) / "demo"


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory) -> Path:
    """test_dashboard_state.make_bench(n=12), built once per run and shared read-only: the browser
    modules' Voila servers and the report tests serve or read it (sessions and exports go to their own
    cache and export dirs; the session file is keyed by path, and each server has its own cache)."""
    from test_dashboard_state import make_bench

    return build_once(tmp_path_factory, "small_bench", lambda folder: make_bench(folder, n=12))


# ------------------------------------------------------------------------------------------------
# Scheduling for `pytest -n N --dist loadfile` (make test): longest work first, and the few long
# independent tests of one file spread over the workers.
#
# loadfile sends whole files to workers in collection order (xdist would sort them by test count,
# which says little about time here), so a long file that starts last keeps one worker busy while
# the other idles. Files are ordered by the seconds they took (`--durations`, setup included, quiet
# machine); files not listed come after, in the usual order. SPLIT_FILES are files whose tests share
# no costly module fixture: each test is a work unit of its own.

#: seconds per file, measured with --durations on a quiet 2-core machine; rough, only the order matters
FILE_SECONDS: dict[str, float] = {
    "test_benchmark_scale.py": 180, "test_notebooks.py": 130, "test_parity.py": 110, "test_demo.py": 100,
    "test_generator_view.py": 90, "test_dashboard_state.py": 80, "test_bench_scale_audit.py": 70,
    "test_dashboard_trust.py": 70, "test_engine.py": 60, "test_membership.py": 45, "test_membership_transfer.py": 40,
}
#: files whose long tests share no costly module fixture: scheduled test by test
SPLIT_FILES: frozenset[str] = frozenset({"test_notebooks.py", "test_benchmark_scale.py", "test_parity.py"})


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def pytest_collection_modifyitems(config, items):
    """On xdist workers: longest files first (a stable sort: tests keep their order within a file, files
    stay whole). A run without -n keeps the usual file order."""
    if not hasattr(config, "workerinput"):
        return
    items.sort(key=lambda item: -FILE_SECONDS.get(_file_of(item.nodeid), 0.0))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile with SPLIT_FILES split per test and the collection order kept (longest first)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirstFileScheduling(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False   # keep the collection order: longest files first

        def _split_scope(self, nodeid: str) -> str:
            return nodeid if _file_of(nodeid) in SPLIT_FILES else super()._split_scope(nodeid)

    return LongestFirstFileScheduling(config, log)


@pytest.fixture(scope="session")
def small_bench_cache(small_bench, built_once) -> Path:
    """A cache dir filled by one load_workspace(small_bench) per run (embeddings, membership runs), to be
    copied (never written to): modules that load small_bench, and the Voila servers of the browser modules
    that serve small_bench (voila_server's cache_from), then read instead of computing (~36 CPU s each).
    The 2025 module's server still starts cold: started on a copy of its own module's load cache, it did not
    draw that tab's bar chart within 60 s in two runs (without it, it did); not understood yet."""
    def load(folder: Path) -> None:
        from synthscope_dashboard.workspace import load_workspace

        load_workspace(small_bench, cache_dir=folder)

    return built_once("small_bench-cache", load)
