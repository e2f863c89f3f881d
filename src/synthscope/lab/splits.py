"""The lab configuration and its group-aware splits of the real pool into training sets, used / not used and dev / test."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
import numpy as np
import pandas as pd

from synthscope.lab.models import LabError, MODEL_NAMES
from synthscope.lab.training import TrainingSummary


#: default training length per model (steps of `batch_size`), sized for a couple of CPU minutes in all
DEFAULT_STEPS = {"dcgan": 300, "upconv": 250, "vae": 300, "diffusion": 350}


@dataclass
class LabConfig:
    """What to train and how much to generate. The first ``membership_models`` models also get sub-task 1
    folders; the last ``unseen_models`` models are left out of the sub-task 2 dev set (as in 2024)."""

    models: tuple[str, ...] = ("dcgan", "vae", "diffusion", "upconv")
    membership_models: int = 2
    unseen_models: int = 1
    train_size: int = 72
    resolution: int = 64
    resolution_overrides: dict[str, int] = field(default_factory=lambda: {"diffusion": 32})
    steps: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STEPS))
    batch_size: int = 32
    n_generated_dev: int = 100
    n_generated_test: int = 150
    n_attribution_dev: int = 60
    n_attribution_test: int = 75
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = choose_threads()

    def validate(self) -> None:
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown:
            raise LabError(f"unknown model(s) {', '.join(unknown)}; the zoo has {', '.join(MODEL_NAMES)}")
        if len(set(self.models)) != len(self.models):
            raise LabError(f"each model may appear once, got {', '.join(self.models)}")
        if len(self.models) < 2:
            raise LabError("the lab needs at least 2 models (sub-task 2 tells models apart)")
        if not 0 <= self.membership_models <= len(self.models):
            raise LabError(f"membership_models must be between 0 and {len(self.models)}")
        if not 0 <= self.unseen_models < len(self.models):
            raise LabError(f"unseen_models must be between 0 and {len(self.models) - 1}")
        if self.train_size < 2:
            raise LabError("train_size must be at least 2")
        missing = [m for m in self.models if m not in self.steps]
        if missing:
            raise LabError(f"no training steps given for {', '.join(missing)}")

    def resolution_of(self, model: str) -> int:
        return int(self.resolution_overrides.get(model, self.resolution))

    def steps_for_epochs(self, epochs: float) -> dict[str, int]:
        """Steps that make ``epochs`` passes over a training set of ``train_size`` images."""
        per_epoch = max(1, math.ceil(self.train_size / self.batch_size))
        return {m: max(1, int(round(epochs * per_epoch))) for m in self.models}


@dataclass
class LabResult:
    root: Path
    subtask1_dev: Path | None
    subtask1_test: Path | None
    subtask1_truth: Path | None
    subtask2_dev: Path
    subtask2_test: Path
    subtask2_truth: Path
    model_key: Path
    training: list[TrainingSummary]
    seconds: float


@dataclass
class RealSplits:
    """Source indices (into the real pool) of each model's training set and not-used sets."""

    train: dict[str, list[int]]
    used_dev: dict[str, list[int]]
    used_test: dict[str, list[int]]
    not_used_dev: dict[str, list[int]]
    not_used_test: dict[str, list[int]]


def split_real_pool(groups: Sequence, config: LabConfig) -> RealSplits:
    """Group-aware, disjoint splits: every model trains on its own whole groups; the membership models get
    not-used sets of the same size from groups no model trained on; used and not-used sets are each cut in
    a dev and a test half along group lines."""
    groups = np.asarray(groups)
    rng = np.random.default_rng([config.seed, 11])
    unique = pd.unique(groups)
    order = list(rng.permutation(len(unique)))
    members = {g: np.flatnonzero(groups == g).tolist() for g in unique}

    def take(n_images: int, what: str) -> list[int]:
        picked: list[int] = []
        while len(picked) < n_images:
            if not order:
                needed = config.train_size * (len(config.models) + config.membership_models)
                raise LabError(
                    f"not enough real images for {what}: the lab needs about {needed} "
                    f"({len(config.models)} training sets + {config.membership_models} not-used sets of "
                    f"{config.train_size}), the pool has {len(groups)} in {len(unique)} groups; "
                    "lower train_size or give more images"
                )
            picked += members[unique[order.pop(0)]]
        return sorted(picked)

    def halve(indices: list[int]) -> tuple[list[int], list[int]]:
        dev: list[int] = []
        test: list[int] = []
        set_groups = list(pd.unique(groups[indices]))
        for k in rng.permutation(len(set_groups)):
            part = [i for i in indices if groups[i] == set_groups[k]]
            (dev if len(dev) <= len(test) else test).extend(part)
        return sorted(dev), sorted(test)

    train = {m: take(config.train_size, f"the training set of {m}") for m in config.models}
    splits = RealSplits(train=train, used_dev={}, used_test={}, not_used_dev={}, not_used_test={})
    for m in config.models[: config.membership_models]:
        not_used = take(len(train[m]), f"the not-used set of {m}")
        splits.used_dev[m], splits.used_test[m] = halve(train[m])
        splits.not_used_dev[m], splits.not_used_test[m] = halve(not_used)
    return splits

