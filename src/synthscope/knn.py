"""k nearest neighbours at any size: exact and streamed below a size where that is fast, faiss above.

`knn(query, data, k)` returns (distances, indices) [n_query, k], nearest first. The exact search reads
`data` `chunk` rows at a time and keeps a running top-k per query (a map-reduce over the data), so its
memory depends on the chunk, not on the size of `data` (which may be a memory map of the cache); equal
distances go to the lower index. Above `EXACT_BELOW` indexed vectors
an inverted-file index of faiss (`IndexIVFFlat`, trained on a seeded sample) answers instead, when faiss
is installed (`pip install 'synthscope[faiss]'`); `method_for` says which search a size gets, so reports
can name it.
"""

from __future__ import annotations

import numpy as np

#: below this many indexed vectors the exact search is fast enough (about 1 s per 1,000 queries at 4,096-d)
EXACT_BELOW = 50_000
METHODS = ("auto", "exact", "faiss")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def method_for(n_data: int, method: str = "auto") -> str:
    """The search `knn` runs for `n_data` indexed vectors: "exact" or "faiss"."""
    if method not in METHODS:
        raise ValueError(f"unknown kNN method {method!r}; choose from {', '.join(METHODS)}")
    if method == "auto":
        return "faiss" if n_data > EXACT_BELOW and faiss_available() else "exact"
    if method == "faiss" and not faiss_available():
        raise ValueError("kNN method 'faiss' needs faiss: pip install 'synthscope[faiss]'")
    return method


def _rows(data, start: int, stop: int) -> np.ndarray:
    return np.ascontiguousarray(data[start:stop], dtype=np.float32)


def knn(query, data, k: int, *, exclude_self: bool = False, method: str = "auto", chunk: int = 8192,
        query_chunk: int = 2048, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k nearest rows of `data` for each row of `query`: (float32 distances, int64 indices).

    exclude_self: query is data, and each row's own index is never returned (leave-one-out).
    data: any 2-D array-like that slices by rows (a numpy array or memory map); read `chunk` rows at a time.
    """
    query = np.ascontiguousarray(query, dtype=np.float32)
    n_data = len(data)
    if query.ndim != 2 or len(np.shape(data)) != 2 or query.shape[1] != np.shape(data)[1]:
        raise ValueError(f"query {query.shape} and data {np.shape(data)} must be matrices of one width")
    k = int(min(k, n_data - int(exclude_self)))
    if k < 1:
        raise ValueError("need at least one neighbour to search")
    if method_for(n_data, method) == "faiss":
        return _faiss_knn(query, data, k, exclude_self, chunk, random_state)
    return _exact_knn(query, data, k, exclude_self, chunk, query_chunk)


def _exact_knn(query, data, k, exclude_self, chunk, query_chunk):
    n_query = len(query)
    best_d2 = np.full((n_query, k), np.inf, dtype=np.float32)
    best_idx = np.full((n_query, k), -1, dtype=np.int64)
    query_sq = np.einsum("ij,ij->i", query, query)
    for start in range(0, len(data), chunk):
        block = _rows(data, start, start + chunk)
        block_sq = np.einsum("ij,ij->i", block, block)
        for q0 in range(0, n_query, query_chunk):
            q = query[q0:q0 + query_chunk]
            d2 = block_sq[None, :] - 2.0 * (q @ block.T)
            d2 += query_sq[q0:q0 + query_chunk, None]
            np.maximum(d2, 0.0, out=d2)
            if exclude_self:
                rows = np.arange(q0, q0 + len(q))
                inside = (rows >= start) & (rows < start + len(block))
                d2[np.flatnonzero(inside), rows[inside] - start] = np.inf
            take = min(k, d2.shape[1])
            part = np.argpartition(d2, take - 1, axis=1)[:, :take] if take < d2.shape[1] else \
                np.broadcast_to(np.arange(d2.shape[1]), d2.shape)
            cand_d2 = np.concatenate([best_d2[q0:q0 + len(q)], np.take_along_axis(d2, part, axis=1)], axis=1)
            cand_idx = np.concatenate([best_idx[q0:q0 + len(q)], part + start], axis=1)
            # nearest first, ties to the lower index: the same answer whatever the chunking
            order = np.lexsort((np.where(cand_idx < 0, np.iinfo(np.int64).max, cand_idx), cand_d2), axis=1)[:, :k]
            best_d2[q0:q0 + len(q)] = np.take_along_axis(cand_d2, order, axis=1)
            best_idx[q0:q0 + len(q)] = np.take_along_axis(cand_idx, order, axis=1)
    return np.sqrt(best_d2), best_idx


def _faiss_knn(query, data, k, exclude_self, chunk, random_state):
    import faiss

    n_data, dim = np.shape(data)
    n_lists = int(max(1, min(4096, 4 * np.sqrt(n_data), n_data // 64)))   # faiss wants >= 39 points per list
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n_data, size=min(n_data, 64 * n_lists), replace=False))
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists)
    index.cp.seed = int(random_state)
    index.train(np.ascontiguousarray(np.asarray(data[sample], dtype=np.float32)))
    for start in range(0, n_data, chunk):
        index.add(_rows(data, start, start + chunk))
    index.nprobe = min(n_lists, 32)
    d2, idx = index.search(query, k + int(exclude_self))
    if exclude_self:
        own = idx == np.arange(len(query))[:, None]
        # drop each row's own index (or the last column when it was not found among the candidates)
        drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
        keep = np.ones_like(own)
        keep[np.arange(len(query)), drop] = False
        d2, idx = d2[keep].reshape(len(query), k), idx[keep].reshape(len(query), k)
    return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32), idx.astype(np.int64)
