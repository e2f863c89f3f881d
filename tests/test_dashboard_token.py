"""`synthscope dashboard --host ADDRESS` beyond loopback (issue 23): the page asks for a token, the CLI
prints a warning and the URL with the token; on loopback nothing changes.

One server for the module: the real command (`python -m synthscope dashboard`) bound to this machine's
own non-loopback address (skipped where there is none), on an empty folder so that its kernels only
import the dashboard and find nothing to load.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from voila_server import free_port as _free_port
from test_dashboard_browser_trust import _children, kernels


def outward_address() -> str | None:
    """This machine's address on its default route (a UDP 'connect' sends nothing), if not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no network address beyond loopback to serve on")
    folder = tmp_path_factory.mktemp("empty")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("cli") / "dashboard.log"
    log = open(log_path, "w+")
    env = {**os.environ, "SYNTHSCOPE_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    env.pop("SYNTHSCOPE_DASHBOARD_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "synthscope", "dashboard", str(folder), "--host", address,
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline, token = time.time() + 180, None
    while token is None or not _answers(address, port):
        log.seek(0)
        found = re.search(rf"http://{re.escape(address)}:{port}/\?token=(\S+)", log.read())
        token = found and found.group(1)
        if process.poll() is not None or time.time() > deadline:
            _stop(process)
            log.seek(0)
            pytest.fail("the dashboard did not start:\n" + log.read()[-3000:])
        time.sleep(0.5)
    log.seek(0)
    yield {"address": address, "port": port, "token": token, "output": log.read(), "process": process}
    _stop(process)
    log.close()


def _stop(process) -> None:
    process.terminate()   # SIGTERM: the CLI stops Voila, and Voila its kernels (SIGKILL would orphan them)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _answers(address: str, port: int) -> bool:
    try:
        request(address, port, "/voila/static/", timeout=2)
        return True
    except OSError:
        return False


def request(address, port, path, timeout=180):
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read().decode("utf-8", "replace")
    finally:
        connection.close()


@pytest.mark.slow
def test_beyond_loopback_the_cli_warns_and_prints_the_url_with_a_token(remote):
    assert f"WARNING: serving on {remote['address']}, beyond this machine" in remote["output"]
    assert len(remote["token"]) >= 32, "a generated token is long enough not to be guessed"


@pytest.mark.slow
def test_beyond_loopback_only_a_request_with_the_token_gets_a_page(remote):
    address, port = remote["address"], remote["port"]
    voila = _children(remote["process"].pid)[0]   # the CLI runs Voila, Voila the kernels
    before = len(kernels(voila))
    for path in ("/", "/?token=wrong-token-123"):
        status, location, _ = request(address, port, path)
        assert status == 302 and location.startswith("/login"), (path, status, location)
    status, _, login = request(address, port, location)
    assert status == 200 and "<form" in login, "a login page where the token can be typed"
    assert len(kernels(voila)) <= before, "no kernel for a request without the token"
    status, _, body = request(address, port, f"/?token={remote['token']}")   # the Host names this address
    assert status == 200 and '"kernelId"' in body, (status, body[-1000:])   # the page, with its kernel


# -- the rules, without a server -------------------------------------------------------------------


def test_the_token_comes_from_the_option_then_the_variable_and_loopback_needs_none(monkeypatch):
    from synthscope.commands.dashboard import ENV_TOKEN, dashboard_token, is_loopback

    monkeypatch.delenv(ENV_TOKEN, raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7") and not is_loopback("no-such-host.invalid")
    assert dashboard_token("127.0.0.1") is None, "make demo and the browser tests stay tokenless"
    generated = dashboard_token("0.0.0.0")
    assert generated and len(generated) >= 32 and generated != dashboard_token("0.0.0.0")
    monkeypatch.setenv(ENV_TOKEN, "from-the-environment")
    assert dashboard_token("0.0.0.0") == "from-the-environment"
    assert dashboard_token("127.0.0.1") == "from-the-environment", "asked for on loopback too"
    assert dashboard_token("0.0.0.0", "from-the-option") == "from-the-option"
    for weak in ("", "short", "has space inside"):
        with pytest.raises(ValueError, match="at least 8 characters"):
            dashboard_token("0.0.0.0", weak)


def test_the_voila_command_needs_a_token_beyond_loopback_and_keeps_it_off_the_command_line(tmp_path):
    from synthscope.commands.dashboard import voila_command

    with pytest.raises(ValueError, match="needs a token"):
        voila_command(tmp_path, "0.0.0.0")
    argv, env = voila_command(tmp_path, "0.0.0.0", token="sesame-1234567")
    assert env["JUPYTER_TOKEN"] == "sesame-1234567" and not any("sesame" in arg for arg in argv), \
        "the token travels in the environment: `ps` shows the command line to every user"
    assert "--DashboardVoila.allow_remote_access=True" in argv
    argv, env = voila_command(tmp_path, "127.0.0.1")
    assert "JUPYTER_TOKEN" not in env and "--DashboardVoila.allow_remote_access=False" in argv
    named = voila_command(tmp_path, "dashboard.lab.example", token="sesame-1234567")[0]
    assert "--DashboardVoila.local_hostnames=dashboard.lab.example" in named, "a named host is allowed too"
    assert "--DashboardVoila.allow_remote_access=False" in named
