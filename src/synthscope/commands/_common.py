"""Options shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

CacheDirOption = typer.Option(
    None,
    "--cache-dir",
    help="Where embeddings, projections and sessions are cached (default: $SYNTHSCOPE_CACHE_DIR or the user cache dir).",
)


def apply_cache_dir(cache_dir: Optional[Path]) -> None:
    """Make --cache-dir win over the environment for everything this process computes."""
    if cache_dir is not None:
        os.environ["SYNTHSCOPE_CACHE_DIR"] = str(Path(cache_dir).expanduser().resolve())


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print one clear error line and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_dataset_or_fail(path: Path, **options):
    """Load a data set, or exit with its one-line error; unreadable files are counted, not fatal."""
    from synthscope.data import DatasetError, load_dataset

    try:
        dataset = load_dataset(path, **options)
    except DatasetError as error:
        raise fail(str(error))
    if dataset.report.skipped:
        typer.echo(f"skipped {len(dataset.report.skipped)} unreadable file(s) in {path}; `synthscope info {path}` lists them")
    return dataset
