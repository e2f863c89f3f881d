"""synthscope.knn: the streamed exact search equals brute force whatever the chunking; faiss finds the same
neighbours almost always; `method_for` names the search a size gets."""

from __future__ import annotations

import numpy as np
import pytest

from synthscope.knn import EXACT_BELOW, knn, method_for


def _brute(query, data, k, exclude_self=False):
    d2 = ((query[:, None, :].astype(np.float64) - data[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(data)), d2.shape), d2), axis=1)[:, :k]
    return np.sqrt(np.take_along_axis(d2, order, axis=1)), order


@pytest.mark.parametrize("chunk", [7, 64, 10_000])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_streamed_exact_search_equals_brute_force(chunk, exclude_self):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 16)).astype(np.float32)
    query = data if exclude_self else rng.normal(size=(50, 16)).astype(np.float32)
    distances, indices = knn(query, data, 5, exclude_self=exclude_self, method="exact", chunk=chunk, query_chunk=32)
    want_d, want_i = _brute(query, data, 5, exclude_self)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, rtol=1e-4, atol=1e-4)   # float32 |q|^2 + |d|^2 - 2 q.d
    if exclude_self:
        assert not (indices == np.arange(len(query))[:, None]).any()


def test_a_memory_mapped_data_set_is_read_in_chunks(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(1000, 8)).astype(np.float32)
    np.save(tmp_path / "data.npy", data)
    mapped = np.load(tmp_path / "data.npy", mmap_mode="r")
    query = rng.normal(size=(20, 8)).astype(np.float32)
    np.testing.assert_array_equal(knn(query, mapped, 3, method="exact", chunk=128)[1], _brute(query, data, 3)[1])


def test_faiss_index_finds_the_exact_neighbours_almost_always():
    pytest.importorskip("faiss", reason="faiss is the optional extra synthscope[faiss]")
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=3, size=(20, 32))
    data = (centres[rng.integers(0, 20, 6000)] + rng.normal(size=(6000, 32))).astype(np.float32)
    _, exact = knn(data[:500], data, 5, exclude_self=True, method="exact")
    _, approx = knn(data[:500], data, 5, exclude_self=True, method="faiss")
    recall = np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approx, exact)])
    assert recall >= 0.9
    assert not (approx == np.arange(500)[:, None]).any()


def test_method_for_names_the_search():
    assert method_for(EXACT_BELOW) == "exact"
    assert method_for(EXACT_BELOW + 1) in ("faiss", "exact")
    with pytest.raises(ValueError, match="unknown kNN method"):
        method_for(10, "annoy")
