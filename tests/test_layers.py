"""The core stays pure: nothing under src/synthscope imports widget or server packages."""

from __future__ import annotations

import ast
from pathlib import Path

WIDGET_MODULES = {"ipywidgets", "voila", "anywidget", "IPython.display", "plotly.graph_objects.FigureWidget"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_has_no_widget_imports(repo_root):
    offenders = []
    core_files = sorted((repo_root / "src" / "synthscope").rglob("*.py"))
    assert core_files, "no core sources found"
    for path in core_files:
        for name in _imports(path):
            if any(name == widget or name.startswith(widget + ".") for widget in WIDGET_MODULES):
                offenders.append(f"{path.relative_to(repo_root)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_core_never_imports_a_package_of_the_dashboard_extra(repo_root):
    """`pip install synthscope` has no notebook stack: the core may not import voila, plotly, traitlets, ..."""
    from dashboard_extra import dashboard_only_modules

    hidden = dashboard_only_modules(repo_root)
    offenders = [f"{path.relative_to(repo_root)} imports {name}"
                 for path in sorted((repo_root / "src" / "synthscope").rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in hidden]
    assert not offenders, "\n".join(offenders)


def test_dashboard_notebook_only_calls_build(repo_root):
    import nbformat

    notebook = nbformat.read(repo_root / "dashboard" / "app.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "build(" in code
    # Thin: the notebook holds no logic of its own.
    assert len([line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]) <= 4
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "outputs must be stripped"


def _core_modules(repo_root: Path) -> dict[str, Path]:
    root = repo_root / "src"
    modules = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def test_core_never_imports_the_dashboard(repo_root):
    offenders = [f"{path.relative_to(repo_root)} imports {name}"
                 for path in sorted((repo_root / "src" / "synthscope").rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] == "synthscope_dashboard"]
    assert not offenders, "\n".join(offenders)


def test_core_modules_import_one_another_without_a_circle(repo_root):
    """Every import between core modules, at module level or inside a function, forms no cycle (a cycle
    such as cache -> features -> open_clip_models -> cache only works while one import stays lazy)."""
    import networkx as nx

    modules = _core_modules(repo_root)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _imports(path):
            if target in modules and target != name:
                graph.add_edge(name, target)
    assert graph.number_of_edges() > 50, "the import graph was not read"
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import circles: {cycles}"


def test_every_private_function_of_the_core_is_used(repo_root):
    """A module-level `_helper` of the core that nothing names any more is dead code (decorated ones are
    registered by their decorator, so they count as used)."""
    sources = sorted((repo_root / "src").rglob("*.py")) + sorted((repo_root / "dashboard").rglob("*.py"))
    defined, used = [], set()
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        core = (repo_root / "src" / "synthscope") in path.parents
        for node in tree.body:
            if (core and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and node.name.startswith("_") and not node.name.startswith("__") and not node.decorator_list):
                defined.append((node.name, path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.alias):
                used.add(node.name.rsplit(".", 1)[-1])
    dead = sorted(f"{path.relative_to(repo_root)}: {name}" for name, path in defined if name not in used)
    assert not dead, "unused private functions:\n" + "\n".join(dead)


MAX_MODULE_LINES = 700   # issue 23 item 12: state.py, views/generators.py and attribution.py were split


def test_no_module_is_a_room_too_big_to_hold_in_one_head(repo_root):
    sources = sorted((repo_root / "src").rglob("*.py")) + sorted((repo_root / "dashboard").rglob("*.py"))
    too_big = [f"{path.relative_to(repo_root)}: {n} lines" for path in sources
               if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not too_big, f"modules over {MAX_MODULE_LINES} lines (split them by concern):\n" + "\n".join(too_big)


#: the only module that may call os.replace: outputs.py (the one atomic write, and publish_folder for trees)
OS_REPLACE_ALLOWED = {"src/synthscope/outputs.py"}


def _calls_os_replace(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "replace" and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name == "replace" for a in node.names):
            return True
    return False


def test_files_are_written_atomically_in_one_place(repo_root):
    """Issue 23 item 14: the temp-file-then-os.replace write lives in synthscope.outputs only; every other
    module calls atomic_write_text / atomic_write_bytes / atomic_save / atomic_writer."""
    sources = sorted((repo_root / "src").rglob("*.py")) + sorted((repo_root / "dashboard").rglob("*.py"))
    offenders = [str(path.relative_to(repo_root)) for path in sources
                 if str(path.relative_to(repo_root)) not in OS_REPLACE_ALLOWED and _calls_os_replace(path)]
    assert not offenders, "hand-written atomic writes (use synthscope.outputs):\n" + "\n".join(offenders)


def test_only_the_app_imports_the_views(repo_root):
    """Issue 23 item 13: arrows point down. The views sit on top (app.py builds them); the report, the
    tables, the state and the HTML helpers (markup.py) never import a view, even lazily."""
    package = repo_root / "dashboard" / "synthscope_dashboard"
    allowed = {package / "app.py"}
    offenders = [f"{path.relative_to(repo_root)} imports {name}"
                 for path in sorted(package.rglob("*.py"))
                 if path not in allowed and (package / "views") not in path.parents
                 for name in sorted(_imports(path))
                 if name == "synthscope_dashboard.views" or name.startswith("synthscope_dashboard.views.")]
    assert not offenders, "\n".join(offenders)


def test_the_ari_nmi_tables_are_built_in_one_place(repo_root):
    """Issue 23 item 13: the page and the report showed ARI / NMI tables built by two copies of one loop;
    only tables.py calls the core's attribution_report now."""
    package = repo_root / "dashboard" / "synthscope_dashboard"
    callers = sorted(str(path.relative_to(repo_root)) for path in package.rglob("*.py")
                     if any(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                            == "attribution_report" for node in ast.walk(ast.parse(path.read_text()))))
    assert callers == ["dashboard/synthscope_dashboard/tables.py"], callers


#: dashboard names that still repeat a core name (issue 23 item 17, not yet renamed): `run` is the bench
#: section protocol (every section module defines one), `write_report` writes another report, and
#: workspace.py's WorkspaceError / default_cache_dir wrap the core's
SHADOWS_PENDING = {"run", "write_report", "WorkspaceError", "default_cache_dir"}


def _public_top_level(paths) -> set[str]:
    return {node.name for path in paths for node in ast.parse(path.read_text()).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")}


def test_the_dashboard_does_not_reuse_a_core_name_for_another_thing(repo_root):
    """Issue 23 item 17: the dashboard's `cluster_fingerprints` shadowed the core's function of that name and
    returned another type; one idea has one name, two things have two."""
    core = _public_top_level(sorted((repo_root / "src").rglob("*.py")))
    dashboard = _public_top_level(sorted((repo_root / "dashboard").rglob("*.py")))
    shadows = sorted((core & dashboard) - SHADOWS_PENDING)
    assert not shadows, f"dashboard names that repeat a core name: {shadows}"
