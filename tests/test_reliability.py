"""Issue 20: the reliability diagram's numbers (core, pure) and the "none of these" flag at another level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthscope.attribution import ReliabilityDiagram, reliability_curve, reliability_diagram
from synthscope.metrics import expected_calibration_error


def test_reliability_curve_by_hand():
    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55, 1.0])
    correct = np.array([1, 1, 1, 0, 1, 0, 1])
    curve = reliability_curve(confidence, correct, name="raw", n_bins=10, n_boot=200)
    bins = curve.bins
    assert len(bins) == 10 and bins["low"].iloc[0] == 0.0 and bins["high"].iloc[-1] == 1.0
    assert bins["images"].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 5]       # 1.0 falls in the last bin
    assert bins["accuracy"].iloc[9] == pytest.approx(4 / 5) and bins["accuracy"].iloc[5] == pytest.approx(0.5)
    assert bins["mean_confidence"].iloc[9] == pytest.approx((4 * 0.95 + 1.0) / 5)
    assert np.isnan(bins["accuracy"].iloc[0]) and np.isnan(bins["mean_confidence"].iloc[0])
    # ECE: bin 9 gap |0.8 - 0.96| on 5 images, bin 5 gap |0.5 - 0.55| on 2
    assert curve.ece == pytest.approx((5 * 0.16 + 2 * 0.05) / 7)
    assert curve.ece == pytest.approx(expected_calibration_error(confidence, correct, n_bins=10))
    assert curve.ece_ci[0] <= curve.ece <= curve.ece_ci[1]


def test_reliability_diagram_of_a_cross_validation_keeps_raw_and_calibrated_apart():
    from synthscope.attribution import SubsetCrossValidation

    rng = np.random.default_rng(0)
    n = 300
    truth = rng.choice(["a", "b", "c"], size=n)
    right = rng.random(n) < 0.7
    predicted = np.where(right, truth, np.where(truth == "a", "b", "a"))
    calibrated = np.full(n, 0.7)                    # calibrated on average: 70 % right at 0.7
    raw = np.full(n, 0.99)                          # overconfident
    frame = pd.DataFrame({"subset": truth, "predicted": predicted, "confidence": calibrated, "fold": 0,
                          "confidence_uncalibrated": raw}, index=pd.Index([f"i{i}" for i in range(n)], name="image_id"))
    cv = SubsetCrossValidation(frame, ["a", "b", "c"], 5, report=None)
    diagram = reliability_diagram(cv, n_boot=200)
    assert isinstance(diagram, ReliabilityDiagram) and diagram.n_images == n and diagram.n_splits == 5
    assert diagram.accuracy == pytest.approx(right.mean())
    assert diagram.always_certain_ece == pytest.approx(1 - right.mean())
    assert diagram.raw.ece == pytest.approx(0.99 - right.mean())
    assert diagram.calibrated.ece == pytest.approx(abs(0.7 - right.mean()))
    assert diagram.calibrated.ece < diagram.raw.ece
    assert diagram.raw.bins["images"].sum() == diagram.calibrated.bins["images"].sum() == n
    with pytest.raises(ValueError, match="no out-of-fold"):
        reliability_diagram(SubsetCrossValidation(frame.iloc[:0], ["a"], 2, report=None))


def test_none_of_these_at_another_level_is_the_p_value_cut():
    from synthscope.attribution import AttributionOptions, AttributionRun

    index = pd.Index(["x", "y", "z"], name="image_id")
    p = pd.Series([0.004, 0.05, 0.5], index=index)
    run = AttributionRun("subset", pd.Series(["a", "b", "a"], index=index), AttributionOptions(), "supervised subsets",
                         ["none of these: 1 of 3 images ..."], None, p_values=p, novelty=1 - p,
                         none_of_these=p < 0.01)
    assert run.none_of_these_at(0.01).tolist() == run.none_of_these.tolist() == [True, False, False]
    assert run.none_of_these_at(0.05).tolist() == [True, False, False]          # strictly below the level
    assert run.none_of_these_at(0.051).tolist() == [True, True, False]
    assert run.describe(0.051) == run.description                              # no scorer: the text stays
    with pytest.raises(ValueError, match="novelty_alpha"):
        run.none_of_these_at(1.0)
    label_free = AttributionRun("attribution", pd.Series([0, 1, 0], index=index), AttributionOptions(k=2), "label-free",
                                [], None)
    assert label_free.none_of_these_at(0.1) is None
