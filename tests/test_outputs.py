"""Outputs never touch inputs (issue 23, item 1), and the one atomic-write helper.

Every refusal happens before anything is computed or created: the tests check the refused command
left every input byte-identical and created nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layout_factory import make_layout
from synthscope.cli import app
from synthscope.outputs import atomic_save, atomic_write_text, atomic_writer, output_problems

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with its sha256: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def st1(tmp_path):
    """A 2025 sub-task 1 test folder and dev folder, and a ground-truth file beside them."""
    test = make_layout(tmp_path, "2025-st1-test", n=6, name="test")
    dev = make_layout(tmp_path, "2025-st1-dev", n=6, name="dev")
    ids = sorted(p.stem for p in (test / "real_unknown").glob("*.png"))
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,used\n" + "\n".join(f"{i},{n % 2}" for n, i in enumerate(ids)))
    return tmp_path, test, dev, truth


def test_membership_refuses_to_write_its_run_over_a_data_image(st1):
    root, test, dev, _ = st1
    image = next((test / "real_unknown").glob("*.png"))
    before = _tree_digest(root)
    result = _invoke("membership", test, "--dev", dev, "--out", image)
    assert result.exit_code == 2
    assert "inside the data folder" in result.output and "--out" in result.output
    assert _tree_digest(root) == before


def test_membership_refuses_scores_over_the_truth_file(st1, tmp_path):
    root, test, dev, truth = st1
    before = _tree_digest(root)
    result = _invoke("membership", test, "--dev", dev, "--out", tmp_path / "out" / "run.csv",
                     "--scores", truth, "--truth", truth)
    assert result.exit_code == 2
    assert "--scores" in result.output and "the --truth file" in result.output
    assert _tree_digest(root) == before
    assert not (tmp_path / "out").exists()   # refused before check_output_file made the folder


def test_membership_refuses_one_file_for_two_outputs(st1, tmp_path):
    root, test, dev, _ = st1
    same = tmp_path / "elsewhere" / "same.csv"
    result = _invoke("membership", test, "--dev", dev, "--out", same, "--scores", same)
    assert result.exit_code == 2
    assert "--out and --scores name the same file" in result.output
    assert not same.parent.exists()


def test_a_hard_link_to_an_input_is_the_input(st1, tmp_path):
    root, test, dev, truth = st1
    link = tmp_path / "run-link.csv"
    os.link(truth, link)
    before = truth.read_bytes()
    result = _invoke("membership", test, "--dev", dev, "--out", link, "--truth", truth)
    assert result.exit_code == 2 and "the --truth file" in result.output
    assert truth.read_bytes() == before


def test_attribute_refuses_an_output_inside_the_dev_folder(tmp_path):
    test = make_layout(tmp_path, "2024-st2-test", n=6, name="test")
    dev = make_layout(tmp_path, "2024-st2-dev", n=6, name="dev")
    before = _tree_digest(tmp_path)
    result = _invoke("attribute", test, "--dev", dev, "--k", 3, "--out", dev / "model_1" / "run.csv")
    assert result.exit_code == 2
    assert "inside the data folder" in result.output and "(--dev)" in result.output
    assert _tree_digest(tmp_path) == before


def test_a_cache_dir_inside_the_data_folder_is_refused_before_it_is_made(tmp_path):
    test = make_layout(tmp_path, "2024-st2-test", n=4, name="test")
    before = _tree_digest(tmp_path)
    result = _invoke("embed", test, "--cache-dir", test / ".cache")
    assert result.exit_code == 2
    assert "--cache-dir" in result.output and "inside the data folder" in result.output
    assert _tree_digest(tmp_path) == before and not (test / ".cache").exists()


def test_the_dashboard_refuses_an_export_dir_inside_the_data(tmp_path):
    bench = make_layout(tmp_path, "2024-st2-test", n=4, name="bench")
    result = _invoke("dashboard", bench, "--export-dir", bench / "exports")
    assert result.exit_code == 2
    assert "--export-dir" in result.output and "inside the data folder" in result.output
    assert not (bench / "exports").exists()


def test_a_manifest_protects_the_images_it_lists(tmp_path):
    """A manifest's images can live anywhere: an output among them, or beside them, is refused."""
    source = make_layout(tmp_path, "2025-st1-test", n=4, name="scattered")
    images = sorted((source / "real_unknown").glob("*.png"))
    generated = sorted((source / "generated").glob("*.png"))
    manifest = tmp_path / "work" / "manifest.csv"
    manifest.parent.mkdir()
    rows = [f"{p},real,unknown" for p in images] + [f"{p},generated," for p in generated]
    manifest.write_text("path,role,label\n" + "\n".join(rows))
    before = _tree_digest(source)
    result = _invoke("membership", manifest, "--manifest", manifest, "--out", images[0])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "data" in result.output
    assert _tree_digest(source) == before


def test_output_problems_lists_every_conflict(tmp_path):
    data, truth = tmp_path / "data", tmp_path / "truth.csv"
    problems = output_problems({"--out": data / "sub" / "run.csv", "--scores": truth},
                               input_files={"--truth": truth}, data_folders={"PATH": data},
                               output_folders={"--export-dir": data / "exports", "cache": tmp_path / "cache"})
    assert len(problems) == 3
    assert any("--out" in p and "inside the data folder" in p for p in problems)
    assert any("--scores" in p and "the --truth file" in p for p in problems)
    assert any("--export-dir" in p for p in problems)
    # a data folder inside a written folder is fine (the demo lives in the cache)
    assert output_problems({}, data_folders={"PATH": tmp_path / "cache" / "demo"},
                           output_folders={"cache": tmp_path / "cache"}) == []
    # a sibling whose name starts like the data folder is not inside it
    assert output_problems({"--out": tmp_path / "data-runs" / "run.csv"}, data_folders={"PATH": data}) == []


def test_atomic_writer_keeps_the_old_file_when_writing_fails(tmp_path):
    target = atomic_write_text(tmp_path / "run.csv", "old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as stream:
            stream.write("half a fi")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]   # no temporary file left


def test_atomic_files_get_the_mode_of_any_new_file(tmp_path):
    previous = os.umask(0o022)
    try:
        text = atomic_write_text(tmp_path / "a.csv", "x")
        binary = atomic_save(tmp_path / "b.npy", lambda stream: stream.write(b"\x93NUMPY"))
    finally:
        os.umask(previous)
    assert oct(text.stat().st_mode & 0o777) == oct(0o644)
    assert oct(binary.stat().st_mode & 0o777) == oct(0o644)   # not mkstemp's 0600
