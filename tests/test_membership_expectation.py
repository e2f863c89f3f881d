"""Issue 19: the expected-performance interval stays honest when dev is perfectly (or nearly) separated, and
covers the result on new images from other scans (docs/design.md, "Fifth round")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthscope.membership as mb
from synthscope.metrics import _rates_from_counts
from synthscope.membership.expectation import (
    Expectation, _stratified_group_bootstrap, expected_performance, predictive_interval,
)


def _procedure(train, scores, used, groups):
    return "images:patches", mb.fit_threshold(scores["images:patches"].to_numpy()[train], used[train]).threshold


def _perfect_dev(seed=0):
    rng = np.random.default_rng(seed)
    used = np.r_[np.ones(20), np.zeros(20)].astype(int)
    groups = np.arange(40) // 2                       # pairs of neighbouring slices
    return pd.DataFrame({"images:patches": used * 10.0 + rng.normal(size=40)}), used, groups


def test_a_perfectly_separated_dev_gives_an_interval_with_room_below_one():
    scores, used, groups = _perfect_dev()
    before = expected_performance(scores, used, groups, _procedure, interval="bootstrap", n_boot=300)
    assert before.out_of_fold["f1"] == 1.0 and before.estimates["f1"].ci_low == 1.0   # the old zero width
    after = expected_performance(scores, used, groups, _procedure, n_boot=300)
    assert isinstance(after, Expectation) and after.interval == "predictive" and after.out_of_fold["kappa"] == 1.0
    for name in ("f1", "kappa", "accuracy"):
        e = after.estimates[name]
        assert e.ci_low < e.ci_high and e.ci_low < 1.0 and e.ci_low <= e.value <= e.ci_high
    # 40 dev images with no error: a scored folder at F1 0.95 or kappa 0.90 is well within what they allow
    assert after.estimates["f1"].ci_low < 0.95 and after.estimates["kappa"].ci_low < 0.90
    assert after.beats_all_used and "predictive interval for 40 new images" in after.message()


def test_the_interval_is_for_the_scored_folder_when_its_calls_are_given():
    scores, used, groups = _perfect_dev()
    calls = np.r_[np.ones(45), np.zeros(15)]
    e = expected_performance(scores, used, groups, _procedure, n_boot=300, scored_calls=calls)
    assert e.n_scored == 60 and e.estimates["f1"].n == 60 and "for the 60 scored images" in e.message()
    # a perfect procedure that called 45 of 60 used sees about 75 % used there: all-used F1 about 2q / (1 + q)
    assert e.all_used_f1 == pytest.approx(2 * 0.75 / 1.75, abs=0.03)
    with pytest.raises(ValueError, match="unknown interval"):
        expected_performance(scores, used, groups, _procedure, interval="nope")


def _calls(rng, groups, miss, false_positive, spread):
    """One call per image of groups of neighbouring slices, each group with its own error rate around the
    class's (beta-distributed with concentration `spread`: slices of one scan err together)."""
    sizes = np.bincount(groups)
    used_group = np.arange(len(sizes)) % 2 == 0
    rate = np.where(used_group, rng.beta(miss * spread, (1 - miss) * spread, len(sizes)),
                    rng.beta(false_positive * spread, (1 - false_positive) * spread, len(sizes)))
    y = used_group[groups].astype(int)
    wrong = rng.random(len(groups)) < rate[groups]
    return y, np.where(wrong, 1 - y, y)


def test_the_predictive_interval_covers_new_folders_where_the_bootstrap_did_not():
    """Coverage on synthetic folders from one population of scan groups: dev of 40 images in 13 groups (its
    out-of-fold calls), a new folder of 60 images in 20 other groups, rare errors (3 %) that cluster by scan."""
    rng = np.random.default_rng(7)
    dev_groups, new_groups = np.arange(40) // 3, np.arange(60) // 3
    inside = {"bootstrap": 0, "predictive": 0}
    zero_width, trials = 0, 60
    for _ in range(trials):
        y, p = _calls(rng, dev_groups, 0.03, 0.03, 20.0)
        ny, npred = _calls(rng, new_groups, 0.03, 0.03, 20.0)
        truth = {name: float(v) for name, v in _rates_from_counts(
            *(((ny == a) & (npred == b)).sum() for a, b in ((1, 1), (0, 1), (1, 0), (0, 0)))).items()}
        old = _stratified_group_bootstrap(y, p, dev_groups, n_boot=300, seed=0, alpha=0.05)
        new, _ = predictive_interval(y, p, dev_groups, n_repeats=1, scored_calls=npred, n_draws=300)
        zero_width += old["f1"].ci_low == old["f1"].ci_high
        for name, e in (("bootstrap", old), ("predictive", new)):
            inside[name] += all(e[m].ci_low <= truth[m] <= e[m].ci_high for m in ("f1", "kappa"))
    assert zero_width > trials / 4                               # the old interval often had no width at all
    assert inside["predictive"] >= 0.85 * trials > inside["bootstrap"]
