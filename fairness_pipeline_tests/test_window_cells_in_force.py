"""The window's attribute lookup (``store.analysis.window_cells``: one hash-joinable LEFT JOIN of the history per
attribute) against a pandas oracle, on answers that change inside the window: a value changed between the first
baseline events of different candidates and at the very instant of one, a candidate shown before and clicked after
its change, declined answers (before and after a known one), a candidate with no answers, a tenant with none."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.metrics.window import AnalysisSettings
from fairness_pipeline.store import analysis
from fairness_pipeline_tests.test_ll144_audits import COLUMNS, FIRST, LAST, _insert, _load_answers, midnight

SETTINGS = AnalysisSettings(window_days=7, stage_pairs=(("shown", "clicked"), ("clicked", "shortlisted")))
ATTRIBUTES = ["sex", "race_ethnicity"]
CHANGED_AT = midnight(FIRST + timedelta(days=3)) + timedelta(hours=12)
"""When the second file's answers were collected: inside the window, between candidates' first events."""


def at(day: int, hour: int) -> datetime:
    return midnight(FIRST + timedelta(days=day)) + timedelta(hours=hour)


# (tenant, candidate, event, day, hour, company_tier): shown before or after CHANGED_AT, some clicked later
EVENTS = [
    ("t1", "a", "shown", 1, 10, "faang"),  # shown before its change (female -> male): female
    ("t1", "a", "clicked", 4, 9, "faang"),  # clicked after it: male as a clicked baseline
    ("t1", "b", "shown", 4, 9, "faang"),  # shown after its change (female -> male): male
    ("t1", "b", "clicked", 5, 9, "faang"),
    ("t1", "b", "shortlisted", 6, 9, "faang"),
    ("t1", "c", "shown", 2, 8, "faang"),  # declined sex throughout: unknown, white
    ("t1", "d", "shown", 2, 9, "enterprise"),  # no answers at all: unknown
    ("t1", "d", "clicked", 3, 9, "enterprise"),
    ("t1", "e", "shown", 2, 11, "faang"),  # first shown before its change, again after: male (the first counts)
    ("t1", "e", "shown", 5, 11, "enterprise"),
    ("t1", "f", "shown", 3, 12, "faang"),  # shown at the instant of its change (male -> female): female
    ("t1", "g", "shown", 1, 7, "faang"),  # declined, then a first known answer: in force from -infinity
    ("t1", "g", "clicked", 6, 7, "faang"),
    ("t1", "h", "shown", 5, 15, "faang"),  # female, then declined at the change: unknown after it
    ("t2", "p", "shown", 1, 10, "faang"),  # tenant 2 loaded no answers
    ("t2", "p", "clicked", 2, 10, "faang"),
    ("t2", "q", "shown", 4, 10, "enterprise"),
]
FIRST_ANSWERS = [
    ("a", "female", "white"),
    ("b", "female", "asian"),
    ("c", "declined", "white"),
    ("e", "male", "black_or_african_american"),
    ("f", "male", "white"),
    ("g", "declined", "declined"),
    ("h", "female", "white"),
]
CHANGED_ANSWERS = [
    ("a", "male", "white"),
    ("b", "male", "asian"),
    ("e", "female", "black_or_african_american"),
    ("f", "female", "white"),
    ("g", "female", "asian"),
    ("h", "declined", "white"),
]


def _answers(rows: list[tuple[str, str, str]], collected_at: datetime) -> pd.DataFrame:
    return pd.DataFrame([("t1", c, s, r, collected_at.isoformat()) for c, s, r in rows], columns=COLUMNS)


@pytest.fixture
def loaded(conn, tmp_path) -> pd.DataFrame:
    """The events summarised by the pipeline's statements and both answer files loaded; returns the events."""
    events = pd.DataFrame(
        [(f"{c}-{e}-{d}", at(d, h), c, e, t, tier, "0-3", "backend", np.nan) for t, c, e, d, h, tier in EVENTS],
        columns=[
            "event_id",
            "timestamp",
            "candidate_id",
            "event_type",
            "tenant_id",
            "company_tier",
            "experience_band",
            "specialty",
            "score",
        ],
    ).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))
    with conn, conn.cursor() as cur:
        _insert(cur, events)
    _load_answers(conn, _answers(FIRST_ANSWERS, datetime(2026, 3, 1, 9, tzinfo=CHANGED_AT.tzinfo)), tmp_path / "1.csv")
    _load_answers(conn, _answers(CHANGED_ANSWERS, CHANGED_AT), tmp_path / "2.csv")
    return events


def _oracle(events: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The cells in pandas: per tenant and stage pair, each candidate with a baseline event in the window, in the
    groups of its first one and with the value of each attribute in force then; x: also a selection event."""
    start, stop = midnight(FIRST), midnight(LAST + timedelta(days=1))
    window = events[(events["timestamp"] >= start) & (events["timestamp"] < stop)]
    firsts = window.sort_values(["timestamp", "event_id"]).drop_duplicates(["tenant_id", "event_type", "candidate_id"])
    for attribute in ATTRIBUTES:
        periods = history[history["attribute"] == attribute]
        rows = firsts.merge(periods, on=["tenant_id", "candidate_id"], how="left")
        open_ended = rows["valid_to"].isna() & rows["valid_from"].notna()
        in_force = (rows["valid_from"] <= rows["timestamp"]) & (open_ended | (rows["timestamp"] < rows["valid_to"]))
        values = rows[in_force].set_index(["tenant_id", "event_type", "candidate_id"])["value"]
        keys = pd.MultiIndex.from_frame(firsts[["tenant_id", "event_type", "candidate_id"]])
        firsts = firsts.assign(**{attribute: values.reindex(keys).to_numpy()})
    frames = []
    for name, (baseline, selection) in zip(SETTINGS.stage_pair_names, SETTINGS.stage_pairs, strict=True):
        population = firsts[firsts["event_type"] == baseline]
        selected = firsts.loc[firsts["event_type"] == selection, ["tenant_id", "candidate_id"]].assign(x=1)
        population = population.merge(selected, on=["tenant_id", "candidate_id"], how="left").fillna({"x": 0})
        keys = ["tenant_id", "company_tier", "experience_band", "specialty", *ATTRIBUTES]
        counted = population.groupby(keys, dropna=False).agg(n=("candidate_id", "size"), x=("x", "sum"))
        frames.append(counted.reset_index().assign(stage_pair=name))
    return _sorted(pd.concat(frames))


def _sorted(cells: pd.DataFrame) -> pd.DataFrame:
    keys = ["tenant_id", "stage_pair", "company_tier", "experience_band", "specialty", *ATTRIBUTES]
    filled = cells[[*keys, "n", "x"]].astype({c: object for c in keys}).fillna("~")
    return filled.sort_values(keys, ignore_index=True).astype({"n": "int64", "x": "int64"})


def test_window_cells_take_the_answer_in_force_at_each_first_baseline_event(conn, loaded) -> None:
    with conn, conn.cursor() as cur:
        cells = analysis.window_cells(
            cur, SETTINGS.stage_pair_names, SETTINGS.stage_pairs, *SETTINGS.window(LAST), attributes=ATTRIBUTES
        )
        cur.execute(
            "SELECT tenant_id, candidate_id, attribute, value, valid_from, valid_to FROM candidate_attribute_history"
        )
        history = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    assert list(cells.columns) == [
        "tenant_id",
        "stage_pair",
        "company_tier",
        "experience_band",
        "specialty",
        *ATTRIBUTES,
        "n",
        "x",
    ]
    pd.testing.assert_frame_equal(_sorted(cells), _oracle(loaded, history))

    # by hand: shown -> clicked, tenant 1 (a female, clicked; b male, clicked; c unknown; d unknown, clicked; e male;
    # f female; g female, clicked; h unknown); tenant 2 all unknown
    shown = cells[cells["stage_pair"] == SETTINGS.stage_pair_names[0]]
    by_sex = shown.assign(sex=shown["sex"].fillna("unknown")).groupby(["tenant_id", "sex"])[["n", "x"]].sum()
    assert by_sex.loc["t1"].to_dict("index") == {
        "female": {"n": 3, "x": 2},
        "male": {"n": 2, "x": 1},
        "unknown": {"n": 3, "x": 1},
    }
    assert by_sex.loc["t2"].to_dict("index") == {"unknown": {"n": 2, "x": 1}}
    race = shown[shown["tenant_id"] == "t1"].groupby(shown["race_ethnicity"].fillna("unknown"))["n"].sum()
    assert race.to_dict() == {"asian": 2, "black_or_african_american": 1, "unknown": 1, "white": 4}
    # clicked -> shortlisted: a is male when clicked (after its change), g female (its answer counts from -infinity)
    clicked = cells[(cells["tenant_id"] == "t1") & (cells["stage_pair"] == SETTINGS.stage_pair_names[1])]
    by_sex = clicked.groupby(clicked["sex"].fillna("unknown"))[["n", "x"]].sum()
    assert by_sex.to_dict("index") == {
        "female": {"n": 1, "x": 0},
        "male": {"n": 2, "x": 1},
        "unknown": {"n": 1, "x": 0},
    }


def test_without_attributes_the_cells_have_only_the_event_dimensions(conn, loaded) -> None:
    with conn, conn.cursor() as cur:
        cells = analysis.window_cells(
            cur, SETTINGS.stage_pair_names, SETTINGS.stage_pairs, *SETTINGS.window(LAST), attributes=[]
        )
    assert list(cells.columns) == ["tenant_id", "stage_pair", "company_tier", "experience_band", "specialty", "n", "x"]
    shown = cells[cells["stage_pair"] == SETTINGS.stage_pair_names[0]]
    assert shown.groupby("tenant_id")["n"].sum().to_dict() == {"t1": 8, "t2": 2}
