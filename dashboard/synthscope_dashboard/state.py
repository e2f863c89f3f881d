"""The one state every view observes, and the session file that keeps the curation safe.

Views never hold state: they call the actions below and redraw when traits change. Every curation
action (assign, rename, merge, split, recluster, threshold, override) takes an undo snapshot and
is autosaved atomically to `<cache>/sessions/<dataset hash>.json`.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import traitlets

from synthscope_dashboard.workspace import Workspace

SESSION_VERSION = 1
UNDO_DEPTH = 30


def session_path(cache_dir: Path, data_path: str) -> Path:
    digest = hashlib.sha256(str(Path(data_path).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / "sessions" / f"{digest}.json"


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps(payload))   # dumps uses the C encoder in one shot; dump streams in Python
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SessionWriter:
    """Writes session files on one background thread, newest payload wins, so a slow disk (fsync
    can take 400 ms on a busy machine) never delays a click. `flush()` waits for pending writes."""

    def __init__(self):
        self._pending: dict[Path, dict] = {}
        self._condition = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="synthscope-session-writer", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def submit(self, path: Path, payload: dict) -> None:
        with self._condition:
            self._pending[path] = payload
            self._condition.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending)
                path, payload = self._pending.popitem()
                self._busy = True
            try:
                write_json_atomic(path, payload)
            except OSError as error:   # reported on the next status update; the state stays in memory
                payload_error = f"could not save the session to {path}: {error}"
                _WRITE_ERRORS.append(payload_error)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()


_WRITE_ERRORS: list[str] = []
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
    color_by = traitlets.Unicode("cluster")      # "cluster" | "known" (dev labels / ground truth)
    membership_group = traitlets.Unicode("")      # a pair ("model_1 -> folder_1"); "" = every pair

    # curation (saved)
    assignments = traitlets.Instance(np.ndarray, allow_none=True)   # cluster per attribution row
    cluster_names = traitlets.Dict()                                # str(cluster) -> name
    thresholds = traitlets.Dict()                                   # pair -> threshold in score units
    overrides = traitlets.Dict()                                    # membership key -> 0 | 1

    # transient
    selection = traitlets.Instance(np.ndarray, allow_none=True)     # attribution rows
    focused_real = traitlets.Int(-1)                                # membership row shown in the gallery
    presentation = traitlets.Bool(False)
    status = traitlets.Unicode("")
    can_undo = traitlets.Bool(False)
    last_saved = traitlets.Unicode("")

    def __init__(self, workspace: Workspace | None = None, *, autosave: bool = True, restore: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._undo: list[dict] = []
        self._writer_token = os.urandom(8).hex()   # tells this state's saves from other pages'
        self._save_sequence = 0
        self._restored_from: tuple | None = None
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
        self.status = message
        self.save()

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
                   "cluster_names": dict(self.cluster_names), "thresholds": dict(self.thresholds),
                   "overrides": dict(self.overrides)}
        if self.workspace.attribution is not None and self.assignments is not None:
            payload["assignments"] = dict(zip(self.workspace.attribution.keys.tolist(), self.assignments.tolist()))
        return payload

    def save(self) -> None:
        if not self._autosave or self.workspace is None:
            return
        self._save_sequence += 1
        payload = self.to_session()
        payload["writer"], payload["sequence"] = self._writer_token, self._save_sequence
        # serialised now (a consistent snapshot), written on the background thread
        session_writer().submit(self.session_file, payload)   # to_session() built fresh objects
        self.last_saved = dt.datetime.now().strftime("%H:%M:%S")
        if _WRITE_ERRORS:
            self.status = _WRITE_ERRORS.pop()

    def flush(self) -> None:
        """Wait until every autosave has reached the disk."""
        session_writer().flush()

    def _read_session(self) -> tuple[dict | None, str | None]:
        path = self.session_file
        self.flush()
        if path is None or not path.is_file():
            return None, None
        try:
            payload = json.loads(path.read_text())
            if payload.get("version") != SESSION_VERSION:
                raise ValueError(f"session version {payload.get('version')} is not {SESSION_VERSION}")
            return payload, None
        except (OSError, ValueError) as error:
            return None, f"could not restore the saved session ({error}); it was left untouched at {path}"

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
        with self.hold_trait_notifications():
            self.projection = payload.get("projection", self.projection)
            self.k = int(payload.get("k", self.k))
            self.method = payload.get("method", self.method)
            self.cluster_names = {str(k): str(v) for k, v in payload.get("cluster_names", {}).items()}
            saved = payload.get("thresholds")
            if isinstance(saved, dict) and self.workspace.membership is not None:
                known = {str(pair): float(value) for pair, value in saved.items()
                         if str(pair) in self.thresholds and isinstance(value, (int, float))}
                self.thresholds = {**self.thresholds, **known}
            self.overrides = {str(k): int(v) for k, v in payload.get("overrides", {}).items()}
            saved = payload.get("assignments")
            if saved and self.workspace.attribution is not None:
                assignments = self.assignments.copy()
                keys = self.workspace.attribution.keys
                found = np.array([key in saved for key in keys])
                assignments[found] = [int(saved[key]) for key in keys[found]]
                self.assignments = assignments
        self._restored_from = (payload.get("writer"), payload.get("sequence"))
        self.status = f"restored your curation saved at {payload.get('saved_at', '?')}"
