"""Issue 19: choices that carry to data they were not tuned on -- the column choice, the label-free threshold,
the nested-CV expectation, mirror-invariant patch matching, scan groups and the image-score null control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import synthscope.membership as mb
from synthscope.membership.columns import choose_column
from synthscope.membership.expectation import expected_performance
from synthscope.membership.patches import patch_distances


def _folder(n=40, strength=3.0, seed=0):
    rng = np.random.default_rng(seed)
    used = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int)
    groups = np.arange(n) // 2                       # pairs of neighbouring slices
    return rng, used, groups


def test_the_default_column_stands_unless_dev_evidence_against_it_is_strong():
    rng, used, groups = _folder()
    default = used * 1.2 + rng.normal(size=40)         # dev AUC about 0.8
    scores = pd.DataFrame({"images:patches": default})
    for k in range(22):                                # 22 noisy challengers: one of them looks better by luck
        scores[f"space:{k}"] = used * 1.2 + rng.normal(size=40)
    kept = choose_column(scores, used, groups=groups)
    assert kept.column == "images:patches" and not kept.overturned and kept.n_challengers == 22
    assert "kept because dev evidence against it is not strong" in kept.message
    scores["space:strong"] = used * 10.0 + rng.normal(size=40)       # a column that separates perfectly
    scores["images:patches"] = rng.normal(size=40)                   # while the default is at chance
    overturned = choose_column(scores, used, groups=groups)
    assert overturned.column == "space:strong" and overturned.overturned


def test_two_means_cuts_a_bimodal_folder_at_its_gap_and_refuses_constant_scores():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(-1.0, 0.05, 30), rng.normal(-0.6, 0.05, 25)]
    fit = mb.fit_threshold(scores, None, label_free="two_means")
    assert fit.method == "two_means" and -0.9 < fit.threshold < -0.7
    assert (scores >= fit.threshold).sum() == 25
    with pytest.raises(ValueError, match="not all equal"):
        mb.fit_threshold(np.ones(10), None, label_free="two_means")
    with pytest.raises(ValueError, match="unknown label-free"):
        mb.fit_threshold(scores, None, label_free="nope")


def _procedure(train, scores, used, groups):
    column = choose_column(scores.iloc[train], used[train], groups=groups[train]).column
    return column, mb.fit_threshold(scores[column].to_numpy()[train], used[train]).threshold


def test_the_expectation_is_nested_cross_validation_and_says_when_it_does_not_beat_all_used():
    rng, used, groups = _folder()
    strong = pd.DataFrame({"images:patches": used * 5.0 + rng.normal(size=40), "other": rng.normal(size=40)})
    good = expected_performance(strong, used, groups, _procedure, n_boot=200)
    assert good.estimates["f1"].value > 0.9 and good.beats_all_used and good.chosen == {"images:patches": 25}
    assert "NOT" not in good.message() and "nested cross-validation" in good.message()
    noise = pd.DataFrame({"images:patches": rng.normal(size=40), "other": rng.normal(size=40)})
    bad = expected_performance(noise, used, groups, _procedure, n_boot=200)
    assert not bad.beats_all_used and "does NOT beat calling every image used" in bad.message()
    assert expected_performance(noise, used, np.zeros(40), _procedure) is None   # one group: no folds


def _ct_like(n, seed):
    """Textured 64 px stand-ins: smoothed noise inside a disc (patches need texture, not flat background)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 28) ** 2) < 26 ** 2
    images = [np.clip(128 + 60 * gaussian_filter(rng.normal(size=(64, 64)), 1.5) / 0.2 * disc, 0, 255) for _ in range(n)]
    return np.stack(images).astype(np.uint8)


def test_patch_matching_is_mirror_invariant_and_finds_mirrored_copies():
    real, other = _ct_like(6, 0), _ct_like(8, 1)
    generated = np.concatenate([other, real[:3]])
    options = dict(size=64, patch=8, stride=8)
    plain = patch_distances(real, generated, **options)
    mirrored = patch_distances(real, generated[:, :, ::-1], **options)
    np.testing.assert_allclose(mirrored, plain, rtol=0, atol=1e-5)        # float32 patch arithmetic
    assert plain[:3].max() < 1e-3 < plain[3:].min()                       # the copies, mirrored or not
    without = patch_distances(real, generated[:, :, ::-1], mirror=False, **options)
    assert without[:3].min() > 10 * plain[:3].max(), "without mirror matching the mirrored copies are missed"
    approx = patch_distances(real, generated, method="approx", **options)
    assert np.abs(approx - plain).max() < 0.05 and approx[:3].max() < 0.05 < approx[3:].min()
    with pytest.raises(ValueError, match="method"):
        patch_distances(real, generated, method="fast", **options)


def test_scan_groups_split_a_chain_that_would_merge_distinct_scans():
    """Six tight scans of 20 slices in a row, 0.6 radius apart: single linkage chains them into one group of
    120; the size guard splits the chain again at a tighter radius, into the scans."""
    from synthscope.membership.scores import near_duplicate_radius

    rng = np.random.default_rng(2)
    centres = np.zeros((6, 16))
    centres[:, 0] = np.arange(6) * 1.0
    features = np.concatenate([c + rng.normal(0, 0.01, size=(20, 16)) for c in centres])
    ratio = 1.0 / (0.6 * near_duplicate_radius(features, 1.0))       # the radius is 1 / 0.6 spacings
    unbounded = mb.near_duplicate_groups(features, ratio=ratio, max_size=10_000)
    bounded = mb.near_duplicate_groups(features, ratio=ratio, max_size=48)
    assert np.bincount(unbounded).max() == 120
    np.testing.assert_array_equal(bounded, np.repeat(np.arange(6), 20))


def test_the_null_control_runs_on_image_scores_with_held_out_real_images():
    images = _ct_like(24, 3)
    used = np.r_[np.ones(12), np.zeros(12)].astype(int)
    features = images.reshape(24, -1).astype(np.float32)
    result = mb.null_control(features, used, score="patches", n_repeats=3, groups=np.arange(24) // 2,
                             images=images)
    assert result.passed and "median AUC" in result.message
    with pytest.raises(ValueError, match="needs the images"):
        mb.null_control(features, used, score="patches", n_repeats=1)
