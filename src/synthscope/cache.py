"""Content-addressed embedding cache: vectors keyed by extractor config and image sha256.

Layout under `default_cache_dir() / "embeddings" / <extractor.config_key()>/`:

- `config.json`            the extractor's name and config (for people; the directory name is its hash)
- `shard-<id>.npy`         float32 [m, d], memory-mappable
- `shard-<id>.json`        the shard's index: sha256 of every row in order, shape, a crc32 of the
                           .npy file and a crc32 of the index itself (`index_crc32`), so a flipped
                           byte in a key is caught too. Written last, so a shard without it was
                           never committed.

Computing appends one new shard per chunk of images (nothing is rewritten), so an interrupted run
keeps every chunk it finished. When more than `MAX_SHARDS` small shards pile up they are merged, by
streaming, into shards of up to `MERGED_SHARD_BYTES` (shards already that big are left alone), so
memory and rewriting stay bounded at a million images. Every file is written through
`synthscope.outputs.atomic_save` (a temporary name, then `os.replace`), so readers never see half a
file, and several processes or Dask workers can write shards into one namespace at once. A shard whose size or checksum does not match its
index, or whose index fails its own checksum, is reported with a warning, removed, and its images
are recomputed on the next run; other shards are untouched. Version-1 indexes (before `index_crc32`)
cannot be checked, so they are not trusted: warned about, removed and recomputed.

Several processes may add and merge at once. A merge writes the merged shard first and then
deletes the old ones, index before data, so a shard whose files vanish while it is being read
(index gone too) was merged away, not damaged: it is skipped silently and the listing re-read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import queue
import threading
import time
import uuid
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import numpy as np

from synthscope.features.base import Extractor
from synthscope.outputs import atomic_save, atomic_write_bytes
from synthscope.runtime import ENV_CACHE_DIR, default_cache_dir  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

_INDEX_VERSION = 2          # 2: the index carries index_crc32; version 1 indexes (no checksum) are not trusted
_READABLE_VERSIONS = (2,)
#: merge once a namespace holds more than this many small shards (below MERGED_SHARD_BYTES)
MAX_SHARDS = 16
#: a merge writes shards of up to this size and never rewrites one that is already this big, so each
#: vector is rewritten a few times at most and a merge holds one input shard in memory at a time
MERGED_SHARD_BYTES = 256 * 2**20
#: images per chunk: one shard per chunk, what a Dask task computes, and what an interrupt can lose
DEFAULT_CHUNK_SIZE = 1024


class CacheCorruptionWarning(UserWarning):
    """A cache file did not match its index (or its index cannot be checked); it was removed and will be
    recomputed."""


class _UntrustedIndex(ValueError):
    """An index that may be intact but cannot be verified (version 1: no checksum of its own)."""


def _index_crc32(meta: dict) -> int:
    """crc32 of an index's content (everything but the checksum itself), in one canonical JSON form."""
    body = {key: value for key, value in meta.items() if key != "index_crc32"}
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _crc32_file(path: Path) -> int:
    """crc32 of a file's bytes, read through a memory map (no copy through read buffers)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return zlib.crc32(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return zlib.crc32(mapped)


@dataclass(frozen=True)
class _Shard:
    stem: str
    keys: list[str]
    dim: int
    npy_bytes: int
    crc32: int


@dataclass
class CacheStats:
    """What one `embed_*` call did: how many rows came from the cache and how many were computed."""
    n_rows: int = 0
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    namespace: Path | None = None


class EmbeddingCache:
    """Embeddings stored per extractor config, addressed by image sha256.

    >>> cache = EmbeddingCache()                     # default_cache_dir()/embeddings
    >>> found, vectors = cache.lookup(extractor, shas)
    >>> cache.add(extractor, new_shas, new_vectors)
    """

    def __init__(self, cache_dir: str | Path | None = None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.root = self.cache_dir / "embeddings"
        # (namespace, shard stem, size, mtime) -> checksum verified; so a process verifies each shard once
        self._verified: set[tuple[str, str, int, int]] = set()
        self._indexes: dict[tuple[str, int, int], _Shard] = {}

    # -- namespaces -------------------------------------------------------------------------
    def namespace(self, extractor: Extractor) -> Path:
        return self.root / extractor.config_key()

    def _ensure_namespace(self, extractor: Extractor) -> Path:
        directory = self.namespace(extractor)
        directory.mkdir(parents=True, exist_ok=True)
        config_path = directory / "config.json"
        if not config_path.exists():
            payload = json.dumps({"name": extractor.name, "config": extractor.config()}, indent=2,
                                 sort_keys=True, default=str).encode()
            atomic_write_bytes(config_path, payload)
        return directory

    # -- reading ----------------------------------------------------------------------------
    def _read_shards(self, directory: Path) -> list[_Shard]:
        shards = []
        for index_path in sorted(directory.glob("shard-*.json")):
            try:
                shard = self._read_index(index_path)
            except FileNotFoundError:  # merged away by another process meanwhile
                continue
            except _UntrustedIndex as error:
                self._discard(directory, index_path.stem, str(error), what="cannot be trusted")
                continue
            except (ValueError, KeyError, TypeError) as error:
                self._discard(directory, index_path.stem, f"unreadable index ({error})")
                continue
            shards.append(shard)
        return shards

    def _read_index(self, index_path: Path) -> _Shard:
        """One shard's index, parsed once per process: a shard never changes after it is written, so the
        parse is kept by (path, size, mtime) and a million-key namespace is not re-read on every add."""
        stat = index_path.stat()
        token = (str(index_path), stat.st_size, stat.st_mtime_ns)
        shard = self._indexes.get(token)
        if shard is not None:
            return shard
        meta = json.loads(index_path.read_text())
        if meta.get("version") == 1:
            raise _UntrustedIndex("a version-1 index has no checksum of its own, so a damaged key list "
                                  "would serve another image's vector unnoticed")
        if meta.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f"unknown index version {meta.get('version')!r}")
        if meta.get("index_crc32") != _index_crc32(meta):
            raise ValueError("index checksum mismatch")
        shard = _Shard(index_path.stem, list(meta["keys"]), int(meta["dim"]),
                       int(meta["npy_bytes"]), int(meta["crc32"]))
        if len(shard.keys) != int(meta["rows"]):
            raise ValueError("row count does not match the key list")
        self._indexes[token] = shard
        return shard

    def _discard(self, directory: Path, stem: str, reason: str, what: str = "is corrupt") -> None:
        message = (f"embedding cache shard {directory / stem} {what} ({reason}); "
                   "removed, its images will be recomputed")
        warnings.warn(message, CacheCorruptionWarning, stacklevel=3)
        log.warning(message)
        for suffix in (".json", ".npy"):
            try:
                (directory / f"{stem}{suffix}").unlink()
            except FileNotFoundError:
                pass

    def _open_shard(self, directory: Path, shard: _Shard) -> np.ndarray | None:
        """The shard's vectors as a read-only memory map, or None (after a warning) when it is damaged.

        Its files may vanish at any step (stat, checksum, load) when another process merges it away;
        that is not damage, and says nothing: a merge deletes the index first, so a missing .npy
        whose index is gone too was merged, and only a missing .npy beside its index is reported.
        """
        npy_path = directory / f"{shard.stem}.npy"
        try:
            stat = npy_path.stat()
            if stat.st_size != shard.npy_bytes:
                self._discard(directory, shard.stem, f"size {stat.st_size} bytes, index says {shard.npy_bytes}")
                return None
            token = (str(directory), shard.stem, stat.st_size, stat.st_mtime_ns)
            if token not in self._verified:
                if _crc32_file(npy_path) != shard.crc32:
                    self._discard(directory, shard.stem, "checksum mismatch")
                    return None
                self._verified.add(token)
            vectors = np.load(npy_path, mmap_mode="r")
        except FileNotFoundError:
            if not (directory / f"{shard.stem}.json").exists():
                return None  # merged into a new shard by another process meanwhile: not damage
            self._discard(directory, shard.stem, "its .npy file is missing")
            return None
        except (ValueError, OSError) as error:
            self._discard(directory, shard.stem, f"not a valid .npy file ({error})")
            return None
        if vectors.dtype != np.float32 or vectors.shape != (len(shard.keys), shard.dim):
            self._discard(directory, shard.stem, f"shape {vectors.shape} {vectors.dtype} does not match its index")
            return None
        return vectors

    def lookup(self, extractor: Extractor, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask [n], vectors [n, d] with zeros where not found; None when nothing is cached)."""
        directory = self.namespace(extractor)
        found = np.zeros(len(keys), dtype=bool)
        if not directory.is_dir():
            return found, None
        wanted: dict[str, list[int]] = {}
        for position, key in enumerate(keys):
            wanted.setdefault(key, []).append(position)
        out: np.ndarray | None = None
        seen: set[str] = set()
        # A second listing only when a shard vanished under us (merged by a concurrent writer).
        for _ in range(2):
            vanished = False
            for shard in self._read_shards(directory):
                if shard.stem in seen or not wanted:
                    continue
                seen.add(shard.stem)
                out, vanished_here = self._take_from_shard(directory, shard, wanted, found, out, len(keys))
                vanished |= vanished_here
            if not vanished or not wanted:
                break
        if out is not None:
            out[~found] = 0.0
        return found, out

    def _take_from_shard(self, directory: Path, shard: _Shard, wanted: dict[str, list[int]], found: np.ndarray,
                         out: np.ndarray | None, n: int) -> tuple[np.ndarray | None, bool]:
        """Copy the wanted rows of one shard into `out` (allocated on first use); (out, shard vanished)."""
        hits = [(row, key) for row, key in enumerate(shard.keys) if key in wanted]
        if not hits:
            return out, False
        vectors = self._open_shard(directory, shard)
        if vectors is None:
            return out, not (directory / f"{shard.stem}.json").exists()
        if out is None:
            out = np.empty((n, shard.dim), dtype=np.float32)
        elif out.shape[1] != shard.dim:
            self._discard(directory, shard.stem, f"dimension {shard.dim} differs from other shards ({out.shape[1]})")
            return out, False
        rows, targets = [], []
        for row, key in hits:
            for position in wanted.pop(key, ()):
                rows.append(row)
                targets.append(position)
        _gather(out, np.asarray(targets), vectors, np.asarray(rows))
        found[targets] = True
        return out, False

    def iter_vectors(self, extractor: Extractor, rows: int = DEFAULT_CHUNK_SIZE * 8) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every cached (keys, float32 vectors) block of a namespace, `rows` at a time, each block a copy: a
        pass over a million vectors holds one block (and the key lists), not the namespace."""
        directory = self.namespace(extractor)
        for shard in self._read_shards(directory) if directory.is_dir() else []:
            vectors = self._open_shard(directory, shard)
            if vectors is None:
                continue
            for start in range(0, len(shard.keys), rows):
                yield shard.keys[start:start + rows], np.array(vectors[start:start + rows])
            del vectors

    def dimension(self, extractor: Extractor) -> int | None:
        """The vectors' dimension in this namespace (None when it holds nothing)."""
        directory = self.namespace(extractor)
        shards = self._read_shards(directory) if directory.is_dir() else []
        return shards[0].dim if shards else None

    def keys(self, extractor: Extractor) -> set[str]:
        directory = self.namespace(extractor)
        if not directory.is_dir():
            return set()
        return {key for shard in self._read_shards(directory) for key in shard.keys}

    # -- writing ----------------------------------------------------------------------------
    def add(self, extractor: Extractor, keys: Sequence[str], vectors: np.ndarray, *, merge: bool = True) -> None:
        """Append vectors for `keys` as one new shard (atomic, checksummed). With `merge` (the default),
        small shards are merged when they pile up; Dask workers pass False and the client merges once."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"expected vectors [n={len(keys)}, d], got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError(f"extractor {extractor.name!r} produced non-finite values; not caching them")
        if len(keys) == 0:
            return
        directory = self._ensure_namespace(extractor)
        self._write_shard(directory, list(keys), [vectors])
        if merge:
            self.compact(extractor)

    def compact(self, extractor: Extractor) -> None:
        """Merge the namespace's small shards when there are more than `MAX_SHARDS` of them."""
        directory = self.namespace(extractor)
        if not directory.is_dir():
            return
        small = [shard for shard in self._read_shards(directory) if shard.npy_bytes < MERGED_SHARD_BYTES]
        if len(small) > MAX_SHARDS:
            self._merge(directory, small)

    def _write_shard(self, directory: Path, keys: list[str], parts: Sequence[np.ndarray]) -> str:
        """One shard from row blocks `parts` (float32 [m_i, d]), streamed into its .npy: a merge never holds
        more than one input shard in memory. The crc32 is taken while writing, not by reading back."""
        rows, dim = sum(len(part) for part in parts), int(parts[0].shape[1])
        if rows != len(keys):
            raise ValueError(f"{len(keys)} keys for {rows} rows")
        stem = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        npy_path = directory / f"{stem}.npy"
        checksum = 0

        def save(stream) -> None:
            nonlocal checksum

            class Checksummed:
                def write(self, data) -> int:
                    nonlocal checksum
                    checksum = zlib.crc32(data, checksum)
                    return stream.write(data)

            np.lib.format.write_array_header_1_0(
                Checksummed(), {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                "fortran_order": False, "shape": (rows, dim)})
            for part in parts:
                Checksummed().write(memoryview(np.ascontiguousarray(part, dtype=np.float32)).cast("B"))

        atomic_save(npy_path, save)
        meta = {"version": _INDEX_VERSION, "rows": len(keys), "dim": dim,
                "npy_bytes": npy_path.stat().st_size, "crc32": checksum, "keys": keys}
        meta["index_crc32"] = _index_crc32(meta)
        atomic_write_bytes(directory / f"{stem}.json", json.dumps(meta).encode())
        return stem

    def _merge(self, directory: Path, shards: list[_Shard]) -> None:
        """Rewrite `shards` as fewer shards of up to MERGED_SHARD_BYTES, dropping duplicate keys; one input
        shard is in memory at a time. New shards first, old ones deleted after (index before data): a crash
        in between leaves duplicates, never a loss."""
        seen: set[str] = set()
        merged: list[_Shard] = []
        keys: list[str] = []
        parts: list[np.ndarray] = []
        size = 0

        def flush() -> None:
            nonlocal keys, parts, size
            if keys:
                self._write_shard(directory, keys, parts)
            keys, parts, size = [], [], 0

        if len(shards) < 2:
            return
        for shard in shards:
            vectors = self._open_shard(directory, shard)
            if vectors is None:
                continue
            merged.append(shard)
            keep = [row for row, key in enumerate(shard.keys) if key not in seen]
            seen.update(shard.keys)
            if not keep:
                continue
            part = np.asarray(vectors[keep]) if len(keep) < len(shard.keys) else np.asarray(vectors)
            if size and size + part.nbytes > MERGED_SHARD_BYTES:
                flush()
            keys.extend(shard.keys[row] for row in keep)
            parts.append(part)
            size += part.nbytes
            del vectors
        if len(merged) < 2:
            return
        flush()
        for shard in merged:
            for suffix in (".json", ".npy"):
                try:
                    (directory / f"{shard.stem}{suffix}").unlink()
                except FileNotFoundError:
                    pass


def _is_run(indices: np.ndarray) -> bool:
    """True when `indices` are consecutive ascending integers (a slice)."""
    return len(indices) > 0 and indices[-1] - indices[0] == len(indices) - 1 and bool((np.diff(indices) == 1).all())


def _gather(out: np.ndarray, targets: np.ndarray, vectors: np.ndarray, rows: np.ndarray) -> None:
    """out[targets] = vectors[rows], as plain block copies when both sides are runs (the common reload)."""
    order = np.argsort(rows, kind="stable")  # sequential reads from the memory map
    rows, targets = rows[order], targets[order]
    if _is_run(rows) and _is_run(targets):
        out[targets[0]:targets[-1] + 1] = vectors[rows[0]:rows[-1] + 1]
    elif _is_run(targets):
        np.take(vectors, rows, axis=0, out=out[targets[0]:targets[-1] + 1])
    else:
        out[targets] = vectors[rows]


# -- the embedding driver ---------------------------------------------------------------------

def _prefetch(batches: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Yield from `batches`, producing the next items in a background thread (decoding overlaps inference)."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    return
                buffer.put((True, item))
        except BaseException as error:  # handed to the consumer, raised there
            buffer.put((False, error))
            return
        buffer.put((True, done))

    worker = threading.Thread(target=produce, name="synthscope-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = buffer.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def _resolve_extractor(extractor: Extractor | str, device: str) -> Extractor:
    if isinstance(extractor, str):
        from synthscope.features import get_extractor

        extractor = get_extractor(extractor)
    if device != "auto" and hasattr(extractor, "set_device"):  # "auto" keeps the extractor's own choice
        extractor.set_device(device)
    return extractor


#: `progress` of the embed functions: True/False for a tqdm bar, or a callable(done, total) (e.g. a widget)
Progress = Union[bool, Callable[[int, int], None]]


def compute_batches(extractor: Extractor, load_rows: Callable[[np.ndarray], np.ndarray], n: int, batch_size: int,
                    on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """float32 [n, d]: `extractor.transform` over rows 0..n-1 in batches of `batch_size`, the next batch
    decoded on a thread while this one is embedded. The same batches as every other path (in-process or on
    a Dask worker), so the same images give the same floats."""
    batches = [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    outputs = []
    for images in _prefetch(load_rows(rows) for rows in batches):
        features = np.asarray(extractor.transform(images), dtype=np.float32)
        if features.ndim != 2 or len(features) != len(images):
            raise ValueError(f"extractor {extractor.name!r} returned shape {features.shape} for {len(images)} images")
        outputs.append(features)
        if on_batch is not None:
            on_batch(len(images))
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def _chunking(chunk_size: int, batch_size: int) -> tuple[int, int]:
    """(chunk, batch) sizes: a chunk is a whole number of batches (a batch no larger than a chunk), so the
    batches are the same whichever path (chunked in-process, or one Dask task per chunk) computes them."""
    batch = max(1, min(batch_size, chunk_size))
    return max(batch, (chunk_size // batch) * batch), batch


def _chunk_slices(n: int, chunk_size: int) -> list[slice]:
    return [slice(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


class _Progress:
    """A tqdm bar over images, or a callable(done, total) (a widget), fed per batch."""

    def __init__(self, progress: Progress, total: int, description: str):
        from tqdm.auto import tqdm

        self.report = progress if callable(progress) else None
        self.total, self.done = total, 0
        self.bar = tqdm(total=total, unit="img", desc=description, dynamic_ncols=True,
                        disable=self.report is not None or not progress)
        if self.report is not None:
            self.report(0, total)

    def __call__(self, n: int) -> None:
        self.bar.update(n)
        self.done += n   # a disabled tqdm does not count
        if self.report is not None:
            self.report(self.done, self.total)

    def close(self) -> None:
        self.bar.close()


def _embed_keys(keys: Sequence[str], extractor: Extractor, cache: EmbeddingCache,
                load_rows: Callable[[np.ndarray], np.ndarray], batch_size: int, progress: Progress,
                stats: CacheStats | None, *, chunk_size: int = DEFAULT_CHUNK_SIZE, materialize: bool = True,
                remote: Callable[[np.ndarray, list[str]], Any] | None = None) -> np.ndarray | None:
    """Look up `keys`, compute the missing ones chunk by chunk (one shard per chunk, so an interrupt keeps
    every finished chunk), and return float32 [len(keys), d] (None with materialize=False: then memory
    depends on the chunk size, not on the number of images).

    remote(source_rows, keys): computes the missing rows on the active Dask engine instead (dataset files).
    """
    start = time.perf_counter()
    keys = list(keys)
    chunk_size, batch_size = _chunking(chunk_size, batch_size)
    if materialize:
        found, out = cache.lookup(extractor, keys)
    else:
        cached = cache.keys(extractor)
        found, out = np.fromiter((key in cached for key in keys), dtype=bool, count=len(keys)), None
        del cached
    n_cached = int(found.sum())
    # One computation per distinct content: duplicates and renamed files share a vector.
    positions: dict[str, list[int]] = {}
    for position in np.flatnonzero(~found):
        positions.setdefault(keys[position], []).append(int(position))
    todo_keys = list(positions)
    source_rows = np.fromiter((rows[0] for rows in positions.values()), dtype=np.int64, count=len(todo_keys))
    if todo_keys and remote is not None:
        remote(source_rows, todo_keys)
        cache.compact(extractor)
        if materialize:
            found, out = cache.lookup(extractor, keys)
            if not found.all():
                raise RuntimeError(f"{int((~found).sum())} embeddings the cluster reported written are not in the "
                                   f"cache {cache.root}: do all workers write to this folder?")
    elif todo_keys:
        bar = _Progress(progress, len(todo_keys), f"embed {extractor.name}")
        try:
            for part in _chunk_slices(len(todo_keys), chunk_size):
                rows = source_rows[part]
                vectors = compute_batches(extractor, lambda batch, rows=rows: load_rows(rows[batch]), len(rows),
                                          batch_size, on_batch=bar)
                cache.add(extractor, todo_keys[part], vectors)      # this chunk is kept whatever happens next
                if materialize:
                    if out is None:
                        out = np.zeros((len(keys), vectors.shape[1]), dtype=np.float32)
                    for row, key in enumerate(todo_keys[part]):
                        out[positions[key]] = vectors[row]
        finally:
            bar.close()
    if materialize and out is None:  # no rows at all
        out = np.zeros((0, 0), dtype=np.float32)
    if stats is not None:
        stats.n_rows, stats.n_cached, stats.n_computed = len(keys), n_cached, len(todo_keys)
        stats.seconds = time.perf_counter() - start
        stats.namespace = cache.namespace(extractor)
    return out


def dataset_keys(dataset) -> list[str]:
    manifest = dataset.manifest
    if "sha256" in manifest.columns and manifest["sha256"].notna().all() and (manifest["sha256"] != "").all():
        shas = manifest["sha256"].astype(str).tolist()
    else:
        shas = [_file_sha256(path) for path in manifest["path"]]
    policy = getattr(dataset, "size_policy", "error")
    return [pixel_key(sha, policy) for sha in shas]


def _remote_embedder(dataset, extractor: Extractor, cache: EmbeddingCache, batch_size: int, chunk_size: int,
                     device: str, progress: Progress):
    """The active Dask engine's chunk mapper for a dataset's files, or None when there is no engine
    (then `synthscope.engine` is not even imported, so Dask is not either)."""
    import sys

    engine_module = sys.modules.get("synthscope.engine")
    engine = engine_module.active_engine() if engine_module is not None else None
    if engine is None:
        return None

    def remote(source_rows: np.ndarray, todo_keys: list[str]) -> None:
        paths = dataset.manifest["path"].astype(str).to_numpy()
        chunk, batch = _chunking(chunk_size, batch_size)
        parts = _chunk_slices(len(todo_keys), chunk)
        chunks = [(paths[source_rows[part]].tolist(), todo_keys[part]) for part in parts]
        engine.embed_files(chunks, extractor, cache_dir=cache.cache_dir, size_policy=getattr(dataset, "size_policy", "error"),
                           batch_size=batch, device=device, progress=progress)

    return remote


def embed_dataset(dataset, extractor: Extractor | str, *, cache: EmbeddingCache | None = None,
                  batch_size: int = 32, device: str = "auto", progress: Progress = True,
                  stats: CacheStats | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """float32 [len(dataset.manifest), d], row-aligned with the manifest; computes only what is not cached.

    `progress`: a tqdm bar (True), nothing (False), or a callable(done, total) over the images computed.

    Rows are keyed by the manifest's `sha256` column (file content) and the dataset's size policy
    (`pixel_key`), so renamed files are not recomputed, changed files are, and a file resized and
    the same file centre-cropped are two entries. Pass a `CacheStats` to learn how many rows were computed.
    Missing rows are computed `chunk_size` images at a time, one cache shard per chunk; inside
    `synthscope.engine.use_engine` (the commands' --workers / --scheduler) the chunks run on the cluster.
    """
    extractor = _resolve_extractor(extractor, device)
    cache = cache or EmbeddingCache()
    remote = _remote_embedder(dataset, extractor, cache, batch_size, chunk_size, device, progress)
    return _embed_keys(dataset_keys(dataset), extractor, cache, lambda rows: dataset.images(rows), batch_size,
                       progress, stats, chunk_size=chunk_size, remote=remote)


def cache_dataset(dataset, extractor: Extractor | str, *, cache: EmbeddingCache | None = None,
                  batch_size: int = 32, device: str = "auto", progress: Progress = True,
                  stats: CacheStats | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CacheStats:
    """Make sure every image of `dataset` is in the cache without gathering the vectors: what `synthscope
    embed` does, in memory that depends on `chunk_size`, not on the number of images. Returns the stats
    (`n_rows`, `n_cached`, `n_computed`, `namespace`)."""
    extractor = _resolve_extractor(extractor, device)
    cache = cache or EmbeddingCache()
    stats = stats if stats is not None else CacheStats()
    remote = _remote_embedder(dataset, extractor, cache, batch_size, chunk_size, device, progress)
    _embed_keys(dataset_keys(dataset), extractor, cache, lambda rows: dataset.images(rows, memoise=False),
                batch_size, progress, stats, chunk_size=chunk_size, materialize=False, remote=remote)
    return stats


def embed_arrays(images: np.ndarray, extractor: Extractor | str, *, cache: EmbeddingCache | None = None,
                 keys: Sequence[str] | None = None, batch_size: int = 32, device: str = "auto",
                 progress: Progress = False, stats: CacheStats | None = None) -> np.ndarray:
    """Embed uint8 images [n, H, W] without a Dataset; keys default to the sha256 of each array's bytes."""
    extractor = _resolve_extractor(extractor, device)
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images [n, H, W], got {images.dtype} {images.shape}")
    if keys is None:
        keys = [array_sha256(image) for image in images]
    if len(keys) != len(images):
        raise ValueError(f"{len(keys)} keys for {len(images)} images")
    if cache is None:
        cache = EmbeddingCache()
    return _embed_keys(keys, extractor, cache, lambda rows: images[rows], batch_size, progress, stats)


def pixel_key(file_sha256: str, size_policy: str = "error") -> str:
    """Cache key of a file's decoded pixels: its sha256 plus every decoding option that changes them.

    Under "error" only 256x256 images decode, unchanged, so the file's sha256 is the key (as it always
    was). "resize" and "center_crop" turn one file into different pixels, so each gets keys of its own.
    """
    if size_policy == "error":
        return file_sha256
    return hashlib.sha256(f"{file_sha256}|size_policy={size_policy}".encode()).hexdigest()


def array_sha256(image: np.ndarray) -> str:
    """Content key of a raw image array (shape and bytes)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.dtype}{image.shape}".encode())
    digest.update(memoryview(image).cast("B"))
    return digest.hexdigest()


def _file_sha256(path: str | Path) -> str:
    from synthscope.features.base import file_sha256

    return file_sha256(path)
