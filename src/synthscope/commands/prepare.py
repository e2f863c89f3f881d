"""`synthscope prepare`: compute once what the dashboard only reads (embeddings and projections)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from synthscope.commands._common import CacheDirOption, apply_cache_dir, fail


def prepare_command(
    path: Path = typer.Argument(..., help="A data set, a folder with dev/ and test/, or a bench root with subtask1/ subtask2/."),
    extractor: List[str] = typer.Option(["fingerprint", "pixels"], "--extractor", "-e",
                                        help="Extractors to embed with (repeatable)."),
    projection: List[str] = typer.Option(["umap", "tsne"], "--projection", "-p",
                                         help="Projections to cache for the attribution scatter (repeatable)."),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Embed every data set under PATH and cache the projections the dashboard reads.

    UMAP spends about a minute compiling (numba) in each new process, so the dashboard never runs
    it; run this once instead. A second run only reads the caches.
    """
    apply_cache_dir(cache_dir)
    from synthscope.datatree import WorkspaceError, prepare

    try:
        items = prepare(path, extractors=extractor, projections=projection)
    except (WorkspaceError, KeyError, ValueError) as error:
        raise fail(str(error))
    for item in items:
        state = "computed" if item.computed else "cached"
        typer.echo(f"{state:>8}  {item.seconds:7.1f} s  {item.what}")


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare_command)
