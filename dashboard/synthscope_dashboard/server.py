"""The Voila server behind `synthscope dashboard`: Voila with a cap on the pages that hold a kernel.

Voila starts a kernel (about 400 MB once the data is loaded) for every GET of the page and has no
setting that bounds them, so one page of another site could fill the memory. `DashboardVoila` serves
the page through `CappedPageHandler`, which admits a page only while fewer than
`PageKernelManager.max_pages` pages hold a kernel, and otherwise answers 503 with a page that says
why, before any kernel is taken. A page gives its place back when its kernel is shut down: by the page
itself when it closes or reloads (Voila's unload beacon) or by the culler once it is idle.

Everything else is plain Voila / jupyter_server configuration, chosen by
`synthscope.commands.dashboard.voila_command`: the Host check (`allow_remote_access`,
`local_hostnames`: the settings jupyter_server's `check_host` reads, which standalone Voila turns off),
the token, culling and the preheated kernel. This module is run as `python -m
synthscope_dashboard.server NOTEBOOK [Voila options]`, in the server process only (never in a kernel).

It relies on two things Voila 0.5 does not document: the page route is the one served by
`TornadoVoilaHandler` in `Voila.init_handlers()`, and pages are admitted in that handler before a
kernel is taken (from the preheated pool or started). pyproject pins voila to 0.5.x, the server
refuses to start when the route is not found, and tests/test_dashboard_server.py fails when either
changes.
"""

from __future__ import annotations

import html

import tornado.web
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Bool, Integer, List, Unicode
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler


class PageKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager, counting the pages that hold a kernel (Voila's preheated kernel
    is not a page until one takes it)."""

    max_pages = Integer(4, config=True, help="Most pages that hold a kernel at once; more are refused (503).")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pages = 0                    # pages admitted whose kernel has not been shut down
        self._shutting_down: set[str] = set()

    def admit_page(self) -> bool:
        """Take a place for one more page, or False when every place is taken (synchronous, so two
        requests at the same moment cannot both take the last place)."""
        if self.pages >= self.max_pages:
            return False
        self.pages += 1
        return True

    def release_page(self) -> None:
        self.pages = max(0, self.pages - 1)

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        # Every kernel shut down while serving belongs to a page: Voila never culls its preheated kernel,
        # and no page knows that kernel's id before it takes it. The place is given back at once, so the
        # reload that closed the page finds it free.
        release = not restart and kernel_id in self and kernel_id not in self._shutting_down
        if release:
            self._shutting_down.add(kernel_id)
            self.release_page()
        try:
            return await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        finally:
            self._shutting_down.discard(kernel_id)


class CappedPageHandler(TornadoVoilaHandler):
    """Voila's page handler, admitting a page only while the kernel manager has a place for it."""

    def initialize(self, **kwargs):
        super().initialize(**kwargs)
        self._page_written = False

    @tornado.web.authenticated   # a request without the token takes no place
    async def get(self, path=None):
        if self.notebook_path and path:   # Voila redirects other paths to /voila/files/: no kernel
            return await super().get(path)
        headers = self.request.headers
        if headers.get("Sec-Fetch-Site") == "cross-site" and headers.get("Sec-Fetch-Dest", "document") != "document":
            # an <img>, <iframe>, <script> or fetch() on another site's page: each would start a kernel
            raise tornado.web.HTTPError(403, "the dashboard page cannot be embedded in or fetched by another site")
        manager = self.kernel_manager
        if not manager.admit_page():
            return self.refuse(manager)
        # Voila's page shuts its kernel down on unload with a POST that carries the _xsrf cookie, which
        # nothing in standalone Voila sets (the POST got 403 and the kernel waited for the culler):
        # reading xsrf_token sets it, so a closed or reloaded page gives its place back at once
        self.xsrf_token
        try:
            await super().get(path)
        except BaseException:
            if not self._page_written:   # failed before the page had a kernel: give the place back
                manager.release_page()
            raise

    def write(self, chunk):
        self._page_written = True
        return super().write(chunk)

    def refuse(self, manager: PageKernelManager) -> None:
        idle = int(manager.cull_idle_timeout)
        wait = f"after {idle // 60} minutes idle" if idle >= 120 else f"after {idle} s idle"
        self.set_status(503)
        self.set_header("Retry-After", "30")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>synthscope dashboard: too many pages</title>"
            "</head><body style='font-family: sans-serif; max-width: 46em; margin: 3em auto'>"
            f"<h1>The dashboard is open in {manager.pages} pages already</h1>"
            f"<p>This server keeps a kernel (about 400 MB with the data loaded) for at most {manager.max_pages} "
            "pages at once (<code>synthscope dashboard --max-pages N</code>), so this page was not started.</p>"
            "<p>Close a tab of this dashboard (its kernel is shut down when it closes) or wait until the kernel of "
            f"a closed page is shut down {html.escape(wait)}, then reload this page.</p></body></html>")


class DashboardVoila(Voila):
    """Voila serving the dashboard notebook through `CappedPageHandler`, with jupyter_server's Host check."""

    allow_remote_access = Bool(False, config=True,
                               help="Accept any Host header (jupyter_server's check_host off), as for a non-loopback "
                                    "address; the token then guards the page.")
    local_hostnames = List(Unicode(), ["localhost"], config=True,
                           help="Host names (beside loopback addresses) the Host header may name.")

    def initialize(self, argv=None):
        super().initialize(argv)
        # Voila's own settings say allow_remote_access=True; its tornado_settings are applied after them
        self.tornado_settings = {**self.tornado_settings, "allow_remote_access": self.allow_remote_access,
                                 "local_hostnames": list(self.local_hostnames)}
        if not (isinstance(self.voila_configuration.multi_kernel_manager_class, type)
                and issubclass(self.voila_configuration.multi_kernel_manager_class, PageKernelManager)):
            self.voila_configuration.multi_kernel_manager_class = PageKernelManager

    def init_handlers(self):
        handlers = super().init_handlers()
        pages = [i for i, rule in enumerate(handlers) if len(rule) > 1 and rule[1] is TornadoVoilaHandler]
        if len(pages) != 1:
            import voila

            raise RuntimeError(f"voila {voila.__version__} has {len(pages)} page routes, not 1: synthscope's "
                               "page cap supports voila 0.5.x (see synthscope_dashboard/server.py)")
        rule = handlers[pages[0]]
        handlers[pages[0]] = (rule[0], CappedPageHandler, *rule[2:])
        return handlers


main = DashboardVoila.launch_instance

if __name__ == "__main__":
    main()
