"""Read every ImageCLEFmedical GANs folder layout (2023-2025, both sub-tasks) into one manifest.

`load_dataset(path)` detects the layout (`synthscope.layouts`), decodes every image once (skipping
unreadable files with a reason), and returns a `Dataset`: a manifest table plus a load report.
Nothing is written into the data folder. `read_ground_truth` reads a truth CSV by its column names.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from synthscope.imageio import (
    IMAGE_SIZE,
    NOTE_MESSAGES,
    ImageReadError,
    check_size_policy,
    is_image_file,
    load_images,
    map_threaded,
    read_image,
    read_image_file,
)
from synthscope.layouts import (  # LAYOUTS, REAL_LABELS, TWIN_LAYOUTS, DatasetError, SkippedFile: also public here
    LAYOUTS,
    REAL_LABELS,
    TWIN_LAYOUTS,
    DatasetError,
    Entry,
    SkippedFile,
    detect_layout,
    match_layout,
    read_manifest_csv,
    task_of,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "ImageReadError",
    "LAYOUTS",
    "LoadReport",
    "SkippedFile",
    "load_dataset",
    "load_images",
    "read_ground_truth",
    "read_image",
]

MANIFEST_COLUMNS = ["image_id", "path", "role", "group", "label", "sha256"]

# Decoded arrays kept per dataset, all or nothing: a data set whose images fit (ImageCLEF folders, up to
# ~16k images) is decoded once; a larger one is decoded again on each call, so that memory stays bounded
# by the chunk being worked on instead of filling this much first.
MEMO_LIMIT_BYTES = int(os.environ.get("SYNTHSCOPE_IMAGE_MEMO_BYTES", 2**30))
_LOAD_CHUNK = 2048   # images decoded at once while a data set is loaded


@dataclass
class LoadReport:
    layout: str
    tried: list[str]
    n_images: int
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"layout: {self.layout} (tried: {', '.join(self.tried)})", f"images read: {self.n_images}"]
        if self.skipped:
            lines.append(f"skipped: {len(self.skipped)} file(s)")
            lines.extend(f"  {item.path}: {item.reason}" for item in self.skipped)
        else:
            lines.append("skipped: none")
        lines.extend(f"warning: {message}" for message in self.warnings)
        return "\n".join(lines)


class _ImageStore:
    """Decoded arrays by path, shared by a dataset and its subsets; thread-safe."""

    def __init__(self, size_policy: str, limit_bytes: Optional[int] = None):
        self.size_policy = size_policy
        self.limit_bytes = MEMO_LIMIT_BYTES if limit_bytes is None else limit_bytes
        self._arrays: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def put(self, path: str, array: np.ndarray) -> None:
        with self._lock:
            if (len(self._arrays) + 1) * IMAGE_SIZE * IMAGE_SIZE <= self.limit_bytes:
                self._arrays[path] = array

    def get_many(self, paths: list[str], memoise: bool = True) -> np.ndarray:
        out = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        with self._lock:
            missing = []
            for index, path in enumerate(paths):
                array = self._arrays.get(path)
                if array is None:
                    missing.append(index)
                else:
                    out[index] = array
        if missing:
            decoded = load_images([paths[i] for i in missing], self.size_policy)
            for row, index in enumerate(missing):
                out[index] = decoded[row]
                if memoise:
                    self.put(paths[index], decoded[row].copy())
        return out


@dataclass
class Dataset:
    root: Path
    layout: str
    task: str  # "membership" (sub-task 1) | "attribution" (sub-task 2)
    split: str  # "dev" (labelled) | "test" (unlabelled)
    manifest: pd.DataFrame
    report: LoadReport
    size_policy: str = "error"
    _store: Optional[_ImageStore] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._store is None:
            self._store = _ImageStore(self.size_policy)

    def __len__(self) -> int:
        return len(self.manifest)

    def images(self, rows=None, *, memoise: bool = True) -> np.ndarray:
        """uint8 [n, 256, 256] for all rows, positional indices, or a boolean mask; decoded once and memoised
        when the whole data set fits in `MEMO_LIMIT_BYTES` (and `memoise`), else decoded on every call."""
        paths = self.manifest["path"].to_numpy()
        if rows is not None:
            rows = np.asarray(rows)
            if rows.dtype == bool:
                if rows.shape != (len(paths),):
                    raise ValueError(f"boolean mask has shape {rows.shape}, expected ({len(paths)},)")
                rows = np.flatnonzero(rows)
            paths = paths[rows.astype(np.int64)]
        fits = len(self.manifest) * IMAGE_SIZE * IMAGE_SIZE <= self._store.limit_bytes
        return self._store.get_many([str(p) for p in paths], memoise=memoise and fits)

    def subset(self, mask) -> "Dataset":
        """A dataset of the selected rows (boolean mask or positional indices) sharing the decoded images."""
        mask = np.asarray(mask)
        rows = np.flatnonzero(mask) if mask.dtype == bool else mask.astype(np.int64)
        manifest = self.manifest.iloc[rows].reset_index(drop=True)
        report = replace(self.report, n_images=len(manifest))
        return replace(self, manifest=manifest, report=report)

    def groups(self) -> list[str]:
        return sorted(self.manifest["group"].unique().tolist())

    @property
    def real(self) -> pd.DataFrame:
        return self.manifest[self.manifest["role"] == "real"]

    @property
    def generated(self) -> pd.DataFrame:
        return self.manifest[self.manifest["role"] == "generated"]

    def counts(self) -> pd.DataFrame:
        """Image counts per group, role and label."""
        return (
            self.manifest.groupby(["group", "role", "label"], sort=True).size().rename("n_images").reset_index()
        )


# ---------------------------------------------------------------------------------------------


def _aggregate_notes(notes_by_path: dict[str, list[str]]) -> list[str]:
    by_kind: dict[str, list[str]] = {}
    for path, notes in notes_by_path.items():
        for note in notes:
            by_kind.setdefault(note, []).append(path)
    messages = []
    for kind, paths in by_kind.items():
        shown = ", ".join(Path(p).name for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
        messages.append(f"{len(paths)} file(s): {NOTE_MESSAGES[kind]} ({shown})")
    return messages


def load_dataset(
    path,
    *,
    manifest_csv=None,
    size_policy: str = "error",
    compute_sha: bool = True,
    layout: Optional[str] = None,
) -> Dataset:
    """Detect the layout of `path`, decode every image once and return the Dataset.

    Unreadable files are skipped and listed in `report.skipped`; images that are not 256x256 raise a
    DatasetError under size_policy="error" (choose "resize" or "center_crop"). `layout` forces one
    layout instead of detecting (useful for the 2025 sub-task 2 test folder, which looks like 2024's).
    """
    check_size_policy(size_policy)
    root = Path(path).expanduser()
    if manifest_csv is None and root.is_file() and root.suffix.lower() == ".csv":
        manifest_csv, root = root, root.parent
    if manifest_csv is not None:
        csv_path = Path(manifest_csv).expanduser().resolve()
        if not csv_path.is_file():
            raise DatasetError(f"manifest CSV not found: {csv_path}")
        match = read_manifest_csv(csv_path)
        layout_name, tried = "manifest", ["manifest"]
        root = root.resolve() if root.exists() else csv_path.parent
    else:
        if not root.exists():
            raise DatasetError(f"data folder not found: {root}")
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder (pass a folder, or a manifest CSV with path, role, label columns)")
        root = root.resolve()
        if layout is not None:
            match = match_layout(root, layout)
            layout_name, tried = layout, [layout]
        else:
            layout_name, match, tried = detect_layout(root)

    # Decode everything once (threads: Pillow releases the GIL), so unreadable files are known now.
    entries = match.entries
    store = _ImageStore(size_policy)

    def decode(entry: Entry):
        try:
            decoded, data = read_image_file(entry.path, size_policy)
        except ImageReadError as error:
            return None, error, None
        digest = hashlib.sha256(data).hexdigest() if compute_sha else ""
        return decoded, None, digest

    # In chunks, keeping the arrays only when all of them fit the memo: memory stays bounded at any size.
    keep = len(entries) * IMAGE_SIZE * IMAGE_SIZE <= store.limit_bytes
    skipped = list(match.stray)
    wrong_size = []
    rows = []
    notes_by_path: dict[str, list[str]] = {}
    for entry, (decoded, error, digest) in (pair for start in range(0, len(entries), _LOAD_CHUNK)
                                             for pair in zip(entries[start:start + _LOAD_CHUNK],
                                                             map_threaded(decode, entries[start:start + _LOAD_CHUNK]))):
        if decoded is None:
            if error.kind == "size":
                wrong_size.append(f"{entry.path} ({error.reason.split(' is not')[0].removeprefix('size ')})")
            else:
                skipped.append(SkippedFile(str(entry.path), error.reason))
            continue
        path_str = str(entry.path.resolve()) if not entry.path.is_absolute() else str(entry.path)
        if keep:
            store.put(path_str, decoded.array)
        if decoded.notes:
            notes_by_path[path_str] = decoded.notes
        rows.append((entry.path.stem, path_str, entry.role, entry.group, entry.label, digest))
    if wrong_size:
        shown = "\n  ".join(wrong_size[:20]) + (f"\n  ... and {len(wrong_size) - 20} more" if len(wrong_size) > 20 else "")
        raise DatasetError(
            f"{len(wrong_size)} image(s) in {root} are not {IMAGE_SIZE}x{IMAGE_SIZE}:\n  {shown}\n"
            "Choose how to handle them: size_policy='resize' (--size-policy resize) rescales, "
            "'center_crop' keeps the pixel grid and crops or pads."
        )
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    _check_duplicate_ids(manifest, root)
    if manifest.empty:
        reasons = "".join(f"\n  {s.path}: {s.reason}" for s in skipped[:20])
        raise DatasetError(f"{root}: no readable images in layout {layout_name}" + (f"; skipped:{reasons}" if reasons else ""))
    manifest = manifest.sort_values(["group", "role", "image_id"], kind="stable").reset_index(drop=True)

    warnings_ = list(match.notes) + _aggregate_notes(notes_by_path)
    if layout_name != "manifest" and task_of(layout_name) == "membership":
        for role in ("generated", "real"):
            if not (manifest["role"] == role).any():
                warnings_.append(f"no readable {role} images: membership needs both roles")
    report = LoadReport(layout=layout_name, tried=tried, n_images=len(manifest), skipped=skipped, warnings=warnings_)
    task = _manifest_task(manifest) if layout_name == "manifest" else task_of(layout_name)
    return Dataset(
        root=root,
        layout=layout_name,
        task=task,
        split=match.split,
        manifest=manifest,
        report=report,
        size_policy=size_policy,
        _store=store,
    )


def _manifest_task(manifest: pd.DataFrame) -> str:
    return "membership" if (manifest["role"] == "real").any() else "attribution"


def _check_duplicate_ids(manifest: pd.DataFrame, root: Path) -> None:
    duplicated = manifest[manifest["image_id"].duplicated(keep=False)]
    if duplicated.empty:
        return
    pairs = [
        f"{image_id}: " + " and ".join(group["path"].tolist())
        for image_id, group in duplicated.groupby("image_id", sort=True)
    ]
    shown = "\n  ".join(pairs[:10]) + (f"\n  ... and {len(pairs) - 10} more" if len(pairs) > 10 else "")
    raise DatasetError(
        f"{len(pairs)} duplicate image id(s) in {root} (an image id is the file name without extension "
        f"and must be unique, because run files name images by it):\n  {shown}"
    )


# ---------------------------------------------------------------------------------------------
# Ground truth.

_ID_HEADERS = {"image_id", "id", "image", "filename", "file", "name", "image_name"}
_USED_WORDS = {"used": 1, "not_used": 0, "1": 1, "0": 0}
#: ground-truth label columns by name: sub-task 1 membership, sub-task 2 generator / subset
MEMBERSHIP_COLUMNS = ("used",)
ATTRIBUTION_COLUMNS = ("model", "subset", "generator", "cluster")


def _is_used_word(values: pd.Series) -> pd.Series:
    return values.str.lower().isin(list(_USED_WORDS))


def read_ground_truth(csv) -> pd.Series:
    """Ground truth as a Series indexed by image_id: int 0/1 (sub-task 1) or str model/subset (sub-task 2).

    Columns are read by name: an id column (`image_id`, or id/image/filename/name) and one label
    column, `used` (0/1 or used/not_used: sub-task 1) or `model`/`subset`/`generator`/`cluster`
    (sub-task 2); other columns are ignored. A file without a header must have exactly two columns,
    id then label. Anything else (no label column, two of them, 0/1 labels in the id column, a
    `used` column holding other values) is a DatasetError that says what was found.
    Ids may carry an image extension.
    """
    csv = Path(csv).expanduser()
    try:
        table = pd.read_csv(csv, header=None, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except FileNotFoundError:
        raise DatasetError(f"ground truth not found: {csv}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read ground truth {csv}: {error}") from None
    if table.shape[1] < 2:
        raise DatasetError(f"ground truth {csv} needs two columns (image_id, label); found {table.shape[1]}")
    table = table.apply(lambda column: column.str.strip())
    header = [str(value) for value in table.iloc[0]]
    lowered = [name.lower() for name in header]
    accepted = f"an id column ({', '.join(sorted(_ID_HEADERS))}) and one of {', '.join(MEMBERSHIP_COLUMNS + ATTRIBUTION_COLUMNS)}"
    if any(name in _ID_HEADERS for name in lowered):
        id_columns = [i for i, name in enumerate(lowered) if name in _ID_HEADERS]
        label_columns = [i for i, name in enumerate(lowered) if name in MEMBERSHIP_COLUMNS + ATTRIBUTION_COLUMNS]
        if "image_id" in lowered:
            id_columns = [lowered.index("image_id")]
        if len(id_columns) != 1:
            raise DatasetError(f"ground truth {csv} has {len(id_columns)} id columns ({', '.join(header[i] for i in id_columns)}); "
                               "keep one, named image_id")
        if len(label_columns) != 1:
            found = "none" if not label_columns else ", ".join(header[i] for i in label_columns)
            raise DatasetError(f"ground truth {csv} must have exactly one label column ({', '.join(MEMBERSHIP_COLUMNS + ATTRIBUTION_COLUMNS)}); "
                               f"found {found} among its columns {', '.join(header)}")
        id_column, label_column = id_columns[0], label_columns[0]
        name = lowered[label_column]
        table = table.iloc[1:]
    else:
        if table.shape[1] != 2:
            raise DatasetError(f"ground truth {csv} has {table.shape[1]} columns and no header; name them "
                               f"({accepted}), or keep only image_id,label")
        id_column, label_column, name = 0, 1, "label"
    if table.empty:
        raise DatasetError(f"ground truth {csv} has no rows")
    ids, values = table.iloc[:, id_column], table.iloc[:, label_column]
    empty = (ids == "") | (values == "")
    if empty.any():
        raise DatasetError(f"ground truth {csv} has {int(empty.sum())} row(s) with an empty id or label")
    used_values, used_ids = _is_used_word(values), _is_used_word(ids)
    if used_ids.all() and not used_values.all():
        raise DatasetError(f"ground truth {csv}: the id column holds 0/1 labels and the label column holds "
                           f"{values.iloc[0]!r}, ...: are the columns swapped? Expected image_id first "
                           "(or name the columns image_id and used / model)")
    if name in MEMBERSHIP_COLUMNS and not used_values.all():
        bad = sorted(values[~used_values].unique())
        raise DatasetError(f"ground truth {csv}: column {header[label_column]!r} must hold 0/1 (or used/not_used) "
                           f"for sub-task 1; found {', '.join(map(repr, bad[:5]))}" + (" ..." if len(bad) > 5 else ""))
    ids = ids.map(lambda value: Path(value).stem if is_image_file(value) else value)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise DatasetError(f"ground truth {csv} lists {len(duplicated)} id(s) twice, e.g. {', '.join(duplicated[:5])}")
    if name in MEMBERSHIP_COLUMNS or (name == "label" and used_values.all()):
        series = pd.Series(values.str.lower().map(_USED_WORDS).astype(int).to_numpy(), index=ids.to_numpy(), name="used")
    else:
        series = pd.Series(values.to_numpy(), index=ids.to_numpy(), name=name, dtype=object)
    series.index.name = "image_id"
    return series
