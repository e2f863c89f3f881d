"""One engine per sub-task: on the same folders and options, the dashboard's default exports equal the
CLI's run files byte for byte, and every number in the page's metric tables equals the CLI's printout.

The page and the CLI both call `synthscope.membership.run_membership` / `synthscope.attribution`; these
tests prove it from the outside, through the files and the text each one produces.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from test_dashboard_state import make_bench

METRIC_ROWS = ("f1", "accuracy", "precision", "recall", "specificity", "kappa", "roc_auc")


def _cli(*args) -> str:
    from synthscope.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _dashboard(path: Path, cache_dir: Path, **options):
    from synthscope_dashboard.app import build
    from synthscope_dashboard.workspace import load_workspace

    workspace = load_workspace(path, cache_dir=cache_dir)
    dashboard = build(workspace=workspace, autosave=False, **options)
    dashboard.state.evaluation_mode = True   # the test-label tables are shown only in evaluation mode
    for view in dashboard.views:
        view.ensure_built()
    return dashboard


def _exported(html: str) -> Path:
    match = re.search(r"<code class='ss-run-path'>([^<]+)</code>", html)
    assert match, f"no run file was written: {html}"
    return Path(match.group(1))


def _printed_tables(output: str) -> list[dict[str, tuple[str, str, str]]]:
    """Every metric table the CLI printed: metric -> (value, ci_low, ci_high) as printed (3 decimals)."""
    tables, current = [], None
    for line in output.splitlines():
        if line.startswith("metric ") and "CI (bootstrap" in line:
            current = {}
            tables.append(current)
            continue
        match = re.match(r"^(\w+)\s+(-?\d\.\d{3})\s+\[(-?\d\.\d{3}), (-?\d\.\d{3})\]", line)
        if current is not None and match:
            current[match.group(1)] = match.groups()[1:]
        elif current is not None and not line.strip():
            current = None
    return tables


def _page_tables(html: str) -> list[dict[str, tuple[str, str, str]]]:
    tables = []
    for table in html.split("<table class='ss-table'>")[1:]:
        rows = re.findall(r"data-metric='(\w+)'>([^<]+)</td><td class='ss-ci'>\[([^,]+), ([^\]]+)\]", table)
        tables.append({name: (value, low, high) for name, value, low, high in rows})
    return tables


def _assert_membership_parity(root: Path, dev: Path, test: Path, truth: Path, tmp_path: Path, pairs: list[str]):
    dashboard = _dashboard(root, tmp_path / "cache")
    cli_run, cli_scores = tmp_path / "cli_run.csv", tmp_path / "cli_scores.csv"
    output = _cli("membership", test, "--dev", dev, "--out", cli_run, "--scores", cli_scores, "--truth", truth,
                  "--cache-dir", tmp_path / "cache")
    export = next(v for v in dashboard.views if v.title == "Export")
    page_run = _exported(export.export_membership())
    assert page_run.read_bytes() == cli_run.read_bytes(), "the page's default sub-task 1 run differs from the CLI's"
    page_scores = _exported(export.export_scores())
    assert page_scores.read_bytes() == cli_scores.read_bytes(), "the page's scores file differs from the CLI's"

    # metric tables: the CLI prints, per group, the dev group's in-sample table, then the test evaluation
    printed = _printed_tables(output)
    training = next(v for v in dashboard.views if v.title == "Training-data fingerprints")
    shown = []
    for pair in pairs:
        dashboard.state.membership_group = pair
        shown += _page_tables(training.metrics.value)
    n_groups = len(pairs)
    cli_dev, cli_test = printed[:n_groups], printed[n_groups:2 * n_groups]
    page_dev, page_test = shown[0::2], shown[1::2]
    for cli_table, page_table in zip(cli_dev + cli_test, page_dev + page_test):
        for metric in METRIC_ROWS:
            assert page_table[metric] == cli_table[metric], metric
    # the scan-group (cluster bootstrap) CIs: the CLI's lines, in the same order as the page's tables
    printed_scan = [line.split("found without labels): ")[1] for line in output.splitlines()
                    if line.startswith("scan-group bootstrap")]
    cli_order = printed_scan[:n_groups], printed_scan[n_groups:]
    page_scan = []
    for pair in pairs:
        dashboard.state.membership_group = pair
        page_scan += re.findall(r"groups of neighbouring slices\): ([^<]+)</span>", training.metrics.value)
    assert page_scan == [line for pair_lines in zip(*cli_order) for line in pair_lines]
    assert len(page_scan) == 2 * n_groups
    return dashboard, output


def _assert_attribution_parity(root: Path, test: Path, tmp_path: Path, k: int, truth: Path | None):
    dashboard = _dashboard(root, tmp_path / "cache", k=k)
    cli_run, cli_scores = tmp_path / "cli_run2.csv", tmp_path / "cli_scores2.csv"
    args = ["attribute", test, "--k", k, "--out", cli_run, "--scores", cli_scores, "--cache-dir", tmp_path / "cache"]
    output = _cli(*args, *(["--truth", truth] if truth is not None else []))
    export = next(v for v in dashboard.views if v.title == "Export")
    page_run = _exported(export.export_attribution())
    assert page_run.read_bytes() == cli_run.read_bytes(), "the page's default sub-task 2 run differs from the CLI's"
    page_scores = _exported(export.export_attribution_scores())
    assert page_scores.read_bytes() == cli_scores.read_bytes(), "the page's sub-task 2 scores differ from the CLI's"
    return dashboard, output


def test_small_bench_page_and_cli_give_one_answer(tmp_path):
    root = make_bench(tmp_path / "bench")
    st1 = root / "subtask1"
    dashboard, _ = _assert_membership_parity(root, st1 / "dev", st1 / "test", st1 / "test_ground_truth.csv", tmp_path,
                                             ["model_1 -> folder_1", "model_2 -> folder_2"])
    st2 = root / "subtask2"
    # the page's k is the dev generator count unless the task states it; the CLI is given the same k
    k = dashboard.state.k
    dashboard, output = _assert_attribution_parity(root, st2 / "test", tmp_path, k, st2 / "test_ground_truth.csv")
    generators = next(v for v in dashboard.views if v.title == "Generator fingerprints")
    printed = re.search(r"^ari\s+(-?\d\.\d{3})\s+\[(-?\d\.\d{3}), (-?\d\.\d{3})\]", output, re.M).groups()
    page = re.findall(r"data-metric='ari'>([^<]+)</td><td class='ss-ci'>\[([^,]+), ([^\]]+)\]", generators.metrics.value)
    assert tuple(page[-1]) == printed, "the page's test ARI (evaluation) equals the CLI's"


def test_a_moved_threshold_is_what_the_page_exports(tmp_path):
    """The page may move a threshold; its export then follows the core's rule, score >= threshold."""
    root = make_bench(tmp_path / "bench", n=8)
    dashboard = _dashboard(root, tmp_path / "cache")
    state, membership = dashboard.state, dashboard.state.workspace.membership
    pair = state.membership_group
    rows = membership.pair_rows[pair]
    scores = membership.frame.score.to_numpy()[rows]
    state.set_threshold(pair, float(np.median(scores)))
    export = next(v for v in dashboard.views if v.title == "Export")
    lines = dict(line.split(",") for line in _exported(export.export_membership()).read_text().splitlines())
    test_rows = rows[membership.frame.split.to_numpy()[rows] == "test"]
    for row in test_rows:
        expected = int(membership.frame.score.iat[row] >= np.median(scores))
        assert int(lines[membership.frame.image_id.iat[row]]) == expected


def test_a_moved_image_is_what_the_label_free_scores_export_says(tmp_path):
    """After curation the scores file follows the run file: the moved image's prediction is its new
    cluster, and its margin is measured to the curated clusters' centres."""
    from synthscope.attribution import assignment_margin

    root = make_bench(tmp_path / "bench", n=8)
    dashboard = _dashboard(root, tmp_path / "cache")
    state, data = dashboard.state, dashboard.state.workspace.attribution
    export = next(v for v in dashboard.views if v.title == "Export")
    before = _exported(export.export_attribution_scores()).read_text().splitlines()
    scored = np.flatnonzero(data.scored)
    row = int(scored[0])
    target = next(c for c in state.clusters() if c != int(state.assignments[row]))
    state.assign([row], target)
    run = dict(line.split(",") for line in _exported(export.export_attribution()).read_text().splitlines())
    after = _exported(export.export_attribution_scores()).read_text().splitlines()
    assert after[0] == before[0] == "image_id,prediction,confidence,novelty"
    predictions = {line.split(",")[0]: line.split(",")[1] for line in after[1:]}
    assert predictions == run                                    # the scores file follows the curated run file
    moved = data.frame["image_id"].iat[row]
    assert next(line for line in after if line.startswith(moved + ",")) != \
        next(line for line in before if line.startswith(moved + ","))
    _, clusters = np.unique(state.assignments[data.scored], return_inverse=True)
    reduced = np.hstack([data.model.reduced_[v] for v in str(data.model.chosen_["view"]).split("+")])
    margins = np.array([float(line.split(",")[2]) for line in after[1:]])
    assert np.allclose(margins, assignment_margin(reduced, clusters), atol=5e-7)    # written with 6 decimals


def test_v3_membership_page_equals_cli(shared_dir, tmp_path):
    root = shared_dir / "bench" / "v3"
    st1 = root / "subtask1"
    _assert_membership_parity(root, st1 / "dev", st1 / "test", st1 / "test_ground_truth.csv", tmp_path,
                              ["model_1 -> folder_1"])


def test_v1_attribution_page_equals_cli(shared_dir, tmp_path):
    root = shared_dir / "bench" / "v1" / "subtask2"
    _assert_attribution_parity(root, root / "test", tmp_path, 3, None)


def test_the_page_pca_layout_and_per_image_columns_are_the_core_and_cli_numbers(tmp_path):
    """Issue 22, one feature space: the page's PCA layout is `synthscope project --method pca`'s, and its
    per-image silhouette, distance to centre and outlier score are measured in the space the core's
    clustering was found in -- the outlier score is the novelty `attribute --scores` writes."""
    import pandas as pd
    from sklearn.metrics import silhouette_samples

    root = make_bench(tmp_path / "bench", n=8)
    test, k = root / "subtask2" / "test", 4
    dashboard = _dashboard(test, tmp_path / "page-cache", k=k)   # the test folder alone: every row is scored
    state, data = dashboard.state, dashboard.state.workspace.attribution
    assert data.scored.all()

    _cli("project", test, "--method", "pca", "--cache-dir", tmp_path / "cli-cache")   # a cache of its own
    cached = list((tmp_path / "cli-cache" / "projections").glob("*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(data.projections["pca"], np.load(cached[0]))

    scores = tmp_path / "cli_scores.csv"
    output = _cli("attribute", test, "--k", k, "--out", tmp_path / "cli_run.csv", "--scores", scores,
                  "--cache-dir", tmp_path / "cli-cache")
    cli = pd.read_csv(scores).set_index("image_id").loc[data.frame["image_id"]]
    generators = next(v for v in dashboard.views if v.title == "Generator fingerprints")
    columns = generators.columns
    np.testing.assert_allclose(columns.values("outlier"), cli["novelty"].to_numpy(), rtol=0, atol=5e-7)   # 6 decimals

    model = data.model
    reduced = np.hstack([model.reduced_[v] for v in model.chosen_views_])   # where the core clustered
    assert reduced.shape[1] < data.features.shape[1]
    np.testing.assert_allclose(data.clustering_space(), reduced, rtol=1e-12, atol=1e-12)
    silhouette = columns.values("silhouette")
    np.testing.assert_allclose(silhouette, silhouette_samples(reduced, state.assignments), rtol=1e-12, atol=1e-12)
    centres = {c: reduced[state.assignments == c].mean(axis=0) for c in np.unique(state.assignments)}
    expected = np.linalg.norm(reduced - np.stack([centres[c] for c in state.assignments]), axis=1)
    np.testing.assert_allclose(columns.values("centre_distance"), expected, rtol=1e-12, atol=1e-12)
    # the CLI's selection table prints the chosen clustering's silhouette: the mean of the page's column
    chosen = model.selection_.loc[model.selection_["chosen"]].iloc[0]
    row = next(line for line in output.splitlines()
               if re.match(rf"^\s*{chosen['view']}\s+{chosen['method']}\s", line))
    assert f"{np.mean(silhouette):.3f}" in row.split(), (row, np.mean(silhouette))
