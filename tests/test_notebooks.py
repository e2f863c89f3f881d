"""The walkthrough notebooks: committed without outputs, and every cell runs on the quick demo data.

Execution uses nbclient with a kernel spec written for this interpreter (the project's .venv), so a
`python3` kernel spec elsewhere on the machine cannot take over; a cell injected in front asserts it.
"""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {"01_training_data_fingerprints.ipynb", "02_generator_fingerprints.ipynb", "03_lab.ipynb"}


def public_api_violations(source: str) -> list[str]:
    """Each use of synthscope in `source` beyond `import synthscope as ss`, `from synthscope import <public
    name>` and `ss.<public name>`, where the public names are `synthscope.__all__` (the notebooks' and the
    README's rule: a user needs nothing but the package itself)."""
    import synthscope

    public = set(synthscope.__all__) | {"__all__", "__version__"}
    code = "\n".join("pass  # " + line if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())   # IPython magics and shell lines are not Python
    problems = []
    for node in ast.walk(ast.parse(code)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "synthscope" and (alias.name, alias.asname) != ("synthscope", "ss"):
                    problems.append(f"{where}: import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                                    + " (use `import synthscope as ss`)")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "synthscope":
            names = ", ".join(alias.name for alias in node.names)
            if node.module != "synthscope":
                problems.append(f"{where}: from {node.module} import {names} (a submodule, not the public API)")
            else:
                hidden = [alias.name for alias in node.names if alias.name not in public]
                if hidden:
                    problems.append(f"{where}: from synthscope import {', '.join(hidden)} (not in synthscope.__all__)")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ss":
            if node.attr not in public:
                problems.append(f"{where}: ss.{node.attr} (not in synthscope.__all__)")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            target = node.args[0].value
            if isinstance(target, str) and target.startswith("synthscope."):
                problems.append(f"{where}: imports {target!r} by name (a submodule, not the public API)")
    return problems


def test_the_walkthrough_notebooks_exist():
    assert EXPECTED <= {path.name for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_and_starts_with_an_explanation(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has saved outputs (strip them before committing)"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_the_public_api(path: Path):
    nb = nbformat.read(path, as_version=4)
    problems = [f"cell {index} {problem}" for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
                for problem in public_api_violations(cell.source)]
    assert not problems, f"{path.name} reaches past `import synthscope as ss`:\n" + "\n".join(problems)


def test_public_api_rule_catches_submodule_imports():
    bad = ("import synthscope.data\nfrom synthscope.membership import run_membership\nimport synthscope\n"
           "from synthscope import nearest_pairs\nss.membership.null_control()\n"
           "importlib.import_module('synthscope.lab')")
    assert len(public_api_violations(bad)) == 6
    good = "import synthscope as ss\nfrom synthscope import load_dataset\nrun = ss.run_membership(ss.load_dataset('x'))"
    assert public_api_violations(good) == []


def test_package_docstring_example_uses_only_the_public_api():
    import synthscope

    example = synthscope.__doc__.split("::", 1)[1].split("The CLI", 1)[0]
    assert "import synthscope as ss" in example
    assert public_api_violations(textwrap.dedent(example)) == []


@pytest.fixture(scope="session")
def quick_demo(quick_demo_root) -> Path:
    """The run's quick demo (conftest), shared by the xdist workers that run these tests (conftest schedules
    them one by one)."""
    return quick_demo_root


def _venv_kernel_manager(workdir: Path):
    """An async kernel manager whose only kernel spec runs this interpreter's ipykernel."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = workdir / "kernels" / "synthscope-venv"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "synthscope", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="synthscope-venv", kernel_spec_manager=specs)


def _execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, f'kernel runs {{sys.executable}}, not the project venv'"
    nb.cells.insert(0, nbformat.v4.new_code_cell(check))
    client = NotebookClient(nb, km=_venv_kernel_manager(workdir), timeout=600,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    return nb


def _run_notebook(name: str, quick_demo: Path, tmp_path: Path, monkeypatch) -> Path:
    out = tmp_path / "out"
    monkeypatch.setenv("SYNTHSCOPE_DEMO_DIR", str(quick_demo))
    monkeypatch.setenv("SYNTHSCOPE_NOTEBOOK_OUT", str(out))
    nb = _execute(REPO_ROOT / "notebooks" / name, tmp_path)
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert images, f"{name} shows no images"
    return out


@pytest.mark.slow
@pytest.mark.timeout(1200)   # a whole notebook; each cell may take NotebookClient's 600 s
def test_training_data_fingerprints_notebook_writes_a_valid_run(quick_demo, tmp_path, monkeypatch):
    from synthscope.data import load_dataset
    from synthscope.submission import expected_ids, validate_run

    out = _run_notebook("01_training_data_fingerprints.ipynb", quick_demo, tmp_path, monkeypatch)
    test = load_dataset(quick_demo / "subtask1" / "test")
    result = validate_run(out / "subtask1_run.csv", "membership", expected_ids(test, "membership"))
    assert result.ok, result.format()


@pytest.mark.slow
@pytest.mark.timeout(1200)   # a whole notebook; each cell may take NotebookClient's 600 s
def test_generator_fingerprints_notebook_writes_a_valid_run(quick_demo, tmp_path, monkeypatch):
    from synthscope.data import load_dataset
    from synthscope.submission import expected_ids, validate_run

    out = _run_notebook("02_generator_fingerprints.ipynb", quick_demo, tmp_path, monkeypatch)
    test = load_dataset(quick_demo / "subtask2" / "test")
    k = len(pd.read_csv(quick_demo / "subtask2" / "model_key.csv"))
    result = validate_run(out / "subtask2_run.csv", "attribution", expected_ids(test, "attribution"), k=k)
    assert result.ok, result.format()


@pytest.mark.slow
@pytest.mark.timeout(1200)   # a whole notebook; each cell may take NotebookClient's 600 s
def test_lab_notebook_writes_a_benchmark_that_loads(quick_demo, tmp_path, monkeypatch):
    from synthscope.data import load_dataset, read_ground_truth

    out = _run_notebook("03_lab.ipynb", quick_demo, tmp_path, monkeypatch)
    (bench,) = out.glob("lab_benchmark_*")
    test = load_dataset(bench / "subtask2" / "test")
    truth = read_ground_truth(bench / "subtask2" / "test_ground_truth.csv")
    assert test.layout == "2024-st2-test"
    assert set(test.manifest["image_id"]) == set(truth.index)
    assert truth.nunique() == len(pd.read_csv(bench / "subtask2" / "model_key.csv"))
    assert load_dataset(bench / "subtask1" / "dev").layout == "2024-st1-dev"
