"""Read every ImageCLEFmedical GANs folder layout (2023-2025, both sub-tasks) into one manifest.

`load_dataset(path)` detects the layout, decodes every image once (skipping unreadable files with a
reason), and returns a `Dataset`: a manifest table plus a load report. Nothing is written into the
data folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

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
REAL_LABELS = ("used", "not_used", "unknown")

LAYOUTS = (
    "2023-st1-dev",
    "2023-st1-test",
    "2025-st1-dev",
    "2025-st1-test",
    "2024-st1-dev",
    "2024-st1-test",
    "2025-st2-dev",
    "2024-st2-test",
    "2024-st2-dev",
)
# Layouts that share a folder shape with another one; the report mentions the twin.
TWIN_LAYOUTS = {"2024-st2-test": "2025-st2-test"}
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}
# Decoded arrays kept per dataset; beyond this, images are decoded again on each call.
MEMO_LIMIT_BYTES = int(os.environ.get("SYNTHSCOPE_IMAGE_MEMO_BYTES", 4 * 2**30))


class DatasetError(ValueError):
    """A folder or manifest that cannot be read as a data set; the message names files or layouts tried."""


@dataclass
class SkippedFile:
    path: str
    reason: str


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

    def get_many(self, paths: list[str]) -> np.ndarray:
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

    def images(self, rows=None) -> np.ndarray:
        """uint8 [n, 256, 256] for all rows, positional indices, or a boolean mask; decoded once and memoised."""
        paths = self.manifest["path"].to_numpy()
        if rows is not None:
            rows = np.asarray(rows)
            if rows.dtype == bool:
                if rows.shape != (len(paths),):
                    raise ValueError(f"boolean mask has shape {rows.shape}, expected ({len(paths)},)")
                rows = np.flatnonzero(rows)
            paths = paths[rows.astype(np.int64)]
        return self._store.get_many([str(p) for p in paths])

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
# Layout detection. Each matcher returns the candidate files as (path, role, group, label) rows,
# or raises _NoMatch with the reason, or raises DatasetError when the tree is clearly meant to be
# that layout but is broken (a model folder lacking real_not_used/, dev and test folders mixed).


class _NoMatch(Exception):
    pass


@dataclass
class _Entry:
    path: Path
    role: str
    group: str
    label: str


@dataclass
class _Listing:
    """What a folder holds, hidden and system files left out."""

    dirs: dict[str, Path]
    image_files: list[Path]
    other_files: list[Path]


def _list(folder: Path) -> _Listing:
    dirs, images, others = {}, [], []
    try:
        children = sorted(folder.iterdir())
    except OSError as error:
        raise DatasetError(f"cannot list {folder}: {error.strerror or error}") from None
    for child in children:
        if child.name.startswith(".") or child.name.lower() in _IGNORED_NAMES:
            continue
        if child.is_dir():
            dirs[child.name] = child
        elif is_image_file(child):
            images.append(child)
        else:
            others.append(child)
    return _Listing(dirs, images, others)


@dataclass
class _Match:
    entries: list[_Entry]
    split: str
    stray: list[SkippedFile] = field(default_factory=list)  # files found but outside the layout
    notes: list[str] = field(default_factory=list)


def _folder_files(folder: Path, role: str, group: str, label: str, match: _Match, where: str) -> None:
    """Add a role folder's image files; its non-image files and subfolders are reported, not read."""
    listing = _list(folder)
    for path in listing.image_files:
        match.entries.append(_Entry(path, role, group, label))
    for path in listing.other_files:
        match.stray.append(SkippedFile(str(path), f"not an image file (extension {path.suffix or 'none'!r})"))
    for name, sub in listing.dirs.items():
        match.notes.append(f"ignored subfolder {sub} inside {where} (the layout has no subfolders there)")
    if not listing.image_files:
        match.notes.append(f"{folder} holds no images")


def _root_strays(listing: _Listing, match: _Match, known: set[str]) -> None:
    for path in listing.image_files:
        match.stray.append(SkippedFile(str(path), "image outside the layout's folders"))
    for name, path in listing.dirs.items():
        if name not in known:
            match.notes.append(f"ignored folder {path} (not part of the detected layout)")


def _match_fixed(root: Path, listing: _Listing, folders: dict[str, tuple[str, str]], split: str, group: str = "") -> _Match:
    """A layout whose root holds fixed folder names, each mapping to (role, label)."""
    missing = [name for name in folders if name not in listing.dirs]
    if missing:
        raise _NoMatch(f"needs folders {', '.join(n + '/' for n in folders)}; missing {', '.join(n + '/' for n in missing)}")
    match = _Match([], split)
    for name, (role, label) in folders.items():
        if role == "generated" and _list(listing.dirs[name]).dirs and not _list(listing.dirs[name]).image_files:
            raise _NoMatch(f"{name}/ holds subfolders, not images")
        _folder_files(listing.dirs[name], role, group, label, match, f"{name}/")
    _root_strays(listing, match, set(folders))
    return match


def _match_2023_dev(root, listing):
    return _match_fixed(
        root, listing, {"generated": ("generated", "unknown"), "used": ("real", "used"), "not_used": ("real", "not_used")}, "dev"
    )


def _match_2023_test(root, listing):
    pattern = re.compile(r"^(generated|real_unknown)_(\d+)$")
    pairs: dict[str, dict[str, Path]] = {}
    for name, path in listing.dirs.items():
        found = pattern.match(name)
        if found:
            pairs.setdefault(found.group(2), {})[found.group(1)] = path
    if not pairs:
        raise _NoMatch("needs folders generated_<n>/ and real_unknown_<n>/")
    broken = [n for n, pair in pairs.items() if len(pair) != 2]
    if broken:
        have = ", ".join(sorted(name for n in broken for name in (f"{k}_{n}/" for k in pairs[n])))
        raise _NoMatch(f"needs generated_<n>/ and real_unknown_<n>/ in pairs; found only {have}")
    match = _Match([], "test")
    single = len(pairs) == 1
    for number in sorted(pairs, key=int):
        group = "" if single else f"set_{number}"
        _folder_files(pairs[number]["generated"], "generated", group, "unknown", match, f"generated_{number}/")
        _folder_files(pairs[number]["real_unknown"], "real", group, "unknown", match, f"real_unknown_{number}/")
    _root_strays(listing, match, {f"{k}_{n}" for n in pairs for k in ("generated", "real_unknown")})
    return match


_DEV_REAL_FOLDERS = ("real_used", "real_not_used")


def _check_2025_st1_splits(root, listing) -> None:
    """A flat sub-task 1 root with a dev folder: refuse it when it also holds the test folder, or when
    it lacks the other dev folder, naming only the folders that are there."""
    dev = [name for name in _DEV_REAL_FOLDERS if name in listing.dirs]
    if not dev:
        return
    named = ", ".join(name + "/" for name in dev)
    if "real_unknown" in listing.dirs:
        raise DatasetError(
            f"{root} mixes dev folder{'s' if len(dev) > 1 else ''} {named} with the test folder real_unknown/; "
            "load the labelled and unlabelled images separately"
        )
    missing = [name + "/" for name in ("generated",) + _DEV_REAL_FOLDERS if name not in listing.dirs]
    if missing:
        raise DatasetError(
            f"{root} holds {', '.join(name + '/' for name in sorted(listing.dirs))} but lacks {', '.join(missing)}: "
            "a 2025 sub-task 1 dev folder needs generated/, real_used/ and real_not_used/"
        )


def _match_2025_dev(root, listing):
    _check_2025_st1_splits(root, listing)
    return _match_fixed(
        root,
        listing,
        {"generated": ("generated", "unknown"), "real_used": ("real", "used"), "real_not_used": ("real", "not_used")},
        "dev",
    )


def _match_2025_test(root, listing):
    _check_2025_st1_splits(root, listing)
    return _match_fixed(root, listing, {"generated": ("generated", "unknown"), "real_unknown": ("real", "unknown")}, "test")


_ST1_DEV = {"generated": ("generated", None), "real_used": ("real", "used"), "real_not_used": ("real", "not_used")}
_ST1_TEST = {"generated": ("generated", None), "real_unknown": ("real", "unknown")}


def _match_2024_st1(root, listing, want_split: str):
    if not listing.dirs:
        raise _NoMatch("needs one folder per model holding generated/ and real_* folders")
    kinds: dict[str, str] = {}
    for name, path in listing.dirs.items():
        inner = _list(path).dirs
        if "generated" in inner and ("real_used" in inner or "real_not_used" in inner):
            kinds[name] = "dev"
        elif "generated" in inner and "real_unknown" in inner:
            kinds[name] = "test"
        elif any(n in inner for n in ("generated", "real_used", "real_not_used", "real_unknown")):
            kinds[name] = "broken"
        else:
            kinds[name] = "other"
    if all(kind == "other" for kind in kinds.values()):
        raise _NoMatch("no folder holds generated/ with real_used/ + real_not_used/ or real_unknown/")
    broken = sorted(name for name, kind in kinds.items() if kind in ("broken", "other"))
    if broken:
        raise DatasetError(
            f"{root} looks like a 2024 sub-task 1 tree (one folder per model), but "
            + "; ".join(
                f"{name}/ has {', '.join(sorted(d + '/' for d in _list(listing.dirs[name]).dirs)) or 'no folders'}"
                for name in broken
            )
            + ". Each model folder needs generated/ and real_used/ + real_not_used/ (dev) or real_unknown/ (test)."
        )
    splits = set(kinds.values())
    if splits == {"dev", "test"}:
        raise DatasetError(
            f"{root} mixes dev model folders ({', '.join(sorted(n for n, k in kinds.items() if k == 'dev'))}) "
            f"and test folders ({', '.join(sorted(n for n, k in kinds.items() if k == 'test'))}); load them separately"
        )
    split = splits.pop()
    if split != want_split:
        raise _NoMatch(f"folders are {split} folders")
    match = _Match([], split)
    folders = _ST1_DEV if split == "dev" else _ST1_TEST
    for name, path in listing.dirs.items():
        inner = _list(path)
        missing = [f for f in folders if f not in inner.dirs]
        if missing:
            raise DatasetError(f"{path} lacks {', '.join(m + '/' for m in missing)} (a 2024 sub-task 1 {split} model folder needs {', '.join(f + '/' for f in folders)})")
        for folder, (role, label) in folders.items():
            # Dev folders name their model; a test folder's generator is not known by name.
            generated_label = name if split == "dev" else "unknown"
            _folder_files(inner.dirs[folder], role, name, label or generated_label, match, f"{name}/{folder}/")
        for image in inner.image_files:
            match.stray.append(SkippedFile(str(image), "image outside the layout's folders"))
        for extra in inner.dirs:
            if extra not in folders:
                match.notes.append(f"ignored folder {inner.dirs[extra]} (not part of the detected layout)")
    for image in listing.image_files:
        match.stray.append(SkippedFile(str(image), "image outside the layout's folders"))
    return match


def _match_2024_st1_dev(root, listing):
    return _match_2024_st1(root, listing, "dev")


def _match_2024_st1_test(root, listing):
    return _match_2024_st1(root, listing, "test")


def _match_2025_st2_dev(root, listing):
    if not {"real", "generated"} <= set(listing.dirs):
        raise _NoMatch("needs real/<subset>/ and generated/<subset>/")
    real, generated = _list(listing.dirs["real"]), _list(listing.dirs["generated"])
    if not real.dirs or not generated.dirs:
        raise _NoMatch("real/ and generated/ must hold one folder per subset")
    match = _Match([], "dev")
    for role, top in (("real", real), ("generated", generated)):
        for subset, path in top.dirs.items():
            _folder_files(path, role, subset, subset, match, f"{role}/{subset}/")
        for image in top.image_files:
            match.stray.append(SkippedFile(str(image), f"image directly in {role}/ instead of a subset folder"))
    _root_strays(listing, match, {"real", "generated"})
    return match


def _match_st2_test(root, listing):
    if "generated_unknown" in listing.dirs:
        match = _Match([], "test")
        _folder_files(listing.dirs["generated_unknown"], "generated", "generated_unknown", "unknown", match, "generated_unknown/")
        _root_strays(listing, match, {"generated_unknown"})
        return match
    if root.name == "generated_unknown" and listing.image_files and not listing.dirs:
        match = _Match([], "test")
        for path in listing.image_files:
            match.entries.append(_Entry(path, "generated", "generated_unknown", "unknown"))
        return match
    raise _NoMatch("needs a flat generated_unknown/ folder")


def _match_2024_st2_dev(root, listing):
    if not listing.dirs:
        raise _NoMatch("needs one folder of images per generator")
    nested = [name for name, path in listing.dirs.items() if _list(path).dirs and not _list(path).image_files]
    if nested:
        raise _NoMatch(f"generator folders must hold images directly; {', '.join(n + '/' for n in nested)} hold(s) subfolders")
    match = _Match([], "dev")
    for name, path in listing.dirs.items():
        _folder_files(path, "generated", name, name, match, f"{name}/")
    _root_strays(listing, match, set(listing.dirs))
    return match


_MATCHERS: dict[str, Callable] = {
    "2023-st1-dev": _match_2023_dev,
    "2023-st1-test": _match_2023_test,
    "2025-st1-dev": _match_2025_dev,
    "2025-st1-test": _match_2025_test,
    "2024-st1-dev": _match_2024_st1_dev,
    "2024-st1-test": _match_2024_st1_test,
    "2025-st2-dev": _match_2025_st2_dev,
    "2024-st2-test": _match_st2_test,
    "2024-st2-dev": _match_2024_st2_dev,
}
assert tuple(_MATCHERS) == LAYOUTS


def _task_of(layout: str) -> str:
    return "attribution" if "-st2-" in layout else "membership"


def _detect(root: Path) -> tuple[str, _Match, list[str]]:
    listing = _list(root)
    if not listing.dirs and not listing.image_files:
        raise DatasetError(
            f"{root} is empty (no images or folders); tried layouts {', '.join(LAYOUTS)} and a manifest CSV "
            "(pass --manifest to read any other tree)"
        )
    reasons = []
    tried = []
    for layout, matcher in _MATCHERS.items():
        tried.append(layout)
        try:
            return layout, matcher(root, listing), tried
        except _NoMatch as why:
            reasons.append(f"  {layout}: {why}")
    found = ", ".join([name + "/" for name in listing.dirs] + [p.name for p in listing.image_files[:5]])
    raise DatasetError(
        f"{root}: unrecognised folder layout (it holds {found or 'nothing readable'}). Layouts tried:\n"
        + "\n".join(reasons)
        + "\nFor any other tree, write a manifest CSV with columns path, role, label (and optionally group) "
        "and pass it as manifest_csv / --manifest."
    )


# ---------------------------------------------------------------------------------------------
# Manifest CSV for any other tree.


def _read_manifest_csv(csv_path: Path) -> _Match:
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DatasetError(f"cannot read manifest {csv_path}: {error}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("path", "role", "label") if c not in table.columns]
    if missing:
        raise DatasetError(f"manifest {csv_path} lacks column(s) {', '.join(missing)}; it needs path, role, label (group optional)")
    if table.empty:
        raise DatasetError(f"manifest {csv_path} lists no images")
    problems = []
    entries = []
    for line, row in enumerate(table.itertuples(index=False), start=2):
        role = row.role.strip().lower()
        label = row.label.strip()
        group = getattr(row, "group", "").strip() if "group" in table.columns else ""
        raw_path = row.path.strip()
        if not raw_path:
            problems.append(f"line {line}: empty path")
            continue
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = csv_path.parent / path
        if role not in ("real", "generated"):
            problems.append(f"line {line}: role {row.role!r} is not 'real' or 'generated'")
            continue
        if role == "real":
            label = {"1": "used", "0": "not_used", "": "unknown"}.get(label, label.lower())
            if label not in REAL_LABELS:
                problems.append(f"line {line}: real image label {row.label!r} is not used, not_used or unknown")
                continue
        elif not label:
            label = "unknown"
        entries.append(_Entry(path, role, group, label))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DatasetError(f"manifest {csv_path} has {len(problems)} bad row(s):\n  " + "\n  ".join(shown))
    roles = {e.role for e in entries}
    labelled = any(e.label != "unknown" for e in entries if e.role == "real") if "real" in roles else any(
        e.label != "unknown" for e in entries
    )
    return _Match(entries, "dev" if labelled else "test")


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
        match = _read_manifest_csv(csv_path)
        layout_name, tried = "manifest", ["manifest"]
        root = root.resolve() if root.exists() else csv_path.parent
    else:
        if not root.exists():
            raise DatasetError(f"data folder not found: {root}")
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder (pass a folder, or a manifest CSV with path, role, label columns)")
        root = root.resolve()
        if layout is not None:
            forced = {"2025-st2-test": "2024-st2-test"}.get(layout, layout)
            if forced not in _MATCHERS:
                raise DatasetError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS + ('2025-st2-test',))}")
            try:
                match = _MATCHERS[forced](root, _list(root))
            except _NoMatch as why:
                raise DatasetError(f"{root} is not a {layout} tree: {why}") from None
            layout_name, tried = layout, [layout]
        else:
            layout_name, match, tried = _detect(root)

    # Decode everything once (threads: Pillow releases the GIL), so unreadable files are known now.
    entries = match.entries
    store = _ImageStore(size_policy)

    def decode(entry: _Entry):
        try:
            decoded, data = read_image_file(entry.path, size_policy)
        except ImageReadError as error:
            return None, error, None
        digest = hashlib.sha256(data).hexdigest() if compute_sha else ""
        return decoded, None, digest

    results = map_threaded(decode, entries)
    skipped = list(match.stray)
    wrong_size = []
    rows = []
    notes_by_path: dict[str, list[str]] = {}
    for entry, (decoded, error, digest) in zip(entries, results):
        if decoded is None:
            if error.kind == "size":
                wrong_size.append(f"{entry.path} ({error.reason.split(' is not')[0].removeprefix('size ')})")
            else:
                skipped.append(SkippedFile(str(entry.path), error.reason))
            continue
        path_str = str(entry.path.resolve()) if not entry.path.is_absolute() else str(entry.path)
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
    if layout_name != "manifest" and _task_of(layout_name) == "membership":
        for role in ("generated", "real"):
            if not (manifest["role"] == role).any():
                warnings_.append(f"no readable {role} images: membership needs both roles")
    report = LoadReport(layout=layout_name, tried=tried, n_images=len(manifest), skipped=skipped, warnings=warnings_)
    task = _manifest_task(manifest) if layout_name == "manifest" else _task_of(layout_name)
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
