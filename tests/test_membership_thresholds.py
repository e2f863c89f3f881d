"""Issue 19 item 5: the default threshold with a dev set -- the two-means cut of the scored folder's own scores,
kept within a band of the prevalence that dev's rates estimate for that folder (adjusted count) -- on synthetic
score mixtures, in the pipeline's rule and its nested-CV expectation, and on a scan-disjoint re-split of v3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

import synthscope.membership as mb
from synthscope.membership.pipeline import MembershipOptions, _procedure, _threshold
from synthscope.membership.thresholds import PREVALENCE_BAND, adjusted_count, banded_two_means


def _spread_and_tight(n, prevalence, rng):
    """Used images spread far above a tight not-used cluster: the shape where two-means splits the used class."""
    y = (np.arange(n) < round(n * prevalence)).astype(int)
    return np.where(y == 1, rng.uniform(-0.80, -0.55, n), rng.normal(-0.84, 0.025, n)), y


def _kappa(y, scores, fit):
    return cohen_kappa_score(y, (scores >= fit.threshold).astype(int))


@pytest.mark.parametrize("cut", ["kappa", "x"])
def test_adjusted_count_estimates_the_scored_folders_prevalence_not_devs(cut):
    rng = np.random.default_rng(0)
    dev, dev_used = _spread_and_tight(100, 0.5, rng)
    for prevalence in (0.3, 0.7):
        scores, _ = _spread_and_tight(1000, prevalence, rng)
        assert adjusted_count(dev, dev_used, scores, cut=cut) == pytest.approx(prevalence, abs=0.05)
    with pytest.raises(ValueError, match="unknown cut"):
        adjusted_count(dev, dev_used, scores, cut="median")


def test_either_cut_recovers_the_prevalence_exactly_when_devs_class_distributions_carry():
    """Overlapping classes on a small dev set (10 used at -1..-10, 10 not used at -6..-15): a folder made of dev's
    used scores twice and its not-used scores once has dev's class distributions exactly, so the adjusted count is
    2/3 at any cut, while the share above either cut is not."""
    dev = -np.r_[np.arange(1.0, 11), np.arange(6.0, 16)]
    dev_used = np.r_[np.ones(10), np.zeros(10)]
    folder = np.r_[dev[:10], dev[:10], dev[10:]]
    for cut in ("kappa", "x"):
        assert adjusted_count(dev, dev_used, folder, cut=cut) == pytest.approx(2 / 3)
    share_above_x = (folder >= banded_two_means(folder, dev, dev_used, cut="x").threshold).mean()
    assert abs(share_above_x - 2 / 3) <= PREVALENCE_BAND + 1 / 30


def test_the_band_stops_two_means_splitting_a_spread_used_class_and_otherwise_leaves_it_alone():
    rng = np.random.default_rng(1)
    dev, dev_used = _spread_and_tight(100, 0.5, rng)
    scores, y = _spread_and_tight(400, 0.7, rng)
    plain, banded = mb.fit_threshold(scores, None, label_free="two_means"), banded_two_means(scores, dev, dev_used)
    estimate = adjusted_count(dev, dev_used, scores)
    assert plain.predicted_used_fraction < estimate - PREVALENCE_BAND          # two-means cut inside the used spread
    assert banded.method == "two_means_band"
    assert banded.predicted_used_fraction == pytest.approx(estimate - PREVALENCE_BAND, abs=1 / 400)
    assert _kappa(y, scores, banded) > _kappa(y, scores, plain) + 0.1
    # a well separated folder: two-means agrees with the estimate and the band leaves its cut as it is
    clear = np.r_[rng.normal(-1.0, 0.05, 60), rng.normal(-0.6, 0.05, 40)]
    dev_clear = np.r_[rng.normal(-1.0, 0.05, 20), rng.normal(-0.6, 0.05, 20)]
    kept = banded_two_means(clear, dev_clear, np.r_[np.zeros(20), np.ones(20)])
    assert kept.threshold == mb.fit_threshold(clear, None, label_free="two_means").threshold
    assert kept.predicted_used_fraction == pytest.approx(0.4)


def test_the_pipeline_rule_and_its_nested_cv_use_the_band_only_when_dev_finds_leakage():
    rng = np.random.default_rng(2)
    dev, dev_used = _spread_and_tight(40, 0.5, rng)
    scored, _ = _spread_and_tight(80, 0.7, rng)
    auto = MembershipOptions()
    expected = banded_two_means(scored, dev, dev_used)
    fit = _threshold(auto, dev, dev_used, scored, leaked=True)
    assert (fit.method, fit.threshold) == (expected.method, expected.threshold)
    assert _threshold(auto, dev, dev_used, scored, leaked=False).method == "f1"        # no leakage: fit on dev
    assert _threshold(MembershipOptions(threshold="two_means"), dev, dev_used, scored, True).method == "two_means"
    assert _threshold(MembershipOptions(threshold="dev"), dev, dev_used, scored, True).method == "f1"
    # nested CV: the same rule inside each fold, dev labels read at the training rows only
    table = pd.DataFrame({"images:patches": dev})
    train = np.arange(0, 40, 2)
    column, threshold = _procedure(MembershipOptions(primary="images:patches"), 0.05)(
        train, table, dev_used, np.arange(40) // 2)
    assert column == "images:patches"
    assert threshold == banded_two_means(dev, dev[train], dev_used[train]).threshold


def _v3_pool(shared_dir):
    from synthscope.benchmark.threshold_resplits import read_pool

    root = shared_dir / "bench" / "v3"
    groups_csv = shared_dir / "data" / "iqoth256" / "near_duplicate_groups.csv"
    if not (root / "subtask1").is_dir() or not groups_csv.is_file():
        pytest.skip("bench v3 or the pool's scan groups absent")
    return read_pool(root, groups_csv)


def test_on_a_scan_disjoint_resplit_of_v3_with_few_generated_images(shared_dir):
    """v3's 127 real images pooled (dev + test), whole scans to one side; 20 generated images per folder, pooled
    as the default run does; the scored folder 70 % used. The estimate finds the prevalence within the band, and
    the banded cut calls close to it where plain two-means calls far fewer (the used images' spread)."""
    from synthscope.membership.patches import patch_copy_score

    images, used, scans, pool = _v3_pool(shared_dir)
    rng = np.random.default_rng(0)
    dev_scans = np.concatenate([rng.permutation(np.unique(scans[used == c]))[:4] for c in (0, 1)])
    dev = np.isin(scans, dev_scans)
    scored_used = np.flatnonzero(~dev & (used == 1))
    not_used = np.flatnonzero(~dev & (used == 0))
    scored = np.r_[scored_used, not_used[:round(len(scored_used) * 3 / 7)]]          # 70 % used
    gen = pool[rng.choice(len(pool), 40, replace=False)]
    dev_scores = patch_copy_score(images[dev], gen)
    scores = patch_copy_score(images[scored], gen)
    y = used[scored]
    estimate = adjusted_count(dev_scores, used[dev], scores)
    banded = banded_two_means(scores, dev_scores, used[dev])
    plain = mb.fit_threshold(scores, None, label_free="two_means")
    assert abs(estimate - y.mean()) <= PREVALENCE_BAND
    assert abs(banded.predicted_used_fraction - estimate) <= PREVALENCE_BAND + 1 / len(y)
    assert abs(banded.predicted_used_fraction - y.mean()) <= abs(plain.predicted_used_fraction - y.mean())
    assert _kappa(y, scores, banded) >= 0.5


def test_the_resplit_harness_scores_exactly_and_splits_whole_scans(shared_dir):
    """The re-split harness behind the threshold choice (synthscope.benchmark.threshold_resplits) on real v3 images:
    its per-generated-image patch table gives `patch_copy_score` of any generated subset (a minimum over the
    subset), and each re-split keeps every scan on one side, at the asked share used, with both folders' draws."""
    from synthscope.benchmark.threshold_resplits import PatchPool, patch_distance_table, resplit
    from synthscope.membership.patches import patch_copy_score

    images, used, scans, pool = _v3_pool(shared_dir)
    rows = np.flatnonzero(np.isin(scans, np.unique(scans)[:6]))
    generated = pool[::20]                                                   # 20 generated images
    table, weights = patch_distance_table(images[rows], generated)
    subset = np.array([1, 4, 5, 11, 17])
    expected = patch_copy_score(images[rows], generated[subset], method="exact")
    harness = PatchPool(table, weights, used[rows], scans[rows])
    # float32 patches: distances ~1 carry ~1e-7 relative error per patch, averaged over the body
    assert np.abs(harness.scores(np.arange(len(rows)), subset) - expected).max() < 1e-5
    full = PatchPool(np.zeros((len(used), 20, weights.shape[1]), np.float32),
                     np.full((len(used), weights.shape[1]), 1 / weights.shape[1]), used, scans)
    rng = np.random.default_rng(0)
    for share in (0.3, 0.7):
        d, dy, x, y = resplit(full, rng, share, 5)
        assert len(d) + len(x) <= len(used) and y.mean() == pytest.approx(share, abs=0.02)
        assert 0 < dy.mean() < 1
    # scan-disjointness, read from the rows the re-split drew: no scan on both sides
    picked = []
    full.scores = lambda r, g, *_: (picked.append(np.asarray(r)), np.zeros(len(r)))[1]
    resplit(full, np.random.default_rng(1), 0.5, 5)
    assert not set(scans[picked[0]]) & set(scans[picked[1]])


def test_the_cut_screen_on_smoothed_scores_pairs_rules_on_the_same_resplits():
    """`compare_cuts` (issue 19, sixth round) draws the re-splits `compare` draws: unsmoothed, its default rule's
    kappa is `compare`'s two_means_band kappa on every re-split; the labelled ceiling calls the true share; and
    smoothing changes the scores the rules cut (each image's score averaged with its nearest slice of its scan)."""
    from synthscope.benchmark.threshold_resplits import PatchPool, compare, compare_cuts, cut_rules, default_rules

    rng = np.random.default_rng(0)
    scans = np.repeat(np.arange(24), 4)
    used = (scans % 2).astype(int)
    table = rng.uniform(0.5, 1.0, (len(scans), 30, 4)).astype(np.float32)
    table[used == 1] -= rng.uniform(0.0, 0.4, (int(used.sum()), 30, 1)).astype(np.float32)   # used: nearer copies
    pool = PatchPool(table, np.full((len(scans), 4), 0.25), used, scans)
    pool.pixels = np.repeat(rng.normal(size=(24, 16)), 4, axis=0) + rng.normal(0, 0.01, (len(scans), 16))
    rules = {"band": cut_rules()["band"]}
    kw = dict(repeats=3, seed=4, shares=(0.3, 0.7), generated=(5,))
    raw = compare_cuts(pool, rules, neighbours=0, **kw)
    reference = compare(pool, {"two_means_band": default_rules()["two_means_band"]}, **kw)
    merged = raw[raw.rule == "band"].merge(reference[reference.rule == "two_means_band"],
                                           on=["generated", "share", "repeat"])
    assert len(merged) == 6 and np.allclose(merged.kappa_x, merged.kappa_y)
    ceiling = raw[raw.rule == "true_prevalence"]
    assert np.allclose(ceiling.called, ceiling.true, atol=1 / 30)
    smoothed = compare_cuts(pool, rules, neighbours=1, **kw)
    assert list(smoothed.columns) == list(raw.columns) and len(smoothed) == len(raw)
    assert not np.allclose(smoothed.called, raw.called) or not np.allclose(smoothed.kappa, raw.kappa)


def test_every_screened_prevalence_estimate_recovers_a_known_share_when_dev_carries():
    """The seventh round's candidates (`benchmark.prevalence_resplits.prevalence_estimate`) on scores whose class
    distributions are the same in dev and the folder (what each assumes): each finds the folder's share used,
    which differs from dev's, within what 1,200 folder images allow; a one-class dev or an unknown name is refused."""
    from synthscope.benchmark.prevalence_resplits import PREVALENCE_METHODS, prevalence_estimate

    rng = np.random.default_rng(3)
    dev_used = np.r_[np.ones(300), np.zeros(300)].astype(int)
    dev = np.where(dev_used == 1, rng.normal(2.0, 1.0, 600), rng.normal(0.0, 1.0, 600)) * 50 - 3000
    for share in (0.25, 0.7):
        used = rng.random(1200) < share
        folder = np.where(used, rng.normal(2.0, 1.0, 1200), rng.normal(0.0, 1.0, 1200)) * 50 - 3000
        for method in PREVALENCE_METHODS:
            assert prevalence_estimate(dev, dev_used, folder, method=method) == pytest.approx(used.mean(), abs=0.07), method
    with pytest.raises(ValueError, match="both classes"):
        prevalence_estimate(dev, np.ones(600), folder, method="cdf")
    with pytest.raises(ValueError, match="unknown prevalence method"):
        prevalence_estimate(dev, dev_used, folder, method="nope")


def test_whole_group_pooling_of_the_fifth_round_moves_scores_to_their_group():
    """`threshold_resplits.scan_pooled` (the fifth round's losing candidate, kept with its harness): weight 1 gives
    each image its scan group's statistic, weight 0 the score itself, 0.5 halfway; bad arguments are refused."""
    from synthscope.benchmark.threshold_resplits import scan_pooled

    scores, groups = np.array([1.0, 3.0, 10.0, 0.0, 4.0]), np.array([0, 0, 1, 1, 1])
    assert np.array_equal(scan_pooled(scores, groups), [2.0, 2.0, 14 / 3, 14 / 3, 14 / 3])
    assert np.array_equal(scan_pooled(scores, groups, statistic="max"), [3.0, 3.0, 10.0, 10.0, 10.0])
    assert np.array_equal(scan_pooled(scores, groups, weight=0.0), scores)
    assert np.allclose(scan_pooled(scores, groups, weight=0.5, statistic="median"), [1.5, 2.5, 7.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="unknown statistic"):
        scan_pooled(scores, groups, statistic="mode")
    with pytest.raises(ValueError, match="weight"):
        scan_pooled(scores, groups, weight=2.0)


def test_the_generated_side_count_recovers_the_share_when_every_training_image_is_in_a_folder():
    """The seventh round's generated-side count (`prevalence_resplits.generated_side_count`), which lost on the
    re-splits, is right where its assumption holds: every generated image copies one used image of dev or the
    scored folder, uniformly, so the scored folder's matches over dev's matches per used image give its used count."""
    from synthscope.benchmark.prevalence_resplits import generated_side_count
    from synthscope.benchmark.threshold_resplits import PatchPool

    rng = np.random.default_rng(5)
    used = np.r_[np.ones(10), np.zeros(10), np.ones(12), np.zeros(28)].astype(int)   # dev 0-19, scored 20-59
    sources = rng.choice(np.flatnonzero(used == 1), 600)
    table = np.ones((60, 600, 4), dtype=np.float32)
    table[sources, np.arange(600)] = 0.0                      # each generated image is a copy of its source
    pool = PatchPool(table, np.full((60, 4), 0.25), used, np.arange(60))
    dev, scored = np.arange(20), np.arange(20, 60)
    assert generated_side_count(pool, dev, used[dev], scored, np.arange(600)) == pytest.approx(12 / 40, abs=0.06)
