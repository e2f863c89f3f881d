"""`synthscope dashboard PATH`: serve the Voila dashboard (dashboard/app.ipynb) on 127.0.0.1.

This module is imported by the CLI on every command, so it imports no widget or server package;
Voila runs in a child process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from synthscope.commands._common import CacheDirOption, apply_cache_dir, fail

ENV_PATH = "SYNTHSCOPE_DASHBOARD_PATH"
ENV_K = "SYNTHSCOPE_DASHBOARD_K"
NOTEBOOK_NAME = "app.ipynb"
# The same thin notebook as dashboard/app.ipynb, for installs that do not ship the repo's copy.
_THIN_NOTEBOOK = """{
 "cells": [{"cell_type": "code", "execution_count": null, "id": "app", "metadata": {}, "outputs": [],
            "source": ["from synthscope_dashboard import build\\n", "\\n", "build()"]}],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}
"""


def find_notebook() -> Path:
    """dashboard/app.ipynb beside the installed dashboard package (editable install or repo checkout);
    otherwise a copy of the thin notebook written into the cache dir."""
    import importlib.util

    spec = importlib.util.find_spec("synthscope_dashboard")
    candidates = []
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).resolve().parent.parent / NOTEBOOK_NAME)
    candidates.append(Path(__file__).resolve().parents[3] / "dashboard" / NOTEBOOK_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    from synthscope.cache import default_cache_dir

    fallback = default_cache_dir() / "dashboard" / NOTEBOOK_NAME
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(_THIN_NOTEBOOK)
    return fallback


def voila_command(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8866, *,
                  open_browser: bool = False, preheat: bool = True,
                  k: int | None = None) -> tuple[list[str], dict[str, str]]:
    """The Voila command line and environment that serve the dashboard for `path` (with `k` generators
    to cluster into, when the task states it)."""
    notebook = find_notebook()
    data_path = Path(path).expanduser().resolve()
    env = dict(os.environ)
    env[ENV_PATH] = str(data_path)
    if k is not None:
        env[ENV_K] = str(int(k))
    argv = [sys.executable, "-m", "voila", str(notebook), f"--Voila.ip={host}", f"--port={port}",
            "--no-browser" if not open_browser else "--Voila.open_browser=True",
            "--show_tracebacks=True", f"--Voila.root_dir={notebook.parent}",
            # one kernel per page; a reloaded page gets a fresh kernel that restores the saved session
            "--MappingKernelManager.cull_idle_timeout=3600"]
    if preheat:
        argv += ["--preheat_kernel=True", "--pool_size=1"]
    templates = notebook.parent / "share" / "jupyter"   # Voila's lab template without its CDN links
    if (templates / "voila" / "templates" / "synthscope").is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(templates), env.get("JUPYTER_PATH", "")]))
        argv.append("--template=synthscope")
    return argv, env


def serve_dashboard(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8866,
                    open_browser: bool = False, *, preheat: bool = True, k: int | None = None) -> int:
    """Serve the dashboard for `path` until interrupted; returns Voila's exit code."""
    data_path = Path(path).expanduser()
    if not data_path.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_path}")
    argv, env = voila_command(data_path, host, port, open_browser=open_browser, preheat=preheat, k=k)
    typer.echo(f"synthscope dashboard: serving {data_path.resolve()} at http://{host}:{port}/ (Ctrl-C stops)")
    process = subprocess.Popen(argv, env=env)

    def stop(signum, frame):   # SIGTERM (e.g. from a supervisor) must not orphan Voila and its kernels
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if process.poll() is None:
            process.terminate()   # Voila shuts its kernels down on SIGTERM
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def dashboard(
        path: Path = typer.Argument(..., help="a data set folder, a dev/test pair, or a bench root with subtask1/ subtask2/"),
        port: int = typer.Option(8866, "--port", help="port to serve on"),
        host: str = typer.Option("127.0.0.1", "--host", help="address to bind (keep 127.0.0.1 unless you mean to share it)"),
        open_browser: bool = typer.Option(False, "--open/--no-open", help="open a browser tab"),
        k: Optional[int] = typer.Option(None, "--k", min=1,
                                        help="number of generators in the sub-task 2 test set, as the task states it "
                                             "(default: the number of generators in the dev folder)"),
        cache_dir: Optional[Path] = CacheDirOption,
    ) -> None:
        """Explore, curate and present both sub-tasks in the browser (Voila)."""
        apply_cache_dir(cache_dir)
        if not path.expanduser().is_dir():
            raise fail(f"data folder not found: {path}")
        code = serve_dashboard(path, host, port, open_browser, k=k)
        raise typer.Exit(code)
