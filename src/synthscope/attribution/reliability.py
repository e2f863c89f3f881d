"""Reliability diagram of the 2025 subset classifier's confidence, from dev cross-validation.

Each out-of-fold dev prediction (`cross_validated_subsets`) has a confidence (the probability of the
predicted subset) and is right or wrong. Binned by confidence (equal-width bins on [0, 1]), a calibrated
classifier's accuracy in each bin equals the bin's mean confidence; the expected calibration error (ECE)
is the image-weighted mean gap. Both the temperature-calibrated confidence and the logistic regression's
own ("raw") are measured, so the page and the report can show what calibration changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_RELIABILITY_BINS = 15   # as `synthscope.metrics.expected_calibration_error`


@dataclass(frozen=True)
class ReliabilityCurve:
    """One confidence's reliability: per bin, and its ECE with a bootstrap CI."""

    name: str                  # "calibrated" | "raw"
    bins: pd.DataFrame         # one row per bin: low, high, images, mean_confidence, accuracy (nan when empty)
    ece: float
    ece_ci: tuple[float, float]


@dataclass(frozen=True)
class ReliabilityDiagram:
    """The calibrated and the raw confidence of dev cross-validation, side by side."""

    calibrated: ReliabilityCurve
    raw: ReliabilityCurve
    n_images: int
    n_splits: int
    accuracy: float            # out-of-fold accuracy (the same for both: calibration keeps every prediction)
    always_certain_ece: float  # trivial baseline: confidence 1 on every image (ECE = the error rate)

    @property
    def curves(self) -> tuple[ReliabilityCurve, ReliabilityCurve]:
        return self.raw, self.calibrated


def reliability_curve(confidence, correct, *, name: str = "confidence", n_bins: int = DEFAULT_RELIABILITY_BINS,
                      n_boot: int = 1000, seed: int = 0) -> ReliabilityCurve:
    """Per equal-width confidence bin: images, mean confidence, accuracy; and the ECE with its bootstrap
    CI (`synthscope.metrics.calibration_report`, same bins)."""
    from synthscope.metrics import _bins, calibration_report

    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    report = calibration_report(confidence, correct, n_bins=n_bins, n_boot=n_boot, seed=seed)
    codes = _bins(confidence, n_bins)
    images = np.bincount(codes, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(codes, weights=confidence, minlength=n_bins) / images
        accuracy = np.bincount(codes, weights=correct, minlength=n_bins) / images
    edges = np.arange(n_bins + 1) / n_bins
    bins = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "images": images.astype(np.int64),
                         "mean_confidence": mean_confidence, "accuracy": accuracy})
    ece = report.estimates["ece"]
    return ReliabilityCurve(name, bins, float(ece.value), (float(ece.ci_low), float(ece.ci_high)))


def reliability_diagram(cv, *, n_bins: int = DEFAULT_RELIABILITY_BINS, n_boot: int = 1000,
                        seed: int = 0) -> ReliabilityDiagram:
    """The reliability diagram of a `SubsetCrossValidation`: its out-of-fold confidences, calibrated
    (`confidence`) and raw (`confidence_uncalibrated`), against whether each prediction was right."""
    frame = cv.predictions
    if len(frame) == 0:
        raise ValueError("no out-of-fold predictions to measure calibration on")
    correct = (frame["subset"].astype(str).to_numpy() == frame["predicted"].astype(str).to_numpy())
    options = dict(n_bins=n_bins, n_boot=n_boot, seed=seed)
    return ReliabilityDiagram(
        calibrated=reliability_curve(frame["confidence"].to_numpy(), correct, name="calibrated", **options),
        raw=reliability_curve(frame["confidence_uncalibrated"].to_numpy(), correct, name="raw", **options),
        n_images=len(frame), n_splits=int(cv.n_splits), accuracy=float(correct.mean()),
        always_certain_ece=float(1.0 - correct.mean()))
