"""Drive Debian's headless ``chromium`` through the Chrome DevTools Protocol, with the standard library only.

Used by ``tests/test_browser.py`` (checks every chapter page as a reader's browser shows it) and by
``tools/make_pdf.py`` (prints the single-page book to PDF).  Chromium is started with
``--remote-debugging-pipe``: protocol messages are JSON texts ended by a NUL byte, written to the
browser's file descriptor 3 and read from its descriptor 4, so no websocket library, no port and no
browser download are needed.  :func:`serve` serves a built book on the loopback interface, so pages are
loaded over HTTP as a reader's browser loads them (``file://`` pages have their own origin rules).

>>> with serve("_build/html") as base, Chromium() as browser:
...     page = browser.new_page()
...     page.goto(base + "intro.html")
...     page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import pathlib
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM`` first, then the usual names on ``PATH``), or None."""
    candidates = [os.environ.get("CHROMIUM", "")] + [shutil.which(n) or "" for n in CHROMIUM_NAMES]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Chromium:
    """A headless Chromium process with a fresh profile, spoken to over the DevTools pipe."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError("no chromium executable found (install Debian's `chromium` package)")
        self.timeout = timeout
        self._id = 0
        self._buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="lnfl-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 reads our commands, its fd 4 carries the answers
            hi_r, hi_w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(hi_r, 3, inheritable=True)
            os.dup2(hi_w, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise CDPError("timed out waiting for chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise CDPError(f"chromium closed the DevTools pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float | None = None):
        """Send one command and return its result; events that arrive meanwhile go to :attr:`events`."""
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict:
        """Wait for (and remove from :attr:`events`) the first event called ``method``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for k, ev in enumerate(self.events):
                if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                    return self.events.pop(k)
            self.events.append(self._read_message(deadline))

    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, (width, height))
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(f"{domain}.enable")
        page._set_viewport(width, height)
        return page


class Page:
    """One tab: navigate, evaluate JavaScript, take screenshots, print to PDF."""

    def __init__(self, browser: Chromium, session: str, viewport: tuple[int, int] = (1280, 900)) -> None:
        self.browser, self.session, self.viewport = browser, session, viewport

    def send(self, method: str, params: dict | None = None, timeout: float | None = None):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Load ``url`` and wait for its load event."""
        self.browser.events.clear()
        self.send("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str, timeout: float | None = None):
        """Value of a JavaScript expression (promises are awaited); a thrown exception raises CDPError."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since the last :meth:`goto` (from Network.requestWillBeSent)."""
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]

    def console_errors(self) -> list[str]:
        """Uncaught JavaScript exceptions and console/log errors since the last :meth:`goto`."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            if e.get("method") == "Runtime.exceptionThrown":
                d = e["params"]["exceptionDetails"]
                out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                entry = e["params"]["entry"]
                out.append(f"{entry.get('text')} ({entry.get('url', '')})")
        return out

    def screenshot(self, path: str | os.PathLike, full_page: bool = True, max_height: int = 16000) -> pathlib.Path:
        """Write a PNG of the page: the whole page (up to ``max_height`` pixels tall) or just the viewport.

        For a full page the viewport is made as tall as the page, keeping its width, so the layout is the one
        a reader sees (capturing "beyond the viewport" instead can shift wide pages sideways).
        """
        width, height = self.viewport
        if full_page:
            self.evaluate("window.scrollTo(0, 0)")
            full = self.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
            self._set_viewport(width, int(min(max(full, height), max_height)))
        try:
            data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=120)["data"]
        finally:
            if full_page:
                self._set_viewport(width, height)
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def _set_viewport(self, width: int, height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics)

    def pdf(self, path: str | os.PathLike, **options: object) -> pathlib.Path:
        """Print the page to PDF (A4, backgrounds on, CSS page rules honoured); ``options`` override."""
        params = {"printBackground": True, "preferCSSPageSize": True, "paperWidth": 8.27, "paperHeight": 11.69}
        params |= {"marginTop": 0.5, "marginBottom": 0.5, "marginLeft": 0.5, "marginRight": 0.5}
        for attempt in range(3):  # headless chromium sometimes answers "Printing failed" to a first request
            try:
                data = self.send("Page.printToPDF", params | options, timeout=600)["data"]
                break
            except CDPError:
                if attempt == 2:
                    raise
                time.sleep(2)
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: str | os.PathLike) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) for the duration; yields the base URL ending in '/'."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
