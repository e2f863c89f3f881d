"""Issue 15 B: the 2025 sub-task 2 view (supervised attribution to training subsets).

A small 2025 tree: dev/real/<subset>/, dev/generated/<subset>/ and test/generated_unknown/. The two
subsets' generated images carry different artefacts (a grid, added noise), so a classifier can tell
them apart; the test folder mixes both. Kernel side: the core's cross-validation, the view's confusion
matrix and table, the export (validated, and byte for byte the CLI's run file). In Chromium: the tab
renders and its export button writes the file.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from layout_factory import make_layout
from test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, PAGE_TIMEOUT_MS
from test_dashboard_state import _generate, _real_slice, _save
from voila_server import voila_server

SUBSETS = {"subset_a": "grid", "subset_b": "noise"}
N_DEV, N_TEST = 10, 8      # generated images per subset in dev; per subset in test
N_OTHER = 4                # test images from neither subset (blurred): assigned to one anyway
N_TEST_ALL = len(SUBSETS) * N_TEST + N_OTHER


def make_2025_tree(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    truth = []
    for subset, kind in SUBSETS.items():
        for i in range(N_DEV):
            real = _real_slice(rng)
            _save(root / "dev" / "real" / subset / f"real_{subset}_{i + 1:04d}.png", real)
            _save(root / "dev" / "generated" / subset / f"generated_{subset}_{i + 1:04d}.png", _generate(kind, real, rng))
    subsets = [s for s in SUBSETS for _ in range(N_TEST)] + ["other"] * N_OTHER
    order = rng.permutation(len(subsets))
    for position, index in enumerate(order):
        subset = subsets[index]
        image_id = f"generated_unknown_{position + 1:05d}"
        kind = SUBSETS.get(subset, "blur")
        _save(root / "test" / "generated_unknown" / f"{image_id}.png", _generate(kind, _real_slice(rng), rng))
        truth.append((image_id, subset))
    # kept apart from the tree: the dashboard must never read test labels to assign subsets
    pd.DataFrame(truth, columns=["image_id", "subset"]).to_csv(root.parent / f"{root.name}_truth.csv", index=False)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_2025_tree(tmp_path_factory.mktemp("st2025") / "tree")


@pytest.fixture(scope="module")
def loaded(tree, tmp_path_factory):
    from synthscope_dashboard.workspace import load_workspace

    return load_workspace(tree, cache_dir=tmp_path_factory.mktemp("embeddings"))


@pytest.fixture
def app(loaded, tmp_path):
    from synthscope_dashboard.app import build

    dashboard = build(workspace=dataclasses.replace(loaded, cache_dir=tmp_path / "cache"), autosave=False,
                      export_dir=tmp_path / "exports")
    for view in dashboard.views:
        view.ensure_built()
    return dashboard


# -- core ------------------------------------------------------------------------------------------

def test_cross_validation_predicts_every_dev_image_once_out_of_fold(tree):
    from synthscope.attribution import cross_validated_subsets
    from synthscope.data import load_dataset

    cv = cross_validated_subsets(load_dataset(tree / "dev"))
    frame = cv.predictions
    assert len(frame) == len(SUBSETS) * N_DEV and frame.index.is_unique
    assert cv.n_splits == 5 and sorted(frame["fold"].unique()) == list(range(5))
    assert frame.groupby("fold")["subset"].value_counts().unstack().eq(N_DEV // 5).all().all()   # stratified
    confusion = cv.confusion
    assert list(confusion.index) == list(confusion.columns) == sorted(SUBSETS)
    assert int(confusion.to_numpy().sum()) == len(frame)
    assert confusion.sum(axis=1).to_dict() == {s: N_DEV for s in SUBSETS}
    accuracy = cv.report.estimates["accuracy"]
    assert accuracy.value == pytest.approx(np.trace(confusion.to_numpy()) / len(frame))
    # the subsets differ (grid vs noise): held-out images are told apart beyond the majority baseline
    assert accuracy.ci_low > cv.report.baselines["majority_class"]["accuracy"]
    assert ((frame["confidence"] >= 0.5) & (frame["confidence"] <= 1)).all()


def test_cross_validation_lowers_k_to_the_smallest_subset_and_refuses_other_trees(tmp_path):
    from synthscope.attribution import cross_validated_subsets
    from synthscope.data import load_dataset

    small = load_dataset(make_layout(tmp_path, "2025-st2-dev", n=3))
    cv = cross_validated_subsets(small, n_splits=5)
    assert cv.n_splits == 3 and int(cv.confusion.to_numpy().sum()) == 6
    with pytest.raises(ValueError, match="not a 2025 sub-task 2 dev tree"):
        cross_validated_subsets(load_dataset(make_layout(tmp_path, "2024-st2-dev", n=3)))
    with pytest.raises(ValueError, match="single generated image"):
        cross_validated_subsets(load_dataset(make_layout(tmp_path, "2025-st2-dev", n=1, name="one")))


# -- dashboard, kernel side ------------------------------------------------------------------------

def test_the_tab_shows_predictions_low_confidence_first_and_the_dev_confusion(app, tree):
    assert "Training subsets (2025)" in [v.title for v in app.views]
    view = app.view("Training subsets (2025)")
    subsets = app.state.workspace.subsets
    assert subsets.run.kind == "subset" and len(subsets.run.labels) == N_TEST_ALL
    cells = {(t, p): int(v) for t, p, v in re.findall(r"data-true='([^']+)' data-predicted='([^']+)'[^>]*>(\d+)<",
                                                      view.confusion.value)}
    assert sum(cells.values()) == len(SUBSETS) * N_DEV
    assert {t: sum(v for (tt, _), v in cells.items() if tt == t) for t in SUBSETS} == {s: N_DEV for s in SUBSETS}
    assert cells == {(t, p): int(subsets.cv.confusion.loc[t, p]) for t in SUBSETS for p in SUBSETS}
    shown = [float(v) for v in re.findall(r"data-confidence='([0-9.]+)'", view.table.value)]
    assert len(shown) == N_TEST_ALL and shown == sorted(shown)
    assert shown[0] == pytest.approx(subsets.run.confidence.min(), abs=1e-6)
    assert len(view.thumbs.children) == 8
    assert "majority subset" in view.summary.value and "cross-validation" in view.summary.value
    view.sort.value = "image_id"
    ids = re.findall(r"<tr><td>([^<]+)</td>", view.table.value)
    assert ids == sorted(ids)
    # the test assignments, scored afterwards against the kept-apart truth: the classifier works
    truth = pd.read_csv(tree.parent / "tree_truth.csv").set_index("image_id")["subset"]
    known = truth[truth.isin(list(SUBSETS))]
    assert (subsets.run.labels.loc[known.index] == known).mean() >= 0.9
    assert shown[0] < shown[-1]              # the order is not trivially that of equal values
    # "none of these": the count in the summary, and the table sorted by novelty, highest first
    flagged = int(subsets.run.none_of_these.sum())
    assert f"{flagged} of {N_TEST_ALL} test images are none of these" in view.summary.value
    view.sort.value = "novelty"
    novelty = [float(v) for v in re.findall(r"data-novelty='([0-9.]+)'", view.table.value)]
    assert len(novelty) == N_TEST_ALL and novelty == sorted(novelty, reverse=True)
    assert novelty[0] == pytest.approx(subsets.run.novelty.max(), abs=1e-6)
    assert view.table.value.count("<b>none of these</b>") == flagged


def _buttons(widget) -> dict:
    """The buttons under `widget`, by their text."""
    import ipywidgets as widgets

    found, stack = {}, [widget]
    while stack:
        item = stack.pop()
        if isinstance(item, widgets.Button):
            found[item.description] = item
        stack.extend(getattr(item, "children", ()) or ())
    return found


def test_the_table_pages_through_every_test_image(app, monkeypatch):
    """Issue 22 defect 13: the table listed the first 200 of 300 test images and no more; it pages like
    the generator grid, and its pages hold every test image once, in the order chosen."""
    from synthscope_dashboard.views import subsets as module

    monkeypatch.setattr(module, "TABLE_ROWS", 7)   # 20 test images here: three pages
    view = app.view("Training subsets (2025)")
    view.sort.value = "image_id"
    buttons = _buttons(view.root)
    assert {"Previous", "Next"} <= set(buttons), f"no paging buttons: {sorted(buttons)}"
    previous, following = buttons["Previous"], buttons["Next"]
    assert previous.disabled and not following.disabled
    seen = []
    for page in range(1, 4):
        ids = re.findall(r"<tr><td>([^<]+)</td>", view.table.value)
        assert len(ids) == (7 if page < 3 else N_TEST_ALL - 14)
        assert f"page {page} of 3" in view.table.value
        seen += ids
        if page < 3:
            following.click()
    assert following.disabled and not previous.disabled
    assert seen == sorted(app.state.workspace.subsets.predictions["image_id"].astype(str))
    previous.click()
    assert "page 2 of 3" in view.table.value
    view.sort.value = "confidence"              # another order starts at its first page
    assert "page 1 of 3" in view.table.value and previous.disabled
    shown = [float(v) for v in re.findall(r"data-confidence='([0-9.]+)'", view.table.value)]
    assert shown == sorted(shown) and len(shown) == 7


def test_export_is_validated_and_equals_the_cli_run_byte_for_byte(app, tree, tmp_path):
    from synthscope.cli import app as cli
    from synthscope.submission import validate_run

    export = app.view("Export")
    message = export.export_subsets()
    assert "written and valid" in message
    path = Path(re.search(r"class='ss-run-path'>([^<]+)<", message).group(1))
    assert path.name == "subtask2_subsets_run.csv" and path.parent == export.export_root
    ids = [f"generated_unknown_{i:05d}" for i in range(1, N_TEST_ALL + 1)]
    assert validate_run(path, "subset", ids, allowed_labels=list(SUBSETS)).ok
    out = tmp_path / "cli_run.csv"
    result = CliRunner().invoke(cli, ["attribute", str(tree / "test"), "--dev", str(tree / "dev"),
                                      "--layout", "2025-st2-test", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == out.read_bytes()
    second = Path(re.search(r"class='ss-run-path'>([^<]+)<", export.export_subsets()).group(1))
    assert second.name == "subtask2_subsets_run-2.csv"   # never overwritten


def test_scores_export_equals_the_cli_scores_file_byte_for_byte(app, tree, tmp_path):
    from synthscope.cli import app as cli

    message = app.view("Export").export_subset_scores()
    assert "written and valid" in message, message
    path = Path(re.search(r"class='ss-run-path'>([^<]+)<", message).group(1))
    assert path.name == "subtask2_subsets_scores.csv"
    out, scores = tmp_path / "cli_run.csv", tmp_path / "cli_scores.csv"
    result = CliRunner().invoke(cli, ["attribute", str(tree / "test"), "--dev", str(tree / "dev"),
                                      "--layout", "2025-st2-test", "--out", str(out), "--scores", str(scores)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == scores.read_bytes()
    table = pd.read_csv(scores, dtype={"image_id": str, "prediction": str})
    assert list(table.columns) == ["image_id", "prediction", "confidence", "novelty"]
    assert len(table) == N_TEST_ALL and table["prediction"].isin(list(SUBSETS)).all()
    assert table["confidence"].between(0, 1).all() and table["novelty"].between(0, 1).all()
    run = pd.read_csv(out, header=None, names=["image_id", "subset"], dtype=str)
    assert list(run["image_id"]) == list(table["image_id"]) and list(run["subset"]) == list(table["prediction"])
    # the blurred images of neither subset are the most novel ones on average
    truth = pd.read_csv(tree.parent / "tree_truth.csv").set_index("image_id")["subset"]
    novelty = table.set_index("image_id")["novelty"]
    other = truth.loc[novelty.index] == "other"
    assert novelty[other].mean() > novelty[~other].mean()
    # the scores file is an output like the run file: it may not be the run file or an input
    same = CliRunner().invoke(cli, ["attribute", str(tree / "test"), "--dev", str(tree / "dev"), "--layout",
                                    "2025-st2-test", "--out", str(out), "--scores", str(out)])
    assert same.exit_code != 0 and "--scores" in same.output


def test_the_report_holds_the_2025_section(app, tmp_path):
    from synthscope_dashboard.report import external_references, write_report

    text = write_report(app.state, tmp_path / "report.html").read_text(encoding="utf-8")
    section = text[text.index("id='subsets'"):]
    cells = [int(v) for v in re.findall(r"data-predicted='[^']+'[^>]*>(\d+)<", section)]
    assert cells == app.state.workspace.subsets.cv.confusion.to_numpy().ravel().tolist()
    lowest = section[section.index("ss-subset-lowest"):]
    lowest = lowest[:lowest.index("</table>")]
    confidences = [float(v) for v in re.findall(r"class='ss-value'>([0-9.]+)<", lowest)]
    assert len(confidences) == 20 and confidences == sorted(confidences)
    assert external_references(text) == []


def test_a_dev_tree_alone_shows_the_cross_validation_without_an_export(tree, tmp_path):
    from synthscope_dashboard.app import build

    dashboard = build(str(tree / "dev"), cache_dir=tmp_path / "cache", autosave=False, export_dir=tmp_path / "x")
    view = dashboard.view("Training subsets (2025)")
    view.ensure_built()
    assert "No test folder" in "".join(getattr(c, "value", "") for c in view.root.children)
    export = dashboard.view("Export")
    export.ensure_built()
    assert not hasattr(export, "subset_button")


# -- in the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served_tree(tree, tmp_path_factory):
    """One Voila server for the module's browser tests, each of which opens a page (a kernel) of its own."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    exports = tmp_path_factory.mktemp("exports")
    with voila_server(tree, tmp_path_factory.mktemp("voila"), export_dir=exports) as served:
        yield {**served, "exports": exports}


@pytest.mark.browser
def test_the_tab_renders_and_its_export_writes_a_file(served_tree):
    sync_api = pytest.importorskip("playwright.sync_api")
    exports, url = served_tree["exports"], served_tree["url"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url, timeout=PAGE_TIMEOUT_MS)
            page.wait_for_selector(".ss-app", timeout=PAGE_TIMEOUT_MS)
            page.locator(".lm-TabBar-tab", has_text="Training subsets (2025)").first.click()
            confusion = page.locator(".ss-view:visible .ss-confusion")
            confusion.wait_for()
            counts = [int(t) for t in page.locator(".ss-view:visible .ss-confusion td[data-true]").all_inner_texts()]
            page.wait_for_selector(".ss-view:visible .js-plotly-plot .bars path")
            rows = page.locator(".ss-view:visible .ss-subset-table tr").count()
            ARTIFACTS.mkdir(exist_ok=True)
            page.wait_for_timeout(600)
            page.screenshot(path=str(ARTIFACTS / "dashboard-subsets-2025.png"), full_page=True)
            page.locator(".lm-TabBar-tab", has_text="Export").first.click()
            page.locator(".ss-export-subsets").click()
            page.wait_for_selector(".ss-export-result .ss-run-path")
            written = Path(page.locator(".ss-export-result .ss-run-path").inner_text())
        finally:
            browser.close()
    assert sum(counts) == len(SUBSETS) * N_DEV and len(counts) == len(SUBSETS) ** 2
    assert rows == 1 + N_TEST_ALL
    assert written.parent == exports.resolve() and written.is_file()
    lines = written.read_text().splitlines()
    assert len(lines) == N_TEST_ALL and all(line.split(",")[1] in SUBSETS for line in lines)


# -- issue 20: the movable "none of these" level, presentation mode, the reliability diagram ------

MOVED_LEVEL = 0.1      # 20 dev images: p-values are k/21, so the default 0.01 flags nothing and 0.1 flags p <= 2/21


def _cli_at_level(tree, tmp_path, alpha):
    from synthscope.cli import app as cli

    out, scores = tmp_path / f"cli_run_{alpha:g}.csv", tmp_path / f"cli_scores_{alpha:g}.csv"
    result = CliRunner().invoke(cli, ["attribute", str(tree / "test"), "--dev", str(tree / "dev"), "--layout",
                                      "2025-st2-test", "--out", str(out), "--scores", str(scores),
                                      "--novelty-alpha", f"{alpha:g}"])
    assert result.exit_code == 0, result.output
    return out, scores, result.output


def test_a_moved_novelty_level_moves_the_count_and_the_flags_and_exports_what_the_cli_writes(app, tree, tmp_path):
    from synthscope.attribution import AttributionOptions, run_attribution
    from synthscope.data import load_dataset

    state, view, export = app.state, app.view("Training subsets (2025)"), app.view("Export")
    run = state.workspace.subsets.run
    assert state.novelty_alpha == 0.01 and view.level.value == 0.01
    before = int(run.none_of_these.sum())
    view.sort.value = "novelty"
    view.level.value = MOVED_LEVEL                              # the analyst moves the slider
    assert state.novelty_alpha == MOVED_LEVEL
    # the same flags the core gives when run at that level (not a re-derivation from the rounded novelty)
    at_level = run_attribution(load_dataset(tree / "test", layout="2025-st2-test"), load_dataset(tree / "dev"),
                               AttributionOptions(novelty_alpha=MOVED_LEVEL))
    expected = at_level.none_of_these.reindex(run.labels.index)
    flagged = int(expected.sum())
    assert flagged > before, "the moved level must flag more images on this tree, or the test shows nothing"
    assert f"<b>{flagged} of {N_TEST_ALL} test images are none of these</b> at level {MOVED_LEVEL:g}" in view.summary.value
    shown = dict(re.findall(r"<tr><td>([^<]+)</td>.*?data-flagged='([01])'", view.table.value))
    assert len(shown) == N_TEST_ALL and {i: f == "1" for i, f in shown.items()} == expected.to_dict()
    assert view.table.value.count("<b>none of these</b>") == flagged
    assert str(flagged) in state.status and f"level {MOVED_LEVEL:g}" in state.status
    assert f"<b>{flagged}</b> of {N_TEST_ALL} flagged" in view.level_count.value     # beside the slider
    # the exports at that level are the CLI's at --novelty-alpha 0.1, byte for byte; the page says the
    # count the CLI prints, in the CLI's own words
    out, scores, printed = _cli_at_level(tree, tmp_path, MOVED_LEVEL)
    message = export.export_subset_scores()
    assert Path(re.search(r"class='ss-run-path'>([^<]+)<", message).group(1)).read_bytes() == scores.read_bytes()
    assert f"{flagged:,} flagged none of these at level {MOVED_LEVEL:g}" in message
    page_run = Path(re.search(r"class='ss-run-path'>([^<]+)<", export.export_subsets()).group(1))
    assert page_run.read_bytes() == out.read_bytes()
    cli_line = next(line for line in printed.splitlines() if line.startswith("none of these:"))
    assert f"none of these: {flagged} of {N_TEST_ALL} images" in cli_line and esc_html(cli_line) in view.summary.value
    # in the file: novelty above 1 - level is exactly the flag
    table = pd.read_csv(scores, dtype={"image_id": str}).set_index("image_id")
    assert ((1.0 - table["novelty"]) < MOVED_LEVEL + 5e-7).to_dict() == expected.to_dict()
    # back to the default: the count and the flags follow; a level outside (0, 1) is refused
    state.set_novelty_alpha(0.01)
    assert view.level.value == 0.01 and view.table.value.count("<b>none of these</b>") == before
    state.set_novelty_alpha(1.5)
    assert state.novelty_alpha == 0.01 and "must lie between 0 and 1" in state.status
    state.set_novelty_alpha(0.0375)                             # a level the slider does not offer gets a stop
    assert view.level.value == 0.0375 and "0.0375" in view.summary.value


def esc_html(text: str) -> str:
    import html

    return html.escape(text)


def test_presentation_mode_keeps_the_flag_count_and_its_level_and_hides_the_slider(app):
    state, view = app.state, app.view("Training subsets (2025)")
    state.set_novelty_alpha(MOVED_LEVEL)
    flagged = int(state.subset_predictions()["none_of_these"].sum())
    state.presentation = True
    def inside(widget):
        return [widget] + [w for child in getattr(widget, "children", ()) for w in inside(child)]

    slider_box = next(c for c in view.controls if view.level in inside(c))
    assert slider_box.layout.display == "none" and view.sort.layout.display == "none"
    assert view.summary.layout.display != "none" and view.summary in view.root.children
    assert f"data-flagged='{flagged}' data-level='{MOVED_LEVEL:g}'" in view.summary.value
    state.presentation = False
    assert slider_box.layout.display is None


def test_the_reliability_diagram_shows_the_cores_numbers_in_the_page_and_the_report(app, tmp_path):
    from synthscope.attribution import reliability_diagram
    from synthscope_dashboard.report import external_references, write_report

    subsets, view = app.state.workspace.subsets, app.view("Training subsets (2025)")
    diagram = reliability_diagram(subsets.cv)
    assert diagram.n_images == len(SUBSETS) * N_DEV
    html_text = view.reliability_table.value
    used = ((diagram.raw.bins["images"] > 0) | (diagram.calibrated.bins["images"] > 0)).to_numpy()
    for curve in diagram.curves:
        value = re.search(rf"data-metric='ece_{curve.name}'>([^<]+)</td><td class='ss-ci'>\[([^,]+), ([^\]]+)\]",
                          html_text).groups()
        assert value == tuple(f"{v:.3f}" for v in (curve.ece, *curve.ece_ci))
        images = [int(v) for v in re.findall(rf"data-curve='{curve.name}'>(\d+)<", html_text)]
        assert sum(images) == diagram.n_images
        assert images == curve.bins["images"].to_numpy()[used].tolist()
    traces = {t.name.split(" (")[0]: t for t in view.reliability.data}
    assert set(traces) == {"perfectly calibrated", "raw", "calibrated"}
    from test_plotly_config import _assert_local   # issue 22 item 5: this tab's plots stay on this machine too
    for name, figure in view.figures.items():
        _assert_local(figure._config, name)
    shown = diagram.calibrated.bins[diagram.calibrated.bins["images"] > 0]
    assert np.allclose(traces["calibrated"].y, shown["accuracy"]) and np.allclose(traces["calibrated"].x, shown["mean_confidence"])
    # the report: the same table, the figure, and the flag count at the page's level
    app.state.set_novelty_alpha(MOVED_LEVEL)
    text = write_report(app.state, tmp_path / "report.html").read_text(encoding="utf-8")
    section = text[text.index("id='subsets'"):]
    assert reliability_html_of(subsets) in section and "ss-report-reliability" in section
    flagged = int(app.state.subset_predictions()["none_of_these"].sum())
    assert f"data-flagged='{flagged}' data-level='{MOVED_LEVEL:g}'" in section
    assert external_references(text) == []


def reliability_html_of(subsets) -> str:
    from synthscope_dashboard.calibration_plot import reliability_html

    return reliability_html(subsets.reliability)


@pytest.mark.browser
def test_moving_the_level_in_the_browser_moves_the_count_and_the_grid_and_presentation_keeps_the_count(
        served_tree, loaded):
    """The real Voila page: the analyst moves the "none of these" slider with the keyboard, the count and
    the grid's flags follow; presentation mode hides the slider and keeps the count with its level."""
    sync_api = pytest.importorskip("playwright.sync_api")

    run = loaded.subsets.run          # the same tree and options as the page's kernel: deterministic
    expected = {level: int(run.none_of_these_at(level).sum()) for level in (0.01, MOVED_LEVEL)}
    assert expected[MOVED_LEVEL] > expected[0.01]
    url = served_tree["url"]
    count = ".ss-view:visible .ss-none-of-these"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url, timeout=PAGE_TIMEOUT_MS)
            page.wait_for_selector(".ss-app", timeout=PAGE_TIMEOUT_MS)
            page.locator(".lm-TabBar-tab", has_text="Training subsets (2025)").first.click()
            page.wait_for_selector(f"{count}[data-level='0.01']")
            first = (int(page.locator(count).get_attribute("data-flagged")),
                     page.locator(".ss-view:visible .ss-subset-table td[data-flagged='1']").count())
            handle = page.locator(".ss-view:visible .ss-novelty-level .noUi-handle").first
            handle.focus()
            for _ in range(3):                      # 0.01 -> 0.02 -> 0.05 -> 0.1
                page.keyboard.press("ArrowRight")
            page.wait_for_selector(f"{count}[data-level='{MOVED_LEVEL:g}']")
            moved = (int(page.locator(count).get_attribute("data-flagged")),
                     page.locator(".ss-view:visible .ss-subset-table td[data-flagged='1']").count(),
                     page.locator(count).inner_text(),
                     page.locator(".ss-view:visible .ss-novelty-level .widget-readout").inner_text(),
                     page.locator(".ss-view:visible .ss-level-count").inner_text())
            ARTIFACTS.mkdir(exist_ok=True)
            page.wait_for_timeout(600)
            page.screenshot(path=str(ARTIFACTS / "dashboard-subsets-2025-level.png"), full_page=True)
            page.locator("text=Presentation mode").first.click()
            page.wait_for_selector(".ss-view:visible .ss-novelty-level", state="hidden")
            presented = (page.locator(count).is_visible(), page.locator(count).inner_text())
            page.wait_for_timeout(600)
            page.screenshot(path=str(ARTIFACTS / "dashboard-subsets-2025-presentation.png"), full_page=True)
        finally:
            browser.close()
    assert first == (expected[0.01], expected[0.01])
    assert moved[:2] == (expected[MOVED_LEVEL], expected[MOVED_LEVEL])
    assert f"{expected[MOVED_LEVEL]} of {N_TEST_ALL} test images are none of these" in moved[2]
    assert moved[3] == f"{MOVED_LEVEL:g}" and f"{expected[MOVED_LEVEL]} of {N_TEST_ALL} flagged" in moved[4]
    assert presented[0] and f"at level {MOVED_LEVEL:g}" in presented[1]
    assert f"{expected[MOVED_LEVEL]} of {N_TEST_ALL}" in presented[1]
