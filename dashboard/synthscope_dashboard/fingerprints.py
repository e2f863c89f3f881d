"""Each cluster's visual fingerprint (core `cluster_fingerprints`), on a sample of its images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_IMAGES_PER_CLUSTER = 64


@dataclass
class FingerprintImages:
    mean_residual: np.ndarray        # float [H, W]
    mean_log_spectrum: np.ndarray    # float [H, W], centred
    distinctive: str                 # the frequencies where this cluster differs most from the rest


def sample_members(labels: np.ndarray, cluster: int, limit: int = MAX_IMAGES_PER_CLUSTER, seed: int = 0) -> np.ndarray:
    members = np.flatnonzero(labels == cluster)
    if members.size > limit:
        members = np.sort(np.random.default_rng(seed).choice(members, limit, replace=False))
    return members


def cluster_fingerprint_images(images: np.ndarray, labels: np.ndarray) -> dict[int, FingerprintImages]:
    from synthscope.attribution import cluster_fingerprints as core_fingerprints

    return {int(c): FingerprintImages(np.asarray(f.mean_residual), np.asarray(f.mean_log_spectrum),
                                      describe(f.distinctive_frequencies))
            for c, f in core_fingerprints(images, labels).items()}


def describe(distinctive) -> str:
    """The core's table (fy, fx in cycles/pixel, radius, difference, z) as one line."""
    if distinctive is None or len(distinctive) == 0:
        return ""
    rows = [f"({row['fx']:+.3f}, {row['fy']:+.3f}) {row['difference']:+.2f}" for _, row in distinctive.head(3).iterrows()]
    return "most distinctive frequencies (fx, fy cycles/px) and log-power difference vs the others: " + "; ".join(rows)
