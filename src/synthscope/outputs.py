"""Writing files safely: one atomic-write helper, and the check that an output never touches an input.

Every file synthscope writes (run files, score files, caches, projections, sessions, reports) goes
through `atomic_writer`: a temporary file beside the target, flushed and fsync'd, then `os.replace`d
onto it, so a reader never sees half a file and a crash leaves the old file as it was. New files get
the mode any new file gets from this process (0644 under umask 022), not mkstemp's 0600.

`output_problems` says, before anything is computed, why a set of output paths would overwrite an
input (a data image, the ground truth, the manifest), write into a data folder, or write two
outputs onto one file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Mapping, Optional, Union

PathLike = Union[str, os.PathLike]


def process_umask() -> int:
    """The process umask, read from /proc where it can be so that it is never changed, even briefly
    (os.umask both sets and reads, which races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: PathLike, mode: str = "w", *, encoding: str = "utf-8", newline: Optional[str] = "",
                  durable: bool = True, file_mode: Optional[int] = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing (`mode` "w" or "wb"); on a clean exit it replaces
    `path` in one step, on any error (Ctrl-C included) it is removed and `path` is untouched.

    durable: fsync before the replace (off for caches that are cheap to recompute).
    file_mode: permission bits of the new file (default: what the umask gives a new file).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes with mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, (0o666 & ~process_umask()) if file_mode is None else file_mode)
        stream = os.fdopen(handle, mode) if mode == "wb" else os.fdopen(handle, mode, encoding=encoding, newline=newline)
        with stream:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str, **options) -> Path:
    """Write `text` to `path` atomically (no newline translation unless `newline` is given)."""
    with atomic_writer(path, "w", **options) as stream:
        stream.write(text)
    return Path(path)


def atomic_write_bytes(path: PathLike, data: bytes, **options) -> Path:
    with atomic_writer(path, "wb", **options) as stream:
        stream.write(data)
    return Path(path)


def atomic_save(path: PathLike, save: Callable[[IO[bytes]], None], **options) -> Path:
    """`save(binary_stream)` (np.save, pickle.dump, torch.save, ...) into `path` atomically."""
    with atomic_writer(path, "wb", **options) as stream:
        save(stream)
    return Path(path)


def publish_folder(staging: PathLike, root: PathLike) -> Path:
    """Put a folder built under a temporary name (beside `root`, on the same filesystem) in place of
    `root`: any older `root` goes first, then one rename, so readers see the old tree, none, or the
    whole new one, never half of it."""
    import shutil

    staging, root = Path(staging), Path(root)
    if root.exists():
        shutil.rmtree(root)
    os.replace(staging, root)
    return root


# ---------------------------------------------------------------------------------------------
# Outputs never touch inputs.

def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve(strict=False)


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)   # hard links, bind mounts
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_problems(outputs: Mapping[str, Optional[PathLike]], *,
                    input_files: Mapping[str, Optional[PathLike]] = {},
                    data_folders: Mapping[str, Optional[PathLike]] = {},
                    output_folders: Mapping[str, Optional[PathLike]] = {}) -> list[str]:
    """Why these outputs must not be written, one line each (empty when they are fine).

    outputs: option name -> file to write (None: not asked for).
    input_files: option name -> a file that is read (ground truth, manifest, groups CSV).
    data_folders: option name -> a folder (or file) of data that is read; nothing may be written in it.
    output_folders: option name -> a folder that is written into (cache, export root, lab's --out):
        it may not sit inside a data folder (a data folder inside it is fine: the demo lives in the cache).
    """
    problems: list[str] = []
    files = {name: _resolved(path) for name, path in outputs.items() if path is not None}
    inputs = {name: _resolved(path) for name, path in input_files.items() if path is not None}
    folders = {name: _resolved(path) for name, path in data_folders.items() if path is not None}
    written = {name: _resolved(path) for name, path in output_folders.items() if path is not None}

    names = list(files)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if _same_file(files[first], files[second]):
                problems.append(f"{first} and {second} name the same file {files[first]}; give each its own name")
    for name, path in files.items():
        for input_name, input_path in inputs.items():
            if _same_file(path, input_path):
                problems.append(f"{name} {path} is the {input_name} file this command reads; writing it would "
                                "destroy it. Give another name")
        for folder_name, folder in folders.items():
            if _inside(path, folder) or _same_file(path, folder):
                problems.append(f"{name} {path} is inside the data folder {folder} ({folder_name}); synthscope "
                                "never writes into data folders. Write it elsewhere")
    for name, folder in written.items():
        for folder_name, data in folders.items():
            if _inside(folder, data):
                problems.append(f"{name} {folder} is inside the data folder {data} ({folder_name}); synthscope "
                                "never writes into data folders. Choose a folder outside it")
    return problems


def image_folders(paths: Iterable[PathLike]) -> list[Path]:
    """The distinct folders that directly hold these image files (the data folders of a manifest)."""
    return sorted({_resolved(path).parent for path in paths})
