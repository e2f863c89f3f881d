"""Issue 19 item 6: a clean null control. The rank test that treats a scan, not a slice, as the unit of evidence,
and the one patch table the patch null's splits share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

import synthscope.membership as mb
from synthscope.membership.patch_tables import TYPICALITY_WEIGHT, patch_pair_table, pooled_distances


def _scans(iqoth_dir, n_scans: int = 16, sizes=(3, 6)) -> tuple[np.ndarray, np.ndarray]:
    """Slices of `n_scans` real CT scans of 3 to 6 slices (the pool's own scan list, read by the test only)."""
    groups = pd.read_csv(iqoth_dir / "near_duplicate_groups.csv")
    counts = groups["group"].value_counts()
    chosen = sorted(counts[(counts >= sizes[0]) & (counts <= sizes[1])].index)[:n_scans]
    rows = groups[groups["group"].isin(chosen)]
    images = np.stack([np.asarray(Image.open(iqoth_dir / f"{i}.png").convert("L")) for i in rows["id"]])
    return images, pd.factorize(rows["group"])[0]


def test_the_pair_table_reduces_to_the_patch_distance_of_any_subset(iqoth_dir):
    images, _ = _scans(iqoth_dir, n_scans=4)
    real, reference = images[:5], images[5:]
    table, body = patch_pair_table(real, reference)
    cols = np.array([0, 2, 3, len(reference) - 1])
    np.testing.assert_allclose(pooled_distances(table[:, cols], body), mb.patch_distances(real, reference[cols]),
                               rtol=1e-4, atol=1e-4)       # float32 patches: distances agree to ~1e-5
    allowed = np.zeros((len(real), len(reference)), dtype=bool)
    allowed[:, cols] = True
    np.testing.assert_allclose(pooled_distances(table, body, allowed), pooled_distances(table[:, cols], body))
    with pytest.raises(ValueError, match="at least one allowed"):
        pooled_distances(table, body, np.zeros_like(allowed))


def test_the_group_rank_test_keeps_its_level_when_scores_follow_scans():
    """Labels that follow scans (as used/not-used do) and a score that varies from scan to scan, with no
    membership at all: the image-level rank test calls such labellings significant far too often, the
    whole-group permutation test about as often as its level says. A real shift of every used scan is found."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(16), 5)
    scan_effect = rng.normal(size=16)
    image_level, group_level = [], []
    for draw in range(40):
        score = scan_effect[groups] + 0.3 * rng.normal(size=len(groups))
        used = np.isin(groups, rng.permutation(16)[:8]).astype(int)
        image_level.append(mb.rank_test(score, used, alternative="two-sided").significant)
        verdict = mb.group_rank_test(score, used, groups, n_permutations=499, seed=draw)
        assert verdict.statistic == pytest.approx(roc_auc_score(used, score))
        group_level.append(verdict.significant)
    assert np.mean(image_level) > 0.4 and np.mean(group_level) <= 0.15
    used = (groups < 8).astype(int)
    shifted = scan_effect[groups] + 0.3 * rng.normal(size=len(groups)) + 4.0 * used
    assert mb.group_rank_test(shifted, used, groups, n_permutations=499).p_value < 0.01
    # a group that holds both labels keeps them; the AUC is still the image-level one
    used[:2] = 1 - used[:2]
    assert mb.group_rank_test(shifted, used, groups).statistic == pytest.approx(roc_auc_score(used, shifted))


def test_the_patch_null_control_passes_when_the_used_scans_are_the_typical_ones(iqoth_dir):
    """Real CT scans, the more typical half (patches closest to other scans' patches) called "used": no
    generator exists, so the null control must pass. The slice-level test failed exactly this way on v3 and
    v3s (held-out real scans separated used from not-used at AUC 0.76 and 0.93, p 0.0009 and 7e-8)."""
    images, scans = _scans(iqoth_dir, n_scans=16)
    table, body = patch_pair_table(images, images)
    typicality = pd.Series(-pooled_distances(table, body, scans[:, None] != scans[None, :])).groupby(scans).mean()
    used = np.isin(scans, typicality.sort_values().index[-8:]).astype(int)
    features = mb.downsampled_pixels(images, 64)
    pool, stand_in, _ = mb.split_null_control(features, used, seed=1, groups=scans)
    values = mb.patch_copy_score(images[pool], images[stand_in])
    # the table gives the patch score of any split without a new search
    np.testing.assert_allclose(-pooled_distances(table[np.ix_(pool, stand_in)], body[pool]), values, rtol=1e-4, atol=1e-4)
    old = mb.rank_test(values, used[pool], alternative="two-sided")
    assert old.significant and old.statistic > 0.8                  # the old null: slice-level test
    result = mb.null_control(features, used, score="patches", n_repeats=5, groups=scans, images=images, seed=1)
    assert result.passed, result.message
    assert "permutations of whole groups" in result.verdict.method


def test_the_patch_null_control_scores_the_typicality_term_of_the_patch_column(iqoth_dir):
    """The null scores the column a run with patch_typicality=w scores: the patch score plus w x each image's
    patch distance to the other scans. With the typical half of real scans called "used" (no generator), the raw
    patch score separates them (its held-out stand-ins are close to typical images); the term takes part of that
    generator-free advantage back, so the median null AUC moves towards 0.5."""
    images, scans = _scans(iqoth_dir, n_scans=16)
    table, body = patch_pair_table(images, images)
    typicality = pd.Series(-pooled_distances(table, body, scans[:, None] != scans[None, :])).groupby(scans).mean()
    used = np.isin(scans, typicality.sort_values().index[-8:]).astype(int)
    features = mb.downsampled_pixels(images, 64)
    runs = {w: mb.null_control(features, used, score="patches", n_repeats=5, groups=scans, images=images, seed=1,
                               typicality=w) for w in (0.0, TYPICALITY_WEIGHT)}
    assert runs[TYPICALITY_WEIGHT].passed, runs[TYPICALITY_WEIGHT].message
    raw, corrected = (abs(runs[w].verdict.statistic - 0.5) for w in (0.0, TYPICALITY_WEIGHT))
    assert corrected < raw, (raw, corrected)
