"""The patch score's typicality term (issue 19, item 4: few generated images): each real image's patch distance to
the other scans' real images, on real v3 images from ../shared (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

import synthscope.membership as mb
from synthscope.membership.patch_tables import TYPICALITY_WEIGHT, patch_typicality
from synthscope.membership.patches import patch_copy_score, patch_distances
from test_membership_thresholds import _v3_pool as _v3


def test_typicality_is_the_patch_distance_to_the_other_scans_only(shared_dir):
    images, _, scans, _ = _v3(shared_dir)
    rows = np.flatnonzero(np.isin(scans, np.unique(scans)[:5]))[::2][:10]
    assert len(rows) >= 4 and len(np.unique(scans[rows])) >= 2
    real, groups = images[rows], scans[rows]
    values = patch_typicality(real, groups, max_reference=len(real))
    for i in range(len(real)):
        expected = patch_distances(real[i:i + 1], real[groups != groups[i]], method="exact")[0]
        assert values[i] == pytest.approx(expected, abs=1e-5)      # float32 patches, mean of ~100 distances
    # an exact copy counts only when it belongs to another scan
    copied = np.concatenate([real, real[:1]])
    assert patch_typicality(copied, np.r_[groups, groups[0]])[0] == pytest.approx(values[0], abs=1e-6)
    assert patch_typicality(copied, np.r_[groups, -1])[0] < 1e-3
    with pytest.raises(ValueError, match="two scan groups"):
        patch_typicality(real, np.zeros(len(real), int))


def test_the_patch_column_adds_the_typicality_of_the_folder_and_dev_real_images(shared_dir):
    """run_membership on a small real v3s subset (dev and test from different scans): with patch_typicality=w the
    images:patches column of both the dev group and the folder is the raw patch score plus w x the typicality
    against the union of both groups' real images (one scale for both); 0 (the default) gives the raw score."""
    from synthscope.data import load_dataset
    from synthscope.membership.neighbours import downsampled_pixels
    from synthscope.membership.scores import near_duplicate_groups

    root = shared_dir / "bench" / "v3s" / "subtask1"
    if not root.is_dir():
        pytest.skip("bench v3s absent")

    def small(path, n_real, n_gen):
        data = load_dataset(path)
        role = data.manifest["role"].to_numpy()
        keep = np.zeros(len(role), bool)
        keep[np.flatnonzero(role == "real")[::max(1, (role == "real").sum() // n_real)][:n_real]] = True
        keep[np.flatnonzero(role == "generated")[:n_gen]] = True
        return data.subset(keep)

    test, dev = small(root / "test", 24, 10), small(root / "dev", 16, 10)
    if len(set(dev.manifest.loc[dev.manifest["role"] == "real", "label"])) < 2:
        pytest.skip("the dev subset drew one class only")
    feats = {id(d): {"pixels": downsampled_pixels(d.images(np.arange(len(d.manifest))), 64)} for d in (test, dev)}
    runs = {w: mb.run_membership(test, dev, mb.MembershipOptions(spaces=("pixels",), scores=("distance", "patches"),
                                                                 patch_typicality=w, scan_smoothing=0),
                                 features=feats[id(test)], dev_features=feats[id(dev)]).groups[0]
            for w in (TYPICALITY_WEIGHT, 0.0)}
    assert mb.MembershipOptions().patch_typicality == 0.0            # an option, not the default (docs/design.md)
    t_real = np.flatnonzero((test.manifest["role"] == "real").to_numpy())
    d_real = np.flatnonzero((dev.manifest["role"] == "real").to_numpy())
    gen = np.concatenate([d.images(np.flatnonzero((d.manifest["role"] == "generated").to_numpy())) for d in (dev, test)])
    union = np.concatenate([test.images(t_real), dev.images(d_real)])
    typ = patch_typicality(union, near_duplicate_groups(downsampled_pixels(union, 64)))
    for name, data, real, part in (("result", test, t_real, typ[:len(t_real)]),
                                   ("dev_result", dev, d_real, typ[len(t_real):])):
        raw = patch_copy_score(data.images(real), gen)
        np.testing.assert_allclose(getattr(runs[0.0], name).scores["images:patches"], raw, rtol=0, atol=1e-6)
        np.testing.assert_allclose(getattr(runs[TYPICALITY_WEIGHT], name).scores["images:patches"],
                                   raw + TYPICALITY_WEIGHT * part, rtol=0, atol=1e-6)
        assert np.abs(part).min() > 0.01          # the term is there: distances of standardised patches ~0.3-1


def test_the_resplit_harness_scores_the_typicality_column(shared_dir):
    """threshold_resplits' pool table plus the typicality term gives the run's column at any weight, and
    compare_scores pairs the weights on the same re-splits (same dev, scored folder and generated draw)."""
    from synthscope.benchmark.threshold_resplits import PatchPool, compare_scores, patch_distance_table

    images, used, scans, pool = _v3(shared_dir)
    rows = np.flatnonzero(np.isin(scans, np.unique(scans)[:8]))
    generated = pool[::20]
    table, weights = patch_distance_table(images[rows], generated)
    typ = patch_typicality(images[rows], scans[rows])
    harness = PatchPool(table, weights, used[rows], scans[rows], typ)
    subset = np.array([0, 3, 7, 12])
    raw = patch_copy_score(images[rows], generated[subset], method="exact")
    np.testing.assert_allclose(harness.scores(np.arange(len(rows)), subset, 0.2), raw + 0.2 * typ, rtol=0, atol=1e-5)
    if used[rows].min() == used[rows].max():
        pytest.skip("the first scans hold one class only")
    kappas = compare_scores(harness, (0.0, 0.2), repeats=2, shares=(0.5,), generated=(3,))
    assert set(kappas["rule"]) == {"typicality 0", "typicality 0.2"} and len(kappas) == 4
    assert kappas["auc"].between(0, 1).all()
