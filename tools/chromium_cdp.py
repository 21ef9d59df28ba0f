"""Drive Debian's headless ``chromium`` with Selenium and Debian's ``chromedriver`` (package ``chromium-driver``).

Used by ``tests/test_browser.py`` (checks every page of the built book as a reader's browser shows it, and
audits it with axe-core).  Selenium (pinned in requirements.txt) is the maintained WebDriver client; it is
given both executables explicitly, ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (or ``$CHROMIUM`` and
``$CHROMEDRIVER``), and ``SE_OFFLINE`` is set, so Selenium Manager never looks for or downloads a browser or a
driver.  The DevTools commands WebDriver has no verb for (emulated colour scheme, viewport, full-page
screenshots, printing to PDF) go through chromedriver's ``execute_cdp_cmd``; the requests a page makes and
its console errors come from chromedriver's ``performance`` and ``browser`` logs.  :func:`serve` serves a
built book on the loopback interface, so pages are loaded over HTTP as a reader's browser loads them
(``file://`` pages have their own origin rules).

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
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER_NAMES = ("chromedriver",)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


def _find(env: str, names: tuple[str, ...]) -> str | None:
    candidates = [os.environ.get(env, "")] + [shutil.which(n) or "" for n in names]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM`` first, then the usual names on ``PATH``), or None."""
    return _find("CHROMIUM", CHROMIUM_NAMES)


def find_chromedriver() -> str | None:
    """Path of chromedriver (``$CHROMEDRIVER`` first, then ``PATH``; Debian: package ``chromium-driver``), or None."""
    return _find("CHROMEDRIVER", CHROMEDRIVER_NAMES)


def missing() -> str | None:
    """Why the browser cannot be driven here (a sentence naming what to install), or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (requirements.txt pins it; run `make install`)"
    if find_chromium() is None:
        return "no chromium executable was found (install Debian's `chromium` package; .ci/run does)"
    if find_chromedriver() is None:
        return "no chromedriver was found (install Debian's `chromium-driver` package; .ci/run does)"
    return None


class CDPError(RuntimeError):
    """The browser reported an error, or did not answer in time."""


class Chromium:
    """Headless Chromium processes with fresh profiles, one per :meth:`new_page`, closed together on exit."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0, driver: str | None = None) -> None:
        self.executable = executable or find_chromium()
        self.driver = driver or find_chromedriver()
        if self.executable is None or self.driver is None:
            raise FileNotFoundError(missing() or "chromium or chromedriver not found")
        self.timeout = timeout
        self._pages: list[Page] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        for page in self._pages:
            page.close()
        self._pages.clear()

    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download anything
        profile = tempfile.mkdtemp(prefix="lnfl-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = self.executable
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        service = Service(executable_path=self.driver, log_output=subprocess.DEVNULL)
        try:
            driver = webdriver.Chrome(service=service, options=options)
        except Exception as err:  # noqa: BLE001 - report why, with the executables used
            shutil.rmtree(profile, ignore_errors=True)
            raise CDPError(f"could not start {self.executable} through {self.driver}: {err}") from err
        driver.set_page_load_timeout(self.timeout)
        driver.set_script_timeout(self.timeout)
        page = Page(driver, profile, (width, height), self.timeout)
        page._set_viewport(width, height)
        self._pages.append(page)
        return page


class Page:
    """One browser tab: navigate, evaluate JavaScript, send DevTools commands, take screenshots, print to PDF."""

    def __init__(self, driver, profile: str, viewport: tuple[int, int], timeout: float) -> None:
        self.driver, self.profile, self.viewport, self.timeout = driver, profile, viewport, timeout
        self._requests: list[str] = []
        self._console: list[str] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None, timeout: float | None = None):
        """One Chrome DevTools Protocol command (``Domain.method``) and its result."""
        try:
            return self.driver.execute_cdp_cmd(method, params or {})
        except Exception as err:  # noqa: BLE001
            raise CDPError(f"{method}: {err}") from err

    def _drain_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                self._requests.append(msg["params"]["request"]["url"])
        for entry in self.driver.get_log("browser"):
            if entry.get("level") == "SEVERE":
                self._console.append(entry.get("message", ""))

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Load ``url`` and wait for its load event; the request and console records start afresh."""
        self._drain_logs()
        self._requests, self._console = [], []
        self.driver.set_page_load_timeout(timeout or self.timeout)
        self.driver.get(url)

    def evaluate(self, expression: str, timeout: float | None = None):
        """Value of a JavaScript expression (a promise is awaited); a thrown exception raises CDPError."""
        self.driver.set_script_timeout(timeout or self.timeout)
        try:
            return self.driver.execute_script(f"return ({expression.strip().rstrip(';')});")
        except Exception as err:  # noqa: BLE001
            raise CDPError(f"JavaScript error: {err}") from err
        finally:
            self.driver.set_script_timeout(self.timeout)

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since the last :meth:`goto`."""
        self._drain_logs()
        return list(self._requests)

    def console_errors(self) -> list[str]:
        """Uncaught JavaScript exceptions and console errors since the last :meth:`goto`."""
        self._drain_logs()
        return list(self._console)

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
            data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
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
        data = self.send("Page.printToPDF", params | options)["data"]
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
