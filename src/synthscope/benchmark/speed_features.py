"""Speed of every available extractor, cache reload of 50k vectors, and peak memory."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np

from synthscope.benchmark.base import BenchContext, BenchSection, cpu_count, median_time, peak_rss_mb

#: the issue's goals on this 2-core machine (img/s on CPU)
CPU_GOALS = {"fingerprint": 500.0, "effnet-lite0": 40.0}
#: goal on one H100
GPU_GOALS = {"effnet-lite0": 2000.0}
#: images timed per extractor (full run, quick run): heavy networks get fewer
N_IMAGES = {"astra-ct": (32, 8), "effnet-lite0": (256, 64), "open_clip": (0, 0)}
N_DEFAULT = (512, 64)


def _ct_images(ctx: BenchContext, n: int) -> tuple[np.ndarray, str]:
    """Real slices from ../shared/data/iqoth256 when present, else the project's procedural phantoms."""
    from PIL import Image

    pool = ctx.shared_dir / "data" / "iqoth256" if ctx.shared_dir else None
    if pool is not None and pool.is_dir():
        paths = sorted(pool.glob("real_*.png"))[:n]
        images = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
        source = f"{len(paths)} real IQ-OTH/NCCD slices"
    else:
        from synthscope.phantom import phantom_slices

        images = phantom_slices(max(1, n // 6 + 1), 6, seed=0).images
        source = f"{min(n, len(images))} procedural phantom slices"
    reps = int(np.ceil(n / len(images)))
    return np.concatenate([images] * reps)[:n], source


def _throughput(extractor, images: np.ndarray, batch_size: int, repeats: int) -> tuple[float, float, float]:
    """(images/s wall, images per CPU-second of this process, first-call seconds incl. model build).

    Wall time is the median of `repeats` full passes. CPU time is reported too because a shared
    machine's load lowers wall-clock throughput but hardly changes the CPU time each image costs.
    """
    start = time.perf_counter()
    extractor.transform(images[: min(len(images), 2)])
    first = time.perf_counter() - start

    def one_pass() -> None:
        for offset in range(0, len(images), batch_size):
            extractor.transform(images[offset:offset + batch_size])

    cpu_start = time.process_time()
    seconds = median_time(one_pass, repeats=repeats, warmup=0)
    cpu_seconds = (time.process_time() - cpu_start) / repeats
    return len(images) / seconds, len(images) / max(cpu_seconds, 1e-9), first


def _extractor_rows(ctx: BenchContext, device: str) -> tuple[list[dict], str]:
    from synthscope.features import get_extractor, list_extractors

    rows = []
    source = ""
    for info in list_extractors():
        full, quick = N_IMAGES.get(info.name, N_DEFAULT)
        n = quick if ctx.quick else full
        if device != "cpu" and n:
            n = 512 if ctx.quick else 4096  # a GPU needs enough work to reach steady state
        if not info.available:
            rows.append({"extractor": info.name, "device": device, "status": f"unavailable: {info.reason}"})
            continue
        if n == 0:
            rows.append({"extractor": info.name, "device": device,
                         "status": "needs a model argument; its presets are measured instead"})
            continue
        images, source = _ct_images(ctx, n)
        try:
            options = {"device": device} if info.name in ("effnet-lite0", "astra-ct") else {}
            if info.name == "astra-ct":
                options["weights_dir"] = ctx.cache_dir / "weights"
            extractor = get_extractor(info.name, **options)
            batch_size = extractor.default_batch_size if device == "cpu" else 256
            rate, per_cpu_s, first = _throughput(extractor, images, batch_size, repeats=1 if ctx.quick else 3)
            dim = extractor.transform(images[:1]).shape[1]
        except Exception as error:  # one failing extractor must not hide the others
            rows.append({"extractor": info.name, "device": device, "status": f"failed: {error}"})
            continue
        rows.append({"extractor": info.name, "device": device, "n_images": len(images), "batch_size": batch_size,
                     "dim": int(dim), "images_per_s": round(rate, 1), "images_per_cpu_s": round(per_cpu_s, 1),
                     "load_avg_1min": round(os.getloadavg()[0], 1), "first_call_s": round(first, 2),
                     "goal": (CPU_GOALS if device == "cpu" else GPU_GOALS).get(info.name),
                     "peak_rss_mb": round(peak_rss_mb()), "status": "ok"})
        del extractor
    return rows, source


def _cache_reload(ctx: BenchContext) -> dict:
    """Write n x 1280 float32 vectors as 5 shards (as 5 embedding runs would), then reload them all."""
    from synthscope.cache import EmbeddingCache
    from synthscope.features.texture import PixelsExtractor

    n, dim = (5_000, 1280) if ctx.quick else (50_000, 1280)
    root = Path(ctx.cache_dir) / f"reload-{uuid.uuid4().hex[:8]}"
    extractor = PixelsExtractor(size=17)  # any namespace; the vectors are random
    rng = np.random.default_rng(0)
    keys = [f"{i:064x}" for i in range(n)]
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    writer = EmbeddingCache(root)
    start = time.perf_counter()
    for part in np.array_split(np.arange(n), 5):
        writer.add(extractor, [keys[i] for i in part], vectors[part])
    write_s = time.perf_counter() - start

    start = time.perf_counter()
    found, loaded = EmbeddingCache(root).lookup(extractor, keys)  # a fresh reader verifies checksums
    cold_s = time.perf_counter() - start
    identical = bool(found.all() and np.array_equal(loaded, vectors))
    reader = EmbeddingCache(root)
    reader.lookup(extractor, keys[:10])
    warm_s = median_time(lambda: reader.lookup(extractor, keys), repeats=3 if ctx.quick else 5)
    size_mb = sum(p.stat().st_size for p in root.rglob("*")) / 2**20
    return {"n": n, "dim": dim, "write_s": round(write_s, 3), "reload_cold_s": round(cold_s, 3),
            "reload_warm_s": round(warm_s, 3), "size_mb": round(size_mb, 1), "identical": identical}


def run(ctx: BenchContext) -> BenchSection:
    import torch

    from synthscope.features.open_clip_models import _configure_threads

    _configure_threads()
    rows, source = _extractor_rows(ctx, "cpu")
    gpu_name = None
    if ctx.device in ("auto", "cuda") and torch.cuda.is_available():
        gpu_name = torch.cuda.get_device_name(0)
        gpu_rows, _ = _extractor_rows(ctx, "cuda")
        rows += [r for r in gpu_rows if r["extractor"] in ("effnet-lite0", "astra-ct")]
    reload = _cache_reload(ctx)

    lines = [f"Images: {source}, 256x256, already decoded (pure extractor time). CPU: {cpu_count()} cores, "
             f"torch threads {torch.get_num_threads()}." + (f" GPU: {gpu_name}." if gpu_name else " No GPU here."),
             "Images per CPU-second is the contention-free cost (x cores = the throughput of an idle machine "
             "if the work parallelises); the load average shows how busy the machine was.",
             "", "| extractor | device | dims | images/s | goal | images per CPU-s | load avg | "
             "first call (s, incl. model build) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['extractor']} | {row['device']} | | {row['status']} | | | | | |")
            continue
        goal = row["goal"]
        verdict = "" if goal is None else (f">= {goal:.0f} met" if row["images_per_s"] >= goal else f">= {goal:.0f} NOT met")
        lines.append(f"| {row['extractor']} | {row['device']} | {row['dim']} | {row['images_per_s']:.1f} | {verdict} | "
                     f"{row['images_per_cpu_s']:.1f} | {row['load_avg_1min']} | {row['first_call_s']:.2f} | "
                     f"{row['peak_rss_mb']} |")
    lines += ["", f"Cache: {reload['n']:,} x {reload['dim']} float32 vectors ({reload['size_mb']} MiB in 5 shards) "
              f"written in {reload['write_s']:.2f} s; reload by a fresh reader (checksums verified) "
              f"{reload['reload_cold_s']:.3f} s, warm reload (median) {reload['reload_warm_s']:.3f} s "
              "(goal < 1 s for 50,000)." + ("" if reload["identical"] else " **The reloaded vectors differed!**"), "", f"Peak RSS of the run so far: {peak_rss_mb():.0f} MiB."]
    return BenchSection(title="Feature extraction speed and cache reload", markdown="\n".join(lines),
                        data={"extractors": rows, "cache_reload": reload, "gpu": gpu_name,
                              "peak_rss_mb": round(peak_rss_mb())})
