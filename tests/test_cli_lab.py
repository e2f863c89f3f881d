"""`synthscope lab` never writes into the real images it trains on, and refuses before it creates anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from layout_factory import synthetic_slice, write_png
from synthscope.cli import app

runner = CliRunner()


@pytest.fixture
def real_dir(tmp_path):
    folder = tmp_path / "real"
    for i in range(4):
        write_png(folder / f"slice_{i}.png", synthetic_slice(i))
    return folder


@pytest.fixture
def no_training(monkeypatch):
    """Training would take minutes; what is checked here happens before it."""
    import synthscope.lab as lab

    def build(*args, **kwargs):
        raise lab.LabError("training reached (the test stops here)")

    monkeypatch.setattr(lab, "build_benchmark", build)


def _listing(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("where", ["out", "nested/out", "."])
def test_lab_out_inside_the_real_images_is_refused_and_nothing_is_created(real_dir, no_training, where):
    before = _listing(real_dir)
    out = real_dir / where
    result = runner.invoke(app, ["lab", str(real_dir), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "is inside the data folder" in result.output and "REAL_DIR" in result.output
    assert "training reached" not in result.output and "Traceback" not in result.output
    assert _listing(real_dir) == before, "nothing may be created inside the real-image folder"


def test_lab_cache_inside_the_real_images_is_refused_too(real_dir, no_training, tmp_path):
    result = runner.invoke(app, ["lab", str(real_dir), "--out", str(tmp_path / "bench"), "--device", "cpu",
                                 "--cache-dir", str(real_dir / "cache")])
    assert result.exit_code == 2 and "--cache-dir" in result.output and "inside the data folder" in result.output
    assert not (real_dir / "cache").exists() and not (tmp_path / "bench").exists()


def test_lab_out_beside_the_real_images_reaches_training(real_dir, no_training, tmp_path):
    result = runner.invoke(app, ["lab", str(real_dir), "--out", str(tmp_path / "bench"), "--device", "cpu"])
    assert "training reached" in result.output, result.output
    assert "read 4 real images" in result.output
    assert _listing(real_dir) == sorted(f"slice_{i}.png" for i in range(4))
