"""The Dagster UI in a real browser (headless Chromium over the DevTools protocol): the asset graph renders the
assets, an asset's partitions show each day's materialisation metadata after one run over two days, and the
automation page shows every schedule and sensor switched on."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.defs.tags import DAGSTER_RANGE_END_TAG, DAGSTER_RANGE_START_TAG
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store import connection
from fairness_pipeline_tests.browser import BrowserError, Page, find_chromium, headless_chromium
from fairness_pipeline_tests.test_ui import LAUNCH, RUN_STATUS, _free_port, _graphql

CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.slow,  # a real Dagster webserver and daemon, and a browser
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (CI installs it with apt)"),
]

FIRST_DAY, SECOND_DAY = date(2026, 3, 6), date(2026, 3, 7)  # a Friday and a Saturday: the volumes differ
ASSET = "raw_selection_events"
ROW_COUNT = "dagster/row_count"

REPOSITORY = """
{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
    ... on RepositoryLocation { repositories { name
        assetNodes { assetKey { path } groupName }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } } } } } } } } }
"""

ASSET_NAMES_SHOWN = "[...document.querySelectorAll('[class*=AssetNode_assetName]')].map(node => node.textContent)"
"""The labels of the asset nodes drawn in the lineage graph (long names are cut in the middle with an ellipsis)."""

METADATA_SHOWN = """(() => {
  const table = document.querySelector('table[class*=AssetEventMetadataEntriesTable]');
  if (!table) return null;
  return Object.fromEntries([...table.tBodies[0].rows].map(row => [row.cells[0].innerText.trim(),
                                                                    row.cells[1].innerText.trim()]));
})()"""
"""The metadata table of the materialisation on show: {key: value as displayed}."""

SWITCHES_SHOWN = """((names) => {
  const switchSelector = 'label[class*=formatSwitch] input[type=checkbox]';
  const shown = {};
  for (const name of names) {
    const label = [...document.querySelectorAll('span')].find(s => s.children.length == 0 && s.textContent == name);
    let row = label;
    while (row && row.querySelectorAll(switchSelector).length == 0) row = row.parentElement;
    const switches = row ? row.querySelectorAll(switchSelector) : [];
    if (switches.length == 1) shown[name] = switches[0].checked;
  }
  return Object.keys(shown).length == names.length ? shown : null;
})"""
"""Given the automations' names, whether each one's row on the automation page has its switch on (null until every
name has a row)."""


def shown_as(name: str, label: str) -> bool:
    """Whether the graph label is ``name``, whole or cut in the middle ('raw_select…_events')."""
    if "…" not in label:
        return label == name
    head, tail = label.split("…", 1)
    return len(head) + len(tail) < len(name) and name.startswith(head) and name.endswith(tail)


def events_per_day(db_url: str, days: list[date]) -> dict[date, int]:
    """The database's own count of stored events per UTC day (what the asset reports as its row count)."""
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            counts = {}
            for day in days:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                cur.execute(
                    'SELECT count(*) FROM selection_events WHERE "timestamp" >= %s AND "timestamp" < %s',
                    (start, start + timedelta(days=1)),
                )
                counts[day] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def wait_for_run(port: int, run_id: str, timeout: float = 240) -> str:
    """The run's final status, asked through GraphQL (the daemon launches it from the queue)."""
    status, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(1)
        status = _graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
    return status


def metadata_of_partition(page: Page, base: str, day: date) -> dict[str, str]:
    """The metadata the asset's Partitions tab shows for ``day``'s latest materialisation."""
    page.goto(f"{base}/assets/{ASSET}?" + urlencode({"view": "partitions", "partition": day.isoformat()}))
    return page.wait_for(
        f"(() => {{ const shown = {METADATA_SHOWN}; return shown && shown[{ROW_COUNT!r}] && shown }})()"
    )


def test_the_ui_in_a_browser_shows_graph_per_day_metadata_and_automations(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [FIRST_DAY, SECOND_DAY]
    config = synthetic.GeneratorConfig(seed=2, start=FIRST_DAY, days=len(days), tenants=1, events_per_day=200)
    conn = psycopg2.connect(db_url)
    load_frames(conn, synthetic.generate_events(config), source="test")
    conn.close()
    stored = events_per_day(db_url, days)
    assert stored[FIRST_DAY] != stored[SECOND_DAY] and min(stored.values()) > 0, stored

    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    from fairness_pipeline.ui import running_ui

    try:
        with running_ui("127.0.0.1", port) as ui, headless_chromium(CHROMIUM, tmp_path / "chromium") as page:
            (entry,) = _graphql(port, REPOSITORY)["workspaceOrError"]["locationEntries"]
            (repository,) = entry["locationOrLoadError"]["repositories"]
            _graphql(port, "mutation { setNuxSeen }")  # no "join the community" dialog over the pages

            params = {
                "selector": {
                    "repositoryLocationName": entry["name"],
                    "repositoryName": repository["name"],
                    "pipelineName": "event_days_job",
                    "assetSelection": [{"path": [ASSET]}],
                },
                "executionMetadata": {
                    "tags": [
                        {"key": DAGSTER_RANGE_START_TAG, "value": FIRST_DAY.isoformat()},
                        {"key": DAGSTER_RANGE_END_TAG, "value": SECOND_DAY.isoformat()},
                    ]
                },
                "runConfigData": {},
            }
            launched = _graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
            assert launched["__typename"] == "LaunchRunSuccess", launched

            # (1) The global lineage graph, every group expanded, draws every asset of the definitions.
            assets = {"/".join(node["assetKey"]["path"]): node["groupName"] for node in repository["assetNodes"]}
            expanded = ",".join(f"global@global:{group}" for group in sorted(set(assets.values())))
            page.goto(f"{base}/asset-groups?expanded={quote(expanded)}")
            labels = page.wait_for(
                f"(() => {{ const l = {ASSET_NAMES_SHOWN}; return l.length >= {len(assets)} && l }})()"
            )
            page.screenshot(tmp_path / "asset-graph.png")
            matches = {name: [label for label in labels if shown_as(name, label)] for name in assets}
            assert len(labels) == len(assets) and all(len(found) == 1 for found in matches.values()), matches

            # (3) The automation page: every schedule and sensor listed, its switch on.
            automations = [s["name"] for s in repository["schedules"]] + [s["name"] for s in repository["sensors"]]
            page.goto(f"{base}/automation")
            switches = f"({SWITCHES_SHOWN})({automations!r})"
            try:  # the switches render off until the automations' states have loaded; the list re-renders as it polls
                switched_on = page.wait_for(
                    f"(() => {{ const on = {switches}; return on && Object.values(on).every(Boolean) && on }})()", 60
                )
            except BrowserError:
                switched_on = page.evaluate(switches)
            page.screenshot(tmp_path / "automation.png")
            assert switched_on == dict.fromkeys(automations, True)
            assert {"nightly_schedule", "late_events_sensor", "automation_condition_sensor"} <= set(automations)

            assert wait_for_run(port, launched["run"]["runId"]) == "SUCCESS"

            # (2) The asset's partitions: each day's materialisation metadata, as the UI shows it.
            shown = {}
            for day in days:
                shown[day] = int(metadata_of_partition(page, base, day)[ROW_COUNT].replace(",", ""))
                page.screenshot(tmp_path / f"{ASSET}-{day}.png")
    finally:
        connection.database_url.cache_clear()
    assert ui.poll() is not None  # the UI's process group is stopped

    assert shown == stored  # each day its own count, not the run's total
