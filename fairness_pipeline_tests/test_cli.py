"""The ``fairness-pipeline`` command, run in-process against real PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest
from typer.testing import CliRunner

from fairness_pipeline.cli.main import app
from fairness_pipeline.store import connection

runner = CliRunner()


def _generate(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    result = runner.invoke(
        app, ["generate", "--out", str(out), "--days", "3", "--events-per-day", "400", "--start", "2026-02-02", *extra]
    )
    assert result.exit_code == 0, result.output
    return out


def test_generate_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = _generate(tmp_path, "a.csv", "--seed", "5", "--bias", "company_tier=startup:0.6")
    second = _generate(tmp_path, "b.csv", "--seed", "5", "--bias", "company_tier=startup:0.6")
    other = _generate(tmp_path, "c.csv", "--seed", "6", "--bias", "company_tier=startup:0.6")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    jsonl = _generate(tmp_path, "a.jsonl", "--seed", "5", "--bias", "company_tier=startup:0.6")
    assert sum(1 for _ in jsonl.open()) == sum(1 for _ in first.open()) - 1  # CSV has a header line


def test_generate_rejects_a_bad_bias(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "x.csv"), "--bias", "gender=f:0.5"])
    assert result.exit_code == 2  # bad input
    assert "unknown dimension" in result.stderr and len(result.stderr.splitlines()) == 1


def test_ingest_json_counts_and_unreadable_file(external_db: str, tmp_path: Path) -> None:
    events = _generate(tmp_path, "events.csv", "--seed", "3")
    lines = events.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1], lines[1], lines[2].replace(",shown,", ",waved,")]) + "\n")

    result = runner.invoke(app, ["ingest", "--json", str(events), str(bad)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    data_rows = len(lines) - 1
    assert counts == {"read": data_rows + 3, "inserted": data_rows, "duplicates": 2, "rejected": 1}

    missing = runner.invoke(app, ["ingest", "--json", str(tmp_path / "nope.csv"), str(bad)])
    assert missing.exit_code == 2
    assert "cannot open" in missing.output
    assert json.loads(missing.stdout.strip().splitlines()[-1])["read"] == 3  # the readable file was still loaded


def test_db_commands_against_an_external_server(external_db: str) -> None:
    url = runner.invoke(app, ["db", "url", "--sqlalchemy"])
    assert url.exit_code == 0 and url.stdout.startswith("postgresql+psycopg2://")
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0, status.output
    assert "applied  001_selection_events.sql" in status.output and "PENDING" not in status.output
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0


def test_worker_prints_seed_shaped_json(external_db: str, tmp_path: Path) -> None:
    events = _generate(tmp_path, "events.csv", "--seed", "3", "--bias", "company_tier=startup:0.3")
    assert runner.invoke(app, ["ingest", str(events)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "worker",
            "--days",
            "3",
            "--end",
            "2026-02-04",
            "--tenant-id",
            "tenant-1",
            "--save-to-db",
            "--output",
            str(tmp_path / "out.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"computed_at", "dimensions", "all_warnings", "any_adverse_impact"} <= set(document)
    tiers = document["dimensions"]["company_tier"]
    selected = {g: tiers["selection_rates"][g] * tiers["sample_sizes"][g] for g in tiers["selection_rates"]}
    assert all(abs(x - round(x)) < 1e-9 for x in selected.values())  # rates are x / n of whole candidates
    assert tiers["overall_rate"] == pytest.approx(sum(selected.values()) / sum(tiers["sample_sizes"].values()))
    assert tiers["impact_ratios"]["startup"] < 0.8 and "startup" in tiers["adverse_impact_groups"]
    assert all(isinstance(t["significant"], bool) for t in tiers["significance_tests"].values())
    assert json.loads((tmp_path / "out.json").read_text()) == document
    assert "computed 1 tenant document(s) in" in result.stderr  # progress on stderr; stdout stays the JSON alone
    conn = psycopg2.connect(external_db)
    with conn.cursor() as cur:
        cur.execute("SELECT tenant_id, metrics_json -> 'dimensions' ? 'company_tier' FROM bias_metrics")
        assert cur.fetchall() == [("tenant-1", True)]
    conn.close()

    bad = runner.invoke(app, ["worker", "--selection-event", "liked"])
    assert bad.exit_code == 2 and "--selection-event 'liked'" in bad.stderr


@pytest.fixture
def reachable_dir() -> Path:
    """A directory the embedded server's user can traverse (as root it runs as ``pgserver``; pytest's tmp_path sits
    in a 0700 directory, which the server refuses rather than widen)."""
    directory = Path(tempfile.mkdtemp(prefix="fpt-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_embedded_server_start_status_stop(reachable_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAIRNESS_DATABASE_URL", raising=False)
    monkeypatch.setenv("FAIRNESS_HOME", str(reachable_dir / "home"))
    connection.database_url.cache_clear()
    try:
        started = runner.invoke(app, ["db", "start"])
        assert started.exit_code == 0, started.output
        assert (reachable_dir / "home" / "pgdata" / "PG_VERSION").exists()
        status = runner.invoke(app, ["db", "status"])
        assert status.exit_code == 0 and "embedded server: running" in status.output
    finally:
        stopped = runner.invoke(app, ["db", "stop"])
        connection.database_url.cache_clear()
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    after = runner.invoke(app, ["db", "status"])
    assert after.exit_code == 3 and "stopped" in after.output


def _section(output: str, title: str, next_title: str) -> str:
    start = output.index(title)
    return output[start : output.index(next_title, start)]


@pytest.mark.slow
def test_demo_shows_each_planted_finding(external_db: str) -> None:
    """The demo end to end (30 days, default volume): each planted bias is reported in its section, in tenant-1. The
    period is fixed (the README's excerpt): the generated events, and so the fair tenant's chance findings, depend on
    the days generated."""
    result = runner.invoke(app, ["demo", "--end", "2026-11-21"])
    assert result.exit_code == 0, result.output
    output = result.output

    def rows(section: str) -> list[str]:
        return [line for line in section.splitlines() if "tenant-" in line]

    selection = rows(_section(output, "Adverse impact, shown -> shortlisted", "Scores:"))
    assert any("company_tier" in r and "startup" in r and "significant" in r for r in selection if "tenant-1" in r)
    assert any(" sex " in r and "female" in r and "significant" in r for r in selection if "tenant-1" in r)  # LL144
    assert not any(" sex " in r or "race_ethnicity" in r for r in selection if "tenant-2" in r)  # none loaded
    assert "self-identification: {'read'" in output
    scores = rows(_section(output, "Scores:", "Ranks:"))
    assert any("tenant-1" in r and "specialty" in r and "frontend" in r for r in scores)
    ranks = rows(_section(output, "Ranks:", "Slates:"))
    assert any("tenant-1" in r and "experience_band" in r and "15+" in r for r in ranks)
    slates = rows(_section(output, "Slates:", "Trends:"))
    assert any("tenant-1" in r and "company_tier" in r and "faang" in r for r in slates)
    trends = rows(_section(output, "Trends:", "risk per tenant"))
    assert any("tenant-1" in r and "0-3" in r and "worsening" in r for r in trends)
    assert "tenant-1: CRITICAL" in output or "tenant-1: HIGH" in output
    assert "tenant-2: CRITICAL" not in output and "tenant-2: HIGH" not in output


COMMANDS = (
    [],
    ["db"],
    ["db", "url"],
    ["generate"],
    ["ingest"],
    ["run"],
    ["worker"],
    ["report"],
    ["ui"],
    ["demo"],
    ["alerts"],
    ["alerts", "list"],
)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_has_no_type_badges(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    badges = re.findall(r"<(?:bool|str|int|float|path|list\[[a-z]+\]|int range)>", result.output)
    assert badges == []  # flags take no value; values show N, TEXT, PATH, FILE or YYYY-MM-DD


def test_generate_help_shows_its_examples_whole_at_80_columns() -> None:
    result = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    lines = result.output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    examples = [line.strip() for line in lines[next(i for i, x in enumerate(lines) if "Examples:" in x) + 1 :]]
    assert "fairness-pipeline generate --out events.csv --days 7" in examples
    assert "--slate-concentration company_tier=faang:0.3@0.9" in examples  # the longest token, not cut with '…'
    assert not any("…" in line for line in lines)


def test_run_and_report_take_a_profile_and_dates_as_yyyy_mm_dd() -> None:
    for command in (["run"], ["report"]):
        text = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"}, terminal_width=120).output
        assert re.search(r"--profile\s+NAME\|FILE", text) and "nyc_ll144" in text
        assert "YYYY-MM-DD" in text
    text = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "120"}, terminal_width=120).output
    assert re.search(r"--start\s+YYYY-MM-DD", text)
    failed = runner.invoke(app, ["run", "--start", "2026-01-01", "--profile", "no_such_profile"])
    assert failed.exit_code == 2 and "unknown profile 'no_such_profile'" in failed.output
