"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

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
