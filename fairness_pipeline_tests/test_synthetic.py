"""The synthetic event generator: determinism, vocabulary, funnel consistency, planted bias, writing (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import (
    DIMENSION_VALUES,
    DIMENSIONS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    MAX_LENGTHS,
    REQUIRED_COLUMNS,
)
from fairness_pipeline.synthetic import (
    GROUP_PROPORTIONS,
    ConcentrationBias,
    GeneratorConfig,
    PlantedBias,
    RankBias,
    ScoreBias,
    generate_events,
    parse_bias,
    parse_rank_bias,
    parse_score_bias,
    parse_slate_concentration,
    write_events,
)

SMALL = GeneratorConfig(
    seed=11,
    start=dt.date(2026, 3, 2),
    days=4,
    tenants=2,
    events_per_day=3000,
    bias=(parse_bias("company_tier=startup:0.6"),),
)
LARGE_DAYS = 10
LARGE_EVENTS_PER_DAY = 30_000


@pytest.fixture(scope="module")
def small_frames() -> list[pd.DataFrame]:
    return list(generate_events(SMALL))


@pytest.fixture(scope="module")
def small_events(small_frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(small_frames, ignore_index=True)


def _large(bias: tuple[str, ...] = ()) -> pd.DataFrame:
    config = GeneratorConfig(seed=3, days=LARGE_DAYS, tenants=1, events_per_day=LARGE_EVENTS_PER_DAY, bias=bias)
    return pd.concat(generate_events(config), ignore_index=True)


def shortlist_rates(events: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Unique-candidate shown->shortlisted rate per group over the whole data (one window).

    A candidate's group comes from its first shown event; it is selected when it has a shortlisted event.
    """
    shown = events[events["event_type"] == "shown"].sort_values("timestamp", kind="stable")
    population = shown.drop_duplicates(["tenant_id", "candidate_id"])[["tenant_id", "candidate_id", dimension]]
    selected = events.loc[events["event_type"] == "shortlisted", ["tenant_id", "candidate_id"]].drop_duplicates()
    merged = population.merge(selected.assign(selected=True), on=["tenant_id", "candidate_id"], how="left")
    merged["selected"] = merged["selected"].fillna(False).astype(bool)
    merged["group"] = merged[dimension].astype(object).fillna("unknown")
    return merged.groupby("group")["selected"].agg(rate="mean", n="size")


# --- determinism and streaming -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_same_seed_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    first, second, other = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}", tmp_path / f"c.{fmt}"
    rows = write_events(generate_events(SMALL), first, fmt)
    assert write_events(generate_events(SMALL), second, fmt) == rows > 0
    assert first.read_bytes() == second.read_bytes()
    write_events(generate_events(dataclasses.replace(SMALL, seed=12)), other, fmt)
    assert other.read_bytes() != first.read_bytes()


def test_frames_have_event_columns_and_dtypes(small_frames: list[pd.DataFrame]) -> None:
    for frame in small_frames:
        assert list(frame.columns) == list(EVENT_COLUMNS)
        assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
        assert str(frame["timestamp"].dt.tz) == "UTC"
        assert frame["rank"].dtype == "Int64"
        assert frame["score"].dtype == np.float64
        for name in ("event_id", "candidate_id", "event_type", "search_id", "tenant_id", "user_id_hash", *DIMENSIONS):
            assert pd.api.types.is_string_dtype(frame[name]), name


def test_one_frame_per_day_and_tenant_in_time_order(small_frames: list[pd.DataFrame]) -> None:
    keys = []
    for frame in small_frames:
        assert frame["tenant_id"].nunique() == 1
        assert frame["timestamp"].dt.date.nunique() == 1
        assert frame["timestamp"].is_monotonic_increasing
        keys.append((frame["timestamp"].iloc[0].date(), frame["tenant_id"].iloc[0]))
    assert keys == sorted(set(keys))
    assert len(keys) == SMALL.days * SMALL.tenants


# --- values --------------------------------------------------------------------------------------------------------


def test_values_are_within_the_vocabulary(small_events: pd.DataFrame) -> None:
    ev = small_events
    assert ev[list(REQUIRED_COLUMNS)].notna().all().all()
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert set(ev["tenant_id"]) == {"tenant-1", "tenant-2"}
    for dimension in DIMENSIONS:
        assert set(ev[dimension].dropna()) == set(DIMENSION_VALUES[dimension])
        assert ev[dimension].isna().any()
    for column, limit in MAX_LENGTHS.items():
        assert ev[column].str.len().max() <= limit, column
    assert ev["user_id_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert ev["event_id"].is_unique
    assert ev["rank"].between(1, SMALL.slate_size).all()
    assert ev["score"].between(0.0, 1.0).all()
    assert (ev["score"].round(4) == ev["score"]).all()
    start = pd.Timestamp(SMALL.start, tz="UTC")
    assert ev["timestamp"].min() >= start
    assert ev["timestamp"].max() < start + pd.Timedelta(days=SMALL.days)


def test_group_proportions_are_realistic(small_events: pd.DataFrame) -> None:
    candidates = small_events.drop_duplicates(["tenant_id", "candidate_id"])
    assert len(candidates) > 5000
    for dimension in DIMENSIONS:
        shares = candidates[dimension].astype(object).fillna("unknown").value_counts(normalize=True)
        assert shares.drop("unknown").min() > 0.04, dimension
        assert 0.01 < shares["unknown"] < 0.03, dimension  # unknown_share = 0.02


def test_slates_and_scores(small_events: pd.DataFrame) -> None:
    shown = small_events[small_events["event_type"] == "shown"]
    per_search = shown.groupby("search_id").agg(
        n=("rank", "size"),
        ranks=("rank", "nunique"),
        candidates=("candidate_id", "nunique"),
        users=("user_id_hash", "nunique"),
    )
    assert (per_search == [SMALL.slate_size, SMALL.slate_size, SMALL.slate_size, 1]).all().all()
    mean_score = shown.groupby("rank")["score"].mean()
    assert mean_score.is_monotonic_decreasing
    click_rate = (
        small_events[small_events["event_type"] == "clicked"].groupby("rank").size() / shown.groupby("rank").size()
    )
    assert click_rate.loc[1] > 2 * click_rate.loc[SMALL.slate_size]


def test_every_later_stage_follows_the_funnel(small_events: pd.DataFrame) -> None:
    key = ["tenant_id", "search_id", "candidate_id"]
    assert not small_events.duplicated([*key, "event_type"]).any()
    stamps = small_events.pivot(index=key, columns="event_type", values="timestamp")[list(EVENT_TYPES)]
    present = stamps.notna().to_numpy()
    assert present[:, 0].all()  # every later-stage event's candidate was shown in that search
    assert (present[:, :-1] >= present[:, 1:]).all()  # a stage implies all earlier ones
    seconds = (stamps.sub(stamps["shown"], axis=0)).apply(lambda s: s.dt.total_seconds()).to_numpy()
    gaps = np.diff(seconds, axis=1)
    assert (gaps[present[:, 1:]] > 0).all()  # later stages strictly after the previous one
    shown = small_events[small_events["event_type"] == "shown"].set_index(key)
    later = small_events[small_events["event_type"] != "shown"].set_index(key)
    carried = ["rank", "score", "user_id_hash", *DIMENSIONS]
    pd.testing.assert_frame_equal(later[carried], shown.loc[later.index, carried], check_names=False)


# --- planted bias --------------------------------------------------------------------------------------------------


def test_planted_bias_gives_the_factor_as_impact_ratio() -> None:
    events = _large(("company_tier=startup:0.6",))
    rates = shortlist_rates(events, "company_tier").drop("unknown")
    assert rates["n"].min() > 5000
    ratio = rates.loc["startup", "rate"] / rates.drop("startup")["rate"].max()
    assert ratio == pytest.approx(0.6, abs=0.08)
    for dimension in ("experience_band", "specialty"):  # independent of company_tier, so not affected
        other = shortlist_rates(events, dimension).drop("unknown")["rate"]
        assert other.min() / other.max() > 0.85, dimension


def test_without_bias_all_groups_are_close() -> None:
    events = _large()
    for dimension in DIMENSIONS:
        rates = shortlist_rates(events, dimension).drop("unknown")["rate"]
        assert rates.min() / rates.max() > 0.85, dimension
        assert 0.02 < rates.max() < 0.1


def test_bias_on_a_later_stage() -> None:
    config = GeneratorConfig(
        seed=5, days=3, tenants=1, events_per_day=20_000, bias=("experience_band=15+:0.5@clicked",)
    )
    events = pd.concat(generate_events(config), ignore_index=True)
    counts = events.astype({"experience_band": object}).fillna({"experience_band": "unknown"})
    counts = counts.groupby(["experience_band", "event_type"]).size().unstack()
    click_rate = (counts["clicked"] / counts["shown"]).drop("unknown")
    assert click_rate["15+"] / click_rate.drop("15+").max() == pytest.approx(0.5, abs=0.08)


def test_drift_moves_the_factor_from_one_to_the_last_day_value() -> None:
    """Day i of n applies 1 + (factor - 1) * i / (n - 1): 1.0, 0.6 and 0.2 on days 0, 2 and 4 of five."""
    config = GeneratorConfig(
        seed=5,
        start=dt.date(2026, 1, 5),
        days=5,
        tenants=1,
        events_per_day=20_000,  # Monday to Friday
        drift=("experience_band=15+:0.2@clicked",),
    )
    events = pd.concat(generate_events(config), ignore_index=True)
    events = events.astype({"experience_band": object}).fillna({"experience_band": "unknown"})
    events["day"] = pd.to_datetime(events["timestamp"], utc=True).dt.date
    counts = events.groupby(["day", "experience_band", "event_type"]).size().unstack()
    for day_index, expected in ((0, 1.0), (2, 0.6), (4, 0.2)):
        day = config.start + dt.timedelta(days=day_index)
        click_rate = (counts.loc[day, "clicked"] / counts.loc[day, "shown"]).drop("unknown")
        assert click_rate["15+"] / click_rate.drop("15+").mean() == pytest.approx(expected, abs=0.1), day_index
    assert GeneratorConfig(drift=("company_tier=startup:0.5",)).drift == (PlantedBias("company_tier", "startup", 0.5),)
    with pytest.raises(ValueError, match="unknown group"):
        GeneratorConfig(drift=("company_tier=google:0.5",))


# --- configuration and parsing -------------------------------------------------------------------------------------


def test_parse_bias() -> None:
    assert parse_bias("company_tier=startup:0.6") == PlantedBias("company_tier", "startup", 0.6, "shortlisted")
    assert parse_bias(" experience_band = 15+ : 1.5 @hired") == PlantedBias("experience_band", "15+", 1.5, "hired")
    assert parse_bias("specialty=unknown:0.5").group == "unknown"
    assert str(parse_bias("company_tier=startup:0.6")) == "company_tier=startup:0.6"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("company_tier:0.6", "expected DIMENSION=GROUP:FACTOR"),
        ("company_tier=startup", "expected DIMENSION=GROUP:FACTOR"),
        ("gender=female:0.6", "unknown dimension 'gender'"),
        ("company_tier=google:0.6", "unknown group 'google' for company_tier"),
        ("company_tier=startup:abc", "factor 'abc' is not a positive number"),
        ("company_tier=startup:0", "positive number"),
        ("company_tier=startup:-1", "positive number"),
        ("company_tier=startup:nan", "positive number"),
        ("company_tier=startup:0.6@shown", "unknown bias stage 'shown'"),
    ],
)
def test_parse_bias_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bias(text)


def test_group_proportions_cover_the_vocabulary() -> None:
    for dimension, values in DIMENSION_VALUES.items():
        assert len(GROUP_PROPORTIONS[dimension]) == len(values)
        assert sum(GROUP_PROPORTIONS[dimension]) == pytest.approx(1.0)
        assert min(GROUP_PROPORTIONS[dimension]) >= 0.05


def test_config_validation_and_defaults() -> None:
    config = GeneratorConfig(bias=["company_tier=faang:1.2"])  # type: ignore[arg-type]
    assert config.bias == (PlantedBias("company_tier", "faang", 1.2),)
    assert config.tenant_ids == ("tenant-1", "tenant-2")
    assert config.end == config.start + dt.timedelta(days=30)
    assert config.pool_size > config.searches_per_day * config.slate_size * 30
    with pytest.raises(ValueError, match="days"):
        GeneratorConfig(days=0)
    with pytest.raises(ValueError, match="unknown_share"):
        GeneratorConfig(unknown_share=1.0)
    with pytest.raises(ValueError, match="candidates_per_tenant"):
        GeneratorConfig(candidates_per_tenant=5, slate_size=10)
    with pytest.raises(TypeError, match="start"):
        GeneratorConfig(start=dt.datetime(2026, 1, 1))  # type: ignore[arg-type]


def test_tiny_pool_still_gives_distinct_slates() -> None:
    config = GeneratorConfig(days=2, tenants=1, events_per_day=500, candidates_per_tenant=20, slate_size=20)
    events = pd.concat(generate_events(config), ignore_index=True)
    shown = events[events["event_type"] == "shown"]
    assert (shown.groupby("search_id")["candidate_id"].nunique() == 20).all()
    assert shown["candidate_id"].nunique() == 20


# --- writing -------------------------------------------------------------------------------------------------------


def test_csv_matches_pandas_and_reads_back(tmp_path: Path, small_frames: list[pd.DataFrame]) -> None:
    path = tmp_path / "events.csv"
    frames = small_frames[:3]
    assert write_events(frames, path, "csv") == sum(len(f) for f in frames)
    text = path.read_text(encoding="utf-8")
    expected = io.StringIO()
    for i, frame in enumerate(frames):
        iso = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
        frame.assign(timestamp=iso).to_csv(expected, index=False, header=i == 0, lineterminator="\n")
    assert text == expected.getvalue()
    assert text.splitlines()[0] == ",".join(EVENT_COLUMNS)
    back = pd.read_csv(path, dtype={"rank": "Int64"}, keep_default_na=False, na_values=[""])
    original = pd.concat(frames, ignore_index=True)
    assert (pd.to_datetime(back["timestamp"], utc=True) == original["timestamp"]).all()
    assert back["score"].tolist() == original["score"].tolist()
    assert back["specialty"].isna().tolist() == original["specialty"].isna().tolist()


def test_jsonl_has_nulls_and_iso_timestamps(tmp_path: Path, small_frames: list[pd.DataFrame]) -> None:
    path = tmp_path / "events.jsonl"
    frame = small_frames[0]
    assert write_events([frame.iloc[:0], frame], path, "jsonl") == len(frame)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(frame)
    assert all(list(r) == list(EVENT_COLUMNS) for r in records)
    first = records[0]
    assert first["timestamp"] == frame["timestamp"].iloc[0].isoformat(timespec="microseconds")
    assert first["timestamp"].endswith("+00:00")
    assert isinstance(first["rank"], int)
    assert first["score"] == frame["score"].iloc[0]
    missing = frame["company_tier"].isna().to_numpy()
    assert missing.any()
    assert [r["company_tier"] is None for r in records] == missing.tolist()


def test_writer_quotes_and_escapes_unusual_text(tmp_path: Path, small_frames: list[pd.DataFrame]) -> None:
    frame = small_frames[0].iloc[:3].copy()
    frame["candidate_id"] = ["a,b", 'say "hi"', "back\\slash é"]
    csv_path, jsonl_path = tmp_path / "odd.csv", tmp_path / "odd.jsonl"
    write_events([frame], csv_path, "csv")
    write_events([frame], jsonl_path, "jsonl")
    assert pd.read_csv(csv_path)["candidate_id"].tolist() == frame["candidate_id"].tolist()
    lines = jsonl_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["candidate_id"] for line in lines] == frame["candidate_id"].tolist()


def test_writer_rejects_bad_input(tmp_path: Path, small_frames: list[pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="format"):
        write_events([], tmp_path / "x.xml", "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lacks columns: score"):
        write_events([small_frames[0].drop(columns="score")], tmp_path / "x.csv", "csv")
    assert write_events([], tmp_path / "empty.csv", "csv") == 0
    assert (tmp_path / "empty.csv").read_text() == ",".join(EVENT_COLUMNS) + "\n"


# --- planted ranking effects: rank bias, score bias, slate concentration --------------------------------------------

RANKING = GeneratorConfig(seed=19, start=dt.date(2026, 3, 2), days=2, tenants=1, events_per_day=2500)


def _shown_slates(config: GeneratorConfig) -> pd.DataFrame:
    events = pd.concat(generate_events(config), ignore_index=True)
    shown = events[events["event_type"] == "shown"]
    return shown[["search_id", "candidate_id", "rank", "score", *DIMENSIONS]].reset_index(drop=True)


@pytest.fixture(scope="module")
def plain_slates() -> pd.DataFrame:
    return _shown_slates(RANKING)


def test_parse_ranking_options() -> None:
    assert parse_rank_bias("company_tier=startup:3") == RankBias("company_tier", "startup", 3.0)
    assert parse_rank_bias(" specialty = ml : -2 ").positions == -2.0
    assert parse_score_bias("company_tier=startup:-0.1") == ScoreBias("company_tier", "startup", -0.1)
    assert parse_slate_concentration("company_tier=faang:0.2") == ConcentrationBias("company_tier", "faang", 0.2, 0.9)
    assert parse_slate_concentration("experience_band=unknown:0.1@0.8").purity == 0.8
    for text, parse in (
        ("company_tier=startup:3", parse_rank_bias),
        ("company_tier=startup:-0.1", parse_score_bias),
        ("company_tier=faang:0.2", parse_slate_concentration),
        ("company_tier=faang:0.2@0.75", parse_slate_concentration),
    ):
        assert str(parse(text)) == text


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_rank_bias, "company_tier=startup", "expected DIMENSION=GROUP:POSITIONS"),
        (parse_rank_bias, "company_tier=startup:3@clicked", "expected DIMENSION=GROUP:POSITIONS"),
        (parse_rank_bias, "company_tier=startup:x", "'x' is not a number"),
        (parse_rank_bias, "gender=f:3", "unknown dimension 'gender'"),
        (parse_rank_bias, "company_tier=startup:inf", "finite number"),
        (parse_score_bias, "company_tier=startup:-1.5", r"score shift must be in \[-1, 1\]"),
        (parse_score_bias, "company_tier=google:-0.1", "unknown group 'google'"),
        (parse_slate_concentration, "company_tier=faang:0", r"share of concentrated searches must be in \(0, 1\]"),
        (parse_slate_concentration, "company_tier=faang:0.2@1.5", r"slate purity must be in \(0, 1\]"),
        (parse_slate_concentration, "company_tier=faang:0.2@high", "purity 'high' is not a number"),
    ],
)
def test_parse_ranking_option_errors(parse, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_ranking_options_default_to_none_and_accept_strings() -> None:
    config = GeneratorConfig()
    assert (config.rank_bias, config.score_bias, config.slate_concentration) == ((), (), ())
    config = GeneratorConfig(rank_bias=["company_tier=startup:3"], slate_concentration=["company_tier=faang:0.2"])  # type: ignore[arg-type]
    assert config.rank_bias == (RankBias("company_tier", "startup", 3.0),)
    with pytest.raises(ValueError, match="add up to more than 1"):
        GeneratorConfig(slate_concentration=("company_tier=faang:0.6", "specialty=ml:0.5"))
    with pytest.raises(TypeError, match="rank_bias entries"):
        GeneratorConfig(rank_bias=(PlantedBias("company_tier", "startup", 0.5),))  # type: ignore[arg-type]
    too_small = dataclasses.replace(RANKING, candidates_per_tenant=40, slate_concentration=("company_tier=faang:0.1",))
    with pytest.raises(ValueError, match="too few candidates"):
        next(generate_events(too_small))


def test_ranking_options_are_deterministic(tmp_path: Path) -> None:
    config = dataclasses.replace(
        RANKING,
        rank_bias=("company_tier=startup:3",),
        score_bias=("specialty=ml:-0.05",),
        slate_concentration=("experience_band=0-3:0.1",),
    )
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_events(generate_events(config), first)
    write_events(generate_events(config), second)
    assert first.read_bytes() == second.read_bytes()


def test_rank_bias_moves_candidates_and_keeps_scores(plain_slates: pd.DataFrame) -> None:
    biased = _shown_slates(dataclasses.replace(RANKING, rank_bias=("company_tier=startup:3",)))
    merged = plain_slates.merge(biased, on=["search_id", "candidate_id"], suffixes=("", "_biased"), validate="1:1")
    assert len(merged) == len(plain_slates) == len(biased)  # same slates, only reordered
    assert (merged["score"] == merged["score_biased"]).all()  # a pushed candidate keeps its score
    # Oracle: sort each slate by (original position + 3 for startup, then the push), the documented rule.
    push = np.where(merged["company_tier"] == "startup", 3, 0)
    merged["key"] = merged["rank"].to_numpy() - 1 + push
    merged["push"] = push
    expected = merged.sort_values(["search_id", "key", "push"], kind="stable")
    expected["expected_rank"] = expected.groupby("search_id").cumcount() + 1
    assert (expected["expected_rank"] == expected["rank_biased"]).all()
    mean_rank = merged.groupby(merged["company_tier"] == "startup")["rank_biased"].mean()
    assert mean_rank[True] > mean_rank[False] + 1.5


def test_score_bias_shifts_scores_and_reorders_by_score(plain_slates: pd.DataFrame) -> None:
    biased = _shown_slates(dataclasses.replace(RANKING, score_bias=("company_tier=startup:-0.1",)))
    merged = plain_slates.merge(biased, on=["search_id", "candidate_id"], suffixes=("", "_biased"), validate="1:1")
    startup = (merged["company_tier"] == "startup").to_numpy()
    expected = np.clip(np.round(merged["score"] + np.where(startup, -0.1, 0.0), 4), 0.0, 1.0)
    assert np.allclose(merged["score_biased"], expected, atol=1e-12)
    ordered = merged.sort_values(["search_id", "score_biased", "rank"], ascending=[True, False, True], kind="stable")
    assert (ordered.groupby("search_id").cumcount() + 1 == ordered["rank_biased"]).all()


def test_slate_concentration_replaces_a_share_of_slates(plain_slates: pd.DataFrame) -> None:
    biased = _shown_slates(dataclasses.replace(RANKING, slate_concentration=("company_tier=faang:0.25",)))
    faang = biased.assign(faang=biased["company_tier"] == "faang").groupby("search_id")["faang"].sum()
    concentrated = faang[faang >= 15].index
    share = len(concentrated) / faang.size
    assert abs(share - 0.25) < 3 * np.sqrt(0.25 * 0.75 / faang.size)
    assert (faang[concentrated] == 18).all()  # ceil(0.9 * 20) from the group, the rest from outside it
    # The other searches show exactly the slates of the run without the option.
    key = ["search_id", "candidate_id", "rank", "score"]
    others = biased[~biased["search_id"].isin(concentrated)][key].sort_values(key).reset_index(drop=True)
    plain = plain_slates[~plain_slates["search_id"].isin(concentrated)][key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(others, plain)
    in_slate = biased[biased["search_id"].isin(concentrated)]
    assert in_slate.groupby("search_id")["candidate_id"].nunique().eq(20).all()
    faang_ranks = in_slate.loc[in_slate["company_tier"] == "faang", "rank"]
    assert 9.5 < faang_ranks.mean() < 11.5  # shuffled within the slate, not stacked on top


# --- self-identified attributes ------------------------------------------------------------------------------------


def _generate_with_attributes(tmp_path: Path, *extra: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and the self-identification file of one ``generate --attributes`` run, read back with pandas."""
    from typer.testing import CliRunner

    from fairness_pipeline.cli.main import app

    events, attributes = tmp_path / "events.csv", tmp_path / "self-id.csv"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--out",
            str(events),
            "--attributes",
            str(attributes),
            "--seed",
            "5",
            "--start",
            "2026-03-02",
            "--days",
            "10",
            "--tenants",
            "1",
            "--events-per-day",
            str(LARGE_EVENTS_PER_DAY),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return pd.read_csv(events), pd.read_csv(attributes, keep_default_na=False)


def test_the_attributes_file_covers_every_candidate_with_realistic_shares(tmp_path: Path) -> None:
    events, attributes = _generate_with_attributes(tmp_path)
    assert list(attributes.columns) == ["tenant_id", "candidate_id", "sex", "race_ethnicity"]
    assert attributes["candidate_id"].is_unique
    assert set(events["candidate_id"]) == set(attributes["candidate_id"])  # every candidate of the events
    for name, shares in (("sex", (0.58, 0.42)), ("race_ethnicity", (0.11, 0.44, 0.09, 0.008, 0.27, 0.03, 0.052))):
        answers = attributes[name]
        unknown = answers.isin(["", "declined"])
        assert 0.05 < unknown.mean() < 0.07, name  # attribute_unknown_share = 0.06
        assert 0.55 < (answers[unknown] == "declined").mean() < 0.78, name  # two thirds declined, the rest blank
        observed = answers[~unknown].value_counts(normalize=True)
        values = DIMENSION_VALUES.get(name) or load_catalogue().values(name)
        assert set(observed.index) == set(values), name
        for value, share in zip(values, shares, strict=True):
            assert observed[value] == pytest.approx(share, abs=0.01), (name, value)
    race = attributes.loc[~attributes["race_ethnicity"].isin(["", "declined"]), "race_ethnicity"]
    assert list(race.value_counts(normalize=True).loc[lambda s: s < 0.02].index) == [
        "native_hawaiian_or_pacific_islander"
    ]


def test_a_bias_planted_on_an_attribute_appears_in_the_files(tmp_path: Path) -> None:
    events, attributes = _generate_with_attributes(tmp_path, "--bias", "sex=female:0.7")
    joined = events.merge(attributes, on=["tenant_id", "candidate_id"], how="left", validate="many_to_one")
    assert joined["sex"].notna().all()
    # The bias multiplies P(shortlisted | clicked): per event, shortlisted / clicked by sex.
    stages = joined[joined["event_type"].isin(["clicked", "shortlisted"])]
    counts = stages.groupby(["sex", "event_type"]).size().unstack()
    conditional = counts["shortlisted"] / counts["clicked"]
    assert counts.loc["female", "clicked"] > 5000
    assert conditional["female"] / conditional["male"] == pytest.approx(0.7, abs=0.05)
    # ... and in the unique-candidate shown->shortlisted rates, the impact ratio the audit measures
    rates = shortlist_rates(joined, "sex")
    assert rates.loc["female", "rate"] / rates.loc["male", "rate"] == pytest.approx(0.7, abs=0.06)
    # the proxies are independent of sex, so they stay fair
    tiers = shortlist_rates(joined, "company_tier").drop("unknown")["rate"]
    assert tiers.min() / tiers.max() > 0.85


def test_attribute_biases_parse_against_the_catalogue() -> None:
    assert parse_bias("sex=female:0.7") == PlantedBias("sex", "female", 0.7)
    assert str(parse_rank_bias("race_ethnicity=asian:3")) == "race_ethnicity=asian:3"
    with pytest.raises(ValueError, match="unknown group 'f' for sex; expected one of male, female, unknown"):
        parse_bias("sex=f:0.7")
    with pytest.raises(ValueError, match=r"unknown dimension 'gender'; expected one of company_tier, .*, sex"):
        parse_bias("gender=female:0.7")


def test_the_whole_pool_has_attributes_and_they_do_not_change_the_events() -> None:
    from fairness_pipeline.synthetic import attribute_frames

    pool = pd.concat(attribute_frames(GeneratorConfig(seed=2, days=2, tenants=2, events_per_day=500)))
    assert len(pool) == 2 * GeneratorConfig(seed=2, days=2, events_per_day=500).pool_size

    plain = GeneratorConfig(seed=2, days=2, tenants=1, events_per_day=500)
    without_answers = dataclasses.replace(plain, attribute_unknown_share=0.5)
    for a, b in zip(generate_events(plain), generate_events(without_answers), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_the_packaged_catalogue_generates_the_same_bytes_as_before_shares_moved_to_it(tmp_path: Path) -> None:
    """The shares now come from dimensions.yaml; the events and the self-identification file are byte for byte what
    the generator wrote when they were constants in its code (SHA-256 taken on 2026-12-03 before the move)."""
    import hashlib

    from fairness_pipeline.synthetic import write_attributes

    config = GeneratorConfig(
        seed=11,
        start=dt.date(2026, 3, 2),
        days=3,
        tenants=2,
        events_per_day=1500,
        bias=(parse_bias("company_tier=startup:0.6"), parse_bias("sex=female:0.7")),
        rank_bias=(parse_rank_bias("specialty=ml:3"),),
    )
    assert write_events(generate_events(config), tmp_path / "e.csv") == 13071
    assert write_attributes(config, tmp_path / "a.csv") == 23176
    digests = [hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("e.csv", "a.csv")]
    assert digests == [
        "26384e49b50035b0023a81971d81689aaee6137b32c59015e773d8ec96bad2fe",
        "9c9b16c15531580054cd842b51a98f0473ecf7dec9ee1c03cbdae2ff1e170e78",
    ]


def test_group_shares_are_the_catalogue_shares_normalised() -> None:
    from fairness_pipeline.synthetic import ATTRIBUTE_PROPORTIONS

    catalogue = load_catalogue()
    assert GROUP_PROPORTIONS["company_tier"] == pytest.approx((0.08, 0.32, 0.30, 0.30), abs=1e-15)
    assert ATTRIBUTE_PROPORTIONS["sex"] == pytest.approx((0.58, 0.42), abs=1e-15)
    for name in catalogue.names:
        shares = catalogue[name].shares()
        assert sum(shares) == pytest.approx(1.0, abs=1e-12) and len(shares) == len(catalogue.values(name))
