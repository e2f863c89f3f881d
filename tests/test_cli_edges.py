"""The command line at its edges: outputs checked before computing, and clear one-line errors.

The tests run as root here, where a chmod-read-only folder is still writable, so unwritable places
are made real: a path under a regular file (`file.txt/sub`), and /sys, which refuses new files even
to root. The checks try to create a file, so they hold for root and for everyone else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layout_factory import make_layout
from synthscope.cli import app

runner = CliRunner()


@pytest.fixture
def st2_test(tmp_path) -> Path:
    return make_layout(tmp_path, "2024-st2-test", n=3)   # 6 generated images


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "file.txt"
    path.write_text("not a folder")
    return path


def _one_clear_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception   # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "embed pixels" not in result.output, "it computed before failing"


def _read_only_place() -> Path:
    probe = Path("/sys/synthscope-write-check")
    try:
        probe.mkdir()
    except OSError:
        return probe
    probe.rmdir()
    pytest.skip("/sys accepts new folders here, so there is no folder that refuses root")


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "read_only"])
def test_embed_checks_the_cache_dir_before_computing(st2_test, a_file, where):
    cache_dir = {"under_a_file": a_file / "sub", "a_file": a_file}.get(where) or _read_only_place()
    result = runner.invoke(app, ["embed", str(st2_test), "-e", "pixels", "--cache-dir", str(cache_dir)])
    _one_clear_error(result, "--cache-dir", str(cache_dir))
    assert ("cannot write there" if where == "read_only" else "is a file, not a folder") in result.output


def test_the_environment_cache_dir_is_checked_too(st2_test, a_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(a_file / "cache"))
    result = runner.invoke(app, ["attribute", str(st2_test), "--k", "2", "-e", "pixels", "--out", str(tmp_path / "r.csv")])
    _one_clear_error(result, "SYNTHSCOPE_CACHE_DIR", "is a file, not a folder")
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("where", ["folder", "under_a_file", "read_only"])
def test_attribute_checks_out_before_computing(st2_test, a_file, tmp_path, where):
    out = {"folder": tmp_path, "under_a_file": a_file / "runs" / "run.csv"}.get(where) or _read_only_place() / "run.csv"
    result = runner.invoke(app, ["attribute", str(st2_test), "--k", "2", "-e", "pixels", "--out", str(out)])
    _one_clear_error(result, "--out", str(out))
    expected = {"folder": "is a folder; give the file to write", "under_a_file": "is a file, not a folder",
                "read_only": "cannot write there"}[where]
    assert expected in result.output


def test_lab_and_demo_check_out_before_training(tmp_path, a_file):
    (tmp_path / "real").mkdir()   # beside --out: an --out inside REAL_DIR is refused for that reason first
    result = runner.invoke(app, ["lab", str(tmp_path / "real"), "--out", str(a_file / "bench")])
    _one_clear_error(result, "--out", "is a file, not a folder")
    result = runner.invoke(app, ["demo", "--quick", "--no-prepare", "--out", str(a_file)])
    _one_clear_error(result, "--out", "is a file, not a folder")


def test_a_good_out_still_works_and_the_check_leaves_nothing_behind(st2_test, tmp_path):
    out = tmp_path / "new" / "run.csv"
    result = runner.invoke(app, ["attribute", str(st2_test), "--k", "2", "-e", "pixels", "--method", "kmeans", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["run.csv"]


@pytest.mark.parametrize("k, message", [
    ("1", "--k 1: one cluster holds every image, so there is nothing to attribute"),
    ("6", "--k 6 with 6 generated images"),
    ("9", "k must be smaller than the number of images (2..5 here)"),
])
def test_attribute_k_messages(st2_test, tmp_path, k, message):
    result = runner.invoke(app, ["attribute", str(st2_test), "--k", k, "-e", "pixels", "--out", str(tmp_path / "r.csv")])
    _one_clear_error(result, message)


@pytest.mark.parametrize("option, message", [
    ("size=abc", "extractor 'pixels': option size='abc' must be an integer (default 64)"),
    ("sise=32", "extractor 'pixels' has no option 'sise'; its options: size, mask"),
    ("mask=7", "option mask=7 must be text"),
])
def test_embed_option_errors_name_the_option(st2_test, option, message):
    result = runner.invoke(app, ["embed", str(st2_test), "-e", "pixels", "-o", option])
    _one_clear_error(result, message)


def test_integral_options_still_work(st2_test):
    result = runner.invoke(app, ["embed", str(st2_test), "-e", "pixels", "-o", "size=16.0"])
    assert result.exit_code == 0, result.output
    assert "6 images x 256 dims" in result.output


def test_root_sees_chmod_read_only_as_writable_so_the_check_really_writes(tmp_path):
    """Why the tests above use /sys and file.txt/sub: as root, os.access says yes to a 0500 folder."""
    from synthscope.commands._common import _write_problem

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.geteuid() == 0:
            assert _write_problem(folder) is None   # root may write there, and the check says so
        else:
            assert "cannot write there" in _write_problem(folder)
    finally:
        folder.chmod(0o700)
