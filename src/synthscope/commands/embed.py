"""`synthscope embed` (compute and cache embeddings) and `synthscope extractors` (what can run here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from synthscope.commands._common import (
    CacheDirOption, ChunkSizeOption, Device, DeviceOption, Layout, LayoutOption, ManifestOption, SchedulerOption,
    SizePolicy, SizePolicyOption, WorkersOption, apply_cache_dir, choice, engine_for, fail, guard_outputs, load_for,
    use_cache_dir,
)


def _parse_options(pairs: List[str]) -> dict:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, lists), else kept as text."""
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = value
    return options


def embed(
    path: Path = typer.Argument(..., help="A data folder in any ImageCLEF GANs layout, or a manifest CSV."),
    extractor: str = typer.Option("fingerprint", "--extractor", "-e", help="Extractor name (see `synthscope extractors`)."),
    device: Device = DeviceOption,
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per batch (default: the extractor's)."),
    option: List[str] = typer.Option([], "--option", "-o", help="Extractor option KEY=VALUE, e.g. -o model=ViT-B-32 -o pretrained=/path/ckpt.pt"),
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    cache_dir: Optional[Path] = CacheDirOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
    chunk_size: Optional[int] = ChunkSizeOption,
) -> None:
    """Compute the embeddings of every image in PATH (only those not cached yet) and store them in the cache.

    Images are computed a chunk at a time and each finished chunk is stored at once, so Ctrl-C keeps them
    and the next run computes only the rest. Memory depends on --chunk-size, not on the number of images.
    """
    guard_outputs({}, input_files={"--manifest": manifest}, data_folders={"PATH": path}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    device = choice(device)
    from synthscope.cache import DEFAULT_CHUNK_SIZE, CacheStats, EmbeddingCache, cache_dataset, dataset_keys
    from synthscope.features import ExtractorUnavailable, get_extractor

    try:
        options = _parse_options(option)
        chosen = get_extractor(extractor, **options)
    except KeyError as error:
        raise fail(str(error.args[0]))
    except (ExtractorUnavailable, ValueError, TypeError, FileNotFoundError) as error:
        raise fail(str(error))
    dataset = load_for(path, size_policy=size_policy, layout=layout, manifest=manifest)
    cache = EmbeddingCache()
    stats = CacheStats()
    try:
        with engine_for(workers, scheduler):
            cache_dataset(dataset, chosen, cache=cache, batch_size=batch_size or chosen.default_batch_size,
                          device=device, progress=True, stats=stats, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE)
    except ExtractorUnavailable as error:
        raise fail(str(error))
    except KeyboardInterrupt:
        kept = len(cache.keys(chosen) & set(dataset_keys(dataset)))
        raise fail(f"interrupted: {kept} of {len(dataset.manifest)} images are in the cache {cache.namespace(chosen)} "
                   "(every finished chunk is kept); run the same command again to compute the rest", code=130)
    rate = f", {stats.n_computed / stats.seconds:.1f} img/s" if stats.n_computed and stats.seconds > 0 else ""
    typer.echo(f"{extractor}: {stats.n_rows} images x {cache.dimension(chosen)} dims "
               f"({stats.n_cached} cached, {stats.n_computed} computed in {stats.seconds:.1f} s{rate})")
    typer.echo(f"cache: {stats.namespace}")


def extractors(cache_dir: Optional[Path] = CacheDirOption) -> None:
    """List the feature extractors, whether each can run here, and why not when it cannot."""
    from synthscope.features import list_extractors

    use_cache_dir(cache_dir)   # where astra-ct's joined weights would live

    infos = list_extractors()
    width = max(len(info.name) for info in infos)
    for info in infos:
        status = "available" if info.available else "unavailable"
        typer.echo(f"{info.name:<{width}}  {status:<11}  {info.description}")
        if not info.available:
            typer.echo(f"{'':<{width}}  {'':<11}  why: {info.reason}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
    app.command("extractors")(extractors)
