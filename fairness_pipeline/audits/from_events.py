"""The audits' inputs computed with pandas from event frames: for tests, oracles and small demos, not production.

In the pipeline SQL computes these (see each audit's module doc); here one row per event is fine because the data is
small. Days are UTC dates of ``timestamp``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairness_pipeline.audits.exposure import AGGREGATE_COLUMNS, DEFAULT_TOP_K, position_weight
from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSIONS, stage_pair_name


def _in_days(events: pd.DataFrame, first_day: dt.date | None, last_day: dt.date | None) -> pd.DataFrame:
    day = events["timestamp"].dt.tz_convert("UTC").dt.date
    keep = pd.Series(True, index=events.index)
    if first_day is not None:
        keep &= day >= first_day
    if last_day is not None:
        keep &= day <= last_day
    return events.loc[keep].assign(day=day[keep])


def shown_impressions(
    events: pd.DataFrame, first_day: dt.date | None = None, last_day: dt.date | None = None
) -> pd.DataFrame:
    """The shown events of the days (inclusive bounds; None: unbounded), with a ``day`` column (UTC date)."""
    return _in_days(events[events["event_type"] == "shown"], first_day, last_day).reset_index(drop=True)


def first_shown_candidates(
    events: pd.DataFrame, first_day: dt.date | None = None, last_day: dt.date | None = None
) -> pd.DataFrame:
    """One row per (tenant, candidate): dimensions and score of its first shown event in the days (the scoring-rate
    population). Ties in timestamp are broken by event_id."""
    shown = shown_impressions(events, first_day, last_day).sort_values(["timestamp", "event_id"], kind="stable")
    first = shown.drop_duplicates(["tenant_id", "candidate_id"])
    return first[["tenant_id", "candidate_id", *DIMENSIONS, "score"]].reset_index(drop=True)


def window_cells(
    events: pd.DataFrame,
    first_day: dt.date,
    last_day: dt.date,
    stage_pairs: Sequence[tuple[str, str]] = DEFAULT_STAGE_PAIRS,
) -> pd.DataFrame:
    """Candidate counts per tenant, stage pair and dimension cell over the days, like ``WINDOW_CELLS_FROM_EVENTS``.

    The population is the candidates with a baseline event in the days, in the groups of their first baseline event;
    selected when they also have a selection event in the days. Columns tenant_id, stage_pair, the dimensions, n, x.
    """
    window = _in_days(events, first_day, last_day).sort_values(["timestamp", "event_id"], kind="stable")
    firsts = window.drop_duplicates(["tenant_id", "event_type", "candidate_id"])
    parts = []
    for baseline, selection in stage_pairs:
        base = firsts[firsts["event_type"] == baseline][["tenant_id", "candidate_id", *DIMENSIONS]]
        chosen = firsts.loc[firsts["event_type"] == selection, ["tenant_id", "candidate_id"]].assign(x=1)
        merged = base.merge(chosen, on=["tenant_id", "candidate_id"], how="left").fillna({"x": 0})
        merged["n"] = 1
        cells = merged.groupby(["tenant_id", *DIMENSIONS], dropna=False, as_index=False)[["n", "x"]].sum()
        cells.insert(1, "stage_pair", stage_pair_name(baseline, selection))
        parts.append(cells)
    out = pd.concat(parts, ignore_index=True)
    out[["n", "x"]] = out[["n", "x"]].astype("int64")
    return out


def search_aggregates(
    impressions: pd.DataFrame,
    *,
    keys: Sequence[str] = ("tenant_id",),
    dimensions: Sequence[str] = DIMENSIONS,
    k: int = DEFAULT_TOP_K,
) -> pd.DataFrame:
    """Per-search aggregates from one row per shown impression (``keys``, ``search_id``, dimensions, rank, score).

    Returns ``keys`` + search_id + dimensions + :data:`AGGREGATE_COLUMNS`, one row per combination present (missing
    dimension values stay null). This is the reference implementation of what SQL should compute.
    """
    keys, dims = list(keys), list(dimensions)
    needed = [*keys, "search_id", *dims, "rank", "score"]
    missing = [c for c in needed if c not in impressions.columns]
    if missing:
        raise ValueError(f"impression frame lacks columns {missing}")
    frame = impressions[[*keys, "search_id", *dims]].reset_index(drop=True).copy()
    rank = pd.to_numeric(impressions["rank"], errors="coerce").astype(float).reset_index(drop=True)
    score = pd.to_numeric(impressions["score"], errors="coerce").astype(float).reset_index(drop=True)
    ranked = rank.notna() & (rank >= 1)
    scored = ranked & score.notna()
    weight = pd.Series(np.where(ranked, position_weight(rank.where(ranked, 1.0)), 0.0))
    frame["shown"] = 1
    frame["ranked"] = ranked.astype("int64")
    frame["weight_sum"] = weight
    frame["top_k"] = (ranked & (rank <= k)).astype("int64")
    frame["scored"] = scored.astype("int64")
    frame["score_sum"] = score.where(scored, 0.0)
    frame["scored_weight_sum"] = weight.where(scored, 0.0)
    frame["merit_weight_sum"] = 0.0
    search = [*keys, "search_id"]
    sub = pd.DataFrame({"rank": rank, "score": score}).assign(**{c: frame[c] for c in search})[scored]
    if len(sub):
        by_rank = sub.sort_values([*search, "rank"], kind="stable")
        by_score = sub.sort_values(
            [*search, "score", "rank"], ascending=[*[True] * len(search), False, True], kind="stable"
        )
        slot_rank = by_rank.groupby(search, sort=False, dropna=False).cumcount()
        slot_score = by_score.groupby(search, sort=False, dropna=False).cumcount()
        positions = pd.Series(
            by_rank["rank"].to_numpy(),
            index=pd.MultiIndex.from_frame(by_rank[search].assign(slot=slot_rank.to_numpy())),
        )
        merit_rank = positions.reindex(pd.MultiIndex.from_frame(by_score[search].assign(slot=slot_score.to_numpy())))
        frame.loc[by_score.index, "merit_weight_sum"] = position_weight(merit_rank.to_numpy())
    out = frame.groupby([*keys, "search_id", *dims], dropna=False, sort=True, as_index=False)[
        list(AGGREGATE_COLUMNS)
    ].sum()
    for col in ("shown", "ranked", "top_k", "scored"):
        out[col] = out[col].astype("int64")
    return out.reset_index(drop=True)
