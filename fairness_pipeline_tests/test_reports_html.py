"""The HTML report renders in a real headless browser to a non-empty page with its charts.

Chromium comes from the system packages (Debian: ``apt-get install chromium``); the test starts it itself and is
skipped, with the reason, only where no Chromium binary can be found.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fairness_pipeline.reports import render_html
from fairness_pipeline_tests.test_reports_builder import hand_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH or at /usr/bin/chromium; install it with `apt-get install -y chromium` (Debian)",
)


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class DomSummary(HTMLParser):
    """Counts elements and collects visible text of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(data.strip())


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(hand_report()), encoding="utf-8")
    return path


@pytest.mark.slow
def test_dom_holds_the_charts_and_text(report_page: Path, tmp_path: Path) -> None:
    result = run_chromium(tmp_path, "--dump-dom", report_page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = DomSummary()
    dom.feed(result.stdout)
    text = " ".join(dom.text)
    assert len(text) > 2000
    assert "Fairness report" in text and "HIGH" in text
    # Charts: the gauge, the components, 5 impact-ratio tables (4 selection + 1 scoring), the funnels, the trend.
    assert dom.tags.get("svg", 0) >= 9
    assert dom.tags.get("circle", 0) > 10 and dom.tags.get("polyline", 0) >= 3 and dom.tags.get("rect", 0) > 20
    for heading in (
        "Impact ratios by group",
        "The funnel by group",
        "Trend over the last 90 days",
        "Compliance checklist",
        "NYC Local Law 144 audit summary",
    ):
        assert heading in text
    assert "impact ratio of 0.50" in text
    assert not re.search(r"<script", result.stdout, re.IGNORECASE)


@pytest.mark.slow
def test_screenshot_is_a_non_blank_page(report_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = run_chromium(tmp_path, "--window-size=1200,2000", f"--screenshot={shot}", report_page.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2000)
    # A blank white page of this size compresses to a few kilobytes; charts and text make it far larger.
    assert len(data) > 100_000
