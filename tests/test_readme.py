"""The README's command-line block documents commands and options that exist (so it cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthscope.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[tuple[str, list[str]]]:
    """(subcommand, --options) for each line of the bash block under '## Command line'."""
    section = README.read_text().split("## Command line", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        code = line.split("#", 1)[0].strip()
        words = code.split()
        assert words[0] == "synthscope", line
        commands.append((words[1], sorted(set(re.findall(r"--[a-z][a-z-]*", code)))))
    return commands


def test_readme_lists_every_command_of_the_cli():
    documented = {name for name, _ in readme_commands()}
    registered = {command.name for command in app.registered_commands}
    assert documented == registered, f"README lacks {registered - documented}; CLI lacks {documented - registered}"


@pytest.mark.parametrize("name,options", readme_commands())
def test_readme_options_exist(name, options):
    result = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for option in options:
        assert option in plain, f"`synthscope {name}` has no {option}"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```(?:python|py)\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_examples_use_only_the_public_api():
    """Python examples in the README, if any, follow the notebooks' rule: `import synthscope as ss` and the
    names in `synthscope.__all__` only (none today: the README documents the command line)."""
    from test_notebooks import public_api_violations

    for block in readme_python_blocks():
        problems = public_api_violations(block)
        assert not problems, "README example reaches past `import synthscope as ss`:\n" + "\n".join(problems)


def large_dataset_lines() -> list[str]:
    """Every command line of the bash blocks under '## Large datasets'."""
    section = README.read_text().split("## Large datasets", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3, "the laptop, SLURM and running-scheduler blocks"
    return [line.strip() for block in blocks for line in block.strip().splitlines() if line.strip()]


def _synthscope_words(line: str) -> list[str]:
    import shlex

    return shlex.split(line.split(" #", 1)[0])


@pytest.mark.parametrize("line", [line for line in large_dataset_lines() if line.startswith("synthscope ")])
def test_large_dataset_commands_parse(line, tmp_path, monkeypatch):
    """Each synthscope line of the section is parsed by the real CLI: its command and every option exist and
    take the values shown (the run itself is stopped before anything is computed: the paths do not exist)."""
    words = _synthscope_words(line)
    command = typer_command(words[1])
    # make_context parses like a run would (unknown options and bad values raise) without running the command
    context = command.make_context(words[1], [w.replace("$(head -n 1 scheduler.txt)", "tcp://10.0.0.5:8786")
                                              for w in words[2:]])
    known = {opt: param.name for param in command.params for opt in param.opts}
    for option in re.findall(r"(--[a-z][a-z-]*)", line):
        assert context.params[known[option]] not in (None, [], ()), f"{option} was not taken: {line}"


def typer_command(name: str):
    import typer.main

    group = typer.main.get_command(app)
    return group.commands[name]


def test_large_dataset_installs_name_extras_that_exist_and_the_python_line_compiles():
    import ast
    import shlex
    import tomllib

    extras = set(tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    lines = large_dataset_lines()
    installs = [line for line in lines if line.startswith("pip install")]
    assert installs
    for line in installs:
        for named in re.findall(r"synthscope\[([a-z,]+)\]", line):
            assert set(named.split(",")) <= extras, line
    (python,) = [line for line in lines if line.startswith("python -c")]
    code = shlex.split(python.rsplit(">", 1)[0])[2]
    tree = ast.parse(code)
    assert any(isinstance(node, ast.ImportFrom) and node.module == "dask_jobqueue" for node in ast.walk(tree))
    assert "scheduler_address" in code
    assert all(line.split()[0] in ("pip", "python", "synthscope", "export") for line in lines)


def test_the_readme_images_exist_are_small_and_made_by_the_screenshot_script():
    """Every image the README shows is in docs/, at most ~150 kB, and one `docs/make_screenshots.py` makes."""
    script = (README.parent / "docs" / "make_screenshots.py").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert len(images) >= 7, images
    for image in images:
        path = README.parent / image
        assert path.is_file(), f"README shows {image}, which does not exist"
        assert path.stat().st_size <= 160_000, f"{image} is {path.stat().st_size:,} bytes"
        assert path.name in script, f"{image} is not made by docs/make_screenshots.py"
