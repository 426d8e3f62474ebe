"""The Dagster UI for real: webserver and daemon on 127.0.0.1, asked through its GraphQL API."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.store import connection

pytestmark = pytest.mark.slow  # a real Dagster webserver and daemon

DAY = "2026-03-02"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
    ... on RepositoryLocation { repositories { name
        assetNodes { assetKey { path } }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } } } }
    ... on PythonError { message } } } } } }
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } } }
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def test_ui_shows_the_graph_and_runs_a_materialisation(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairness_pipeline.ui import running_ui

    conn = psycopg2.connect(db_url)
    load_frames(
        conn,
        synthetic.generate_events(
            synthetic.GeneratorConfig(
                seed=2, start=synthetic.DEFAULT_START.replace(month=3, day=1), days=2, tenants=1, events_per_day=200
            )
        ),
        source="test",
    )
    conn.close()
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    port = _free_port()
    try:
        with running_ui("127.0.0.1", port) as process:
            workspace = _graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
            (entry,) = workspace
            (repository,) = entry["locationOrLoadError"]["repositories"]
            assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
            assert {"raw_selection_events", "validated_selection_events", "impact_ratios", "bias_metrics"} <= assets
            schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
            sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
            assert schedules["nightly_schedule"] == "RUNNING"
            assert sensors["late_events_sensor"] == "RUNNING"

            params = {
                "selector": {
                    "repositoryLocationName": entry["name"],
                    "repositoryName": repository["name"],
                    "pipelineName": "event_days_job",
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
                "runConfigData": {},
            }
            launched = _graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            status, deadline = None, time.monotonic() + 240
            while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
                time.sleep(2)
                status = _graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
            assert status == "SUCCESS"
    finally:
        connection.database_url.cache_clear()
    assert process.poll() is not None  # stopped with its process group

    conn = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT validated_events > 0 FROM candidate_daily_stages_days WHERE day = %s", (DAY,))
        assert cur.fetchone() == (True,)
    conn.close()


def test_kill_of_the_ui_command_stops_every_dagster_process(db_url: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    import psutil

    home = tmp_path / "home"
    env = {**os.environ, "FAIRNESS_DATABASE_URL": db_url, "FAIRNESS_HOME": str(home)}
    port = _free_port()
    cli = Path(sys.executable).parent / "fairness-pipeline"
    command = subprocess.Popen([str(cli), "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    break
            except OSError:
                assert command.poll() is None, "the ui command exited before serving"
                time.sleep(1)
        dagster = psutil.Process(command.pid).children(recursive=True)
        assert len(dagster) >= 3  # dagster dev, the webserver, the daemon (and code servers)
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=60) == 0
    finally:
        if command.poll() is None:
            command.kill()

    def alive(process: psutil.Process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    assert [p.pid for p in dagster if alive(p)] == []
    with socket.socket() as probe:  # nothing listens on the port any more (connections may linger in TIME_WAIT)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_the_ui_announces_its_address_for_the_links_of_other_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairness_pipeline.cli.runs import DEFAULT_UI_URL, ui_url
    from fairness_pipeline.ui import UI_URL_FILE, announced_url

    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path))
    monkeypatch.delenv("FAIRNESS_UI_URL", raising=False)
    assert ui_url() == DEFAULT_UI_URL
    with announced_url("0.0.0.0", 3999) as url:
        assert url == "http://127.0.0.1:3999" and ui_url() == url
        monkeypatch.setenv("FAIRNESS_UI_URL", "https://dagster.example.org/")
        assert ui_url() == "https://dagster.example.org"  # the environment wins
        monkeypatch.delenv("FAIRNESS_UI_URL")
        with announced_url("::1", 4000):  # a second UI on the same home replaces the first's address
            assert ui_url() == "http://[::1]:4000"
        assert not (tmp_path / UI_URL_FILE).exists()
    assert ui_url() == DEFAULT_UI_URL
