"""Start and stop the Dagster UI (webserver and daemon) on this project's database.

``dagster dev`` runs in its own process group so that stopping it (Ctrl-C, SIGTERM, or the caller exiting) ends the
webserver, the daemon and the code servers together, leaving no process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO

from fairness_pipeline import settings
from fairness_pipeline.store.connection import child_environment

STOP_GRACE_SECONDS = 20


def dagster_dev_command(host: str, port: int) -> list[str]:
    """``dagster dev`` on the project's definitions module (works from a clone or an installed wheel)."""
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    return [dagster, "dev", "-m", "fairness_pipeline.definitions", "-h", host, "-p", str(port)]


@contextmanager
def running_ui(
    host: str = "127.0.0.1", port: int = 3000, *, wait_seconds: float = 120, log: IO[bytes] | None = None
) -> Iterator[subprocess.Popen]:
    """Run the UI until the block exits; yields once the webserver answers on ``/server_info``. Its log goes to
    ``log`` (an open file) when given, else to this process's output."""
    process = subprocess.Popen(
        dagster_dev_command(host, port),
        env=child_environment(),
        cwd=settings.home_dir(),
        stdout=log,
        stderr=log,
        start_new_session=True,  # own process group: signals reach the whole tree
    )
    try:
        wait_until_serving(process, f"http://{host}:{port}/server_info", wait_seconds)
        with announced_url(host, port):
            yield process
    finally:
        stop_group(process)


UI_URL_FILE = "ui-url"
"""In ``FAIRNESS_HOME`` while a UI started by this project runs: its address, for the links other commands print."""


@contextmanager
def announced_url(host: str, port: int) -> Iterator[str]:
    """Write the UI's address to :data:`UI_URL_FILE` for the block's duration (removed after, unless another UI
    has replaced it). A wildcard host is announced as the loopback address."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"
    path = settings.home_dir() / UI_URL_FILE
    path.write_text(url + "\n")
    try:
        yield url
    finally:
        with suppress(FileNotFoundError):
            if path.read_text().strip() == url:
                path.unlink()


def announced_ui_url() -> str | None:
    """The address of the UI running on this ``FAIRNESS_HOME``, if one announced itself."""
    with suppress(FileNotFoundError):
        return (settings.home_dir() / UI_URL_FILE).read_text().strip() or None
    return None


@contextmanager
def signals_as_interrupt(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Within the block, SIGTERM (``kill``) and SIGHUP (the terminal closing) raise KeyboardInterrupt as Ctrl-C does,
    so that the ``finally`` of :func:`running_ui` stops the process group instead of the caller dying without it."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_serving(process: subprocess.Popen, url: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with code {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the Dagster UI did not answer on {url} within {wait_seconds:.0f} s")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there after a grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
    with suppress(ProcessLookupError):  # children that outlived the leader share its group id
        os.killpg(process.pid, signal.SIGKILL)
