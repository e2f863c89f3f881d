"""Generated features a chunk at a time: a row reader over the cache (or an array), and the kNN searches that
stream it.

At 100,000 generated images the default spaces hold 1.6 GB of generated features per 1,000 dimensions, and
pixels-128 alone is 16,384-d; holding them all, per space, was most of a run's memory. `FeatureRows` reads a
space's rows for chosen manifest rows `chunk` at a time (from the content-addressed cache, post-processed per
chunk, or from an array), and every membership score consumes it as a map-reduce: each generated chunk updates
a running top-k per real image (`streamed_knn`), or is a block of queries (`streamed_query_knn`). Memory then
depends on the chunk, not on the number of generated images.

Exact search up to `APPROX_THRESHOLD` generated vectors (the formula of `neighbours._exact_knn`, so one chunk
gives its distances bit for bit; other chunkings agree to float32 rounding). Above it, faiss inverted files
(`IndexIVFFlat`) are built over blocks of at most `INDEX_BYTES` of vectors and searched one after the other,
their answers merged into the running top-k: no index larger than the budget is ever held.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from synthscope.membership.neighbours import APPROX_THRESHOLD

#: generated rows read and searched at a time (a multiple of the exact search's 2,048-query block)
GENERATED_CHUNK = 8192
#: the most bytes of vectors one faiss index holds in memory; larger sets are indexed block by block
INDEX_BYTES = 2**30
QUERY_BLOCK = 2048


class FeatureRows:
    """Rows of one feature space for chosen manifest rows, read `chunk` at a time (a 2-D, read-only array-like).

    `parts`: (read, rows) pairs, concatenated in order; read(index array) -> float32 [len, dim]. Build one with
    `from_array` or `from_cache`; `join` concatenates, `subset` picks rows, `take` / `array` materialise.
    """

    def __init__(self, parts: Sequence[tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]], dim: int,
                 chunk: int = GENERATED_CHUNK):
        self.parts = [(read, np.asarray(rows, dtype=np.int64)) for read, rows in parts]
        self.dim = int(dim)
        self.chunk = int(chunk)
        self._offsets = np.cumsum([0] + [len(rows) for _, rows in self.parts])

    @classmethod
    def from_array(cls, X, rows=None, chunk: int = GENERATED_CHUNK) -> "FeatureRows":
        X = np.asarray(X) if not hasattr(X, "shape") else X
        if len(X.shape) != 2:
            raise ValueError(f"expected a feature matrix [n, d]; got shape {X.shape}")

        def read(index: np.ndarray) -> np.ndarray:
            if len(index) and index[-1] - index[0] == len(index) - 1 and (np.diff(index) == 1).all():
                block = X[index[0]:index[-1] + 1]          # a run of rows: a view, no gather
            else:
                block = X[index]
            return np.ascontiguousarray(block, dtype=np.float32)

        return cls([(read, np.arange(X.shape[0]) if rows is None else rows)], X.shape[1], chunk)

    @classmethod
    def from_cache(cls, cache, extractor, keys: Sequence[str],
                   transform: Callable[[np.ndarray], np.ndarray] | None = None, *, dim: int | None = None,
                   chunk: int = GENERATED_CHUNK) -> "FeatureRows":
        """Rows whose vectors are in `cache` under `keys` (one per manifest row), `transform`ed per chunk (a
        row-wise post-processing, e.g. a space's per-image standardisation)."""
        keys = list(keys)

        def read(index: np.ndarray) -> np.ndarray:
            wanted = [keys[i] for i in index]
            found, vectors = cache.lookup(extractor, wanted)
            if vectors is None or not found.all():
                raise RuntimeError(f"{int((~found).sum())} of {len(wanted)} {extractor.name} vectors are missing from "
                                   f"the cache {cache.root} (was it cleared while the run read it?)")
            return vectors if transform is None else np.asarray(transform(vectors), dtype=np.float32)

        if dim is None:
            dim = read(np.arange(min(1, len(keys)))).shape[1] if keys else 0
        return cls([(read, np.arange(len(keys)))], dim, chunk)

    # -- the array-like face ------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dim

    ndim = 2

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.take(np.arange(len(self))[item])
        return self.take(np.asarray(item))

    def take(self, positions) -> np.ndarray:
        """float32 [len(positions), dim] for positions into these rows (materialised)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        part_of = np.searchsorted(self._offsets, positions, side="right") - 1
        for p in np.unique(part_of):
            mask = part_of == p
            read, rows = self.parts[p]
            out[mask] = read(rows[positions[mask] - self._offsets[p]])
        return out

    def array(self) -> np.ndarray:
        return self.take(np.arange(len(self)))

    def subset(self, positions) -> "FeatureRows":
        """These rows at `positions` (lazy)."""
        positions = np.asarray(positions, dtype=np.int64)
        part_of = np.searchsorted(self._offsets, positions, side="right") - 1
        if len(positions) and not (np.diff(part_of) >= 0).all():
            raise ValueError("subset positions must keep the parts' order")
        parts = [(self.parts[p][0], self.parts[p][1][positions[part_of == p] - self._offsets[p]])
                 for p in np.unique(part_of)]
        return FeatureRows(parts, self.dim, self.chunk)

    def join(self, other: "FeatureRows") -> "FeatureRows":
        if other.dim != self.dim:
            raise ValueError(f"cannot join rows of {self.dim} and {other.dim} dimensions")
        return FeatureRows(self.parts + other.parts, self.dim, self.chunk)

    def blocks(self, chunk: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 block) over all rows, `chunk` rows at a time (0 = one block), finite-checked."""
        chunk = self.chunk if chunk is None else chunk
        n = len(self)
        step = n if not chunk or chunk <= 0 else chunk
        for start in range(0, n, max(step, 1)):
            block = self.take(np.arange(start, min(n, start + step)))
            if not np.isfinite(block).all():
                raise ValueError("generated: features contain NaN or infinite values")
            yield start, block


def as_rows(features, chunk: int = GENERATED_CHUNK) -> FeatureRows:
    return features if isinstance(features, FeatureRows) else FeatureRows.from_array(features, chunk=chunk)


def _merge(best_d2, best_idx, d2, offset, k):
    """Keep the k smallest of the running (best) and the new candidates; ties to the lower index."""
    take = min(k, d2.shape[1])
    part = np.argpartition(d2, take - 1, axis=1)[:, :take] if take < d2.shape[1] else \
        np.broadcast_to(np.arange(d2.shape[1]), d2.shape)
    cand_d2 = np.concatenate([best_d2, np.take_along_axis(d2, part, axis=1)], axis=1)
    cand_idx = np.concatenate([best_idx, part + offset], axis=1)
    order = np.lexsort((np.where(cand_idx < 0, np.iinfo(np.int64).max, cand_idx), cand_d2), axis=1)[:, :k]
    return np.take_along_axis(cand_d2, order, axis=1), np.take_along_axis(cand_idx, order, axis=1)


def streamed_knn(query, data, k: int, *, approx_threshold: int = APPROX_THRESHOLD, chunk: int | None = None,
                 index_bytes: int = INDEX_BYTES, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k nearest rows of `data` (FeatureRows or an array) for each query row, reading `data` a chunk at a time:
    (float32 distances, int64 indices into data) [n_query, k], nearest first.

    Exact (|q|^2 + |d|^2 - 2 q.d in float32, as `neighbours.knn`) up to `approx_threshold` rows of data;
    faiss inverted files over blocks of at most `index_bytes` above."""
    data = as_rows(data)
    query = np.ascontiguousarray(query, dtype=np.float32)
    if query.ndim != 2 or query.shape[1] != data.dim:
        raise ValueError(f"query {query.shape} and data ({len(data)}, {data.dim}) must be matrices of one width")
    k = int(min(k, len(data)))
    if k < 1:
        raise ValueError("need at least one neighbour to search")
    if len(data) > approx_threshold:
        return _faiss_blocks(query, data, k, index_bytes, random_state)
    best_d2 = np.full((len(query), k), np.inf, dtype=np.float32)
    best_idx = np.full((len(query), k), -1, dtype=np.int64)
    query_sq = np.einsum("ij,ij->i", query, query)
    for start, block in data.blocks(chunk):
        block_sq = np.einsum("ij,ij->i", block, block)
        for q0 in range(0, len(query), QUERY_BLOCK):
            q = query[q0:q0 + QUERY_BLOCK]
            d2 = block_sq[None, :] - 2.0 * (q @ block.T)
            d2 += query_sq[q0:q0 + QUERY_BLOCK, None]
            rows = slice(q0, q0 + len(q))
            best_d2[rows], best_idx[rows] = _merge(best_d2[rows], best_idx[rows], d2, start, k)
    return np.sqrt(np.maximum(best_d2, 0.0)), best_idx


def _faiss_blocks(query, data: FeatureRows, k, index_bytes, random_state):
    """faiss IVF-flat indexes over consecutive blocks of `data` of at most `index_bytes` each, searched in turn."""
    import faiss

    from synthscope.runtime import choose_threads

    faiss.omp_set_num_threads(choose_threads())
    block_rows = max(1024, int(index_bytes // (data.dim * 4 + 8)))
    best_d2 = np.full((len(query), k), np.inf, dtype=np.float32)
    best_idx = np.full((len(query), k), -1, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    for first in range(0, len(data), block_rows):
        n = min(block_rows, len(data) - first)
        n_lists = int(max(1, min(1024, np.sqrt(n), n // 39)))
        sample = np.sort(rng.choice(n, size=min(n, 39 * n_lists * 2), replace=False)) + first
        quantizer = faiss.IndexFlatL2(data.dim)
        index = faiss.IndexIVFFlat(quantizer, data.dim, n_lists)
        index.cp.seed = int(random_state)
        index.cp.niter = 10
        index.train(data.take(sample))
        for start in range(0, n, data.chunk or n):
            block = data.take(np.arange(first + start, first + min(n, start + (data.chunk or n))))
            if not np.isfinite(block).all():
                raise ValueError("generated: features contain NaN or infinite values")
            index.add(block)
        index.nprobe = min(n_lists, max(8, n_lists // 16))
        kk = min(k, n)
        d2, found = index.search(query, kk)
        found = np.where(found < 0, -1, found + np.where(found < 0, 0, first)).astype(np.int64)
        d2 = np.where(found < 0, np.inf, d2).astype(np.float32)
        best_d2, best_idx = _merge_sorted(best_d2, best_idx, d2, found, k)
        del index, quantizer
    return np.sqrt(np.maximum(best_d2, 0.0)), best_idx


def _merge_sorted(best_d2, best_idx, d2, idx, k):
    cand_d2 = np.concatenate([best_d2, d2], axis=1)
    cand_idx = np.concatenate([best_idx, idx], axis=1)
    order = np.lexsort((np.where(cand_idx < 0, np.iinfo(np.int64).max, cand_idx), cand_d2), axis=1)[:, :k]
    return np.take_along_axis(cand_d2, order, axis=1), np.take_along_axis(cand_idx, order, axis=1)


def streamed_query_knn(queries, data, k: int, *, approx_threshold: int = APPROX_THRESHOLD,
                       chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`neighbours.knn(queries, data, k)` with the queries (FeatureRows or an array) read a chunk at a time;
    `data` is an in-memory matrix (the real images). Chunks are multiples of its 2,048-query block, so each
    query's answer is the one of a single call."""
    from synthscope.membership.neighbours import knn

    queries = as_rows(queries)
    parts = [knn(block, data, k, approx_threshold=approx_threshold) for _, block in queries.blocks(chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class ImageRows:
    """The generated images of (dataset, rows) parts, decoded when sliced (uint8 [n, H, W]): what the image scores
    read a chunk at a time instead of one array of every generated image (6.5 GB at 100,000 images)."""

    def __init__(self, parts: Sequence[tuple[object, np.ndarray]]):
        self.parts = [(data, np.asarray(rows, dtype=np.int64)) for data, rows in parts]
        self._offsets = np.cumsum([0] + [len(rows) for _, rows in self.parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, item) -> np.ndarray:
        positions = np.arange(len(self))[item] if isinstance(item, slice) else np.asarray(item, dtype=np.int64)
        part_of = np.searchsorted(self._offsets, positions, side="right") - 1
        out = None
        for p in np.unique(part_of):
            data, rows = self.parts[p]
            mask = part_of == p
            images = data.images(rows[positions[mask] - self._offsets[p]])
            if out is None:
                out = np.empty((len(positions),) + images.shape[1:], dtype=images.dtype)
            out[mask] = images
        return out if out is not None else np.empty((0, 0, 0), dtype=np.uint8)

    def feature_rows(self, features: Callable[[np.ndarray], np.ndarray], dim: int,
                     chunk: int = GENERATED_CHUNK) -> FeatureRows:
        """Features computed from these images a chunk at a time (features(uint8 images) -> float32 [n, dim])."""
        return FeatureRows([(lambda index: np.asarray(features(self[index]), dtype=np.float32),
                             np.arange(len(self)))], dim, chunk)
