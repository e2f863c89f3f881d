"""synthscope.datatree: what a bench root holds, and `prepare` caching exactly what the dashboard reads."""

from __future__ import annotations

import numpy as np
import pytest

from layout_factory import make_layout
from synthscope.projection import NotCached, project
from synthscope.datatree import (WorkspaceError, attribution_matrix, discover_dataset_roots, load_datasets,
                                  prepare)


@pytest.fixture
def bench_root(tmp_path):
    root = tmp_path / "bench"
    make_layout(root / "subtask1", "2024-st1-dev", n=3, name="dev")
    make_layout(root / "subtask1", "2024-st1-test", n=3, name="test")
    make_layout(root / "subtask2", "2024-st2-dev", n=4, name="dev")
    make_layout(root / "subtask2", "2024-st2-test", n=4, name="test")
    return root


def test_discovers_every_split_of_a_bench_root(bench_root):
    roots = [str(p.relative_to(bench_root)) for p in discover_dataset_roots(bench_root)]
    assert roots == ["subtask1/dev", "subtask1/test", "subtask2/dev", "subtask2/test"]
    # A single data set folder is its own root.
    assert discover_dataset_roots(bench_root / "subtask2" / "test") == [(bench_root / "subtask2" / "test").resolve()]


def test_unreadable_split_is_reported_and_the_rest_still_loads(bench_root):
    for png in (bench_root / "subtask1" / "test").rglob("*.png"):
        png.unlink()
    datasets, errors = load_datasets(bench_root)
    assert sorted(d.layout for d in datasets) == ["2024-st1-dev", "2024-st2-dev", "2024-st2-test"]
    assert len(errors) == 1 and "subtask1/test" in errors[0]


def test_empty_folder_is_one_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="nothing readable"):
        load_datasets(tmp_path)


def test_attribution_matrix_pools_dev_then_test(bench_root):
    datasets, _ = load_datasets(bench_root)
    matrix = attribution_matrix(datasets, "pixels")
    dev, test = matrix.frame[matrix.frame.split == "dev"], matrix.frame[matrix.frame.split == "test"]
    assert len(dev) == 3 * 4 and len(test) == 8 and list(matrix.frame.split[:len(dev)]) == ["dev"] * len(dev)
    assert (dev.known_label == dev.group).all() and (test.known_label == "").all()
    assert matrix.features.shape[0] == len(matrix.frame) and matrix.features.dtype == np.float32
    # Image i of the pooled frame is the file named in row i.
    from synthscope.imageio import read_image
    row = len(dev) + 2
    dataset, rows = matrix.parts[1]
    expected = read_image(dataset.manifest.iloc[rows[2]]["path"])
    assert np.array_equal(matrix.load_images([row])[0], expected)


def test_prepare_caches_the_projection_the_dashboard_reads_and_is_idempotent(bench_root):
    messages = []
    first = prepare(bench_root, extractors=["pixels"], projections=["pca"], progress=False, say=messages.append)
    assert any(item.computed for item in first)
    datasets, _ = load_datasets(bench_root)
    X = attribution_matrix(datasets, "pixels").features
    assert project(X, "pca", compute=False).shape == (len(X), 2)    # the dashboard's lookup hits
    with pytest.raises(NotCached):
        project(X, "tsne", compute=False)
    second = prepare(bench_root, extractors=["pixels"], projections=["pca"], progress=False, say=messages.append)
    assert [item.what for item in second] == [item.what for item in first]
    assert not any(item.computed for item in second)
