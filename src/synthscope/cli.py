"""The `synthscope` command line. Each module in `synthscope.commands` registers its own commands."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import synthscope.commands

app = typer.Typer(
    help="synthscope: find the fingerprints generative models leave in synthetic lung-CT images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    # Discovered rather than listed, so each area owns its commands in one file.
    for module_info in sorted(pkgutil.iter_modules(synthscope.commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"synthscope.commands.{module_info.name}")
        module.register(app)


_register_all()


def main() -> None:  # pragma: no cover - thin wrapper for `python -m synthscope`
    app()
