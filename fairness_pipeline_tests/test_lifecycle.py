"""Retention and erasure on real PostgreSQL: what is removed, what stays, what is recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg2 import sql
from typer.testing import CliRunner

from fairness_pipeline.cli.main import app
from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.lifecycle import load_policy
from fairness_pipeline.lifecycle.erasure import field_pattern
from fairness_pipeline.store import analysis, connection
from fairness_pipeline.store import lifecycle as store
from fairness_pipeline.store.attributes import attribute_snapshots

runner = CliRunner()
TODAY = datetime.now(UTC).date()
OLD = TODAY - timedelta(days=800)  # beyond every default age but results and reports (1825)
MIDDLE = TODAY - timedelta(days=500)  # beyond rejects, quarantine and arrays (365, 365, 400), within events (730)
RECENT = TODAY - timedelta(days=10)
EVENT_COLUMNS = "event_id, timestamp, candidate_id, event_type, search_id, tenant_id, user_id_hash"


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def insert_events(cur, rows: list[tuple]) -> None:
    """Events (event_id, day, candidate, event_type, tenant) into selection_events and, validated, their copy."""
    for event_id, day, candidate, event_type, tenant in rows:
        cur.execute(
            f"INSERT INTO selection_events ({EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, 'u')",
            (event_id, at(day), candidate, event_type, f"s-{day}", tenant),
        )
    cur.execute("INSERT INTO validated_selection_events SELECT * FROM selection_events")


def summarise(cur, day: date) -> None:
    """The day's candidate summaries and arrays, written by the pipeline's own statements."""
    from fairness_pipeline.defs.partitions import day_bounds
    from fairness_pipeline.store.audits import store_candidate_arrays

    cur.execute(analysis.INSERT_CANDIDATE_DAY, day_bounds(day))
    cur.execute(analysis.RECORD_CANDIDATE_DAY, {"day": day, "validated_events": 0, "candidate_rows": 0})
    store_candidate_arrays(cur, day)


def count(cur, table: str, where: str = "true", params: tuple = ()) -> int:
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(sql.Identifier(table)), params)
    return cur.fetchone()[0]


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FAIRNESS_RETENTION_POLICY", raising=False)
    connection.database_url.cache_clear()
    yield
    connection.database_url.cache_clear()


# --- retention -------------------------------------------------------------------------------------------------


@pytest.fixture
def aged(conn):
    """Rows of three ages in tables of every category."""
    with conn, conn.cursor() as cur:
        insert_events(
            cur,
            [
                ("o1", OLD, "c1", "shown", "t1"),
                ("o2", OLD, "c2", "shown", "t1"),
                ("m1", MIDDLE, "c1", "shown", "t1"),
                ("r1", RECENT, "c1", "shown", "t1"),
            ],
        )
        for day in (OLD, MIDDLE, RECENT):
            summarise(cur, day)
        cur.execute(
            "INSERT INTO quarantined_selection_events SELECT e.*, '{x}' FROM selection_events e WHERE event_id IN "
            "('o1', 'm1', 'r1')"
        )
        for day in (OLD, MIDDLE, RECENT):
            cur.execute(
                "INSERT INTO selection_event_rejects (source, raw_record, reason, received_at) "
                "VALUES ('f', 'x', 'r', %s)",
                (at(day),),
            )
            cur.execute(
                "INSERT INTO fairness_reports (window_end, tenant_id, report_json, report_html, report_markdown) "
                "VALUES (%s, 't1', '{}', '', '')",
                (day,),
            )
    return conn


def test_dry_run_counts_per_table_and_deletes_nothing(aged):
    cutoffs = load_policy().cutoffs(TODAY)
    found = {t.table: t.rows for t in store.count_expired(aged, cutoffs)}
    assert found["selection_events"] == 2  # o1, o2 (800 days > 730)
    assert found["validated_selection_events"] == 2
    assert found["candidate_daily_stages"] == 2  # c1 and c2 on OLD
    assert found["candidate_daily_stages_days"] == 1
    assert found["quarantined_selection_events"] == 2  # o1, m1 (> 365)
    assert found["selection_event_rejects"] == 2
    assert found["candidate_day_arrays"] == 2  # OLD and MIDDLE (> 400), one tenant and event type each
    assert found["fairness_reports"] == 0  # 1825 days
    with aged.cursor() as cur:
        assert count(cur, "selection_events") == 4
        assert count(cur, "retention_deletions") == 0


def test_apply_deletes_what_is_older_and_records_it(aged):
    cutoffs = load_policy().cutoffs(TODAY)
    applied_at = datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
    removed = {t.table: t.rows for t in store.delete_expired(aged, cutoffs, applied_at)}
    assert removed["selection_events"] == 2 and removed["quarantined_selection_events"] == 2
    with aged.cursor() as cur:
        cur.execute("SELECT event_id FROM selection_events ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["m1", "r1"]
        cur.execute("SELECT event_id FROM quarantined_selection_events")
        assert [r[0] for r in cur.fetchall()] == ["r1"]
        cur.execute("SELECT day FROM candidate_day_arrays ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [RECENT]
        # The middle day keeps its summaries, so its arrays are marked missing (a window rebuilds them).
        cur.execute("SELECT day, arrays_written_at IS NOT NULL FROM candidate_daily_stages_days ORDER BY 1")
        assert cur.fetchall() == [(MIDDLE, False), (RECENT, True)]
        cur.execute(
            "SELECT table_name, category, rows, cutoff FROM retention_deletions WHERE rows > 0 AND applied_at = %s "
            "ORDER BY table_name",
            (applied_at,),
        )
        assert cur.fetchall() == [
            ("candidate_daily_stages", "events", 2, cutoffs["events"]),
            ("candidate_daily_stages_days", "events", 1, cutoffs["events"]),
            ("candidate_day_arrays", "arrays", 2, cutoffs["arrays"]),
            ("quarantined_selection_events", "quarantine", 2, cutoffs["quarantine"]),
            ("selection_event_rejects", "rejects", 2, cutoffs["rejects"]),
            ("selection_events", "events", 2, cutoffs["events"]),
            ("validated_selection_events", "events", 2, cutoffs["events"]),
        ]
        assert count(cur, "retention_deletions") == len(store.RETAINED_TABLES)  # zero counts recorded too


def test_cli_dry_run_then_apply(aged, cli):
    dry = runner.invoke(app, ["retention", "apply", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    document = json.loads(dry.stdout)
    assert document["dry_run"] is True and document["rows"] == 2 + 2 + 2 + 1 + 2 + 2 + 2
    applied = runner.invoke(app, ["retention", "apply", "--json"])
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["rows"] == document["rows"]
    again = runner.invoke(app, ["retention", "apply", "--dry-run", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["rows"] == 0
    table = runner.invoke(app, ["retention", "apply", "--dry-run"])
    assert table.exit_code == 0 and "selection_events" in table.stdout and "0 row(s) would delete" in table.output


def test_cli_refuses_a_policy_below_the_minimum(aged, cli, tmp_path, monkeypatch):
    policy = tmp_path / "short.yaml"
    policy.write_text("retention_days:\n  events: 90\n")
    monkeypatch.setenv("FAIRNESS_RETENTION_POLICY", str(policy))
    refused = runner.invoke(app, ["retention", "apply"])
    assert refused.exit_code == 2
    assert "events (90 days)" in refused.output and "minimum of 365 days" in refused.output
    with aged.cursor() as cur:
        assert count(cur, "selection_events") == 4


# --- erasure ---------------------------------------------------------------------------------------------------

D1, D2, D3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
ATTRIBUTES = ("sex", "race_ethnicity")


@pytest.fixture
def people(conn, tmp_path):
    """cand-7 of t1 on D1 and D2 (3 events, one quarantined), cand-70 of t1 and cand-7 of t2 (who stay)."""
    with conn, conn.cursor() as cur:
        insert_events(
            cur,
            [
                ("a1", D1, "cand-7", "shown", "t1"),
                ("a2", D1, "cand-7", "clicked", "t1"),
                ("a3", D2, "cand-7", "shown", "t1"),
                ("b1", D1, "cand-70", "shown", "t1"),
                ("b2", D3, "cand-70", "shown", "t1"),
                ("c1", D1, "cand-7", "shown", "t2"),
            ],
        )
        cur.execute("DELETE FROM validated_selection_events WHERE event_id = 'a3'")
        cur.execute(
            "INSERT INTO quarantined_selection_events SELECT e.*, '{rank}' FROM selection_events e "
            "WHERE event_id = 'a3'"
        )
        for day in (D1, D2, D3):
            summarise(cur, day)
        for raw in (
            "a9,2026-11-02,cand-7,bogus,s,t1,u",
            "b9,2026-11-02,cand-70,bogus,s,t1,u",
            "c9,2026-11-02,cand-7,bogus,s,t2,u",
        ):
            cur.execute(
                "INSERT INTO selection_event_rejects (source, raw_record, reason) VALUES ('f', %s, 'r')", (raw,)
            )
    answers = tmp_path / "self_identification.csv"  # cand-7 of t1 answers twice (history) and once wrongly (reject)
    answers.write_text("tenant_id,candidate_id,sex\nt1,cand-7,female\nt1,cand-70,male\nt2,cand-7,male\n")
    load_attribute_file(conn, answers, loaded_at=datetime(2026, 11, 1, tzinfo=UTC))
    answers.write_text("tenant_id,candidate_id,sex\nt1,cand-7,male\nt1,cand-7,robot\n")
    load_attribute_file(conn, answers, loaded_at=datetime(2026, 11, 5, tzinfo=UTC))
    with conn, conn.cursor() as cur:  # as the first audit after the loads builds them
        attribute_snapshots(cur, ATTRIBUTES)
    return conn


def everything_mentioning(cur, candidate: str, tenant: str) -> dict[str, int]:
    """Rows of every erasable table still holding the candidate of the tenant (the rejects: as whole fields)."""
    held = {}
    for table in (
        "selection_events",
        "validated_selection_events",
        "quarantined_selection_events",
        "candidate_daily_stages",
    ):
        held[table] = count(cur, table, "tenant_id = %s AND candidate_id = %s", (tenant, candidate))
    held["selection_event_rejects"] = count(
        cur, "selection_event_rejects", "raw_record LIKE %s", (f"%,{candidate},%,{tenant},%",)
    )
    cur.execute(
        "SELECT count(*) FROM candidate_day_arrays WHERE tenant_id = %s "
        "AND position(int8send(hashtextextended(%s, 0)) IN candidate_keys) > 0",
        (tenant, candidate),
    )
    held["candidate_day_arrays"] = cur.fetchone()[0]
    for table in ("candidate_attributes", "candidate_attribute_history", "candidate_attribute_rejects"):
        held[table] = count(cur, table, "tenant_id = %s AND candidate_id = %s", (tenant, candidate))
    cur.execute(
        "SELECT count(*) FROM candidate_attribute_snapshots WHERE tenant_id = %s "
        "AND position(int8send(hashtextextended(%s, 0)) IN candidate_keys) > 0",
        (tenant, candidate),
    )
    held["candidate_attribute_snapshots"] = cur.fetchone()[0]
    return held


def test_erasure_removes_the_person_everywhere_and_only_them(people):
    # By hand: cand-7 of t1 has a1, a2 (D1, validated) and a3 (D2, quarantined); the day summaries come from
    # validated rows: (D1, shown) and (D1, clicked), each in one array row of t1 on D1; one reject names them.
    held = {
        "selection_events": 3,
        "validated_selection_events": 2,
        "quarantined_selection_events": 1,
        "candidate_daily_stages": 2,
        "selection_event_rejects": 1,
        "candidate_day_arrays": 2,
        "candidate_attributes": 2,  # sex (now male) and race_ethnicity (not in the file: unknown)
        "candidate_attribute_history": 3,  # sex female until the second load, male since; race_ethnicity unknown
        "candidate_attribute_rejects": 1,  # 'robot'
        "candidate_attribute_snapshots": 1,  # t1's sex (race_ethnicity has no known value): dropped whole
    }
    with people.cursor() as cur:
        assert everything_mentioning(cur, "cand-7", "t1") == held
        others = {(c, t): everything_mentioning(cur, c, t) for c, t in (("cand-70", "t1"), ("cand-7", "t2"))}
    people.rollback()
    done = store.erase_candidate(
        people,
        "t1",
        "cand-7",
        subject_hash=None,
        candidate_pattern=field_pattern("cand-7"),
        tenant_pattern=field_pattern("t1"),
    )
    assert done.rows_by_table == held  # the arrays: t1's two rows of D1 (t1 has none on D2: a3 was quarantined)
    assert done.days == [D1, D2]
    with people, people.cursor() as cur:
        assert set(everything_mentioning(cur, "cand-7", "t1").values()) == {0}
        cur.execute("SELECT day, arrays_written_at IS NULL FROM candidate_daily_stages_days ORDER BY day")
        assert cur.fetchall() == [(D1, True), (D2, True), (D3, False)]
        from fairness_pipeline.store.audits import store_candidate_arrays

        for day in (D1, D2):  # what the next window does with days whose arrays are missing
            store_candidate_arrays(cur, day)
        attribute_snapshots(cur, ATTRIBUTES)  # and the next audit with the tenant's dropped snapshots
        assert set(everything_mentioning(cur, "cand-7", "t1").values()) == {0}
        assert {k: everything_mentioning(cur, *k) for k in others} == others
        cur.execute("SELECT day, tenant_id, reason FROM recompute_requests ORDER BY day")
        assert cur.fetchall() == [(D1, "t1", f"erasure {done.record_id}"), (D2, "t1", f"erasure {done.record_id}")]
        cur.execute("SELECT tenant_id, subject_hash, rows_by_table, days FROM candidate_erasures")
        assert cur.fetchone() == ("t1", None, held, [D1, D2])
        cur.execute("SELECT row_to_json(e)::text FROM candidate_erasures e")
        assert "cand-7" not in cur.fetchone()[0]


def test_erasing_someone_unknown_records_an_empty_erasure(people):
    with people.cursor() as cur:
        before = {t: count(cur, t) for t in ("selection_events", "selection_event_rejects", "candidate_day_arrays")}
    people.rollback()
    done = store.erase_candidate(
        people,
        "t1",
        "nobody",
        subject_hash=None,
        candidate_pattern=field_pattern("nobody"),
        tenant_pattern=field_pattern("t1"),
    )
    assert done.rows == 0 and done.days == []
    with people.cursor() as cur:
        assert {t: count(cur, t) for t in before} == before
        assert count(cur, "recompute_requests") == 0
        assert count(cur, "candidate_erasures") == 1


def test_cli_erase_prints_counts_without_the_id(people, cli, monkeypatch):
    monkeypatch.setenv("FAIRNESS_ERASURE_SALT", "pepper")
    done = runner.invoke(app, ["erase", "--tenant", "t1", "--candidate", "cand-7", "--json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["rows"] == 3 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 3 + 1  # events ... arrays, snapshots, attributes
    assert document["days"] == [D1.isoformat(), D2.isoformat()]
    assert "cand-7" not in done.stdout
    with people.cursor() as cur:
        cur.execute("SELECT subject_hash FROM candidate_erasures")
        assert cur.fetchone()[0] == hmac.new(b"pepper", b"t1\x00cand-7", hashlib.sha256).hexdigest()
    unknown = runner.invoke(app, ["erase", "--tenant", "t9", "--candidate", "cand-7"])
    assert unknown.exit_code == 2 and "unknown tenant 't9'" in unknown.output
    table = runner.invoke(app, ["erase", "--tenant", "t1", "--candidate", "cand-70"])
    assert table.exit_code == 0 and "selection_events" in table.stdout and "cand-70" not in table.output


def test_erasure_waits_for_a_pipeline_write_of_its_days(people, db_url):
    """A run writing D2's day summaries holds their partition lock: the erasure waits for it to commit, then erases
    what it wrote."""
    import threading

    import psycopg2

    from fairness_pipeline.store.partition_lock import lock_partition

    writer = psycopg2.connect(db_url)
    erasing = psycopg2.connect(db_url)
    try:
        with writer.cursor() as cur:
            lock_partition(cur, "candidate_daily_stages", D2)
            cur.execute(
                "INSERT INTO candidate_daily_stages (tenant_id, day, event_type, candidate_id, first_at, events) "
                "VALUES ('t1', %s, 'contacted', 'cand-7', %s, 1)",
                (D2, at(D2)),
            )
        done: list[store.Erasure] = []
        thread = threading.Thread(
            target=lambda: done.append(
                store.erase_candidate(
                    erasing,
                    "t1",
                    "cand-7",
                    subject_hash=None,
                    candidate_pattern=field_pattern("cand-7"),
                    tenant_pattern=field_pattern("t1"),
                )
            )
        )
        thread.start()
        thread.join(timeout=2)
        assert thread.is_alive() and not done  # waiting at the lock
        writer.commit()
        thread.join(timeout=30)
        assert done and done[0].rows_by_table["candidate_daily_stages"] == 2 + 1
    finally:
        writer.close()
        erasing.close()
    with people.cursor() as cur:
        assert count(cur, "candidate_daily_stages", "candidate_id = 'cand-7' AND tenant_id = 't1'") == 0
