"""Bench v1 sub-task 2 as a 2025 tree with one generator held out of dev (open-set attribution).

v1's dev folders show three generators (model_1..3) and its test folder holds 150 images of each of
those and 150 of model_4, which dev never shows. As a 2025 tree: dev/generated/<model>/ (the dev
images), dev/real/<model>/ (a few pool images each, which the layout needs and attribution ignores)
and test/generated_unknown/ (v1's test images). Files are symbolic links: nothing is copied, and the
tree lives wherever the caller says (a temporary folder), never in ../shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

UNSEEN = "model_4"


def build_open_set_tree(subtask2: Path, real_pool: Path, out: Path, *, n_real: int = 5) -> tuple[Path, pd.Series]:
    """The tree under `out` and the test truth (image_id -> model; `UNSEEN` marks the held-out one)."""
    subtask2, real_pool, out = Path(subtask2), Path(real_pool), Path(out)
    reals = sorted(real_pool.glob("real_*.png"))
    models = sorted(p.name for p in (subtask2 / "dev").iterdir() if p.is_dir())
    if len(reals) < n_real * len(models):
        raise ValueError(f"{real_pool} holds {len(reals)} real images; {n_real * len(models)} are needed")
    for number, model in enumerate(models):
        for role, files in (("generated", sorted((subtask2 / "dev" / model).glob("*.png"))),
                            ("real", reals[number * n_real:(number + 1) * n_real])):
            folder = out / "dev" / role / model
            folder.mkdir(parents=True, exist_ok=True)
            for source in files:
                if not (folder / source.name).exists():
                    os.symlink(source.resolve(), folder / source.name)
    test = out / "test" / "generated_unknown"
    test.mkdir(parents=True, exist_ok=True)
    for source in sorted((subtask2 / "test" / "generated_unknown").glob("*.png")):
        if not (test / source.name).exists():
            os.symlink(source.resolve(), test / source.name)
    truth = pd.read_csv(subtask2 / "test_ground_truth.csv", dtype=str).set_index("image_id")["model"]
    return out, truth
