"""Same-architecture generators made with `synthscope.lab` (the 2025 design; issue 20 item 5).

Every other attribution benchmark tells apart different architectures. Here ONE architecture (the
lab's dcgan) is trained (a) on `n_subsets` disjoint, group-aware subsets of the real pool, and (b) twice
on one training set, differing only in the seed. Images are drawn from each generator and written
as a 2025 tree (dev/generated/<name>, dev/real/<name> = its training images, test/generated_unknown)
plus the test truth. Trained and sampled once, cached under a content-addressed folder outside the
repository (key = the configuration, the pool's file names and sizes, and `RECIPE_VERSION`), so
`make bench` reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthscope.outputs import publish_folder

#: bump when the building code changes what it writes (invalidates cached trees)
RECIPE_VERSION = 2
ENV_LAB_CACHE = "SYNTHSCOPE_LAB_CACHE_DIR"


@dataclass(frozen=True)
class SameArchitectureConfig:
    architecture: str = "dcgan"
    n_subsets: int = 5
    train_size: int = 60
    resolution: int = 16
    steps: int = 60
    n_dev: int = 40        # generated dev images per generator
    n_test: int = 60       # generated test images per generator
    seed: int = 0
    seed_offset: int = 1000  # the second run of the seed pair: seed + seed_offset, same data


def lab_cache_root() -> Path:
    """$SYNTHSCOPE_LAB_CACHE_DIR, else <user cache>/synthscope/bench-lab (never the bench's throwaway cache)."""
    override = os.environ.get(ENV_LAB_CACHE)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("synthscope", appauthor=False)) / "bench-lab"


def disjoint_training_sets(groups, n_sets: int, train_size: int, seed: int) -> list[list[int]]:
    """`n_sets` training sets of whole groups (at least `train_size` images each), no group in two sets."""
    groups = np.asarray(groups)
    unique = pd.unique(groups)
    order = list(np.random.default_rng([seed, 20]).permutation(len(unique)))
    sets: list[list[int]] = []
    for number in range(n_sets):
        picked: list[int] = []
        while len(picked) < train_size:
            if not order:
                raise ValueError(f"the pool ({len(groups)} images, {len(unique)} groups) cannot give {n_sets} "
                                 f"disjoint training sets of {train_size}")
            picked += np.flatnonzero(groups == unique[order.pop(0)]).tolist()
        sets.append(sorted(picked))
    return sets


def _key(config: SameArchitectureConfig, files: list[Path]) -> str:
    payload = {"recipe": RECIPE_VERSION, "config": asdict(config),
               "pool": [(p.name, p.stat().st_size) for p in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _write_pngs(images: np.ndarray, folder: Path, names: list[str]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        Image.fromarray(image).save(folder / name)


def _write_tree(root: Path, generators: dict, train_files: dict[str, list[Path]], config, seed: int,
                real_prefix: bool = False) -> pd.Series:
    """dev/generated/<name>, dev/real/<name> (symlinks to its training images), shuffled test; the truth.
    `real_prefix`: name each real link <name>_<file> (the seed pair shares one training set, and an image
    id must be unique in a tree)."""
    truth = {}
    rng = np.random.default_rng([seed, 21])
    test_numbers = iter(rng.permutation(len(generators) * config.n_test) + 1)
    for number, (name, generator) in enumerate(generators.items()):
        images = generator.sample(config.n_dev + config.n_test, seed=seed * 100 + number)
        _write_pngs(images[:config.n_dev], root / "dev" / "generated" / name,
                    [f"{name}_{i:04d}.png" for i in range(config.n_dev)])
        real = root / "dev" / "real" / name
        real.mkdir(parents=True, exist_ok=True)
        for source in train_files[name]:
            os.symlink(source.resolve(), real / (f"{name}_{source.name}" if real_prefix else source.name))
        test_names = [f"image_{next(test_numbers):05d}.png" for _ in range(config.n_test)]
        _write_pngs(images[config.n_dev:], root / "test" / "generated_unknown", test_names)
        truth.update({Path(n).stem: name for n in test_names})
    series = pd.Series(truth, name="generator").rename_axis("image_id").sort_index()
    series.to_csv(root / "test_ground_truth.csv")
    return series


def build_generators(pool: Path, config: SameArchitectureConfig, cache_root: Path | None = None,
                     *, groups_csv: Path | None = None, device: str = "cpu") -> dict:
    """Train (or reuse from the cache) the generators and write two 2025 trees:
    `subsets` (n_subsets generators, disjoint training sets) and `seeds` (two runs of the first
    subset's training set, seeds `seed` and `seed + seed_offset`). Returns the cache entry's
    manifest: paths, training image names per generator, training summaries, seconds."""
    from synthscope.lab import load_real_folder, train_generator

    pool = Path(pool)
    files = sorted(pool.glob("*.png"))
    root = (cache_root or lab_cache_root()) / f"same-arch-{_key(config, files)}"
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        return {**json.loads(manifest_path.read_text()), "root": str(root), "cached": True}
    if groups_csv is None and (pool / "near_duplicate_groups.csv").exists():
        groups_csv = pool / "near_duplicate_groups.csv"
    images, ids, groups, _ = load_real_folder(pool, groups_csv)
    groups = groups if groups is not None else np.asarray(ids, dtype=object)
    by_id = {p.stem: p for p in files}
    sets = disjoint_training_sets(groups, config.n_subsets, config.train_size, config.seed)
    work = root.with_name(root.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    trained, summaries = {}, {}
    for number, indices in enumerate(sets):
        name = f"subset_{number + 1}"
        trained[name] = train_generator(config.architecture, images[indices], steps=config.steps,
                                        resolution=config.resolution, device=device, seed=config.seed + number)
        summaries[name] = asdict(trained[name].summary)
    train_ids = {name: [ids[i] for i in indices] for name, indices in zip(trained, sets)}
    seed_runs = {"seed_a": trained["subset_1"]}
    seed_runs["seed_b"] = train_generator(config.architecture, images[sets[0]], steps=config.steps,
                                          resolution=config.resolution, device=device,
                                          seed=config.seed + config.seed_offset)
    summaries["seed_b"] = asdict(seed_runs["seed_b"].summary)
    _write_tree(work / "subsets", trained, {n: [by_id[i] for i in train_ids[n]] for n in trained}, config, config.seed)
    first = [by_id[i] for i in train_ids["subset_1"]]
    _write_tree(work / "seeds", seed_runs, {"seed_a": first, "seed_b": first}, config, config.seed + 1,
                real_prefix=True)
    manifest = {"config": asdict(config), "recipe": RECIPE_VERSION, "train_ids": train_ids,
                "seed_pair_train_ids": train_ids["subset_1"], "training": summaries,
                "train_seconds": round(sum(s["seconds"] for s in summaries.values()), 1)}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    publish_folder(work, root)
    return {**manifest, "root": str(root), "cached": False}
