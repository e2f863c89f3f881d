"""Per-image score files (`membership --scores`): ids, ordering, ties, bad paths; and the plain story
`membership` prints (which test gates, what the label-free check asks, what to conclude)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthscope.cli import app
from synthscope.membership import LeakageVerdict, within_group_rank, with_baseline_caveat
from synthscope.score_files import read_score_file, validate_score_file, write_score_file
from synthscope.submission import SubmissionError, read_run
from test_cli_membership import make_tree

runner = CliRunner()


def _table(scores, ids=None, group="folder_1"):
    ids = ids or [f"real_{i:03d}" for i in range(len(scores))]
    return pd.DataFrame({"image_id": ids, "group": group, "column": "images:patches", "score": scores,
                         "rank": within_group_rank(scores)})


def test_ranks_put_the_most_likely_used_first_and_ties_share_the_best_rank():
    np.testing.assert_array_equal(within_group_rank([0.1, 0.9, 0.5, 0.9]), [4, 1, 3, 1])


def test_the_file_is_ordered_by_group_then_rank_and_reads_back(tmp_path):
    table = pd.concat([_table([0.2, 0.8, 0.8, -1.5], group="folder_1"),
                       _table([3.0, 1.0], ids=["b_1", "b_2"], group="folder_2")], ignore_index=True)
    path = write_score_file(tmp_path / "scores.csv", table, expected_ids=table["image_id"])
    lines = path.read_text().splitlines()
    assert lines[0] == "image_id,group,column,score,rank"
    assert lines[1].startswith("real_001,folder_1,images:patches,") and lines[5].startswith("b_1,folder_2,")
    assert [line.split(",")[0] for line in lines[1:]] == ["real_001", "real_002", "real_000", "real_003", "b_1", "b_2"]
    assert lines[1].endswith(",1") and lines[2].endswith(",1") and lines[3].endswith(",3")   # tie at 0.8
    back = read_score_file(path)
    assert back["score"].tolist() == pytest.approx([0.8, 0.8, 0.2, -1.5, 3.0, 1.0])
    assert validate_score_file(path, expected_ids=table["image_id"]).ok
    assert back["group"].tolist()[-1] == "folder_2" and set(back["column"]) == {"images:patches"}


def test_a_score_file_of_the_old_three_column_header_still_reads(tmp_path):
    (tmp_path / "old.csv").write_text("image_id,score,rank\na,0.5,1\nb,0.1,2\n")
    back = read_score_file(tmp_path / "old.csv")
    assert list(back.columns) == ["image_id", "group", "column", "score", "rank"]
    assert back["group"].tolist() == ["", ""] and validate_score_file(tmp_path / "old.csv").ok


@pytest.mark.parametrize("change, message", [
    (lambda t: t.assign(image_id=["a", "a", "b"]), "appear more than once"),
    (lambda t: t.assign(score=[1.0, np.nan, 0.0]), "finite number"),
    (lambda t: t.assign(rank=[0, 1, 2]), "whole number from 1 to 3"),
    (lambda t: t.drop(columns="rank"), "missing column(s) rank"),
    (lambda t: t.assign(group=["a,b"] * 3), "group holds a comma"),
])
def test_an_invalid_table_is_refused_and_nothing_is_written(tmp_path, change, message):
    with pytest.raises(SubmissionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_score_file(tmp_path / "s.csv", change(_table([0.3, 0.2, 0.1], ids=["a", "b", "c"])))
    assert not (tmp_path / "s.csv").exists()


def test_missing_and_foreign_ids_are_named(tmp_path):
    table = _table([0.3, 0.2], ids=["a", "x"])
    with pytest.raises(SubmissionError, match="not real images of the data set, e.g. x.*have no score, e.g. b"):
        write_score_file(tmp_path / "s.csv", table, expected_ids=["a", "b"])
    (tmp_path / "bad.csv").write_text("id,value\na,1\n")
    check = validate_score_file(tmp_path / "bad.csv")
    assert not check.ok and "header must be image_id,group,column,score,rank" in check.errors[0]
    assert not validate_score_file(tmp_path / "absent.csv").ok


@pytest.fixture(scope="module")
def leak_tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("leak"), leak=True)


def test_membership_writes_the_scores_beside_the_run_and_tells_one_story(leak_tree, tmp_path):
    dev, test, truth = leak_tree
    out, scores = tmp_path / "run.csv", tmp_path / "scores.csv"
    result = runner.invoke(app, ["membership", str(test), "--dev", str(dev), "--space", "pixels-norm",
                                 "--out", str(out), "--scores", str(scores), "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    table = read_score_file(scores)
    run = read_run(out, "membership")
    assert sorted(table["image_id"]) == sorted(run.index)
    assert validate_score_file(scores, expected_ids=run.index).ok
    # the run is the score at the threshold: every image called used ranks above every one called not used
    ranks = table.set_index("image_id")["rank"]
    assert ranks[run[run == 1].index].max() < ranks[run[run == 0].index].min()
    assert (np.diff(table["rank"]) >= 0).all()
    # one story: what gates the predictions, what the label-free check asks, what to conclude
    text = " ".join(result.output.split())
    assert "Gate (decides whether the predictions mean anything): on the labelled dev group model_1" in text
    assert "Label-free check on folder_1 (a different question)" in text and "Conclusion:" in text


def test_bad_score_paths_fail_before_any_computing(leak_tree, tmp_path):
    dev, test, _ = leak_tree
    (tmp_path / "a_folder").mkdir()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for bad, message in ((tmp_path / "a_folder", "is a folder"), (blocker / "sub" / "s.csv", "--scores")):
        result = runner.invoke(app, ["membership", str(test), "--dev", str(dev), "--out", str(tmp_path / "r.csv"),
                                     "--scores", str(bad)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "embed" not in result.output, "the path is checked before anything is computed"
    assert not (tmp_path / "r.csv").exists()


def _verdict(auc, p, significant=True):
    return LeakageVerdict(significant, p, auc, "one-sided Mann-Whitney U", "significant leakage.")


def test_a_confounded_split_gets_a_caution_even_when_the_score_is_stronger():
    strong = _verdict(0.97, 1e-6)
    confounded = with_baseline_caveat(strong, ("px:pool_baseline", _verdict(0.73, 0.004)), n_baselines=4)
    assert "CAUTION: the sampling of the real images alone separates" in confounded.message
    assert "Bonferroni x4" in confounded.message and confounded.significant
    # the same baseline is not significant as the best of 20 columns: no caution, just its AUC and p
    chance = with_baseline_caveat(strong, ("px:pool_baseline", _verdict(0.73, 0.004)), n_baselines=20)
    assert "CAUTION" not in chance.message and "not significant" in chance.message
    matched = with_baseline_caveat(strong, ("px:pool_baseline", _verdict(0.98, 1e-6)), n_baselines=4)
    assert "as high as this score" in matched.message


def test_a_finished_run_is_cached_by_content_options_and_code(leak_tree, tmp_path):
    """The dashboard reads a run back on every page load; it must be the run a fresh call gives."""
    from synthscope.data import load_dataset
    from synthscope.membership import MembershipOptions, run_membership, run_membership_cached
    from synthscope.membership.pipeline import run_key

    dev, test, _ = leak_tree
    dev_set, test_set = load_dataset(dev), load_dataset(test)
    options = MembershipOptions(spaces=("pixels-norm",))
    first, cached = run_membership_cached(test_set, dev_set, options, cache_dir=tmp_path)
    again, cached_again = run_membership_cached(test_set, dev_set, options, cache_dir=tmp_path)
    assert (cached, cached_again) == (False, True)
    fresh = run_membership(test_set, dev_set, options, cache=None)
    pd.testing.assert_series_equal(again.predictions, fresh.predictions)
    pd.testing.assert_frame_equal(again.scores_table(), fresh.scores_table())
    assert again.groups[0].verdict == fresh.groups[0].verdict
    other, cached_other = run_membership_cached(test_set, dev_set, MembershipOptions(spaces=("pixels",)),
                                                cache_dir=tmp_path)
    assert not cached_other and len(list((tmp_path / "runs").glob("membership-*.pkl"))) == 2
    stored = tmp_path / "runs" / f"membership-{run_key(test_set, dev_set, options)}.pkl"
    stored.write_bytes(b"truncated")                     # a damaged file is recomputed, not trusted
    rebuilt, was_cached = run_membership_cached(test_set, dev_set, options, cache_dir=tmp_path)
    assert not was_cached and rebuilt.predictions.equals(fresh.predictions)
