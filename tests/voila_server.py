"""One way for tests to start and stop a Voila server: the way `synthscope dashboard` starts it
(`voila_command`), on a free loopback port, with a cache dir (and so a session file) of its own and its
log in a file that a failure quotes. Used by the browser tests and the server tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def voila_server(path: str | Path, workdir: Path, *, env: dict | None = None, cache_from: Path | None = None,
                 **options) -> Iterator[dict]:
    """Serve `path` until the block ends; `options` go to voila_command (export_dir, max_pages, culling...).
    `env` adds variables to the server's environment (e.g. SYNTHSCOPE_SCATTER_ENGINE).
    `workdir` (an empty tmp dir) gets the cache dir and voila.log; `cache_from`, a cache dir that a
    load_workspace of `path` filled (embeddings, membership runs, projections, no session), is copied into
    it first, so the kernels read what every server would compute alike (a cold small_bench load is ~36 CPU s
    per server, a warm one under 1 s). Yields {"url", "port", "process", "log",
    "cache"}. Raises RuntimeError with the log's tail if the server does not start. On exit SIGTERM (Voila
    shuts its kernels down), then SIGKILL after 15 s."""
    from synthscope.commands.dashboard import voila_command, wait_until_serving

    workdir = Path(workdir)
    cache = workdir / "cache"
    if cache_from is not None:
        shutil.copytree(cache_from, cache)
    cache.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv, server_env = voila_command(path, "127.0.0.1", port, **options)
    server_env.update(env or {})
    server_env["SYNTHSCOPE_CACHE_DIR"] = str(cache)
    url = f"http://127.0.0.1:{port}/"
    with open(workdir / "voila.log", "w+") as log:
        process = subprocess.Popen(argv, env=server_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(url, process, log)
            yield {"url": url, "port": port, "process": process, "log": log, "cache": cache}
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_small_bench(tmp_path_factory, small_bench: Path, small_bench_cache: Path, engine: str,
                      *requires: str) -> Iterator[dict]:
    """A module fixture's body: the shared small bench served warm with one scatter engine, skipped with a
    reason where Chromium or a package in `requires` is missing; a server that does not start fails."""
    import pytest

    if not Path("/usr/bin/chromium").exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium; `make browser` does it)")
    for module in ("playwright.sync_api", *requires):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[dashboard,test]')")
    try:
        with voila_server(small_bench, tmp_path_factory.mktemp("voila"), cache_from=small_bench_cache,
                          env={"SYNTHSCOPE_SCATTER_ENGINE": engine}) as served:
            yield {**served, "bench": small_bench}
    except RuntimeError as error:   # the server did not start: its log's tail
        pytest.fail(str(error))
