"""Options shared by several commands."""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from synthscope.data import LAYOUTS, TWIN_LAYOUTS

CacheDirOption = typer.Option(
    None,
    "--cache-dir",
    help="Where embeddings, projections and sessions are cached (default: $SYNTHSCOPE_CACHE_DIR or the user cache dir).",
)


def use_cache_dir(cache_dir: Optional[Path]) -> None:
    """Make --cache-dir win over the environment for this process (commands that only read take it too,
    so every command accepts the same options; they write nothing there, so nothing is checked)."""
    if cache_dir is not None:
        os.environ["SYNTHSCOPE_CACHE_DIR"] = str(Path(cache_dir).expanduser().resolve())


def apply_cache_dir(cache_dir: Optional[Path]) -> None:
    """Make --cache-dir win over the environment for everything this process computes, and check
    now, before any computing, that the cache dir can be written (exit 2 with one line otherwise)."""
    from synthscope.cache import default_cache_dir

    use_cache_dir(cache_dir)
    what = "--cache-dir" if cache_dir is not None else "cache dir ($SYNTHSCOPE_CACHE_DIR or the user cache dir)"
    check_writable_dir(default_cache_dir(), what)


def _write_problem(directory: Path) -> Optional[str]:
    """Why files cannot be created in `directory` (created with its parents first), or None.

    A real test, not os.access alone: a temporary file is created and removed, so read-only mounts,
    root-squashed shares and ACLs are caught too, and so is a path under a regular file.
    """
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".synthscope-write-check-", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return f"cannot write there ({error.strerror or error})"
    return None


def check_writable_dir(path: Path, what: str) -> Path:
    """Exit 2 now, with one line, when folder `path` cannot be created or written; returns the path."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise fail(f"{what} {path} is a file, not a folder")
    problem = _write_problem(path)
    if problem:
        raise fail(f"{what} {path}: {problem}")
    return path


def check_output_file(path: Path, what: str = "--out") -> Path:
    """Exit 2 now, with one line, when file `path` cannot be written: it is a folder, sits under a
    file, or its folder is not writable. Call it before computing anything. Creates the folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise fail(f"{what} {path} is a folder; give the file to write, e.g. {path / 'run.csv'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise fail(f"{what} {path} exists and is read-only")
    problem = _write_problem(path.parent)
    if problem:
        raise fail(f"{what} {path}: its folder {path.parent}: {problem}")
    return path


def guard_outputs(outputs: dict, *, input_files: dict = {}, data_folders: dict = {}, output_folders: dict = {},
                  cache_dir: Optional[Path] = None, check_cache: bool = True) -> None:
    """Exit 2 now, before anything is computed or created, when an output would overwrite an input,
    write into a data folder or land on another output (`synthscope.outputs.output_problems`).
    The cache dir (--cache-dir, else $SYNTHSCOPE_CACHE_DIR or the user cache dir) counts as a folder
    that is written into."""
    from synthscope.outputs import output_problems
    from synthscope.runtime import default_cache_dir

    folders = dict(output_folders)
    if check_cache:
        folders["--cache-dir" if cache_dir is not None else "the cache dir"] = (
            cache_dir if cache_dir is not None else default_cache_dir())
    problems = output_problems(outputs, input_files=input_files, data_folders=data_folders, output_folders=folders)
    if problems:
        raise fail(problems[0] if len(problems) == 1 else
                   f"{len(problems)} output problems:\n  " + "\n  ".join(problems))


def guard_dataset_outputs(dataset, outputs: dict, what: str = "the data set") -> None:
    """After loading: no output may be one of the data set's images or sit in a folder that holds them
    (matters for a manifest, whose images can live anywhere)."""
    from synthscope.outputs import image_folders, output_problems

    if "path" not in dataset.manifest:
        return
    problems = []
    for folder in image_folders(dataset.manifest["path"]):
        problems += output_problems(outputs, data_folders={f"it holds images of {what}": folder})
    if problems:
        raise fail(problems[0] if len(problems) == 1 else
                   f"{len(problems)} output problems:\n  " + "\n  ".join(problems))


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


# ---------------------------------------------------------------------------------------------
# The options every image-reading command takes, with one meaning and one set of choices each.

class SizePolicy(str, Enum):
    error = "error"
    resize = "resize"
    center_crop = "center_crop"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


#: every layout `--layout` can force: the detected ones and their twins (2025-st2-test looks like 2024-st2-test)
Layout = Enum("Layout", {name.replace("-", "_"): name for name in LAYOUTS + tuple(TWIN_LAYOUTS.values())}, type=str)

SizePolicyOption = typer.Option(SizePolicy.error, "--size-policy", help="Images not 256x256: error, resize or center_crop.")
DeviceOption = typer.Option(Device.auto, "--device", help="Where pretrained extractors run.")
LayoutOption = typer.Option(None, "--layout", help="Force a layout instead of detecting it (e.g. 2025-st2-test).")
ManifestOption = typer.Option(None, "--manifest", help="CSV with path, role, label (and group) for any other tree.")
#: bootstrap resamples: the same bounds in every command (below 100 the percentile CIs are noise)
N_BOOT_MIN, N_BOOT_MAX = 100, 100_000
NBootOption = typer.Option(1000, "--n-boot", min=N_BOOT_MIN, max=N_BOOT_MAX, help="Bootstrap resamples for the CIs.")


WorkersOption = typer.Option(
    None, "--workers", min=1,
    help="Compute on a local Dask cluster of N worker processes (pip install 'synthscope[dask]').")
SchedulerOption = typer.Option(
    None, "--scheduler", help="Compute on a running Dask cluster at this address (tcp://host:8786; default "
    "$SYNTHSCOPE_SCHEDULER). Its workers must see the cache dir.")
ChunkSizeOption = typer.Option(
    None, "--chunk-size", min=1, help="Images per chunk: one cache shard and one cluster task each; memory "
    "grows with it, not with the number of images (default 1024).")


@contextlib.contextmanager
def engine_for(workers: Optional[int], scheduler: Optional[str]):
    """The Dask engine that --workers / --scheduler ask for, made active for everything computed inside
    (`synthscope.engine`), or None without them (then Dask is never imported). Exit 2 with one line when
    the cluster cannot be used."""
    if not workers and not scheduler and not os.environ.get("SYNTHSCOPE_SCHEDULER"):
        yield None     # not even synthscope.engine is imported: start-up is what it was without Dask
        return
    from synthscope.engine import EngineError, open_engine

    try:
        with open_engine(workers, scheduler) as engine:
            typer.echo(f"computing on {engine.description}", err=True)
            yield engine
    except EngineError as error:
        raise fail(str(error))


def choice(value) -> Optional[str]:
    """An Enum option's plain value (None stays None)."""
    return None if value is None else getattr(value, "value", value)


def load_for(path: Path, *, size_policy=SizePolicy.error, layout=None, manifest: Optional[Path] = None,
             task: Optional[str] = None, what: str = "data set"):
    """Load a data set with the shared options; exit with one line when it is not the task's kind."""
    dataset = load_dataset_or_fail(path, size_policy=choice(size_policy), layout=choice(layout), manifest_csv=manifest)
    if task == "membership" and dataset.task != "membership":
        raise fail(f"{what} {path} is a sub-task 2 tree (layout {dataset.layout}); membership needs real and "
                   f"generated images (sub-task 1 layout)")
    if task == "attribution" and not (dataset.manifest["role"] == "generated").any():
        raise fail(f"{what} {path} holds no generated images to attribute (layout {dataset.layout})")
    return dataset


def read_truth_or_fail(path: Path):
    """A ground-truth CSV (image_id plus used / model / subset), or exit with its one-line error."""
    from synthscope.data import DatasetError, read_ground_truth

    try:
        return read_ground_truth(path)
    except DatasetError as error:
        raise fail(str(error))
