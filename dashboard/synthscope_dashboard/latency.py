"""Kernel-side latency of the dashboard's interactions on a large synthetic workspace.

Runs the real views in-process. Widget messages go through a comm that JSON-encodes them as the
kernel would (without a browser on the other end), so serialisation is part of what is timed.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthscope_dashboard.workspace import AttributionData, DatasetSummary, MembershipData, MembershipPair, Workspace


def synthetic_workspace(n_points: int = 20_000, *, n_clusters: int = 6, dim: int = 64, seed: int = 0,
                        cache_dir: Path | None = None, projections: tuple[str, ...] = ("pca",)) -> Workspace:
    """`n_points` generated images (a fifth labelled dev) and `n_points` real images with scores.

    `projections` beyond "pca" (e.g. "umap") get cheap stand-ins (a fixed random 2-D map of the
    features, warped), so the page's projection switch has somewhere to go."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_clusters, dim))
    truth = rng.integers(0, n_clusters, n_points)
    features = (centres[truth] + rng.normal(0, 1, (n_points, dim))).astype(np.float32)
    split = np.where(rng.random(n_points) < 0.2, "dev", "test")
    ids = np.array([f"generated_{i:06d}" for i in range(n_points)])
    known = np.where(split == "dev", np.char.add("model_", truth.astype(str)), "")
    frame = pd.DataFrame({"key": np.char.add(np.char.add(split.astype(str), ":"), ids), "image_id": ids,
                          "split": split, "group": known, "known_label": known, "truth": np.char.add("model_", truth.astype(str))})

    def images(indices) -> np.ndarray:
        return np.random.default_rng(len(indices)).integers(0, 256, (len(indices), 256, 256), dtype=np.uint8)

    stand_ins = {}
    for index, name in enumerate(p for p in projections if p != "pca"):
        weights = np.random.default_rng(seed + 1 + index).normal(0, 1, (dim, 2)) / np.sqrt(dim)
        xy = features @ weights
        stand_ins[name] = np.tanh(xy / (2 * xy.std(axis=0))).astype(np.float32)
    attribution = AttributionData(frame=frame, features=features, extractor="synthetic", load_images=images,
                                  projections=stand_ins, k=n_clusters)
    real_split = np.where(rng.random(n_points) < 0.5, "dev", "test")
    group = np.where(rng.random(n_points) < 0.5, "model_1", "model_2")
    used = rng.integers(0, 2, n_points)
    real_ids = np.array([f"real_{i:06d}" for i in range(n_points)])
    real = pd.DataFrame({"key": np.char.add(np.char.add(real_split.astype(str), ":"), real_ids), "image_id": real_ids,
                         "split": real_split, "group": group, "label": np.where(real_split == "dev", used, -1),
                         "truth": used, "score": used * 0.2 + rng.normal(0, 1, n_points)})

    def nearest(index: int, k: int = 3) -> list[dict]:
        return [{"image": image, "image_id": f"generated_{j}", "distance": 1.0 + j} for j, image in enumerate(images(range(k)))]

    from synthscope.membership import rank_test

    real["pair"] = real["group"]
    real["rank"] = real.groupby(["split", "group"])["score"].rank(ascending=False, method="min").astype(int)
    pairs = {}
    for name, part in real[real["split"] == "dev"].groupby("group"):
        verdict = rank_test(part["score"].to_numpy(), part["label"].to_numpy())
        pairs[name] = MembershipPair(name=name, primary="synthetic", choice="synthetic", default_threshold=0.1,
                                     threshold_method="f1", verdict=verdict, story=[])
    membership = MembershipData(frame=real, pairs=pairs, score_name="synthetic", load_real=images, nearest=nearest)
    summary = DatasetSummary(root="(synthetic)", layout="synthetic", task="attribution", split="test",
                             counts=pd.DataFrame({"role": ["generated"], "group": [""], "label": ["unknown"], "images": [n_points]}),
                             skipped=[], warnings=[])
    return Workspace(path=f"/synthetic/{n_points}", datasets=[summary], attribution=attribution, membership=membership,
                     cache_dir=cache_dir or Path(tempfile.mkdtemp(prefix="synthscope-latency-")))


def _install_serialising_comm() -> list[int]:
    """Make every widget comm JSON-encode what it sends; returns a counter of bytes sent."""
    import comm
    from comm.base_comm import BaseComm

    sent = [0]

    class SerialisingComm(BaseComm):
        kernel = True

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            sent[0] += len(json.dumps(data, default=str)) + sum(len(memoryview(b).cast("B")) for b in (buffers or []))

    comm.create_comm = lambda *args, **kwargs: SerialisingComm(*args, **kwargs)
    return sent


def measure(n_points: int = 20_000, repeats: int = 7, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median / max milliseconds of lasso, relabel, threshold change and undo, with every panel built."""
    sent = _install_serialising_comm()
    from synthscope_dashboard.app import build

    start = time.perf_counter()
    dashboard = build(workspace=synthetic_workspace(n_points, seed=seed), method="kmeans",
                      scatter_engine="plotly")   # this section times the plotly engine's kernel side
    for view in dashboard.views:
        view.ensure_built()
    build_s = time.perf_counter() - start
    state = dashboard.state
    rng = np.random.default_rng(seed)
    generators = dashboard.view("Generator fingerprints")

    class Points:   # what plotly hands to on_selection
        def __init__(self, indices):
            self.point_inds = indices

    def lasso():
        indices = np.sort(rng.choice(n_points, n_points // 10, replace=False)).tolist()
        generators._on_plot_selection(generators.scatter.data[0], Points(indices), None)

    def relabel():
        state.assign(state.selection, int(rng.integers(0, 6)))

    def threshold():
        state.set_threshold("model_1", float(rng.uniform(-1.0, 1.0)))
        state._last_action = ""   # each timed change is its own action

    def undo():
        state.assign(state.selection, None)
        state.undo()

    results = {}
    for name, action in (("lasso", lasso), ("relabel", relabel), ("threshold", threshold), ("relabel + undo", undo)):
        action()   # warm-up
        times, before = [], sent[0]
        for _ in range(repeats):
            t0 = time.perf_counter()
            action()
            times.append(time.perf_counter() - t0)
        results[name] = {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times),
                         "kb_sent": (sent[0] - before) / repeats / 1024}
    results["_build"] = {"seconds": build_s}
    return results
