"""The ImageCLEFmedical GANs folder layouts (2023-2025, both sub-tasks): which one a folder is, and its files.

`detect_layout(root)` lists the folder (nothing is decoded) and tries each layout's matcher in turn;
`match_layout(root, layout)` applies one. A matcher returns the candidate files as `Entry` rows
(path, role, group, label) in a `LayoutMatch`, with the files it found outside the layout and notes
for the load report. `read_manifest_csv` does the same for any other tree. `synthscope.data` decodes
what they list into a `Dataset`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from synthscope.imageio import is_image_file

__all__ = [
    "DatasetError",
    "Entry",
    "LAYOUTS",
    "LayoutMatch",
    "REAL_LABELS",
    "SkippedFile",
    "TWIN_LAYOUTS",
    "detect_layout",
    "match_layout",
    "read_manifest_csv",
    "task_of",
]

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


class DatasetError(ValueError):
    """A folder or manifest that cannot be read as a data set; the message names files or layouts tried."""


@dataclass
class SkippedFile:
    path: str
    reason: str


# ---------------------------------------------------------------------------------------------
# Layout detection. Each matcher returns the candidate files as (path, role, group, label) rows,
# or raises _NoMatch with the reason, or raises DatasetError when the tree is clearly meant to be
# that layout but is broken (a model folder lacking real_not_used/, dev and test folders mixed).


class _NoMatch(Exception):
    pass


@dataclass
class Entry:
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
class LayoutMatch:
    entries: list[Entry]
    split: str
    stray: list[SkippedFile] = field(default_factory=list)  # files found but outside the layout
    notes: list[str] = field(default_factory=list)


def _folder_files(folder: Path, role: str, group: str, label: str, match: LayoutMatch, where: str) -> None:
    """Add a role folder's image files; its non-image files and subfolders are reported, not read."""
    listing = _list(folder)
    for path in listing.image_files:
        match.entries.append(Entry(path, role, group, label))
    for path in listing.other_files:
        match.stray.append(SkippedFile(str(path), f"not an image file (extension {path.suffix or 'none'!r})"))
    for name, sub in listing.dirs.items():
        match.notes.append(f"ignored subfolder {sub} inside {where} (the layout has no subfolders there)")
    if not listing.image_files:
        match.notes.append(f"{folder} holds no images")


def _root_strays(listing: _Listing, match: LayoutMatch, known: set[str]) -> None:
    for path in listing.image_files:
        match.stray.append(SkippedFile(str(path), "image outside the layout's folders"))
    for name, path in listing.dirs.items():
        if name not in known:
            match.notes.append(f"ignored folder {path} (not part of the detected layout)")


def _match_fixed(root: Path, listing: _Listing, folders: dict[str, tuple[str, str]], split: str, group: str = "") -> LayoutMatch:
    """A layout whose root holds fixed folder names, each mapping to (role, label)."""
    missing = [name for name in folders if name not in listing.dirs]
    if missing:
        raise _NoMatch(f"needs folders {', '.join(n + '/' for n in folders)}; missing {', '.join(n + '/' for n in missing)}")
    match = LayoutMatch([], split)
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
    match = LayoutMatch([], "test")
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
        elif any(n in inner for n in ("real_used", "real_not_used", "real_unknown")) or set(inner) == {"generated"}:
            kinds[name] = "broken"   # a model folder with a part missing
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
    match = LayoutMatch([], split)
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
    match = LayoutMatch([], "dev")
    for role, top in (("real", real), ("generated", generated)):
        for subset, path in top.dirs.items():
            _folder_files(path, role, subset, subset, match, f"{role}/{subset}/")
        for image in top.image_files:
            match.stray.append(SkippedFile(str(image), f"image directly in {role}/ instead of a subset folder"))
    _root_strays(listing, match, {"real", "generated"})
    return match


def _match_st2_test(root, listing):
    if "generated_unknown" in listing.dirs:
        match = LayoutMatch([], "test")
        _folder_files(listing.dirs["generated_unknown"], "generated", "generated_unknown", "unknown", match, "generated_unknown/")
        _root_strays(listing, match, {"generated_unknown"})
        return match
    if root.name == "generated_unknown" and listing.image_files and not listing.dirs:
        match = LayoutMatch([], "test")
        for path in listing.image_files:
            match.entries.append(Entry(path, "generated", "generated_unknown", "unknown"))
        return match
    raise _NoMatch("needs a flat generated_unknown/ folder")


def _match_2024_st2_dev(root, listing):
    if not listing.dirs:
        raise _NoMatch("needs one folder of images per generator")
    nested = [name for name, path in listing.dirs.items() if _list(path).dirs and not _list(path).image_files]
    if nested:
        raise _NoMatch(f"generator folders must hold images directly; {', '.join(n + '/' for n in nested)} hold(s) subfolders")
    match = LayoutMatch([], "dev")
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


def task_of(layout: str) -> str:
    return "attribution" if "-st2-" in layout else "membership"


def detect_layout(root: Path) -> tuple[str, LayoutMatch, list[str]]:
    """(layout, its files, layouts tried) of `root`, trying each layout in `LAYOUTS` order; a DatasetError
    lists every layout's reason when none fits."""
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
    below = _data_sets_below(root)
    if below:
        shown = ", ".join(f"{path.relative_to(root)}/ ({layout}{' or ' + TWIN_LAYOUTS[layout] if layout in TWIN_LAYOUTS else ''})"
                          for path, layout in below)
        raise DatasetError(
            f"{root} holds data sets, not one: {shown}. Give one of them (e.g. {below[0][0]}); "
            "`synthscope prepare` and `synthscope dashboard` read the whole tree"
        )
    found = ", ".join([name + "/" for name in listing.dirs] + [p.name for p in listing.image_files[:5]])
    raise DatasetError(
        f"{root}: unrecognised folder layout (it holds {found or 'nothing readable'}). Layouts tried:\n"
        + "\n".join(reasons)
        + "\nFor any other tree, write a manifest CSV with columns path, role, label (and optionally group) "
        "and pass it as manifest_csv / --manifest."
    )


def _data_sets_below(root: Path) -> list[tuple[Path, str]]:
    """(folder, layout) of the data sets in a folder holding dev/ and test/, or in a bench root holding
    subtask1/ and subtask2/ (the trees `datatree.discover_dataset_roots` reads); listings only."""
    subtasks = [root / name for name in ("subtask1", "subtask2") if (root / name).is_dir()]
    splits = [parent / name for parent in (subtasks or [root]) for name in ("dev", "test") if (parent / name).is_dir()]
    found = []
    for folder in splits or subtasks:
        listing = _list(folder)
        for layout, matcher in _MATCHERS.items():
            try:
                matcher(folder, listing)
            except (_NoMatch, DatasetError):
                continue
            found.append((folder, layout))
            break
    return found


def match_layout(root: Path, layout: str) -> LayoutMatch:
    """The files of `root` read as `layout` (forced, not detected); a DatasetError says why it is not one."""
    forced = {"2025-st2-test": "2024-st2-test"}.get(layout, layout)
    if forced not in _MATCHERS:
        raise DatasetError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS + ('2025-st2-test',))}")
    try:
        return _MATCHERS[forced](root, _list(root))
    except _NoMatch as why:
        raise DatasetError(f"{root} is not a {layout} tree: {why}") from None


# ---------------------------------------------------------------------------------------------
# Manifest CSV for any other tree.


def read_manifest_csv(csv_path: Path) -> LayoutMatch:
    """The rows of a manifest CSV (columns path, role, label, optional group); bad rows are one DatasetError."""
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
        entries.append(Entry(path, role, group, label))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DatasetError(f"manifest {csv_path} has {len(problems)} bad row(s):\n  " + "\n  ".join(shown))
    roles = {e.role for e in entries}
    labelled = any(e.label != "unknown" for e in entries if e.role == "real") if "real" in roles else any(
        e.label != "unknown" for e in entries
    )
    return LayoutMatch(entries, "dev" if labelled else "test")
