"""The one state every view observes, and the session file that keeps the curation safe.

Views never hold state: they call the actions below and redraw when traits change. Every curation
action (assign, rename, merge, split, recluster, threshold, override) takes an undo snapshot and
is autosaved atomically to `<cache>/sessions/<dataset hash>.json`.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:   # not on Windows: then two pages are not guarded against each other
    fcntl = None

import numpy as np
import traitlets

from synthscope.outputs import atomic_write_bytes, atomic_write_text
from synthscope_dashboard.workspace import Workspace

SESSION_VERSION = 1
EVALUATION_ON_MESSAGE = ("evaluation mode ON: test-label scores are shown; do not tune the threshold "
                         "(or the clusters) with it on")
UNDO_DEPTH = 30


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
        if payload.get("version") != SESSION_VERSION:
            raise ValueError(f"session version {payload.get('version')!r} is not {SESSION_VERSION}")
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
            revision = _as_int(current.get("revision"), 0)
            if revision > base_revision and current.get("writer") != payload.get("writer"):
                copy = path.with_name(f"{path.stem}.conflict-{payload.get('writer', 'unknown')}.json")
                write_json_atomic(copy, {**payload, "conflict_with_revision": revision})
                return SaveOutcome("conflict", revision, local_time(current.get("saved_at")), conflict_copy=copy)
            base_revision = max(base_revision, revision)
        payload = {**payload, "revision": base_revision + 1}
        write_json_atomic(path, payload)
        return SaveOutcome("saved", base_revision + 1, dt.datetime.now().strftime("%H:%M:%S"), backup=backup)


def _as_int(value, default: int) -> int:
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


class AppState(traitlets.HasTraits):
    workspace = traitlets.Instance(Workspace, allow_none=True)

    # choices
    extractor = traitlets.Unicode("fingerprint")
    projection = traitlets.Unicode("pca")
    k = traitlets.Int(4)
    method = traitlets.Unicode("auto")
    color_by = traitlets.Unicode("cluster")      # a key of columns.COLUMNS ("cluster", "known", "silhouette", ...)
    point_filter = traitlets.Dict()              # {} or {"column": key, "values": [...]} / {"column", "low", "high"}
    #: where k comes from: "task" (`synthscope dashboard --k`), "analyst" (typed in the page), or
    #: "default" (the number of dev generators, a guess the page asks the analyst to replace)
    k_source = traitlets.Unicode("default")
    data_version = traitlets.Int(0)               # +1 whenever workspace.attribution is replaced
    membership_group = traitlets.Unicode("")      # a pair ("model_1 -> folder_1"); "" = every pair

    # curation (saved)
    assignments = traitlets.Instance(np.ndarray, allow_none=True)   # cluster per attribution row
    cluster_names = traitlets.Dict()                                # str(cluster) -> name
    thresholds = traitlets.Dict()                                   # pair -> threshold in score units
    overrides = traitlets.Dict()                                    # membership key -> 0 | 1

    # transient
    selection = traitlets.Instance(np.ndarray, allow_none=True)     # attribution rows
    focused_real = traitlets.Int(-1)                                # membership row shown in the gallery
    real_selection = traitlets.Instance(np.ndarray, allow_none=True)  # membership rows picked in the histogram
    presentation = traitlets.Bool(False)
    # Shows the scores against test labels (a ground-truth file beside the test folder). Never saved in
    # the session: every page opens with it off, so nobody tunes a threshold on test labels by accident.
    evaluation_mode = traitlets.Bool(False)
    status = traitlets.Unicode("")
    can_undo = traitlets.Bool(False)
    last_saved = traitlets.Unicode("")     # local time the last autosave reached the disk
    saving = traitlets.Bool(False)         # an autosave is on its way to the disk

    def __init__(self, workspace: Workspace | None = None, *, autosave: bool = True, restore: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._undo: list[dict] = []
        self._writer_token = os.urandom(8).hex()   # tells this state's saves from other pages'
        self._save_sequence = 0
        self._restored_from: tuple | None = None
        self._revision = 0                 # the session file's revision this state last read or wrote
        self._revision_lock = threading.Lock()
        self._outcomes: collections.deque = collections.deque()   # writer thread -> this state
        self._loop = _running_loop()       # the kernel's loop: outcomes are applied on its thread
        self._conflict: SaveOutcome | None = None
        self._autosave = autosave
        self._last_action = ""
        self.workspace = workspace
        if workspace is not None:
            attribution = workspace.attribution
            if attribution is not None:
                if "projection" not in kwargs:
                    # the best cached layout: UMAP, then t-SNE (what `prepare` computed), else live PCA
                    self.projection = next((m for m in ("umap", "tsne") if m in attribution.projections), "pca")
                self.k = kwargs.get("k", attribution.k)
                if "k" in kwargs:
                    self.k_source = "task"
                self.assignments = attribution.cluster(self.k, self.method)
            if workspace.membership is not None:
                self.thresholds = workspace.membership.default_thresholds()
                self.membership_group = next(iter(workspace.membership.pairs), "")
            self.selection = np.zeros(0, dtype=np.int64)
            if restore:
                self.restore()

    # ---------------------------------------------------------------- helpers
    @property
    def session_file(self) -> Path | None:
        if self.workspace is None:
            return None
        return session_path(self.workspace.cache_dir, self.workspace.path)

    def clusters(self) -> list[int]:
        if self.assignments is None:
            return []
        return [int(c) for c in np.unique(self.assignments)]

    def cluster_name(self, cluster: int) -> str:
        return self.cluster_names.get(str(int(cluster)), f"cluster {int(cluster)}")

    def membership_predictions(self) -> np.ndarray:
        """1 = used, per membership row: the core's rule (score >= its pair's threshold), then manual overrides."""
        from synthscope.membership import predict

        data = self.workspace.membership
        predictions = np.zeros(data.n, dtype=np.int64)
        scores = data.frame["score"].to_numpy()
        for pair, rows in data.pair_rows.items():
            predictions[rows] = predict(scores[rows], self.thresholds[pair])
        if self.overrides:
            for key, value in self.overrides.items():
                row = data.key_index.get(key)
                if row is not None:
                    predictions[row] = int(value)
        return predictions

    def _snapshot(self) -> dict:
        return {"assignments": None if self.assignments is None else self.assignments.copy(),
                "cluster_names": dict(self.cluster_names), "thresholds": dict(self.thresholds),
                "overrides": dict(self.overrides), "k": self.k, "method": self.method}

    def _checkpoint(self, action: str, coalesce: bool = False) -> None:
        if coalesce and self._last_action == action and self._undo:
            return   # a slider drag is one action, not fifty
        self._undo.append(self._snapshot())
        del self._undo[:-UNDO_DEPTH]
        self._last_action = action
        self.can_undo = True

    def _done(self, message: str) -> None:
        self.status = message if self._conflict is None else f"{self._conflict_message()} · {message}"
        self.save()

    def _conflict_message(self) -> str:
        outcome = self._conflict
        return (f"another tab saved newer curation at {outcome.saved_at}; reload to continue "
                f"(nothing was written over it; this tab's curation is kept in {outcome.conflict_copy})")

    # ---------------------------------------------------------------- sub-task 2 actions
    def select(self, indices) -> None:
        self.selection = np.unique(np.asarray(indices, dtype=np.int64))

    def assign(self, indices, cluster: int | None) -> int:
        """Move images to `cluster` (None = a new cluster). Returns the target cluster."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            self.status = "nothing selected: drag a box or lasso on the scatter first"
            return -1
        target = (int(self.assignments.max()) + 1) if cluster is None else int(cluster)
        self._checkpoint("assign")
        assignments = self.assignments.copy()
        assignments[indices] = target
        self.assignments = assignments
        self._done(f"moved {indices.size} images to {self.cluster_name(target)}")
        return target

    def rename(self, cluster: int, name: str) -> None:
        name = name.strip()
        if not name:
            self.status = "a cluster name cannot be empty"
            return
        self._checkpoint("rename")
        names = dict(self.cluster_names)
        names[str(int(cluster))] = name
        self.cluster_names = names
        self._done(f"cluster {cluster} is now called {name!r}")

    def merge(self, source: int, target: int) -> None:
        if int(source) == int(target):
            self.status = "pick two different clusters to merge"
            return
        self._checkpoint("merge")
        assignments = self.assignments.copy()
        moved = int((assignments == source).sum())
        assignments[assignments == source] = target
        names = dict(self.cluster_names)
        names.pop(str(int(source)), None)
        self.cluster_names = names
        self.assignments = assignments
        self._done(f"merged {moved} images of cluster {source} into {self.cluster_name(target)}")

    def split(self, cluster: int) -> int:
        """Split a cluster in two by k-means on its images' features; returns the new cluster id."""
        members = np.flatnonzero(self.assignments == int(cluster))
        if members.size < 2:
            self.status = f"cluster {cluster} has fewer than 2 images; nothing to split"
            return -1
        halves = self.workspace.attribution.split_labels(members)
        self._checkpoint("split")
        new_cluster = int(self.assignments.max()) + 1
        assignments = self.assignments.copy()
        assignments[members[halves == 1]] = new_cluster
        self.assignments = assignments
        self._done(f"split cluster {cluster}: {int((halves == 1).sum())} images moved to new cluster {new_cluster}")
        return new_cluster

    def recluster(self, k: int | None = None, method: str | None = None) -> None:
        k = int(k or self.k)
        method = method or self.method
        labels = self.workspace.attribution.cluster(k, method)
        self._checkpoint("recluster")
        self.k, self.method = k, method
        self.cluster_names = {}
        self.assignments = np.asarray(labels, dtype=np.int64)
        self._done(f"re-clustered with {method}, k = {k} (manual moves and names were reset; undo brings them back)")

    def use_attribution(self, data) -> None:
        """Replace the sub-task 2 data by the same images in other features, or by the same features
        with their caches re-read: the curation (clusters, names) is kept."""
        old = self.workspace.attribution
        if old is not None and not np.array_equal(old.keys, data.keys):
            raise ValueError("the generated images changed on disk; reload the page to read them again")
        self.workspace.attribution = data
        self.data_version += 1

    def load_extractor(self, name: str, progress=None) -> bool:
        """The same images in the features of extractor `name` (embedded now unless cached);
        the clusters stay until the next re-cluster. False when nothing changed."""
        loader = self.workspace.attribution_loader
        if loader is None or self.workspace.attribution is None or name == self.workspace.attribution.extractor:
            return False
        self.use_attribution(loader(name, progress=progress))
        self.extractor = name
        return True

    def reload_data(self) -> list[str]:
        """Read the embedding and projection caches again (after `synthscope prepare` ran while this
        page was open, or before it was shown); the curation is kept. Returns the layouts it found."""
        loader, old = self.workspace.attribution_loader, self.workspace.attribution
        if loader is None or old is None:
            self.status = "nothing to reload: this page cannot re-read its data"
            return []
        data = loader(old.extractor)
        found = [m for m in data.projections if m not in old.projections]
        if np.array_equal(data.features, old.features):   # same clustering input: keep its label-free choice
            data.selection_table, data.chosen = old.selection_table, old.chosen
            data.clustered_with = old.clustered_with
        self.use_attribution(data)
        if found and self.projection == "pca":
            self.projection = next(m for m in ("umap", "tsne") if m in found)
        self.status = ("data re-read: " + (f"{', '.join(m.upper() for m in found)} now cached" if found
                                           else "nothing new in the caches"))
        return found

    def refresh_stale_caches(self) -> list[str]:
        """When the page is shown: re-read the caches if a layout was missing when the data was loaded
        (a preheated kernel loads the data long before the page is opened, perhaps before `prepare`)."""
        data = self.workspace.attribution if self.workspace is not None else None
        if data is None or not data.projection_hints or self.workspace.attribution_loader is None:
            return []
        status = self.status
        found = self.reload_data()
        if not found:
            self.status = status   # nothing new: the page says what it said before
        return found

    def compact_assignments(self) -> np.ndarray:
        """Cluster ids renumbered 0..k-1 in order of first appearance of each id, as run files need."""
        _, codes = np.unique(self.assignments, return_inverse=True)
        return codes.astype(np.int64)

    # ---------------------------------------------------------------- sub-task 1 actions
    def set_threshold(self, pair: str, value: float) -> None:
        """Move one pair's threshold (score units); the dev fit is `reset_thresholds`."""
        if pair not in self.thresholds:
            self.status = f"no membership pair {pair!r}; choose a model first"
            return
        value = float(value)
        if value == self.thresholds[pair]:
            return
        self._checkpoint(f"threshold {pair}", coalesce=True)
        self.thresholds = {**self.thresholds, pair: value}
        self._done(f"threshold of {pair} set to {value:.4g}")

    def reset_thresholds(self) -> None:
        """Every pair back to its fitted threshold: on its dev group, or label-free without one (as the CLI)."""
        defaults = self.workspace.membership.default_thresholds()
        if defaults == self.thresholds:
            self.status = "thresholds already at their fitted values"
            return
        self._checkpoint("reset thresholds")
        self.thresholds = defaults
        self._done("thresholds back to their fitted values (dev fit, or label-free without dev)")

    def set_override(self, key: str, label: int | None) -> None:
        self._checkpoint("override")
        overrides = dict(self.overrides)
        if label is None:
            overrides.pop(key, None)
            message = f"{key}: back to the threshold's call"
        else:
            overrides[key] = int(label)
            message = f"{key}: marked {'used' if label else 'not used'} by hand"
        self.overrides = overrides
        self._done(message)

    # ---------------------------------------------------------------- evaluation mode
    def set_evaluation_mode(self, on: bool) -> None:
        """Show (True) or hide (False) every number computed from test labels; logged in the status line."""
        on = bool(on)
        if on == self.evaluation_mode:
            return
        self.evaluation_mode = on
        self.status = (EVALUATION_ON_MESSAGE if on else
                       "evaluation mode off: test-label scores are hidden again")

    def shows_test_labels(self) -> bool:
        """Whether a view may show a number computed from test labels (ground truth) right now."""
        return bool(self.evaluation_mode)

    # ---------------------------------------------------------------- undo and session
    def undo(self) -> None:
        if not self._undo:
            self.status = "nothing to undo"
            return
        snapshot = self._undo.pop()
        self._last_action = ""
        with self.hold_trait_notifications():
            self.k, self.method = snapshot["k"], snapshot["method"]
            self.cluster_names = snapshot["cluster_names"]
            self.thresholds = snapshot["thresholds"]
            self.overrides = snapshot["overrides"]
            if snapshot["assignments"] is not None:
                self.assignments = snapshot["assignments"]
        self.can_undo = bool(self._undo)
        self._done("undone")

    def to_session(self) -> dict:
        payload = {"version": SESSION_VERSION, "data_path": self.workspace.path,
                   "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "extractor": self.extractor, "projection": self.projection, "k": self.k, "method": self.method,
                   "k_source": self.k_source, "color_by": self.color_by,
                   "cluster_names": dict(self.cluster_names), "thresholds": dict(self.thresholds),
                   "overrides": dict(self.overrides)}
        if self.workspace.attribution is not None and self.assignments is not None:
            payload["assignments"] = dict(zip(self.workspace.attribution.keys.tolist(), self.assignments.tolist()))
        return payload

    def save(self) -> None:
        if not self._autosave or self.workspace is None:
            return
        self._apply_outcomes()
        self._save_sequence += 1
        payload = self.to_session()
        payload["writer"], payload["sequence"] = self._writer_token, self._save_sequence
        # serialised now (a consistent snapshot), written on the background thread; "autosaved" is
        # shown only when the writer reports that the file reached the disk
        self.saving = True   # before the submit: the report may come back at once
        session_writer().submit(self.session_file, payload, base=self._base_revision, report=self._on_outcome)

    def _base_revision(self) -> int:
        with self._revision_lock:
            return self._revision

    def _on_outcome(self, outcome: SaveOutcome) -> None:
        """Called on the writer thread: record the revision at once (the next write reads it), and hand
        the page updates to the kernel's thread (traits and widgets are not thread-safe)."""
        if outcome.kind == "saved":
            with self._revision_lock:
                self._revision = max(self._revision, outcome.revision)
        self._outcomes.append(outcome)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._apply_outcomes)
            except RuntimeError:   # the loop is gone (kernel shutting down); flush() still applies them
                pass

    def _apply_outcomes(self) -> None:
        """Show what the writer did (on the caller's thread): the time a save reached the disk, a
        conflict with another page, a failed write, a backup of an unreadable file."""
        while True:
            try:
                outcome = self._outcomes.popleft()
            except IndexError:
                break
            if outcome.kind == "saved":
                self.last_saved = outcome.saved_at
                if outcome.backup is not None:
                    self.status = (f"{self.status} · the unreadable session file was copied to {outcome.backup} "
                                   "before it was replaced")
            elif outcome.kind == "conflict":
                self._conflict = outcome
                self.status = self._conflict_message()
            else:
                self.status = outcome.message
        self.saving = bool(self._outcomes) or self._writes_pending()

    def _writes_pending(self) -> bool:
        writer = _WRITER
        if writer is None:
            return False
        with writer._condition:
            return writer._busy or any(key[1] == self._writer_token for key in writer._pending)

    def flush(self) -> None:
        """Wait until every autosave has reached the disk (and show what happened)."""
        session_writer().flush()
        self._apply_outcomes()

    @property
    def conflict(self) -> SaveOutcome | None:
        """Set when another page saved newer curation: this page no longer writes the session file."""
        return self._conflict

    def _read_session(self) -> tuple[dict | None, str | None]:
        path = self.session_file
        self.flush()
        payload, problem = read_session_file(path)
        if problem is None:
            return payload, None
        try:
            backup = backup_session_file(path)
        except OSError as error:
            return None, (f"could not restore the saved session ({problem}), nor copy it ({error}); "
                          f"it is at {path}")
        return None, (f"could not restore the saved session ({problem}); a copy is kept at {backup} "
                      "(your next change replaces the original)")

    def restore(self) -> bool:
        """Load the session file if there is one; True when something was restored."""
        payload, problem = self._read_session()
        if problem:
            self.status = problem
        if payload is None:
            return False
        self._apply_session(payload)
        return True

    def sync_with_session(self) -> bool:
        """Restore again if another state saved since this one last read or wrote the session.

        A preheated Voila kernel runs the notebook before anyone opens the page; by the time a page
        is shown, another page (or the one before a reload) may have saved newer curation.
        """
        payload, _ = self._read_session()
        if payload is None or payload.get("writer") == self._writer_token:
            return False
        if (payload.get("writer"), payload.get("sequence")) == self._restored_from:
            return False
        self._apply_session(payload)
        return True

    def _apply_session(self, payload: dict) -> None:
        extractor_problem = self._apply_saved_extractor(payload.get("extractor"))
        clean, bad = validate_session(payload, self)
        if "k_source" in clean and self.k_source == "task":
            del clean["k_source"]           # the task's k (--k) is not a guess, whatever was saved
        with self.hold_trait_notifications():
            for name in ("projection", "k", "method", "k_source", "color_by", "cluster_names", "overrides"):
                if name in clean:
                    setattr(self, name, clean[name])
            if "thresholds" in clean:         # pairs this workspace knows; the rest keep their dev fit
                self.thresholds = {**self.thresholds, **clean["thresholds"]}
            saved = clean.get("assignments")
            if saved and self.workspace.attribution is not None:
                assignments = self.assignments.copy()
                keys = self.workspace.attribution.keys
                found = np.array([key in saved for key in keys])
                assignments[found] = [saved[key] for key in keys[found]]
                self.assignments = assignments
        attribution = self.workspace.attribution
        if attribution is not None and attribution.clustered_with != (self.k, self.method):
            attribution.cluster(self.k, self.method)   # the label-free choice the page shows, for these settings
            self.data_version += 1
        self._restored_from = (payload.get("writer"), payload.get("sequence"))
        with self._revision_lock:
            self._revision = max(self._revision, _as_int(payload.get("revision"), 0))
        self.status = f"restored your curation saved at {payload.get('saved_at', '?')}"
        if extractor_problem:
            self.status += f" · {extractor_problem}"
        if bad:
            path = self.session_file
            try:
                where = f"a copy of the file is kept at {backup_session_file(path)}"
            except OSError as error:
                where = f"the file could not be copied ({error})"
            self.status += (f" · ignored {', '.join(bad)} in the saved session (wrong type or out of range); "
                            f"{where}")


    def _apply_saved_extractor(self, name) -> str:
        """Load the features the saved curation was made on; '' or what went wrong."""
        attribution = self.workspace.attribution if self.workspace is not None else None
        if attribution is None or not isinstance(name, str) or not name or name == attribution.extractor:
            return ""
        if self.workspace.attribution_loader is None:
            return f"the curation was made on {name} features, which this page cannot load"
        try:
            self.load_extractor(name)
        except Exception as error:   # an extractor gone from this machine, a damaged cache
            return f"could not load the {name} features the curation was made on ({error}); showing {attribution.extractor}"
        return ""


def _running_loop():
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:   # plain Python (tests, scripts): outcomes are applied by flush() and save()
        return None


def validate_session(payload: dict, state: AppState) -> tuple[dict, list[str]]:
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

    take("projection", projection)
    take("k_source", k_source)
    take("color_by", color_by)
    take("k", k)
    take("method", method)
    take("cluster_names", names)
    take("thresholds", thresholds)
    take("overrides", overrides)
    take("assignments", assignments)
    if "assignments" in clean and any(v < 0 for v in clean["assignments"].values()):
        del clean["assignments"]
        bad.append("assignments")
    return clean, bad


def _strict_int(value) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(value)
