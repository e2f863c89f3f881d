"""Generated features read a chunk at a time (membership.rows): the streamed searches and a whole run give the
unstreamed answer (bit for bit with one chunk, to float32 rounding with tiny chunks), from arrays and from the
cache; faiss blocks under a byte budget find the exact neighbours; on ../shared/bench/v3 the run files of a
streamed run (64-row chunks) equal the unstreamed run's byte for byte."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from float_tolerance import EPS32
from synthscope import membership as mb
from synthscope.cache import EmbeddingCache
from synthscope.features.texture import PixelsExtractor
from synthscope.membership.rows import FeatureRows, streamed_knn, streamed_query_knn


def _mixture(n, dim, seed):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=2.0, size=(5, dim))
    return (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _d2_tolerance(query, data) -> float:
    """float32 |q|^2 + |x|^2 - 2 q.x over d dims: within (d + 3) eps (|q| + |x|)^2, as test_membership bounds it."""
    scale = float(np.linalg.norm(query, axis=1).max() + np.linalg.norm(data, axis=1).max()) ** 2
    return (query.shape[1] + 3) * EPS32 * scale


@pytest.mark.parametrize("chunk", [0, 5, 64])
def test_streamed_knn_equals_the_unstreamed_search(chunk):
    data, query = _mixture(300, 24, 1), _mixture(40, 24, 2)
    expected, expected_idx = mb.knn(query, data, 7)
    dist, idx = streamed_knn(query, FeatureRows.from_array(data, chunk=chunk), 7)
    if chunk in (0, 64):      # one chunk, or chunks the BLAS kernels treat like the whole: the same bits
        np.testing.assert_array_equal(dist, expected)
    bound = _d2_tolerance(query, data)
    np.testing.assert_allclose(dist ** 2, expected ** 2, rtol=0, atol=bound)
    exact = np.linalg.norm(query[:, None].astype(np.float64) - data[None], axis=2)
    np.testing.assert_allclose(dist ** 2, np.take_along_axis(exact, idx, axis=1) ** 2, rtol=0, atol=bound)
    assert (np.diff(dist, axis=1) >= 0).all()
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(expected_idx, axis=1))


def test_streamed_queries_equal_one_call():
    data, queries = _mixture(80, 16, 3), _mixture(50, 16, 4)
    expected, _ = mb.knn(queries, data, 1)
    dist, _ = streamed_query_knn(FeatureRows.from_array(queries, chunk=6), data, 1)
    np.testing.assert_allclose(dist ** 2, expected ** 2, rtol=0, atol=_d2_tolerance(queries, data))


def test_faiss_blocks_under_a_byte_budget_find_the_exact_neighbours():
    data, query = _mixture(6000, 16, 5), _mixture(200, 16, 6)
    exact, exact_idx = streamed_knn(query, data, 5)
    # a budget of about 1,500 vectors: four indexes, built and searched one after the other
    dist, idx = streamed_knn(query, FeatureRows.from_array(data, chunk=500), 5, approx_threshold=1000,
                             index_bytes=1500 * (16 * 4 + 8))
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx, exact_idx)])
    assert recall > 0.9, recall
    found = np.linalg.norm(query[:, None] - data[idx], axis=2)
    np.testing.assert_allclose(dist ** 2, found ** 2, rtol=0, atol=_d2_tolerance(query, data))
    assert (dist[:, 0] >= exact[:, 0] - 1e-4).all()


def test_rows_read_from_the_cache_are_the_postprocessed_vectors(tmp_path):
    extractor = PixelsExtractor(size=8)
    cache = EmbeddingCache(tmp_path)
    raw = _mixture(50, 64, 7)
    keys = [f"k{i:03d}" for i in range(50)]
    cache.add(extractor, keys[:30], raw[:30])
    cache.add(extractor, keys[30:], raw[30:])
    rows = FeatureRows.from_cache(cache, extractor, keys, lambda v: mb.postprocess(v, "image_zscore"), chunk=7)
    expected = mb.postprocess(raw, "image_zscore")
    np.testing.assert_array_equal(np.concatenate([b for _, b in rows.blocks()]), expected)
    picked = rows.subset(np.arange(10, 40)).join(rows.subset(np.arange(3)))
    np.testing.assert_array_equal(picked.array(), expected[list(range(10, 40)) + [0, 1, 2]])
    assert picked.shape == (33, 64)
    with pytest.raises(RuntimeError, match="missing from the cache"):
        FeatureRows.from_cache(cache, extractor, ["absent"], dim=64).array()


def test_a_run_with_tiny_chunks_equals_the_unstreamed_run():
    """run_membership on given features, generated read 7 rows at a time vs all at once."""
    from synthscope.benchmark.scale_audit import _vector_dataset

    test = _vector_dataset(90, 40, "test", False)
    dev = _vector_dataset(60, 30, "dev", True)
    spaces = mb.DEFAULT_SPACES + ("pixels",)
    features = {s: _mixture(len(test.manifest), 32, 10 + i) for i, s in enumerate(spaces)}
    dev_features = {s: _mixture(len(dev.manifest), 32, 20 + i) for i, s in enumerate(spaces)}
    runs = [mb.run_membership(test, dev, mb.MembershipOptions(scores=mb.SCORES), features=features,
                              dev_features=dev_features, chunk_size=chunk) for chunk in (0, 7)]
    whole, streamed = (run.groups[0] for run in runs)
    assert whole.primary == streamed.primary
    pd.testing.assert_series_equal(whole.predictions, streamed.predictions)
    # the distance columns are minus mean nearest distances: |a - b| <= sqrt(|a^2 - b^2|) bounds them
    data = np.concatenate([features[s] for s in spaces])
    atol = np.sqrt(_d2_tolerance(data, data))
    for column in [c for c in whole.result.scores.columns if c.endswith(":distance")]:
        np.testing.assert_allclose(streamed.result.scores[column], whole.result.scores[column], rtol=0, atol=atol)
    pd.testing.assert_frame_equal(whole.nearest.drop(columns="distance"), streamed.nearest.drop(columns="distance"))


@pytest.mark.slow
def test_v3_run_files_are_byte_identical_streamed_and_unstreamed(shared_dir, tmp_path):
    from synthscope.data import load_dataset
    from synthscope.score_files import write_score_file
    from synthscope.submission import write_membership_run

    v3 = shared_dir / "bench" / "v3" / "subtask1"
    if not v3.is_dir():
        pytest.skip(f"benchmark v3 not found at {v3}")
    test, dev = load_dataset(v3 / "test"), load_dataset(v3 / "dev")
    cache = EmbeddingCache(tmp_path / "cache")
    files, tables = [], []
    # 400 pooled generated images: 7 chunks of 64 against everything at once (the feature scores: the image
    # scores read the images, not the chunked features)
    for chunk in (0, 64):
        run = mb.run_membership(test, dev, mb.MembershipOptions(scores=mb.SCORES), cache=cache, chunk_size=chunk)
        out, scores = tmp_path / f"run-{chunk}.csv", tmp_path / f"scores-{chunk}.csv"
        write_membership_run(out, run.predictions)
        write_score_file(scores, run.scores_table())
        files.append((out.read_bytes(), scores.read_bytes()))
        tables.append(run.groups[0].result.scores)
    assert files[0] == files[1]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


class _Images:
    """A data set's `images(rows)` over an array (what ImageRows reads)."""

    def __init__(self, images):
        self.array = images

    def images(self, rows):
        return self.array[np.asarray(rows)]


def test_image_scores_read_lazily_equal_the_array_scores():
    from scipy import ndimage

    from synthscope.membership.rows import ImageRows

    rng = np.random.default_rng(3)
    pool = ndimage.gaussian_filter(rng.normal(size=(40, 64, 64)), sigma=(0, 3, 3))
    pool = np.clip((pool - pool.min()) / np.ptp(pool) * 255, 0, 255).astype(np.uint8)
    real, generated = pool[:12], pool[12:]
    generated[:3] = real[:3]                                         # three copies to find
    lazy = ImageRows([(_Images(generated), np.arange(0, 10)), (_Images(generated), np.arange(10, 28))])
    for score in (mb.registered_copy_score, mb.patch_copy_score):
        np.testing.assert_array_equal(score(real, lazy), score(real, generated))
    # the patch score also reads the real images lazily (exact path: the same chunked sums)
    lazy_real = ImageRows([(_Images(real), np.arange(len(real)))])
    np.testing.assert_array_equal(mb.patch_copy_score(lazy_real, lazy), mb.patch_copy_score(real, generated))
    assert (mb.registered_copy_score(real, lazy)[:3] > -1e-3).all()   # the copies register at distance ~0
    np.testing.assert_array_equal(lazy[5:15], generated[5:15])


def _ct_like(n, seed, size=64):
    """Textured stand-ins at the working resolution: smoothed noise inside a disc on a black background."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2 + 4) ** 2) < (0.4 * size) ** 2
    images = [np.clip(128 + 60 * gaussian_filter(rng.normal(size=(size, size)), 1.5) / 0.2 * disc, 0, 255)
              for _ in range(n)]
    return np.stack(images).astype(np.uint8)


class _Recording(_Images):
    """_Images that records how many rows each read asked for."""

    def __init__(self, images):
        super().__init__(images)
        self.reads = []

    def images(self, rows):
        self.reads.append(len(np.asarray(rows)))
        return super().images(rows)


def test_the_approximate_patch_search_streams_the_generated_images_and_bounds_the_exact_one(monkeypatch):
    """The faiss path as a map-reduce over generated chunks of 9 images (decoded 4 at a time), the real images read
    4 at a time too: no read asks for more than 4 images, every generated image is read once per pass (plus the
    k-means sample) and every real image once, the scores are those of the real images as an array, and each real patch's
    distance is a distance to an actual candidate, so per image it is never below the exact search's beyond
    float32 rounding; the planted copies (one mirrored) are found at distance ~0."""
    from synthscope.membership import patches
    from synthscope.membership.rows import ImageRows

    real, other = _ct_like(8, 0), _ct_like(30, 1)
    generated = np.concatenate([other[:12], real[:2], real[2:3, :, ::-1], other[12:]])
    options = dict(size=64, patch=8, stride=8)     # images at the working resolution: both paths see the same pixels
    exact = patches.patch_distances(real, generated, method="exact", **options)
    monkeypatch.setattr(patches, "APPROX_CHUNK", 9)
    source, real_source = _Recording(generated), _Recording(real)
    approx = patches.patch_distances(ImageRows([(real_source, np.arange(len(real)))]),
                                     ImageRows([(source, np.arange(len(generated)))]), method="approx",
                                     chunk=4, **options)
    assert max(source.reads) <= 4 and max(real_source.reads) <= 4   # the real images stream too, read once
    assert sum(source.reads) == 2 * len(generated) and sum(real_source.reads) == len(real)  # (+ k-means sample)
    np.testing.assert_array_equal(approx, patches.patch_distances(real, ImageRows([(source, np.arange(len(generated)))]),
                                                                  method="approx", chunk=4, **options))
    # float32 |q|^2 + |c|^2 - 2 q.c of unit patches (d = 64): within (d + 3) eps (1 + 1)^2; sqrt for the distance
    bound = np.sqrt((64 + 3) * EPS32 * 4)
    assert (approx >= exact - bound).all()
    assert approx[:3].max() < 1e-3 + bound < exact[3:].min()
    assert np.abs(approx - exact).mean() < 0.05 * exact[3:].mean()  # and close: the nearest patch is mostly found


def test_patch_scores_on_v3_are_those_of_the_exact_search(shared_dir):
    """v3's folders are far below APPROX_PATCH_PAIRS: `auto` is the exact, chunked search, whatever the chunk."""
    from synthscope.data import load_dataset
    from synthscope.membership import patches

    folder = shared_dir / "bench" / "v3" / "subtask1" / "dev"
    if not folder.is_dir():
        pytest.skip(f"benchmark v3 not found at {folder}")
    dev = load_dataset(folder)
    generated = dev.manifest["role"].astype(str).str.contains("generated").to_numpy()
    real_rows, gen_rows = np.flatnonzero(~generated)[:6], np.flatnonzero(generated)
    assert patches.patch_pairs(len(np.flatnonzero(~generated)), len(gen_rows)) < patches.APPROX_PATCH_PAIRS
    real = dev.images(real_rows)
    whole = patches.patch_distances(real, dev.images(gen_rows), chunk=len(gen_rows))
    np.testing.assert_array_equal(patches.patch_distances(real, dev.images(gen_rows), method="auto"),
                                  patches.patch_distances(real, dev.images(gen_rows), method="exact"))
    # other reference chunkings: the running minimum of the same float32 distances, to their rounding
    np.testing.assert_allclose(patches.patch_distances(real, dev.images(gen_rows), chunk=37), whole, rtol=0,
                               atol=np.sqrt((256 + 3) * EPS32 * 4))


def test_the_faiss_patch_search_probing_every_list_is_the_exact_search():
    """With every centroid's list probed at every place of a window and every candidate re-ranked, the inverted file
    keyed by (grid place, centroid) holds each window's candidates exactly once: the fast search gives the exact
    nearest distances (to float32 rounding), so no place of a window (border windows included) is lost or mixed up."""
    from synthscope.membership import patches

    real, generated = _ct_like(5, 3), _ct_like(12, 4)
    size, patch, stride = 64, 8, 8
    side = len(range(0, size - patch + 1, stride))
    windows = patches._windows(side, 1)
    unit, std, _ = patches._grid_patches(real, size, patch, stride)
    exact = patches._exact_nearest(unit, generated, windows, size, patch, stride, True, 64)
    query = np.ones(exact.shape, dtype=bool)
    query[0, ::3] = False                                          # patches left out are not searched
    fast = patches._approx_nearest(real, generated, windows, size, patch, stride, True, 64, query, n_lists=4,
                                   n_probe=4, refine=9 * 2 * len(generated))
    assert np.isinf(fast[~query]).all()
    # squared distances of unit patches (d = 64), float32 from the raw grey levels on one side: (d + 3) eps (1 + 1)^2
    np.testing.assert_allclose(fast[query], exact[query], rtol=0, atol=(patch * patch + 3) * EPS32 * 4)


@pytest.mark.parametrize("bench", ["v3", "v3s"])
def test_the_faiss_patch_search_agrees_with_the_exact_one_on_v3(shared_dir, bench):
    """v3's and v3s's test folders (real CT slices and a generator's images) at the working resolution, so both
    searches see the same uint8 pixels: each fast distance is a real candidate's exact distance, so never below the
    exact search's beyond float32 rounding; above it only where the nearest patch is missed. The module documents
    per-image scores within 0.02 of the exact ones (a twentieth of the score's spread over images, ~0.4 here), and
    the ranking kept."""
    from scipy.stats import spearmanr

    from synthscope.data import load_dataset
    from synthscope.membership import patches

    folder = shared_dir / "bench" / bench / "subtask1" / "test"
    if not folder.is_dir():
        pytest.skip(f"benchmark {bench} not found at {folder}")
    data = load_dataset(folder)
    generated = data.manifest["role"].astype(str).str.contains("generated").to_numpy()
    size = patches.PATCH_SIZE

    def working(rows):
        images = data.images(rows)
        f = images.shape[1] // size
        return np.rint(images.reshape(len(images), size, f, size, f).mean(axis=(2, 4))).astype(np.uint8)

    real, gen = working(np.flatnonzero(~generated)[:24]), working(np.flatnonzero(generated))
    exact = patches.patch_distances(real, gen, method="exact")
    fast = patches.patch_distances(real, gen, method="approx")
    bound = np.sqrt((patches.PATCH ** 2 + 3) * EPS32 * 4)
    assert (fast >= exact - bound).all()
    assert np.abs(fast - exact).max() <= 0.02
    assert spearmanr(fast, exact)[0] >= 0.99


def test_the_threaded_faiss_patch_search_is_the_exact_search_on_v3_images(shared_dir, monkeypatch):
    """Real CT slices and a generator's images of v3 at the working resolution: the fast search on two threads (the
    places projected and the locations searched in parallel, candidates re-ranked from their uint8 grey levels),
    probing every list and re-ranking every candidate, gives the exact search's squared distances to float32
    rounding; and with the default lists, probes and candidates two threads give one thread's distances bit for bit
    (each location is searched whole on one thread)."""
    from synthscope import runtime
    from synthscope.data import load_dataset
    from synthscope.membership import patches

    folder = shared_dir / "bench" / "v3" / "subtask1" / "test"
    if not folder.is_dir():
        pytest.skip(f"benchmark v3 not found at {folder}")
    data = load_dataset(folder)
    generated = data.manifest["role"].astype(str).str.contains("generated").to_numpy()
    size, patch, stride = patches.PATCH_SIZE, patches.PATCH, patches.PATCH_STRIDE
    real = patches._working(data.images(np.flatnonzero(~generated)[:6]), np.arange(6), size, 6)
    gen_rows = np.flatnonzero(generated)[:16]
    gen = patches._working(data.images(gen_rows), np.arange(len(gen_rows)), size, 16)
    side = len(range(0, size - patch + 1, stride))
    windows = patches._windows(side, patches.PATCH_NEIGHBOURS)
    unit, std, _ = patches._grid_patches(real, size, patch, stride)
    query = patches._body(std, patches.BODY_STD)
    exact = patches._exact_nearest(unit, gen, windows, size, patch, stride, True, 64)

    def fast(threads, **options):
        monkeypatch.setattr(runtime, "choose_threads", lambda: threads)
        return patches._approx_nearest(real, gen, windows, size, patch, stride, True, 64, query, **options)

    every = fast(2, n_lists=4, n_probe=4, refine=len(windows[side + 1]) * 2 * len(gen))
    assert np.isinf(every[~query]).all()
    # squared distances of unit patches (d = 256), float32 from the raw grey levels on one side: (d + 3) eps (1 + 1)^2
    np.testing.assert_allclose(every[query], exact[query], rtol=0, atol=(patch * patch + 3) * EPS32 * 4)
    np.testing.assert_array_equal(fast(2), fast(1))
