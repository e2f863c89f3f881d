"""Nearest neighbours: exact or approximate kNN, intrinsic dimension, and the nearest pairs shown in galleries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
import numpy as np


#: above this many indexed vectors the kNN search is approximate: pynndescent here (the real images' searches),
#: faiss blocks under a byte budget for the generated set (`rows.streamed_knn`, which streams it)
APPROX_THRESHOLD = 20_000


def _as_matrix(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a feature matrix [n, d]; got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name}: no vectors")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    return np.ascontiguousarray(array)


def knn(query: np.ndarray, data: np.ndarray, k: int, *, exclude_self: bool = False,
        approx_threshold: int = APPROX_THRESHOLD, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k nearest rows of `data` for each row of `query`: (distances, indices), both [n_query, k].

    Exact (scikit-learn brute force, BLAS) up to `approx_threshold` indexed vectors, pynndescent beyond.
    `exclude_self=True` means query is data and each row's own match is dropped (leave-one-out).
    """
    query = _as_matrix(query, "query")
    data = _as_matrix(data, "data")
    if query.shape[1] != data.shape[1]:
        raise ValueError(f"query has {query.shape[1]} features but data has {data.shape[1]}")
    available = len(data) - (1 if exclude_self else 0)
    if available < 1:
        raise ValueError("need at least one neighbour to search (leave-one-out on a single image)")
    k = int(min(k, available))
    if len(data) > approx_threshold:
        from pynndescent import NNDescent

        index = NNDescent(data, n_neighbors=max(30, k + 1), random_state=random_state, low_memory=True)
        idx, dist = index.query(query, k=k + int(exclude_self))
    else:
        return _exact_knn(query, data, k, exclude_self)
    if exclude_self:
        keep = idx != np.arange(len(query))[:, None]
        # a duplicate vector may come back instead of self; keep the first k that are not self
        dist = np.array([row[mask][:k] for row, mask in zip(dist, keep)])
        idx = np.array([row[mask][:k] for row, mask in zip(idx, keep)])
    return dist.astype(np.float32), idx


def _exact_knn(query: np.ndarray, data: np.ndarray, k: int, exclude_self: bool,
               chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float32 BLAS (|q|^2 + |d|^2 - 2 q.d), chunked over queries. Float32 cancellation
    costs about 1e-3 of the vectors' norm in absolute distance, far below any copy threshold here."""
    data_sq = np.einsum("ij,ij->i", data, data)
    dist = np.empty((len(query), k), dtype=np.float32)
    idx = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk]
        d2 = data_sq[None, :] - 2.0 * (q @ data.T)
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        if exclude_self:
            rows = np.arange(len(q))
            d2[rows, start + rows] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.tile(
            np.arange(d2.shape[1]), (len(q), 1))
        picked = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(picked, axis=1, kind="stable")
        idx[start:start + chunk] = np.take_along_axis(part, order, axis=1)
        dist[start:start + chunk] = np.sqrt(np.maximum(np.take_along_axis(picked, order, axis=1), 0.0))
    return dist, idx


def intrinsic_dimension(neighbour_distances: np.ndarray) -> float:
    """Levina-Bickel MLE of intrinsic dimension from sorted kNN distances [n, k] (k >= 2), averaged
    as MacKay-Ghahramani suggest (inverse of the mean inverse estimate)."""
    d = np.asarray(neighbour_distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < 2:
        raise ValueError("need at least 2 neighbours per point to estimate the intrinsic dimension")
    d = np.maximum(d, 1e-12)
    logs = np.log(d[:, -1:] / d[:, :-1]).mean(axis=1)
    mean_log = float(np.mean(logs))
    return 1.0 / mean_log if mean_log > 0 else float("nan")


@dataclass
class NearestPair:
    real_index: int
    generated_index: int
    rank: int                 # 0 = nearest
    distance: float           # in the feature space searched
    ssim: float               # structural similarity of the two full-resolution images
    difference: np.ndarray    # int16 [H, W], real - generated

    real_id: str = ""
    generated_id: str = ""


def downsampled_pixels(images: np.ndarray, size: int = 64) -> np.ndarray:
    """Block-mean downsampling of uint8 [n, H, W] to [n, size*size] grey levels in [0, 1]; the default
    space of `nearest_pairs` when no features are given."""
    images = np.asarray(images)
    n, height, width = images.shape
    if height % size or width % size:
        from skimage.transform import resize

        small = np.stack([resize(im.astype(np.float32) / 255, (size, size), anti_aliasing=True) for im in images])
    else:
        fh, fw = height // size, width // size
        small = (images.astype(np.float32) / 255).reshape(n, size, fh, size, fw).mean(axis=(2, 4))
    return small.reshape(n, -1).astype(np.float32)


def nearest_pairs(real_images: np.ndarray, gen_images: np.ndarray, k: int = 3, *,
                  real_features: np.ndarray | None = None, gen_features: np.ndarray | None = None,
                  real_ids: Sequence[str] | None = None, gen_ids: Sequence[str] | None = None,
                  approx_threshold: int = APPROX_THRESHOLD) -> list[NearestPair]:
    """Each real image's k nearest generated images, with distance, SSIM and difference image.

    The search runs in the given feature space (default: 64 px pixels); SSIM and the difference are on
    the full images. Pairs are ordered by real image, then rank.
    """
    from skimage.metrics import structural_similarity

    real_images = np.asarray(real_images)
    gen_images = np.asarray(gen_images)
    if real_images.ndim == 2:
        real_images = real_images[None]
    if real_images.ndim != 3 or gen_images.ndim != 3 or real_images.shape[1:] != gen_images.shape[1:]:
        raise ValueError("real and generated images must be grayscale stacks [n, H, W] of one size")
    rf = downsampled_pixels(real_images) if real_features is None else real_features
    gf = downsampled_pixels(gen_images) if gen_features is None else gen_features
    dist, idx = knn(rf, gf, k, approx_threshold=approx_threshold)
    pairs = []
    for i in range(len(real_images)):
        for rank, (d, j) in enumerate(zip(dist[i], idx[i])):
            a, b = real_images[i], gen_images[j]
            pairs.append(NearestPair(
                real_index=i, generated_index=int(j), rank=rank, distance=float(d),
                ssim=float(structural_similarity(a, b, data_range=255)),
                difference=a.astype(np.int16) - b.astype(np.int16),
                real_id=str(real_ids[i]) if real_ids is not None else str(i),
                generated_id=str(gen_ids[j]) if gen_ids is not None else str(int(j))))
    return pairs

