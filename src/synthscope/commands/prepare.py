"""`synthscope prepare`: compute once what the dashboard only reads (embeddings and projections)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from synthscope.commands.attribute import ProjectionMethod
from synthscope.commands._common import (
    CacheDirOption, Device, DeviceOption, Layout, LayoutOption, ManifestOption, SizePolicy, SizePolicyOption,
    SchedulerOption, WorkersOption, apply_cache_dir, choice, engine_for, fail, guard_outputs,
)


def prepare_command(
    path: Path = typer.Argument(..., help="A data set, a folder with dev/ and test/, or a bench root with subtask1/ subtask2/."),
    extractor: List[str] = typer.Option(["fingerprint", "pixels"], "--extractor", "-e",
                                        help="Extractors to embed with (repeatable)."),
    projection: List[ProjectionMethod] = typer.Option(["umap", "tsne"], "--projection", "-p",
                                         help="Projections to cache for the attribution scatter (repeatable)."),
    size_policy: SizePolicy = SizePolicyOption,
    layout: Optional[Layout] = LayoutOption,
    manifest: Optional[Path] = ManifestOption,
    device: Device = DeviceOption,
    cache_dir: Optional[Path] = CacheDirOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Embed every data set under PATH and cache the projections the dashboard reads.

    UMAP spends about a minute compiling (numba) in each new process, so the dashboard never runs
    it; run this once instead. A second run only reads the caches.
    """
    guard_outputs({}, input_files={"--manifest": manifest}, data_folders={"PATH": path}, cache_dir=cache_dir)
    apply_cache_dir(cache_dir)
    from synthscope.datatree import WorkspaceError, prepare

    try:
        with engine_for(workers, scheduler):
            items = prepare(path, extractors=extractor, projections=[choice(m) for m in projection],
                            size_policy=choice(size_policy), layout=choice(layout), manifest_csv=manifest,
                            device=choice(device))
    except (WorkspaceError, KeyError, ValueError) as error:
        raise fail(str(error))
    for item in items:
        state = "computed" if item.computed else "cached"
        typer.echo(f"{state:>8}  {item.seconds:7.1f} s  {item.what}")


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare_command)
