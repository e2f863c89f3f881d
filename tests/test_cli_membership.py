"""`synthscope membership` and `synthscope controls` on small 2024-layout trees and on ../shared v2."""

from __future__ import annotations

import re

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from synthscope.cli import app
from synthscope.membership import near_copies
from synthscope.submission import read_run, validate_run

runner = CliRunner()


def _images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blurred = ndimage.gaussian_filter(rng.normal(size=(n, 256, 256)), sigma=(0, 6, 6))
    lo, hi = blurred.min(axis=(1, 2), keepdims=True), blurred.max(axis=(1, 2), keepdims=True)
    return ((blurred - lo) / (hi - lo) * 255).astype(np.uint8)


def _write(folder: Path, prefix: str, images: np.ndarray) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, image in enumerate(images, 1):
        ids.append(f"{prefix}_{i:06d}")
        Image.fromarray(image).save(folder / f"{ids[-1]}.png")
    return ids


def make_tree(root: Path, *, leak: bool, seed: int = 0) -> tuple[Path, Path, Path]:
    """2024 sub-task 1 dev (model_1) and test (folder_1) trees, 8 used + 8 not used real images each;
    with `leak`, the generated sets hold near copies of the used images. Returns dev, test, truth CSV."""
    dev, test = root / "dev" / "model_1", root / "test" / "folder_1"
    used, not_used = _images(8, seed), _images(8, seed + 1)
    generated = _images(16, seed + 2)
    if leak:
        generated = np.concatenate([generated, near_copies(used, seed=seed)])
    _write(dev / "real_used", "real_used_1", used)
    _write(dev / "real_not_used", "real_not_used_1", not_used)
    _write(dev / "generated", "generated_1", generated)
    t_used, t_not_used = _images(8, seed + 3), _images(8, seed + 4)
    t_generated = _images(16, seed + 5)
    if leak:
        t_generated = np.concatenate([t_generated, near_copies(t_used, seed=seed + 1)])
    order = np.random.default_rng(seed).permutation(16)
    t_real = np.concatenate([t_used, t_not_used])[order]
    truth = (np.r_[np.ones(8), np.zeros(8)].astype(int))[order]
    ids = _write(test / "real_unknown", "real_unknown_1", t_real)
    _write(test / "generated", "generated_1", t_generated)
    truth_csv = root / "truth.csv"
    truth_csv.write_text("image_id,used\n" + "\n".join(f"{i},{u}" for i, u in zip(ids, truth)) + "\n")
    return root / "dev", root / "test", truth_csv


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def leak_tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("leak"), leak=True)


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("clean"), leak=False, seed=20)


def test_membership_finds_planted_leakage_and_writes_a_valid_run(leak_tree, tmp_path):
    dev, test, truth = leak_tree
    out = tmp_path / "run.csv"
    # each folder's own generated images: pooled, the 8 planted copies of the dev folder's used images and 16 more
    # random images make one chance match within the copies column's eps of a not-used test image
    result = _invoke("membership", test, "--dev", dev, "--space", "pixels-norm", "--primary", "pixels-norm:copies",
                     "--generated", "own", "--truth", truth, "--out", out, "--n-boot", "200")
    assert result.exit_code == 0, result.output
    assert "leakage verdict: significant leakage" in result.output
    # beside the in-sample dev numbers: what the whole procedure is expected to give on new images
    assert "Expected on new images (nested cross-validation on dev" in " ".join(result.output.split())
    for metric in ("f1", "accuracy", "precision", "recall", "specificity", "kappa", "roc_auc"):
        assert metric in result.output
    expected = sorted(p.stem for p in (test / "folder_1" / "real_unknown").glob("*.png"))
    assert validate_run(out, "membership", expected).ok
    run = read_run(out, "membership")
    gt = {line.split(",")[0]: int(line.split(",")[1]) for line in truth.read_text().splitlines()[1:]}
    assert all(run[i] == gt[i] for i in expected)     # planted copies: every used image found


def test_membership_says_plainly_when_there_is_no_leakage(clean_tree, tmp_path):
    dev, test, truth = clean_tree
    out = tmp_path / "run.csv"
    result = _invoke("membership", test, "--dev", dev, "--space", "pixels-norm", "--truth", truth,
                     "--out", out, "--n-boot", "200")
    assert result.exit_code == 0, result.output
    assert "leakage verdict: no significant leakage" in result.output
    assert "do not report the F1 below as a finding" in result.output
    text = " ".join(result.output.split())
    assert "does NOT beat calling every image used" in text or "Expected on new images" not in text
    assert "all_used" in result.output                   # the trivial baseline is printed beside F1
    assert out.is_file()


def test_membership_without_dev_uses_a_label_free_threshold_and_verdict(leak_tree, tmp_path):
    _, test, truth = leak_tree
    out = tmp_path / "run.csv"
    result = _invoke("membership", test, "--space", "pixels-norm", "--score", "registered", "--primary", "images:registered",
                     "--out", out)
    assert result.exit_code == 0, result.output
    assert "by mixture" in result.output and "data-copying test (Meehan" in result.output
    run = read_run(out, "membership")
    gt = {line.split(",")[0]: int(line.split(",")[1]) for line in truth.read_text().splitlines()[1:]}
    assert all(run[i] == gt[i] for i in run.index)     # the mixture threshold separates copies without labels


def test_membership_without_dev_honours_the_label_free_threshold_asked_for(leak_tree, tmp_path):
    _, test, _ = leak_tree
    args = ("membership", test, "--space", "pixels-norm", "--score", "registered", "--primary", "images:registered")
    result = _invoke(*args, "--threshold", "two_means", "--out", tmp_path / "run.csv")
    assert result.exit_code == 0, result.output
    assert "by two_means" in result.output and "by mixture" not in result.output   # it was ignored: mixture


def test_controls_pass_on_a_tree_and_report_both(clean_tree, leak_tree):
    # a tree whose generated images copy nothing yet: planted copies are the only copies
    dev, test, _ = clean_tree
    result = _invoke("controls", test, "--dev", dev, "--space", "pixels-norm", "--copy-from", "all")
    assert result.exit_code == 0, result.output
    assert "positive control passed" in result.output and "null control passed" in result.output
    assert "dev-fitted threshold" in result.output
    # where the generator already copies the used images, copying other images cannot separate
    # "copied by the control" from "copied by the generator": the control must fail, not pass silently
    dev, test, _ = leak_tree
    result = _invoke("controls", test, "--dev", dev, "--space", "pixels-norm", "--copy-from", "all")
    assert result.exit_code == 1 and "positive control FAILED" in result.output


def test_bad_input_gets_one_clear_error(leak_tree, tmp_path):
    dev, test, _ = leak_tree
    result = _invoke("membership", test, "--space", "nonsense", "--out", tmp_path / "r.csv")
    # a choice option fails with the list of valid values (typer draws it in a box; unwrap it)
    plain = re.sub(r"[│╭╮╰╯─\s]+", " ", result.output)
    assert result.exit_code == 2 and "'nonsense' is not one of 'pixels', 'pixels-norm'," in plain
    result = _invoke("membership", test, "--dev", test, "--space", "pixels", "--out", tmp_path / "r.csv")
    assert result.exit_code == 2 and "labelled both used and not used" in result.output
    result = _invoke("membership", tmp_path / "missing", "--out", tmp_path / "r.csv")
    assert result.exit_code == 2 and "error:" in result.output
    result = _invoke("membership", test, "--space", "pixels", "--primary", "pixels:nope", "--out", tmp_path / "r.csv")
    assert result.exit_code == 2 and "unknown score column" in result.output
    assert not (tmp_path / "r.csv").exists()


def test_membership_on_the_v2_benchmark(shared_dir, tmp_path):
    """Real data: a validated run for v2's test folder with its dev-fitted threshold, the verdict and metrics."""
    root = shared_dir / "bench" / "v2" / "subtask1"
    out = tmp_path / "run.csv"
    result = _invoke("membership", root / "test", "--dev", root / "dev", "--space", "pixels-norm",
                     "--score", "distance", "--primary", "pixels-norm:distance",
                     "--truth", root / "test_ground_truth.csv", "--out", out, "--n-boot", "200")
    assert result.exit_code == 0, result.output
    expected = sorted(p.stem for p in (root / "test" / "folder_1" / "real_unknown").glob("*.png"))
    assert validate_run(out, "membership", expected).ok
    assert "(threshold from dev group model_1)" in result.output
    evaluation = result.output.split("-- evaluation, group")[1]    # after the dev group's in-sample table
    auc_line = next(line for line in evaluation.splitlines() if line.startswith("roc_auc"))
    assert float(auc_line.split()[1]) > 0.6     # the faint v2 signal (naive pixel AUC 0.64 in its README)
    # the generator-free baseline and the scan-group CI come with the evaluation
    assert "generator-free baseline on the same labels: pixels-norm:pool_baseline AUC" in result.output
    grouped = next(line for line in evaluation.splitlines() if line.startswith("scan-group bootstrap"))
    low, high = (float(x) for x in grouped.split("roc_auc [")[1].split("]")[0].split(", "))
    image_low, image_high = (float(x) for x in auc_line.split("[")[1].split("]")[0].split(","))
    assert high - low > image_high - image_low    # whole scans resampled: a wider, honest interval


def test_a_dev_set_too_small_to_score_names_the_set_and_the_group(tmp_path):
    """One real image per class: the reference needs more, and the message says which set and group."""
    dev = tmp_path / "dev" / "model_1"
    _write(dev / "real_used", "real_used_1", _images(1, 40))
    _write(dev / "real_not_used", "real_not_used_1", _images(1, 41))
    _write(dev / "generated", "generated_1", _images(6, 42))
    test_root = tmp_path / "test" / "folder_1"
    _write(test_root / "real_unknown", "real_unknown_1", _images(6, 43))
    _write(test_root / "generated", "generated_1", _images(6, 44))
    result = _invoke("membership", tmp_path / "test", "--dev", tmp_path / "dev", "--space", "pixels",
                     "--out", tmp_path / "r.csv")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"dev set {(tmp_path / 'dev').resolve()}, group model_1 (2 real images)" in message
    assert "Traceback" not in result.output and not (tmp_path / "r.csv").exists()
