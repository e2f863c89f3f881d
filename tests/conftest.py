"""Fixtures shared by every test module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SYNTHSCOPE_SHARED_DIR", REPO_ROOT.parent / "shared"))


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


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `name`, made by `build(folder)` once per test run and shared by every module and every
    xdist worker of the run (they share the parent of their base temp dirs); a file lock makes the others
    wait for the first. Shared folders are inputs: tests only read them (or copy from them)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
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
def small_bench(tmp_path_factory) -> Path:
    """test_dashboard_state.make_bench(n=12), built once per run and shared read-only: the browser
    modules' Voila servers and the report tests serve or read it (sessions and exports go to their own
    cache and export dirs; the session file is keyed by path, and each server has its own cache)."""
    from test_dashboard_state import make_bench

    return build_once(tmp_path_factory, "small_bench", lambda folder: make_bench(folder, n=12))


@pytest.fixture(scope="session")
def small_bench_cache(small_bench, built_once) -> Path:
    """A cache dir filled by one load_workspace(small_bench) per run (embeddings, membership runs), to be
    copied (never written to): servers and modules that load small_bench then read instead of computing."""
    def load(folder: Path) -> None:
        from synthscope_dashboard.workspace import load_workspace

        load_workspace(small_bench, cache_dir=folder)

    return built_once("small_bench-cache", load)
