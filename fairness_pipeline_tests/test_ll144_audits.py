"""LL144 categories in the audits that count candidates from the per-day arrays: the scoring rates and the trends'
weekly cells. The attributes are looked up when a window is counted (``store.attributes.attribute_periods``,
``metrics.candidate_arrays.AttributePeriods``): hand-worked lookups, the window cells against the SQL path
(``store.analysis.window_cells``) on data with history changes, unknowns and an erasure, the documented difference
(an answer changed on the day of the first event, after it), scoring rates by sex and race/ethnicity against a pandas
oracle, and stored week counts that a later self-identification load invalidates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from psycopg2.extras import execute_values

from fairness_pipeline.audits import scoring
from fairness_pipeline.defs.partitions import day_bounds
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS
from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.metrics.candidate_arrays import (
    AttributePeriods,
    AttributeSnapshot,
    StageArrays,
    stage_pair_cells,
)
from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.store import analysis
from fairness_pipeline.store import attributes as attribute_store
from fairness_pipeline.store import audits as audit_store

LAST = date(2026, 3, 18)
DAYS = 7
FIRST = LAST - timedelta(days=DAYS - 1)
SETTINGS = AnalysisSettings(window_days=DAYS)
LOADED_AT = datetime(2026, 4, 1, tzinfo=UTC)
ATTRIBUTES = ("sex", "race_ethnicity")
COLUMNS = ("tenant_id", "candidate_id", "sex", "race_ethnicity", "collected_at")


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- the lookup by hand -----------------------------------------------------------------------------------------------


def _periods(rows: list[tuple[str, str, str, list[int], list[int], list[int]]], days: int = 5) -> AttributePeriods:
    """Periods from (tenant, attribute, value, keys, first days, stop days) given as lists, as snapshots of day
    numbers from 0 hold them (the store's shape: per tenant and attribute, ordered by key and start)."""
    grouped: dict[tuple[str, str], list[tuple[int, int, int, str]]] = {}
    for tenant, attribute, value, keys, starts, stops in rows:
        grouped.setdefault((tenant, attribute), []).extend(zip(keys, starts, stops, [value] * len(keys), strict=True))
    snapshots = []
    for (tenant, attribute), periods in grouped.items():
        periods.sort()
        values = tuple(sorted({value for *_, value in periods}))
        keys, starts, stops, codes = (
            np.array(column, dtype=np.int64)
            for column in zip(*[(k, s, e, values.index(v) + 1) for k, s, e, v in periods], strict=True)
        )
        snapshots.append(AttributeSnapshot(tenant, attribute, values, keys, starts, stops, codes))
    return AttributePeriods.from_snapshots(ATTRIBUTES, [("male", "female"), ("white", "asian")], 0, days, snapshots)


def test_the_value_in_force_at_the_end_of_each_day_by_hand() -> None:
    periods = _periods(
        [
            ("t1", "sex", "female", [10, 20], [0, 0], [3, 5]),  # 10 female on days 0-2, 20 on every day
            ("t1", "sex", "male", [10], [3], [5]),  # 10 male from day 3 (a change collected on day 2 or 3)
            ("t1", "race_ethnicity", "asian", [20], [2], [4]),  # 20 asian on days 2-3 only
            ("t1", "race_ethnicity", "other_value", [30], [0], [5]),  # outside the catalogue: kept, coded after it
            ("t2", "sex", "male", [10], [0], [5]),  # another tenant's candidate with the same key
        ]
    )
    assert periods.vocabularies == (("male", "female"), ("white", "asian", "other_value"))
    keys = np.array([10, 10, 10, 20, 20, 20, 30, 99], dtype=np.int64)
    days = np.array([0, 2, 3, 1, 2, 4, 0, 0], dtype=np.int64)
    codes = periods.codes_at("t1", keys, days)
    assert codes[:, 0].tolist() == [2, 2, 1, 2, 2, 2, 0, 0]  # 2 = female, 1 = male, 0 = unknown
    assert codes[:, 1].tolist() == [0, 0, 0, 0, 2, 0, 3, 0]
    assert periods.codes_at("t2", keys[:3], days[:3])[:, 0].tolist() == [1, 1, 1]
    assert periods.codes_at("t3", keys, days).tolist() == [[0, 0]] * len(keys)  # no self-identification
    assert periods.tenants == {"t1", "t2"}
    with pytest.raises(ValueError, match="outside the window"):
        periods.codes_at("t1", keys[:1], np.array([5]))


def test_periods_within_days_of_the_window_by_hand() -> None:
    periods = _periods(
        [
            ("t1", "sex", "female", [10, 20], [0, 1], [3, 5]),
            ("t1", "sex", "male", [10], [3], [5]),
            ("t1", "race_ethnicity", "other_value", [30], [0], [2]),  # outside the catalogue, on days 0-1 only
            ("t1", "race_ethnicity", "asian", [20], [2], [4]),
            ("t2", "sex", "male", [40], [0], [1]),  # day 0 only
        ]
    )
    days_2_to_4 = periods.within(2, 3, [("male", "female"), ("white", "asian")])
    # worked out: offsets 2-4 become 0-2; periods ending by day 2 and the value only they held are gone
    expected = _periods(
        [
            ("t1", "sex", "female", [10, 20], [0, 0], [1, 3]),
            ("t1", "sex", "male", [10], [1], [3]),
            ("t1", "race_ethnicity", "asian", [20], [0], [2]),
        ],
        days=3,
    )
    assert days_2_to_4.vocabularies == (("male", "female"), ("white", "asian")) and days_2_to_4.tenants == {"t1"}
    assert days_2_to_4.fingerprint() == expected.fingerprint()
    keys, days = np.array([10, 10, 20, 20, 30]), np.array([0, 1, 0, 2, 0])
    assert days_2_to_4.codes_at("t1", keys, days).tolist() == [[2, 0], [1, 0], [2, 2], [2, 0], [0, 0]]
    days_0_to_1 = periods.within(0, 2, [("male", "female"), ("white", "asian")])
    assert days_0_to_1.vocabularies[1] == ("white", "asian", "other_value")
    assert days_0_to_1.codes_at("t1", np.array([30, 20]), np.array([1, 1])).tolist() == [[0, 3], [2, 0]]
    with pytest.raises(ValueError, match="outside the window"):
        periods.within(3, 3, [("male", "female"), ("white", "asian")])


def test_a_value_outside_the_catalogue_held_only_before_the_window_is_left_out() -> None:
    """A tenant's snapshot lists every value it ever held: one outside the catalogue whose only period ends before
    the window (key 10 said 'robot' until day 3, female since) adds nothing to the window's vocabulary."""
    snapshot = AttributeSnapshot(
        "t1", "sex", ("female", "robot"), np.array([10, 10]), np.array([0, 3]), np.array([3, 9]), np.array([2, 1])
    )
    periods = AttributePeriods.from_snapshots(ATTRIBUTES, [("male", "female"), ("white", "asian")], 5, 2, [snapshot])
    assert periods.vocabularies == (("male", "female"), ("white", "asian"))
    assert periods.codes_at("t1", np.array([10, 10]), np.array([0, 1])).tolist() == [[2, 0], [2, 0]]


def test_stage_pair_cells_carry_the_attributes_of_the_first_baseline_day() -> None:
    def day(keys: list[int], tier: int) -> tuple[bytes, bytes, bytes]:
        codes = np.array([[tier, 0, 0]] * len(keys), dtype=">i2")
        return np.array(keys, ">i8").tobytes(), np.full(len(keys), 0.5, ">f8").tobytes(), codes.tobytes()

    periods = _periods([("t1", "sex", "female", [1], [0], [2]), ("t1", "sex", "male", [1, 2], [2, 0], [5, 5])])
    shown = StageArrays.concatenate([day([1], 1), day([2], 1), day([1, 3], 1)], offsets=[1, 3, 4])
    clicked = StageArrays.concatenate([day([2], 1)], offsets=[4])
    cells = stage_pair_cells(
        "t1", {"shown": shown, "clicked": clicked}, [("shown", "clicked")], ["p"], attributes=periods
    )
    assert list(cells.columns) == ["tenant_id", "stage_pair", *DIMENSIONS, *ATTRIBUTES, "n", "x"]
    # candidate 1 first shown on day 1 (female then; male from day 2), 2 on day 3 (male, clicked), 3 unknown
    by_sex = cells.set_index(cells["sex"].fillna("unknown"))
    assert by_sex.loc["female", ["n", "x"]].tolist() == [1, 0]
    assert by_sex.loc["male", ["n", "x"]].tolist() == [1, 1]
    assert by_sex.loc["unknown", ["n", "x"]].tolist() == [1, 0]
    assert cells["race_ethnicity"].isna().all()


# --- data on PostgreSQL -----------------------------------------------------------------------------------------------


def _insert(cur, events: pd.DataFrame) -> None:
    """Events into selection_events and, all valid, validated_selection_events; then each window day summarised
    and its arrays written by the pipeline's own statements."""
    rows = [
        (
            r.event_id,
            r.timestamp.to_pydatetime(),
            r.candidate_id,
            r.event_type,
            f"s-{r.candidate_id}",
            r.tenant_id,
            *(None if pd.isna(value) else value for value in (r.company_tier, r.experience_band, r.specialty)),
            None if pd.isna(r.score) else float(r.score),
        )
        for r in events.itertuples()
    ]
    execute_values(
        cur,
        "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,"
        " user_id_hash, company_tier, experience_band, specialty, score) VALUES %s",
        rows,
        template="(%s, %s, %s, %s, %s, %s, 'u', %s, %s, %s, %s)",
    )
    cur.execute("INSERT INTO validated_selection_events SELECT * FROM selection_events")
    for offset in range(DAYS + 2):  # the window and a day after it
        day = FIRST + timedelta(days=offset)
        analysis.replace_candidate_day(cur, day_bounds(day), 0)
        audit_store.store_candidate_arrays(cur, day)


def _events(seed: int, candidates: int = 500) -> pd.DataFrame:
    """Two tenants' funnels over the window and a day on each side: each candidate shown on one to three days (its
    groups and score may differ between events: the first counts), then clicked, shortlisted, ... with falling
    chances, some on later days; tenant-1's women are shortlisted less."""
    rng = np.random.default_rng(seed)
    rows = []
    for tenant in ("t1", "t2"):
        for i in range(candidates):
            candidate = f"{tenant}-c{i:04d}"
            female = i % 2 == 0
            start = int(rng.integers(-1, DAYS + 1))
            shown_days = sorted({start, *(start + int(k) for k in rng.integers(0, 4, size=int(rng.integers(0, 3))))})
            for n, offset in enumerate(shown_days):
                stamp = midnight(FIRST) + timedelta(days=offset, seconds=int(rng.integers(0, 86_400)))
                score = round(float(rng.random()) * (0.6 if tenant == "t1" and female else 1.0), 4)
                rows.append(
                    (
                        f"{candidate}-shown-{n}",
                        stamp,
                        candidate,
                        "shown",
                        tenant,
                        rng.choice([*DIMENSION_VALUES["company_tier"], None]),
                        rng.choice([*DIMENSION_VALUES["experience_band"], None]),
                        rng.choice(DIMENSION_VALUES["specialty"][:3]),
                        np.nan if rng.random() < 0.05 else score,
                    )
                )
            at = midnight(FIRST) + timedelta(days=start, seconds=int(rng.integers(0, 86_400)))
            for stage, chance in (("clicked", 0.5), ("shortlisted", 0.6), ("contacted", 0.5), ("interviewed", 0.5)):
                chance *= 0.6 if stage == "shortlisted" and tenant == "t1" and female else 1.0
                if rng.random() >= chance:
                    break
                at += timedelta(hours=int(rng.integers(1, 40)))
                rows.append((f"{candidate}-{stage}", at, candidate, stage, tenant, "faang", "0-3", "backend", np.nan))
    columns = ["event_id", "timestamp", "candidate_id", "event_type", "tenant_id", *DIMENSIONS, "score"]
    return pd.DataFrame(rows, columns=columns).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))


def _answers(seed: int, events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """tenant-1's self-identification: a first file (collected before the window; 5% of candidates never answer,
    a few declined or blank, about 1% native_hawaiian_or_pacific_islander) and a second file of changes, all at
    midnights so that the day rule and the SQL agree: inside the window and before it, and first answers after a
    declined one (which count from -infinity)."""
    rng = np.random.default_rng(seed)
    ids = sorted(set(events.loc[events["tenant_id"] == "t1", "candidate_id"]))
    races = ["white", "asian", "black_or_african_american", "hispanic_or_latino", "two_or_more_races"]
    first = []
    for number, candidate in enumerate(ids):
        if rng.random() < 0.05:
            continue
        sex = ("female" if number % 2 == 0 else "male") if rng.random() > 0.06 else rng.choice(["declined", ""])
        race = "native_hawaiian_or_pacific_islander" if rng.random() < 0.01 else rng.choice([*races, "Declined"])
        first.append(("t1", candidate, sex, race, "2026-03-01T09:00:00Z"))
    first_frame = pd.DataFrame(first, columns=COLUMNS)
    changed = first_frame.sample(frac=0.15, random_state=seed).copy()
    changed["race_ethnicity"] = rng.choice(races, size=len(changed))
    changed["sex"] = np.where(changed["sex"].isin(["declined", ""]), "female", changed["sex"])
    change_days = [FIRST - timedelta(days=3), FIRST + timedelta(days=2), FIRST + timedelta(days=4), LAST]
    changed["collected_at"] = [midnight(change_days[i % 4]).isoformat() for i in range(len(changed))]
    return first_frame, changed


def _load_answers(conn, frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)
    counts = load_attribute_file(conn, path, loaded_at=LOADED_AT)
    assert counts.rejected == 0


@pytest.fixture
def loaded(conn, tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Events of two tenants, tenant-1's answers with changes, one erased candidate; returns (events, first answers,
    changes)."""
    events = _events(3)
    with conn, conn.cursor() as cur:
        _insert(cur, events)
    first, changes = _answers(4, events)
    _load_answers(conn, first, tmp_path / "first.csv")
    _load_answers(conn, changes, tmp_path / "changes.csv")
    attribute_store.delete_candidate(conn, "t1", first["candidate_id"].iloc[7])
    return events, first, changes


def test_a_load_leaves_its_tenants_snapshots_built(conn, tmp_path: Path) -> None:
    first, _ = _answers(4, _events(3))
    _load_answers(conn, first, tmp_path / "first.csv")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT tenant_id, version, built_version FROM candidate_attribute_tenants")
        assert cur.fetchall() == [("t1", 1, 1)]
        cur.execute("SELECT attribute, periods FROM candidate_attribute_snapshots ORDER BY attribute")
        built = cur.fetchall()
        cur.execute(
            "SELECT attribute, count(*) FROM candidate_attribute_history WHERE value IS NOT NULL "
            "GROUP BY attribute ORDER BY attribute"
        )
        assert built == cur.fetchall()  # one period per known first answer


def _sorted(cells: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in cells.columns if c not in ("n", "x")]
    filled = cells.astype({c: object for c in keys}).fillna("~")
    return filled.sort_values(keys, ignore_index=True)[[*keys, "n", "x"]].astype({"n": "int64", "x": "int64"})


@pytest.mark.parametrize("window_days", [7, 3])
def test_window_cells_from_the_arrays_equal_the_sql_with_attributes(conn, loaded, window_days: int) -> None:
    settings = dataclasses.replace(SETTINGS, window_days=window_days)
    with conn, conn.cursor() as cur:
        ours = audit_store.window_cells_from_arrays(cur, settings, LAST)
        sql_cells = analysis.window_cells(cur, settings.stage_pair_names, settings.stage_pairs, *settings.window(LAST))
    assert list(ours.columns) == list(sql_cells.columns)
    assert set(ATTRIBUTES) <= set(ours.columns)
    pd.testing.assert_frame_equal(_sorted(ours), _sorted(sql_cells))
    t1 = ours[ours["tenant_id"] == "t1"]
    assert t1["sex"].notna().any() and t1["sex"].isna().any() and t1["race_ethnicity"].isna().any()
    assert ours.loc[ours["tenant_id"] == "t2", list(ATTRIBUTES)].isna().all().all()  # no self-identification


def test_an_answer_changed_on_the_first_event_day_after_it_is_the_documented_difference(conn, tmp_path) -> None:
    """Candidate a: shown on day 2 at 10:00, answer changed female -> male at 15:00 that day: the SQL (in force at
    the event) says female, the arrays (in force at the end of the day) male. Candidate b: changed at 08:00, before
    its 10:00 event: both say male. Candidate c: changed at midnight before its event: both say male."""
    day = FIRST + timedelta(days=2)
    event = midnight(day) + timedelta(hours=10)
    rows = [(f"{c}-s", event, c, "shown", "t1", "faang", None, None, 0.5) for c in ("a", "b", "c")]
    columns = ["event_id", "timestamp", "candidate_id", "event_type", "tenant_id", *DIMENSIONS, "score"]
    with conn, conn.cursor() as cur:
        _insert(cur, pd.DataFrame(rows, columns=columns).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"])))
    first = [("t1", c, "female", "white", "2026-03-01T00:00:00Z") for c in ("a", "b", "c")]
    _load_answers(conn, pd.DataFrame(first, columns=COLUMNS), tmp_path / "first.csv")
    changes = [
        ("t1", "a", "male", "white", (midnight(day) + timedelta(hours=15)).isoformat()),
        ("t1", "b", "male", "white", (midnight(day) + timedelta(hours=8)).isoformat()),
        ("t1", "c", "male", "white", midnight(day).isoformat()),
    ]
    _load_answers(conn, pd.DataFrame(changes, columns=COLUMNS), tmp_path / "changes.csv")
    settings = dataclasses.replace(SETTINGS, stage_pairs=(("shown", "clicked"),))
    with conn, conn.cursor() as cur:
        ours = audit_store.window_cells_from_arrays(cur, settings, LAST)
        sql_cells = analysis.window_cells(cur, settings.stage_pair_names, settings.stage_pairs, *settings.window(LAST))
        scoring_cells = audit_store.scoring_cells(cur, *settings.window(LAST))
    assert ours.groupby("sex")["n"].sum().to_dict() == {"male": 3}
    assert sql_cells.groupby("sex")["n"].sum().to_dict() == {"female": 1, "male": 2}
    assert scoring_cells.groupby("sex")["missing_score"].sum().to_dict() == {"male": 0}
    assert scoring_cells.groupby("sex")["n"].sum().to_dict() == {"male": 3}


# --- scoring rates against a pandas oracle -------------------------------------------------------------------------


def _in_force(first: pd.DataFrame, changes: pd.DataFrame, erased: str, at: pd.Series) -> pd.DataFrame:
    """Per candidate of ``at`` (index candidate_id, value: its first shown event), the answers in force then, worked
    out from the two files as the rules say: the first answer counts from -infinity, and so does the first known
    answer after a declined one; any other change from its collected_at; erased or never answered: unknown."""
    blank = {"declined": None, "Declined": None, "": None}
    out = pd.DataFrame(index=at.index, columns=list(ATTRIBUTES), dtype=object)
    base = first.set_index("candidate_id").replace(blank)
    later = changes.set_index("candidate_id").replace(blank)
    for candidate, stamp in at.items():
        if candidate == erased or candidate not in base.index:
            continue
        for name in ATTRIBUTES:
            value = base.at[candidate, name]
            value = None if pd.isna(value) else value
            if candidate in later.index:
                new = later.at[candidate, name]
                changed_at = pd.Timestamp(later.at[candidate, "collected_at"])
                if new != value and (value is None or changed_at <= stamp):
                    value = new
            out.at[candidate, name] = value
    return out


def _scoring_oracle(candidates: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Scoring rates and impact ratios of one dimension worked out in pandas: M the median of the tenant's scored
    candidates, rate = share above M, reference the best rate among known groups with >= 2% of the scored
    candidates, >= 30 of them and >= 5 above M."""
    scored = candidates[candidates["score"].notna()]
    median = scored["score"].median()
    groups = scored[dimension].fillna("unknown")
    table = scored.assign(group=groups, above=scored["score"] > median).groupby("group")["above"].agg(["size", "sum"])
    table.columns = ["n", "above_median"]
    table["scoring_rate"] = table["above_median"] / table["n"]
    compared = (table.index != "unknown") & (table["n"] / table["n"].sum() >= 0.02)
    eligible = compared & (table["n"] >= 30) & (table["above_median"] >= 5)
    reference = table.loc[eligible, "scoring_rate"].idxmax()
    table["impact_ratio"] = np.where(compared, table["scoring_rate"] / table.at[reference, "scoring_rate"], np.nan)
    table["reference_group"] = reference
    table["excluded_small_share"] = (table.index != "unknown") & (table["n"] / table["n"].sum() < 0.02)
    table["median_score"] = median
    return table


@pytest.mark.parametrize("dimension", ["sex", "race_ethnicity"])
def test_scoring_rates_by_sex_and_race_match_the_pandas_oracle(conn, loaded, dimension: str) -> None:
    events, first, changes = loaded
    with conn, conn.cursor() as cur:
        cells = audit_store.scoring_cells(cur, FIRST, LAST)
    table = scoring.scoring_rate_ratios(cells, SETTINGS)
    window = events[(events["timestamp"] >= midnight(FIRST)) & (events["timestamp"] < midnight(LAST + timedelta(1)))]
    shown = window[window["event_type"] == "shown"].sort_values(["timestamp", "event_id"])
    candidates = shown.drop_duplicates("candidate_id").set_index("candidate_id")
    t1 = candidates[candidates["tenant_id"] == "t1"]
    t1 = t1.join(_in_force(first, changes, first["candidate_id"].iloc[7], t1["timestamp"]))

    oracle = _scoring_oracle(t1, dimension)
    ours = table[(table["tenant_id"] == "t1") & (table["dimension"] == dimension)].set_index("group")
    populated = ours[(ours["n"] > 0) | (ours["missing_score"] > 0)]
    assert sorted(populated.index[populated["n"] > 0]) == sorted(oracle.index)
    assert ours.loc[oracle.index, "n"].tolist() == oracle["n"].tolist()
    assert ours.loc[oracle.index, "above_median"].tolist() == oracle["above_median"].tolist()
    assert np.allclose(ours.loc[oracle.index, "scoring_rate"], oracle["scoring_rate"])
    assert np.allclose(ours.loc[oracle.index, "median_score"], oracle["median_score"])
    assert (ours["reference_group"].dropna() == oracle["reference_group"].iloc[0]).all()
    assert np.allclose(ours.loc[oracle.index, "impact_ratio"], oracle["impact_ratio"], equal_nan=True)
    assert ours.loc[oracle.index, "excluded_small_share"].tolist() == oracle["excluded_small_share"].tolist()
    missing = t1[t1["score"].isna()][dimension].fillna("unknown").value_counts()
    assert ours["missing_score"][ours["missing_score"] > 0].to_dict() == missing.to_dict()
    if dimension == "sex":  # tenant-1's women score lower: a significant adverse finding
        assert ours.at["female", "impact_ratio"] < 0.8 and ours.at["female", "significant"]
    else:  # the category under 2% is reported, out of the reference choice
        rare = ours.loc["native_hawaiian_or_pacific_islander"]
        assert rare["excluded_small_share"] and rare["n"] > 0
    assert ours.at["unknown", "n"] > 0 and not ours.at["unknown", "is_reference"]
    # tenant-2 has no self-identification: an all-unknown table that raises nothing
    t2 = table[
        (table["tenant_id"] == "t2") & (table["dimension"].isin(["sex", "race_ethnicity", "sex+race_ethnicity"]))
    ]
    assert set(t2.loc[t2["n"] > 0, "group"]) == {"unknown", "unknown|unknown"}
    assert not t2["adverse_impact"].fillna(False).astype(bool).any() and t2["reference_group"].isna().all()


def test_scoring_cells_from_the_arrays_equal_the_pandas_cells(conn, loaded) -> None:
    events, first, changes = loaded
    with conn, conn.cursor() as cur:
        ours = audit_store.scoring_cells(cur, FIRST, LAST)
    window = events[(events["timestamp"] >= midnight(FIRST)) & (events["timestamp"] < midnight(LAST + timedelta(1)))]
    shown = window[window["event_type"] == "shown"].sort_values(["timestamp", "event_id"])
    candidates = shown.drop_duplicates(["tenant_id", "candidate_id"]).set_index("candidate_id")
    candidates = candidates.join(_in_force(first, changes, first["candidate_id"].iloc[7], candidates["timestamp"]))
    expected = scoring.scoring_cells(candidates.reset_index(), dimensions=(*DIMENSIONS, *ATTRIBUTES))
    keys = ["tenant_id", *DIMENSIONS, *ATTRIBUTES]
    left = ours.astype({c: object for c in keys}).fillna({c: "~" for c in keys}).sort_values(keys, ignore_index=True)
    right = (
        expected.astype({c: object for c in keys}).fillna({c: "~" for c in keys}).sort_values(keys, ignore_index=True)
    )
    assert left[keys].values.tolist() == right[keys].values.tolist()
    for column in ("n", "x", "missing_score"):
        assert left[column].astype(int).tolist() == right[column].astype(int).tolist(), column
    assert np.allclose(left["median_score"], right["median_score"])


# --- the trends' stored weeks ---------------------------------------------------------------------------------------


def test_stored_week_counts_cover_the_attributes_and_a_later_load_invalidates_them(conn, loaded, tmp_path) -> None:
    weekly = dataclasses.replace(SETTINGS, window_days=7)
    with conn, conn.cursor() as cur:
        counted = audit_store.week_counts(cur, weekly, LAST, tenant_id="t1")
        again = audit_store.week_counts(cur, weekly, LAST, tenant_id="t1")
        before_t2 = audit_store.week_counts(cur, weekly, LAST, tenant_id="t2")
        expected = analysis.window_cells(cur, weekly.stage_pair_names, weekly.stage_pairs, *weekly.window(LAST))
    assert not counted.attrs["stored"] and again.attrs["stored"]
    assert set(counted["tenant_id"]) == {"t1"} and set(before_t2["tenant_id"]) == {"t2"}  # each tenant its own
    keys = ["tenant_id", "stage_pair", "dimension", "group"]
    assert counted.sort_values(keys).astype(str).values.tolist() == again.sort_values(keys).astype(str).values.tolist()
    assert {"sex", "race_ethnicity", "sex+race_ethnicity"} <= set(counted["dimension"])
    female = counted[(counted["dimension"] == "sex") & (counted["group"] == "female")]
    sql_female = expected[(expected["tenant_id"] == "t1") & (expected["sex"] == "female")]
    assert female.groupby("stage_pair")["n"].sum().to_dict() == sql_female.groupby("stage_pair")["n"].sum().to_dict()
    # tenant-2 answers later: its stored week no longer holds; tenant-1's, which the load does not touch, still does
    answers = [("t2", "t2-c0001", "male", "asian", "2026-03-01T00:00:00Z")]
    _load_answers(conn, pd.DataFrame(answers, columns=COLUMNS), tmp_path / "t2.csv")
    with conn, conn.cursor() as cur:
        recounted = audit_store.week_counts(cur, weekly, LAST, tenant_id="t2")
        assert audit_store.week_counts(cur, weekly, LAST, tenant_id="t1").attrs["stored"]
        cur.execute(
            "SELECT count(DISTINCT settings_key) FROM trend_week_counts WHERE week_end = %s AND tenant_id = 't2'",
            (LAST,),
        )
        stored_keys = cur.fetchone()[0]
    assert not recounted.attrs["stored"] and stored_keys == 1  # the stale counts were replaced
    t2_male = recounted[(recounted["tenant_id"] == "t2") & (recounted["dimension"] == "sex")]
    assert t2_male.loc[t2_male["group"] == "male", "n"].max() == 1
    # an erasure invalidates them as well
    attribute_store.delete_candidate(conn, "t2", "t2-c0001")
    with conn, conn.cursor() as cur:
        assert not audit_store.week_counts(cur, weekly, LAST, tenant_id="t2").attrs["stored"]


def _reads(cur) -> dict[str, int]:
    """Scans of the history and of the tenants' rows by this transaction so far."""
    cur.execute(
        "SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables "
        "WHERE relname IN ('candidate_attribute_history', 'candidate_attribute_tenants')"
    )
    return dict(cur.fetchall())


def test_the_trends_two_weeks_share_one_read_of_the_periods_and_a_later_load_still_invalidates(
    conn, loaded, tmp_path
) -> None:
    weekly = dataclasses.replace(SETTINGS, window_days=7)
    later = LAST + timedelta(days=7)
    with conn, conn.cursor() as cur:
        fortnight = attribute_store.attribute_periods(cur, FIRST, later)
        for first, week_end in ((0, LAST), (7, later)):  # each week's slice is what reading that week alone gives
            alone = attribute_store.attribute_periods(cur, week_end - timedelta(days=6), week_end)
            sliced = attribute_store.attribute_periods_within(fortnight, first, 7)
            assert sliced.fingerprint() == alone.fingerprint() and sliced.vocabularies == alone.vocabularies
        stored = audit_store.week_counts(cur, weekly, LAST, tenant_id="t1")  # as the trends a week earlier stored it
        before = _reads(cur)
        previous, current = audit_store.trend_week_counts(cur, weekly, later, tenant_id="t1")
        after = _reads(cur)
    # one read of the snapshots for both weeks, none of the history (they were built by the first read above)
    assert after["candidate_attribute_tenants"] - before["candidate_attribute_tenants"] == 1
    assert after["candidate_attribute_history"] == before["candidate_attribute_history"]
    assert not stored.attrs["stored"] and previous.attrs["stored"] and not current.attrs["stored"]
    keys = ["tenant_id", "stage_pair", "dimension", "group"]
    assert (
        previous.sort_values(keys).astype(str).values.tolist() == stored.sort_values(keys).astype(str).values.tolist()
    )
    # a change collected inside the previous week after it was stored invalidates it
    answers = [
        ("t1", previous_candidate, "male", "white", midnight(LAST - timedelta(days=2)).isoformat())
        for previous_candidate in loaded[1]["candidate_id"].iloc[:1]
    ]
    _load_answers(conn, pd.DataFrame(answers, columns=COLUMNS), tmp_path / "late.csv")
    with conn, conn.cursor() as cur:
        previous, _ = audit_store.trend_week_counts(cur, weekly, later, tenant_id="t1")
        again, _ = audit_store.trend_week_counts(cur, weekly, later, tenant_id="t1")
    assert not previous.attrs["stored"] and again.attrs["stored"]


# --- the tenants' snapshots against the history -------------------------------------------------------------------

# The periods of a window straight from the history, with the window arithmetic done in SQL on the timestamps (the
# store's read before snapshots): one row per period in force at the end of some day of the window.
HISTORY_PERIODS_ORACLE = """
SELECT tenant_id, attribute, value, hashtextextended(candidate_id, 0), start_day, stop_day
FROM (
    SELECT tenant_id, attribute, value, candidate_id,
           CASE WHEN valid_from < %(window_start)s THEN 0
                ELSE floor(extract(epoch FROM valid_from - %(window_start)s) / 86400)::int END AS start_day,
           CASE WHEN valid_to IS NULL OR valid_to >= %(window_stop)s THEN %(window_days)s
                ELSE floor(extract(epoch FROM valid_to - %(window_start)s) / 86400)::int END AS stop_day
    FROM candidate_attribute_history
    WHERE value IS NOT NULL AND valid_from < %(window_stop)s AND (valid_to IS NULL OR valid_to > %(window_start)s)
) AS periods
WHERE start_day < stop_day
"""


def _period_set(periods: AttributePeriods) -> set[tuple]:
    """(tenant, attribute, value, key, start, stop) of every period, values by name."""
    out = set()
    for (tenant, attribute), table in periods.periods.items():
        vocabulary = periods.vocabularies[periods.names.index(attribute)]
        for key, start, stop, code in zip(
            table.unique_keys[table.key_rank], table.starts, table.stops, table.codes, strict=True
        ):
            out.add((tenant, attribute, vocabulary[code - 1], int(key), int(start), int(stop)))
    return out


@pytest.mark.parametrize("first_offset, days", [(0, 7), (2, 3), (-5, 4), (6, 1), (-40, 60)])
def test_periods_from_the_snapshots_equal_the_history_read_for_the_window(
    conn, loaded, tmp_path, first_offset: int, days: int
) -> None:
    """Changes at midnights (the fixture) and within a day: replaced the same afternoon (covering no day's end), and
    in force from 23:59 (covering that day's end)."""
    _, first, _ = loaded
    day = FIRST + timedelta(days=3)
    same_day = [
        ("t1", first["candidate_id"].iloc[20], "male", "asian", (midnight(day) + timedelta(hours=10)).isoformat()),
        ("t1", first["candidate_id"].iloc[20], "female", "white", (midnight(day) + timedelta(hours=15)).isoformat()),
        ("t1", first["candidate_id"].iloc[21], "male", "asian", (midnight(day) + timedelta(minutes=1439)).isoformat()),
    ]
    for number, row in enumerate(same_day):  # one file each: a file's later line replaces an earlier one's value
        _load_answers(conn, pd.DataFrame([row], columns=COLUMNS), tmp_path / f"same-day-{number}.csv")
    first_day = FIRST + timedelta(days=first_offset)
    last_day = first_day + timedelta(days=days - 1)
    with conn, conn.cursor() as cur:
        ours = attribute_store.attribute_periods(cur, first_day, last_day)
        window_start = midnight(first_day)
        cur.execute(
            HISTORY_PERIODS_ORACLE,
            {"window_start": window_start, "window_stop": window_start + timedelta(days=days), "window_days": days},
        )
        expected = {tuple(row) for row in cur.fetchall()}
    assert expected  # the case is not empty
    assert _period_set(ours) == expected


def test_a_load_or_an_erasure_outdates_the_snapshots_and_the_next_read_rebuilds_them(conn, loaded, tmp_path) -> None:
    _, first, _ = loaded
    candidate = first["candidate_id"].iloc[30]
    with conn, conn.cursor() as cur:
        attribute_store.attribute_snapshots(cur, ATTRIBUTES)
        cur.execute("SELECT tenant_id, version, built_version FROM candidate_attribute_tenants")
        assert cur.fetchall() == [("t1", 3, 3)]  # two loads and the fixture's erasure
    # a load's chunk alone (a whole load then builds the snapshots again): it outdates and drops them
    late = attribute_store.AttributeRow(1, "t1", candidate, midnight(LAST), {"sex": "male", "race_ethnicity": "asian"})
    attribute_store.store_attribute_rows(conn, [late], [], "late.csv")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version, built_version FROM candidate_attribute_tenants")
        assert cur.fetchall() == [(4, 3)]
        cur.execute("SELECT count(*) FROM candidate_attribute_snapshots")
        assert cur.fetchone() == (0,)
        periods = attribute_store.attribute_periods(cur, LAST, LAST)  # rebuilt on read
        cur.execute("SELECT hashtextextended(%s, 0)", (candidate,))
        (key,) = cur.fetchone()
    codes = periods.codes_at("t1", np.array([key]), np.array([0]))[0]
    assert [vocabulary[code - 1] for vocabulary, code in zip(periods.vocabularies, codes, strict=True)] == [
        "male",
        "asian",
    ]


def test_an_erasure_waits_for_a_snapshot_being_built_then_drops_it(conn, db_url, loaded) -> None:
    """A window's transaction builds t1's snapshots (holding t1's row); an erasure of a t1 candidate meanwhile waits
    for it, then drops what it built: no snapshot keeps the person, and the next read rebuilds without them."""
    import threading

    import psycopg2

    _, first, _ = loaded
    person = first["candidate_id"].iloc[40]
    contains = (
        "SELECT count(*) FROM candidate_attribute_snapshots "
        "WHERE position(int8send(hashtextextended(%s, 0)) IN candidate_keys) > 0"
    )
    builder = psycopg2.connect(db_url)
    try:
        cur = builder.cursor()
        attribute_store.attribute_snapshots(cur, ATTRIBUTES)  # built, not committed
        cur.execute(contains, (person,))
        assert cur.fetchone() == (2,)
        eraser = psycopg2.connect(db_url)
        done: dict[str, object] = {}
        thread = threading.Thread(
            target=lambda: done.update(deleted=attribute_store.delete_candidate(eraser, "t1", person))
        )
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the builder's lock on t1
        builder.commit()
        thread.join(timeout=30)
        eraser.close()
        assert done["deleted"]["history"] == 2
        cur.execute(contains, (person,))
        assert cur.fetchone() == (0,)  # what the builder committed was dropped
        attribute_store.attribute_snapshots(cur, ATTRIBUTES)
        builder.commit()
        cur.execute(contains, (person,))
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM candidate_attribute_snapshots WHERE tenant_id = 't1'")
        assert cur.fetchone() == (2,)  # rebuilt
    finally:
        builder.close()
