"""The session file that keeps the curation safe: where it lives, reading and validating it, backups, the
lock between pages, and the one writer thread that saves it.

`AppState` (state.py) autosaves every curation action to `<cache>/sessions/<dataset hash>.json` through
`session_writer()`; a save never overwrites a newer revision written by another page (`commit_session`).

Version 2 (issue 22) also keeps the generator view's filter, the grids' sort and the undo history (each
step's clusters as the images it changed against the next newer step). Version 3 also keeps which features
the clusters were made on (`clustered_on`), which may differ from the features shown (`extractor`).
Version-1 and -2 files are still read.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

try:
    import fcntl
except ImportError:   # not on Windows: then two pages are not guarded against each other
    fcntl = None

import numpy as np

from synthscope.outputs import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from synthscope_dashboard.state import AppState

SESSION_VERSION = 4
#: 1: before the filter, the sort and the undo history were kept; 2: before `clustered_on` (the features the
#: clusters were made on, when they differ from the features shown); both read as clustered on `extractor`;
#: 3: before `scatter_engine` (read as the engine the page starts with)
READABLE_VERSIONS = (1, 2, 3, 4)


def session_path(cache_dir: Path, data_path: str) -> Path:
    digest = hashlib.sha256(str(Path(data_path).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / "sessions" / f"{digest}.json"


def write_json_atomic(path: Path, payload: dict) -> None:
    # dumps uses the C encoder in one shot; dump streams in Python
    atomic_write_text(path, json.dumps(payload))


def read_session_file(path: Path) -> tuple[dict | None, str | None]:
    """(payload, None) for a readable session of this version; (None, why) when the file is there but
    unreadable (truncated, not JSON, a newer version); (None, None) when there is no file."""
    if path is None or not path.is_file():
        return None, None
    try:
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict):
            raise ValueError("it is not a JSON object")
        if payload.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"session version {payload.get('version')!r} is not one of "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
        return payload, None
    except (OSError, ValueError) as error:
        return None, str(error)


def backup_session_file(path: Path) -> Path:
    """Copy `path` to `<name>.bak-<UTC timestamp>.json` beside it before anything overwrites it; a backup
    with the same bytes already there is reused (a reload does not pile up copies)."""
    data = path.read_bytes()
    for existing in sorted(path.parent.glob(f"{path.stem}.bak-*.json")):
        try:
            if existing.read_bytes() == data:
                return existing
        except OSError:
            continue
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = path.with_name(f"{path.stem}.bak-{stamp}.json")
    atomic_write_bytes(backup, data)
    return backup


@contextlib.contextmanager
def session_lock(path: Path):
    """An exclusive lock across processes (every Voila page is a kernel of its own) around the
    read-compare-write of one session file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class SaveOutcome:
    """What the writer thread reports back to the state that asked for the save."""
    kind: str                       # "saved" | "conflict" | "error"
    revision: int = 0               # the file's revision after the write (saved) or the newer one (conflict)
    saved_at: str = ""              # local HH:MM:SS the write reached the disk, or the newer save's time
    message: str = ""
    backup: Path | None = None      # where an unreadable file was copied before it was overwritten
    conflict_copy: Path | None = None


def local_time(iso: str, fmt: str = "%H:%M") -> str:
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime(fmt)
    except (TypeError, ValueError):
        return "?"


def commit_session(path: Path, payload: dict, base_revision: int) -> SaveOutcome:
    """Write `payload` unless the file holds a revision newer than `base_revision` written by another
    state: then nothing is written over it (last save must not win) and this state's curation goes to
    `<name>.conflict-<writer>.json` instead. An unreadable file is backed up before it is replaced."""
    with session_lock(path):
        current, problem = read_session_file(path)
        backup = None
        if problem is not None:
            backup = backup_session_file(path)
        elif current is not None:
            revision = as_int(current.get("revision"), 0)
            if revision > base_revision and current.get("writer") != payload.get("writer"):
                copy = path.with_name(f"{path.stem}.conflict-{payload.get('writer', 'unknown')}.json")
                write_json_atomic(copy, {**payload, "conflict_with_revision": revision})
                return SaveOutcome("conflict", revision, local_time(current.get("saved_at")), conflict_copy=copy)
            base_revision = max(base_revision, revision)
        payload = {**payload, "revision": base_revision + 1}
        write_json_atomic(path, payload)
        return SaveOutcome("saved", base_revision + 1, dt.datetime.now().strftime("%H:%M:%S"), backup=backup)


def as_int(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass
class _Job:
    path: Path
    payload: dict
    base: Callable[[], int]                      # read at write time: the revision this state last saw
    report: Callable[[SaveOutcome], None]


class SessionWriter:
    """Writes session files on one background thread, newest payload per state and file wins, so a slow
    disk (fsync can take 400 ms on a busy machine) never delays a click. Each write reports back
    (saved, conflict, error) through the job's callback; `flush()` waits for pending writes."""

    def __init__(self):
        self._pending: dict[tuple[Path, str], _Job] = {}
        self._condition = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="synthscope-session-writer", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def submit(self, path: Path, payload: dict, *, base: Callable[[], int] = lambda: 0,
               report: Callable[[SaveOutcome], None] = lambda outcome: None) -> None:
        with self._condition:
            self._pending[(path, str(payload.get("writer", "")))] = _Job(path, payload, base, report)
            self._condition.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending)
                key = next(iter(self._pending))   # oldest first
                job = self._pending.pop(key)
                self._busy = True
            outcome = None
            try:
                try:
                    outcome = commit_session(job.path, job.payload, job.base())
                except OSError as error:   # the state stays in memory; the page says so
                    outcome = SaveOutcome("error", message=f"could not save the session to {job.path}: {error}")
            except Exception:   # a bug must not kill the only writer thread
                pass
            finally:
                with self._condition:
                    # idle before the report, under the lock: a page that applies the report at once asks
                    # whether writes are pending (it waits for this lock) and must not see this one as still
                    # busy, or it would show "saving…" with no further report to clear it
                    self._busy = False
                    if outcome is not None:
                        try:
                            job.report(outcome)
                        except Exception:   # a bug in a callback must not kill the writer thread
                            pass
                    self._condition.notify_all()


_WRITER: SessionWriter | None = None


def session_writer() -> SessionWriter:
    global _WRITER
    if _WRITER is None:
        _WRITER = SessionWriter()
    return _WRITER


def running_writer() -> SessionWriter | None:
    """The writer thread if one was started (None before the first save)."""
    return _WRITER


def validate_session(payload: dict, state: "AppState") -> tuple[dict, list[str]]:
    """The fields of a session payload that have the right type and range for this workspace, and the
    names of those that do not (a hand-edited or damaged file must not break the page)."""
    clean: dict = {}
    bad: list[str] = []

    def take(name, check):
        if name not in payload:
            return
        try:
            value = check(payload[name])
        except (TypeError, ValueError, KeyError, AttributeError):
            bad.append(name)
            return
        clean[name] = value

    attribution = state.workspace.attribution if state.workspace is not None else None

    def projection(value):
        if not isinstance(value, str) or (attribution is not None and value not in attribution.projections):
            raise ValueError(value)
        return value

    def k(value):
        value = _strict_int(value)
        if value < 1 or (attribution is not None and value > attribution.n):
            raise ValueError(value)
        return value

    def method(value):
        if not isinstance(value, str) or not value:
            raise ValueError(value)
        return value

    def names(value):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise TypeError(value)
        return {str(_strict_int(key)): v for key, v in value.items()}

    def thresholds(value):
        # pair -> threshold in score units (a session from before the one-engine change kept one rank
        # "threshold" instead; it is not read, so those pairs start at their dev fit)
        if not isinstance(value, dict):
            raise TypeError(value)
        known = {}
        for pair, threshold in value.items():
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold != threshold:
                raise ValueError(threshold)
            if str(pair) in state.thresholds:
                known[str(pair)] = float(threshold)
        return known

    def overrides(value):
        if not isinstance(value, dict) or not all(v in (0, 1) and not isinstance(v, float) for v in value.values()):
            raise TypeError(value)
        return {str(key): int(v) for key, v in value.items()}

    def assignments(value):
        if not isinstance(value, dict):
            raise TypeError(value)
        return {str(key): _strict_int(v) for key, v in value.items()}

    def k_source(value):
        if value not in ("task", "analyst", "default"):
            raise ValueError(value)
        return value

    def color_by(value):
        if not isinstance(value, str) or not value:
            raise ValueError(value)
        return value

    def point_filter(value):
        from synthscope_dashboard.columns import BY_KEY, CATEGORY

        if not isinstance(value, dict):
            raise TypeError(value)
        if not value:
            return {}
        key = value["column"]
        if key not in BY_KEY:
            raise ValueError(key)
        if BY_KEY[key].kind == CATEGORY:
            values = value["values"]
            if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                       for v in values):
                raise TypeError(values)
            return {"column": key, "values": list(values)}
        ends = [value.get("low"), value.get("high")]
        for end in ends:
            if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float)) or end != end):
                raise ValueError(end)
        if None not in ends and ends[0] > ends[1]:
            raise ValueError(ends)
        return {"column": key, "low": None if ends[0] is None else float(ends[0]),
                "high": None if ends[1] is None else float(ends[1])}

    def scatter_engine(value):
        if value not in ("auto", "plotly", "jscatter"):
            raise ValueError(value)
        return value

    def grid_sort(value):
        if not isinstance(value, dict):
            raise TypeError(value)
        clean = {}
        for grid, sort in value.items():
            if not isinstance(sort, dict) or not isinstance(sort.get("column"), str) \
                    or not isinstance(sort.get("descending"), bool):
                raise TypeError(sort)
            clean[str(grid)] = {"column": sort["column"], "descending": sort["descending"]}
        return clean

    take("projection", projection)
    take("k_source", k_source)
    take("color_by", color_by)
    take("k", k)
    take("method", method)
    take("cluster_names", names)
    take("thresholds", thresholds)
    take("overrides", overrides)
    take("assignments", assignments)
    take("point_filter", point_filter)
    take("grid_sort", grid_sort)
    take("scatter_engine", scatter_engine)
    if "assignments" in clean and any(v < 0 for v in clean["assignments"].values()):
        del clean["assignments"]
        bad.append("assignments")
    if "undo" in payload:
        try:
            clean["undo"] = decode_undo(payload["undo"], clean.get("assignments"), state)
        except (TypeError, ValueError, KeyError, AttributeError):
            bad.append("undo")
    return clean, bad


def encode_undo(snapshots: list[dict], keys, assignments) -> list[dict]:
    """The undo history for the session file, oldest first. Each step keeps its clusters as the images
    whose cluster differs from the next newer step (the newest: from `assignments`, the current clusters),
    so a move of 30 images costs 30 entries, not one per image."""
    entries, newer = [], None if assignments is None else np.asarray(assignments)
    for snapshot in reversed(snapshots):
        entry = {"k": snapshot["k"], "method": snapshot["method"], "cluster_names": dict(snapshot["cluster_names"]),
                 "thresholds": dict(snapshot["thresholds"]), "overrides": dict(snapshot["overrides"])}
        older = snapshot["assignments"]
        if older is None or newer is None or len(older) != len(keys):
            entry["changed"] = None
        else:
            changed = np.flatnonzero(older != newer)
            entry["changed"] = {str(keys[i]): int(older[i]) for i in changed}
            newer = older
        entries.append(entry)
    return entries[::-1]


def decode_undo(entries, saved_assignments: dict | None, state: "AppState") -> list[dict]:
    """The undo snapshots of `encode_undo`'s entries, in this workspace's rows; ValueError or TypeError
    when they do not fit it (then the history is dropped, the curation itself is still restored)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise TypeError(entries)
    attribution = state.workspace.attribution if state.workspace is not None else None
    newer = None
    if attribution is not None and saved_assignments is not None:
        keys = attribution.keys.tolist()
        if set(saved_assignments) != set(keys):
            raise ValueError("the saved clusters are not this workspace's images")
        index = {key: i for i, key in enumerate(keys)}
        newer = np.array([saved_assignments[key] for key in keys], dtype=np.int64)
    snapshots = []
    for entry in reversed(entries):
        k, method = _strict_int(entry["k"]), entry["method"]
        if k < 1 or not isinstance(method, str):
            raise ValueError(entry)
        names, overrides, thresholds = entry["cluster_names"], entry["overrides"], entry["thresholds"]
        if not (isinstance(names, dict) and all(isinstance(v, str) for v in names.values())):
            raise TypeError(names)
        if not (isinstance(overrides, dict) and all(v in (0, 1) and not isinstance(v, (bool, float))
                                                    for v in overrides.values())):
            raise TypeError(overrides)
        if not (isinstance(thresholds, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     for v in thresholds.values())):
            raise TypeError(thresholds)
        changed = entry["changed"]
        older = None
        if changed is not None and newer is not None:
            if not isinstance(changed, dict):
                raise TypeError(changed)
            older = newer.copy()
            for key, cluster in changed.items():
                cluster = _strict_int(cluster)
                if cluster < 0:
                    raise ValueError(cluster)
                older[index[key]] = cluster
            newer = older
        snapshots.append({"assignments": older, "k": k, "method": method,
                          "cluster_names": {str(_strict_int(key)): v for key, v in names.items()},
                          "overrides": {str(key): int(v) for key, v in overrides.items()},
                          # pairs this workspace knows; the rest keep the current values
                          "thresholds": {**state.thresholds, **{str(pair): float(v) for pair, v in thresholds.items()
                                                                if str(pair) in state.thresholds}}})
    return snapshots[::-1]


def _strict_int(value) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(value)
