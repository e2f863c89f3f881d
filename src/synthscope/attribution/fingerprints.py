"""Visual fingerprints: per cluster, the mean noise residual, the mean log power spectrum and the
frequencies where the cluster differs most from the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthscope.features.fingerprint import log_power_spectrum, noise_residual


@dataclass
class ClusterFingerprint:
    cluster: int
    n_images: int
    mean_residual: np.ndarray            # float32 [H, W], grey levels
    mean_log_spectrum: np.ndarray        # float32 [H, W], centred (fftshift)
    distinctive_frequencies: pd.DataFrame  # fy, fx (cycles/pixel), radius, difference, z


def cluster_fingerprints(images: np.ndarray, labels, *, top: int = 10, batch_size: int = 256,
                         denoiser: str = "median") -> dict[int, ClusterFingerprint]:
    """Per cluster: mean residual, mean log power spectrum, and the frequencies where it differs most.

    A frequency's difference is the cluster's mean log power minus the other images' mean, divided by
    the pooled per-image standard deviation there (a z-like effect size); the `top` largest |z| in the
    half plane (the spectrum is point-symmetric) are listed.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"need images [n, H, W] and n labels; got {images.shape} and {labels.shape}")
    clusters = np.unique(labels)
    _, height, width = images.shape
    sum_res = {c: np.zeros((height, width)) for c in clusters}
    sum_spec = {c: np.zeros((height, width)) for c in clusters}
    sum_sq = {c: np.zeros((height, width)) for c in clusters}
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        residual = noise_residual(images[chunk], denoiser=denoiser)
        spectrum = log_power_spectrum(residual)
        for c in clusters:
            mask = labels[chunk] == c
            if mask.any():
                sum_res[c] += residual[mask].sum(axis=0)
                sum_spec[c] += spectrum[mask].sum(axis=0)
                sum_sq[c] += (spectrum[mask].astype(np.float64) ** 2).sum(axis=0)
    counts = {c: int((labels == c).sum()) for c in clusters}
    total_spec, total_sq, n_total = sum(sum_spec.values()), sum(sum_sq.values()), len(labels)
    pooled_var = np.maximum(total_sq / n_total - (total_spec / n_total) ** 2, 1e-12)
    iy, ix = np.arange(height) - height // 2, np.arange(width) - width // 2
    fy, fx = iy / height, ix / width
    # half plane: a real image's spectrum is point-symmetric, so list each frequency pair once
    # (the Nyquist row/column of an even size is its own mirror and stays)
    my, mx = (-iy + height // 2) % height - height // 2, (-ix + width // 2) % width - width // 2
    half = (iy[:, None] > my[:, None]) | ((iy[:, None] == my[:, None]) & (ix[None, :] >= mx[None, :]))
    result = {}
    for c in clusters:
        mean_spec = sum_spec[c] / counts[c]
        others = n_total - counts[c]
        other_mean = (total_spec - sum_spec[c]) / others if others else mean_spec
        difference = mean_spec - other_mean
        z = np.where(half, difference / np.sqrt(pooled_var), 0.0)
        order = np.argsort(-np.abs(z), axis=None)[:top]
        ys, xs = np.unravel_index(order, z.shape)
        table = pd.DataFrame({"fy": fy[ys], "fx": fx[xs], "radius": np.hypot(fy[ys], fx[xs]),
                              "difference": difference[ys, xs], "z": z[ys, xs]})
        key = int(c) if np.issubdtype(type(c), np.integer) else c
        result[key] = ClusterFingerprint(key, counts[c], (sum_res[c] / counts[c]).astype(np.float32),
                                         mean_spec.astype(np.float32), table)
    return result
