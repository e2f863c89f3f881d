"""Set-up files cannot rot: environment.yml installs the project, pyproject pins the torch pair."""

from __future__ import annotations

import tomllib

import yaml


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
