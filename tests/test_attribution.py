"""Generator attribution: clustering, label-free selection, seeded and supervised modes, visual fingerprints."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from synthscope.attribution import (
    ALGORITHMS,
    FingerprintClustering,
    SeededClustering,
    SubsetClassifier,
    ViewReducer,
    cluster_fingerprints,
    coassociation_consensus,
)


def _blobs(n_per: int, centres: np.ndarray, seed: int = 0, noise_dims: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.normal(size=(n_per, centres.shape[1])) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    if noise_dims:
        X = np.hstack([X, rng.normal(size=(len(X), noise_dims))])
    return X, y


CENTRES = np.array([[0, 0, 0, 0], [9, 0, 0, 0], [0, 9, 0, 0], [0, 0, 9, 0]], dtype=float)


def test_across_views_the_choice_follows_agreement_not_silhouette():
    """Two views see the generators; a third, tighter view (higher silhouette in its own space) groups the
    images by something else. Silhouettes of different spaces are not comparable: the label-free choice
    must follow the labelling the other stable candidates corroborate."""
    rng = np.random.default_rng(7)
    generator = np.repeat(np.arange(3), 60)
    content = rng.permutation(generator)                    # an unrelated grouping (e.g. anatomy)
    centres = np.eye(3) * 12
    views = {
        "fingerprint": centres[generator] + rng.normal(size=(180, 3)),
        "embedding": centres[generator] + rng.normal(size=(180, 3)),
        "content": centres[content] * 3 + rng.normal(size=(180, 3)) * 0.5,
    }
    model = FingerprintClustering(3, views=tuple(views), n_resamples=4).fit(views)
    table = model.selection_
    stable = table[table["agreement"].notna()]
    assert stable["view"].nunique() > 1                      # the tie-break had several spaces to compare
    content_best = table.loc[table["view"] == "content", "silhouette"].max()
    assert content_best > table.loc[table["view"] != "content", "silhouette"].max()   # silhouette alone would err
    assert model.chosen_["view"] in ("fingerprint", "embedding")
    assert adjusted_rand_score(generator, model.labels_) > 0.95
    assert "agreement" in model.describe()


def test_label_free_selection_reports_every_candidate_and_recovers_blobs():
    X, y = _blobs(40, CENTRES[:3])
    model = FingerprintClustering(3, n_resamples=4).fit({"toy": X})
    assert adjusted_rand_score(y, model.labels_) == pytest.approx(1.0)
    table = model.selection_
    assert set(table["method"]) == set(ALGORITHMS) and table["chosen"].sum() == 1
    assert {"stability", "silhouette"} <= set(table.columns)
    assert table["stability"].between(-1, 1).all()
    assert "chosen: view=toy" in model.describe()
    assert sorted(np.bincount(model.labels_)) == [40, 40, 40]
    assert np.bincount(model.labels_)[0] >= np.bincount(model.labels_)[-1]   # ids ordered by size


def test_in_one_view_stability_decides_and_the_silhouette_only_breaks_exact_ties():
    """Issue 20 item 4: a candidate 0.003 less stable but 0.0005 ahead in silhouette (bench v1's spectral vs
    Gaussian mixture under the old rule) no longer wins; the silhouette decides only between equal stabilities."""
    from synthscope.attribution.clustering import most_stable

    table = pd.DataFrame({"method": ["kmeans", "gmm", "ward", "spectral"], "stability": [0.917, 0.997, 0.963, 0.9972],
                          "silhouette": [0.4623, 0.4610, 0.4610, 0.4615]}, index=[5, 6, 7, 8])
    assert most_stable(table) == 8
    table["stability"] = [0.3, 0.1 + 0.2, 0.29, 0.3]            # 0.1 + 0.2 > 0.3 in floats: still a tie
    assert table["stability"].iloc[1] > 0.3
    assert most_stable(table) == 5                               # kmeans: the highest silhouette of the tied


def test_auto_in_one_view_chooses_the_most_stable_candidate():
    X, _ = _blobs(25, CENTRES * 0.35, seed=7)                    # overlapping blobs: the candidates differ
    model = FingerprintClustering(4, n_resamples=6).fit({"toy": X})
    table = model.selection_
    assert table["stability"].nunique() > 1
    assert table.loc[table["chosen"], "stability"].iloc[0] == table["stability"].max()
    assert "the most stable candidate (mean ARI over 6 resamples" in model.describe()


def test_selection_prefers_the_view_that_holds_the_clusters():
    X, y = _blobs(40, CENTRES[:3], seed=1)
    noise = np.random.default_rng(2).normal(size=X.shape)
    model = FingerprintClustering(3, views=("signal", "noise"), n_resamples=4).fit({"signal": X, "noise": noise})
    assert model.chosen_["view"] == "signal"
    assert adjusted_rand_score(y, model.labels_) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ALGORITHMS)
def test_each_algorithm_runs_alone(method):
    X, y = _blobs(30, CENTRES)
    model = FingerprintClustering(4, method=method).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.95
    assert len(model.selection_) == 1 and model.chosen_["method"] == method


def test_consensus_of_views():
    X, y = _blobs(30, CENTRES, seed=3)
    other = X[:, ::-1] * 3 + np.random.default_rng(4).normal(size=X.shape)
    model = FingerprintClustering(4, method="consensus", views=("a", "b"), n_resamples=3).fit({"a": X, "b": other})
    assert model.chosen_["method"] == "consensus"
    assert adjusted_rand_score(y, model.labels_) > 0.95
    assert adjusted_rand_score([0, 0, 1, 1], coassociation_consensus([np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])], 2)) == 1


def test_equal_block_weights_keep_a_small_informative_block_from_drowning():
    X, y = _blobs(40, CENTRES[:3, :2] * 0.8, seed=5, noise_dims=400)
    blocks = {"signal": slice(0, 2), "noise": slice(2, 402)}
    weighted = ViewReducer(4, blocks=blocks).fit_transform(X)
    plain = ViewReducer(4).fit_transform(X)
    from synthscope.attribution import cluster_once

    assert adjusted_rand_score(y, cluster_once(weighted, 3, "kmeans")) > 0.8
    assert adjusted_rand_score(y, cluster_once(plain, 3, "kmeans")) < 0.5


def test_transform_and_predict_work_in_the_space_the_labels_were_found_in():
    """Issue 22, one feature space: the dashboard measures and places new rows where the clustering was found."""
    X, y = _blobs(40, CENTRES[:3], seed=1)
    noise = np.random.default_rng(7).normal(size=X.shape)
    model = FingerprintClustering(3, method="kmeans", views=("signal", "noise")).fit(
        {"signal": X, "noise": noise})
    chosen = model.chosen_views_
    assert chosen == ["signal"] and adjusted_rand_score(y, model.labels_) == pytest.approx(1.0)
    np.testing.assert_allclose(model.transform({"signal": X, "noise": noise}), model.reduced_[chosen[0]],
                               rtol=1e-12, atol=1e-12)
    assert model.space_description() == "signal, kmeans, 4 components"   # 8 asked, capped by the 4 features
    new, new_y = _blobs(10, CENTRES[:3], seed=8)
    predicted = model.predict({"signal": new, "noise": np.random.default_rng(9).normal(size=new.shape)})
    assert adjusted_rand_score(new_y, predicted) == pytest.approx(1.0)
    assert np.array_equal(model.predict({"signal": X, "noise": noise}), model.labels_)   # k-means: nearest mean
    with pytest.raises(ValueError, match="were not given"):
        model.transform({"other": X})


def test_bad_input_gives_one_clear_error():
    X, _ = _blobs(10, CENTRES[:2])
    with pytest.raises(ValueError, match="unknown method"):
        FingerprintClustering(2, method="dbscan").fit(X)
    with pytest.raises(ValueError, match="k must be"):
        FingerprintClustering(50).fit(X)
    with pytest.raises(ValueError, match="one row per image"):
        FingerprintClustering(2, views=("a", "b")).fit({"a": X, "b": X[:5]})
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        FingerprintClustering(2).fit(bad)


def test_seeded_clustering_finds_the_unseen_generator():
    X_dev, y_dev = _blobs(20, CENTRES[:3], seed=6)
    names = np.array(["dcgan", "ddpm", "vae"])[y_dev]
    X_test, y_test = _blobs(25, CENTRES, seed=7)      # the fourth generator never appears in dev
    model = SeededClustering(4).fit(X_dev, names, X_test)
    assert adjusted_rand_score(y_test, model.labels_) > 0.95
    named = {model.cluster_names_[int(np.bincount(model.labels_[y_test == g]).argmax())] for g in range(4)}
    assert named == {"dcgan", "ddpm", "vae", "new_0"}
    with pytest.raises(ValueError, match="k must be at least"):
        SeededClustering(2).fit(X_dev, names, X_test)


def test_subset_classifier_2025():
    X, y = _blobs(30, CENTRES[:3], seed=8)
    subsets = np.array(["subset_a", "subset_b", "subset_c"])[y]
    Xt, yt = _blobs(10, CENTRES[:3], seed=9)
    model = SubsetClassifier().fit(X, subsets)
    assert (model.predict(Xt) == np.array(["subset_a", "subset_b", "subset_c"])[yt]).mean() > 0.95
    with pytest.raises(ValueError, match="at least two subsets"):
        SubsetClassifier().fit(X[:5], subsets[:5])


def test_cluster_fingerprints_point_at_the_checkerboard_frequency():
    rng = np.random.default_rng(10)
    images = np.clip(rng.normal(100, 5, size=(16, 32, 32)), 0, 255)
    checker = (np.indices((32, 32)).sum(axis=0) % 2) * 8.0
    images[8:] += checker
    labels = np.repeat([0, 1], 8)
    fingerprints = cluster_fingerprints(images.astype(np.uint8), labels, top=3)
    assert set(fingerprints) == {0, 1}
    marked = fingerprints[1]
    assert marked.n_images == 8 and marked.mean_residual.shape == (32, 32)
    assert marked.mean_log_spectrum.shape == (32, 32)
    top = marked.distinctive_frequencies.iloc[0]
    assert abs(top["fy"]) == 0.5 and abs(top["fx"]) == 0.5 and top["difference"] > 0
    assert abs(marked.mean_residual).mean() > 2 * abs(fingerprints[0].mean_residual).mean()


def test_default_pipeline_on_the_v1_benchmark(shared_dir):
    """Regression guard: fingerprint features + label-free choice separate v1's four generators (k=4).

    The defaults were fixed before scoring (literature + dev folders + label-free selection); the test
    labels only score the result here.
    """
    from PIL import Image

    from synthscope.data import read_ground_truth
    from synthscope.features import get_extractor

    root = shared_dir / "bench" / "v1" / "subtask2"
    paths = sorted((root / "test" / "generated_unknown").glob("*.png"))
    images = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
    truth = read_ground_truth(root / "test_ground_truth.csv").loc[[p.stem for p in paths]].to_numpy()
    features = get_extractor("fingerprint").transform(images)
    model = FingerprintClustering(4).fit({"fingerprint": features})
    assert adjusted_rand_score(truth, model.labels_) > 0.9
    table = pd.crosstab(truth, model.labels_)
    assert (table.max(axis=1) >= 130).all()      # every generator has its own dominant cluster


@pytest.fixture(scope="module")
def small_bench(shared_dir, tmp_path_factory):
    """A 40-image copy of v1 sub-task 2 (10 per generator) in the 2024 layout, with its ground truth."""
    import shutil

    from synthscope.data import read_ground_truth

    source = shared_dir / "bench" / "v1" / "subtask2"
    truth = read_ground_truth(source / "test_ground_truth.csv").astype(str)
    root = tmp_path_factory.mktemp("st2")
    (root / "test" / "generated_unknown").mkdir(parents=True)
    picked = pd.concat([truth[truth == model].sort_index().iloc[:10] for model in sorted(truth.unique())])
    for image_id in picked.index:
        shutil.copy(source / "test" / "generated_unknown" / f"{image_id}.png", root / "test" / "generated_unknown")
    picked.rename("model").rename_axis("image_id").to_csv(root / "truth.csv")
    for model in ("model_1", "model_2", "model_3"):
        (root / "dev" / model).mkdir(parents=True)
        for path in sorted((source / "dev" / model).glob("*.png"))[:10]:
            shutil.copy(path, root / "dev" / model)
    return root


def test_cli_attribute_writes_a_valid_run_and_scores_it(small_bench, tmp_path):
    from typer.testing import CliRunner

    from synthscope.cli import app
    from synthscope.submission import read_run

    out = tmp_path / "run.csv"
    result = CliRunner().invoke(app, ["attribute", str(small_bench / "test"), "--k", "4", "--out", str(out),
                                      "--truth", str(small_bench / "truth.csv")])
    assert result.exit_code == 0, result.output
    assert "chosen: view=fingerprint" in result.output and "ari" in result.output
    run = read_run(out, "attribution")
    assert len(run) == 40 and set(run) == {0, 1, 2, 3}

    seeded = CliRunner().invoke(app, ["attribute", str(small_bench / "test"), "--k", "4", "--out", str(out),
                                      "--dev", str(small_bench / "dev")])
    assert seeded.exit_code == 0, seeded.output
    assert "seeded by 3 dev generators" in seeded.output and "new_0" in seeded.output


def test_cli_attribute_and_project_refuse_bad_input(small_bench, tmp_path):
    from typer.testing import CliRunner

    from synthscope.cli import app

    runner = CliRunner()
    no_k = runner.invoke(app, ["attribute", str(small_bench / "test"), "--out", str(tmp_path / "r.csv")])
    assert no_k.exit_code == 2 and "--k is required" in no_k.output
    assert not (tmp_path / "r.csv").exists()
    bad_method = runner.invoke(app, ["project", str(small_bench / "test"), "--method", "mds"])
    plain = re.sub(r"[│╭╮╰╯─\s]+", " ", bad_method.output)    # typer's boxed error, unwrapped
    assert bad_method.exit_code == 2 and "'mds' is not one of 'umap', 'tsne', 'pca'" in plain
    ok = runner.invoke(app, ["project", str(small_bench / "test"), "--method", "pca"])
    assert ok.exit_code == 0 and "PCA (2 components): projection of 40 fingerprint embeddings" in ok.output
