"""`synthscope info / validate / evaluate` on fixture trees and on the real benchmark."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from layout_factory import make_layout, write_garbage
from synthscope.commands import data as data_commands
from synthscope.data import load_dataset
from synthscope.submission import expected_ids, write_attribution_run, write_membership_run


@pytest.fixture(scope="module")
def app():
    # Only this area's commands, so a half-written module elsewhere cannot break these tests.
    application = typer.Typer()
    data_commands.register(application)
    return application


runner = CliRunner()


def test_info_prints_layout_counts_and_report(app, tmp_path):
    root = make_layout(tmp_path, "2024-st1-dev", n=3)
    write_garbage(root / "model_1" / "generated" / "broken.png")
    result = runner.invoke(app, ["info", str(root)])
    assert result.exit_code == 0, result.output
    assert "layout: 2024-st1-dev" in result.output
    assert "images: 18" in result.output and "generated: 6" in result.output and "real: 12" in result.output
    assert "model_2" in result.output and "not_used" in result.output
    assert "broken.png" in result.output and "not a readable image" in result.output


def test_info_on_a_bad_folder_is_one_clear_error(app, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["info", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "error:" in result.output and "2024-st1-dev" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["info", str(tmp_path), "--size-policy", "stretch"])
    assert result.exit_code == 2 and "--size-policy" in result.output


def test_info_on_a_2025_subtask2_root_names_the_data_sets_it_holds(app, tmp_path):
    """It once said 'looks like a 2024 sub-task 1 tree (one folder per model)'."""
    import shutil

    root = tmp_path / "st2"
    root.mkdir()
    shutil.move(str(make_layout(tmp_path / "a", "2025-st2-dev", n=2)), str(root / "dev"))
    shutil.move(str(make_layout(tmp_path / "b", "2025-st2-test", n=2)), str(root / "test"))
    result = runner.invoke(app, ["info", str(root)])
    assert result.exit_code == 2
    assert "2024 sub-task 1" not in result.output and "one folder per model" not in result.output
    assert "holds data sets, not one: dev/ (2025-st2-dev), test/ (2024-st2-test or 2025-st2-test)" in result.output
    assert runner.invoke(app, ["info", str(root / "dev")]).exit_code == 0


def test_info_with_manifest_and_forced_layout(app, tmp_path):
    from layout_factory import write_manifest_tree

    root, csv = write_manifest_tree(tmp_path, n=2)
    result = runner.invoke(app, ["info", str(root), "--manifest", str(csv)])
    assert result.exit_code == 0, result.output
    assert "layout: manifest" in result.output and "gan_a" in result.output
    st2 = make_layout(tmp_path, "2025-st2-test", n=2)
    result = runner.invoke(app, ["info", str(st2), "--layout", "2025-st2-test"])
    assert result.exit_code == 0 and "layout: 2025-st2-test" in result.output


def test_validate_good_and_bad_runs(app, tmp_path):
    root = make_layout(tmp_path, "2024-st1-test", n=3)
    dataset = load_dataset(root)
    ids = expected_ids(dataset, "membership")
    run = write_membership_run(tmp_path / "run.csv", pd.Series([0, 1] * 3, index=ids))
    result = runner.invoke(app, ["validate", str(run), "--dataset", str(root)])
    assert result.exit_code == 0, result.output
    assert "VALID: 6 line(s)" in result.output
    run.write_text("\n".join(f"{i},1" for i in ids[:-1]) + "\nimage_x,1")
    result = runner.invoke(app, ["validate", str(run), "--dataset", str(root)])
    assert result.exit_code == 1
    assert "INVALID" in result.output and ids[-1] in result.output and "image_x" in result.output


def test_validate_attribution_with_k(app, tmp_path):
    root = make_layout(tmp_path, "2024-st2-test", n=3)
    ids = expected_ids(load_dataset(root), "attribution")
    run = write_attribution_run(tmp_path / "clusters.csv", pd.Series([0, 1, 2] * 2, index=ids), k=3)
    assert runner.invoke(app, ["validate", str(run), "--dataset", str(root), "--k", "3"]).exit_code == 0
    result = runner.invoke(app, ["validate", str(run), "--dataset", str(root), "--k", "4"])
    assert result.exit_code == 1 and "never used" in result.output
    assert runner.invoke(app, ["validate", str(run), "--dataset", str(root), "--k", "4", "--allow-unused-clusters"]).exit_code == 0


def test_evaluate_membership_prints_metrics_cis_and_baselines(app, tmp_path):
    ids = [f"r{i}" for i in range(40)]
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,used\n" + "\n".join(f"{i},{n % 2}" for n, i in enumerate(ids)))
    perfect = write_membership_run(tmp_path / "perfect.csv", pd.Series([n % 2 for n in range(40)], index=ids))
    result = runner.invoke(app, ["evaluate", str(perfect), "--truth", str(truth), "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    for metric in ("f1", "accuracy", "precision", "recall", "specificity", "kappa"):
        assert metric in result.output
    assert "1.000  [1.000, 1.000]" in result.output
    assert "all_used" in result.output and "all_not_used" in result.output and "random" in result.output
    assert "is above the best trivial baseline" in result.output


def test_evaluate_attribution_and_mismatched_ids(app, tmp_path):
    ids = [f"g{i}" for i in range(30)]
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,model\n" + "\n".join(f"{i},model_{n % 3}" for n, i in enumerate(ids)))
    run = write_attribution_run(tmp_path / "run.csv", pd.Series([(n + 1) % 3 for n in range(30)], index=ids), k=3)
    result = runner.invoke(app, ["evaluate", str(run), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "ari" in result.output and "nmi" in result.output and "single_cluster" in result.output and "contingency" in result.output
    assert "ARI 1.000: above" in result.output
    partial = write_attribution_run(tmp_path / "partial.csv", pd.Series([0, 1, 2] * 3, index=ids[:9]), k=3)
    result = runner.invoke(app, ["evaluate", str(partial), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 1 and "21 expected id(s) missing" in result.output and "scored on 9 images" in result.output


def test_evaluate_subset_run(app, tmp_path):
    ids = [f"g{i}" for i in range(20)]
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,subset\n" + "\n".join(f"{i},subset_{'a' if n < 12 else 'b'}" for n, i in enumerate(ids)))
    run = tmp_path / "run.csv"
    run.write_text("\n".join(f"{i},subset_a" for i in ids))
    result = runner.invoke(app, ["evaluate", str(run), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "subset run" in result.output and "accuracy           0.600" in result.output
    assert "not above the majority-class baseline (0.600)" in result.output


def test_evaluate_refuses_wrong_truth_kind_and_missing_run(app, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,model\na,model_1\n")
    run = tmp_path / "run.csv"
    run.write_text("a,1")
    result = runner.invoke(app, ["evaluate", str(run), "--truth", str(truth), "--kind", "membership"])
    assert result.exit_code == 2 and "not sub-task 1 ground truth" in result.output
    result = runner.invoke(app, ["evaluate", str(tmp_path / "none.csv"), "--truth", str(truth)])
    assert result.exit_code == 2 and "not found" in result.output


def test_evaluate_reads_truth_columns_by_name(app, tmp_path):
    ids = [f"r{i}" for i in range(40)]
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,extra,used\n" + "\n".join(f"{i},{'x' if n < 20 else 'y'},{n % 2}" for n, i in enumerate(ids)))
    perfect = write_membership_run(tmp_path / "perfect.csv", pd.Series([n % 2 for n in range(40)], index=ids))
    result = runner.invoke(app, ["evaluate", str(perfect), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "membership run" in result.output and "is above the best trivial baseline" in result.output
    truth.write_text("image_id,used\n" + "\n".join(f"{i},{'yes' if n % 2 else 'no'}" for n, i in enumerate(ids)))
    result = runner.invoke(app, ["evaluate", str(perfect), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 2 and "must hold 0/1" in result.output and "ari" not in result.output
    truth.write_text("used,image_id\n" + "\n".join(f"{n % 2},{i}" for n, i in enumerate(ids)))   # named: order is free
    assert runner.invoke(app, ["evaluate", str(perfect), "--truth", str(truth), "--n-boot", "100"]).exit_code == 0
    truth.write_text("\n".join(f"{n % 2},{i}" for n, i in enumerate(ids)))   # unnamed and swapped
    result = runner.invoke(app, ["evaluate", str(perfect), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 2 and "swapped" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "bare-cr"])
def test_truth_and_run_files_count_their_rows_whatever_the_line_ends(app, tmp_path, line_end):
    """24 ids with old Mac line ends (bare CR) are 24 rows, not 48 or 1."""
    ids = [f"r{i}" for i in range(24)]
    truth = tmp_path / "truth.csv"
    truth.write_bytes(line_end.join(["image_id,used"] + [f"{i},{n % 2}" for n, i in enumerate(ids)]).encode() + line_end.encode())
    run = tmp_path / "run.csv"
    run.write_bytes(line_end.join(f"{i},{n % 2}" for n, i in enumerate(ids)).encode())
    result = runner.invoke(app, ["evaluate", str(run), "--truth", str(truth), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert f"membership run, 24 lines; ground truth {truth}: 24 ids" in result.output
    assert "scored on 24 images" in result.output and "1.000  [1.000, 1.000]" in result.output


def _organisers_2023_tree(tmp_path):
    """A 2025 sub-task 1 test tree whose 200 real ids are those of the organisers' 2023 validator."""
    from layout_factory import write_png

    root = tmp_path / "st1_test"
    for n in range(1, 201):
        write_png(root / "real_unknown" / f"real_unknown_{n:04d}.png", np.full((256, 256), n, np.uint8))
    write_png(root / "generated" / "generated_0001.png", np.zeros((256, 256), np.uint8))
    return root


def test_validate_accepts_what_the_organisers_accept(app, tmp_path):
    from pathlib import Path

    runs = Path(__file__).parent / "data" / "organisers_2023"
    root = _organisers_2023_tree(tmp_path)
    for name in ("00_1_OK.csv", "00_2_OK.csv"):
        result = runner.invoke(app, ["validate", str(runs / name), "--dataset", str(root), "--kind", "membership"])
        assert result.exit_code == 0, result.output
        assert "VALID: 200 line(s)" in result.output and "warning: spaces around an id or a value" in result.output
    result = runner.invoke(app, ["validate", str(runs / "04_2_score_int_greater_than_1.csv"), "--dataset", str(root)])
    assert result.exit_code == 1 and "label '2'" in result.output


def test_validate_attribution_without_k_needs_0_to_k_minus_1(app, tmp_path):
    root = make_layout(tmp_path, "2024-st2-test", n=4)
    ids = expected_ids(load_dataset(root), "attribution")
    run = tmp_path / "run.csv"
    for clusters in ([1, 2, 3, 4], [0, 1, 2, 5]):
        run.write_text("\n".join(f"{i},{c}" for i, c in zip(ids, clusters * 2)))
        result = runner.invoke(app, ["validate", str(run), "--dataset", str(root)])
        assert result.exit_code == 1 and "numbered 0..k-1 with k = 4" in result.output, result.output
    result = runner.invoke(app, ["validate", str(run), "--dataset", str(root), "--k", "6", "--allow-unused-clusters"])
    assert result.exit_code == 0, result.output


# The real benchmark: the "done when" checks, through the installed `synthscope` command.


def _synthscope(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthscope", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.shared
def test_info_on_bench_v1_matches_its_readme(shared_dir):
    expected = {
        "subtask1/dev": ("2024-st1-dev", ["images: 766", "generated: 400", "real: 366"]),
        "subtask1/test": ("2024-st1-test", ["images: 1334", "generated: 600", "real: 734"]),
        "subtask2/dev": ("2024-st2-dev", ["images: 300", "generated: 300"]),
        "subtask2/test": ("2024-st2-test", ["images: 600", "generated: 600"]),
    }
    for folder, (layout, lines) in expected.items():
        result = _synthscope("info", str(shared_dir / "bench" / "v1" / folder))
        assert result.returncode == 0, result.stderr
        assert f"layout: {layout}" in result.stdout
        for line in lines:
            assert line in result.stdout, (folder, line, result.stdout)
        assert "skipped: none" in result.stdout
    dev = _synthscope("info", str(shared_dir / "bench" / "v1" / "subtask1" / "dev")).stdout
    # Per-model counts of the README: model 1 has 50 + 50, model 2 has 133 + 133 real images.
    assert " model_1      real not_used        50" in dev and " model_2      real     used       133" in dev


@pytest.mark.shared
def test_all_used_run_on_bench_v1_validates_and_evaluates(shared_dir, tmp_path):
    subtask1 = shared_dir / "bench" / "v1" / "subtask1"
    dataset = load_dataset(subtask1 / "test", compute_sha=False)
    run = write_membership_run(tmp_path / "all_used.csv", pd.Series(1, index=expected_ids(dataset, "membership")))
    validated = _synthscope("validate", str(run), "--dataset", str(subtask1 / "test"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "VALID: 734 line(s)" in validated.stdout
    evaluated = _synthscope(
        "evaluate", str(run), "--truth", str(subtask1 / "test_ground_truth.csv"), "--n-boot", "300", "--dataset", str(subtask1 / "test")
    )
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    # 367 of 734 real test images are used: all-used gives precision 0.5, recall 1, F1 2/3, kappa 0.
    assert "scored on 734 images" in evaluated.stdout
    f1_line = next(line for line in evaluated.stdout.splitlines() if line.startswith("f1 "))
    assert f1_line.split()[1] == "0.667"
    recall_line = next(line for line in evaluated.stdout.splitlines() if line.startswith("recall "))
    assert recall_line.split()[1] == "1.000"
    assert "not above the best trivial baseline (all_used" in evaluated.stdout
    # One report per model folder, as the 2024 task scored them.
    assert "group folder_1: 200 images" in evaluated.stdout and "group folder_2: 534 images" in evaluated.stdout
