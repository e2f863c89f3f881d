"""Tolerances for float32 results, derived from the dtype instead of from one CPU.

A float32 sum of n terms computed in any order (pairwise, blocked, SIMD lanes, FMA: whatever the
BLAS or numpy build of a given CPU does) is within gamma_n * sum|x_i| of the exact sum, where
gamma_n = n*u / (1 - n*u) and u = eps/2 (Higham, *Accuracy and Stability of Numerical Algorithms*,
section 3.1). `n * eps` (two gamma_n) is therefore a bound that no summation order can break, yet
it stays tight enough to catch a wrong normalisation or a missing term.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)   # 1.19e-7


def float32_sum_rtol(n_terms: int) -> float:
    """Relative tolerance of a float32 sum (or mean, or dot product) of n same-sign terms."""
    return max(int(n_terms), 1) * EPS32


def largest_ring(size: int, n_bins: int) -> int:
    """Pixels in the largest ring of an azimuthal average over radius 0..size/2 in n_bins rings
    (the number of terms one output of the average sums)."""
    ys, xs = np.mgrid[:size, :size] - size / 2
    radius = np.hypot(ys, xs).ravel()
    inside = radius < size / 2
    ring = np.minimum((radius[inside] / (size / 2) * n_bins).astype(int), n_bins - 1)
    return int(np.bincount(ring, minlength=n_bins).max()) + 8   # + 8: the grid's centre may sit half a pixel off
