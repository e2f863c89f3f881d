"""Typicality calibration of the patch score: how close an image's patches are to the generated set, beyond
how close they are to *any* real CT slices of other scans.

Why: the raw patch distance to a set of images is smaller for an image whose local patterns are common in
CT slices at all. With held-out real images in place of the generated set (the null control), the raw
score still separated v3's used from not-used test images (median AUC 0.76; v3s 0.93), with real images
from outside the benchmark as the stand-in set too (0.71 and 0.75), and with true scans instead of the
label-free groups (0.77 and 0.97): v3's used scans are more typical than its not-used scans (and v1's
slightly less), whatever the generator. A membership score must not reward that.

The calibrated score: `d_gen` = the patch distance to the generated images (`patch_distances`), `d_real` =
the same statistic against the folder's *other* real images outside the image's own scan group (groups
found without labels); a robust line `d_gen ~ a + b * d_real` fit over the folder's images (no labels)
gives the distance typicality predicts, and the score is how much closer the generated set is than that:
`a + b * d_real - d_gen`. The slope is fit, not fixed at 1, because a minimum over a set shrinks with the
set's size: the generated set (hundreds) and the other real images (tens) differ, and the plain
difference `d_real - d_gen` over-corrects (null AUC 0.43 on v3 and 0.35 on v3s in an earlier try).

`patch_pair_table` holds each real patch's nearest distance to every reference image (both orientations,
within the location window): the minimum over any subset of reference images is then a cheap reduction,
which is what makes the null control's repeated splits fast (one table, reused by every split).
"""

from __future__ import annotations

import numpy as np

from synthscope.membership.patches import (
    BODY_STD, PATCH, PATCH_NEIGHBOURS, PATCH_SIZE, PATCH_STRIDE, _grid_patches, _oriented, _windows, patch_distances,
)

#: images per block when building pair tables (64 x 64 x 225 patch places x 4 bytes = 3.7 MB per block)
BLOCK = 64
#: real images at most in the typicality reference (a seeded sample above): 4,000 real images then cost
#: 4,000 x 256 image pairs, a tenth of their 10,000 generated images' search
MAX_REFERENCE = 256


def scan_groups(images: np.ndarray) -> np.ndarray:
    """Label-free scan groups of uint8 images (near-duplicate groups of their 64 px grey levels), as the
    null control's splits use them."""
    from synthscope.membership.neighbours import downsampled_pixels
    from synthscope.membership.scores import near_duplicate_groups

    return near_duplicate_groups(downsampled_pixels(np.asarray(images), 64))


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


def typicality_fit(d_gen: np.ndarray, d_real: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of a robust (Huber) line d_gen ~ a + b * d_real over the folder's images, no labels:
    the patch distance to the generated set that the image's typicality alone predicts."""
    from sklearn.linear_model import HuberRegressor

    d_gen, d_real = np.asarray(d_gen, dtype=np.float64), np.asarray(d_real, dtype=np.float64)
    if len(d_gen) < 3 or np.ptp(d_real) == 0:
        return float(np.median(d_gen - d_real)), 1.0
    scale = d_real.std()
    model = HuberRegressor(alpha=0.0, max_iter=500).fit(((d_real - d_real.mean()) / scale)[:, None], d_gen)
    slope = float(model.coef_[0] / scale)
    return float(model.intercept_ - slope * d_real.mean()), slope


def calibrated_from_distances(d_gen: np.ndarray, d_real: np.ndarray) -> np.ndarray:
    """The calibrated score from the two distances: higher = the generated set is closer than typicality predicts."""
    intercept, slope = typicality_fit(d_gen, d_real)
    return intercept + slope * np.asarray(d_real, dtype=np.float64) - np.asarray(d_gen, dtype=np.float64)


def other_scan_distances(real_images: np.ndarray, groups=None, *, max_reference: int = MAX_REFERENCE, seed: int = 0,
                         **options) -> np.ndarray:
    """Patch distance of each real image to the other real images outside its own scan group [n] (the
    typicality term). `groups`: one label per image (default: `scan_groups`). Above `max_reference` real images
    a seeded sample of that many is the reference (the cost grows with n x reference, not n^2)."""
    real_images = np.asarray(real_images)
    groups = scan_groups(real_images) if groups is None else np.asarray(groups)
    if len(groups) != len(real_images):
        raise ValueError("groups must have one label per real image")
    if len(np.unique(groups)) < 2:
        raise ValueError("the typicality term needs real images of at least two scan groups")
    n = len(real_images)
    ref = np.arange(n) if n <= max_reference else np.sort(np.random.default_rng(seed).choice(n, max_reference,
                                                                                            replace=False))
    out = np.empty(n)
    for r0 in range(0, n, BLOCK):     # a block of rows at a time: memory n_block x n_reference x L
        rows = np.arange(r0, min(r0 + BLOCK, n))
        table, body = patch_pair_table(real_images[rows], real_images[ref], **options)
        allowed = groups[rows, None] != groups[None, ref]
        lonely = ~allowed.any(axis=1)        # every sampled reference image is of its own scan: any other one
        allowed[lonely] = rows[lonely, None] != ref[None, :]
        out[rows] = pooled_distances(table, body, allowed)
    return out


def calibrated_patch_score(real_images: np.ndarray, gen_images, groups=None, **options) -> np.ndarray:
    """The patch score calibrated for typicality (module docstring): how much closer the image's patches are
    to the generated set than its patches' distance to other scans' real images predicts. Higher = more
    likely used. `groups`: label-free scan groups of the real images (default: `scan_groups`)."""
    geometry = {k: v for k, v in options.items() if k in ("size", "patch", "stride", "neighbours", "mirror", "body_std")}
    d_gen = patch_distances(real_images, gen_images, **options)
    return calibrated_from_distances(d_gen, other_scan_distances(real_images, groups, **geometry))
