"""LL144 impact ratios by sex, race/ethnicity and their intersection through the worker's JSON, against a pandas and
scipy oracle on a hand-built tenant: unknowns with the highest rate that must not be the reference, and a category
under 2% that is reported but not the reference."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fairness_pipeline.ingest.attributes import load_attribute_file
from fairness_pipeline.worker import WorkerRequest, compute, dimension_block

END = date(2026, 3, 30)
WINDOW_START = datetime(2026, 3, 1, tzinfo=UTC)

# (sex, race_ethnicity, candidates, shortlisted); None = unknown. The last cell has no attribute row at all.
CELLS: list[tuple[str | None, str | None, int, int]] = [
    ("female", "white", 200, 20),
    ("female", "asian", 150, 12),
    ("female", "black_or_african_american", 40, 6),
    ("female", "hispanic_or_latino", 10, 2),
    ("male", "white", 250, 40),
    ("male", "asian", 150, 21),
    ("male", "black_or_african_american", 60, 9),
    ("male", "hispanic_or_latino", 40, 5),
    ("male", "native_hawaiian_or_pacific_islander", 15, 6),  # 1.5% of candidates, rate 40%: not the reference
    (None, "white", 30, 6),
    ("female", None, 30, 3),
    (None, None, 25, 8),  # never self-identified
]
MIN_SHARE, MIN_CANDIDATES, MIN_SELECTIONS = 0.02, 30, 5


def _candidates() -> pd.DataFrame:
    rows = []
    for sex, race, n, x in CELLS:
        for i in range(n):
            rows.append({"sex": sex, "race_ethnicity": race, "selected": i < x, "no_row": sex is None and race is None})
    frame = pd.DataFrame(rows)
    frame["candidate_id"] = [f"cand-{i:04d}" for i in range(len(frame))]
    return frame


def _load(conn, candidates: pd.DataFrame, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    events = []
    for row in candidates.itertuples():
        shown_at = WINDOW_START + timedelta(days=float(rng.uniform(0, 29)))
        events.append((f"ev-{row.candidate_id}-s", shown_at, row.candidate_id, "shown"))
        if row.selected:
            events.append((f"ev-{row.candidate_id}-l", shown_at + timedelta(hours=2), row.candidate_id, "shortlisted"))
    events.append(("ev-outside", WINDOW_START - timedelta(days=3), "cand-0000", "shortlisted"))  # before the window
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO selection_events (event_id, timestamp, candidate_id, event_type, search_id, tenant_id,"
            " user_id_hash, company_tier) VALUES (%s, %s, %s, %s, 's', 't1', 'u', 'faang')",
            events,
        )
    answers = candidates[~candidates["no_row"]].fillna({"sex": "", "race_ethnicity": "Declined"})
    lines = ["tenant_id,candidate_id,sex,race_ethnicity"] + [
        f"t1,{row.candidate_id},{row.sex},{row.race_ethnicity}" for row in answers.itertuples()
    ]
    path = tmp_path / "self-id.csv"
    path.write_text("\n".join(lines) + "\n")
    counts = load_attribute_file(conn, path, loaded_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert counts.as_dict() == {"read": len(answers), "stored": len(answers), "unchanged": 0, "rejected": 0}


def _oracle(candidates: pd.DataFrame, parts: list[str]) -> tuple[pd.DataFrame, str]:
    """Counts, rates, eligibility and impact ratios per group, and the reference group, worked out in pandas."""
    labels = candidates[parts].fillna("unknown").astype(str).agg("|".join, axis=1)
    table = candidates.assign(group=labels).groupby("group")["selected"].agg(n="size", x="sum")
    table["rate"] = table["x"] / table["n"]
    table["unknown"] = [("unknown" in g.split("|")) for g in table.index]
    table["small"] = table["n"] / table["n"].sum() < MIN_SHARE
    eligible = table[~table["unknown"] & ~table["small"]]
    eligible = eligible[(eligible["n"] >= MIN_CANDIDATES) & (eligible["x"] >= MIN_SELECTIONS)]
    reference = str(eligible["rate"].idxmax())
    table["impact_ratio"] = np.where(
        table["unknown"] | table["small"], np.nan, table["rate"] / table.loc[reference, "rate"]
    )
    return table, reference


@pytest.mark.parametrize("dimension", ["sex", "race_ethnicity", "sex+race_ethnicity"])
def test_ll144_impact_ratios_match_the_oracle(conn, tmp_path: Path, dimension: str) -> None:
    candidates = _candidates()
    _load(conn, candidates, tmp_path)
    document = compute(conn, WorkerRequest(end=END, tenant_id="t1"))["t1"]
    block = dimension_block(document, dimension)
    assert block is not None
    oracle, reference = _oracle(candidates, dimension.split("+"))

    populated = {g: n for g, n in block["sample_sizes"].items() if n > 0}
    assert populated == oracle["n"].to_dict()
    assert block["selection_rates"] == pytest.approx(oracle["rate"].to_dict())
    assert block["reference_group"] == reference
    expected_ratios = {g: r for g, r in oracle["impact_ratio"].items() if not math.isnan(r)}
    assert {g: r for g, r in block["impact_ratios"].items() if r is not None} == pytest.approx(expected_ratios)
    assert block["unknown_count"] == int(oracle.loc[oracle["unknown"], "n"].sum())
    assert block["excluded_groups"] == {
        g: int(n) for g, n in oracle.loc[oracle["small"] & ~oracle["unknown"], "n"].items()
    }
    assert not any("unknown" in g.split("|") for g in block["adverse_impact_groups"])
    # Each compared group's p-value is the textbook one against the reference: Fisher's exact test when an expected
    # cell is under 5, else the pooled two-proportion z-test.
    ref = oracle.loc[reference]
    for group, test in block["significance_tests"].items():
        row = oracle.loc[group]
        table = np.array([[row["x"], row["n"] - row["x"]], [ref["x"], ref["n"] - ref["x"]]])
        if test["test"] == "fisher_exact":
            expected_p = stats.fisher_exact(table).pvalue
        else:
            pooled = (row["x"] + ref["x"]) / (row["n"] + ref["n"])
            z = (row["rate"] - ref["rate"]) / math.sqrt(pooled * (1 - pooled) * (1 / row["n"] + 1 / ref["n"]))
            expected_p = 2 * stats.norm.sf(abs(z))
        assert test["p_value"] == pytest.approx(expected_p, rel=1e-6), group


def test_the_planted_findings_and_the_catalogue_layout_of_the_document(conn, tmp_path: Path) -> None:
    candidates = _candidates()
    _load(conn, candidates, tmp_path)
    document = compute(conn, WorkerRequest(end=END, tenant_id="t1"))["t1"]
    assert set(document["dimensions"]) == {"company_tier", "experience_band", "specialty", "sex", "race_ethnicity"}
    assert set(document["intersections"]) == {
        "company_tier+experience_band",
        "company_tier+specialty",
        "experience_band+specialty",
        "sex+race_ethnicity",
    }
    sex = document["dimensions"]["sex"]
    # unknown has the highest rate (14 of 55) but male is the reference; female (43/430 against 81/515) is adverse
    assert sex["selection_rates"]["unknown"] > sex["selection_rates"]["male"]
    assert sex["reference_group"] == "male" and sex["adverse_impact_groups"] == ["female"]
    assert sex["impact_ratios"]["female"] == pytest.approx((43 / 430) / (81 / 515))
    race = document["dimensions"]["race_ethnicity"]
    assert race["excluded_groups"] == {"native_hawaiian_or_pacific_islander": 15}
    assert race["sample_sizes"]["two_or_more_races"] == 0  # every category is listed, empty ones too
    # one dimension alone, as the seed's --dimension
    alone = compute(conn, WorkerRequest(end=END, tenant_id="t1", dimension="sex+race_ethnicity"))["t1"]
    assert list(alone["dimensions"]) == [] and list(alone["intersections"]) == ["sex+race_ethnicity"]
    with pytest.raises(ValueError, match="--dimension: unknown dimension 'gender'"):
        WorkerRequest(dimension="gender").validate()


def test_the_worker_command_prints_an_attribute_dimension_or_intersection(
    db_url: str, conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from fairness_pipeline.cli.main import app
    from fairness_pipeline.store import connection

    _load(conn, _candidates(), tmp_path)
    monkeypatch.setenv("FAIRNESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FAIRNESS_HOME", str(tmp_path / "home"))
    connection.database_url.cache_clear()
    runner = CliRunner()
    base = ["worker", "--end", END.isoformat(), "--tenant-id", "t1"]
    result = runner.invoke(app, [*base, "--dimension", "sex+race_ethnicity"])
    assert result.exit_code == 0, result.output
    block = json.loads(result.stdout)
    assert block["dimension"] == "sex+race_ethnicity" and block["reference_group"] == "male|white"
    assert block["sample_sizes"]["unknown|unknown"] == 25
    bad = runner.invoke(app, [*base, "--dimension", "gender"])
    assert bad.exit_code == 2 and "unknown dimension 'gender'" in bad.stderr
    connection.database_url.cache_clear()


def test_a_dimension_added_in_a_user_file_is_loaded_and_analysed(
    conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = tmp_path / "dimensions.yaml"
    catalogue.write_text(
        "dimensions:\n"
        "  veteran:\n"
        "    label: Protected veteran\n"
        "    source: attribute\n"
        "    values: {protected_veteran: Protected veteran, not_veteran: Not a protected veteran}\n"
        "intersections:\n"
        "  - [sex, veteran]\n"
    )
    monkeypatch.setenv("FAIRNESS_DIMENSIONS", str(catalogue))
    candidates = _candidates()
    _load(conn, candidates, tmp_path)  # sex and race only: veteran is unknown for now
    veterans = candidates.iloc[::4]  # every fourth candidate is a protected veteran, the others are not
    lines = ["tenant_id,candidate_id,veteran,sex,race_ethnicity"] + [
        f"t1,{c},{'protected_veteran' if c in set(veterans['candidate_id']) else 'Not a protected veteran'},"
        f"{'' if pd.isna(s) else s},{'' if pd.isna(r) else r}"
        for c, s, r in candidates[["candidate_id", "sex", "race_ethnicity"]].itertuples(index=False)
    ]
    (tmp_path / "veterans.csv").write_text("\n".join(lines) + "\n")
    counts = load_attribute_file(conn, tmp_path / "veterans.csv", loaded_at=datetime(2026, 4, 2, tzinfo=UTC))
    assert counts.rejected == 0 and counts.read == len(candidates)
    document = compute(conn, WorkerRequest(end=END, tenant_id="t1"))["t1"]
    assert set(document["intersections"]) == {"sex+veteran"}
    veteran = document["dimensions"]["veteran"]
    oracle = candidates.assign(veteran=np.where(candidates.index % 4 == 0, "protected_veteran", "not_veteran"))
    expected = oracle.groupby("veteran")["selected"].agg(["size", "mean"])
    assert veteran["sample_sizes"] == {"not_veteran": 750, "protected_veteran": 250}
    assert veteran["selection_rates"] == pytest.approx(expected["mean"].to_dict())
