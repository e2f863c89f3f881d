"""2-D projections: deterministic, cached by embedding + method + params, never computed when forbidden."""

from __future__ import annotations

import numpy as np
import pytest

import synthscope.projection as projection
from synthscope.projection import NotCached, project


@pytest.fixture
def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(3, 12))
    return np.vstack([c + rng.normal(size=(30, 12)) for c in centres]).astype(np.float32)


def test_pca_projection_is_cached_under_the_cache_dir(blobs, isolated_cache, monkeypatch):
    first = project(blobs, "pca")
    assert first.shape == (90, 2) and first.dtype == np.float32
    files = list((isolated_cache / "projections").glob("*.npy"))
    assert len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("a cached projection was recomputed")

    monkeypatch.setattr(projection, "_compute", refuse)
    np.testing.assert_array_equal(project(blobs, "pca"), first)
    np.testing.assert_array_equal(project(blobs, "pca", compute=False), first)


def test_compute_false_raises_not_cached_and_names_the_command(blobs):
    with pytest.raises(NotCached, match="synthscope project"):
        project(blobs, "tsne", compute=False)


def test_key_depends_on_data_method_seed_and_params(blobs):
    key = projection.projection_key(blobs, "tsne", 0, {})
    assert key == projection.projection_key(blobs.copy(), "tsne", 0, {})
    changed = blobs.copy()
    changed[0, 0] += 1e-3
    others = {projection.projection_key(changed, "tsne", 0, {}), projection.projection_key(blobs, "pca", 0, {}),
              projection.projection_key(blobs, "tsne", 1, {}),
              projection.projection_key(blobs, "tsne", 0, {"perplexity": 5})}
    assert key not in others and len(others) == 4


def test_tsne_is_deterministic_for_a_seed_and_separates_blobs(blobs):
    first = project(blobs, "tsne", seed=3, cache=False, perplexity=10, max_iter=300)
    second = project(blobs, "tsne", seed=3, cache=False, perplexity=10, max_iter=300)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-5)
    centroids = np.stack([first[i * 30:(i + 1) * 30].mean(axis=0) for i in range(3)])
    within = max(np.linalg.norm(first[i * 30:(i + 1) * 30] - centroids[i], axis=1).mean() for i in range(3))
    between = min(np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3))
    assert between > 2 * within


def test_a_corrupt_cache_file_is_recomputed(blobs, isolated_cache):
    good = project(blobs, "pca")
    (path,) = (isolated_cache / "projections").glob("*.npy")
    path.write_bytes(b"not an npy file")
    np.testing.assert_allclose(project(blobs, "pca"), good)
    np.testing.assert_allclose(np.load(path), good)


def test_bad_input_gives_one_clear_error(blobs):
    with pytest.raises(ValueError, match="unknown projection method"):
        project(blobs, "mds")
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        project(blobs[0], "pca")
    bad = blobs.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        project(bad, "pca")
    with pytest.raises(ValueError, match="at least 3"):
        project(blobs[:2], "pca", cache=False)


@pytest.mark.slow
def test_umap_is_deterministic_for_a_seed(blobs):
    """UMAP spends about a minute in numba JIT in a fresh process; the dashboard therefore never calls it."""
    first = project(blobs, "umap", seed=0, cache=False, n_neighbors=10)
    second = project(blobs, "umap", seed=0, cache=False, n_neighbors=10)
    np.testing.assert_allclose(first, second, rtol=1e-4, atol=1e-4)
    assert first.shape == (90, 2)


def test_large_projections_say_what_they_are_and_umap_places_the_rest_by_transform(monkeypatch):
    """Above LARGE_PROJECTION points UMAP is fit on a sample and transforms the rest; t-SNE needs openTSNE.
    The threshold is lowered here so the test stays small."""
    import synthscope.projection as projection

    monkeypatch.setattr(projection, "LARGE_PROJECTION", 150)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 8)), rng.normal(8, 1, (100, 8))]).astype(np.float32)
    coords = projection.project(X, "umap", cache=False)
    assert coords.shape == (200, 2) and np.isfinite(coords).all()
    # the two blobs stay apart for the transformed points too
    centre_a, centre_b = coords[:100].mean(axis=0), coords[100:].mean(axis=0)
    nearer_a = np.linalg.norm(coords - centre_a, axis=1) < np.linalg.norm(coords - centre_b, axis=1)
    assert nearer_a[:100].mean() > 0.95 and nearer_a[100:].mean() < 0.05
    assert projection.describe_projection("umap", 200) == (
        "UMAP fit on a sample of 150 of 200 points, the others placed by its transform")
    assert projection.describe_projection("umap", 100) == "UMAP"
    if not projection._opentsne_available():
        assert not projection.available_at("tsne", 200)
        with pytest.raises(ValueError, match="needs openTSNE"):
            projection.project(X, "tsne", cache=False)
