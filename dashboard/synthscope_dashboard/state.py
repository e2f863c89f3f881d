"""The one state every view observes.

Views never hold state: they call the actions below and redraw when traits change. Every curation
action (assign, rename, merge, split, recluster, threshold, override) takes an undo snapshot and
is autosaved atomically to `<cache>/sessions/<dataset hash>.json` (the session file: session.py).
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import threading
from pathlib import Path

import numpy as np
import traitlets

from synthscope.attribution.openset import DEFAULT_NOVELTY_ALPHA
from synthscope_dashboard.session import (SESSION_VERSION, SaveOutcome, as_int, backup_session_file, encode_undo,
                                          read_session_file, running_writer, session_path, session_writer,
                                          validate_session)
from synthscope_dashboard.workspace import Workspace

EVALUATION_ON_MESSAGE = ("evaluation mode ON: test-label scores are shown; do not tune the threshold "
                         "(or the clusters) with it on")
UNDO_DEPTH = 30


class AppState(traitlets.HasTraits):
    workspace = traitlets.Instance(Workspace, allow_none=True)

    # choices
    extractor = traitlets.Unicode("fingerprint")
    projection = traitlets.Unicode("pca")
    k = traitlets.Int(4)
    method = traitlets.Unicode("auto")
    color_by = traitlets.Unicode("cluster")      # a key of columns.COLUMNS ("cluster", "known", "silhouette", ...)
    # the generator view's main scatter: "plotly", "jscatter" (jupyter-scatter), or "auto" = jscatter from
    # views/generator_jscatter.JSCATTER_FROM generated images on (read when the view is built); saved
    scatter_engine = traitlets.Enum(("auto", "plotly", "jscatter"), "auto")
    point_filter = traitlets.Dict()              # {} or {"column": key, "values": [...]} / {"column", "low", "high"}; saved
    grid_sort = traitlets.Dict()                 # grid ("selection", "scores") -> {"column", "descending"}; saved
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
    # The conformal level of the 2025 view's "none of these" flag: p-value < it (`attribute --novelty-alpha`).
    # Transient like the evaluation mode: every page opens at the CLI's default.
    novelty_alpha = traitlets.Float(DEFAULT_NOVELTY_ALPHA)
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
        self._applying_session = False
        # the filter and the sort are saved as they change (a reload must not lose them), not only with curation
        self.observe(self._save_setting, names=["point_filter", "grid_sort", "scatter_engine"])
        # an engine the page was started with (SYNTHSCOPE_SCATTER_ENGINE, a bench) is kept over a saved one
        self._engine_given = "scatter_engine" in kwargs
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

    @traitlets.validate("novelty_alpha")
    def _valid_novelty_alpha(self, proposal):
        value = float(proposal["value"])
        if not 0.0 < value < 1.0:
            raise traitlets.TraitError(f"the novelty level must lie in (0, 1); got {value}")
        return value

    def subset_predictions(self):
        """The 2025 test predictions (`SubsetData.predictions_at`), flagged at the page's novelty level."""
        return self.workspace.subsets.predictions_at(self.novelty_alpha)

    def set_novelty_alpha(self, alpha: float) -> None:
        """Move the level of "none of these" (flag = conformal p-value < alpha). Only the flag moves:
        the predictions, confidences and novelty scores, so the run and scores files, stay as they are."""
        alpha = float(alpha)
        if not 0.0 < alpha < 1.0:
            self.status = f"the novelty level must lie between 0 and 1 (exclusive); {alpha:g} was not applied"
            return
        if alpha == self.novelty_alpha:
            return
        self.novelty_alpha = alpha
        predictions = self.subset_predictions() if self.workspace.subsets is not None else None
        if predictions is not None:   # a view setting, not curation: nothing to save
            self.status = (f"none of these at level {alpha:g}: {int(predictions['none_of_these'].sum()):,} of "
                           f"{len(predictions):,} test images")

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
        rows = np.asarray(indices, dtype=np.int64).ravel().copy()
        # a page's selection mostly arrives sorted: sort only when it is not (np.unique: 0.66 s at 333k of 1M)
        self.selection = rows if rows.size < 2 or bool(np.all(rows[1:] > rows[:-1])) else np.unique(rows)

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

    def use_attribution(self, data, adopt: bool = True) -> None:
        """Replace the sub-task 2 data by the same images in other features, or by the same features
        with their caches re-read: the curation (clusters, names) is kept. `adopt`: the old clustering
        model (and its space) stays too; a restored session's curation was made on `data`'s features."""
        old = self.workspace.attribution
        if old is not None and not np.array_equal(old.keys, data.keys):
            raise ValueError("the generated images changed on disk; reload the page to read them again")
        if adopt and old is not None and data.model is None:
            data.adopt_clustering(old)   # the clusters (and the space they were found in) stay until a re-cluster
        self.workspace.attribution = data
        self.data_version += 1

    def load_extractor(self, name: str, progress=None, adopt: bool = True) -> bool:
        """The same images in the features of extractor `name` (embedded now unless cached);
        the clusters stay until the next re-cluster. False when nothing changed."""
        loader = self.workspace.attribution_loader
        if loader is None or self.workspace.attribution is None or name == self.workspace.attribution.extractor:
            return False
        self.use_attribution(loader(name, progress=progress), adopt=adopt)
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
    def set_grid_sort(self, grid: str, column: str, descending: bool) -> None:
        """The order of one image grid ("selection": the generator view's, "scores": the training view's)."""
        sort = {"column": str(column), "descending": bool(descending)}
        if self.grid_sort.get(grid) != sort:
            self.grid_sort = {**self.grid_sort, grid: sort}

    def _save_setting(self, change=None) -> None:
        if not self._applying_session:
            self.save()

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
                   "overrides": dict(self.overrides), "point_filter": dict(self.point_filter),
                   "grid_sort": dict(self.grid_sort), "scatter_engine": self.scatter_engine}
        if self.workspace.attribution is not None and self.workspace.attribution.clustered_on:
            payload["clustered_on"] = self.workspace.attribution.clustered_on
        keys = self.workspace.attribution.keys.tolist() if self.workspace.attribution is not None else []
        if self.workspace.attribution is not None and self.assignments is not None:
            payload["assignments"] = dict(zip(keys, self.assignments.tolist()))
        payload["undo"] = encode_undo(self._undo, keys, self.assignments)
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
        writer = running_writer()
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
        self._applying_session = True
        try:
            self._apply_session_payload(payload)
        finally:
            self._applying_session = False

    def _apply_session_payload(self, payload: dict) -> None:
        shown = payload.get("extractor")
        clustered_on = payload.get("clustered_on")   # version 3; older files clustered on what they showed
        if not isinstance(clustered_on, str) or not clustered_on:
            clustered_on = shown
        # the clusters first, on the features they were made on; then the features that were shown
        extractor_problem = self._apply_saved_extractor(clustered_on)
        clean, bad = validate_session(payload, self)
        if "k_source" in clean and self.k_source == "task":
            del clean["k_source"]           # the task's k (--k) is not a guess, whatever was saved
        if self._engine_given:
            clean.pop("scatter_engine", None)
        with self.hold_trait_notifications():
            for name in ("projection", "k", "method", "k_source", "color_by", "cluster_names", "overrides",
                         "point_filter", "grid_sort", "scatter_engine"):
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
            if "undo" in clean:               # version 2: the undo history, as it was at the save
                self._undo = clean["undo"][-UNDO_DEPTH:]
                self._last_action = ""
                self.can_undo = bool(self._undo)
        attribution = self.workspace.attribution
        if attribution is not None and attribution.clustered_with != (self.k, self.method):
            attribution.cluster(self.k, self.method)   # the label-free choice the page shows, for these settings
            self.data_version += 1
        if not extractor_problem and isinstance(shown, str) and shown and shown != clustered_on:
            extractor_problem = self._apply_saved_extractor(shown, adopt=True)   # keeps the clusters' model
        self._restored_from = (payload.get("writer"), payload.get("sequence"))
        with self._revision_lock:
            self._revision = max(self._revision, as_int(payload.get("revision"), 0))
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


    def _apply_saved_extractor(self, name, adopt: bool = False) -> str:
        """Load the saved features (those the curation was made on; with `adopt`, those shown over its
        clusters); '' or what went wrong."""
        attribution = self.workspace.attribution if self.workspace is not None else None
        if attribution is None or not isinstance(name, str) or not name or name == attribution.extractor:
            return ""
        if self.workspace.attribution_loader is None:
            return f"the curation was made on {name} features, which this page cannot load"
        try:
            self.load_extractor(name, adopt=adopt)   # adopt=False: the saved clusters were made on these features
        except Exception as error:   # an extractor gone from this machine, a damaged cache
            return f"could not load the {name} features the curation was made on ({error}); showing {attribution.extractor}"
        return ""


def _running_loop():
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:   # plain Python (tests, scripts): outcomes are applied by flush() and save()
        return None
