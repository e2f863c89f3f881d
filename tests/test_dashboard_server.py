"""What the dashboard's server lets in (issue 23): Host headers, websocket origins, the cap on pages that
hold a kernel, cross-site page loads, and no tracebacks in the page.

One Voila for the module, started the way `synthscope dashboard` starts it (voila_command), serving a
two-cell notebook instead of the dashboard: the server's rules do not depend on the notebook, and its
kernels start in seconds and hold no data. Requests are raw (http.client, tornado's websocket client)
so that every header is the one a hostile page or a DNS-rebinding attack would send.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_dashboard_browser_trust import kernels
from voila_server import voila_server

pytestmark = pytest.mark.slow

MAX_PAGES = 2
SECRET = "secret-detail-7f3a"   # in the failing cell's error: must not reach the page


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import nbformat

    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print('the page ran')"),
                      nbformat.v4.new_code_cell(f"raise ValueError('{SECRET}')")]
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(notebook, folder / "page.ipynb")
    try:
        with voila_server(folder, tmp_path_factory.mktemp("voila"), notebook=folder / "page.ipynb",
                          max_pages=MAX_PAGES) as served:
            yield served
    except RuntimeError as error:   # the server did not start (the log's tail is in the message)
        pytest.fail(str(error))


def request(server, path="/", *, method="GET", headers=None, body=None, timeout=180):
    """(status, headers, body) of one raw request; `headers` are sent as given (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def kernel_id(body: str) -> str:
    return json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                body, re.S).group(1))["kernelId"]


def close_page(server, response, kid: str) -> int:
    """What Voila's page does on unload: POST /voila/api/shutdown/<kernel> with the _xsrf cookie."""
    cookies = dict(part.split(";")[0].split("=", 1) for part in response.headers.get_all("Set-Cookie") or [])
    xsrf = cookies["_xsrf"]
    status, _, _ = request(server, f"/voila/api/shutdown/{kid}", method="POST", body=f"_xsrf={xsrf}",
                           headers={"Cookie": f"_xsrf={xsrf}", "Content-Type": "application/x-www-form-urlencoded"})
    return status


@pytest.fixture(scope="module")
def page(server):
    """One page served, held open for the module (one of the MAX_PAGES places)."""
    status, response, body = request(server)
    assert status == 200, body[-2000:]
    return {"response": response, "body": body, "kernel": kernel_id(body)}


def live_kernels(server) -> int:
    return len(kernels(server["process"].pid))


def test_a_host_header_that_is_not_loopback_is_refused(server, page):
    before = live_kernels(server)
    status, _, _ = request(server, headers={"Host": f"evil.example.com:{server['port']}"})   # DNS rebinding
    assert status == 403
    status, _, _ = request(server, f"/api/kernels/{page['kernel']}", headers={"Host": "evil.example.com"})
    assert status == 403, "a rebinding page cannot read the kernel either"
    for host in (f"127.0.0.1:{server['port']}", f"localhost:{server['port']}", f"[::1]:{server['port']}", "localhost"):
        status, _, body = request(server, f"/api/kernels/{page['kernel']}", headers={"Host": host})
        assert status == 200 and page["kernel"] in body, (host, status)
    assert live_kernels(server) <= before, "a refused page starts no kernel"


def _websocket(server, kid: str, host: str, origin: str) -> str:
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    async def connect():
        url = f"ws://127.0.0.1:{server['port']}/api/kernels/{kid}/channels?session_id=test"
        try:
            connection = await websocket_connect(HTTPRequest(url, headers={"Host": host, "Origin": origin},
                                                             connect_timeout=60, request_timeout=120))
        except HTTPClientError as error:
            return f"refused {error.code}"
        connection.close()
        return "open"

    return asyncio.run(connect())


def test_a_websocket_from_another_origin_is_refused(server, page):
    own = f"127.0.0.1:{server['port']}"
    assert _websocket(server, page["kernel"], own, f"http://{own}") == "open", "the page's own origin connects"
    assert _websocket(server, page["kernel"], own, "http://evil.example.com") == "refused 403"
    rebound = f"evil.example.com:{server['port']}"   # another site's page after DNS rebinding: same origin
    assert _websocket(server, page["kernel"], rebound, f"http://{rebound}") == "refused 403"


def test_pages_beyond_the_cap_are_refused_and_a_closed_page_gives_its_place_back(server, page):
    # the module's page holds one place; three pages asked for at the same moment get the one left
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: request(server), range(3)))
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert (len(served), len(refused)) == (MAX_PAGES - 1, 3 - (MAX_PAGES - 1)), [r[0] for r in results]
    message = refused[0][2]
    assert f"open in {MAX_PAGES} pages already" in message and "--max-pages" in message
    assert refused[0][1].getheader("Retry-After")
    time.sleep(3)   # the preheated kernel taken by the served page is being replaced
    assert live_kernels(server) <= MAX_PAGES + 1, "the pages' kernels and one preheated kernel, no more"

    status, response, body = served[0]
    assert close_page(server, response, kernel_id(body)) == 204
    status, response, body = request(server)
    assert status == 200, "the closed page's place is free again"
    assert close_page(server, response, kernel_id(body)) == 204   # leave one page open, as found


def test_another_site_cannot_embed_or_fetch_the_page(server, page):
    before = live_kernels(server)
    for dest in ("iframe", "image", "empty", "script"):
        status, _, body = request(server, headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                                                   "Sec-Fetch-Dest": dest})
        assert status == 403, (dest, status)
    assert live_kernels(server) <= before


def test_a_failing_cell_shows_no_traceback(page):
    from synthscope.commands.dashboard import CELL_ERROR_INSTRUCTION

    assert "the page ran" in page["body"]
    assert SECRET not in page["body"] and "Traceback" not in page["body"]
    assert CELL_ERROR_INSTRUCTION.split("`")[0] in page["body"], "the page says where the error went"


def test_the_page_cap_hooks_into_the_pinned_voila(repo_root):
    """The cap relies on Voila 0.5's page route (one TornadoVoilaHandler in init_handlers) and on its
    handler taking a kernel only after CappedPageHandler admitted the page: a newer Voila must be
    checked (this module) before the pin in pyproject.toml moves."""
    import signal

    import voila
    from packaging.specifiers import SpecifierSet
    from voila.tornado.handler import TornadoVoilaHandler

    from synthscope_dashboard.server import CappedPageHandler, DashboardVoila, PageKernelManager

    pin = re.search(r'"voila([^"]*)"', (repo_root / "pyproject.toml").read_text()).group(1)
    assert voila.__version__ in SpecifierSet(pin), (voila.__version__, pin)
    assert SpecifierSet(pin).contains("0.5.13") and not SpecifierSet(pin).contains("0.6.0")
    previous = signal.getsignal(signal.SIGTERM)   # Voila.initialize installs its own
    try:
        app = DashboardVoila()
        app.initialize([str(repo_root / "dashboard" / "app.ipynb")])
        settings = app.init_settings()
        handlers = app.init_handlers()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [rule[1] for rule in handlers].count(CappedPageHandler) == 1
    assert TornadoVoilaHandler not in [rule[1] for rule in handlers]
    assert isinstance(settings["kernel_manager"], PageKernelManager)
