"""Issue 20: open-set attribution ("none of these"), calibrated confidence and the per-image scores file.

Synthetic checks of the estimators' contracts, then bench v1 as a 2025 tree whose dev folders never
show model_4 (the real case the issue's done-when names)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from synthscope.attribution import NoveltyScorer, SubsetClassifier, assignment_margin, fit_temperature
from synthscope.metrics import calibration_report, expected_calibration_error, open_set_report


def _blobs(n_per, centres, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.normal(size=(n_per, centres.shape[1])) for c in centres])
    return X, np.repeat([f"g{i}" for i in range(len(centres))], n_per)


def test_novelty_flags_an_unseen_blob_and_few_images_of_known_ones():
    centres = np.zeros((4, 6))
    centres[np.arange(4), np.arange(4)] = 12.0
    X, y = _blobs(60, centres)
    seen = y != "g3"
    scorer = NoveltyScorer(n_components=6, alpha=0.05).fit(X[seen][::2], y[seen][::2])
    assert clone(scorer).get_params() == scorer.get_params()          # params only in __init__
    p = scorer.p_values(X)
    assert ((p > 0) & (p <= 1)).all()
    flagged = scorer.predict(X)
    assert flagged[~seen].all()
    held_out_seen = np.flatnonzero(seen)[1::2]          # known classes, images the scorer never saw
    assert flagged[held_out_seen].mean() <= 0.15        # conformal: about alpha, with sampling noise
    novelty = scorer.novelty(X)
    assert novelty[~seen].min() > np.median(novelty[held_out_seen])
    report = open_set_report(~seen, novelty, flagged, n_boot=200)
    assert report.estimates["novelty_auroc"].value == 1.0 and report.baselines["random_score"]["novelty_auroc"] == 0.5


def test_novelty_refuses_a_class_with_one_image_and_a_bad_level():
    X, y = _blobs(5, np.eye(3) * 5)
    with pytest.raises(ValueError, match="single dev image"):
        NoveltyScorer().fit(np.vstack([X, X[:1] + 9]), np.append(y, "lonely"))
    with pytest.raises(ValueError, match="alpha"):
        NoveltyScorer(alpha=1.5).fit(X, y)


def test_temperature_undoes_a_known_sharpening():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 3))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    codes = np.array([rng.choice(3, p=row) for row in probabilities])
    assert fit_temperature(logits * 4.0, codes) == pytest.approx(4.0, rel=0.1)
    # an underconfident model is left as it is: calibration only softens
    assert fit_temperature(logits / 4.0, codes) == pytest.approx(1.0, abs=1e-3)
    assert fit_temperature(logits / 4.0, codes, bounds=(0.05, 100.0)) == pytest.approx(0.25, rel=0.1)


def test_expected_calibration_error_by_hand_and_its_report():
    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0, 1, 0])
    # bin of 0.95: accuracy 0.75, gap 0.20 on 4 images; bin of 0.55: accuracy 0.5, gap 0.05 on 2
    assert expected_calibration_error(confidence, correct) == pytest.approx((4 * 0.20 + 2 * 0.05) / 6)
    report = calibration_report(confidence, correct, n_boot=200)
    assert report.estimates["ece"].ci_low <= report.estimates["ece"].value <= report.estimates["ece"].ci_high
    assert report.tables["reliability"]["images"].sum() == 6


def test_calibration_keeps_the_predictions_and_lowers_an_overconfident_ece():
    # overlapping classes: the logistic regression on 40 noise dims is overconfident out of fold
    rng = np.random.default_rng(1)
    X, y = _blobs(80, np.array([[0.0] * 4, [1.2] * 4, [-1.2, 1.2, -1.2, 1.2]]))
    X = np.hstack([X, rng.normal(size=(len(X), 40))])
    order = rng.permutation(len(X))
    train, test = order[:160], order[160:]
    raw = SubsetClassifier(calibration=None).fit(X[train], y[train])
    calibrated = SubsetClassifier().fit(X[train], y[train])
    assert (raw.predict(X[test]) == calibrated.predict(X[test])).all()
    assert calibrated.temperature_ > 1.0                 # it softens an overconfident model
    correct = raw.predict(X[test]) == y[test]
    before = expected_calibration_error(raw.predict_proba(X[test]).max(axis=1), correct)
    after = expected_calibration_error(calibrated.predict_proba(X[test]).max(axis=1), correct)
    assert after < before


def test_assignment_margin_is_one_at_a_centre_and_falls_towards_the_other_cluster():
    X = np.array([[0.0], [0.0], [10.0], [10.0], [5.0]])
    margin = assignment_margin(X, [0, 0, 1, 1, 0])      # centres 5/3 and 10
    assert margin[2] == 1.0
    assert margin[4] == pytest.approx(1 - (5 - 5 / 3) / 5)
    assert margin[0] > margin[4]
    assert (assignment_margin(X, [0, 0, 0, 0, 0]) == 1.0).all()


# -- bench v1 as a 2025 tree, model_4 held out of dev -----------------------------------------------

@pytest.fixture(scope="module")
def open_set_run(tmp_path_factory, shared_dir):
    from synthscope.attribution import run_attribution
    from synthscope.benchmark.open_set_tree import build_open_set_tree
    from synthscope.data import load_dataset

    root, truth = build_open_set_tree(shared_dir / "bench" / "v1" / "subtask2", shared_dir / "data" / "iqoth256",
                                      tmp_path_factory.mktemp("v1_2025") / "tree")
    dev, test = load_dataset(root / "dev"), load_dataset(root / "test")
    return root, truth, dev, run_attribution(test, dev)


def test_v1_unseen_generator_is_flagged_and_seen_ones_are_assigned(open_set_run):
    from synthscope.benchmark.open_set_tree import UNSEEN
    from synthscope.metrics import subset_accuracy_report

    _, truth, _, run = open_set_run
    assert run.kind == "subset" and run.none_of_these is not None
    y = truth.loc[run.labels.index].to_numpy()
    unseen = y == UNSEEN
    report = open_set_report(unseen, run.novelty.to_numpy(), run.none_of_these.to_numpy(), n_boot=200)
    assert report.estimates["novelty_auroc"].value >= 0.95
    assert report.estimates["seen_flagged"].value <= 0.05
    assert report.estimates["unseen_flagged"].value >= 0.9
    accuracy = subset_accuracy_report(y[~unseen], run.labels.to_numpy()[~unseen], n_boot=200)
    assert accuracy.estimates["accuracy"].value >= 0.95
    assert any("none of these" in line for line in run.description)


def test_v1_dev_cross_validation_measures_calibration(open_set_run):
    from synthscope.attribution import cross_validated_subsets

    _, _, dev, _ = open_set_run
    cv = cross_validated_subsets(dev, n_boot=200)
    assert cv.calibration.estimates["ece"].value <= 0.05
    assert {"confidence", "confidence_uncalibrated"} <= set(cv.predictions.columns)
    assert cv.calibration_uncalibrated is not None


def test_scores_table_has_one_row_per_image_in_run_order(open_set_run):
    _, _, _, run = open_set_run
    table = run.scores_table()
    assert list(table.columns) == ["image_id", "prediction", "confidence", "novelty"]
    assert list(table["image_id"]) == list(run.labels.index)
    assert np.isfinite(table[["confidence", "novelty"]].to_numpy()).all()
    assert isinstance(table, pd.DataFrame)


def test_label_free_scores_are_the_margin_and_the_outlier_score(open_set_run, tmp_path):
    from synthscope.attribution import AttributionOptions, run_attribution
    from synthscope.data import load_dataset
    from synthscope.score_files import write_attribution_scores

    root, _, _, _ = open_set_run
    run = run_attribution(load_dataset(root / "test"), options=AttributionOptions(k=4, method="kmeans"))
    assert run.none_of_these is None                    # no dev: nothing to be "none of"
    table = run.scores_table()
    assert table["confidence"].between(0, 1).all() and (table["novelty"] > 0).all()
    path = write_attribution_scores(tmp_path / "scores.csv", table)
    lines = path.read_text().splitlines()
    assert lines[0] == "image_id,prediction,confidence,novelty" and len(lines) == len(run.labels) + 1
    assert lines[1].split(",")[:2] == [str(run.labels.index[0]), str(run.labels.iloc[0])]
