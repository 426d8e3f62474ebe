"""Dimensions as data: a dimension added or replaced by editing a YAML file, with no code change, is generated,
loaded, validated and analysed; tenants without self-identification get no attribute tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline import synthetic
from fairness_pipeline.catalogue import DIMENSIONS_ENV, load_catalogue
from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.ingest.frames import load_frames
from fairness_pipeline.metrics.impact import unanswered_attribute_table
from fairness_pipeline.metrics.window import AnalysisSettings, analyse_window
from fairness_pipeline.store import analysis, validation

FIRST = date(2026, 3, 2)
DAYS = 3
LAST = FIRST + timedelta(days=DAYS - 1)
PAIR = "shown->shortlisted"

VETERAN = """
dimensions:
  veteran:
    label: Protected veteran status
    source: attribute
    values:
      protected_veteran: {label: Protected veteran, share: 3}
      not_a_veteran: {label: Not a protected veteran, share: 7}
"""


def _bounds(day: date) -> dict[str, object]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}


def _summarise_days(conn) -> None:
    """What the event layer stores for clean days: every raw event validated, the per-candidate day summary."""
    for day in (FIRST + timedelta(days=i) for i in range(DAYS)):
        with conn, conn.cursor() as cur:
            validation.replace_validated_day(cur, _bounds(day), [], [])
            analysis.replace_candidate_day(cur, _bounds(day), 0)


def _events(conn, tenant: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT candidate_id, event_type, timestamp, event_id FROM selection_events WHERE tenant_id = %s",
            (tenant,),
        )
        return pd.DataFrame(cur.fetchall(), columns=["candidate_id", "event_type", "timestamp", "event_id"])


def test_an_attribute_dimension_added_in_yaml_is_generated_loaded_and_analysed(
    conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dimensions.yaml").write_text(VETERAN)
    monkeypatch.setenv(DIMENSIONS_ENV, str(tmp_path / "dimensions.yaml"))
    assert load_catalogue().attribute_dimensions == ("sex", "race_ethnicity", "veteran")
    config = synthetic.GeneratorConfig(
        seed=3,
        start=FIRST,
        days=DAYS,
        tenants=2,
        events_per_day=4000,
        bias=(synthetic.parse_bias("veteran=protected_veteran:0.5"),),
        biased_tenants=("tenant-1",),
    )
    candidates: dict[str, set[str]] = {}
    load_frames(conn, synthetic.collect_candidates(synthetic.generate_events(config), candidates), source="test")
    answers_path = tmp_path / "self-id.csv"
    written = synthetic.write_attributes(config, answers_path, "csv", {"tenant-1": candidates["tenant-1"]})
    counts = load_attribute_file(conn, answers_path)  # tenant-2 loads no self-identification
    assert (counts.read, counts.stored, counts.rejected) == (written, written, 0)
    _summarise_days(conn)

    settings = AnalysisSettings(window_days=DAYS)
    with conn, conn.cursor() as cur:
        cells = analysis.window_cells(cur, settings.stage_pair_names, settings.stage_pairs, *settings.window(LAST))
    impacts = analyse_window(cells, settings).impacts
    veteran = impacts[(impacts["dimension"] == "veteran") & (impacts["stage_pair"] == PAIR)].set_index("group")
    assert set(veteran["tenant_id"]) == {"tenant-1"}  # tenant-2 answered nothing: no table

    # oracle: each candidate's first shown event, selected when shortlisted in the window; groups from the file
    events = _events(conn, "tenant-1").sort_values(["timestamp", "event_id"])
    shown = events.loc[events["event_type"] == "shown", "candidate_id"].drop_duplicates()
    shortlisted = set(events.loc[events["event_type"] == "shortlisted", "candidate_id"])
    answers = pd.read_csv(answers_path, dtype=str, keep_default_na=False).set_index("candidate_id")["veteran"]
    group = answers.reindex(shown.to_numpy()).where(lambda a: a.isin(["protected_veteran", "not_a_veteran"]))
    table = pd.DataFrame({"group": group.fillna("unknown").to_numpy(), "x": shown.isin(shortlisted).to_numpy()})
    oracle = table.groupby("group")["x"].agg(n="size", x="sum")
    assert veteran.loc[oracle.index, "n"].tolist() == oracle["n"].tolist()
    assert veteran.loc[oracle.index, "x"].tolist() == oracle["x"].tolist()
    rates = oracle["x"] / oracle["n"]
    assert veteran.loc["not_a_veteran", "is_reference"]
    ratio = rates["protected_veteran"] / rates["not_a_veteran"]
    assert veteran.loc["protected_veteran", "impact_ratio"] == pytest.approx(ratio, rel=1e-12)
    assert ratio == pytest.approx(0.5, abs=0.15)  # the planted factor
    known = oracle.drop("unknown")["n"]
    assert known["protected_veteran"] / known.sum() == pytest.approx(0.3, abs=0.03)  # the declared shares


def _cells(rng: np.random.Generator, tenant: str, answered: bool) -> pd.DataFrame:
    """Window cells of one tenant: every proxy combination, with sex and race answers only when ``answered``."""
    catalogue = load_catalogue()
    rows = []
    for pair in ("shown->clicked", PAIR):
        for tier in (*catalogue.values("company_tier"), None):
            for band in catalogue.values("experience_band"):
                for sex in (*catalogue.values("sex"), None) if answered else (None,):
                    for race in ("white", "asian", None) if answered else (None,):
                        n = int(rng.integers(5, 60))
                        rows.append((tenant, pair, tier, band, "backend", sex, race, n, int(rng.integers(0, n))))
    columns = ["tenant_id", "stage_pair", "company_tier", "experience_band", "specialty", "sex", "race_ethnicity"]
    return pd.DataFrame(rows, columns=[*columns, "n", "x"])


def test_tenants_without_self_identification_get_no_attribute_tables() -> None:
    rng = np.random.default_rng(8)
    answered, silent = _cells(rng, "tenant-a", True), _cells(rng, "tenant-b", False)
    settings = AnalysisSettings()
    both = analyse_window(pd.concat([answered, silent], ignore_index=True), settings)
    alone = analyse_window(answered, settings)
    proxies_only = analyse_window(silent.drop(columns=["sex", "race_ethnicity"]), settings)
    for name in ("frames", "impacts"):
        got = getattr(both, name)
        for tenant, expected in (("tenant-a", getattr(alone, name)), ("tenant-b", getattr(proxies_only, name))):
            own = got[got["tenant_id"] == tenant].reset_index(drop=True)
            pd.testing.assert_frame_equal(own, expected.reset_index(drop=True), check_dtype=False)
    dimensions = set(both.impacts.loc[both.impacts["tenant_id"] == "tenant-a", "dimension"])
    assert {"sex", "race_ethnicity", "sex+race_ethnicity"} <= dimensions
    assert not any(
        unanswered_attribute_table(str(dimension), rows)
        for (_, _, dimension), rows in both.impacts.groupby(["tenant_id", "stage_pair", "dimension"])
    )


REPLACED_TIERS = """
dimensions:
  company_tier:
    label: Employer sector
    source: event
    values:
      public_sector: {label: Public sector, share: 1}
      private: {label: Private, share: 3}
      nonprofit: {label: Non-profit, share: 4}
"""

REPLACED_RUN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from datetime import UTC, date, datetime, timedelta

    import psycopg2

    from fairness_pipeline import synthetic
    from fairness_pipeline.ingest.loader import ingest_file
    from fairness_pipeline.metrics.window import AnalysisSettings, analyse_window
    from fairness_pipeline.store import analysis, validation
    from fairness_pipeline.validation.event_suite import validate_events

    url, csv = sys.argv[1], Path(sys.argv[2])
    day = date(2026, 3, 2)
    config = synthetic.GeneratorConfig(seed=4, start=day, days=1, tenants=1, events_per_day=3000)
    synthetic.write_events(synthetic.generate_events(config), csv)
    with open(csv, "a") as handle:  # a line with a value of the packaged catalogue only
        handle.write("old-1,2026-03-02T10:00:00Z,c-old,shown,s-old,tenant-1," + "a" * 64 + ",faang,0-3,ml,1,0.5\\n")
    conn = psycopg2.connect(url)
    ingested = ingest_file(conn, csv)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    bounds = {"day": day, "day_start": start, "day_end": start + timedelta(days=1)}
    with conn, conn.cursor() as cur:  # a producer writing to the table directly: no schema refuses the value
        cur.execute(
            "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,"
            " user_id_hash, company_tier) VALUES ('direct-1', %s, 'c-direct', 'shown', 's', 'tenant-1', %s, 'faang')",
            (start + timedelta(hours=11), "b" * 64),
        )
    with conn, conn.cursor() as cur:
        result = validate_events(validation.read_raw_day(cur, bounds), datetime.now(UTC))
        quarantined = result.quarantined
        validation.replace_validated_day(
            cur, bounds, quarantined["event_id"].astype(str).tolist(), quarantined["failed_expectations"].tolist()
        )
        analysis.replace_candidate_day(cur, bounds, 0)
        settings = AnalysisSettings(window_days=1)
        cells = analysis.window_cells(cur, settings.stage_pair_names, settings.stage_pairs, day, day)
    frames = analyse_window(cells, settings).frames
    tiers = frames[(frames["dimension"] == "company_tier") & (frames["stage_pair"] == "shown->shortlisted")]
    print(json.dumps({
        "read": ingested.read, "inserted": ingested.inserted, "rejected": ingested.rejected,
        "quarantined": {str(k): list(v) for k, v in zip(quarantined["event_id"], quarantined["failed_expectations"])},
        "tiers": {str(g): int(n) for g, n in zip(tiers["group"], tiers["n"])},
    }))
    """
)


@pytest.mark.slow  # a subprocess: the catalogue in force is read when a process starts
def test_an_event_dimension_replaced_in_yaml_is_ingested_validated_and_counted(
    db_url: str, conn, tmp_path: Path
) -> None:
    (tmp_path / "dimensions.yaml").write_text(REPLACED_TIERS)
    script = tmp_path / "run.py"
    script.write_text(REPLACED_RUN)
    env = {**os.environ, DIMENSIONS_ENV: str(tmp_path / "dimensions.yaml")}
    done = subprocess.run(
        [sys.executable, str(script), db_url, str(tmp_path / "events.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # ingest refuses a value outside the catalogue in force, with its reason; every line is accounted for
    assert result["rejected"] == 1 and result["read"] == result["inserted"] + 1
    with conn.cursor() as cur:
        cur.execute("SELECT raw_record, reason FROM selection_event_rejects")
        rejects = cur.fetchall()
    assert len(rejects) == 1 and rejects[0][0].startswith("old-1,") and rejects[0][1] == "unknown company_tier 'faang'"
    # an event stored past ingest is quarantined by the suite built from the catalogue
    assert result["quarantined"] == {"direct-1": ["company_tier_in_set"]}
    # the window counts the new values (every one listed) beside unknown
    tiers = result["tiers"]
    assert set(tiers) == {"public_sector", "private", "nonprofit", "unknown"}
    known = {k: v for k, v in tiers.items() if k != "unknown"}
    assert known["nonprofit"] / sum(known.values()) == pytest.approx(0.5, abs=0.05)  # the declared shares, 1:3:4
    assert known["public_sector"] / sum(known.values()) == pytest.approx(0.125, abs=0.04)


@pytest.mark.slow  # a subprocess: the catalogue is read as the command's modules load
def test_a_broken_user_catalogue_is_a_one_line_usage_error(tmp_path: Path) -> None:
    (tmp_path / "dimensions.yaml").write_text("dimensions: {age: {source: attribute, values: []}}")
    done = subprocess.run(
        [sys.executable, "-m", "fairness_pipeline.cli.main", "attributes", "dimensions"],
        env={**os.environ, DIMENSIONS_ENV: str(tmp_path / "dimensions.yaml")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'dimensions.yaml'}: dimension 'age': 'values' must be a non-empty mapping code: label "
        "(or a list of codes)"
    ]
