"""Tenants as partitions: the tenant-day keys, the tenant-days of a range run, the
sensor and the ingest hook that register tenants, with a real Dagster instance and real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg2

from fairness_pipeline.defs.partitions import (
    TENANTS,
    split_partition_key,
    tenant_day_key,
    tenant_day_partitions,
    tenant_days,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.defs.tenants import new_tenant_sensor, register_tenants
from fairness_pipeline.ingest.loader import ingest_file

DAY = date(2026, 3, 4)
EVENT = (
    "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id, "
    "user_id_hash, created_at) VALUES (%s, %s, 'c', 'shown', 's', %s, %s, now() - %s * interval '1 minute')"
)


def _insert(db_url: str, event_id: str, tenant: str, minutes_ago: int) -> None:
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        cur.execute(EVENT, (event_id, datetime(2026, 3, 4, 9, tzinfo=UTC), tenant, "ab" * 32, minutes_ago))
    conn.close()


def test_a_tenant_day_key_names_the_day_then_the_tenant() -> None:
    assert tenant_day_key("acme", DAY) == "2026-03-04|acme"
    assert split_partition_key("2026-03-04|acme") == ("acme", DAY)
    assert split_partition_key("2026-03-04") == (None, DAY)


def test_a_range_run_sees_each_tenant_day_once() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TENANTS, ["acme", "beta", "gamma"])
    seen: list = []

    @dg.asset(partitions_def=tenant_day_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def probe(context) -> None:  # (a string annotation, from __future__, is refused)
        seen.extend(tenant_days(context))

    single = dg.materialize([probe], instance=instance, partition_key="2026-03-04|beta")
    assert single.success and seen == [("beta", DAY)]
    seen.clear()
    ranged = dg.materialize(
        [probe],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2026-03-03|acme",
            "dagster/asset_partition_range_end": "2026-03-04|beta",
        },
    )
    assert ranged.success
    previous = DAY - timedelta(days=1)
    assert seen == [("acme", previous), ("acme", DAY), ("beta", previous), ("beta", DAY)]


def test_register_tenants_adds_only_the_unknown_ones() -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert register_tenants(instance, ["beta", "acme", "beta"]) == ["acme", "beta"]
    assert register_tenants(instance, ["acme", "gamma"]) == ["gamma"]
    assert sorted(instance.get_dynamic_partitions(TENANTS)) == ["acme", "beta", "gamma"]


def _tick(instance: dg.DagsterInstance, db_url: str, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": FairnessDatabase(url=db_url)}
    )
    return new_tenant_sensor(context)


def _added(result: dg.SensorResult) -> list[str]:
    return [key for request in result.dynamic_partitions_requests or [] for key in request.partition_keys]


def test_sensor_registers_stored_tenants_then_only_new_ones(db_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TENANTS, ["acme"])
    _insert(db_url, "e1", "acme", 60)
    _insert(db_url, "e2", "beta", 60)
    first = _tick(instance, db_url, None)
    assert _added(first) == ["beta"]  # acme was known already
    assert datetime.fromisoformat(json.loads(first.cursor)["created_at"]) < datetime.now(UTC) - timedelta(minutes=1)
    instance.add_dynamic_partitions(TENANTS, _added(first))

    nothing = _tick(instance, db_url, first.cursor)
    assert not _added(nothing) and nothing.skip_reason

    _insert(db_url, "e3", "beta", 0)  # inside the commit lag: read on a later tick
    _insert(db_url, "e4", "gamma", 0)
    assert not _added(_tick(instance, db_url, first.cursor))
    back = json.dumps({"created_at": (datetime.now(UTC) - timedelta(minutes=30)).isoformat()})
    _insert(db_url, "e5", "delta", 5)
    assert _added(_tick(instance, db_url, back)) == ["delta"]


def test_ingest_passes_the_tenants_of_the_file_to_the_hook(conn, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    header = "event_id,timestamp,candidate_id,event_type,search_id,tenant_id,user_id_hash"
    rows = [
        f"e{i},2026-03-04T09:00:00Z,c{i},shown,s{i},{tenant},{'ab' * 32}"
        for i, tenant in enumerate(["zeta", "acme", "zeta", "acme"])
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    calls: list[list[str]] = []
    counts = ingest_file(conn, path, on_tenants=calls.append)
    assert counts.inserted == 4
    assert calls == [["acme", "zeta"]]


def test_ingest_without_stored_rows_calls_no_hook(conn, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("event_id,timestamp,candidate_id,event_type,search_id,tenant_id,user_id_hash\n")
    calls: list[list[str]] = []
    assert ingest_file(conn, path, on_tenants=calls.append).read == 0
    assert calls == []


def test_cli_ingest_registers_the_files_tenants_in_the_project_instance(external_db: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fairness_pipeline.cli.main import app
    from fairness_pipeline.cli.runs import dagster_instance

    path = tmp_path / "events.csv"
    header = "event_id,timestamp,candidate_id,event_type,search_id,tenant_id,user_id_hash"
    path.write_text(f"{header}\ne1,2026-03-04T09:00:00Z,c1,shown,s1,omega,{'ab' * 32}\n")
    result = CliRunner().invoke(app, ["ingest", "--json", str(path)])
    assert result.exit_code == 0, result.output
    with dagster_instance() as instance:
        assert instance.get_dynamic_partitions(TENANTS) == ["omega"]


def test_tenants_sync_registers_the_stored_tenants_once(external_db: str) -> None:
    from typer.testing import CliRunner

    from fairness_pipeline.cli.main import app
    from fairness_pipeline.cli.runs import dagster_instance

    for event_id, tenant in (("e1", "beta"), ("e2", "acme"), ("e3", "beta")):
        _insert(external_db, event_id, tenant, 0)
    first = CliRunner().invoke(app, ["tenants", "sync", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"tenants": 2, "added": ["acme", "beta"]}
    again = CliRunner().invoke(app, ["tenants", "sync", "--json"])
    assert json.loads(again.stdout) == {"tenants": 2, "added": []}
    with dagster_instance() as instance:
        assert sorted(instance.get_dynamic_partitions(TENANTS)) == ["acme", "beta"]
