"""load_dataset: every layout is detected, bad trees get one clear error, and nothing is written."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from layout_factory import (
    LAYOUT_NAMES,
    expected_counts,
    make_layout,
    synthetic_slice,
    write_16bit_png,
    write_garbage,
    write_manifest_tree,
    write_palette_png,
    write_png,
    write_rgb_png,
    write_truncated_png,
)
from synthscope.data import DatasetError, load_dataset, read_ground_truth


def _snapshot(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def _counts(dataset) -> dict:
    return {(g, r, l): n for g, r, l, n in dataset.counts().itertuples(index=False)}


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_every_layout_is_detected_with_its_counts(tmp_path, layout):
    root = make_layout(tmp_path, layout, n=3)
    before = _snapshot(root)
    forced = layout if layout == "2025-st2-test" else None
    dataset = load_dataset(root, layout=forced)
    assert dataset.layout == layout
    assert dataset.report.layout == layout and dataset.report.tried[-1] == layout
    assert dataset.task == ("attribution" if "-st2-" in layout else "membership")
    assert dataset.split == ("dev" if layout.endswith("dev") else "test")
    assert _counts(dataset) == expected_counts(layout, n=3)
    assert dataset.report.n_images == len(dataset.manifest) == sum(expected_counts(layout, n=3).values())
    assert dataset.report.skipped == [] and dataset.report.warnings == []
    assert list(dataset.manifest.columns) == ["image_id", "path", "role", "group", "label", "sha256"]
    assert dataset.manifest["image_id"].is_unique
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in dataset.manifest["path"])
    assert (dataset.manifest["image_id"] == [os.path.splitext(os.path.basename(p))[0] for p in dataset.manifest["path"]]).all()
    assert _snapshot(root) == before, "load_dataset wrote into the data folder"


def test_manifest_order_is_group_role_image_id(tmp_path):
    dataset = load_dataset(make_layout(tmp_path, "2024-st1-dev", n=3))
    keys = list(zip(dataset.manifest["group"], dataset.manifest["role"], dataset.manifest["image_id"]))
    assert keys == sorted(keys)


def test_sha256_is_of_the_file_bytes_and_optional(tmp_path):
    import hashlib

    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    dataset = load_dataset(root)
    row = dataset.manifest.iloc[0]
    assert row["sha256"] == hashlib.sha256(open(row["path"], "rb").read()).hexdigest()
    assert (load_dataset(root, compute_sha=False).manifest["sha256"] == "").all()


def test_images_match_files_and_are_memoised(tmp_path):
    dataset = load_dataset(make_layout(tmp_path, "2024-st2-dev", n=3))
    images = dataset.images()
    assert images.shape == (9, 256, 256) and images.dtype == np.uint8
    from synthscope.imageio import read_image

    for i in (0, 4, 8):
        np.testing.assert_array_equal(images[i], read_image(dataset.manifest["path"][i]))
    # Memoised: once decoded, the files are not read again.
    for path in dataset.manifest["path"]:
        os.remove(path)
    np.testing.assert_array_equal(dataset.images(), images)
    np.testing.assert_array_equal(dataset.images([2, 0]), images[[2, 0]])
    mask = (dataset.manifest["group"] == "model_2").to_numpy()
    np.testing.assert_array_equal(dataset.images(mask), images[mask])


def test_images_beyond_the_memo_limit_are_decoded_again(tmp_path, monkeypatch):
    import synthscope.data as data_module

    monkeypatch.setattr(data_module, "MEMO_LIMIT_BYTES", 2 * 256 * 256)  # room for two images of six
    dataset = load_dataset(make_layout(tmp_path, "2024-st2-dev", n=2))
    assert len(dataset._store._arrays) == 0      # all or nothing: memory bounded by the work, not the memo
    first = dataset.images()
    assert first.shape == (6, 256, 256)
    np.testing.assert_array_equal(dataset.images([5, 4]), first[[5, 4]])
    os.remove(dataset.manifest["path"][5])  # not memoised, so it is read again and the loss is named
    from synthscope.imageio import ImageReadError

    with pytest.raises(ImageReadError, match="model_3_0002"):
        dataset.images([5])


def test_subset_and_groups(tmp_path):
    dataset = load_dataset(make_layout(tmp_path, "2024-st1-test", n=2))
    assert dataset.groups() == ["folder_1", "folder_2"]
    real = dataset.subset((dataset.manifest["role"] == "real").to_numpy())
    assert len(real.manifest) == 4 and set(real.manifest["role"]) == {"real"}
    assert real.report.n_images == 4 and real.layout == dataset.layout
    np.testing.assert_array_equal(real.images(), dataset.images((dataset.manifest["role"] == "real").to_numpy()))


def test_manifest_csv_reads_any_tree(tmp_path):
    root, csv = write_manifest_tree(tmp_path, n=3)
    dataset = load_dataset(root, manifest_csv=csv)
    assert dataset.layout == "manifest" and dataset.task == "membership" and dataset.split == "dev"
    assert _counts(dataset) == {("g1", "generated", "gan_a"): 3, ("g1", "real", "used"): 3, ("g1", "real", "not_used"): 3}
    # Passing the CSV itself works too.
    assert len(load_dataset(csv).manifest) == 9


def test_manifest_csv_bad_rows_are_listed(tmp_path):
    root, csv = write_manifest_tree(tmp_path, n=1)
    lines = csv.read_text().splitlines()
    lines.append("stuff/x.png,fake,used,g1")
    lines.append("stuff/y.png,real,maybe,g1")
    csv.write_text("\n".join(lines))
    with pytest.raises(DatasetError) as info:
        load_dataset(root, manifest_csv=csv)
    message = str(info.value)
    assert "line 5" in message and "'fake'" in message and "line 6" in message and "'maybe'" in message
    csv.write_text("file,kind\na.png,real\n")
    with pytest.raises(DatasetError, match="lacks column"):
        load_dataset(root, manifest_csv=csv)


def test_manifest_csv_missing_file_is_skipped_with_reason(tmp_path):
    root, csv = write_manifest_tree(tmp_path, n=2)
    csv.write_text(csv.read_text() + "stuff/ghost.png,real,unknown,g1\n")
    dataset = load_dataset(csv)
    assert len(dataset.manifest) == 6
    assert [s.reason.startswith("cannot read file") for s in dataset.report.skipped] == [True]


def test_bad_images_are_converted_or_skipped_and_reported(tmp_path):
    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    write_palette_png(root / "generated" / "pal.png", seed=31)
    write_rgb_png(root / "generated" / "colour.png", seed=32, colour=True)
    _, wide_expected = write_16bit_png(root / "real_used" / "wide.png", seed=33)
    write_truncated_png(root / "real_used" / "truncated.png")
    write_garbage(root / "real_not_used" / "garbage.png")
    (root / "real_not_used" / "notes.txt").write_text("hello")
    before = _snapshot(root)

    dataset = load_dataset(root)
    ids = set(dataset.manifest["image_id"])
    assert {"pal", "colour", "wide"} <= ids and not {"truncated", "garbage", "notes"} & ids
    skipped = {os.path.basename(s.path): s.reason for s in dataset.report.skipped}
    assert set(skipped) == {"truncated.png", "garbage.png", "notes.txt"}
    assert "corrupt" in skipped["truncated.png"] and "not a readable image" in skipped["garbage.png"]
    assert "not an image file" in skipped["notes.txt"]
    warnings_text = "\n".join(dataset.report.warnings)
    assert "palette" in warnings_text and "colour" in warnings_text and "16-bit" in warnings_text
    wide_row = np.flatnonzero(dataset.manifest["image_id"] == "wide")
    np.testing.assert_array_equal(dataset.images(wide_row)[0], wide_expected)
    assert "truncated.png" in dataset.report.format() and "corrupt" in dataset.report.format()
    assert _snapshot(root) == before


def test_odd_sizes_are_an_error_unless_a_policy_is_chosen(tmp_path):
    root = make_layout(tmp_path, "2025-st1-test", n=2)
    write_png(root / "generated" / "small.png", synthetic_slice(40, size=200))
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    assert "small.png" in str(info.value) and "200x200" in str(info.value) and "resize" in str(info.value)
    for policy in ("resize", "center_crop"):
        dataset = load_dataset(root, size_policy=policy)
        assert "small" in set(dataset.manifest["image_id"]) and dataset.size_policy == policy
        assert dataset.images().shape == (5, 256, 256)
        assert any("256x256" in w for w in dataset.report.warnings)


def test_duplicate_ids_name_both_files(tmp_path):
    root = make_layout(tmp_path, "2024-st2-dev", n=2)
    shutil.copy(root / "model_1" / "model_1_0001.png", root / "model_2" / "model_1_0001.png")
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    message = str(info.value)
    assert "duplicate image id" in message
    assert str(root / "model_1" / "model_1_0001.png") in message and str(root / "model_2" / "model_1_0001.png") in message


def test_same_stem_with_two_extensions_is_a_duplicate(tmp_path):
    root = make_layout(tmp_path, "2025-st1-test", n=2)
    from PIL import Image

    Image.fromarray(synthetic_slice(3)).save(root / "generated" / "generated_0001.bmp")
    with pytest.raises(DatasetError, match="generated_0001"):
        load_dataset(root)


def test_empty_folder_says_which_layouts_were_tried(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "empty")
    assert "empty" in str(info.value) and "2024-st1-dev" in str(info.value) and "manifest" in str(info.value)


def test_unrecognised_tree_lists_every_layout_tried(tmp_path):
    (tmp_path / "weird" / "a" / "b").mkdir(parents=True)
    write_png(tmp_path / "weird" / "a" / "b" / "x.png", synthetic_slice(1))
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "weird")
    message = str(info.value)
    for layout in ("2023-st1-dev", "2023-st1-test", "2024-st1-dev", "2024-st2-dev", "2025-st1-test", "2025-st2-dev"):
        assert layout in message
    assert "manifest" in message


def test_flat_folder_of_real_images_is_not_guessed(tmp_path):
    for i in range(3):
        write_png(tmp_path / "pool" / f"real_{i}.png", synthetic_slice(i))
    with pytest.raises(DatasetError, match="unrecognised"):
        load_dataset(tmp_path / "pool")


def test_missing_path_and_file_path_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nowhere")
    png = write_png(tmp_path / "one.png", synthetic_slice(1))
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(png)


def test_model_folder_lacking_real_not_used_is_named(tmp_path):
    root = make_layout(tmp_path, "2024-st1-dev", n=2)
    shutil.rmtree(root / "model_2" / "real_not_used")
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    assert "model_2" in str(info.value) and "real_not_used" in str(info.value)


def test_mixed_dev_and_test_model_folders_are_refused(tmp_path):
    root = make_layout(tmp_path, "2024-st1-dev", n=2)
    test_root = make_layout(tmp_path, "2024-st1-test", n=2)
    shutil.move(str(test_root / "folder_1"), str(root / "folder_1"))
    with pytest.raises(DatasetError, match="mixes dev"):
        load_dataset(root)


def test_flat_dev_and_test_folders_mixed_are_refused(tmp_path):
    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    write_png(root / "real_unknown" / "real_unknown_0001.png", synthetic_slice(77))
    with pytest.raises(DatasetError, match="mixes dev"):
        load_dataset(root)


def _folders_named(message: str) -> set[str]:
    return set(re.findall(r"\b(generated|real_used|real_not_used|real_unknown)/", message))


def test_a_mixed_flat_root_names_only_the_folders_it_holds(tmp_path):
    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    shutil.rmtree(root / "real_not_used")
    write_png(root / "real_unknown" / "real_unknown_0001.png", synthetic_slice(77))
    with pytest.raises(DatasetError, match="mixes dev folder real_used/ with the test folder real_unknown/") as info:
        load_dataset(root)
    assert _folders_named(str(info.value)) == {"real_used", "real_unknown"}


def test_a_dev_root_lacking_a_dev_folder_says_so_instead_of_naming_absent_ones(tmp_path):
    """generated/ + real_used/ once read 'mixes dev folders (real_used/, real_not_used/) with the test folder
    real_unknown/', two of which were not there."""
    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    shutil.rmtree(root / "real_not_used")
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    message = str(info.value)
    assert "mixes" not in message and "real_unknown" not in message
    assert "holds generated/, real_used/ but lacks real_not_used/" in message


def test_dataset_pickles_with_its_decoded_images(tmp_path):
    import pickle

    dataset = load_dataset(make_layout(tmp_path, "2024-st2-test", n=2))
    clone = pickle.loads(pickle.dumps(dataset))
    pd.testing.assert_frame_equal(clone.manifest, dataset.manifest)
    np.testing.assert_array_equal(clone.images(), dataset.images())


def test_stray_model_folder_without_role_folders_is_named(tmp_path):
    root = make_layout(tmp_path, "2024-st1-test", n=2)
    write_png(root / "folder_3" / "something.png", synthetic_slice(1))
    with pytest.raises(DatasetError, match="folder_3"):
        load_dataset(root)


def test_empty_role_folder_is_a_warning(tmp_path):
    root = make_layout(tmp_path, "2025-st1-dev", n=2)
    for path in (root / "real_not_used").iterdir():
        path.unlink()
    dataset = load_dataset(root)
    assert any("real_not_used" in w and "no images" in w for w in dataset.report.warnings)


def test_all_files_unreadable_is_an_error_listing_them(tmp_path):
    root = tmp_path / "st2" / "generated_unknown"
    write_garbage(root / "a.png")
    write_garbage(root / "b.png")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "st2")
    assert "no readable images" in str(info.value) and "a.png" in str(info.value)


def test_generated_unknown_folder_can_be_passed_directly(tmp_path):
    root = make_layout(tmp_path, "2024-st2-test", n=2)
    dataset = load_dataset(root / "generated_unknown")
    assert dataset.layout == "2024-st2-test" and len(dataset.manifest) == 4


def test_forcing_a_layout_that_does_not_fit_is_an_error(tmp_path):
    root = make_layout(tmp_path, "2024-st2-dev", n=2)
    with pytest.raises(DatasetError, match="not a 2025-st1-dev tree"):
        load_dataset(root, layout="2025-st1-dev")
    with pytest.raises(DatasetError, match="unknown layout"):
        load_dataset(root, layout="2030")


# Ground truth ----------------------------------------------------------------------------------


def test_read_ground_truth_membership_and_attribution(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text("image_id,used\nreal_1,1\nreal_2,0\n")
    truth = read_ground_truth(csv)
    assert truth.to_dict() == {"real_1": 1, "real_2": 0} and truth.dtype.kind == "i"
    csv.write_text("a.png,model_1\nb.png,model_4\n")  # no header, ids with extension
    truth = read_ground_truth(csv)
    assert truth.to_dict() == {"a": "model_1", "b": "model_4"}


def test_read_ground_truth_bad_files(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text("image_id,used\nx,1\nx,0\n")
    with pytest.raises(DatasetError, match="twice"):
        read_ground_truth(csv)
    csv.write_text("image_id\nx\n")
    with pytest.raises(DatasetError, match="two columns"):
        read_ground_truth(csv)
    with pytest.raises(DatasetError, match="not found"):
        read_ground_truth(tmp_path / "missing.csv")


def test_read_ground_truth_reads_columns_by_name(tmp_path):
    csv = tmp_path / "gt.csv"
    # an extra column in between used to be read as the labels ("extra" values: a clustering, ARI 0)
    csv.write_text("image_id,extra,used\nr1,x,1\nr2,y,0\nr3,x,1\n")
    truth = read_ground_truth(csv)
    assert truth.to_dict() == {"r1": 1, "r2": 0, "r3": 1} and truth.dtype.kind == "i" and truth.name == "used"
    csv.write_text("model,notes,image_id\nmodel_1,a,g1\nmodel_2,b,g2\n")   # any order, by name
    assert read_ground_truth(csv).to_dict() == {"g1": "model_1", "g2": "model_2"}
    csv.write_text("image_id,subset\ng1,subset_a\n")
    assert read_ground_truth(csv).name == "subset"


@pytest.mark.parametrize(
    "text, message",
    [
        ("image_id,used\nr1,yes\nr2,no\n", "column 'used' must hold 0/1 (or used/not_used) for sub-task 1; found 'no', 'yes'"),
        ("image_id,used\n1,r1\n0,r2\n", "are the columns swapped?"),
        ("1,r1\n0,r2\n", "are the columns swapped?"),
        ("image_id,extra,other\nr1,x,1\n", "exactly one label column (used, model, subset, generator, cluster); found none"),
        ("image_id,used,model\nr1,1,m\n", "found used, model"),
        ("r1,x,1\nr2,y,0\n", "3 columns and no header"),
    ],
    ids=["yes-no", "swapped", "swapped-no-header", "no-label-column", "two-label-columns", "three-unnamed"],
)
def test_read_ground_truth_refuses_what_does_not_fit(tmp_path, text, message):
    csv = tmp_path / "gt.csv"
    csv.write_text(text)
    with pytest.raises(DatasetError) as caught:
        read_ground_truth(csv)
    assert message in str(caught.value) and str(csv) in str(caught.value)


# The real benchmark ----------------------------------------------------------------------------


@pytest.mark.shared
def test_bench_v1_counts_match_its_readme(shared_dir):
    bench = shared_dir / "bench" / "v1"
    dev = load_dataset(bench / "subtask1" / "dev", compute_sha=False)
    assert dev.layout == "2024-st1-dev" and dev.split == "dev"
    assert _counts(dev) == {
        ("model_1", "generated", "model_1"): 200,
        ("model_1", "real", "used"): 50,
        ("model_1", "real", "not_used"): 50,
        ("model_2", "generated", "model_2"): 200,
        ("model_2", "real", "used"): 133,
        ("model_2", "real", "not_used"): 133,
    }
    test = load_dataset(bench / "subtask1" / "test", compute_sha=False)
    assert test.layout == "2024-st1-test" and test.split == "test"
    assert _counts(test) == {
        ("folder_1", "generated", "unknown"): 300,
        ("folder_1", "real", "unknown"): 200,
        ("folder_2", "generated", "unknown"): 300,
        ("folder_2", "real", "unknown"): 534,
    }
    truth = read_ground_truth(bench / "subtask1" / "test_ground_truth.csv")
    assert set(truth.index) == set(test.real["image_id"])
    assert truth.sum() == 100 + 267

    st2_dev = load_dataset(bench / "subtask2" / "dev", compute_sha=False)
    assert st2_dev.layout == "2024-st2-dev" and st2_dev.task == "attribution"
    assert _counts(st2_dev) == {(m, "generated", m): 100 for m in ("model_1", "model_2", "model_3")}
    st2_test = load_dataset(bench / "subtask2" / "test", compute_sha=False)
    assert st2_test.layout == "2024-st2-test" and len(st2_test.manifest) == 600
    truth2 = read_ground_truth(bench / "subtask2" / "test_ground_truth.csv")
    assert set(truth2.index) == set(st2_test.manifest["image_id"])
    assert truth2.value_counts().to_dict() == {f"model_{i}": 150 for i in range(1, 5)}
    for dataset in (dev, test, st2_dev, st2_test):
        assert dataset.report.skipped == [] and dataset.report.warnings == []


@pytest.mark.shared
def test_bench_v2_loads(shared_dir):
    dev = load_dataset(shared_dir / "bench" / "v2" / "subtask1" / "dev", compute_sha=False)
    assert _counts(dev) == {("model_1", "generated", "model_1"): 200, ("model_1", "real", "used"): 21, ("model_1", "real", "not_used"): 21}
    images = dev.images(np.flatnonzero(dev.manifest["role"] == "real"))
    assert images.shape == (42, 256, 256) and images.dtype == np.uint8 and images.std() > 10
