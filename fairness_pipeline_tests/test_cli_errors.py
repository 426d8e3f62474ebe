"""Every failure of ``fairness-pipeline`` is one line on stderr and a non-zero exit code, never a traceback.

Exit codes: 1 for runtime failures (no database reachable, unexpected errors), 2 for bad input (usage, dates,
unknown tenants, nothing stored for what was asked). Run through the real command: typer's CliRunner in-process,
and the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairness_pipeline.cli.main import app
from fairness_pipeline_tests.conftest import cli_database

runner = CliRunner()
UNREACHABLE = "postgresql://fairness:secret@127.0.0.1:1/nothing"
"""Port 1 on the loopback: connection refused at once."""


@pytest.fixture
def unreachable_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    with cli_database(UNREACHABLE, monkeypatch, tmp_path / "home") as url:
        yield url


@pytest.fixture
def two_tenants(external_db: str) -> str:
    """tenant-1 and tenant-2 with two days of events (2026-02-02 and 03)."""
    result = runner.invoke(
        app, ["generate", "--to-db", "--days", "2", "--events-per-day", "60", "--start", "2026-02-02", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    return external_db


def error_line(result, code: int) -> str:
    """The one line a failed command printed on stderr, after checking its exit code and the absence of a traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


BAD_DATES = [
    (["report", "--tenant", "tenant-1", "--date", "2026-13-45"], "--date '2026-13-45'"),
    (["run", "--start", "2026-02-30"], "--start '2026-02-30'"),
    (["run", "--start", "2026-02-02", "--end", "yesterday"], "--end 'yesterday'"),
    (["worker", "--end", "2026-1-5"], "--end '2026-1-5'"),
    (["demo", "--end", "2026-00-10"], "--end '2026-00-10'"),
    (["generate", "--out", "x.csv", "--start", "31/12/2026"], "--start '31/12/2026'"),
]


@pytest.mark.parametrize(("args", "named"), BAD_DATES, ids=[" ".join(a[:1] + a[-2:-1]) for a, _ in BAD_DATES])
def test_a_bad_date_is_one_line_and_exit_2(external_db: str, args: list[str], named: str) -> None:
    line = error_line(runner.invoke(app, args), 2)
    assert named in line and "YYYY-MM-DD" in line


def test_an_end_before_the_start_is_exit_2(external_db: str) -> None:
    line = error_line(runner.invoke(app, ["run", "--start", "2026-02-03", "--end", "2026-02-02"]), 2)
    assert line == "error: --end 2026-02-02 is before --start 2026-02-03"


@pytest.mark.parametrize(
    "args",
    [["worker", "--tenant-id", "acme"], ["report", "--tenant", "acme"], ["alerts", "list", "--tenant-id", "acme"]],
    ids=["worker", "report", "alerts list"],
)
def test_an_unknown_tenant_is_exit_2_and_lists_the_tenants(two_tenants: str, args: list[str]) -> None:
    line = error_line(runner.invoke(app, args), 2)
    assert line == "error: unknown tenant 'acme'; tenants: 'tenant-1', 'tenant-2'"


def test_a_tenant_id_with_markup_is_printed_literally(two_tenants: str) -> None:
    line = error_line(runner.invoke(app, ["report", "--tenant", "[bold]x[/bold]\nnext"]), 2)
    assert line.startswith("error: unknown tenant '[bold]x[/bold]\\nnext'")


def test_nothing_stored_for_a_known_tenant_is_exit_2(two_tenants: str) -> None:
    line = error_line(runner.invoke(app, ["report", "--tenant", "tenant-1", "--date", "2026-02-03"]), 2)
    assert line.startswith("error: no report for tenant 'tenant-1' yet")

    worker = runner.invoke(app, ["worker", "--tenant-id", "tenant-1", "--end", "2025-06-30"])
    line = error_line(worker, 2)
    assert line == "error: no shown events of tenant 'tenant-1' in the 30 days ending 2025-06-30"
    assert json.loads(worker.stdout)["error"] == "No data"  # the seed's answer is still printed on stdout

    found = runner.invoke(app, ["worker", "--tenant-id", "tenant-2", "--end", "2026-02-03", "--days", "2"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["dimensions"]


UNREACHABLE_COMMANDS = [
    ["db", "start"],
    ["db", "migrate"],
    ["db", "status"],
    ["ingest", "events.csv"],
    ["generate", "--to-db", "--days", "1"],
    ["run", "--start", "2026-02-02"],
    ["worker", "--tenant-id", "tenant-1", "--end", "2026-02-03"],
    ["report", "--tenant", "tenant-1", "--date", "2026-02-03"],
    ["alerts", "list", "--tenant-id", "tenant-1"],
    ["alerts", "show", "1"],
    ["alerts", "ack", "1", "--reviewer", "ana"],
    ["ui"],
]


@pytest.mark.parametrize("args", UNREACHABLE_COMMANDS, ids=[" ".join(a[:2]) for a in UNREACHABLE_COMMANDS])
def test_no_database_reachable_is_one_line_and_exit_1(unreachable_db: str, args: list[str]) -> None:
    line = error_line(runner.invoke(app, args), 1)
    assert line.startswith("error: cannot connect to ") and "127.0.0.1:1/nothing" in line
    assert "Connection refused" in line and "secret" not in line  # the password is redacted


def test_usage_errors_are_one_line_and_exit_2() -> None:
    assert error_line(runner.invoke(app, ["report"]), 2) == (
        "error: Missing option '--tenant'. (see `root report --help`)"
    )
    assert error_line(runner.invoke(app, ["no-such-command"]), 2).startswith("error: No such command")
    no_arguments = runner.invoke(app, [])
    assert no_arguments.exit_code == 2 and "Usage:" in no_arguments.output and "error" not in no_arguments.output
    assert error_line(runner.invoke(app, ["report", "--tenant", "x", "--format", "docx"]), 2) == (
        "error: --format must be one of json, html, md, pdf"
    )


def test_an_unexpected_error_writes_its_traceback_to_a_log_file(
    two_tenants: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fairness_pipeline import worker

    def failing_compute(conn, request):
        candidate_ids = ["cand-000123"]  # a local variable that must not be printed anywhere
        raise RuntimeError(f"boom after {len(candidate_ids)} candidate\nsecond line")

    monkeypatch.setattr(worker, "compute", failing_compute)
    line = error_line(runner.invoke(app, ["worker", "--tenant-id", "tenant-1"]), 1)
    prefix = "error: unexpected RuntimeError: boom after 1 candidate; full traceback in "
    assert line.startswith(prefix)
    log = Path(line.removeprefix(prefix))
    assert log.parent == tmp_path / "home" / "logs"
    assert oct(log.stat().st_mode & 0o777) == "0o600" and oct(log.parent.stat().st_mode & 0o777) == "0o700"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in failing_compute" in text and "second line" in text
    assert "cand-000123" not in text  # no local variables in the traceback


def test_a_connection_lost_mid_command_is_one_line_and_exit_1(
    two_tenants: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairness_pipeline import worker

    def compute_on_a_killed_backend(conn, request):
        with conn.cursor() as cur:  # the server ends this session, as a crash or an administrator would
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(worker, "compute", compute_on_a_killed_backend)
    line = error_line(runner.invoke(app, ["worker", "--tenant-id", "tenant-1"]), 1)
    assert line.startswith("error: lost the database connection (")
    assert line.endswith("); what was committed stays, run the command again")


@pytest.mark.slow
def test_the_installed_command_fails_in_one_line(tmp_path: Path) -> None:
    """The console script itself (typer's exception hook included): bad date, no database, usage error."""
    command = str(Path(sys.executable).with_name("fairness-pipeline"))
    env = {**os.environ, "FAIRNESS_DATABASE_URL": UNREACHABLE, "FAIRNESS_HOME": str(tmp_path / "home")}
    cases = [
        (["report", "--tenant", "t", "--date", "2026-13-45"], 2, "error: --date '2026-13-45' is not a valid date"),
        (["report", "--tenant", "t"], 1, "error: cannot connect to the database postgresql://fairness:***@"),
        (["report"], 2, "error: Missing option '--tenant'."),
    ]
    for args, code, start in cases:
        result = subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(start), (args, result.stderr)
        assert result.stdout == ""
