"""Set-up files cannot rot: environment.yml installs the project, pyproject pins the torch pair and declares
every package the tests import."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from packaging.requirements import Requirement


def test_environment_yml_installs_the_project_with_python_311(repo_root):
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    dependencies = env["dependencies"]
    assert "python=3.11" in dependencies
    assert "pip" in dependencies
    pip_section = next(item["pip"] for item in dependencies if isinstance(item, dict) and "pip" in item)
    editable = [line for line in pip_section if line.replace('"', "").startswith("-e .[")]
    assert editable, f"environment.yml must pip-install '-e .[extras]', found {pip_section}"
    extras = editable[0].replace('"', "").split("[", 1)[1].rstrip("]").split(",")
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    known = set(pyproject["project"]["optional-dependencies"])
    assert "test" in extras and set(extras) <= known, (extras, known)


def test_pyproject_pins_the_only_torch_pair_that_imports_together(repo_root):
    dependencies = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in dependencies
    assert "torchvision==0.29.1" in dependencies
    assert not [d for d in dependencies if d.startswith("torch") and d not in ("torch==2.14.1", "torchvision==0.29.1")]


def test_the_cli_entry_point_is_declared(repo_root):
    scripts = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["synthscope"] == "synthscope.cli:app"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_the_tests_import_is_declared(repo_root):
    """A test importing a package that only arrives as someone else's dependency (networkx did) breaks
    the day that dependency drops it: each must be in the dependencies or an extra."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    declared = {_canonical(Requirement(r).name) for r in requirements}
    local = {path.stem for path in (repo_root / "tests").glob("*.py")} | {"synthscope", "synthscope_dashboard"}
    imported = set()
    for path in sorted((repo_root / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    distributions = packages_distributions()
    undeclared = sorted(f"{module} (from {', '.join(distributions.get(module, ['no installed distribution']))})"
                        for module in imported - set(sys.stdlib_module_names) - local
                        if not any(_canonical(d) in declared for d in distributions.get(module, [])))
    assert not undeclared, "imported by tests but not declared in pyproject.toml: " + ", ".join(undeclared)


def test_every_test_has_a_timeout_and_each_run_lists_the_slowest(repo_root):
    options = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert int(options["timeout"]) == 600   # pytest-timeout: a hung test fails instead of stalling `make test`
    assert "--durations=15" in options["addopts"].split()


def test_type_checkers_see_the_public_api(repo_root):
    """py.typed marks the package as typed, and __init__.pyi (which the lazy __init__ loads its names from)
    re-exports each public name explicitly (`from .data import load_dataset as load_dataset`); both ship."""
    import synthscope

    package = repo_root / "src" / "synthscope"
    shipped = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["synthscope"]
    for name in ("py.typed", "__init__.pyi"):
        assert (package / name).is_file(), f"src/synthscope/{name} is missing"
        assert any(fnmatch.fnmatch(name, pattern) for pattern in shipped), f"{name} is not in package-data"
    stub = ast.parse((package / "__init__.pyi").read_text())
    exported = [alias.name for node in stub.body if isinstance(node, ast.ImportFrom) for alias in node.names]
    implicit = [alias.name for node in stub.body if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.asname != alias.name]
    assert not implicit, f"not re-exported for type checkers (write `name as name`): {implicit}"
    assert sorted(exported) == synthscope.__all__ and len(exported) == len(set(exported))


def test_runs_that_name_one_built_once_folder_build_each_input_once(repo_root, tmp_path, monkeypatch):
    """`make test`'s two passes are two pytest runs at once: with $SYNTHSCOPE_TEST_BUILT_ONCE naming one folder
    they build a shared input (the small bench and its cache) once; without it each run builds its own."""
    import conftest

    class Run:   # a tmp_path_factory: each pytest run has a base temp dir of its own
        def __init__(self, base: Path):
            self.base = base

        def getbasetemp(self) -> Path:
            return self.base

    built = []

    def build(folder: Path) -> None:
        built.append(folder)
        folder.mkdir(parents=True)
        (folder / "input.txt").write_text("built")

    variable = "SYNTHSCOPE_TEST_BUILT_ONCE"
    assert f'export {variable}=' in (repo_root / "Makefile").read_text()   # what make test gives both passes
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "make-test"))
    first = conftest.build_once(Run(tmp_path / "browser-pass"), "bench", build)
    second = conftest.build_once(Run(tmp_path / "other-pass"), "bench", build)
    assert first == second == tmp_path / "make-test" / "built-once" / "bench"
    assert built == [first] and (second / "input.txt").read_text() == "built"
    monkeypatch.delenv(variable)
    alone = conftest.build_once(Run(tmp_path / "alone"), "bench", build)
    assert alone == tmp_path / "alone" / "built-once" / "bench" and built == [first, alone]
