"""Weight-free extractors used by the seed's teams: uniform LBP histograms and downsampled pixels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage
from skimage.feature import local_binary_pattern
from skimage.filters import threshold_multiotsu, threshold_otsu
from skimage.transform import resize

from synthscope.features.base import IMAGE_SIDE, Extractor, check_bounds, register_extractor


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected grayscale images [n, H, W], got shape {images.shape}")
    return images


MAX_LBP_POINTS = 64
MAX_LBP_GRID = 16


class LBPExtractor(Extractor):
    """Uniform local-binary-pattern histograms at several radii (Ojala et al. 2002), via scikit-image.

    For each (points, radius) pair the `points + 2` uniform codes are histogrammed over each cell of a
    `grid x grid` partition of the image and normalised to sum to one; all histograms are concatenated.
    """

    name = "lbp"
    default_batch_size = 64

    def __init__(self, scales: Sequence[Sequence[int]] = ((8, 1), (16, 2), (24, 3)), grid: int = 1):
        self.scales = tuple((int(p), float(r)) for p, r in scales)
        if not self.scales or any(p < 4 or r <= 0 for p, r in self.scales):
            raise ValueError(f"scales must be (points >= 4, radius > 0) pairs, got {scales!r}")
        for points, radius in self.scales:
            check_bounds("lbp", "scales (points)", points, 4, MAX_LBP_POINTS)
            check_bounds("lbp", "scales (radius)", radius, 0, IMAGE_SIDE // 2, "the circle must fit in the image")
        check_bounds("lbp", "grid", grid, 1, MAX_LBP_GRID,
                     f"cells of at least {IMAGE_SIDE // MAX_LBP_GRID}x{IMAGE_SIDE // MAX_LBP_GRID} pixels, enough codes for a histogram")
        self.grid = int(grid)

    def config(self) -> dict[str, Any]:
        return {"scales": [list(s) for s in self.scales], "grid": self.grid, "method": "uniform"}

    @property
    def dim(self) -> int:
        return sum(p + 2 for p, _ in self.scales) * self.grid ** 2

    def _one(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape
        rows = np.linspace(0, height, self.grid + 1).astype(int)
        cols = np.linspace(0, width, self.grid + 1).astype(int)
        parts = []
        for points, radius in self.scales:
            codes = local_binary_pattern(image, points, radius, method="uniform").astype(np.int64)
            n_bins = points + 2
            for i in range(self.grid):
                for j in range(self.grid):
                    cell = codes[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
                    hist = np.bincount(cell.ravel(), minlength=n_bins).astype(np.float32)
                    parts.append(hist / max(hist.sum(), 1.0))
        return np.concatenate(parts)

    def transform(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images)
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._one(image) for image in images]).astype(np.float32)


def _tissue_threshold(smooth: np.ndarray) -> float:
    """Grey level between air and soft tissue: the lower of three Otsu classes (air, tissue, bone)."""
    try:
        return float(threshold_multiotsu(smooth, classes=3)[0])
    except ValueError:  # too few grey levels for three classes
        return float(threshold_otsu(smooth)) if smooth.max() > smooth.min() else float(smooth.min())


def _body_and_threshold(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    # Smoothing first: CT speckle would otherwise put noisy air above the threshold and tissue below it.
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), 2.0)
    if smooth.max() == smooth.min():
        return np.ones(smooth.shape, dtype=bool), smooth, float(smooth.min())
    threshold = _tissue_threshold(smooth)
    tissue = ndimage.binary_closing(smooth > threshold, structure=np.ones((5, 5)), iterations=2)
    labels, n = ndimage.label(tissue)
    if n == 0:
        return np.ones(smooth.shape, dtype=bool), smooth, threshold
    sizes = np.bincount(labels.ravel())[1:]
    return ndimage.binary_fill_holes(labels == (1 + int(np.argmax(sizes)))), smooth, threshold


def body_mask(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the patient's body in an axial CT slice (outside air and the couch removed).

    Tissue is what lies above the air/tissue threshold of the smoothed slice; closing bridges gaps,
    the largest component is the body, and filling its holes brings the lungs back in.
    """
    return _body_and_threshold(image)[0]


def lung_mask(image: np.ndarray, min_fraction: float = 0.01) -> np.ndarray:
    """Boolean mask of the dark, air-filled regions inside the body (the lungs in a lung-window slice).

    When nothing plausible is found (a slice below the lungs, or a window in which the lungs are not
    dark) the body mask is returned, so a masked image is never empty by accident.
    """
    body, smooth, threshold = _body_and_threshold(image)
    lungs = ndimage.binary_opening(body & (smooth <= threshold), iterations=2)
    labels, n = ndimage.label(lungs)
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        lungs = np.isin(labels, np.flatnonzero(sizes >= 0.002 * lungs.size) + 1)
    return lungs if lungs.mean() >= min_fraction else body


class PixelsExtractor(Extractor):
    """Downsampled intensities in 0..1 (area average), flattened; optionally zero outside the body or lungs."""

    name = "pixels"
    default_batch_size = 256

    def __init__(self, size: int = 64, mask: str = "none"):
        check_bounds("pixels", "size", size, 1, IMAGE_SIDE, f"the images are {IMAGE_SIDE}x{IMAGE_SIDE}; more only upsamples")
        if mask not in ("none", "body", "lung"):
            raise ValueError(f"mask must be 'none', 'body' or 'lung', got {mask!r}")
        self.size = int(size)
        self.mask = mask

    def config(self) -> dict[str, Any]:
        return {"size": self.size, "mask": self.mask}

    def _downsample(self, images: np.ndarray) -> np.ndarray:
        n, height, width = images.shape
        if height % self.size == 0 and width % self.size == 0:
            # exact area average by block means: fast and identical to anti-aliased resize for integer factors
            fy, fx = height // self.size, width // self.size
            return images.reshape(n, self.size, fy, self.size, fx).mean(axis=(2, 4), dtype=np.float32)
        return np.stack([resize(image, (self.size, self.size), order=1, anti_aliasing=True,
                                preserve_range=True) for image in images]).astype(np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images)
        scale = 255.0 if images.dtype == np.uint8 else max(float(images.max(initial=0)), 1.0)
        data = images.astype(np.float32) / scale
        if self.mask != "none":
            masker = lung_mask if self.mask == "lung" else body_mask
            data = data * np.stack([masker(image) for image in images]).astype(np.float32)
        if len(data) == 0:
            return np.zeros((0, self.size * self.size), dtype=np.float32)
        return self._downsample(data).reshape(len(data), -1)


@register_extractor("lbp", "uniform LBP histograms (scikit-image) at radii 1, 2, 3; no weights", options=LBPExtractor)
def _make_lbp(**options: Any) -> Extractor:
    return LBPExtractor(**options)


@register_extractor("pixels", "downsampled intensities (64 px by default), optionally masked to the body or the lungs; no weights",
                    options=PixelsExtractor)
def _make_pixels(**options: Any) -> Extractor:
    return PixelsExtractor(**options)
