"""Candidate attributes: loading with ingest's accounting, history and replacement, erasure, and the value in force
at a candidate's first baseline event (checked against a pandas oracle)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairness_pipeline.catalogue import packaged_catalogue
from fairness_pipeline.cli.main import app
from fairness_pipeline.ingest.attributes import BrokenAttributeFileError, load_attribute_file
from fairness_pipeline.ingest.reader import UnreadableFileError
from fairness_pipeline.store import connection
from fairness_pipeline.store.attributes import attribute_values_at, delete_candidate, table_counts

LOADED_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
runner = CliRunner()


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def current(conn) -> dict[tuple[str, str, str], str | None]:
    with conn.cursor() as cur:
        cur.execute("SELECT tenant_id, candidate_id, attribute, value FROM candidate_attributes")
        return {(t, c, a): v for t, c, a, v in cur.fetchall()}


def reject_reasons(conn) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT line_number, reason FROM candidate_attribute_rejects ORDER BY line_number")
        return dict(cur.fetchall())


def test_csv_rows_are_stored_unknown_or_rejected_and_the_tables_agree(conn, tmp_path: Path) -> None:
    path = write(
        tmp_path / "self-id.csv",
        [
            "tenant_id,candidate_id,sex,race_ethnicity",
            "t1,c1,female,asian",  # 2: stored
            "t1,c2,Male,White (Not Hispanic or Latino)",  # 3: stored, by label and any case
            "t1,c3,declined,",  # 4: stored, both unknown
            "t1,c4,,two_or_more_races",  # 5: stored
            "t1,,female,asian",  # 6: empty candidate_id
            "t1,c5,f,asian",  # 7: bad sex
            "t1,c6,female,martian",  # 8: bad race
            "t1,c7,female",  # 9: wrong column count
            "t2,c1,male,hispanic_or_latino",  # 10: another tenant, same candidate id
        ],
    )
    counts = load_attribute_file(conn, path, loaded_at=LOADED_AT)
    assert counts.as_dict() == {"read": 9, "stored": 5, "unchanged": 0, "rejected": 4}
    assert table_counts(conn) == {"attributes": 10, "history": 10, "rejects": 4}
    values = current(conn)
    assert values[("t1", "c2", "sex")] == "male" and values[("t1", "c2", "race_ethnicity")] == "white"
    assert values[("t1", "c3", "sex")] is None and values[("t1", "c3", "race_ethnicity")] is None
    assert values[("t1", "c4", "sex")] is None and values[("t2", "c1", "sex")] == "male"
    reasons = reject_reasons(conn)
    assert reasons[6] == "empty candidate_id"
    assert reasons[7].startswith("sex 'f' is not one of male, female")
    assert reasons[8].startswith("race_ethnicity 'martian' is not one of hispanic_or_latino")
    assert reasons[9] == "wrong column count: expected 4, got 3"
    with conn.cursor() as cur:
        cur.execute("SELECT source, collected_at, changed_at FROM candidate_attributes WHERE candidate_id = 'c1'")
        assert set(cur.fetchall()) == {("self-id.csv", LOADED_AT, LOADED_AT)}
        cur.execute("SELECT DISTINCT valid_from = '-infinity', valid_to FROM candidate_attribute_history")
        assert cur.fetchall() == [(True, None)]  # first values hold from the beginning of time


def test_a_later_load_replaces_a_value_and_keeps_when_it_changed(conn, tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.csv", ["tenant_id,candidate_id,sex,race_ethnicity", "t1,c1,female,asian", "t1,c2,male,white"]
    )
    assert load_attribute_file(conn, first, loaded_at=LOADED_AT).as_dict()["stored"] == 2
    changed_on = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
    second = write(
        tmp_path / "b.csv",
        [
            "tenant_id,candidate_id,collected_at,sex,race_ethnicity",
            "t1,c1,2026-03-20T09:30:00Z,female,black_or_african_american",  # race changed
            "t1,c2,2026-03-20T09:30:00Z,MALE,white",  # the same answers: unchanged
            "t1,c3,2026-03-20,female,",
        ],
    )
    counts = load_attribute_file(conn, second, loaded_at=changed_on + timedelta(days=1))
    assert counts.as_dict() == {"read": 3, "stored": 2, "unchanged": 1, "rejected": 0}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT attribute, value, collected_at, changed_at FROM candidate_attributes WHERE candidate_id = 'c1'"
            " ORDER BY attribute"
        )
        assert cur.fetchall() == [
            ("race_ethnicity", "black_or_african_american", changed_on, changed_on),
            ("sex", "female", LOADED_AT, LOADED_AT),  # unchanged values keep their times
        ]
        cur.execute(
            "SELECT value, valid_from = '-infinity', valid_to FROM candidate_attribute_history"
            " WHERE candidate_id = 'c1' AND attribute = 'race_ethnicity' ORDER BY valid_from"
        )
        assert cur.fetchall() == [("asian", True, changed_on), ("black_or_african_american", False, None)]
    assert table_counts(conn) == {"attributes": 6, "history": 7, "rejects": 0}
    # a re-load of the same file changes nothing
    again = load_attribute_file(conn, second, loaded_at=changed_on + timedelta(days=2))
    assert again.as_dict() == {"read": 3, "stored": 0, "unchanged": 3, "rejected": 0}
    assert table_counts(conn) == {"attributes": 6, "history": 7, "rejects": 0}


def test_a_first_known_answer_after_unknown_ones_holds_from_the_beginning(conn, tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        [
            "tenant_id,candidate_id,collected_at,sex",
            "t1,c1,2026-03-01,declined",
            "t1,c1,2026-03-05,",  # still unknown: unchanged
            "t1,c1,2026-03-10,female",  # first known answer: replaces the unknown history
            "t1,c1,2026-03-20,declined",  # withdrawn: unknown from then on
            "t1,c1,2026-03-25,male",  # a later known answer after a known one: from its collected_at
        ],
    )
    counts = load_attribute_file(conn, path, loaded_at=LOADED_AT + timedelta(days=30))
    assert counts.as_dict() == {"read": 5, "stored": 4, "unchanged": 1, "rejected": 0}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT value, valid_from = '-infinity', valid_to FROM candidate_attribute_history"
            " WHERE attribute = 'sex' ORDER BY valid_from"
        )
        assert cur.fetchall() == [
            ("female", True, datetime(2026, 3, 20, tzinfo=UTC)),
            (None, False, datetime(2026, 3, 25, tzinfo=UTC)),
            ("male", False, None),
        ]
        cur.execute("SELECT value, changed_at FROM candidate_attributes WHERE attribute = 'sex'")
        assert cur.fetchall() == [("male", datetime(2026, 3, 25, tzinfo=UTC))]


def test_lines_of_one_candidate_apply_in_file_order(conn, tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        [
            "tenant_id,candidate_id,collected_at,sex",
            "t1,c1,2026-03-01,male",
            "t1,c1,2026-03-02,female",
            "t1,c1,2026-03-03,female",
        ],
    )
    counts = load_attribute_file(conn, path, loaded_at=LOADED_AT, chunk_rows=10)
    assert counts.as_dict() == {"read": 3, "stored": 2, "unchanged": 1, "rejected": 0}
    assert current(conn)[("t1", "c1", "sex")] == "female"
    with conn.cursor() as cur:
        cur.execute("SELECT value, valid_to FROM candidate_attribute_history WHERE attribute = 'sex' ORDER BY 2")
        assert cur.fetchall() == [("male", datetime(2026, 3, 2, tzinfo=UTC)), ("female", None)]


def test_jsonl_missing_keys_are_unknown_and_unknown_keys_rejected(conn, tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.jsonl",
        [
            json.dumps({"tenant_id": "t1", "candidate_id": "c1", "sex": "female"}),
            json.dumps({"tenant_id": "t1", "candidate_id": "c2", "race_ethnicity": None, "sex": "declined"}),
            json.dumps({"tenant_id": "t1", "candidate_id": "c3", "gender": "female"}),
            json.dumps({"tenant_id": "t1", "candidate_id": "c4", "sex": True}),
            json.dumps({"tenant_id": "t1", "candidate_id": "c5", "collected_at": "yesterday"}),
            json.dumps({"tenant_id": "t1", "candidate_id": "c6", "collected_at": "2099-01-01"}),
            "[1, 2]",
        ],
    )
    counts = load_attribute_file(conn, path, loaded_at=LOADED_AT)
    assert counts.as_dict() == {"read": 7, "stored": 2, "unchanged": 0, "rejected": 5}
    values = current(conn)
    assert values[("t1", "c1", "sex")] == "female" and values[("t1", "c1", "race_ethnicity")] is None
    assert reject_reasons(conn) == {
        3: "unknown key(s) gender",
        4: "sex is a JSON boolean, not a string or a number",
        5: "bad collected_at 'yesterday' (not an ISO 8601 date or time)",
        6: "collected_at '2099-01-01' is in the future",
        7: "not a JSON object",
    }


def test_unreadable_files_are_refused(conn, tmp_path: Path) -> None:
    unknown = write(tmp_path / "a.csv", ["tenant_id,candidate_id,gender", "t1,c1,female"])
    with pytest.raises(UnreadableFileError, match=r"unknown column\(s\) gender; known columns: tenant_id,candidate_id"):
        load_attribute_file(conn, unknown)
    lacking = write(tmp_path / "b.csv", ["tenant_id,sex", "t1,female"])
    with pytest.raises(UnreadableFileError, match=r"lacks required column\(s\) candidate_id"):
        load_attribute_file(conn, lacking)
    assert table_counts(conn) == {"attributes": 0, "history": 0, "rejects": 0}


def test_a_compressed_file_that_breaks_off_keeps_what_came_before(conn, tmp_path: Path) -> None:
    lines = ["tenant_id,candidate_id,sex"] + [f"t1,c{i},female" for i in range(2000)]
    data = gzip.compress("".join(line + "\n" for line in lines).encode())
    path = tmp_path / "a.csv.gz"
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(BrokenAttributeFileError) as caught:
        load_attribute_file(conn, path, chunk_rows=500)
    counts = caught.value.attribute_counts
    assert counts.read == counts.stored + counts.rejected and counts.stored > 0
    assert table_counts(conn)["attributes"] == 2 * counts.stored  # sex and race_ethnicity per candidate


def test_delete_erases_one_person(conn, tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv", ["tenant_id,candidate_id,sex", "t1,c1,female", "t1,c2,male", "t2,c1,male", "t1,c1,x"]
    )
    load_attribute_file(conn, path, loaded_at=LOADED_AT)
    assert delete_candidate(conn, "t1", "c1") == {"attributes": 2, "history": 2, "rejects": 1}
    assert {key[:2] for key in current(conn)} == {("t1", "c2"), ("t2", "c1")}
    assert delete_candidate(conn, "t1", "c1") == {"attributes": 0, "history": 0, "rejects": 0}


def _insert_events(conn, events: pd.DataFrame) -> None:
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,"
            " user_id_hash) VALUES (%s, %s, %s, %s, 's', %s, 'u')",
            list(events[["event_id", "timestamp", "candidate_id", "event_type", "tenant_id"]].itertuples(index=False)),
        )


def test_values_in_force_at_the_first_baseline_event_match_a_pandas_oracle(conn, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    candidates = [f"c{i}" for i in range(60)]
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(400)],
            "timestamp": [start + timedelta(hours=float(h)) for h in rng.uniform(-48, 30 * 24, 400)],
            "candidate_id": rng.choice(candidates, 400),
            "event_type": rng.choice(["shown", "clicked"], 400, p=[0.8, 0.2]),
            "tenant_id": rng.choice(["t1", "t2"], 400, p=[0.85, 0.15]),
        }
    )
    _insert_events(conn, events)
    sexes = ["male", "female", "declined"]
    loads: list[pd.DataFrame] = []
    for load, day in enumerate((0, 10, 20)):  # three loads; the later two change some answers
        rows = pd.DataFrame(
            {
                "tenant_id": "t1",
                "candidate_id": rng.choice(candidates, 40, replace=False),
                "collected_at": (start + timedelta(days=day)).isoformat(),
                "sex": rng.choice(sexes, 40),
            }
        )
        rows.to_csv(tmp_path / f"load{load}.csv", index=False)
        load_attribute_file(conn, tmp_path / f"load{load}.csv", loaded_at=start + timedelta(days=25))
        loads.append(rows)

    window_start, window_stop = start, start + timedelta(days=28)
    got = attribute_values_at(conn, "t1", ["sex", "race_ethnicity"], window_start, window_stop)

    # Oracle: each candidate's first shown event in the window, then the answer in force at that time: a candidate's
    # first answer holds from the beginning of time, and so does its first known answer after only unknown ones; any
    # other different answer holds from its collected_at.
    shown = events[(events["tenant_id"] == "t1") & (events["event_type"] == "shown")]
    shown = shown[(shown["timestamp"] >= window_start) & (shown["timestamp"] < window_stop)]
    firsts = shown.sort_values(["timestamp", "event_id"]).groupby("candidate_id", as_index=False).first()
    answers = pd.concat(loads, ignore_index=True)
    answers["code"] = [{"male": "male", "female": "female"}.get(answer) for answer in answers["sex"]]
    answers["collected_at"] = pd.to_datetime(answers["collected_at"])

    def in_force(candidate: str, at: datetime) -> str | None:
        timeline: list[tuple[pd.Timestamp, str | None]] = []  # (in force from, value), in load order
        for row in answers[answers["candidate_id"] == candidate].itertuples():
            answer = None if pd.isna(row.code) else row.code
            if not timeline or (answer is not None and all(code is None for _, code in timeline)):
                timeline = [(pd.Timestamp.min.tz_localize(UTC), answer)]
            elif answer != timeline[-1][1]:
                timeline.append((row.collected_at, answer))
        return next((code for since, code in reversed(timeline) if since <= at), None)

    def known(value: object) -> object:
        return None if pd.isna(value) else value

    expected = {row.candidate_id: known(in_force(row.candidate_id, row.timestamp)) for row in firsts.itertuples()}
    assert {c: known(v) for c, v in zip(got["candidate_id"], got["sex"], strict=True)} == expected
    assert got["race_ethnicity"].isna().all()  # never loaded: unknown
    assert list(got["first_at"]) == list(firsts["timestamp"])
    assert sum(v is not None for v in expected.values()) > 10  # the oracle is not trivially all unknown
    first_answers = answers.drop_duplicates("candidate_id").set_index("candidate_id")["code"].map(known)
    assert any(expected[c] != first_answers.get(c) for c in expected)  # some candidates changed in the window


def test_cli_load_json_counts_and_delete(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    path = write(
        tmp_path / "a.csv", ["tenant_id,candidate_id,sex,race_ethnicity", "t1,c1,female,asian", "t1,c2,x,asian"]
    )
    result = runner.invoke(app, ["attributes", "load", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"read": 2, "stored": 1, "unchanged": 0, "rejected": 1}
    bad = runner.invoke(app, ["attributes", "load", str(write(tmp_path / "b.csv", ["tenant_id,candidate_id,age"]))])
    assert bad.exit_code == 2 and "unknown column(s) age" in bad.stderr
    deleted = runner.invoke(app, ["attributes", "delete", "--tenant", "t1", "--candidate", "c1"])
    assert deleted.exit_code == 0 and "erased 2 attribute value(s), 2 history row(s)" in deleted.stderr
    assert "c1" not in deleted.output
    listed = runner.invoke(app, ["attributes", "dimensions", "--json"])
    assert json.loads(listed.stdout)["dimensions"]["sex"]["values"] == {"male": "Male", "female": "Female"}
    connection.database_url.cache_clear()
    assert packaged_catalogue().attribute_dimensions == ("sex", "race_ethnicity")


def test_generated_self_identification_loads_and_the_worker_matches_a_pandas_oracle(
    db_url: str, conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    path = tmp_path / "self-id.jsonl"
    generated = runner.invoke(
        app,
        [
            "generate",
            "--to-db",
            "--attributes",
            str(path),
            "--start",
            "2026-03-02",
            "--days",
            "5",
            "--tenants",
            "1",
            "--events-per-day",
            "3000",
            "--bias",
            "sex=female:0.5",
        ],
    )
    assert generated.exit_code == 0, generated.output
    loaded = runner.invoke(app, ["attributes", "load", str(path), "--json"])
    assert loaded.exit_code == 0, loaded.output
    with conn.cursor() as cur:
        cur.execute("SELECT candidate_id, event_type FROM selection_events")
        events = pd.DataFrame(cur.fetchall(), columns=["candidate_id", "event_type"])
    counts = json.loads(loaded.stdout)
    assert counts == {"read": events["candidate_id"].nunique(), "stored": counts["read"], "unchanged": 0, "rejected": 0}
    worker = runner.invoke(
        app, ["worker", "--end", "2026-03-06", "--days", "5", "--tenant-id", "tenant-1", "--dimension", "sex"]
    )
    assert worker.exit_code == 0, worker.output
    block = json.loads(worker.stdout)
    # oracle: the answers of the file, each candidate's first shown event, selected when shortlisted
    answers = pd.read_json(path, lines=True, dtype=False).set_index("candidate_id")["sex"]
    groups = answers.where(answers.isin(["male", "female"]), "unknown")
    shown = events[events["event_type"] == "shown"]["candidate_id"].drop_duplicates()
    shortlisted = set(events.loc[events["event_type"] == "shortlisted", "candidate_id"])
    table = pd.DataFrame({"group": groups.loc[shown].to_numpy(), "selected": shown.isin(shortlisted).to_numpy()})
    oracle = table.groupby("group")["selected"].agg(n="size", x="sum")
    assert {g: n for g, n in block["sample_sizes"].items() if n} == oracle["n"].to_dict()
    rates = oracle["x"] / oracle["n"]
    assert block["reference_group"] == "male"
    assert block["impact_ratios"]["female"] == pytest.approx(rates["female"] / rates["male"], rel=1e-12)
    assert block["impact_ratios"]["female"] == pytest.approx(0.5, abs=0.12)  # the planted factor
    assert block["unknown_count"] == oracle.loc["unknown", "n"]
    connection.database_url.cache_clear()
