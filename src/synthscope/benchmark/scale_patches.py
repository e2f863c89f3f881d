"""`make bench` section: the patch score (`images:patches`) at scale.

Each measurement runs in a process of its own (`python -m synthscope.benchmark.scale_patches patches JSON`):
`patch_copy_score` of n_real stand-in real images against n_generated stand-in generated images, both read a chunk
at a time as the membership run reads them (`membership.rows.ImageRows`), with wall seconds, CPU seconds and the
process's peak RSS.

Stand-ins: 256 px CT-like slices made by the project (`synthscope.phantom`: 240 procedural slices of 40 patients,
fewer for small sets),
each copy shifted by up to 8 px, mirrored at random, rescaled in grey level and given seeded noise, rendered on
demand per row from the row's own seed (as a folder's images are decoded per chunk), so the generated images never
exist all at once. Real and generated images share the slices, as used images share a generator's training slices.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any

import numpy as np

from synthscope.benchmark.base import (BenchContext, BenchSection, format_mb, measure_in_subprocess, peak_rss_mb,
                                       print_measurement)

#: (generated, real, search) sizes, full and quick (quick: the streamed faiss search at a small size)
PATCH_SIZES = (((10_000, 4_000, "auto"), (50_000, 10_000, "auto")), ((1_000, 200, "approx"),))
#: real images whose exact score is compared with the measured one (the exact search costs ~1 s per 1,000
#: generated images per 10 real images on one core)
EXACT_CHECK = 10


@functools.lru_cache(maxsize=2)
def _slices(n_patients: int) -> np.ndarray:
    from synthscope.phantom import phantom_slices

    return phantom_slices(n_patients, 6, seed=0).images.astype(np.float32)     # ~50 ms of CPU per slice


class StandinImages:
    """A data set's `images(rows)` face over CT-like stand-ins, one seeded render per row (uint8 [n, 256, 256])."""

    def __init__(self, seed: int, n_patients: int = 40):
        self.base = _slices(n_patients)
        self.seed = int(seed)
        self.cpu_s = 0.0                              # CPU seconds spent rendering (a folder would decode instead)

    def images(self, rows) -> np.ndarray:
        start = time.process_time()
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows),) + self.base.shape[1:], dtype=np.uint8)
        for i, row in enumerate(rows):
            rng = np.random.default_rng((self.seed, int(row)))
            image = np.roll(self.base[rng.integers(len(self.base))], tuple(rng.integers(-8, 9, 2)), axis=(0, 1))
            if rng.random() < 0.5:
                image = image[:, ::-1]
            noise = rng.standard_normal(image.shape, dtype=np.float32) * 3
            out[i] = np.clip(image * rng.uniform(0.85, 1.15) + rng.uniform(-10, 10) + noise, 0, 255)
        self.cpu_s += time.process_time() - start
        return out


def measure_patches(n_generated: int, n_real: int, method: str = "auto", exact_check: int = EXACT_CHECK) -> dict:
    """`patch_copy_score(real, generated)`; the generated images rendered a chunk at a time as the score reads them.
    `exact_check` real images are then scored exactly against every generated image (not timed) to show how far the
    measured (approximate above APPROX_PATCH_PAIRS) score is from the exact one."""
    from synthscope.membership.patches import APPROX_PATCH_PAIRS, patch_copy_score, patch_pairs
    from synthscope.membership.rows import ImageRows
    from synthscope.runtime import choose_threads

    n_patients = int(np.clip((n_generated + n_real) // 60, 2, 40))          # 240 slices from 14,400 images on
    real_source = StandinImages(seed=2, n_patients=n_patients)           # both sides read a chunk at a time, as
    real = ImageRows([(real_source, np.arange(n_real))])                 # a run reads a folder's images
    source = StandinImages(seed=1, n_patients=n_patients)
    generated = ImageRows([(source, np.arange(n_generated))])
    load_start = os.getloadavg()[0]
    threads = choose_threads()                # what the search will use: 1 on a busy machine
    wall, cpu = time.perf_counter(), time.process_time()
    scores = patch_copy_score(real, generated, method=method)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_end = os.getloadavg()[0]
    peak = peak_rss_mb()
    pairs = patch_pairs(n_real, n_generated)
    search = "exact" if method == "exact" or (method == "auto" and pairs <= APPROX_PATCH_PAIRS) else "faiss"
    result: dict[str, Any] = {"n_generated": n_generated, "n_real": n_real, "search": search, "seconds": wall,
                              "cpu_s": cpu, "render_cpu_s": source.cpu_s + real_source.cpu_s,
                              "score_cpu_s": cpu - source.cpu_s - real_source.cpu_s,
                              "load_avg": [round(load_start, 2), round(load_end, 2)], "cores": os.cpu_count(),
                              "threads": threads, "peak_rss_mb": round(peak, 1), "patch_pairs": pairs,
                              "finite": bool(np.isfinite(scores).all()), "score_mean": float(scores.mean())}
    if exact_check and search != "exact":
        pick = np.linspace(0, n_real - 1, min(exact_check, n_real)).astype(int)
        exact = patch_copy_score(real[pick], generated, method="exact")
        result["exact_check"] = {"n": len(pick), "max_abs_diff": float(np.abs(exact - scores[pick]).max()),
                                 "mean_exact": float(exact.mean())}
    return result


def patch_lines(rows: list[dict]) -> list[str]:
    """The table of the patch-score rows (`scale_patches.measure_patches`), with the goals of issue 19 (peak RSS
    under 2 GB; under 60 s at 10k generated x 4k real)."""
    if not rows:
        return []
    lines = ["", "**The patch score at scale** (`images:patches` = `patch_copy_score`, 16 px patches at 128 px; stand-in "
             "CT-like slices of `synthscope.phantom`, shifted, mirrored, rescaled and noisy, the generated images "
             "rendered a chunk at a time as a run decodes them: the wall and CPU seconds include rendering them, "
             "given apart; 'score CPU s' is the CPU time without it. The last column scores a few real images exactly "
             "against every generated image and gives the largest difference to the measured score, whose range "
             "over images is about 0.1. Goals: peak RSS < 2 GB; < 60 s at 10,000 x 4,000):", "",
             "| generated | real | search | wall s | CPU s | rendering CPU s | score CPU s | peak RSS | load avg "
             "(start, end; cores; search threads) | goals | vs exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row.get('n_generated')} | {row.get('n_real')} | failed: {row['error']} |||||||||")
            continue
        check = row.get("exact_check")
        versus = f"{check['max_abs_diff']:.4f} over {check['n']} images" if check else "exact"
        goals = ["RSS " + ("met" if row["peak_rss_mb"] < 2048 else "missed")]
        if (row["n_generated"], row["n_real"]) == (10_000, 4_000):
            goals.append("60 s " + ("met" if row["seconds"] < 60 else f"missed by {row['seconds'] - 60:.0f} s"))
        load = row.get("load_avg")
        load = f"{load[0]:.1f}, {load[1]:.1f}; {row.get('cores')}" if load else "n/a"
        load += f"; {row['threads']}" if "threads" in row else ""
        score_cpu = row.get("score_cpu_s", row["cpu_s"] - row["render_cpu_s"])
        lines.append(f"| {row['n_generated']:,} | {row['n_real']:,} | {row['search']} | {row['seconds']:.1f} "
                     f"| {row['cpu_s']:.1f} | {row['render_cpu_s']:.1f} | {score_cpu:.1f} | {format_mb(row['peak_rss_mb'])} "
                     f"| {load} | {', '.join(goals)} | {versus} |")
    return lines


def run(ctx: BenchContext) -> BenchSection:
    """The bench section: each size of PATCH_SIZES (quick: the small one) in a process of its own. A section apart
    from the long scale audit, so its goals can be measured on a quiet machine in minutes."""
    rows = [in_subprocess(n_generated=g, n_real=r, method=m) for g, r, m in PATCH_SIZES[1 if ctx.quick else 0]]
    return BenchSection(title="Scale: the patch score (images:patches) at 10k x 4k and 50k x 10k",
                        markdown="\n".join(patch_lines(rows)).lstrip("\n"), data={"quick": ctx.quick, "patches": rows})


def in_subprocess(timeout: float = 3600, **kwargs) -> dict:
    """`measure_patches(**kwargs)` in a fresh interpreter: the peak RSS is the score's own."""
    return measure_in_subprocess("synthscope.benchmark.scale_patches", "patches", timeout, **kwargs)


if __name__ == "__main__":
    sys.exit(print_measurement({"patches": measure_patches}, sys.argv[1:]))
