"""The offline demo (quick mode): built under the cache dir, both sub-tasks' ground truth consistent,
reproducible with the same seed, returned from cache on the second call, never clobbering user folders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthscope.demo import MARKER_NAME, build_demo, default_demo_dir, demo_config
from synthscope.lab import LabError


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo") / "quick", seed=0, quick=True, device="cpu")


@pytest.fixture(scope="module")
def prepared_cache(tmp_path_factory):
    """One cache dir for the module's `demo` runs on quick_demo: the first run's --prepare computes the
    embeddings and projections, the next reads them, as a user's second run does."""
    return tmp_path_factory.mktemp("prepared_cache")


def test_default_location_is_under_the_cache_dir(isolated_cache):
    assert default_demo_dir(0, quick=True) == isolated_cache / "demo" / "seed0-quick"
    assert default_demo_dir(3) == isolated_cache / "demo" / "seed3"


def test_quick_demo_layout_and_counts(quick_demo):
    root = quick_demo.root
    assert quick_demo.built
    config = demo_config(0, quick=True)
    assert len(list(quick_demo.real_pool.glob("*.png"))) == config.n_patients * config.slices_per_patient
    for i in (1, 2):
        dev = quick_demo.subtask1_dev / f"model_{i}"
        assert len(list((dev / "generated").glob(f"generated_{i}_*.png"))) == config.lab.n_generated_dev
        assert len(list((dev / "real_used").glob(f"real_used_{i}_*.png"))) > 0
        assert len(list((dev / "real_not_used").glob(f"real_not_used_{i}_*.png"))) > 0
        test = quick_demo.subtask1_test / f"folder_{i}"
        assert len(list((test / "generated").glob("*.png"))) == config.lab.n_generated_test
    assert sorted(p.name for p in quick_demo.subtask2_dev.iterdir()) == ["model_1", "model_2", "model_3"]
    assert len(list((quick_demo.subtask2_test / "generated_unknown").glob("*.png"))) == 4 * config.lab.n_attribution_test
    marker = json.loads((root / MARKER_NAME).read_text())
    assert marker["config_hash"] == quick_demo.config_hash == config.config_hash()
    assert "upsampled bilinearly" in (root / "README.md").read_text()


def test_ground_truth_is_consistent_with_files_and_training_sets(quick_demo):
    truth = pd.read_csv(quick_demo.subtask1_truth)
    unknown = sorted(p.stem for p in quick_demo.subtask1_test.glob("folder_*/real_unknown/*.png"))
    assert sorted(truth.image_id) == unknown
    record = json.loads((quick_demo.root / "config.json").read_text())
    source = pd.read_csv(quick_demo.root / "subtask1" / "real_source.csv").set_index("image_id")["pool_id"]
    for i, model in enumerate(record["config"]["models"][:2], 1):
        trained_on = set(record["splits"]["train"][model])
        rows = truth[truth.image_id.str.startswith(f"real_unknown_{i}_")]
        assert ((rows.image_id.map(source).isin(trained_on)).astype(int) == rows.used).all()
        # Patients (groups) never straddle used / not used.
        patients = lambda ids: {s.split("_")[0] for s in ids}  # noqa: E731 - p0007_s01 -> p0007
        assert not patients(rows.image_id[rows.used == 1].map(source)) & patients(rows.image_id[rows.used == 0].map(source))
    truth2 = pd.read_csv(quick_demo.subtask2_truth)
    assert sorted(truth2.image_id) == sorted(p.stem for p in (quick_demo.subtask2_test / "generated_unknown").glob("*.png"))
    key = pd.read_csv(quick_demo.model_key)
    assert set(truth2.model) == set(key.model)
    groups = pd.read_csv(quick_demo.real_groups)
    assert len(groups) == len(list(quick_demo.real_pool.glob("*.png")))


def test_real_pool_matches_the_phantoms(quick_demo):
    from synthscope.phantom import phantom_patient

    slices = phantom_patient(0, 2, demo_config(0, quick=True).slices_per_patient)
    np.testing.assert_array_equal(np.array(Image.open(quick_demo.real_pool / "p0002_s01.png")), slices[1])


def test_second_call_returns_the_cached_copy(quick_demo):
    before = (quick_demo.root / MARKER_NAME).stat().st_mtime_ns
    again = build_demo(quick_demo.root, seed=0, quick=True, device="cpu")
    assert not again.built
    assert again.root == quick_demo.root and again.config_hash == quick_demo.config_hash
    assert (quick_demo.root / MARKER_NAME).stat().st_mtime_ns == before


def test_a_changed_config_rebuilds_identical_files_with_the_same_seed(quick_demo, tmp_path):
    shutil.copytree(quick_demo.root, tmp_path / "again")
    marker = json.loads((tmp_path / "again" / MARKER_NAME).read_text())
    marker["config_hash"] = "an-older-config"
    (tmp_path / "again" / MARKER_NAME).write_text(json.dumps(marker))
    for png in (tmp_path / "again").rglob("*.png"):
        png.write_bytes(b"")  # spoil the copy: only a real rebuild can restore it
    rebuilt = build_demo(tmp_path / "again", seed=0, quick=True, device="cpu")
    assert rebuilt.built
    assert tree_digest(rebuilt.root) == tree_digest(quick_demo.root)
    for csv in ("subtask1/test_ground_truth.csv", "subtask2/test_ground_truth.csv", "subtask2/model_key.csv"):
        assert (rebuilt.root / csv).read_bytes() == (quick_demo.root / csv).read_bytes()
    assert not list(tmp_path.glob(".again.building-*"))  # no staging folder left behind


def test_force_rebuilds_and_a_failed_build_keeps_the_old_demo(quick_demo, monkeypatch):
    import synthscope.demo

    def broken_build(*args, **kwargs):
        raise RuntimeError("training crashed")

    before = tree_digest(quick_demo.root)
    monkeypatch.setattr(synthscope.demo, "build_benchmark", broken_build)
    assert not build_demo(quick_demo.root, seed=0, quick=True).built  # cached: nothing is trained
    with pytest.raises(RuntimeError, match="training crashed"):
        build_demo(quick_demo.root, seed=0, quick=True, force=True)
    assert tree_digest(quick_demo.root) == before
    assert (quick_demo.root / MARKER_NAME).exists()
    assert not list(quick_demo.root.parent.glob(".quick.building-*"))


def test_never_overwrites_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match="not a synthscope demo folder"):
        build_demo(tmp_path, quick=True, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_is_read_by_synthscope_data(quick_demo):
    import synthscope.data as data

    assert data.load_dataset(quick_demo.subtask1_dev).layout == "2024-st1-dev"
    assert data.load_dataset(quick_demo.subtask1_test).layout == "2024-st1-test"
    assert data.load_dataset(quick_demo.subtask2_dev).layout == "2024-st2-dev"
    assert data.load_dataset(quick_demo.subtask2_test).layout == "2024-st2-test"
    truth = data.read_ground_truth(quick_demo.subtask1_truth)
    assert set(truth.unique()) == {0, 1}


def test_demo_command_uses_the_cache(quick_demo, prepared_cache, monkeypatch):
    from synthscope.cli import app

    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(prepared_cache))
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(quick_demo.root), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "already built" in result.output and str(quick_demo.subtask2_test) in result.output


def test_demo_command_reports_a_foreign_folder(tmp_path):
    from synthscope.cli import app

    (tmp_path / "x.txt").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "not a synthscope demo folder" in result.output


def test_demo_serve_hands_the_demo_root_to_the_dashboard(quick_demo, prepared_cache, monkeypatch):
    import synthscope.commands.dashboard as dashboard
    from synthscope.cli import app

    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(prepared_cache))
    calls = []
    monkeypatch.setattr(dashboard, "serve_dashboard",
                        lambda path, host, port, k=None: calls.append((path, host, port, k)) or 0)
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(quick_demo.root), "--serve", "--port", "9911"])
    assert result.exit_code == 0, result.output
    # k is the demo's task statement (every zoo generator is in sub-task 2 test), not read from its truth file
    from synthscope.demo import demo_config

    assert calls == [(quick_demo.root, "127.0.0.1", 9911, len(demo_config(quick=True).lab.models))]
