"""The event expectation suite reports through GX and quarantines exactly the rows failing its expectations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.events import vocabulary
from fairness_pipeline.validation.event_suite import (
    EXPECTATION_NAMES,
    EXPECTATIONS,
    FAILED_EXPECTATIONS_COLUMN,
    META_KEY,
    EventValidationError,
    build_suite,
    validate_events,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HASH = "ab" * 32


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": NOW - timedelta(hours=1),
        "candidate_id": "cand-1",
        "event_type": "shown",
        "search_id": "search-1",
        "tenant_id": "tenant-a",
        "user_id_hash": HASH,
        "company_tier": "startup",
        "experience_band": "3-7",
        "specialty": "backend",
        "rank": 1.0,
        "score": 0.5,
        "created_at": NOW,
    }
    row.update(changes)
    return row


def frame(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows keyed by a label that becomes the (string) index."""
    df = pd.DataFrame(list(rows.values()), index=pd.Index(list(rows), name="label"))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


# label -> (row, expected failed expectations in declaration order; empty means valid)
CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "good": (event("ev-good"), []),
    "null_dimensions_rank_score": (
        event("ev-nulls", company_tier=None, experience_band=np.nan, specialty=None, rank=np.nan, score=np.nan),
        [],
    ),
    "boundaries": (event("ev-bounds", timestamp=NOW, rank=1.0, score=0.0), []),
    "score_one": (event("ev-score-one", score=1.0), []),
    "event_id_is_string": (event(12345), ["event_id_is_string"]),
    "candidate_id_is_string": (event("ev-cand-int", candidate_id=42), ["candidate_id_is_string"]),
    "search_id_is_string": (event("ev-search-int", search_id=7), ["search_id_is_string"]),
    "tenant_id_is_string": (event("ev-tenant-int", tenant_id=8), ["tenant_id_is_string"]),
    "user_id_hash_is_string": (event("ev-hash-int", user_id_hash=9), ["user_id_hash_is_string", "user_id_hash_format"]),
    "rank_integer_like": (event("ev-rank-frac", rank=2.5), ["rank_integer_like"]),
    "score_numeric": (event("ev-score-decimal", score=Decimal("0.5")), ["score_numeric"]),
    "event_id_not_null": (event(None), ["event_id_not_null"]),
    "timestamp_not_null": (event("ev-no-ts", timestamp=None), ["timestamp_not_null"]),
    "candidate_id_not_null": (event("ev-no-cand", candidate_id=None), ["candidate_id_not_null"]),
    "event_type_not_null": (event("ev-no-type", event_type=None), ["event_type_not_null"]),
    "search_id_not_null": (event("ev-no-search", search_id=None), ["search_id_not_null"]),
    "tenant_id_not_null": (event("ev-no-tenant", tenant_id=None), ["tenant_id_not_null"]),
    "user_id_hash_not_null": (event("ev-no-hash", user_id_hash=None), ["user_id_hash_not_null"]),
    "candidate_id_not_empty": (event("ev-empty-cand", candidate_id=""), ["candidate_id_not_empty"]),
    "event_type_in_set": (event("ev-teleported", event_type="teleported"), ["event_type_in_set"]),
    "company_tier_in_set": (event("ev-tier", company_tier="FAANG"), ["company_tier_in_set"]),
    "experience_band_in_set": (event("ev-band", experience_band="20+"), ["experience_band_in_set"]),
    "specialty_in_set": (event("ev-specialty", specialty="sales"), ["specialty_in_set"]),
    "event_id_max_length": (event("e" * 65), ["event_id_max_length"]),
    "candidate_id_max_length": (event("ev-long-cand", candidate_id="c" * 256), ["candidate_id_max_length"]),
    "search_id_max_length": (event("ev-long-search", search_id="s" * 256), ["search_id_max_length"]),
    "tenant_id_max_length": (event("ev-long-tenant", tenant_id="t" * 256), ["tenant_id_max_length"]),
    "user_id_hash_max_length": (
        event("ev-long-hash", user_id_hash="a" * 65),
        ["user_id_hash_max_length", "user_id_hash_format"],
    ),
    "event_id_unique_first": (event("ev-dup"), ["event_id_unique"]),
    "event_id_unique_second": (event("ev-dup", candidate_id="cand-2"), ["event_id_unique"]),
    "score_between_0_and_1_high": (event("ev-score-high", score=1.5), ["score_between_0_and_1"]),
    "score_between_0_and_1_low": (event("ev-score-low", score=-0.01), ["score_between_0_and_1"]),
    "rank_at_least_1": (event("ev-rank-zero", rank=0.0), ["rank_at_least_1"]),
    "timestamp_not_in_future": (
        event("ev-future", timestamp=NOW + timedelta(seconds=1)),
        ["timestamp_not_in_future"],
    ),
    "user_id_hash_format": (event("ev-upper-hash", user_id_hash="AB" * 32), ["user_id_hash_format"]),
    "several": (
        event("ev-several", event_type="teleported", rank=0.0, score=2.0, specialty="sales"),
        ["event_type_in_set", "specialty_in_set", "score_between_0_and_1", "rank_at_least_1"],
    ),
}


@pytest.fixture(scope="module")
def cases_result():
    df = frame({label: row for label, (row, _) in CASES.items()})
    return df, validate_events(df, NOW)


def test_declaration_names_are_unique_and_cover_every_column() -> None:
    assert len(set(EXPECTATION_NAMES)) == len(EXPECTATIONS)
    assert {e.column for e in EXPECTATIONS} == set(vocabulary.EVENT_COLUMNS)
    suite = build_suite()
    assert [e.meta[META_KEY] for e in suite.expectations] == list(EXPECTATION_NAMES)


def test_every_expectation_has_a_violating_case() -> None:
    assert {name for _, names in CASES.values() for name in names} == set(EXPECTATION_NAMES)


def test_each_row_is_quarantined_with_exactly_its_failed_expectations(cases_result) -> None:
    _, result = cases_result
    expected = {label: names for label, (_, names) in CASES.items() if names}
    got = result.quarantined[FAILED_EXPECTATIONS_COLUMN].to_dict()
    assert got == expected
    assert list(result.valid.index) == [label for label, (_, names) in CASES.items() if not names]


def test_valid_and_quarantined_partition_the_input(cases_result) -> None:
    df, result = cases_result
    assert len(result.valid) + len(result.quarantined) == len(df)
    assert list(result.valid.columns) == list(df.columns)
    assert list(result.quarantined.columns) == [*df.columns, FAILED_EXPECTATIONS_COLUMN]
    assert result.quarantined.loc["rank_integer_like", "rank"] == 2.5
    assert result.valid.loc["null_dimensions_rank_score", "created_at"] == pd.Timestamp(NOW)


def test_summary_counts_match_quarantine_reasons(cases_result) -> None:
    _, result = cases_result
    summary = json.loads(json.dumps(result.summary))
    assert summary == result.summary
    assert summary["success"] is False and result.success is False
    assert summary["valid_count"] == len(result.valid)
    assert summary["quarantined_count"] == len(result.quarantined)
    assert [e["name"] for e in summary["expectations"]] == list(EXPECTATION_NAMES)
    reasons = [name for names in result.quarantined[FAILED_EXPECTATIONS_COLUMN] for name in names]
    for entry in summary["expectations"]:
        assert entry["unexpected_count"] == reasons.count(entry["name"]), entry["name"]
        assert entry["success"] is (entry["unexpected_count"] == 0)
        assert set(entry) == {"name", "expectation_type", "column", "success", "unexpected_count", "unexpected_percent"}
    assert summary["failed_expectations"] == list(EXPECTATION_NAMES)
    unique = next(e for e in summary["expectations"] if e["name"] == "event_id_unique")
    assert unique["unexpected_count"] == 2
    assert result.result.success is False


def test_all_good_batch_passes() -> None:
    df = frame({f"row-{i}": event(f"ev-{i}", company_tier=None if i % 2 else "faang") for i in range(5)})
    result = validate_events(df, NOW)
    assert result.success is True
    assert len(result.valid) == 5
    assert result.quarantined.empty
    assert FAILED_EXPECTATIONS_COLUMN in result.quarantined.columns
    assert all(e["success"] and e["unexpected_count"] == 0 for e in result.summary["expectations"])


def test_empty_batch() -> None:
    df = frame({"row": event("ev-1")}).iloc[:0]
    result = validate_events(df, NOW)
    assert result.success is True
    assert result.valid.empty and result.quarantined.empty


def test_input_frame_is_not_modified() -> None:
    df = frame({label: row for label, (row, _) in CASES.items()})
    before = df.copy()
    validate_events(df, NOW)
    pd.testing.assert_frame_equal(df, before)


def test_later_now_accepts_the_future_event() -> None:
    df = frame({"future": event("ev-future", timestamp=NOW + timedelta(seconds=1))})
    assert validate_events(df, NOW).quarantined.index.tolist() == ["future"]
    assert validate_events(df, NOW + timedelta(seconds=1)).success


def test_nullable_int_rank_and_string_dtypes() -> None:
    df = frame({f"r{i}": event(f"ev-{i}") for i in range(4)})
    df["rank"] = pd.array([1, None, 0, 3], dtype="Int64")
    for column in ("event_id", "candidate_id", "company_tier"):
        df[column] = df[column].astype("string")
    result = validate_events(df, NOW)
    assert result.quarantined[FAILED_EXPECTATIONS_COLUMN].to_dict() == {"r2": ["rank_at_least_1"]}


def test_large_batch_with_duplicate_non_default_index() -> None:
    n = 20_000
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "event_id": [f"ev-{i}" for i in range(n)],
            "timestamp": pd.Timestamp(NOW) - pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "candidate_id": [f"cand-{i % 997}" for i in range(n)],
            "event_type": rng.choice(vocabulary.EVENT_TYPES, n),
            "search_id": [f"search-{i % 101}" for i in range(n)],
            "tenant_id": "tenant-a",
            "user_id_hash": HASH,
            "company_tier": rng.choice([*vocabulary.COMPANY_TIERS, None], n),
            "experience_band": rng.choice([*vocabulary.EXPERIENCE_BANDS, None], n),
            "specialty": rng.choice([*vocabulary.SPECIALTIES, None], n),
            "rank": pd.array(rng.integers(1, 40, n), dtype="Int64"),
            "score": rng.random(n),
            "created_at": pd.Timestamp(NOW),
        },
        # Every label twice, shuffled: positions, not labels, must identify rows.
        index=rng.permutation(np.repeat(np.arange(n // 2) * 10 + 5, 2)),
    )
    bad = rng.choice(n, 200, replace=False).tolist()
    expected: dict[int, list[str]] = {}  # position -> failed expectations
    kinds = [
        ("event_type", "teleported", "event_type_in_set"),
        ("score", 1.5, "score_between_0_and_1"),
        ("timestamp", pd.Timestamp(NOW) + pd.Timedelta(minutes=5), "timestamp_not_in_future"),
        ("rank", 0, "rank_at_least_1"),
    ]
    for i, position in enumerate(bad):
        column, value, name = kinds[i % len(kinds)]
        df.iloc[position, df.columns.get_loc(column)] = value
        expected[position] = [name]
    both, dup_a, dup_b = [p for p in range(n) if p not in expected][:3]
    df.iloc[both, df.columns.get_loc("event_type")] = "teleported"
    df.iloc[both, df.columns.get_loc("score")] = -1.0
    expected[both] = ["event_type_in_set", "score_between_0_and_1"]
    df.iloc[dup_b, df.columns.get_loc("event_id")] = df.iloc[dup_a, df.columns.get_loc("event_id")]
    expected[dup_a] = expected[dup_b] = ["event_id_unique"]  # every copy of a duplicated id

    result = validate_events(df, NOW)

    positions = sorted(expected)
    quarantined = result.quarantined
    assert quarantined.index.tolist() == df.index[positions].tolist()
    assert quarantined["event_id"].tolist() == df["event_id"].iloc[positions].tolist()
    assert quarantined[FAILED_EXPECTATIONS_COLUMN].tolist() == [expected[p] for p in positions]
    clean = np.ones(n, dtype=bool)
    clean[positions] = False
    pd.testing.assert_frame_equal(result.valid, df.iloc[clean])
    counts = {e["name"]: e["unexpected_count"] for e in result.summary["expectations"]}
    assert counts["event_type_in_set"] == 51
    assert counts["score_between_0_and_1"] == 51
    assert counts["event_id_unique"] == 2
    assert result.summary["quarantined_count"] == len(expected)


def test_uncomparable_values_raise_instead_of_guessing() -> None:
    df = frame({"a": event("ev-a"), "b": event("ev-b")})
    df["score"] = df["score"].astype(object)
    df.loc["b", "score"] = "high"
    with pytest.raises(EventValidationError, match="score_between_0_and_1"):
        validate_events(df, NOW)


def test_rejects_naive_now_and_missing_columns() -> None:
    df = frame({"a": event("ev-a")})
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_events(df, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="specialty"):
        validate_events(df.drop(columns=["specialty"]), NOW)
