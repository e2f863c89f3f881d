"""The offline demo data set: procedural CT-like slices (`synthscope.phantom`) as the real images and the
generator zoo of `synthscope.lab` really trained on chosen subsets of them, written in the
ImageCLEFmedical GANs 2024 layouts of both sub-tasks.

`build_demo()` is reproducible (everything is seeded) and cached: the folder carries a completion marker
with a hash of the demo's configuration, so a second call with the same configuration returns at once.
A build goes to a temporary sibling folder and is moved into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from synthscope.lab import LabConfig, LabError, build_benchmark
from synthscope.outputs import publish_folder
from synthscope.phantom import phantom_slices

#: bump when the demo's content changes for the same configuration (e.g. a phantom fix)
DEMO_FORMAT_VERSION = 2
MARKER_NAME = ".synthscope-demo.json"


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    quick: bool = False
    n_patients: int = 76
    slices_per_patient: int = 6
    lab: LabConfig = field(default_factory=LabConfig)

    def config_hash(self) -> str:
        record = asdict(self)
        record["lab"].pop("device", None)  # where it trains does not change what it means
        record["lab"].pop("threads", None)
        record["format_version"] = DEMO_FORMAT_VERSION
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def demo_config(seed: int = 0, quick: bool = False) -> DemoConfig:
    """The demo's configuration. The full demo aims at about two minutes of CPU; ``quick`` at a few seconds
    of training (for tests): same layout, fewer and smaller images, models barely trained.

    The demo trains with one torch thread: results then do not depend on the machine's core count
    (float reductions run in the same order), and small convolutions gain little from a second core.
    """
    if quick:
        lab = LabConfig(
            train_size=9, resolution=32, resolution_overrides={}, batch_size=16, seed=seed,
            steps={"dcgan": 20, "vae": 20, "diffusion": 15, "upconv": 20},
            n_generated_dev=20, n_generated_test=30, n_attribution_dev=15, n_attribution_test=20, threads=1,
        )
        return DemoConfig(seed=seed, quick=True, n_patients=20, slices_per_patient=3, lab=lab)
    return DemoConfig(seed=seed, quick=False, lab=LabConfig(seed=seed, threads=1))


@dataclass
class DemoPaths:
    """Where the demo's parts are. ``built`` is False when the cached copy was returned."""

    root: Path
    real_pool: Path
    real_groups: Path
    subtask1_dev: Path
    subtask1_test: Path
    subtask1_truth: Path
    subtask2_dev: Path
    subtask2_test: Path
    subtask2_truth: Path
    model_key: Path
    config_hash: str
    built: bool
    seconds: float

    @classmethod
    def at(cls, root: Path, config_hash: str, built: bool, seconds: float) -> "DemoPaths":
        return cls(
            root=root, real_pool=root / "real_pool", real_groups=root / "real_pool_groups.csv",
            subtask1_dev=root / "subtask1" / "dev", subtask1_test=root / "subtask1" / "test",
            subtask1_truth=root / "subtask1" / "test_ground_truth.csv",
            subtask2_dev=root / "subtask2" / "dev", subtask2_test=root / "subtask2" / "test",
            subtask2_truth=root / "subtask2" / "test_ground_truth.csv",
            model_key=root / "subtask2" / "model_key.csv",
            config_hash=config_hash, built=built, seconds=seconds,
        )


def default_demo_dir(seed: int = 0, quick: bool = False) -> Path:
    """``<cache dir>/demo/seed<seed>[-quick]``, where the cache dir is $SYNTHSCOPE_CACHE_DIR or the user's."""
    from synthscope.runtime import default_cache_dir

    return default_cache_dir() / "demo" / (f"seed{seed}" + ("-quick" if quick else ""))


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None


def build_demo(out_dir: str | Path | None = None, *, seed: int = 0, force: bool = False, quick: bool = False,
               device: str = "auto", progress: Callable[[str], None] | None = None) -> DemoPaths:
    """Build (or return the cached) demo data set; see the module docstring.

    ``force`` rebuilds even when a complete copy exists. A folder that holds something other than a demo
    is never overwritten or deleted (clear error instead).
    """
    config = demo_config(seed=seed, quick=quick)
    config.lab.device = device
    digest = config.config_hash()
    root = Path(out_dir).expanduser() if out_dir is not None else default_demo_dir(seed, quick)
    say = progress or (lambda message: None)
    marker = _read_marker(root) if root.exists() else None
    if root.exists() and marker is None and any(root.iterdir()):
        raise LabError(f"{root} exists and is not a synthscope demo folder; choose another --out")
    if marker is not None and marker.get("config_hash") == digest and not force:
        say(f"demo already built at {root} (config {digest})")
        return DemoPaths.at(root, digest, built=False, seconds=float(marker.get("seconds", 0.0)))

    t0 = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.with_name(f".{root.name}.building-{uuid.uuid4().hex[:8]}")
    try:
        say(f"rendering {config.n_patients} x {config.slices_per_patient} phantom CT slices")
        phantoms = phantom_slices(config.n_patients, config.slices_per_patient, seed=seed)
        build_benchmark(
            phantoms.images, phantoms.image_ids, staging, config.lab, groups=phantoms.patient, progress=say,
            description=(f"{len(phantoms.images)} procedural CT-like slices from `synthscope.phantom` "
                         f"({config.n_patients} synthetic patients x {config.slices_per_patient} neighbouring "
                         f"slices, seed {seed}; copies in `real_pool/`, patient groups in `real_pool_groups.csv`)"),
        )
        _write_pool(staging, phantoms)
        seconds = time.perf_counter() - t0
        (staging / MARKER_NAME).write_text(json.dumps(
            {"config_hash": digest, "seconds": round(seconds, 1), "config": asdict(config),
             "format_version": DEMO_FORMAT_VERSION}, indent=1))
        publish_folder(staging, root)   # an older or forced demo of ours (checked above) is replaced
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    say(f"demo built at {root} in {seconds:.0f} s")
    return DemoPaths.at(root, digest, built=True, seconds=seconds)


def _write_pool(root: Path, phantoms) -> None:
    """Every rendered slice (the lab's real pool) and its patient group, for `synthscope lab` and notebooks."""
    pool = root / "real_pool"
    pool.mkdir(parents=True)
    for image_id, image in zip(phantoms.image_ids, phantoms.images):
        Image.fromarray(np.asarray(image), mode="L").save(pool / f"{image_id}.png", format="PNG")
    pd.DataFrame({"image_id": phantoms.image_ids, "group": [f"patient_{p:04d}" for p in phantoms.patient]}).to_csv(
        root / "real_pool_groups.csv", index=False)
