"""`synthscope dashboard PATH`: serve the Voila dashboard (dashboard/app.ipynb) on 127.0.0.1.

This module is imported by the CLI on every command, so it imports no widget or server package;
Voila runs in a child process (`python -m synthscope_dashboard.server`: Voila with the page cap).

What the server lets in: Host headers that name a loopback address or `localhost` (jupyter_server's
`check_host`, so a DNS-rebinding page is refused), websockets and API calls from the page's own origin
only (jupyter_server's `check_origin`), at most `max_pages` pages holding a kernel at once, and beyond
loopback only requests that carry the token.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from synthscope.commands._common import (
    CacheDirOption, Device, DeviceOption, Layout, LayoutOption, ManifestOption, SizePolicy, SizePolicyOption,
    apply_cache_dir, choice, fail, guard_outputs,
)

ENV_PATH = "SYNTHSCOPE_DASHBOARD_PATH"
ENV_K = "SYNTHSCOPE_DASHBOARD_K"
ENV_EXPORT_DIR = "SYNTHSCOPE_DASHBOARD_EXPORT_DIR"
ENV_LOAD = "SYNTHSCOPE_DASHBOARD_LOAD"      # the loading options, JSON (read by the dashboard's build())
ENV_TOKEN = "SYNTHSCOPE_DASHBOARD_TOKEN"    # the token beyond loopback (else --token, else a random one)
SERVER_MODULE = "synthscope_dashboard.server"
# Every page (GET /) gets a kernel (about 400 MB with the data loaded), at most MAX_PAGES at once; one
# preheated kernel waits beside them. A closed page shuts its kernel down; kernels of pages that went
# away without saying so are culled after CULL_IDLE_TIMEOUT s idle, checked every CULL_INTERVAL s. A page
# that is open keeps its kernel (cull_connected=False), and the preheated kernel is never culled.
MAX_PAGES = 4
CULL_IDLE_TIMEOUT = 300
CULL_INTERVAL = 60
# Voila hides a failing cell's error unless --show_tracebacks (off: a traceback shows paths and code to
# whoever opens the page); its own hint names Voila options the dashboard's user does not pass.
CELL_ERROR_INSTRUCTION = "The traceback is in the log of the terminal that runs `synthscope dashboard`."
NOTEBOOK_NAME = "app.ipynb"
# The same thin notebook as dashboard/app.ipynb, for installs that do not ship the repo's copy.
_THIN_NOTEBOOK = """{
 "cells": [{"cell_type": "code", "execution_count": null, "id": "app", "metadata": {}, "outputs": [],
            "source": ["from synthscope_dashboard import build\\n", "\\n", "build(background=True)"]}],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}
"""


#: what the page's kernel and server import: the packages of synthscope's [dashboard] extra
DASHBOARD_MODULES = ("voila", "ipykernel", "ipywidgets", "traitlets", "plotly", "anywidget")
INSTALL_HINT = "pip install 'synthscope[dashboard]' (in a checkout: pip install -e '.[dashboard]', or make setup)"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):   # a blocked or broken package counts as missing
        return False


def dashboard_extra_problem() -> str | None:
    """Why the dashboard cannot be served from this installation (its extra is not installed), or None."""
    missing = [module for module in DASHBOARD_MODULES if not _importable(module)]
    if not missing:
        return None
    return (f"the dashboard needs synthscope's [dashboard] extra, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with {INSTALL_HINT}")


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


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1): only this machine
    can reach a server bound there. A name that does not resolve is not loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0].split("%")[0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(address).is_loopback for address in addresses)


def host_options(host: str) -> list[str]:
    """The server's Host check for `--host` (jupyter_server's `check_host`): loopback addresses and
    `localhost` always, a host name given with --host too. An address beyond loopback (0.0.0.0 included)
    cannot be listed there, so the check is off, as in Jupyter; the token then guards the page."""
    try:
        address = ipaddress.ip_address(host.strip("[]")) if host not in ("", "*") else None
    except ValueError:   # a host name: it joins the names the Host header may give
        names = ["localhost"] + ([host] if host != "localhost" else [])
        return ["--DashboardVoila.allow_remote_access=False"] + [f"--DashboardVoila.local_hostnames={name}"
                                                                 for name in names]
    if address is not None and address.is_loopback:
        return ["--DashboardVoila.allow_remote_access=False", "--DashboardVoila.local_hostnames=localhost"]
    return ["--DashboardVoila.allow_remote_access=True"]


def token_problem(token: str) -> str | None:
    if not token or any(ch.isspace() for ch in token) or len(token) < 8:
        return "the token must be at least 8 characters without spaces"
    return None


def dashboard_token(host: str, token: str | None = None) -> str | None:
    """The token the page will ask for: `token` (--token), else $SYNTHSCOPE_DASHBOARD_TOKEN, else beyond
    loopback a new random one; None (no token) on loopback when none is given. ValueError for a token
    that is empty, has spaces or is shorter than 8 characters."""
    if token is None:
        token = os.environ.get(ENV_TOKEN) or None
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    if token is not None and token_problem(token):
        raise ValueError(f"{token_problem(token)} (--token or ${ENV_TOKEN})")
    return token


def voila_command(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8866, *,
                  open_browser: bool = False, preheat: bool = True, k: int | None = None,
                  export_dir: str | os.PathLike | None = None, cull_idle_timeout: int = CULL_IDLE_TIMEOUT,
                  cull_interval: int = CULL_INTERVAL, load_options: dict | None = None,
                  notebook: str | os.PathLike | None = None, max_pages: int = MAX_PAGES,
                  token: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The Voila command line and environment that serve the dashboard for `path` (with `k` generators
    to cluster into, when the task states it, and `export_dir` the only folder exports may write under).
    `cull_idle_timeout` / `cull_interval` are seconds (tests shorten them). `notebook` replaces
    dashboard/app.ipynb (the browser benchmark serves a notebook of its own; its folder is the root).
    `max_pages`: most pages holding a kernel at once. `token`: required beyond loopback (ValueError
    without one); it reaches Voila through the environment, never the command line that `ps` shows."""
    if token is None and not is_loopback(host):
        raise ValueError(f"serving on {host} (beyond loopback) needs a token")
    if token is not None and token_problem(token):
        raise ValueError(token_problem(token))
    if int(max_pages) < 1:
        raise ValueError(f"max_pages must be at least 1, not {max_pages}")
    app_notebook = find_notebook()
    notebook = Path(notebook).resolve() if notebook is not None else app_notebook
    templates = app_notebook.parent / "share" / "jupyter"   # Voila's lab template without its CDN links
    data_path = Path(path).expanduser().resolve()
    env = dict(os.environ)
    env[ENV_PATH] = str(data_path)
    if k is not None:
        env[ENV_K] = str(int(k))
    if export_dir is not None:
        env[ENV_EXPORT_DIR] = str(Path(export_dir).expanduser().resolve())
    loading = {key: value for key, value in (load_options or {}).items() if value not in (None, "error", "auto")}
    if loading:   # size policy, layout, manifest, device: read by the kernel as the CLI would
        env[ENV_LOAD] = json.dumps({k: str(v) for k, v in loading.items()})
    argv = [sys.executable, "-m", SERVER_MODULE, str(notebook), f"--Voila.ip={host}", f"--port={port}",
            "--Voila.port_retries=0",   # serve on the port asked for or fail: never on another one silently
            "--no-browser" if not open_browser else "--Voila.open_browser=True",
            f"--VoilaExecutor.cell_error_instruction={CELL_ERROR_INSTRUCTION}",
            f"--Voila.root_dir={notebook.parent}",
            # one kernel per page, at most max_pages; a reloaded page gets a fresh kernel that restores the
            # saved session, and the kernel of a closed page is shut down once idle
            f"--PageKernelManager.max_pages={int(max_pages)}",
            f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_timeout)}",
            f"--MappingKernelManager.cull_interval={int(cull_interval)}",
            "--MappingKernelManager.cull_connected=False"] + host_options(host)
    if token is not None:
        env["JUPYTER_TOKEN"] = token   # read by jupyter_server's identity provider when Voila asks for a token
        argv.append("--Voila.auto_token=True")
    else:
        for name in ("JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE"):
            env.pop(name, None)
    if preheat:
        argv += ["--preheat_kernel=True", "--pool_size=1"]
    if (templates / "voila" / "templates" / "synthscope").is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(templates), env.get("JUPYTER_PATH", "")]))
        argv.append("--template=synthscope")
    return argv, env


def wait_until_serving(url: str, process: subprocess.Popen, log=None, timeout: float = 120.0) -> None:
    """Return once the Voila server started by `process` answers at `url` (any HTTP answer counts);
    raise RuntimeError, with the tail of `log` (a readable file) when given, if it exits or times out."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "voila/static/", timeout=2)
            return
        except urllib.error.HTTPError:   # any answer means the server is up
            return
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                tail = ""
                if log is not None:
                    log.seek(0)
                    tail = ":\n" + log.read()[-3000:]
                raise RuntimeError("Voila did not start" + tail)
            time.sleep(0.5)


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be served on, or None when it is free (checked by binding it, as Voila will)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"cannot resolve host {host}: {error}"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(address)
        except OSError as error:
            return (f"port {port} on {host} is in use ({error.strerror or error}); stop what serves there or "
                    "pick another with --port")
    return None


def k_problem(path: str | os.PathLike, k: int | None) -> str | None:
    """Why `--k` cannot be used for the data under `path`, or None: the page's own rule (the core's
    `check_k`) on the images the page clusters (the sub-task 2 test images, or all without a test split)."""
    if k is None:
        return None
    from synthscope.attribution import check_k
    from synthscope.datatree import WorkspaceError, count_attribution_images

    try:
        n_images = count_attribution_images(path)
    except WorkspaceError:
        return None   # the page says what is wrong with the folder
    if n_images is None:
        return None
    try:
        check_k(k, n_images)
    except ValueError as error:
        return (f"--k {k} cannot be used for the {n_images:,} sub-task 2 images the dashboard clusters under "
                f"{path}: {error}")
    return None


def display_host(host: str) -> str:
    """The host to print in the URL: this machine's name for a wildcard address."""
    if host in ("", "*", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve_dashboard(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8866,
                    open_browser: bool = False, *, preheat: bool = True, k: int | None = None,
                    export_dir: str | os.PathLike | None = None, load_options: dict | None = None,
                    max_pages: int = MAX_PAGES, token: str | None = None) -> int:
    """Serve the dashboard for `path` until interrupted; returns Voila's exit code.

    Beyond loopback the page asks for a token: `token`, else $SYNTHSCOPE_DASHBOARD_TOKEN, else a new
    random one; the URL printed carries it, with a warning. On loopback a token is used only when given."""
    problem = dashboard_extra_problem()
    if problem:
        typer.secho(f"error: {problem}", err=True, fg=typer.colors.RED)
        return 2
    data_path = Path(path).expanduser()
    if not data_path.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_path}")
    loopback = is_loopback(host)
    try:
        token = dashboard_token(host, token)
    except ValueError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        return 2
    problem = port_problem(host, port)   # also for `synthscope demo --serve`, which calls this directly
    if problem:
        typer.secho(f"error: {problem}", err=True, fg=typer.colors.RED)
        return 2
    argv, env = voila_command(data_path, host, port, open_browser=open_browser, preheat=preheat, k=k,
                              export_dir=export_dir, load_options=load_options, max_pages=max_pages, token=token)
    url = f"http://{display_host(host)}:{port}/"
    if not loopback:
        typer.secho(f"WARNING: serving on {host}, beyond this machine: anyone who can reach port {port} there and "
                    "has the token can see these images, curate, and write under the export root. The page "
                    "travels unencrypted (http): share it only on a network you trust, or keep the default "
                    "--host 127.0.0.1 and forward the port over ssh.", err=True, fg=typer.colors.YELLOW)
    if token is not None:
        url += f"?token={token}"
    typer.echo(f"synthscope dashboard: serving {data_path.resolve()} at {url} (at most {max_pages} pages at once; "
               "Ctrl-C stops)")
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
        host: str = typer.Option("127.0.0.1", "--host", help="address to bind (keep 127.0.0.1 unless you mean to share it; beyond loopback the page asks for a token)"),
        open_browser: bool = typer.Option(False, "--open/--no-open", help="open a browser tab"),
        k: Optional[int] = typer.Option(None, "--k", min=1,
                                        help="number of generators in the sub-task 2 test set, as the task states it "
                                             "(default: the number of generators in the dev folder)"),
        export_dir: Optional[Path] = typer.Option(
            None, "--export-dir",
            help="the only folder the page's Export tab writes under (default: <cache>/exports/<session>)"),
        size_policy: SizePolicy = SizePolicyOption,
        layout: Optional[Layout] = LayoutOption,
        manifest: Optional[Path] = ManifestOption,
        device: Device = DeviceOption,
        max_pages: int = typer.Option(MAX_PAGES, "--max-pages", min=1,
                                      help="most pages (browser tabs) served at once, each with a kernel of its own "
                                           "(about 400 MB with the data loaded); more are refused until one closes"),
        token: Optional[str] = typer.Option(
            None, "--token",
            help=f"the token the page asks for; required beyond loopback (default: ${ENV_TOKEN}, else a new random "
                 "one, printed in the URL). An option shows in the process list: prefer the variable"),
        cache_dir: Optional[Path] = CacheDirOption,
    ) -> None:
        """Explore, curate and present both sub-tasks in the browser (Voila; needs the \\[dashboard] extra)."""
        if problem := dashboard_extra_problem():
            raise fail(problem)
        # the session store and the page's exports never land in the data folder
        guard_outputs({}, input_files={"--manifest": manifest}, data_folders={"PATH": path},
                      output_folders={"--export-dir": export_dir}, cache_dir=cache_dir)
        apply_cache_dir(cache_dir)
        if not path.expanduser().is_dir():
            raise fail(f"data folder not found: {path}")
        problem = k_problem(path.expanduser(), k)
        if problem:
            raise fail(problem)
        if export_dir is not None and export_dir.expanduser().exists() and not export_dir.expanduser().is_dir():
            raise fail(f"--export-dir {export_dir} exists and is not a folder")
        load_options = {"size_policy": choice(size_policy), "layout": choice(layout), "device": choice(device),
                        "manifest_csv": None if manifest is None else str(manifest.expanduser().resolve())}
        code = serve_dashboard(path, host, port, open_browser, k=k, export_dir=export_dir, load_options=load_options,
                               max_pages=max_pages, token=token)
        raise typer.Exit(code)
