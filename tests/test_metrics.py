"""Metrics: sklearn point estimates, vectorised bootstrap equal to the loop, baselines, the seed paper's F1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from synthscope import metrics as M


@pytest.fixture
def membership_data():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, 300)
    scores = y_true * 0.6 + rng.normal(0, 1, 300)
    scores[::7] = np.round(scores[::7], 1)  # some ties
    y_pred = (scores > 0.3).astype(int)
    return y_true, y_pred, scores


# The seed paper (ImageCLEFmedical GANs 2024 overview), Table 2: F1 from precision and recall.
TABLE_2 = [
    ("Inoue Koki run 892, M1", 0.499, 0.998, 0.665),
    ("Robot run 844, M1", 0.824, 0.538, 0.651),
    ("Shitongcao run 838, M2", 0.751, 0.279, 0.407),
    ("KDE-med-lab run 855, M1", 0.545, 0.003, 0.005),
]


@pytest.mark.parametrize("run, p, r, f1_table", TABLE_2, ids=[row[0] for row in TABLE_2])
def test_seed_paper_table_2_f1_is_2pr_over_p_plus_r(run, p, r, f1_table):
    assert M.f1_from_precision_recall(p, r) == pytest.approx(f1_table, abs=0.002)
    # The paper's equation 5 without the factor 2 would not reproduce the table.
    assert abs(p * r / (p + r) - f1_table) > 0.002


def test_f1_from_precision_recall_vectorised_and_zero():
    np.testing.assert_allclose(M.f1_from_precision_recall([0.5, 0.0], [0.5, 0.0]), [0.5, 0.0])


def test_plain_metrics_match_sklearn_and_definitions(membership_data):
    y_true, y_pred, scores = membership_data
    assert M.f1(y_true, y_pred) == pytest.approx(skm.f1_score(y_true, y_pred))
    assert M.accuracy(y_true, y_pred) == pytest.approx(np.mean(y_true == y_pred))
    tp = np.sum((y_true == 1) & (y_pred == 1))
    tn = np.sum((y_true == 0) & (y_pred == 0))
    assert M.precision(y_true, y_pred) == pytest.approx(tp / y_pred.sum())
    assert M.recall(y_true, y_pred) == pytest.approx(tp / y_true.sum())
    assert M.specificity(y_true, y_pred) == pytest.approx(tn / np.sum(y_true == 0))
    assert M.cohen_kappa(y_true, y_pred) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    assert M.roc_auc(y_true, scores) == pytest.approx(skm.roc_auc_score(y_true, scores))


def test_tpr_at_fpr_counts_only_thresholds_within_the_fpr():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], dtype=float)
    assert M.tpr_at_fpr(y, s, 0.0) == pytest.approx(2 / 3)
    assert M.tpr_at_fpr(y, s, 1 / 7) == pytest.approx(1.0)
    assert np.isnan(M.tpr_at_fpr(np.ones(4, int), np.arange(4.0)))


def test_non_binary_labels_are_refused():
    with pytest.raises(ValueError, match="binary"):
        M.f1([0, 2, 1], [0, 1, 1])


def test_vectorised_bootstrap_equals_explicit_resamples(membership_data):
    y_true, y_pred, scores = membership_data
    n_boot = 40
    counts = M.bootstrap_counts(len(y_true), n_boot, seed=3)
    assert counts.shape == (n_boot, len(y_true)) and np.all(counts.sum(axis=1) == len(y_true))
    auc, tpr = M._weighted_roc_stats(y_true, scores, counts)
    for b in range(n_boot):
        index = np.repeat(np.arange(len(y_true)), counts[b].astype(int))
        yt, yp, sc = y_true[index], y_pred[index], scores[index]
        assert auc[b] == pytest.approx(skm.roc_auc_score(yt, sc))
        assert tpr[b] == pytest.approx(M.tpr_at_fpr(yt, sc, 0.01))
        cells = [np.sum((yt == a) & (yp == p)) for a, p in ((1, 1), (0, 1), (1, 0), (0, 0))]
        rates = M._rates_from_counts(*cells)
        assert rates["f1"] == pytest.approx(skm.f1_score(yt, yp))
        assert rates["kappa"] == pytest.approx(skm.cohen_kappa_score(yt, yp))
        assert rates["specificity"] == pytest.approx(M.specificity(yt, yp))


def test_vectorised_ari_nmi_equal_sklearn_on_resamples():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 5, 200))
    counts = M.bootstrap_counts(200, 30, seed=2)
    ari_b, nmi_b = M._weighted_ari_nmi(truth, pred, counts)
    for b in range(30):
        index = np.repeat(np.arange(200), counts[b].astype(int))
        assert ari_b[b] == pytest.approx(skm.adjusted_rand_score(truth[index], pred[index]))
        assert nmi_b[b] == pytest.approx(skm.normalized_mutual_info_score(truth[index], pred[index]))


def test_membership_report_values_cis_and_baselines(membership_data):
    y_true, y_pred, scores = membership_data
    report = M.membership_report(y_true, y_pred, scores, n_boot=500, seed=0)
    assert set(report.estimates) == {"f1", "accuracy", "precision", "recall", "specificity", "kappa", "roc_auc", "tpr_at_1pct_fpr"}
    for name, estimate in report.estimates.items():
        assert estimate.ci_low <= estimate.value <= estimate.ci_high, name
        assert estimate.ci_high - estimate.ci_low > 0, name
        assert estimate.n == 300
    assert report.estimates["f1"].value == pytest.approx(skm.f1_score(y_true, y_pred))
    prevalence = y_true.mean()
    all_used = report.baselines["all_used"]
    assert all_used["recall"] == 1 and all_used["precision"] == pytest.approx(prevalence)
    assert all_used["f1"] == pytest.approx(2 * prevalence / (1 + prevalence))
    assert all_used["kappa"] == 0 and all_used["specificity"] == 0
    assert report.baselines["all_not_used"]["f1"] == 0
    assert report.baselines["all_not_used"]["accuracy"] == pytest.approx(1 - prevalence)
    assert report.baselines["random"]["accuracy"] == pytest.approx(0.5)
    assert report.baselines["random"]["kappa"] == pytest.approx(0.0)
    assert report.baselines["random"]["roc_auc"] == 0.5
    # Same seed, same CI; other seed, other CI.
    again = M.membership_report(y_true, y_pred, scores, n_boot=500, seed=0)
    assert again.estimates["f1"] == report.estimates["f1"]
    other = M.membership_report(y_true, y_pred, scores, n_boot=500, seed=1)
    assert other.estimates["f1"].ci_low != report.estimates["f1"].ci_low


def test_bootstrap_ci_covers_a_known_mean():
    rng = np.random.default_rng(0)
    sample = rng.normal(10, 1, 400)
    low, high = M.bootstrap_ci(np.mean, sample, n_boot=400, seed=0)
    assert low < 10 < high and high - low < 0.4
    # It agrees with the vectorised path for accuracy.
    y_true, y_pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    loop = M.bootstrap_ci(M.accuracy, y_true, y_pred, n_boot=2000, seed=0)
    vec = M.membership_report(y_true, y_pred, n_boot=2000, seed=4).estimates["accuracy"]
    assert loop[0] == pytest.approx(vec.ci_low, abs=0.015) and loop[1] == pytest.approx(vec.ci_high, abs=0.015)


def test_report_format_and_frame(membership_data):
    y_true, y_pred, scores = membership_data
    report = M.membership_report(y_true, y_pred, scores, n_boot=100)
    frame = report.to_frame()
    assert list(frame.columns) == ["value", "ci_low", "ci_high", "n", "all_used", "all_not_used", "random"]
    text = report.format()
    assert "f1" in text and "95% CI" in text and "all_used" in text and f"{report.estimates['kappa'].value:.3f}" in text


def test_attribution_report_perfect_and_permuted_clusters():
    truth = np.repeat(["model_1", "model_2", "model_3"], 50)
    perfect = np.repeat([2, 0, 1], 50)  # cluster ids need not match label names
    report = M.attribution_report(truth, perfect, n_boot=200)
    assert report.estimates["ari"].value == pytest.approx(1.0)
    assert report.estimates["nmi"].ci_low == pytest.approx(1.0)
    assert report.baselines["single_cluster"] == {"ari": 0.0, "nmi": 0.0}
    table = report.tables["contingency"]
    assert table.shape == (3, 3) and table.to_numpy().sum() == 150 and table.loc["model_1", 2] == 50
    rng = np.random.default_rng(0)
    noisy = M.attribution_report(truth, rng.integers(0, 3, 150), n_boot=200)
    assert abs(noisy.estimates["ari"].value) < 0.1 and noisy.estimates["ari"].ci_low < 0 < noisy.estimates["ari"].ci_high + 0.05


def test_subset_accuracy_report():
    truth = np.array(["a"] * 60 + ["b"] * 40)
    pred = truth.copy()
    pred[:10] = "b"
    report = M.subset_accuracy_report(truth, pred, n_boot=300)
    assert report.estimates["accuracy"].value == pytest.approx(0.9)
    assert report.estimates["accuracy"].ci_low < 0.9 < report.estimates["accuracy"].ci_high
    assert report.baselines == {"majority_class": {"accuracy": 0.6}, "random": {"accuracy": 0.5}}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        M.membership_report([0, 1], [1])
    with pytest.raises(ValueError, match="equal length"):
        M.attribution_report([0, 1], [1])
    with pytest.raises(ValueError, match="scores"):
        M.membership_report([0, 1], [1, 0], scores=[0.1])


def test_chunked_bootstrap_matches_one_block(monkeypatch, membership_data):
    y_true, y_pred, scores = membership_data
    whole = M.membership_report(y_true, y_pred, scores, n_boot=300, seed=2)
    monkeypatch.setattr(M, "_CHUNK_CELLS", 7 * len(y_true))  # 7 resamples per chunk
    counts = M.bootstrap_counts(len(y_true), 300, seed=2)
    assert counts.shape == (300, 300)
    chunked = M.membership_report(y_true, y_pred, scores, n_boot=300, seed=2)
    for name, estimate in whole.estimates.items():
        # Different chunking draws different resamples, but the CIs agree closely.
        assert chunked.estimates[name].value == estimate.value
        assert chunked.estimates[name].ci_low == pytest.approx(estimate.ci_low, abs=0.05), name


def test_zero_resamples_gives_nan_intervals(membership_data):
    y_true, y_pred, scores = membership_data
    report = M.membership_report(y_true, y_pred, scores, n_boot=0)
    assert np.isnan(report.estimates["f1"].ci_low) and report.estimates["f1"].value == pytest.approx(M.f1(y_true, y_pred))
    assert np.isnan(M.attribution_report([0, 1, 1], [1, 0, 0], n_boot=0).estimates["ari"].ci_high)


def test_group_bootstrap_widens_the_ci_of_replicated_images_and_reduces_to_the_image_bootstrap():
    rng = np.random.default_rng(11)
    y = np.r_[np.ones(10), np.zeros(10)].astype(int)
    scores = y * 0.6 + rng.normal(size=20)
    pred = (scores > 0.3).astype(int)
    # each image five times (five slices of one scan): the image bootstrap takes them as 100 independent
    y5, s5, p5 = np.repeat(y, 5), np.repeat(scores, 5), np.repeat(pred, 5)
    scans = np.repeat(np.arange(20), 5)
    naive = M.membership_report(y5, p5, s5, n_boot=500).estimates["roc_auc"]
    grouped = M.membership_report(y5, p5, s5, n_boot=500, groups=scans).estimates["roc_auc"]
    few = M.membership_report(y, pred, scores, n_boot=500).estimates["roc_auc"]
    assert naive.value == grouped.value == pytest.approx(few.value)
    assert grouped.ci_high - grouped.ci_low > 1.8 * (naive.ci_high - naive.ci_low)
    assert grouped.ci_high - grouped.ci_low == pytest.approx(few.ci_high - few.ci_low, abs=0.08)
    singletons = M.membership_report(y, pred, scores, n_boot=300, groups=np.arange(20) * 7)
    plain = M.membership_report(y, pred, scores, n_boot=300)
    assert singletons.estimates["f1"].ci_low == plain.estimates["f1"].ci_low
    with pytest.raises(ValueError, match="one label per item"):
        M.membership_report(y, pred, scores, groups=np.arange(5))
