"""The generator lab: the zoo trains and samples, splits are disjoint and group-aware, and the benchmark it
writes has the ImageCLEF 2024 layout of ../shared/bench/v1 with ground truth that matches the training sets."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from synthscope.lab import (
    MODEL_NAMES,
    LabConfig,
    LabError,
    build_benchmark,
    load_real_folder,
    split_real_pool,
    train_generator,
)
from synthscope.phantom import phantom_slices

TINY_STEPS = {"dcgan": 3, "upconv": 3, "vae": 3, "diffusion": 3}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # training: one torch thread (conftest)


@pytest.fixture(scope="module")
def pool():
    return phantom_slices(16, 2, seed=1)


def tiny_config(**overrides) -> LabConfig:
    params = dict(train_size=4, resolution=16, resolution_overrides={}, steps=dict(TINY_STEPS), batch_size=4,
                  n_generated_dev=5, n_generated_test=6, n_attribution_dev=4, n_attribution_test=5, threads=1,
                  device="cpu")
    params.update(overrides)
    return LabConfig(**params)


@pytest.fixture(scope="module")
def bench(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "bench"
    result = build_benchmark(pool.images, pool.image_ids, out, tiny_config(), groups=pool.patient)
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_trains_and_samples_reproducibly(name, pool):
    g = train_generator(name, pool.images[:6], steps=4, resolution=16, batch_size=4, device="cpu", seed=0)
    a, b, c = g.sample(5, seed=1), g.sample(5, seed=1), g.sample(5, seed=2)
    assert a.shape == (5, 256, 256) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert g.summary.steps == 4 and g.summary.n_train == 6 and g.summary.n_parameters > 1000
    assert list(g.history["step"])[-1] == 4
    assert np.isfinite(g.history.drop(columns=["step", "t_s"]).to_numpy()).all()


def test_training_reduces_the_vae_loss(pool):
    g = train_generator("vae", pool.images[:8], steps=60, resolution=16, batch_size=8, device="cpu", seed=0,
                        log_every=10)
    losses = g.history["loss_per_px"].to_numpy()
    assert losses[-1] < 0.7 * losses[0]


def test_unknown_model_and_bad_resolution_are_clear_errors(pool):
    with pytest.raises(LabError, match="unknown model 'stylegan'"):
        train_generator("stylegan", pool.images[:4], steps=1)
    with pytest.raises(LabError, match="power of two"):
        train_generator("dcgan", pool.images[:4], steps=1, resolution=48)
    with pytest.raises(LabError, match="unknown model"):
        tiny_config(models=("dcgan", "gan3000")).validate()


def test_splits_are_disjoint_group_aware_and_halved(pool):
    config = tiny_config()
    splits = split_real_pool(pool.patient, config)
    training = [set(v) for v in splits.train.values()]
    assert all(len(s) >= config.train_size for s in training)
    all_train = set().union(*training)
    assert sum(len(s) for s in training) == len(all_train)  # no image in two training sets
    for model in config.models[:2]:
        used = set(splits.used_dev[model]) | set(splits.used_test[model])
        assert used == set(splits.train[model])
        not_used = set(splits.not_used_dev[model]) | set(splits.not_used_test[model])
        assert not not_used & all_train
        assert len(not_used) == len(used)
        for a, b in [(splits.used_dev[model], splits.used_test[model]),
                     (splits.not_used_dev[model], splits.not_used_test[model])]:
            assert a and b and not set(pool.patient[a]) & set(pool.patient[b])  # no patient straddles dev/test
    not_used_groups = {m: set(pool.patient[splits.not_used_dev[m] + splits.not_used_test[m]]) for m in config.models[:2]}
    assert not set(pool.patient[sorted(all_train)]) & set().union(*not_used_groups.values())


def test_too_few_images_is_a_clear_error(pool):
    with pytest.raises(LabError, match="not enough real images.*lower train_size"):
        split_real_pool(pool.patient[:10], tiny_config())


def _pattern(rel: str) -> str:
    return re.sub(r"\d+", "N", rel)


def test_layout_matches_the_shared_v1_benchmark(bench, shared_dir):
    v1 = shared_dir / "bench" / "v1"
    for sub in ("subtask1", "subtask2"):
        theirs = {_pattern(str(p.relative_to(v1))) for p in (v1 / sub).rglob("*.png")}
        ours = {_pattern(str(p.relative_to(bench.root))) for p in (bench.root / sub).rglob("*.png")}
        assert ours == theirs
        for csv in (v1 / sub).glob("*.csv"):
            assert list(pd.read_csv(bench.root / sub / csv.name).columns) == list(pd.read_csv(csv).columns)
    # Same zero padding of the numbers too.
    assert (bench.root / "subtask1/dev/model_1/generated/generated_1_000001.png").exists()
    assert (bench.root / "subtask2/dev/model_1/model_1_0001.png").exists()
    assert (bench.root / "subtask2/test/generated_unknown/generated_unknown_00001.png").exists()


def test_subtask1_ground_truth_is_the_training_set(bench, pool):
    record = json.loads((bench.root / "config.json").read_text())
    truth = pd.read_csv(bench.subtask1_truth)
    source = pd.read_csv(bench.root / "subtask1" / "real_source.csv").set_index("image_id")["pool_id"]
    pool_index = {i: k for k, i in enumerate(pool.image_ids)}
    for i, model in enumerate(record["config"]["models"][:2], 1):
        trained_on = set(record["splits"]["train"][model])
        summary = json.loads((bench.root / "training_logs" / model / "summary.json").read_text())
        assert summary["n_train"] == len(trained_on)
        folder = bench.subtask1_test / f"folder_{i}" / "real_unknown"
        rows = truth[truth.image_id.str.startswith(f"real_unknown_{i}_")]
        assert sorted(rows.image_id + ".png") == sorted(p.name for p in folder.iterdir())
        assert set(rows.used) == {0, 1}
        for image_id, used in zip(rows.image_id, rows.used):
            src = source[image_id]
            assert (src in trained_on) == bool(used)
            # The file is exactly the pool image it claims to be.
            np.testing.assert_array_equal(np.array(Image.open(folder / f"{image_id}.png")), pool.images[pool_index[src]])
        dev = bench.subtask1_dev / f"model_{i}"
        used_dev = {source[p.stem] for p in (dev / "real_used").iterdir()}
        not_used_dev = {source[p.stem] for p in (dev / "real_not_used").iterdir()}
        assert used_dev <= trained_on and not not_used_dev & trained_on
        test_ids = set(source[rows.image_id])
        assert not test_ids & (used_dev | not_used_dev)  # dev and test real images are disjoint


def test_subtask2_ground_truth_and_key(bench):
    truth = pd.read_csv(bench.subtask2_truth)
    files = sorted(p.stem for p in (bench.subtask2_test / "generated_unknown").iterdir())
    assert sorted(truth.image_id) == files
    assert truth.model.value_counts().to_dict() == {f"model_{j}": 5 for j in range(1, 5)}
    key = pd.read_csv(bench.model_key)
    assert key.to_dict("list") == {"model": ["model_1", "model_2", "model_3", "model_4"],
                                   "architecture": ["dcgan", "vae", "diffusion", "upconv"]}
    assert sorted(p.name for p in bench.subtask2_dev.iterdir()) == ["model_1", "model_2", "model_3"]  # model_4 unseen
    assert "upsampled bilinearly to 256x256" in (bench.root / "README.md").read_text()
    diversity = json.loads((bench.root / "config.json").read_text())["diversity"]
    assert set(diversity) == set(MODEL_NAMES)
    # diversity = per-pixel spread across images (grey levels): real slices vary a lot; the generated value is
    # measured on each model's sub-task 2 test images (a briefly trained VAE can collapse: the README shows it)
    assert all(d["training_set"] > 5 for d in diversity.values()), diversity
    architecture = dict(zip(key.model, key.architecture))
    readme = (bench.root / "README.md").read_text()
    for model, images in truth.groupby("model"):
        stack = np.stack([np.array(Image.open(bench.subtask2_test / "generated_unknown" / f"{i}.png"))
                          for i in images.image_id])
        spread = F.interpolate(torch.from_numpy(stack).float().unsqueeze(1), size=(64, 64), mode="area").std(0).mean()
        measured = diversity[architecture[model]]
        assert measured["generated"] == pytest.approx(float(spread), abs=0.006), model
        assert f"{measured['generated']:.1f} / {measured['training_set']:.1f}" in readme


def test_generated_images_differ_between_dev_and_test_draws(bench):
    dev = {sha(p) for p in (bench.subtask1_dev / "model_1" / "generated").iterdir()}
    test = {sha(p) for p in (bench.subtask1_test / "folder_1" / "generated").iterdir()}
    assert not dev & test


def test_layout_is_read_by_synthscope_data(bench):
    import synthscope.data as data

    st1 = data.load_dataset(bench.subtask1_dev)
    assert st1.layout == "2024-st1-dev"
    assert set(st1.manifest.label[st1.manifest.role == "real"]) == {"used", "not_used"}
    assert data.load_dataset(bench.subtask1_test).layout == "2024-st1-test"
    assert data.load_dataset(bench.subtask2_dev).layout == "2024-st2-dev"
    assert data.load_dataset(bench.subtask2_test).layout == "2024-st2-test"


def test_refuses_a_non_empty_output_folder(pool, tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(LabError, match="not empty"):
        build_benchmark(pool.images, pool.image_ids, tmp_path, tiny_config(), groups=pool.patient)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def _write_folder(folder: Path, images, ids) -> None:
    folder.mkdir(parents=True)
    for image_id, image in zip(ids, images):
        Image.fromarray(image).save(folder / f"{image_id}.png")


def test_load_real_folder_reads_groups_and_skips_bad_files(pool, tmp_path):
    _write_folder(tmp_path / "real" / "a", pool.images[:3], pool.image_ids[:3])
    Image.fromarray(pool.images[3][::2, ::2]).convert("RGB").save(tmp_path / "real" / "small_rgb.png")
    (tmp_path / "real" / "broken.png").write_bytes(b"not a png")
    pd.DataFrame({"id": pool.image_ids[:2], "group": ["g", "g"]}).to_csv(tmp_path / "groups.csv", index=False)
    with pytest.warns(Warning, match="resized to 256x256"):
        images, ids, groups, skipped = load_real_folder(tmp_path / "real", tmp_path / "groups.csv")
    assert ids == pool.image_ids[:3] + ["small_rgb"]
    assert images.shape == (4, 256, 256)
    np.testing.assert_array_equal(images[0], pool.images[0])
    assert groups[0] == groups[1] != groups[2]
    assert len(skipped) == 1 and "broken.png" in skipped[0]


def test_load_real_folder_errors(tmp_path):
    with pytest.raises(LabError, match="no images"):
        load_real_folder(tmp_path)
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((256, 256), np.uint8)).save(tmp_path / sub / "same.png")
    with pytest.raises(LabError, match="duplicate image id 'same'"):
        load_real_folder(tmp_path)


def test_lab_command_end_to_end(pool, tmp_path):
    from synthscope.cli import app

    _write_folder(tmp_path / "real", pool.images, pool.image_ids)
    pd.DataFrame({"image_id": pool.image_ids, "group": pool.patient}).to_csv(tmp_path / "groups.csv", index=False)
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["lab", str(tmp_path / "real"), "--out", str(out), "--models", "vae,dcgan",
                                      "--epochs", "1", "--train-size", "4", "--resolution", "16",
                                      "--membership-models", "1", "--groups", str(tmp_path / "groups.csv"),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "benchmark:" in result.output
    assert (out / "subtask1" / "test" / "folder_1" / "real_unknown").is_dir()
    assert not (out / "subtask1" / "test" / "folder_2").exists()
    assert sorted(p.name for p in (out / "subtask2" / "dev").iterdir()) == ["model_1"]
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["steps"] == {"vae": 1, "dcgan": 1}  # 1 epoch of 4 images at batch 32

    bad = CliRunner().invoke(app, ["lab", str(tmp_path / "real"), "--out", str(tmp_path / "b2"), "--models", "vae,foo"])
    assert bad.exit_code != 0 and "unknown model(s) foo" in bad.output
