"""Copy detection on the images themselves: shift-registered distances to candidate generated images."""

from __future__ import annotations

import numpy as np

from synthscope.membership.neighbours import APPROX_THRESHOLD, downsampled_pixels, knn
from synthscope.membership.spaces import postprocess


#: scores that need the images themselves, not only features (run_membership computes them): the
#: shift-registered copy distance here, and the patch-level memorisation score of `patches.py`
IMAGE_SCORES = ("registered", "patches")


def _standardise_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(np.sqrt((x ** 2).mean(axis=(-2, -1), keepdims=True)), 1e-6)


def registered_distances(real_images: np.ndarray, gen_images: np.ndarray, candidates: np.ndarray, *,
                         max_shift: int = 1, border: int = 4, chunk: int = 128) -> np.ndarray:
    """RMS difference of standardised full-resolution images, minimised over integer shifts of up to
    `max_shift` pixels, for each real image and each of its candidate generated images [n_real, m].

    Adjacent CT slices of one scan are often closer in any downsampled feature space than a copy that
    moved by one pixel; after registration a copy differs only by its noise (about 0.03 here) while
    adjacent slices stay apart (>= 0.3), so this is the copy detector of the positive control.
    """
    real = _standardise_images(real_images)
    gen = _standardise_images(gen_images)
    candidates = np.asarray(candidates, dtype=int)
    if candidates.ndim != 2 or len(candidates) != len(real):
        raise ValueError("candidates must be [n_real, m] indices into the generated images")
    height, width = real.shape[1:]
    c = max_shift + border
    if min(height, width) <= 2 * c:
        raise ValueError("images too small for the requested shift and border")
    pairs_real = np.repeat(np.arange(len(real)), candidates.shape[1])
    pairs_gen = candidates.ravel()
    out = np.empty(len(pairs_real), dtype=np.float32)
    for start in range(0, len(pairs_real), chunk):
        sl = slice(start, start + chunk)
        a = real[pairs_real[sl], c:height - c, c:width - c]
        g = gen[pairs_gen[sl]]
        best = np.full(len(a), np.inf, dtype=np.float32)
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                b = g[:, c + dy:height - c + dy, c + dx:width - c + dx]
                best = np.minimum(best, ((a - b) ** 2).mean(axis=(1, 2)))
        out[sl] = np.sqrt(best)
    return out.reshape(candidates.shape)


def registered_copy_score(real_images: np.ndarray, gen_images, real_features=None,
                          gen_features=None, *, n_candidates: int = 5, max_shift: int = 1,
                          approx_threshold: int = APPROX_THRESHOLD) -> np.ndarray:
    """Minus the smallest shift-registered distance among each real image's `n_candidates` nearest
    generated images (searched in the given features, default 64 px standardised pixels). Higher = more
    likely that a (near) copy of the image is in the generated set.

    `gen_images` may be an `ImageRows` (decoded a chunk at a time): its search features are then computed and
    searched a chunk at a time, and only the candidates' images are registered."""
    from synthscope.membership.rows import FeatureRows, ImageRows, streamed_knn

    def standardised_pixels(images):
        return postprocess(downsampled_pixels(images), "image_zscore")

    rf = standardised_pixels(real_images) if real_features is None else real_features
    if gen_features is not None:
        gf = gen_features
    elif isinstance(gen_images, ImageRows):
        gf = gen_images.feature_rows(standardised_pixels, 64 * 64)
    else:
        gf = standardised_pixels(gen_images)
    if isinstance(gf, FeatureRows):
        _, idx = streamed_knn(rf, gf, n_candidates, approx_threshold=approx_threshold)
    else:
        _, idx = knn(rf, gf, n_candidates, approx_threshold=approx_threshold)
    # only the candidates' images are decoded and standardised (each image on its own, so the same values)
    wanted, local = np.unique(idx, return_inverse=True)
    candidates = gen_images[wanted] if isinstance(gen_images, ImageRows) else np.asarray(gen_images)[wanted]
    distances = registered_distances(real_images, candidates, local.reshape(idx.shape), max_shift=max_shift)
    return -distances.min(axis=1).astype(np.float64)
