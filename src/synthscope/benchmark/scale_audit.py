"""`make bench` section: a large audit, measured here and extrapolated to a million images.

Every measurement runs in a fresh Python process of its own (`python -m synthscope.benchmark.scale_audit
MEASUREMENT ...`, which prints one JSON line), so its peak RSS is its own and not the bench's; on the Dask
cluster the workers' peaks are asked from the workers and reported beside the client's.

- **Embedding and caching, from images**: stand-in images made by the project (procedural phantoms of
  `synthscope.phantom`, each shifted, mirrored, rescaled in grey level and given seeded noise so every file
  differs) written as PNG files, embedded with `fingerprint` through `synthscope.cache.cache_dataset` (what
  `synthscope embed` runs), in 1 process and on a 2-worker LocalCluster.
- **Caching, clustering and membership at 10k, 100k and 1M**: vectors (a seeded Gaussian mixture), since
  rendering and embedding a million images takes days on 2 cores: writing and streaming back the cache
  (790-d, the fingerprint's width), k-means and the default `auto` clustering (128-d), the membership
  feature-space scores (`MembershipScorer`, 790-d) for 10k real images against growing generated sets, and
  the kNN search under them (`synthscope.knn`, exact streamed and faiss).
- **End-to-end membership** (`run_membership`) at 10k, 40k and 100k generated x 10k real: stand-in features of
  every run space written into an embedding cache by one process, read back a chunk at a time by the run in
  another (`synthscope.membership.rows`), so the peak RSS is that of the streamed run.
- The patch score (`images:patches`) at 10k generated x 4k real and 50k x 10k has a section of its own
  (`synthscope.benchmark.scale_patches`), measured in processes started here (`in_subprocess`).
- **Start-up**: `synthscope embed` on a cached folder, without and with `--workers 2`, and whether Dask was
  imported.

Growth is the least-squares slope of log(seconds) on log(n). Nothing here asserts a speed.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthscope.benchmark.base import (BenchContext, BenchSection, cpu_count, format_mb, measure_in_subprocess,
                                      peak_rss_mb, print_measurement)

#: (full, quick) sizes
IMAGE_SIZES = ((1_000, 5_000), (200, 600))
VECTOR_SIZES = ((10_000, 100_000, 1_000_000), (1_000, 10_000, 50_000))
MEMBERSHIP_GENERATED = ((10_000, 100_000), (1_000, 5_000))
MEMBERSHIP_REAL = (10_000, 1_000)
#: generated images of the end-to-end membership runs (features streamed from the cache), (full, quick)
MEMBERSHIP_RUN_GENERATED = ((10_000, 40_000, 100_000), (1_000, 5_000))
CACHE_DIM, CLUSTER_DIM = 790, 128
#: machines of the extrapolation (assumptions, named in the report)
CORES_PER_MACHINE, MACHINES = 16, 10
AUDIT_IMAGES = 1_000_000


def _rss_mb() -> float:
    return round(peak_rss_mb(), 1)


def mixture(n: int, dim: int, seed: int, n_clusters: int = 4) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start, block in mixture_blocks(n, dim, seed, n_clusters):
        out[start:start + len(block)] = block
    return out


def mixture_blocks(n: int, dim: int, seed: int, n_clusters: int = 4, block: int = 65_536):
    """`mixture` as (start, block) pairs, so 1M x 790 is made (or written) without holding it, nor float64 copies."""
    centres = np.random.default_rng(12345).normal(scale=0.35, size=(n_clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, block):
        m = min(block, n - start)
        yield start, centres[rng.integers(0, n_clusters, m)] + rng.standard_normal((m, dim), dtype=np.float32)


# -- stand-in images --------------------------------------------------------------------------

def write_standins(folder: Path, n: int, seed: int = 0) -> Path:
    """n distinct 256x256 PNG stand-ins in a 2025 sub-task 1 test layout (generated/ and real_unknown/):
    30 phantom slices, each copy shifted by up to 8 px, maybe mirrored, rescaled in grey level, with noise."""
    from PIL import Image

    from synthscope.phantom import phantom_slices

    base = phantom_slices(5, 6, seed=seed).images.astype(np.float32)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image = np.roll(base[i % len(base)], tuple(rng.integers(-8, 9, 2)), axis=(0, 1))
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image = image * rng.uniform(0.85, 1.15) + rng.uniform(-10, 10) + rng.normal(0, 3, image.shape)
        role = "generated" if i % 10 else "real_unknown"
        target = folder / role / f"{role}_{i:07d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(target, compress_level=1)
    return folder


# -- measurements (each in its own process) ---------------------------------------------------

#: images per chunk in the embedding rows: small enough that a few thousand images make many tasks for 2 workers
EMBED_CHUNK = 256


def measure_embed(folder: str, cache_dir: str, workers: int = 0, extractor: str = "fingerprint") -> dict:
    from synthscope.cache import CacheStats, EmbeddingCache, cache_dataset
    from synthscope.data import load_dataset
    from synthscope.features import get_extractor

    start = time.perf_counter()
    dataset = load_dataset(folder, compute_sha=True)
    load_s = time.perf_counter() - start
    chosen = get_extractor(extractor)
    stats = CacheStats()
    result: dict[str, Any] = {"n": len(dataset.manifest), "load_s": load_s, "workers": workers}
    if workers:
        from synthscope.engine import open_engine

        start = time.perf_counter()
        with open_engine(workers, cache_dir=cache_dir) as engine:
            result["cluster_start_s"] = time.perf_counter() - start
            start = time.perf_counter()
            cache_dataset(dataset, chosen, cache=EmbeddingCache(cache_dir), batch_size=chosen.default_batch_size,
                          progress=False, stats=stats, chunk_size=EMBED_CHUNK)
            result["seconds"] = time.perf_counter() - start
            result["worker_peak_rss_mb"] = sorted(engine.client.run(_rss_mb).values())
    else:
        start = time.perf_counter()
        cache_dataset(dataset, chosen, cache=EmbeddingCache(cache_dir), batch_size=chosen.default_batch_size,
                      progress=False, stats=stats, chunk_size=EMBED_CHUNK)
        result["seconds"] = time.perf_counter() - start
    result["n_computed"] = stats.n_computed
    result["peak_rss_mb"] = _rss_mb()
    return result


def measure_cache(n: int, cache_dir: str, dim: int = CACHE_DIM) -> dict:
    """Write n vectors as the embedding driver does (a shard per 1,024, merges included), then stream them back."""
    from synthscope.cache import DEFAULT_CHUNK_SIZE, EmbeddingCache
    from synthscope.features.texture import PixelsExtractor

    extractor = PixelsExtractor(size=64)
    cache = EmbeddingCache(cache_dir)
    centres = np.random.default_rng(0).normal(size=(4, dim)).astype(np.float32)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for first in range(0, n, DEFAULT_CHUNK_SIZE):
        m = min(DEFAULT_CHUNK_SIZE, n - first)
        block = centres[rng.integers(0, 4, m)] + rng.standard_normal((m, dim), dtype=np.float32)
        cache.add(extractor, [f"{i:012d}" for i in range(first, first + m)], block)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    reader = EmbeddingCache(cache_dir)
    total, rows = 0.0, 0
    for keys, vectors in reader.iter_vectors(extractor):
        total += float(vectors[:, 0].sum())
        rows += len(keys)
    read_s = time.perf_counter() - start
    n_shards = len(list(reader.namespace(extractor).glob("shard-*.npy")))
    return {"n": n, "dim": dim, "write_s": write_s, "read_s": read_s, "rows_read": rows, "shards": n_shards,
            "gib": n * dim * 4 / 2**30, "peak_rss_mb": _rss_mb()}


def measure_cluster(n: int, method: str) -> dict:
    from synthscope.attribution import FingerprintClustering

    X = mixture(n, CLUSTER_DIM, seed=n)
    start = time.perf_counter()
    model = FingerprintClustering(4, method=method, views=("synthetic",)).fit({"synthetic": X})
    seconds = time.perf_counter() - start
    return {"n": n, "method": method, "seconds": seconds, "chosen": model.chosen_["method"], "peak_rss_mb": _rss_mb()}


def measure_membership(n_generated: int, n_real: int, dim: int = CACHE_DIM) -> dict:
    from synthscope.membership import MembershipScorer

    generated, real = mixture(n_generated, dim, seed=7), mixture(n_real, dim, seed=8)
    scorer = MembershipScorer()
    start = time.perf_counter()
    scores = scorer.fit(generated).score(real)
    seconds = time.perf_counter() - start
    return {"n_generated": n_generated, "n_real": n_real, "dim": dim, "seconds": seconds,
            "index": "faiss" if n_generated > scorer.approx_threshold else "exact",
            "finite": bool(np.isfinite(scores.to_numpy()).all()), "peak_rss_mb": _rss_mb()}


def _vector_dataset(n_generated: int, n_real: int, split: str, labelled: bool):
    """A sub-task 1 Dataset of n_generated + n_real rows whose features are given (no image files)."""
    import pandas as pd

    from synthscope.data import Dataset, LoadReport

    roles = ["generated"] * n_generated + ["real"] * n_real
    labels = ["unknown"] * n_generated + (
        ["used" if i % 2 else "not_used" for i in range(n_real)] if labelled else ["unknown"] * n_real)
    ids = [f"{split}_g{i:07d}" for i in range(n_generated)] + [f"{split}_r{i:07d}" for i in range(n_real)]
    manifest = pd.DataFrame({"image_id": ids, "path": [f"/nonexistent/{i}.png" for i in ids], "role": roles,
                             "group": "", "label": labels, "sha256": ids})
    return Dataset(Path(f"/nonexistent/{split}"), "2025-st1-" + split, "membership", split, manifest,
                   LoadReport("2025-st1-" + split, [], len(ids)))


def _run_spaces() -> tuple[str, ...]:
    from synthscope.membership import DEFAULT_SPACES
    from synthscope.membership.pipeline import GALLERY_SPACE

    return DEFAULT_SPACES + (GALLERY_SPACE,)


def _run_datasets(n_generated: int, n_real: int):
    """The scored set and its dev set (a tenth the size, labelled) of an end-to-end membership run."""
    return (_vector_dataset(n_generated, n_real, "test", False),
            _vector_dataset(max(n_generated // 10, 50), max(n_real // 10, 50), "dev", True))


def write_membership_standins(n_generated: int, n_real: int, cache_dir: str, dim: int = CACHE_DIM) -> dict:
    """Stand-in features of every run space for `_run_datasets`, written into an embedding cache under the
    spaces' own extractor namespaces and keys (as `synthscope embed` leaves them), a block at a time."""
    from synthscope.cache import EmbeddingCache, dataset_keys
    from synthscope.features import get_extractor
    from synthscope.membership.spaces import get_space

    cache = EmbeddingCache(cache_dir)
    start = time.perf_counter()
    for offset, data in enumerate(_run_datasets(n_generated, n_real)):
        keys = dataset_keys(data)
        for i, name in enumerate(_run_spaces()):
            space = get_space(name)
            extractor = get_extractor(space.extractor, **space.options)
            for first, block in mixture_blocks(len(keys), dim, seed=20 + 20 * offset + i, block=8192):
                cache.add(extractor, keys[first:first + len(block)], block)
    return {"n_generated": n_generated, "n_real": n_real, "dim": dim, "seconds": time.perf_counter() - start,
            "peak_rss_mb": _rss_mb()}


def measure_membership_run(n_generated: int, n_real: int, cache_dir: str, dim: int = CACHE_DIM) -> dict:
    """`run_membership` end to end, reading the stand-in features `write_membership_standins` put in the cache
    (a dev set of a tenth the size, every feature score in the 4 default spaces plus the gallery space): the
    generated features stream from the cache a chunk at a time, as in `synthscope membership`."""
    from synthscope.cache import EmbeddingCache
    from synthscope.membership import SCORES, MembershipOptions, run_membership
    from synthscope.membership.rows import GENERATED_CHUNK, INDEX_BYTES

    test, dev = _run_datasets(n_generated, n_real)
    features_mb = (len(test.manifest) + len(dev.manifest)) * dim * 4 * len(_run_spaces()) / 2**20
    start, cpu = time.perf_counter(), time.process_time()
    run = run_membership(test, dev, MembershipOptions(scores=SCORES), cache=EmbeddingCache(cache_dir))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n_pooled = len(test.manifest) - n_real + len(dev.manifest) - max(n_real // 10, 50)
    return {"n_generated": n_generated, "n_real": n_real, "dim": dim, "seconds": seconds, "cpu_s": cpu,
            "features_mb": features_mb, "chunk": GENERATED_CHUNK, "index_gib": INDEX_BYTES / 2**30,
            "search": "exact" if n_pooled <= _approx_threshold() else "faiss",
            "n_predictions": int(len(run.predictions)), "peak_rss_mb": _rss_mb()}


def _approx_threshold() -> int:
    from synthscope.membership.neighbours import APPROX_THRESHOLD

    return APPROX_THRESHOLD


def measure_knn(n_data: int, n_query: int, method: str, dim: int = CLUSTER_DIM) -> dict:
    from synthscope.knn import knn

    data, query = mixture(n_data, dim, seed=9), mixture(n_query, dim, seed=10)
    start = time.perf_counter()
    distances, _ = knn(query, data, 20, method=method)
    return {"n_data": n_data, "n_query": n_query, "method": method, "seconds": time.perf_counter() - start,
            "finite": bool(np.isfinite(distances).all()), "peak_rss_mb": _rss_mb()}


def measure_startup(folder: str, cache_dir: str, workers: int = 0) -> dict:
    from typer.testing import CliRunner

    from synthscope.cli import app

    args = ["embed", folder, "-e", "pixels", "--cache-dir", cache_dir] + (["--workers", str(workers)] if workers else [])
    start = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "exit_code": result.exit_code, "workers": workers,
            "dask_imported": "distributed" in sys.modules or "dask" in sys.modules,
            "output": result.output.strip().splitlines()[-2:]}


MEASUREMENTS = {"embed": measure_embed, "cache": measure_cache, "cluster": measure_cluster,
                "membership": measure_membership, "membership_standins": write_membership_standins,
                "membership_run": measure_membership_run, "knn": measure_knn, "startup": measure_startup}


def in_subprocess(name: str, timeout: float = 3600, **kwargs) -> dict:
    """One measurement of this module in a fresh interpreter (its own peak RSS, wall time around it)."""
    return measure_in_subprocess("synthscope.benchmark.scale_audit", name, timeout, **kwargs)


def membership_runs(sizes: Sequence[int], n_real: int, timeout: float = 3600) -> list[dict]:
    """End-to-end membership runs at each size: stand-in features written into a fresh cache (a process of its
    own), then `run_membership` reading them from it (another), the cache removed after."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="synthscope-scale-run-", dir=os.environ.get("SYNTHSCOPE_SCALE_DIR")) as tmp:
        for n in sizes:
            cache_dir = str(Path(tmp) / f"cache-run-{n}")
            written = in_subprocess("membership_standins", timeout=timeout, n_generated=n, n_real=n_real,
                                    cache_dir=cache_dir)
            row = written if "error" in written else in_subprocess("membership_run", timeout=timeout, n_generated=n,
                                                                   n_real=n_real, cache_dir=cache_dir)
            row["standins_s"] = written.get("seconds")
            rows.append(row)
            _remove_tree(Path(cache_dir))
    return rows


def loglog_slope(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    sizes, seconds = np.asarray(sizes, float), np.asarray(seconds, float)
    keep = (sizes > 0) & (seconds > 0) & np.isfinite(seconds)
    if len(np.unique(sizes[keep])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes[keep]), np.log(seconds[keep]), 1)[0])


def extrapolate(n_from: float, seconds: float, slope: float, n_to: float) -> float:
    return seconds * (n_to / n_from) ** (slope if math.isfinite(slope) else 1.0)


def _t(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


# -- the section ------------------------------------------------------------------------------

def run(ctx: BenchContext) -> BenchSection:
    pick = 1 if ctx.quick else 0
    load_start = os.getloadavg()
    data: dict[str, Any] = {"quick": ctx.quick, "cores": cpu_count(), "load_avg_start": list(load_start)}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="synthscope-scale-", dir=os.environ.get("SYNTHSCOPE_SCALE_DIR")) as tmp:
        tmp_path = Path(tmp)
        # 1. embedding from images, 1 process and 2 workers
        embed_rows = []
        for n in IMAGE_SIZES[pick]:
            folder = write_standins(tmp_path / f"images-{n}", n)
            for workers in (0, 2):
                cache_dir = tmp_path / f"cache-embed-{n}-{workers}"
                embed_rows.append(in_subprocess("embed", folder=str(folder), cache_dir=str(cache_dir), workers=workers))
            same = _same_vectors(tmp_path / f"cache-embed-{n}-0", tmp_path / f"cache-embed-{n}-2")
            embed_rows[-1]["same_as_one_process"] = same
        data["embed"] = embed_rows
        # 2. start-up without and with the flags, on a cached folder
        small = write_standins(tmp_path / "startup", 60, seed=1)
        startup_cache = str(tmp_path / "cache-startup")
        in_subprocess("startup", folder=str(small), cache_dir=startup_cache)           # fills the cache
        data["startup"] = [in_subprocess("startup", folder=str(small), cache_dir=startup_cache) for _ in range(3)]
        data["startup_workers"] = in_subprocess("startup", folder=str(small), cache_dir=startup_cache, workers=2)
        # 3. vectors: caching, clustering, membership, kNN
        data["cache"] = [in_subprocess("cache", n=n, cache_dir=str(tmp_path / f"cache-{n}")) for n in VECTOR_SIZES[pick]]
        for n in VECTOR_SIZES[pick]:
            _remove_tree(tmp_path / f"cache-{n}")
    data["cluster"] = [in_subprocess("cluster", n=n, method="kmeans") for n in VECTOR_SIZES[pick]]
    # auto (stability resamples of every candidate) at the middle size: above MAX_QUADRATIC_POINTS it compares
    # k-means and GMM only; at a million only k-means is timed
    data["cluster"] += [in_subprocess("cluster", n=VECTOR_SIZES[pick][1], method="auto")]
    n_real = MEMBERSHIP_REAL[pick]
    data["membership"] = [in_subprocess("membership", n_generated=n, n_real=n_real) for n in MEMBERSHIP_GENERATED[pick]]
    # exact at the middle size (1M x 10k exact costs ~10^12 multiply-adds: tens of minutes on 2 busy cores)
    data["knn"] = [in_subprocess("knn", n_data=VECTOR_SIZES[pick][1], n_query=n_real, method="exact")]
    data["knn"] += [in_subprocess("knn", n_data=n, n_query=n_real, method="faiss") for n in VECTOR_SIZES[pick][1:]]
    data["membership_run"] = membership_runs(MEMBERSHIP_RUN_GENERATED[pick], n_real)
    data["load_avg_end"] = list(os.getloadavg())
    lines = _markdown(data)
    return BenchSection(title="Scale: a large audit, 1 process and a 2-worker Dask cluster, extrapolated to 1M images",
                        markdown="\n".join(lines), data=data)


def _same_vectors(cache_a: Path, cache_b: Path) -> str:
    """Whether two caches hold the same vectors for the same keys (max abs difference)."""
    from synthscope.cache import EmbeddingCache
    from synthscope.features import get_extractor

    extractor = get_extractor("fingerprint")
    a = dict(zip(*_gather(EmbeddingCache(cache_a), extractor)))
    keys, vectors = _gather(EmbeddingCache(cache_b), extractor)
    if set(keys) != set(a):
        return "different keys"
    difference = max(float(np.abs(a[k] - v).max()) for k, v in zip(keys, vectors))
    return "identical" if difference == 0 else f"max |difference| {difference:.1e}"


def _gather(cache, extractor):
    keys, vectors = [], []
    for block_keys, block in cache.iter_vectors(extractor):
        keys += block_keys
        vectors += list(block)
    return keys, vectors


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _markdown(data: dict) -> list[str]:
    cores = data["cores"]
    lines = [f"{cores} CPU cores; load average at the start {'/'.join(f'{v:.1f}' for v in data['load_avg_start'])}, "
             f"at the end {'/'.join(f'{v:.1f}' for v in data['load_avg_end'])} (above {cores} other work shared the "
             "machine and every time is inflated). Each row ran in a fresh process; peak RSS is that process's."
             + (" Quick mode (small sizes)." if data["quick"] else ""), ""]
    # embedding
    lines += ["**Embedding from images** (`fingerprint`, stand-in PNGs, `cache_dataset` = `synthscope embed`, "
              f"chunks of {EMBED_CHUNK} images, one shard and one task each; the LocalCluster has 2 worker processes of 1 "
              "thread, and its time excludes its start):", "",
              "| images | engine | seconds (img/s) | load + sha256 s | client peak RSS | worker peak RSS | cluster start | "
              "vectors vs 1 process |", "|---|---|---|---|---|---|---|---|"]
    for row in data["embed"]:
        if "error" in row:
            lines.append(f"| {row.get('folder', '')} | workers {row.get('workers')} | failed: {row['error']} |||||||")
            continue
        engine = "1 process" if not row["workers"] else f"LocalCluster, {row['workers']} workers"
        lines.append(f"| {row['n']:,} | {engine} | {_t(row['seconds'])} ({row['n'] / row['seconds']:.0f}) | "
                     f"{_t(row['load_s'])} | {format_mb(row['peak_rss_mb'])} | "
                     f"{', '.join(format_mb(v) for v in row.get('worker_peak_rss_mb', [])) or '-'} | "
                     f"{_t(row.get('cluster_start_s'))} | {row.get('same_as_one_process', '-')} |")
    one = [r for r in data["embed"] if not r.get("workers") and "error" not in r]
    two = [r for r in data["embed"] if r.get("workers") and "error" not in r]
    slope_embed = loglog_slope([r["n"] for r in one], [r["seconds"] for r in one])
    data["slopes"] = {"embed": slope_embed}
    # start-up
    base = sorted(r["seconds"] for r in data["startup"] if "seconds" in r)
    flagged = data["startup_workers"]
    lines += ["", f"**Start-up** of `synthscope embed` on a cached 60-image folder, in-process CLI call after the "
              f"interpreter started: without flags median {_t(base[len(base) // 2]) if base else 'n/a'} over "
              f"{len(base)} runs, Dask imported: "
              f"{'yes' if any(r.get('dask_imported') for r in data['startup']) else 'no'}; with `--workers 2` "
              f"{_t(flagged.get('seconds'))} (a LocalCluster starts and stops). Results: the vectors column above "
              "compares every cached vector of the cluster run with the 1-process run."]
    # caching
    lines += ["", f"**Caching** {CACHE_DIM}-d float32 vectors as the embedding driver writes them (a shard per 1,024, "
              "small shards merged into shards of up to 256 MiB), then streamed back by a fresh reader "
              "(`EmbeddingCache.iter_vectors`, checksums verified):", "",
              "| vectors | size | write s | stream-read s | shards | peak RSS |", "|---|---|---|---|---|---|"]
    for row in data["cache"]:
        if "error" in row:
            lines.append(f"| {row.get('n')} | failed: {row['error']} |||||")
            continue
        lines.append(f"| {row['n']:,} | {row['gib']:.2f} GiB | {_t(row['write_s'])} | {_t(row['read_s'])} | "
                     f"{row['shards']} | {format_mb(row['peak_rss_mb'])} |")
    ok_cache = [r for r in data["cache"] if "error" not in r]
    data["slopes"]["cache_write"] = loglog_slope([r["n"] for r in ok_cache], [r["write_s"] for r in ok_cache])
    # clustering
    lines += ["", f"**Clustering** (`FingerprintClustering(k=4)`, {CLUSTER_DIM}-d mixture; `auto` adds stability "
              "resamples):", "", "| vectors | method | seconds | chosen | peak RSS |", "|---|---|---|---|---|"]
    for row in data["cluster"]:
        if "error" in row:
            lines.append(f"| {row.get('n')} | {row.get('method')} | failed: {row['error']} |||")
            continue
        lines.append(f"| {row['n']:,} | {row['method']} | {_t(row['seconds'])} | {row['chosen']} | "
                     f"{format_mb(row['peak_rss_mb'])} |")
    kmeans = [r for r in data["cluster"] if r.get("method") == "kmeans" and "error" not in r]
    data["slopes"]["cluster_kmeans"] = loglog_slope([r["n"] for r in kmeans], [r["seconds"] for r in kmeans])
    # membership
    lines += ["", f"**Membership feature-space scores** (`MembershipScorer().fit(generated).score(real)`, its five "
              f"scores, {CACHE_DIM}-d, the real pool leave-one-out) and the **kNN** under them "
              f"(`synthscope.knn`, 20 neighbours, {CLUSTER_DIM}-d):", "",
              "| generated | real | search | seconds | peak RSS |", "|---|---|---|---|---|"]
    for row in data["membership"]:
        if "error" in row:
            lines.append(f"| {row.get('n_generated')} | {row.get('n_real')} | failed: {row['error']} |||")
            continue
        lines.append(f"| {row['n_generated']:,} | {row['n_real']:,} | scorer ({row['index']}) | {_t(row['seconds'])} | "
                     f"{format_mb(row['peak_rss_mb'])} |")
    for row in data["knn"]:
        if "error" in row:
            lines.append(f"| {row.get('n_data')} | {row.get('n_query')} | {row.get('method')}: failed {row['error']} |||")
            continue
        lines.append(f"| {row['n_data']:,} | {row['n_query']:,} | kNN {row['method']} | {_t(row['seconds'])} | "
                     f"{format_mb(row['peak_rss_mb'])} |")
    lines += _membership_run_lines(data)
    members = [r for r in data["membership"] if "error" not in r]
    data["slopes"]["membership"] = loglog_slope([r["n_generated"] for r in members], [r["seconds"] for r in members])
    # slopes and extrapolation
    slopes = data["slopes"]
    lines += ["", "**Growth** (slope of log time on log size): " + "; ".join(
        f"{name} ~ n^{value:.2f}" for name, value in slopes.items() if math.isfinite(value)) + "."]
    lines += _extrapolation(data, one, two, ok_cache, kmeans, members)
    return lines


def _membership_run_lines(data: dict) -> list[str]:
    runs = data.get("membership_run") or []
    if not runs:
        return []
    done = [r for r in runs if "error" not in r]
    first = done[0] if done else {"dim": CACHE_DIM, "chunk": "?", "index_gib": "?"}
    lines = ["", f"**End-to-end membership run** (`run_membership`, a dev set of a tenth the size, every feature score "
             f"in the 4 default spaces and the gallery space; stand-in features of {first['dim']}-d per space written "
             "into an embedding cache first, in a process of its own, and read back by the run: the generated "
             f"features stream from the cache {first['chunk']} rows at a time, every score a running reduction, "
             f"faiss blocks of at most {first['index_gib']} GiB above 20,000 pooled generated vectors):", "",
             "| generated | real | search | features in the cache | seconds (CPU s) | peak RSS |", "|---|---|---|---|---|---|"]
    for row in runs:
        if "error" in row:
            lines.append(f"| {row.get('n_generated')} | {row.get('n_real')} | failed: {row['error']} ||||")
            continue
        lines.append(f"| {row['n_generated']:,} | {row['n_real']:,} | {row['search']} | {format_mb(row['features_mb'])} | "
                     f"{_t(row['seconds'])} ({_t(row.get('cpu_s'))}) | {format_mb(row['peak_rss_mb'])} |")
    slope = loglog_slope([r["n_generated"] for r in done], [r["seconds"] for r in done])
    data.setdefault("slopes", {})["membership_run"] = slope
    if math.isfinite(slope):
        peaks = [r["peak_rss_mb"] for r in done]
        lines += ["", f"Time grows as n^{slope:.2f} in the generated images (all rows; the search changes from exact to "
                  f"faiss on the way); peak RSS stays between {format_mb(min(peaks))} and {format_mb(max(peaks))} (the real images' "
                  "side: their features, the leave-one-out searches, the scan groups), the generated features "
                  "passing a chunk at a time. The real default spaces are wider (pixels-norm "
                  "and pixels-lung 4,096-d, pixels-128 16,384-d): their time grows with the width, their memory by the "
                  "chunk and one index block, not by the number of images. The image scores (registered, patches) are "
                  "left out here: they decode every generated image (a chunk at a time); the patch score has a "
                  "section of its own (`scale_patches`)."]
    return lines


def _extrapolation(data, one, two, cache_rows, kmeans, members) -> list[str]:
    if not one:
        return []
    slopes = data["slopes"]
    largest = max(one, key=lambda r: r["n"])
    per_process_rate = largest["n"] / largest["seconds"]            # images/s of 1 process (it used every core)
    cores = data["cores"]
    per_core = per_process_rate / cores
    cluster = max(two, key=lambda r: r["n"]) if two else None
    efficiency = (cluster["n"] / cluster["seconds"]) / (2 * per_core) if cluster else float("nan")
    embed_one_machine = AUDIT_IMAGES / (per_core * CORES_PER_MACHINE)
    embed_cluster = AUDIT_IMAGES / (per_core * CORES_PER_MACHINE * MACHINES * (efficiency if math.isfinite(efficiency) else 1))
    cache_big = max(cache_rows, key=lambda r: r["n"]) if cache_rows else None
    cache_1m = extrapolate(cache_big["n"], cache_big["write_s"] + cache_big["read_s"], 1.0, AUDIT_IMAGES) if cache_big else None
    km = max(kmeans, key=lambda r: r["n"]) if kmeans else None
    cluster_1m = extrapolate(km["n"], km["seconds"], slopes.get("cluster_kmeans", 1.0), AUDIT_IMAGES) if km else None
    mb = max(members, key=lambda r: r["n_generated"]) if members else None
    member_1m = extrapolate(mb["n_generated"], mb["seconds"], slopes.get("membership", 1.0), AUDIT_IMAGES) if mb else None
    data["extrapolation"] = {"per_core_img_s": per_core, "cluster_efficiency": efficiency,
                             "embed_one_machine_s": embed_one_machine, "embed_cluster_s": embed_cluster,
                             "cache_1m_s": cache_1m, "cluster_1m_s": cluster_1m, "membership_1m_s": member_1m}
    lines = ["", f"**Extrapolation to a {AUDIT_IMAGES:,}-image audit** (fingerprint features, cache, k-means, "
             f"membership scores against {mb['n_real']:,} real images)" if mb else "", "",
             f"- Embedding here: {per_process_rate:.0f} img/s in 1 process on {cores} cores = {per_core:.0f} img/s per "
             f"core; the 2-worker cluster reached {efficiency:.0%} of two such cores (decoding, the shared cache and "
             "task overhead included)." if math.isfinite(efficiency) else
             f"- Embedding here: {per_process_rate:.0f} img/s in 1 process on {cores} cores.",
             f"- **One machine of {CORES_PER_MACHINE} cores** (the GPU machine's CPU side; the fingerprint, pixel "
             f"spaces and decoding are CPU work): embedding {_t(embed_one_machine)}, caching {_t(cache_1m)}, "
             f"clustering {_t(cluster_1m)}, membership scores {_t(member_1m)}. A pretrained extractor "
             "(effnet-lite0, astra-ct) would run on the GPU there; no GPU was lent to the session that measured, so "
             "its throughput is not in these numbers.",
             f"- **{MACHINES} such machines on one Dask cluster** (`--scheduler`): embedding {_t(embed_cluster)} "
             f"(the per-core rate x {CORES_PER_MACHINE * MACHINES} cores x the measured cluster efficiency); caching, "
             "clustering and membership scoring run in the client as on one machine.",
             "- Assumptions: per-core speed as measured here under the load above (an idle core is faster), linear "
             "embedding cost (each image is independent), and the slopes above for clustering and membership; the "
             "machine sizes are assumptions, not measurements."]
    return lines


if __name__ == "__main__":
    sys.exit(print_measurement(MEASUREMENTS, sys.argv[1:]))
