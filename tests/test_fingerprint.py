"""The fingerprint extractor and its building blocks: residual, log power spectrum, azimuthal average."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from float_tolerance import float32_sum_rtol, largest_ring

from synthscope.features import get_extractor
from synthscope.features.fingerprint import (
    FingerprintExtractor,
    _median3x3,
    azimuthal_average,
    log_power_spectrum,
    noise_residual,
)


def _ct_like(n: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """Smooth blobs plus noise: anatomy-like structure the denoiser keeps and noise it removes."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 6, 6))
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-9) * 200 + 20
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fast_median_equals_scipy_median_filter_including_edges(dtype):
    images = np.random.default_rng(1).integers(0, 256, size=(3, 17, 23)).astype(dtype)
    expected = ndimage.median_filter(images, size=(1, 3, 3), mode="reflect")
    np.testing.assert_array_equal(_median3x3(images), expected)


def test_residual_is_zero_on_flat_images_and_isolates_an_impulse():
    flat = np.full((2, 32, 32), 90, dtype=np.uint8)
    assert np.abs(noise_residual(flat)).max() == 0
    spiky = flat.copy()
    spiky[0, 10, 12] = 200
    residual = noise_residual(spiky)
    assert residual.dtype == np.float32 and residual.shape == (2, 32, 32)
    assert residual[0, 10, 12] == pytest.approx(110)
    assert np.count_nonzero(residual) == 1      # the median ignores the single outlier around it
    gaussian = noise_residual(spiky, denoiser="gaussian")
    assert gaussian[0, 10, 12] > 50 and np.count_nonzero(gaussian[0]) > 1
    with pytest.raises(ValueError, match="denoiser"):
        noise_residual(flat, denoiser="bm3d")


def test_log_power_spectrum_peaks_at_the_cosine_frequency():
    size = 64
    x = np.arange(size)
    cosine = np.cos(2 * np.pi * 8 * x / size)[None, None, :] * np.ones((1, size, 1))
    spectrum = log_power_spectrum(cosine)
    assert spectrum.shape == (1, size, size)
    peak = np.unravel_index(np.argmax(spectrum[0]), (size, size))
    assert peak in {(size // 2, size // 2 + 8), (size // 2, size // 2 - 8)}   # centred: DC at (32, 32)


def test_azimuthal_average_finds_a_ring():
    size = 64
    ys, xs = np.mgrid[:size, :size] - size // 2
    ring = (np.abs(np.hypot(ys, xs) - 20) < 0.5).astype(np.float32)
    profile = azimuthal_average(ring[None], n_bins=32)
    assert profile.shape == (1, 32)
    assert int(np.argmax(profile[0])) == 20    # 32 bins over radius 0..32: one bin per pixel
    flat = azimuthal_average(np.full((2, size, size), 3.0))
    # each output is a float32 sum over one ring's pixels: n * eps whatever order the BLAS adds them in
    # (1e-6 failed on another x86-64 CPU, which gave 2.5e-6)
    np.testing.assert_allclose(flat, 3.0, rtol=float32_sum_rtol(largest_ring(size, 32)))


def test_extractor_output_layout_and_determinism():
    extractor = get_extractor("fingerprint")
    assert isinstance(extractor, FingerprintExtractor)
    images = _ct_like(6, size=256)
    features = extractor.transform(images)
    assert features.dtype == np.float32 and features.shape == (6, extractor.n_features)
    assert np.isfinite(features).all()
    blocks = extractor.block_slices()
    assert list(blocks) == ["spectrum2d", "radial", "peaks", "autocorr", "intensity"]
    assert blocks["intensity"].stop == extractor.n_features
    np.testing.assert_array_equal(features, extractor.transform(images))
    threaded = FingerprintExtractor(workers=2).transform(np.concatenate([images] * 6))
    # threads change nothing but the batch a BLAS call sees; its summation order may differ, so the
    # bound is the float32 one of the largest sum behind a feature (a radial ring) times the magnitude
    bound = float32_sum_rtol(largest_ring(256, extractor.radial_bins)) * float(np.abs(features).max())
    np.testing.assert_allclose(threaded[:6], features, rtol=0, atol=bound)
    assert extractor.config()["denoiser"] == "median"
    assert FingerprintExtractor(radial_bins=32).config_key() != extractor.config_key()


def test_intensity_statistics_match_their_definitions():
    images = _ct_like(4, seed=3, size=64)
    extractor = FingerprintExtractor(spectrum_bins=16, radial_bins=16, peak_period=8)
    stats = extractor.transform(images)[:, extractor.block_slices()["intensity"]]
    flat = images.reshape(4, -1).astype(float)
    np.testing.assert_allclose(stats[:, 0], flat.mean(axis=1) / 255, rtol=1e-5)
    np.testing.assert_allclose(stats[:, 1], flat.std(axis=1) / 255, rtol=1e-4)
    # the histogram percentile (smallest level whose CDF reaches q) equals numpy's "inverted_cdf"
    np.testing.assert_allclose(stats[:, 5], np.percentile(flat, 50, axis=1, method="inverted_cdf") / 255, atol=1e-6)
    # float input takes the sorting path and agrees on everything but interpolated percentiles
    as_float = extractor.transform(images.astype(np.float32))[:, extractor.block_slices()["intensity"]]
    np.testing.assert_allclose(as_float[:, [0, 1, 9, 10, 11, 12, 13]], stats[:, [0, 1, 9, 10, 11, 12, 13]], rtol=1e-4)


def test_an_upsampling_checkerboard_shows_in_the_peaks_block():
    images = _ct_like(4, seed=5, size=256)
    checker = (np.indices((256, 256)).sum(axis=0) % 2) * 6.0     # period-2 pattern: energy at (N/2, N/2)
    marked = np.clip(images + checker, 0, 255).astype(np.uint8)
    extractor = FingerprintExtractor()
    peaks = extractor.block_slices()["peaks"]
    period = extractor.peak_period
    nyquist = (period // 2) * (period // 2 + 1) + period // 2   # row N/2, column N/2 in the peaks grid
    clean = extractor.transform(images)[:, peaks][:, nyquist]
    checked = extractor.transform(marked)[:, peaks][:, nyquist]
    assert (checked - clean).min() > 3.0      # log power: orders of magnitude more energy there


def test_bad_input_gives_one_clear_error():
    extractor = FingerprintExtractor()
    with pytest.raises(ValueError, match=r"\[n, H, W\]"):
        extractor.transform(np.zeros((2, 3, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="divisible"):
        extractor.transform(np.zeros((1, 100, 100), dtype=np.uint8))
    assert extractor.transform(np.zeros((0, 256, 256), dtype=np.uint8)).shape == (0, extractor.n_features)
    with pytest.raises(ValueError):
        FingerprintExtractor(denoiser="nope")


def test_real_generators_differ_in_their_fingerprint(shared_dir):
    """On real bench images the dcgan's and the vae's fingerprints are far apart relative to their spread."""
    from PIL import Image

    root = shared_dir / "bench" / "v1" / "subtask2" / "dev"
    load = lambda model: np.stack([np.asarray(Image.open(p).convert("L"))      # noqa: E731
                                   for p in sorted((root / model).glob("*.png"))[:20]])
    extractor = FingerprintExtractor()
    radial = extractor.block_slices()["radial"]
    dcgan, vae = extractor.transform(load("model_1"))[:, radial], extractor.transform(load("model_3"))[:, radial]
    gap = np.abs(dcgan.mean(axis=0) - vae.mean(axis=0)).max()
    spread = max(dcgan.std(axis=0).max(), vae.std(axis=0).max())
    assert gap > 2 * spread
