"""Issue 22 item 5: everything stays on this machine. No plot offers plotly's "Share chart..." upload or
links to plotly.com: the page's FigureWidgets, the saved figures and the static report all carry
`PLOT_CONFIG`. Kernel side; the browser checks the drawn modebars (test_dashboard_browser_layout.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from test_dashboard_state import bench, bench_cache, loaded, workspace  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _assert_local(config: dict, where: str) -> None:
    assert config.get("displaylogo") is False, f"{where}: the plotly logo links to plotly.com"
    assert config.get("showSendToCloud") is False, f"{where}: 'Share chart...' uploads to Plotly Cloud"
    assert "sendChartToCloud" in config.get("modeBarButtonsToRemove", []), where


def test_the_figurewidget_config_trait_is_the_one_plotly_draws_with():
    """plotly.py has no public config for FigureWidget (plotly/plotly.py#1074, open since 2018): the page
    sets its synced `_config` trait, which the widget's front end hands to Plotly.newPlot. This fails when
    a plotly release renames or stops reading it; pyproject caps plotly to the releases checked."""
    import plotly
    import plotly.graph_objects as go
    from packaging.requirements import Requirement
    from packaging.version import Version

    trait = go.FigureWidget.class_traits().get("_config")
    assert trait is not None and trait.metadata.get("sync") is True
    bundle = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_text(encoding="utf-8")
    assert re.search(r'model\.get\("_config"\)', bundle), "the widget's front end no longer reads _config"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    plotly_req = next(Requirement(r) for r in project["optional-dependencies"]["dashboard"]
                      if Requirement(r).name == "plotly")
    assert any(spec.operator == "<" for spec in plotly_req.specifier), "plotly needs an upper bound"
    assert Version(plotly.__version__) in plotly_req.specifier


@pytest.fixture
def export_app(workspace, tmp_path):  # noqa: F811
    from synthscope_dashboard.app import build

    dashboard = build(workspace=workspace, export_dir=tmp_path / "exports", autosave=False)
    for view in dashboard.views:
        view.ensure_built()
    return dashboard


def test_every_plot_saved_figure_and_report_is_local_only(export_app, tmp_path):
    from synthscope_dashboard.report import write_report

    figures = {f"{view.title}: {name}": figure for view in export_app.views for name, figure in view.figures.items()}
    assert len(figures) >= 3, sorted(figures)
    for where, figure in figures.items():
        _assert_local(figure._config, where)
    export = export_app.view("Export")
    export.folder.value = "figs"
    export.figures_button.click()
    saved = sorted((tmp_path / "exports" / "figs" / "figures").glob("*.html"))
    assert len(saved) == len(figures), export.result.value
    report = write_report(export_app.state, tmp_path / "report.html")
    for path in saved + [report]:
        configs = _new_plot_configs(path.read_text(encoding="utf-8"))
        assert configs, f"{path.name}: no Plotly.newPlot call found"
        for config in configs:
            _assert_local(config, path.name)


def _new_plot_configs(text: str) -> list[dict]:
    """The config argument of every `Plotly.newPlot(id, data, layout, config)` that plotly.io writes."""
    decoder, configs = json.JSONDecoder(), []
    for match in re.finditer(r'Plotly\.newPlot\(\s*', text):
        position, arguments = match.end(), []
        for _ in range(4):
            value, position = decoder.raw_decode(text, position)
            arguments.append(value)
            position = re.compile(r'\s*,?\s*').match(text, position).end()
        configs.append(arguments[3])
    return configs
