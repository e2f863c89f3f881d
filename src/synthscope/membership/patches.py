"""Patch-level memorisation: how close a real image's local patches are to patches of the generated set.

A diffusion model trained long on few images recombines *parts* of its training slices more often than it
reproduces whole slices, so whole-image distances miss much of the trace. `patch_copy_score` compares
every body patch of a real image with the generated images' patches at the same or an adjacent grid
location and averages the nearest distances. It uses no other real image and no reference set, so an
image's score does not depend on how the other real images were sampled, and a threshold fit on dev
transfers to test. On bench v3 (chosen on dev, 16 px patches at 128 px won a small grid): dev AUC 0.995,
test 0.991, where whole-image scores reach 0.83-0.91 on dev.

`patch_distances(..., reference=...)` returns the same statistic against any image set; against real
images disjoint from the scored scans it is the score's generator-free control (report it beside the
score: a below-chance score whose control is below chance too says "typical patches", not leakage).
"""

from __future__ import annotations

import numpy as np


#: working resolution, patch side and stride (pixels at that resolution), search radius in grid steps, and
#: the grey-level std (0..1) below which a patch counts as flat background and is left out
PATCH_SIZE, PATCH, PATCH_STRIDE, PATCH_NEIGHBOURS, BODY_STD = 128, 16, 8, 1, 0.05


def _grid_patches(images: np.ndarray, size: int, patch: int, stride: int):
    """Unit-norm (standardised) patches [n, L, patch*patch], their grey-level std [n, L], and the grid side."""
    from synthscope.membership.neighbours import downsampled_pixels

    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images [n, H, W], got {images.dtype} {images.shape}")
    if patch > size or stride < 1:
        raise ValueError("need patch <= size and stride >= 1")
    x = downsampled_pixels(images, size).reshape(len(images), size, size)
    starts = range(0, size - patch + 1, stride)
    p = np.stack([x[:, i:i + patch, j:j + patch].reshape(len(x), -1) for i in starts for j in starts], axis=1)
    std = p.std(axis=-1)
    unit = (p - p.mean(axis=-1, keepdims=True)) / np.maximum(std[..., None], 1e-3) / patch
    return unit.astype(np.float32), std, len(starts)


def patch_distances(real_images: np.ndarray, reference: np.ndarray, *, size: int = PATCH_SIZE,
                    patch: int = PATCH, stride: int = PATCH_STRIDE, neighbours: int = PATCH_NEIGHBOURS,
                    body_std: float = BODY_STD) -> np.ndarray:
    """Mean over each real image's body patches of the distance to the nearest patch of `reference`
    (any image at grid locations within `neighbours` steps) [n_real]. Patches are standardised, so the
    distance ignores local brightness and contrast (0 = same pattern, sqrt(2) = uncorrelated)."""
    real, real_std, side = _grid_patches(real_images, size, patch, stride)
    ref, _, _ = _grid_patches(reference, size, patch, stride)
    nearest = np.empty(real.shape[:2], dtype=np.float32)
    for loc in range(side * side):
        i, j = divmod(loc, side)
        window = [a * side + b for a in range(max(0, i - neighbours), min(side, i + neighbours + 1))
                  for b in range(max(0, j - neighbours), min(side, j + neighbours + 1))]
        cand = ref[:, window].reshape(-1, ref.shape[-1])
        q = real[:, loc]
        sq = (q * q).sum(1)[:, None] + (cand * cand).sum(1)[None, :] - 2.0 * (q @ cand.T)
        nearest[:, loc] = np.sqrt(np.maximum(sq.min(axis=1), 0.0))
    body = real_std > body_std
    body[~body.any(axis=1)] = True          # an image without texture: use every patch
    return (nearest * body).sum(axis=1).astype(np.float64) / body.sum(axis=1)


def patch_copy_score(real_images: np.ndarray, gen_images: np.ndarray, **options) -> np.ndarray:
    """Minus `patch_distances` to the generated images: higher = more of the image's local patterns are in
    the generated set = more likely used for training."""
    return -patch_distances(real_images, gen_images, **options)
