"""Rank exposure and slate concentration on the self-identified LL144 categories: hand-worked exposure per group,
unknown never the reference, the 2% rule, tenants without self-identification, and staleness after a load."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from fairness_pipeline.audits import exposure, slates
from fairness_pipeline.audits.exposure import ExposureLayout, rank_exposure, rank_findings
from fairness_pipeline.audits.from_events import search_aggregates
from fairness_pipeline.events.vocabulary import DIMENSIONS
from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.metrics.impact import UNKNOWN_GROUP_REASON
from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.store import audits
from fairness_pipeline.store.attributes import delete_candidate
from fairness_pipeline.store.partition_lock import lock_partition

SETTINGS = AnalysisSettings()
ATTRIBUTE_DIMENSIONS = (*DIMENSIONS, "sex", "race_ethnicity")


def v(rank: int) -> float:
    """Position weight by hand: 1 / log2(1 + rank)."""
    return 1 / math.log2(1 + rank)


def mean_v(ranks: list[int]) -> float:
    return sum(v(r) for r in ranks) / len(ranks)


def _row(table: pd.DataFrame, dimension: str, group: str) -> pd.Series:
    return table[table["dimension"] == dimension].set_index("group").loc[group]


# --- the audit on hand-made impressions ----------------------------------------------------------------------------


def _hand_impressions() -> pd.DataFrame:
    """10 searches ranked 1..10 (100 impressions). Rank 1: sex unknown; race native_hawaiian_or_pacific_islander in
    s0 (1%: under 2%) and unknown in s1..s9. Ranks 2-5 white, 6-10 asian; even ranks female, odd ranks >= 3 male."""
    rows = []
    for search in range(10):
        for rank in range(1, 11):
            if rank == 1:
                sex, race = None, "native_hawaiian_or_pacific_islander" if search == 0 else None
            else:
                sex = "female" if rank % 2 == 0 else "male"
                race = "white" if rank <= 5 else "asian"
            rows.append((f"s{search}", rank, 0.5, sex, race))
    frame = pd.DataFrame(rows, columns=["search_id", "rank", "score", "sex", "race_ethnicity"])
    return frame.assign(tenant_id="t1", company_tier=None, experience_band=None, specialty=None)


def test_exposure_by_hand_on_the_ll144_categories() -> None:
    aggregates = search_aggregates(_hand_impressions(), dimensions=ATTRIBUTE_DIMENSIONS, k=3)
    table = rank_exposure(aggregates, SETTINGS, n_boot=0)
    assert {"sex", "race_ethnicity", "sex+race_ethnicity"} <= set(table["dimension"])

    female, male, unknown = (_row(table, "sex", g) for g in ("female", "male", "unknown"))
    assert female["exposure"] == pytest.approx(mean_v([2, 4, 6, 8, 10]))
    assert male["exposure"] == pytest.approx(mean_v([3, 5, 7, 9]))
    assert unknown["exposure"] == pytest.approx(1.0)  # the best exposed, and never the reference
    assert female["is_reference"] and female["reference_group"] == "female"
    assert male["exposure_ratio"] == pytest.approx(mean_v([3, 5, 7, 9]) / mean_v([2, 4, 6, 8, 10]))
    assert math.isnan(unknown["exposure_ratio"]) and unknown["undefined_reason"] == UNKNOWN_GROUP_REASON
    assert not unknown["excluded_small_share"] and unknown["share"] == pytest.approx(0.10)
    # skew@3: share of the 30 top-3 impressions / share of the 100 (unknown at rank 1, female 2, male 3)
    assert female["skew_at_k"] == pytest.approx((10 / 30) / 0.5)
    assert male["skew_at_k"] == pytest.approx((10 / 30) / 0.4)
    assert unknown["skew_at_k"] == pytest.approx((10 / 30) / 0.1)

    white, asian = _row(table, "race_ethnicity", "white"), _row(table, "race_ethnicity", "asian")
    nhpi = _row(table, "race_ethnicity", "native_hawaiian_or_pacific_islander")
    assert white["is_reference"] and white["exposure"] == pytest.approx(mean_v([2, 3, 4, 5]))
    assert asian["exposure_ratio"] == pytest.approx(mean_v([6, 7, 8, 9, 10]) / mean_v([2, 3, 4, 5]))
    # 1 impression in 100 at rank 1: the best exposure, under 2% so out of the reference choice, reported
    assert nhpi["exposure"] == 1.0 and nhpi["excluded_small_share"] and math.isnan(nhpi["exposure_ratio"])
    assert nhpi["share"] == pytest.approx(0.01)
    absent = _row(table, "race_ethnicity", "black_or_african_american")
    assert absent["shown"] == 0 and math.isnan(absent["exposure"])

    cells = table[table["dimension"] == "sex+race_ethnicity"].set_index("group")
    assert cells.loc["female|white", "is_reference"]  # mean(v2, v4), the best known cell
    assert cells.loc["male|asian", "exposure_ratio"] == pytest.approx(mean_v([7, 9]) / mean_v([2, 4]))
    assert cells.loc["unknown|unknown", "exposure"] == 1.0
    assert math.isnan(cells.loc["unknown|native_hawaiian_or_pacific_islander", "exposure_ratio"])
    # the proxies, all unknown here, have no reference either
    assert table.loc[table["dimension"] == "company_tier", "exposure_ratio"].isna().all()


def test_a_tenant_without_self_identification_gets_nothing_raised() -> None:
    impressions = _hand_impressions().assign(sex=None, race_ethnicity=None)
    impressions["company_tier"] = np.where(impressions["rank"] <= 3, "faang", "startup")  # a real proxy gap
    table = rank_exposure(search_aggregates(impressions, dimensions=ATTRIBUTE_DIMENSIONS), SETTINGS, n_boot=200)
    for dimension in ("sex", "race_ethnicity", "sex+race_ethnicity"):
        rows = table[table["dimension"] == dimension]
        assert rows["exposure_ratio"].isna().all() and rows["reference_group"].isna().all()
        assert not rows["significant"].fillna(False).any() and not rank_findings(rows, 0.8).any()
        assert rows.loc[rows["shown"] > 0, "group"].tolist() in (["unknown"], ["unknown|unknown"])
    assert rank_findings(table[table["dimension"] == "company_tier"], 0.8).any()  # the proxies still speak


def test_a_frame_without_attribute_columns_has_no_attribute_tables() -> None:
    table = rank_exposure(search_aggregates(_hand_impressions()), SETTINGS, n_boot=0)
    assert set(table["dimension"]).isdisjoint({"sex", "race_ethnicity", "sex+race_ethnicity"})


def test_stored_sums_of_the_layout_without_attributes_are_not_reused() -> None:
    with_attributes = ExposureLayout.build(SETTINGS)
    without = ExposureLayout.build(SETTINGS, attributes=())
    assert ("sex", "race_ethnicity") in with_attributes.tables and ("sex",) in with_attributes.tables
    assert with_attributes.fingerprint != without.fingerprint


# --- slates ------------------------------------------------------------------------------------------------------


def test_slates_are_judged_on_their_self_identified_members() -> None:
    slate_sexes = {
        "s1": ["female"] * 5 + ["male"] + [None] * 4,  # 5 of 6 known female: concentrated
        "s2": ["female"] * 2 + ["male"] * 2 + [None] * 6,  # 4 known: too small
        "s3": [None] * 10,  # no known member: too small
        "s4": ["female"] * 3 + ["male"] * 3,  # 50%: not concentrated
    }
    rows = [("t1", date(2026, 3, 2), search, "faang", sex, 1) for search, sexes in slate_sexes.items() for sex in sexes]
    rows += [("t2", date(2026, 3, 2), f"s{i}", "faang", None, 10) for i in range(3)]  # no self-identification
    frame = pd.DataFrame(rows, columns=["tenant_id", "day", "search_id", "company_tier", "sex", "shown"])
    frame = frame.assign(experience_band="3-7", specialty="ml", race_ethnicity=None)
    summary = slates.slate_concentration(frame).summary.set_index(["tenant_id", "dimension"])

    sex = summary.loc[("t1", "sex")]
    assert (sex["searches"], sex["assessed"], sex["too_small"], sex["concentrated"]) == (4, 2, 2, 1)
    assert sex["top_group"] == "female" and sex["concentrated_share"] == 0.5
    # chance: known shares female 10/16, male 6/16; both assessed slates have 6 known members; > 4.2 means >= 5
    chance = binom.sf(4, 6, 10 / 16) + binom.sf(4, 6, 6 / 16)
    assert sex["expected_share"] == pytest.approx(chance)
    race = summary.loc[("t1", "race_ethnicity")]
    assert race["assessed"] == 0 and race["undefined_reason"] == slates.NO_SELF_IDENTIFIED_REASON
    silent = summary.loc[("t2", "sex")]
    assert silent["assessed"] == 0 and silent["concentrated"] == 0 and pd.isna(silent["excess_significant"])
    # the proxy keeps its rule: unknown is a group, every faang slate is concentrated
    assert summary.loc[("t2", "company_tier"), "concentrated"] == 3


# --- in the database: values in force at the impression, staleness after a load or a deletion ---------------------

D1, D2 = date(2026, 3, 2), date(2026, 3, 3)
CANDIDATES = [f"c{rank}" for rank in range(1, 7)]  # c<r> is shown at rank r in every search


def _insert_shown(conn) -> None:
    """t1: 4 searches a day on D1 and D2, t2: 2 searches on D1; candidate c<r> at rank r of every search."""
    rows = []
    for tenant, day, searches in (("t1", D1, 4), ("t1", D2, 4), ("t2", D1, 2)):
        for s in range(searches):
            at = datetime(day.year, day.month, day.day, 10, s, tzinfo=UTC)
            for rank, candidate in enumerate(CANDIDATES, 1):
                event_id = f"{tenant}-{day}-{s}-{rank}"
                rows.append((event_id, at, candidate, "shown", f"{tenant}-{day}-{s}", tenant, "u", rank, 0.5))
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,"
            " user_id_hash, rank, score) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute("INSERT INTO validated_selection_events SELECT * FROM selection_events")


def _summarise(conn, layout: ExposureLayout) -> None:
    """What search_daily_aggregates does for each day: the day's searches and each tenant's exposure sums."""
    for day in (D1, D2):
        with conn, conn.cursor() as cur:
            lock_partition(cur, "search_daily_aggregates", day)
            audits.replace_search_day(cur, audits.day_bounds_utc(day), exposure.DEFAULT_TOP_K)
            audits.store_exposure_day_sums(cur, layout, 0, 0, day)


def _window(conn, layout: ExposureLayout) -> tuple[pd.DataFrame, list[date]]:
    with conn, conn.cursor() as cur:
        sums, computed = audits.exposure_window_sums(cur, layout, 0, 0, D1, D2)
    return exposure.exposure_table(sums, layout, SETTINGS, n_boot=0), computed


def _sex(table: pd.DataFrame, tenant: str) -> dict[str, float]:
    rows = table[(table["tenant_id"] == tenant) & (table["dimension"] == "sex") & (table["shown"] > 0)]
    return dict(zip(rows["group"], rows["exposure"], strict=True))


def _query(conn, statement: str) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall()


def test_loading_attributes_after_the_days_were_summarised_changes_the_next_window(conn, tmp_path: Path) -> None:
    layout = ExposureLayout.build(SETTINGS)
    _insert_shown(conn)
    _summarise(conn, layout)
    before, computed = _window(conn, layout)
    assert computed == [] and _sex(before, "t1") == {"unknown": pytest.approx(mean_v(list(range(1, 7))))}

    # c1, c3, c5 female and c2, c4, c6 male from the start; c2 answers female on D2 at 09:00 (before the searches)
    first = tmp_path / "sex.csv"
    first.write_text(
        "tenant_id,candidate_id,sex\n" + "".join(f"t1,c{r},{'female' if r % 2 else 'male'}\n" for r in range(1, 7))
    )
    load_attribute_file(conn, first, loaded_at=datetime(2026, 3, 10, tzinfo=UTC))
    later = tmp_path / "later.csv"
    later.write_text("tenant_id,candidate_id,sex,collected_at\nt1,c2,female,2026-03-03T09:00:00+00:00\n")
    load_attribute_file(conn, later, loaded_at=datetime(2026, 3, 10, tzinfo=UTC))
    assert _query(conn, "SELECT DISTINCT tenant_id FROM exposure_day_sums") == [("t2",)]  # t1's sums dropped
    requests = _query(conn, "SELECT day, tenant_id, reason FROM recompute_requests ORDER BY id")
    assert sorted(set(requests)) == [(D1, "t1", "attributes loaded"), (D2, "t1", "attributes loaded")]

    after, computed = _window(conn, layout)
    assert computed == [D1, D2]
    # per day 4 searches: D1 female at ranks 1, 3, 5 and male at 2, 4, 6; D2 c2 (rank 2) is female
    female = [1, 3, 5] * 4 + [1, 2, 3, 5] * 4
    male = [2, 4, 6] * 4 + [4, 6] * 4
    assert _sex(after, "t1") == {"female": pytest.approx(mean_v(female)), "male": pytest.approx(mean_v(male))}
    assert _row(after[after["tenant_id"] == "t1"], "sex", "male")["exposure_ratio"] == pytest.approx(
        mean_v(male) / mean_v(female)
    )
    assert _sex(after, "t2") == _sex(before, "t2")  # no self-identification: all unknown, never re-aggregated
    assert _query(conn, "SELECT DISTINCT attribute_values FROM search_daily_aggregates WHERE tenant_id = 't2'") == [
        (None,)
    ]
    assert _window(conn, layout)[1] == []  # fresh now: nothing recomputed

    assert delete_candidate(conn, "t1", "c1")["attributes"] == 2  # sex and race (unknown): c1 (rank 1) now unknown
    erased, computed = _window(conn, layout)
    assert computed == [D1, D2]
    female_left = [3, 5] * 4 + [2, 3, 5] * 4
    assert _sex(erased, "t1") == {
        "female": pytest.approx(mean_v(female_left)),
        "male": pytest.approx(mean_v(male)),
        "unknown": pytest.approx(1.0),
    }


def test_days_summarised_with_other_attributes_are_re_aggregated(conn) -> None:
    layout = ExposureLayout.build(SETTINGS)
    _insert_shown(conn)
    _summarise(conn, layout)
    with conn, conn.cursor() as cur:  # as a day stored before the attribute columns
        cur.execute("UPDATE search_daily_aggregates_days SET attributes = '{}', aggregated_at = now() - interval '1h'")
        cur.execute("UPDATE search_daily_aggregates SET attribute_values = NULL")
        cur.execute("DELETE FROM exposure_day_sums")
        assert audits.refresh_stale_searches(cur, D1, D2 + timedelta(days=1)) == [D1, D2]
        cur.execute("SELECT DISTINCT attributes FROM search_daily_aggregates_days")
        assert cur.fetchall() == [(["sex", "race_ethnicity"],)]
        assert audits.refresh_stale_searches(cur, D1, D2) == []
