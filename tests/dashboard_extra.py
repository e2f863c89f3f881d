"""The import names of pyproject's [dashboard] extra, for the tests that keep the core free of it."""

from __future__ import annotations

import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement


def dashboard_only_modules(repo_root: Path) -> set[str]:
    """Import names of the [dashboard] extra's distributions (voila, plotly, _plotly_utils, ...)."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    extra = {Requirement(r).name.lower().replace("_", "-") for r in project["optional-dependencies"]["dashboard"]}
    modules = {module for module, dists in packages_distributions().items()
               if any(d.lower().replace("_", "-") in extra for d in dists)}
    assert {"voila", "ipywidgets", "plotly", "traitlets", "kaleido"} <= modules, modules
    return modules
