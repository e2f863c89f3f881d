"""The same-architecture bench's generators (issue 20 item 5): disjoint, group-aware training subsets of
real pool files, the seed pair on one training set, a 2025 tree whose dev/real shows each training set,
and a cache entry reused on the second call."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from synthscope.data import load_dataset
from synthscope.benchmark.same_architecture import SameArchitectureConfig, build_generators, disjoint_training_sets


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # training: one torch thread (conftest)


@pytest.fixture
def small_pool(iqoth_dir, tmp_path):
    """The first 40 real slices of the pool with their near-duplicate groups."""
    pool = tmp_path / "pool"
    pool.mkdir()
    files = sorted(iqoth_dir.glob("real_*.png"))[:40]
    for path in files:
        shutil.copy(path, pool / path.name)
    groups = pd.read_csv(iqoth_dir / "near_duplicate_groups.csv", dtype=str)
    groups[groups["id"].isin([p.stem for p in files])].to_csv(pool / "near_duplicate_groups.csv", index=False)
    return pool, groups.set_index("id")["group"]


def test_generators_train_on_disjoint_group_aware_subsets(small_pool, tmp_path):
    pool, groups = small_pool
    config = SameArchitectureConfig(n_subsets=3, train_size=6, resolution=16, steps=1, n_dev=2, n_test=3)
    built = build_generators(pool, config, cache_root=tmp_path / "cache")
    assert not built["cached"]
    train = built["train_ids"]
    assert sorted(train) == ["subset_1", "subset_2", "subset_3"]
    assert all(len(ids) >= 6 for ids in train.values())
    every = [i for ids in train.values() for i in ids]
    assert len(every) == len(set(every))                      # no image in two training sets
    group_sets = [set(groups.loc[ids]) for ids in train.values()]
    assert not (group_sets[0] & group_sets[1] or group_sets[0] & group_sets[2] or group_sets[1] & group_sets[2])
    assert built["seed_pair_train_ids"] == train["subset_1"]  # the seed pair differs only in the seed
    assert built["training"]["seed_b"]["n_train"] == len(train["subset_1"])
    root = tmp_path / "cache" / built["root"].rsplit("/", 1)[1]
    for name, ids in train.items():                          # dev/real/<subset> is that subset's training set
        assert sorted(p.stem for p in (root / "subsets" / "dev" / "real" / name).iterdir()) == sorted(ids)
        assert len(list((root / "subsets" / "dev" / "generated" / name).glob("*.png"))) == 2
    truth = pd.read_csv(root / "subsets" / "test_ground_truth.csv", dtype=str)
    assert truth["generator"].value_counts().to_dict() == {"subset_1": 3, "subset_2": 3, "subset_3": 3}
    assert sorted(p.stem for p in (root / "subsets" / "test" / "generated_unknown").iterdir()) == sorted(truth["image_id"])
    seeds = pd.read_csv(root / "seeds" / "test_ground_truth.csv", dtype=str)
    assert sorted(seeds["generator"].unique()) == ["seed_a", "seed_b"]
    for tree in ("subsets", "seeds"):                      # both trees load as 2025 trees (unique image ids)
        assert load_dataset(root / tree / "dev").layout.startswith("2025-st2")
    assert sorted(p.name for p in (root / "seeds" / "dev" / "real" / "seed_b").iterdir()) == sorted(
        f"seed_b_{i}.png" for i in train["subset_1"])
    assert build_generators(pool, config, cache_root=tmp_path / "cache")["cached"]


def test_disjoint_training_sets_refuse_a_pool_too_small():
    with pytest.raises(ValueError, match="cannot give 3 disjoint training sets of 5"):
        disjoint_training_sets(["a"] * 4 + ["b"] * 4 + ["c"] * 4, 3, 5, seed=0)
