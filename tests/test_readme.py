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
