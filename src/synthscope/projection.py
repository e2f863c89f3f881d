"""2-D projections of embeddings (PCA, UMAP, t-SNE), deterministic with a seed and cached on disk.

UMAP costs 60-90 s of numba JIT in a fresh process here, so projections are computed by the CLI or a
notebook (`synthscope project`) and the dashboard only reads them with `compute=False`.

Above `LARGE_PROJECTION` points (50,000) t-SNE and UMAP take minutes to hours on a CPU: UMAP is then fit
on a seeded sample of that many points and places the rest with its `transform`, and t-SNE needs
openTSNE's FFT-accelerated implementation (`pip install openTSNE`), else it is refused with a message
naming PCA and UMAP. `describe_projection(method, n)` says in words which one a projection of n points
is, for the page and reports.
Cache: `default_cache_dir()/projections/<key>.npy`, key = sha256 of the embedding bytes (dtype and
shape included) + method + parameters + library version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from synthscope.outputs import atomic_save

METHODS = ("pca", "umap", "tsne")
#: above this many points UMAP is fit on a sample of this many and t-SNE needs openTSNE
LARGE_PROJECTION = 50_000


def _opentsne_available() -> bool:
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def describe_projection(method: str, n_points: int) -> str:
    """Which projection `project(X, method)` computes for `n_points` points, in words."""
    if method == "pca":
        return "PCA (2 components)"
    if method == "umap":
        if n_points > LARGE_PROJECTION:
            return (f"UMAP fit on a sample of {LARGE_PROJECTION:,} of {n_points:,} points, the others placed by "
                    "its transform")
        return "UMAP"
    if method == "tsne":
        return "t-SNE (openTSNE, FFT-accelerated)" if n_points > LARGE_PROJECTION else "t-SNE (scikit-learn, Barnes-Hut)"
    raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")


def available_at(method: str, n_points: int) -> bool:
    """Whether `project` can compute `method` for this many points here (t-SNE at scale needs openTSNE)."""
    return not (method == "tsne" and n_points > LARGE_PROJECTION and not _opentsne_available())


class NotCached(LookupError):
    """The projection is not in the cache and `compute=False` forbade computing it."""


def _cache_root(cache: Any) -> Path | None:
    """cache: True/None -> the default dir; False -> no caching; a path -> that dir (its projections/ folder)."""
    if cache is False:
        return None
    if cache is None or cache is True:
        from synthscope.cache import default_cache_dir

        base = default_cache_dir()
    else:
        base = Path(getattr(cache, "cache_dir", cache))
    return Path(base) / "projections"


def _library_version(method: str) -> str:
    if method == "umap":
        import umap

        return getattr(umap, "__version__", "?")
    import sklearn

    return sklearn.__version__


def projection_key(X: np.ndarray, method: str, seed: int, params: dict[str, Any]) -> str:
    X = np.ascontiguousarray(X, dtype=np.float32)
    digest = hashlib.sha256()
    digest.update(json.dumps({"shape": X.shape, "method": method, "seed": seed, "params": params,
                              "version": _library_version(method)}, sort_keys=True, default=str).encode())
    digest.update(X.tobytes())
    return digest.hexdigest()[:32]


def _compute(X: np.ndarray, method: str, seed: int, params: dict[str, Any]) -> np.ndarray:
    n = len(X)
    if n < 3:
        raise ValueError(f"a 2-D projection needs at least 3 points; got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        from synthscope.runtime import small_input_threads

        # one BLAS thread for small inputs: on a busy 2-core machine two spin-waiting threads made PCA of
        # 20k points 100x slower (0.75 s instead of 0.007 s; bench speed_scale)
        with small_input_threads(n):
            return PCA(n_components=2, random_state=seed, **params).fit_transform(X)
    if method == "umap":
        import umap

        options = {"n_neighbors": min(15, n - 1), "min_dist": 0.1, "metric": "euclidean", "n_jobs": 1, **params}
        # random_state fixes the layout (umap then runs single-threaded, which is what makes it repeatable)
        model = umap.UMAP(n_components=2, random_state=seed, **options)
        if n <= LARGE_PROJECTION:
            return model.fit_transform(X)
        sample = np.sort(np.random.default_rng(seed).choice(n, size=LARGE_PROJECTION, replace=False))
        out = np.empty((n, 2), dtype=np.float32)
        out[sample] = model.fit_transform(X[sample])
        rest = np.setdiff1d(np.arange(n), sample)
        for start in range(0, len(rest), LARGE_PROJECTION):   # bounded memory for the transform's kNN
            rows = rest[start:start + LARGE_PROJECTION]
            out[rows] = model.transform(X[rows])
        return out
    if method == "tsne" and n > LARGE_PROJECTION:
        if not _opentsne_available():
            raise ValueError(f"t-SNE of {n:,} points (more than {LARGE_PROJECTION:,}) needs openTSNE's FFT-accelerated "
                             "t-SNE (pip install openTSNE); or use --method pca, or umap (fit on a sample)")
        from openTSNE import TSNE as OpenTSNE

        options = {"perplexity": 30.0, "n_jobs": 1, **params}
        return np.asarray(OpenTSNE(n_components=2, random_state=seed, **options).fit(X))
    if method == "tsne":
        from sklearn.manifold import TSNE

        options = {"perplexity": min(30.0, max(2.0, (n - 1) / 3.0)), "init": "pca", **params}
        return TSNE(n_components=2, random_state=seed, **options).fit_transform(X)
    raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")


def project(X, method: str = "umap", *, seed: int = 0, cache: Any = None, compute: bool = True,
            **params: Any) -> np.ndarray:
    """float32 [n, 2] projection of X [n, d]; cached by embedding hash + method + params.

    cache: None/True (default cache dir), False (no disk cache), or a directory / EmbeddingCache.
    compute=False returns the cached projection or raises NotCached (what the dashboard uses).
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected an embedding matrix [n, d]; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("embedding contains NaN or infinite values")
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")
    root = _cache_root(cache)
    path = root / f"{projection_key(X, method, seed, params)}.npy" if root is not None else None
    if path is not None and path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(X), 2) and np.isfinite(cached).all():
                return cached
        except (OSError, ValueError):
            pass   # truncated or corrupt: recompute below and overwrite
        path.unlink(missing_ok=True)
    if not compute:
        raise NotCached(f"no cached {method} projection for this embedding ({len(X)} x {X.shape[1]}); "
                        f"run `synthscope project PATH --method {method}` first")
    result = np.asarray(_compute(X, method, seed, params), dtype=np.float32)
    if path is not None:
        atomic_save(path, lambda stream: np.save(stream, result), durable=False)   # a cache: cheap to redo
    return result
