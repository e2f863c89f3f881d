"""synthscope.membership: scores, leakage tests, thresholds, nearest pairs and the two controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from float_tolerance import EPS32, float32_sum_rtol
from synthscope import membership as mb
from synthscope.membership.scores import _structure_adjusted as structure_adjusted


def smooth_images(n: int, seed: int, size: int = 64) -> np.ndarray:
    """Structured (blurred-noise) uint8 images: distinct, with realistic spatial correlation."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, size, size))
    blurred = ndimage.gaussian_filter(noise, sigma=(0, 3, 3))
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return np.clip(blurred * 255, 0, 255).astype(np.uint8)


def pixel_features(images: np.ndarray) -> np.ndarray:
    return mb.postprocess(mb.downsampled_pixels(images, 32), "image_zscore")


# ---------------------------------------------------------------- nearest neighbours

def test_knn_exact_matches_numpy_and_leave_one_out_drops_self():
    rng = np.random.default_rng(0)
    data, query = rng.normal(size=(50, 8)), rng.normal(size=(7, 8))
    dist, idx = mb.knn(query, data, 3)
    full = np.linalg.norm(query[:, None] - data[None], axis=2)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :3])
    # float32 |q|^2 + |x|^2 - 2 q.x over 8 dims: the error of d^2 is within (8 + 3) eps (|q| + |x|)^2
    # (Higham's bound for any summation order), that of d within half that over d, plus input rounding
    reference = np.sort(full, axis=1)[:, :3]
    scale = np.linalg.norm(query, axis=1)[:, None] + np.linalg.norm(data, axis=1)[idx]
    bound = float32_sum_rtol(8 + 3) * scale ** 2 / (2 * reference) + EPS32 * scale
    assert (np.abs(dist - reference) <= bound).all(), np.abs(dist - reference).max()
    dist, idx = mb.knn(data, data, 2, exclude_self=True)
    assert not (idx == np.arange(50)[:, None]).any()
    assert (dist > 0).all()


@pytest.mark.slow  # pynndescent's numba JIT costs about a minute on a fresh process here
@pytest.mark.timeout(1200)   # and close to 9 minutes on a loaded 2-core machine
def test_knn_approximate_index_finds_the_planted_neighbours():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(600, 16)).astype(np.float32)
    query = data[:40] + 1e-3
    dist, idx = mb.knn(query, data, 1, approx_threshold=100)   # forces pynndescent
    assert (idx[:, 0] == np.arange(40)).mean() >= 0.95
    _, idx_loo = mb.knn(data[:200], data[:200], 1, exclude_self=True, approx_threshold=100)
    assert not (idx_loo[:, 0] == np.arange(200)).any()


def test_knn_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        mb.knn(np.array([[np.nan, 1.0]]), np.ones((3, 2)), 1)
    with pytest.raises(ValueError, match="features"):
        mb.knn(np.ones((2, 3)), np.ones((3, 2)), 1)
    with pytest.raises(ValueError, match="feature matrix"):
        mb.knn(np.ones(3), np.ones((3, 2)), 1)


def test_intrinsic_dimension_recovers_a_plane_in_a_high_dimensional_space():
    rng = np.random.default_rng(2)
    plane = rng.uniform(size=(2000, 2)) @ rng.normal(size=(2, 30))
    dist, _ = mb.knn(plane, plane, 10, exclude_self=True)
    assert 1.6 < mb.intrinsic_dimension(dist) < 2.5


# ---------------------------------------------------------------- scores

@pytest.fixture(scope="module")
def planted():
    """60 real images; 200 generated of which 15 are near copies of the first 15 real images."""
    real = smooth_images(60, seed=10)
    others = smooth_images(185, seed=11)
    generated = np.concatenate([others, mb.near_copies(real[:15], seed=3)])
    copied = np.zeros(60, dtype=int)
    copied[:15] = 1
    return real, generated, copied


def test_copy_sensitive_scores_rank_planted_copies_first(planted):
    real, generated, copied = planted
    scores = mb.MembershipScorer().fit(pixel_features(generated)).score(pixel_features(real))
    assert list(scores.columns) == list(mb.SCORES)
    for name in ("distance", "gan_leaks", "copies"):   # domias is a density (k = 5), not a copy detector
        assert roc_auc_score(copied, scores[name]) > 0.95, name
    # copies: an eps-ball count; planted copies sit inside it, others do not
    assert (scores["copies"][copied == 1] >= 1).all()
    assert (scores["copies"][copied == 0] < 1).mean() > 0.9


def test_calibrated_scores_remove_a_typicality_confound():
    """Members sit in the population's sparse outskirts with a generated sample 0.35 away; non-members
    sit in its dense core, where generated samples are also near. The raw distance mixes "member" with
    "typical"; GAN-Leaks and DOMIAS calibrate against the reference population and separate fully."""
    rng = np.random.default_rng(5)

    def unit(n):
        v = rng.normal(size=(n, 5))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    members = 1.8 * unit(40)
    generated = np.concatenate([rng.normal(size=(400, 5)), members + 0.35 * unit(40)])
    typical = rng.normal(scale=0.15, size=(40, 5))
    reference = np.concatenate([rng.normal(scale=0.15, size=(300, 5)), rng.normal(size=(200, 5))])
    real = np.concatenate([members, typical])
    y = np.r_[np.ones(40), np.zeros(40)]
    table = mb.MembershipScorer(scores=("distance", "gan_leaks", "domias")).fit(generated, reference).score(real)
    assert roc_auc_score(y, table["distance"]) < 0.9
    assert roc_auc_score(y, table["gan_leaks"]) > 0.99
    assert roc_auc_score(y, table["domias"]) > 0.99


def test_scorer_validates_its_parameters_and_call_order():
    with pytest.raises(ValueError, match="unknown score"):
        mb.MembershipScorer(scores=("nope",)).fit(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        mb.MembershipScorer().score(np.ones((3, 2)))
    scorer = mb.MembershipScorer().fit(np.random.default_rng(0).normal(size=(10, 2)))
    with pytest.raises(ValueError, match="features"):
        scorer.score(np.ones((4, 3)))
    with pytest.raises(ValueError, match="reference"):
        scorer.score(np.ones((2, 2)))   # leave-one-out on 2 images leaves 1 reference image


def test_scorer_follows_scikit_learn_conventions():
    """Parameters are stored as given (clone/get_params work), learned state is set in fit and ends in `_`,
    and scoring a pool leave-one-out returns its calibration instead of storing it on the estimator."""
    from sklearn.base import BaseEstimator, clone

    rng = np.random.default_rng(1)
    generated, reference, real = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)), rng.normal(size=(12, 4))
    scorer = mb.MembershipScorer(scores=["distance", "copies"], near_duplicate_ratio=0.3)
    assert isinstance(scorer, BaseEstimator) and scorer.get_params()["scores"] == ["distance", "copies"]
    assert clone(scorer).get_params() == scorer.get_params()
    leave_one_out = scorer.fit(generated)
    before = set(vars(leave_one_out))
    pool = leave_one_out.score_pool(real)
    assert set(vars(leave_one_out)) == before, "score() must not set learned state"
    assert not hasattr(leave_one_out, "near_duplicate_radius_") and pool.reference_mode == "leave-one-out"
    assert pool.near_duplicate_radius > 0 and pool.pool_baseline.shape == (12,)
    with_reference = clone(scorer).fit(generated, reference)
    assert with_reference.near_duplicate_radius_ > 0 and with_reference.eps_ > 0
    assert with_reference.score_pool(real).eps == with_reference.eps_


def test_rank_ensemble_averages_within_pool_ranks():
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [30.0, 10.0, 20.0]})
    np.testing.assert_allclose(mb.rank_ensemble(table), [(1 / 3 + 1) / 2, (2 / 3 + 1 / 3) / 2, (1 + 2 / 3) / 2])


def test_score_membership_names_columns_and_gates_with_labels(planted):
    real, generated, copied = planted
    feats = {"px": pixel_features(real)}
    result = mb.score_membership(feats, {"px": pixel_features(generated)}, ids=[f"r{i}" for i in range(60)],
                                 used=copied)
    assert list(result.scores.columns) == [f"px:{s}" for s in mb.SCORES] + ["ensemble"]
    assert result.scores.index[0] == "r0"
    assert result.verdict.significant and result.verdict.statistic > 0.95
    assert set(result.verdicts) == set(result.scores.columns)
    with pytest.raises(ValueError, match="lack generated"):
        mb.score_membership(feats, {"other": pixel_features(generated)})


# ---------------------------------------------------------------- leakage tests

def test_rank_test_is_significant_only_when_used_images_score_higher():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)
    strong = mb.rank_test(rng.normal(size=100) + 2 * y, y)
    assert strong.significant and strong.p_value < 1e-6 and strong.statistic > 0.85
    null = mb.rank_test(rng.normal(size=100), y)
    assert not null.significant
    assert null.message.startswith("no significant leakage")
    reversed_ = mb.rank_test(-(rng.normal(size=100) + 2 * y), y)   # one-sided: the wrong direction is no leak
    assert not reversed_.significant
    both_ways = mb.rank_test(-(rng.normal(size=100) + 2 * y), y, alternative="two-sided")   # null controls
    assert both_ways.significant and both_ways.statistic < 0.15 and "LOWER" in both_ways.message
    # Bonferroni: the same scores tested as one of 1,000 columns get p x 1,000, capped at 1
    scores = np.random.default_rng(5).normal(size=100) + 0.9 * y
    alone = mb.rank_test(scores, y)
    assert 1e-6 < alone.p_value < 1e-4 and alone.significant   # p ~ 9e-5: significant as one test ...
    corrected = mb.rank_test(scores, y, n_tests=1000)
    assert corrected.p_value == pytest.approx(1000 * alone.p_value) and corrected.statistic == alone.statistic
    assert not corrected.significant                                  # ... but not as one of 1,000
    assert mb.rank_test(scores, y, n_tests=10 ** 6).p_value == 1.0
    with pytest.raises(ValueError, match="both used and not-used"):
        mb.rank_test([1.0, 2.0], [1, 1])


def test_data_copying_test_flags_copies_and_not_a_fresh_sample():
    rng = np.random.default_rng(4)
    pool, heldout = rng.normal(size=(200, 10)), rng.normal(size=(200, 10))
    fresh = rng.normal(size=(200, 10))
    copies = pool[:100] + rng.normal(scale=0.01, size=(100, 10))
    copying = mb.data_copying_test(pool, np.concatenate([copies, fresh[:100]]), heldout)
    assert copying.significant and copying.statistic < 0
    assert not mb.data_copying_test(pool, fresh, heldout).significant
    # without a held-out set, half the pool is held out
    assert mb.leakage_test(real=pool, generated=copies).significant


# ---------------------------------------------------------------- thresholds

def test_fit_threshold_by_objective_prevalence_and_mixture():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    for objective in mb.OBJECTIVES:
        fit = mb.fit_threshold(scores, y, objective)
        assert 0.3 < fit.threshold <= 0.6 and fit.value == pytest.approx(1.0)
    prevalence = mb.fit_threshold(np.arange(100.0), None, prevalence=0.25)
    assert prevalence.predicted_used_fraction == pytest.approx(0.25, abs=0.02)
    rng = np.random.default_rng(0)
    bimodal = np.r_[rng.normal(0, 1, 300), rng.normal(8, 1, 100)]
    mixture = mb.fit_threshold(bimodal, None)
    assert mixture.method == "mixture" and 2 < mixture.threshold < 6
    # a tight not-used cluster and a wide used one: the wide component also wins far out in the low tail, where
    # the cut once landed (every image called used); it is searched between the two means
    for seed in range(5):
        rng = np.random.default_rng(seed)
        unequal = np.r_[rng.normal(0, 0.3, 70), rng.normal(3, 2.0, 30)]
        cut = mb.fit_threshold(unequal, None)
        assert 0.3 < cut.threshold < 3 and 0.15 < cut.predicted_used_fraction < 0.45, seed
    with pytest.raises(ValueError, match="unknown objective"):
        mb.fit_threshold(scores, y, "auc")
    with pytest.raises(ValueError, match="finite"):
        mb.fit_threshold([np.nan, 1.0], [0, 1])


def test_threshold_fitter_carries_a_dev_threshold_to_test():
    fitter = mb.ThresholdFitter("f1").fit([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert fitter.threshold_ == pytest.approx(0.5)       # the cut between the classes, midway (F1 = 1 there)
    # carried unchanged to new scores, used when score >= threshold
    np.testing.assert_array_equal(fitter.predict([0.0, 0.49, 0.5, 0.51, 1.0]), [0, 0, 1, 1, 1])
    with pytest.raises(RuntimeError):
        mb.ThresholdFitter().predict([1.0])


# ---------------------------------------------------------------- nearest pairs and copies

def test_near_copies_are_close_but_not_identical():
    images = smooth_images(5, seed=20)
    copies = mb.near_copies(images, seed=1)
    assert copies.dtype == np.uint8 and copies.shape == images.shape
    assert all((c != i).any() for c, i in zip(copies, images))
    assert np.abs(copies.astype(int) - images.astype(int)).mean() < 10


def test_registered_distance_separates_a_shifted_copy_from_a_similar_image():
    images = smooth_images(2, seed=21)
    neighbour = np.clip(images[0].astype(int) + np.roll(images[1].astype(int) - 128, 3, axis=0) // 6, 0, 255)
    candidates = np.stack([images[0], mb.near_copies(images[:1], seed=2)[0], neighbour.astype(np.uint8)])
    d = mb.registered_distances(images[:1], candidates, np.array([[0, 1, 2]]))
    assert d[0, 0] < 1e-5 and d[0, 1] < 0.1 and d[0, 2] > 2 * d[0, 1]


def test_nearest_pairs_give_distance_ssim_and_difference(planted):
    real, generated, _ = planted
    pairs = mb.nearest_pairs(real[:3], generated, k=2, real_ids=["a", "b", "c"],
                             gen_ids=[f"g{i}" for i in range(len(generated))])
    assert len(pairs) == 6
    first = pairs[0]
    assert (first.real_id, first.rank) == ("a", 0)
    assert first.generated_id == f"g{185}"          # the planted copy of real image 0
    assert first.ssim > 0.8 and first.difference.shape == real.shape[1:] and first.difference.dtype == np.int16
    assert pairs[1].distance >= first.distance and pairs[1].ssim < first.ssim


def test_patch_copy_score_finds_images_whose_parts_were_recombined():
    # "used" images survive only as quarters, each shifted a few pixels, pasted into mosaics of four
    # different used images (the memorisation a long-trained DDPM shows); "not used" images never appear
    real = smooth_images(12, seed=40, size=256)
    used, other = real[:6], real[6:]
    rng = np.random.default_rng(41)
    mosaics = []
    for _ in range(12):
        pick = rng.choice(6, 4, replace=False)
        m = np.empty((256, 256), dtype=np.uint8)
        for q, (i, j) in enumerate(((0, 0), (0, 128), (128, 0), (128, 128))):
            shifted = np.roll(used[pick[q]], tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
            m[i:i + 128, j:j + 128] = shifted[i:i + 128, j:j + 128]
        mosaics.append(m)
    generated = np.concatenate([np.stack(mosaics), smooth_images(8, seed=42, size=256)])
    s = mb.patch_copy_score(real, generated)
    assert s[:6].min() > s[6:].max()
    # no other real image enters an image's score, and an exact copy is at distance 0
    np.testing.assert_allclose(mb.patch_copy_score(real[[3, 8]], generated), s[[3, 8]], rtol=1e-6)
    assert mb.patch_distances(real[:2], real[:2]).max() < 1e-3
    # whole-image nearest distance does worse on the same data than the patch score
    whole = -np.linalg.norm(pixel_features(real)[:, None] - pixel_features(generated)[None], axis=2).min(axis=1)
    assert roc_auc_score(np.r_[np.ones(6), np.zeros(6)], s) >= roc_auc_score(np.r_[np.ones(6), np.zeros(6)], whole)


# ---------------------------------------------------------------- controls

def test_positive_and_null_controls_on_synthetic_images():
    real = smooth_images(40, seed=30)
    generated = smooth_images(80, seed=31)
    result, scores, copied = mb.run_positive_control(pixel_features, real, generated, fraction=0.5, seed=0)
    assert result.passed and result.auc == 1.0 and copied.sum() == 20
    used = np.r_[np.ones(20), np.zeros(20)].astype(int)
    pool, stand_in, heldout = mb.split_null_control(real, used, seed=0)
    # a third of each class stands in for the generated set, so neither class is favoured by construction
    assert heldout is None and not set(stand_in) & set(pool) and len(set(stand_in) | set(pool)) == 40
    assert (used[stand_in] == 1).sum() == (used[stand_in] == 0).sum() == 6
    features = pixel_features(real)
    null = mb.null_control(features, used, score="distance", n_repeats=5)
    assert null.passed and not null.verdict.significant and "of 5 splits" in null.message
    assert mb.null_control(features, None, n_repeats=3).passed


def scan_pool(seed: int = 0, n_scans: int = 30, dim: int = 40):
    """Real images as CT-like scans: 15 used scans of 3 neighbouring "slices" each (all in the pool) and
    15 not-used single slices. The generated set is a fresh sample: nothing leaked."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_scans, dim))
    used = [c + 0.05 * rng.normal(size=(3, dim)) for c in centres[:15]]
    real = np.concatenate(used + [centres[15:]])
    labels = np.r_[np.ones(45), np.zeros(15)].astype(int)
    scans = np.r_[np.repeat(np.arange(15), 3), np.arange(15, 30)]
    generated = rng.normal(size=(300, dim))
    return real, generated, labels, scans


def test_near_duplicate_exclusion_removes_the_whole_scan_bias_of_calibrated_scores():
    """Leave-one-out GAN-Leaks calibrates a used slice against its own neighbouring slice, so it punishes
    exactly the used images; skipping near duplicates removes that bias (nothing leaked here)."""
    real, generated, labels, scans = scan_pool()
    biased = mb.MembershipScorer(scores=("gan_leaks",), near_duplicate_ratio=None).fit(generated).score(real)
    fixed = mb.MembershipScorer(scores=("gan_leaks", "distance", "adjusted")).fit(generated).score(real)
    assert roc_auc_score(labels, biased["gan_leaks"]) < 0.1
    assert 0.25 < roc_auc_score(labels, fixed["gan_leaks"]) < 0.75
    # the scorer's exclusion radius (not the wider scan-group radius) finds exactly the scans here
    np.testing.assert_array_equal(mb.near_duplicate_groups(real, ratio=mb.NEAR_DUPLICATE_RATIO), pd.factorize(scans)[0])


def test_generator_free_baseline_flags_a_split_that_explains_the_separation():
    """Used images with neighbouring slices in the pool: the baseline separates them without looking at
    the generated set, and a verdict no better than that baseline carries a caution."""
    real, generated, labels, _ = scan_pool(seed=1)
    result = mb.score_membership({"x": real}, {"x": generated}, used=labels, primary="x:distance")
    name, baseline = result.best_baseline
    assert name == "x:pool_baseline" and baseline.statistic > 0.95 and baseline.significant
    assert list(result.baseline.columns) == ["x:pool_baseline"]          # never a primary candidate
    assert "x:pool_baseline" not in result.scores.columns
    significant = mb.LeakageVerdict(True, 0.01, 0.70, "m", "significant leakage.")
    cautioned = mb.with_baseline_caveat(significant, result.best_baseline)
    assert "CAUTION" in cautioned.message and cautioned.p_value == significant.p_value
    quiet = mb.with_baseline_caveat(mb.LeakageVerdict(False, 0.4, 0.55, "m", "no significant leakage."),
                                    result.best_baseline)
    assert "CAUTION" not in quiet.message and "Generator-free baseline x:pool_baseline: AUC" in quiet.message
    weak_baseline = ("x:pool_baseline", mb.LeakageVerdict(False, 0.4, 0.55, "m", "no significant leakage."))
    assert "below this score" in mb.with_baseline_caveat(significant, weak_baseline).message


def test_structure_adjusted_score_is_flat_when_distance_only_tracks_the_pool_spacing():
    rng = np.random.default_rng(4)
    d_real = rng.uniform(0.5, 3.0, 50)
    flat = structure_adjusted(2.0 * d_real ** 0.7, d_real)
    np.testing.assert_allclose(flat, 0.0, atol=1e-9)
    d_gen = 2.0 * d_real ** 0.7
    d_gen[:5] *= 0.5                                     # five images much closer than their spacing predicts
    adjusted = structure_adjusted(d_gen, d_real)
    assert set(np.argsort(adjusted)[-5:]) == set(range(5))


def test_default_ensemble_leaves_out_the_reference_calibrated_scores(planted):
    real, generated, copied = planted
    result = mb.score_membership({"px": pixel_features(real)}, {"px": pixel_features(generated)})
    assert mb.default_ensemble_columns(result.scores.columns) == ["px:distance", "px:adjusted"]
    np.testing.assert_allclose(result.scores["ensemble"], mb.rank_ensemble(result.scores, ["px:distance", "px:adjusted"]))


def test_split_null_control_keeps_groups_whole():
    real, _, labels, scans = scan_pool(seed=2)
    for seed in range(5):
        pool, stand_in, _ = mb.split_null_control(real, labels, seed=seed, groups=scans)
        assert not set(scans[pool]) & set(scans[stand_in])
        assert set(labels[stand_in]) == {0, 1}
        pool, stand_in, heldout = mb.split_null_control(real, None, seed=seed, groups=scans)
        parts = [set(scans[rows]) for rows in (pool, stand_in, heldout)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def _load_pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("L")) for p in sorted(folder.glob("*.png"))])


def test_controls_on_real_ct_slices(shared_dir):
    """v2 dev: near copies of half its used images must be found; held-out real images as the generated
    set must give no leakage verdict."""
    root = shared_dir / "bench" / "v2" / "subtask1" / "dev" / "model_1"
    used, not_used = _load_pngs(root / "real_used"), _load_pngs(root / "real_not_used")
    generated = _load_pngs(root / "generated")
    real = np.concatenate([used, not_used])
    labels = np.r_[np.ones(len(used)), np.zeros(len(not_used))].astype(int)
    space = mb.Space("px", "pixels", {"size": 64}, "image_zscore")       # a user-defined space runs the control
    features_fn = lambda images: mb.postprocess(mb.downsampled_pixels(images, 64), "image_zscore")  # noqa: E731
    np.testing.assert_allclose(mb.space_features(real[:4], space), features_fn(real[:4]), atol=1e-5)
    result, scores, copied = mb.run_positive_control(space, real, generated, candidates=labels == 1, seed=0)
    assert result.passed, result.message
    assert copied.sum() == round(len(used) / 2) and not copied[labels == 0].any()
    fit = mb.fit_threshold(scores, copied, "f1")
    assert fit.value >= 0.9
    features = features_fn(real)
    null = mb.null_control(features, labels, score="distance")
    assert null.passed, null.message


def test_pair_groups_matches_dev_models_to_test_folders():
    assert mb.pair_groups(["folder_1", "folder_2"], ["model_1", "model_2"]) == {"folder_1": "model_1",
                                                                                "folder_2": "model_2"}
    assert mb.pair_groups([""], ["model_1"]) == {"": "model_1"}
    with pytest.raises(ValueError, match="which dev group"):
        mb.pair_groups(["folder_3"], ["model_1", "model_2"])


def test_space_presets_standardise_per_image():
    images = smooth_images(3, seed=40, size=256)
    brighter = np.clip(images.astype(int) * 1.1 + 5, 0, 255).astype(np.uint8)
    a = mb.space_features(images, "pixels-norm")
    b = mb.space_features(brighter, "pixels-norm")
    assert a.shape == (3, 64 * 64)
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float64), axis=1), 1.0, rtol=float32_sum_rtol(64 * 64))   # float32, 4096 terms
    assert np.abs(a - b).max() < 0.02          # brightness / contrast changes barely move the features
    with pytest.raises(ValueError, match="unknown space"):
        mb.get_space("nope")
