"""Patch pair tables: each real patch's nearest distance to every reference image, so that the patch distance to
any subset of the reference images is a cheap reduction instead of a new patch search.

The null control's splits all draw their stand-in generated set from the same real images, so one real x real
table serves every split (`null_control`): on v1's model 2 folder (534 real images) the ten splits of the
patch null then cost one table (0.26 GB) instead of ten searches.
"""

from __future__ import annotations

import numpy as np

from synthscope.membership.patches import (
    BODY_STD, PATCH, PATCH_NEIGHBOURS, PATCH_SIZE, PATCH_STRIDE, _grid_patches, _oriented, _windows,
)

#: images per block when building pair tables (64 x 64 x 225 patch places x 4 bytes = 3.7 MB per block)
BLOCK = 64


def _cut(images, mirror, size, patch, stride):
    """Unit patches [orientations, n, L, d], their squared norms, the grey-level std of the first orientation."""
    unit, std, side = _grid_patches(_oriented(np.asarray(images), mirror), size, patch, stride)
    o = 2 if mirror else 1
    unit = unit.reshape(o, len(images), *unit.shape[1:])
    return unit, np.einsum("onld,onld->onl", unit, unit), std[: len(images)], side


def _block_distances(real, real_sq, ref, ref_sq, windows) -> np.ndarray:
    """Nearest distance of each real patch to each reference image's patches in its window [n, m, L]."""
    o, m, _, d = ref.shape
    n = real.shape[0]
    out = np.empty((n, m, len(windows)), dtype=np.float32)
    for loc, window in enumerate(windows):
        cand = ref[:, :, window].transpose(1, 0, 2, 3).reshape(m, -1, d)       # [m, o * |window|, d]
        cand_sq = ref_sq[:, :, window].transpose(1, 0, 2).reshape(m, -1)
        d2 = cand_sq[None] - 2.0 * (real[:, loc] @ cand.reshape(-1, d).T).reshape(n, m, -1)
        out[:, :, loc] = d2.min(axis=2) + real_sq[:, loc, None]
    return np.sqrt(np.maximum(out, 0.0))


def patch_pair_table(real_images: np.ndarray, reference: np.ndarray, *, size: int = PATCH_SIZE, patch: int = PATCH,
                     stride: int = PATCH_STRIDE, neighbours: int = PATCH_NEIGHBOURS, mirror: bool = True,
                     body_std: float = BODY_STD) -> tuple[np.ndarray, np.ndarray]:
    """(table [n_real, n_reference, L] float32, body [n_real, L] bool): each real patch's nearest distance to each
    reference image's patches (either orientation, within `neighbours` grid steps), and which real patches are
    body (not flat background). `patch_distances(real, reference[cols])` equals
    `pooled_distances(table[:, cols], body)`."""
    real_images, reference = np.asarray(real_images), np.asarray(reference)
    windows = None
    table = np.empty((len(real_images), len(reference), 0), dtype=np.float32)
    body_parts = []
    for r0 in range(0, len(real_images), BLOCK):
        real, _, std, side = _cut(real_images[r0:r0 + BLOCK], False, size, patch, stride)
        real_sq = np.einsum("nld,nld->nl", real[0], real[0])
        if windows is None:
            windows = _windows(side, neighbours)
            table = np.empty((len(real_images), len(reference), side * side), dtype=np.float32)
        body_parts.append(std > body_std)
        for c0 in range(0, len(reference), BLOCK):
            ref, ref_sq, _, _ = _cut(reference[c0:c0 + BLOCK], mirror, size, patch, stride)
            table[r0:r0 + BLOCK, c0:c0 + BLOCK] = _block_distances(real[0], real_sq, ref, ref_sq, windows)
    body = np.concatenate(body_parts)
    body[~body.any(axis=1)] = True            # an image without texture: use every patch
    return table, body


def pooled_distances(table: np.ndarray, body: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Mean over each real image's body patches of the nearest distance over the reference images that
    `allowed` [n_real, n_reference] (bool; all when None) lets it use [n_real]."""
    if allowed is None:
        best = table.min(axis=1)
    else:
        if not allowed.any(axis=1).all():
            raise ValueError("every real image needs at least one allowed reference image")
        best = np.where(allowed[:, :, None], table, np.inf).min(axis=1)
    return (best * body).sum(axis=1) / body.sum(axis=1)


#: weight of the typicality term in the patch score (`patch_typicality`) chosen on scan-disjoint re-splits of the v3
#: pool at 20 and 50 generated images per folder (`synthscope.benchmark.threshold_resplits --scores`), never on test;
#: an option (`MembershipOptions.patch_typicality`), not the default (see there)
TYPICALITY_WEIGHT = 0.2
#: at most this many real images serve as the typicality reference (a seeded sample beyond it)
TYPICALITY_REFERENCE = 1000


def patch_typicality(images: np.ndarray, groups, *, max_reference: int = TYPICALITY_REFERENCE, seed: int = 0,
                     size: int = PATCH_SIZE, patch: int = PATCH, stride: int = PATCH_STRIDE,
                     neighbours: int = PATCH_NEIGHBOURS, body_std: float = BODY_STD) -> np.ndarray:
    """Per real image, the mean over its body patches of the nearest patch distance to the *other scans'* real
    images (those with another label in `groups`, e.g. `near_duplicate_groups`, found without labels) [n]: how
    easily any patient's slices match the image's patterns. Low = typical (smooth, common anatomy), whatever the
    generator. With `MembershipOptions(patch_typicality=w)` the patch score adds w x this, so a typical image needs a
    closer generated match to count as copied. Computed in blocks (a running minimum), so memory is n x BLOCK x places, never n x n."""
    images, groups = np.asarray(images), np.asarray(groups)
    if len(images) != len(groups):
        raise ValueError("one group label per image")
    reference = np.arange(len(images))
    if len(reference) > max_reference:
        reference = np.sort(np.random.default_rng(seed).choice(len(images), max_reference, replace=False))
    best, body = None, None
    for r0 in range(0, len(images), BLOCK):
        real, _, std, side = _cut(images[r0:r0 + BLOCK], False, size, patch, stride)
        real_sq = np.einsum("nld,nld->nl", real[0], real[0])
        windows = _windows(side, neighbours)
        block_best = np.full((len(real[0]), side * side), np.inf, dtype=np.float32)
        for c0 in range(0, len(reference), BLOCK):
            cols = reference[c0:c0 + BLOCK]
            ref, ref_sq, _, _ = _cut(images[cols], True, size, patch, stride)
            d = _block_distances(real[0], real_sq, ref, ref_sq, windows)
            other = groups[r0:r0 + BLOCK, None] != groups[None, cols]
            np.minimum(block_best, np.where(other[:, :, None], d, np.inf).min(axis=1), out=block_best)
        mask = std > body_std
        mask[~mask.any(axis=1)] = True
        best = block_best if best is None else np.concatenate([best, block_best])
        body = mask if body is None else np.concatenate([body, mask])
    if not np.isfinite(np.where(body, best, 0.0)).all():
        raise ValueError("patch typicality needs real images from at least two scan groups")
    return (np.where(body, best, 0.0) * body).sum(axis=1) / body.sum(axis=1)
