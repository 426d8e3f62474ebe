"""Headless Chromium for tests, driven over the DevTools protocol with the ``websockets`` client (no playwright or
selenium, nothing downloaded): open a page, wait until it renders what a test looks for, read it, take a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from fairness_pipeline.ui import stop_group

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
START_SECONDS = 30
COMMAND_SECONDS = 30


def find_chromium() -> str | None:
    """The first Chromium binary on PATH, or None."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


class BrowserError(RuntimeError):
    """A DevTools command failed, or a page did not show what was waited for."""


class Page:
    """One browser tab, spoken to over its DevTools websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def command(self, method: str, **params: Any) -> dict:
        """Send a DevTools command and return its result (events arriving meanwhile are skipped)."""
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("id") == command_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message["result"]

    def goto(self, url: str) -> None:
        self.command("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate ``expression`` until it is truthy and return its value; a React page renders in steps."""
        deadline = time.monotonic() + timeout
        while True:
            with suppress(BrowserError):  # the document may be between two navigations
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                shown = self.text()[:2000]
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for {expression!r}; page:\n{shown}")
            time.sleep(0.25)

    def text(self) -> str:
        """What the page shows, as the user reads it."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.command("Page.captureScreenshot", format="png")["data"]))
        return path


@contextmanager
def headless_chromium(binary: str, profile: Path, *, width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """Run headless Chromium with a throw-away profile directory and yield its tab; the browser's whole process group
    is stopped on exit."""
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one would name a closed port
    arguments = [
        binary,
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    with open(profile / "chromium.log", "wb") as log:
        process = subprocess.Popen(arguments, stdout=log, stderr=log, start_new_session=True)
    try:
        port = _devtools_port(process, profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            (tab,) = [target for target in json.loads(response.read()) if target["type"] == "page"]
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            yield Page(socket)
    finally:
        stop_group(process)  # the UI's own helper: SIGTERM the group, SIGKILL what outlives it


def _devtools_port(process: subprocess.Popen, active_port_file: Path) -> int:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with code {process.returncode}; see {active_port_file.parent}")
        with suppress(FileNotFoundError, IndexError, ValueError):  # absent, or being written
            return int(active_port_file.read_text().splitlines()[0])
        time.sleep(0.1)
    raise BrowserError(f"chromium did not open its DevTools port within {START_SECONDS} s")
