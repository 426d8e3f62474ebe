"""Calibration of the audits and the tenant verdict: false alarms on fair data, power on planted bias.

Run: ``.venv/bin/python bench/calibration.py`` (full: tens of minutes) or ``--quick`` (a minute or two).

Two simulations, both through the project's domain functions (no Dagster, no database):

1. The generator (``fairness_pipeline.synthetic``): ``--seeds`` seeds x 3 tenants x one 30-day window per volume of
   ``--volumes`` (events per tenant-day). Events go through ``audits.from_events`` (the pandas oracles of the SQL),
   ``metrics.window`` (impact tables), the scoring, exposure and slate audits and ``risk.assess``, and the report
   (``reports.builder.build_report``). Fair data has no planted bias; biased data plants
   ``company_tier=startup:<factor>`` at the shortlisting stage in ``tenant-1`` only (factors ``--factors``: the impact
   ratio of shown->shortlisted is about the factor).
2. A pure null model of the functions: count cells drawn directly (multinomial groups with the generator's group
   shares, nested binomial funnel stages with the generator's stage probabilities, equal for every group), through
   ``metrics.window`` and ``risk.assess``; ``--null-tenants`` tenant-windows per volume. Cheap, so many.

``--self-identification`` instead runs the fair generator windows twice on the same seeds, without and with every
candidate's self-identification (the generator's answers: sex and race/ethnicity, about 6% unknown each, one race
category under 2%), so that the window also analyses the LL144 tables (``sex``, ``race_ethnicity``,
``sex+race_ethnicity``): their own false alarms, and the verdict's, with and without them.

Printed per volume: false-alarm rates per audit family (per table: any group significant after the table's own
adjustment, and any *finding* -- significant and below the practical threshold), the verdict levels, reports that
claim a significant adverse impact, and power (``tenant-1`` HIGH or above, and the planted group found), each with a
95% Wilson interval. A machine line (CPU, cores, date) comes first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairness_pipeline import synthetic
from fairness_pipeline.audits import exposure, scoring, slates
from fairness_pipeline.audits.from_events import (
    first_shown_candidates,
    search_aggregates,
    shown_impressions,
    window_cells,
)
from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSION_VALUES, DIMENSIONS, UNKNOWN_GROUP
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, AnalysisSettings, group_counts, impacts_for_counts
from fairness_pipeline.reports.builder import build_report
from fairness_pipeline.risk.assessment import assess, scope_impacts
from fairness_pipeline.risk.classification import load_rules
from fairness_pipeline.risk.levels import LEVELS

WINDOW_DAYS = DEFAULT_ANALYSIS.window_days
PLANTED = ("company_tier", "startup")
PLANTED_PAIR = "shown->shortlisted"
RULE_IDS = tuple(rule.id for rule in load_rules().rules)


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (0, 1 when there are no trials)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_text(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    share = successes / trials if trials else math.nan
    return f"{successes:>4}/{trials:<5} {share:6.1%}  [{low:5.1%}, {high:5.1%}]"


def machine_line() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return (
        f"machine: {model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load {load:.2f}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )


@dataclass
class Tally:
    """Counts of one simulation cell (volume, kind): events per name, and trials per name."""

    hits: Counter = field(default_factory=Counter)
    trials: Counter = field(default_factory=Counter)

    def add(self, name: str, hit: bool, trials: int = 1) -> None:
        self.hits[name] += int(hit)
        self.trials[name] += trials


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("boolean").fillna(False).astype(bool)


def table_alarms(frame: pd.DataFrame, significant: str, ratio: str, threshold: float) -> tuple[int, int, int]:
    """Tables, tables with any significant group, tables with any finding (significant and ratio < threshold)."""
    keys = ["tenant_id", "dimension"] + (["stage_pair"] if "stage_pair" in frame.columns else [])
    tested = frame[frame[ratio].notna()]
    tables = tested.groupby(keys).ngroups
    sig = _flag(tested, significant)
    any_sig = tested[sig].groupby(keys).ngroups
    any_finding = tested[sig & (tested[ratio] < threshold)].groupby(keys).ngroups
    return tables, any_sig, any_finding


def verdict_outcome(
    tally: Tally, impacts: pd.DataFrame, audits: dict[str, pd.DataFrame], window_end: dt.date, biased: bool
) -> None:
    """Assess and report each tenant; count levels, report claims and (in tenant-1 of biased data) detection."""
    for tenant, rows in impacts.groupby("tenant_id", sort=True):
        own = {k: v[v["tenant_id"] == tenant] for k, v in audits.items()}
        assessment = assess(rows.reset_index(drop=True), audits=own, window_end=window_end, resamples=200)
        planted = biased and tenant == "tenant-1"
        kind = "biased" if planted else "fair"
        for level in LEVELS:
            tally.add(f"{kind} verdict {level}", assessment.level == level)
        tally.add(f"{kind} verdict HIGH or CRITICAL", LEVELS.index(assessment.level) >= 2)
        report = build_report(str(tenant), window_end, rows, None, assessment, audits=own, data_source="bench")
        for table_kind in ("selection", "scoring"):
            claims = any(t["summary"]["adverse_impact"] for t in report["detailed_analysis"] if t["kind"] == table_kind)
            tally.add(f"{kind} report claims a significant adverse {table_kind} impact", claims)
        adjusted = scope_impacts(rows.reset_index(drop=True), None, True)
        found = adjusted[
            (adjusted["dimension"] == PLANTED[0])
            & (adjusted["group"] == PLANTED[1])
            & _flag(adjusted, "adverse_impact")
            & _flag(adjusted, "significant")
        ]
        if planted:
            own_table = rows[
                (rows["dimension"] == PLANTED[0])
                & (rows["group"] == PLANTED[1])
                & (rows["stage_pair"] == PLANTED_PAIR)
                & _flag(rows, "adverse_impact")
                & _flag(rows, "significant")
            ]
            tally.add("biased planted group found (its table's own adjustment)", len(own_table) > 0)
            tally.add("biased planted group found (verdict adjustment)", len(found) > 0)
            tally.add("biased HIGH or above", LEVELS.index(assessment.level) >= 2)
        raised = {rule["rule"] for rule in assessment.applied_rules if rule["changed"]}
        for rule in RULE_IDS:
            tally.add(f"{kind} level raised by rule {rule}", rule in raised)


def cells_with_answers(
    events: pd.DataFrame, first: dt.date, last: dt.date, answers: pd.DataFrame, attributes: list[str]
) -> pd.DataFrame:
    """``window_cells`` with each candidate's answers as further columns (None: unknown): the candidates are split by
    their combination of answers, which a candidate keeps for the whole window, and each part counted apart."""
    keyed = events.merge(answers, on=["tenant_id", "candidate_id"], how="left", validate="many_to_one")
    combination = keyed[attributes].astype(object).fillna(UNKNOWN_GROUP)
    parts = []
    for values, part in keyed.groupby([combination[a] for a in attributes], sort=True):
        cells = window_cells(part.drop(columns=attributes), first, last)
        for name, value in zip(attributes, values, strict=True):
            cells[name] = None if value == UNKNOWN_GROUP else value
        parts.append(cells)
    return pd.concat(parts, ignore_index=True)


def generated_answers(config: synthetic.GeneratorConfig) -> tuple[pd.DataFrame, list[str]]:
    """Every pool candidate's self-identification (``declined`` and blank as None) and the attribute names."""
    answers = pd.concat(list(synthetic.attribute_frames(config)), ignore_index=True)
    attributes = [c for c in answers.columns if c not in ("tenant_id", "candidate_id")]
    for name in attributes:
        known = answers[name].astype(object)
        answers[name] = known.where(known.notna() & (known != "declined"), None)
    return answers, attributes


def generator_window(
    volume: int,
    seed: int,
    factor: float | None,
    n_boot: int,
    settings: AnalysisSettings,
    tally: Tally,
    self_identified: bool = False,
) -> None:
    """One seed of the generator: 3 tenants, one 30-day window, every audit and the verdict; with
    ``self_identified``, every candidate's answers too (the LL144 tables)."""
    bias = (f"{PLANTED[0]}={PLANTED[1]}:{factor}",) if factor is not None else ()
    config = synthetic.GeneratorConfig(
        seed=seed,
        tenants=3,
        events_per_day=volume,
        days=WINDOW_DAYS,
        bias=bias,
        biased_tenants=("tenant-1",) if bias else None,
    )
    events = pd.concat(list(synthetic.generate_events(config)), ignore_index=True)
    first, last = config.start, config.end - dt.timedelta(days=1)
    if self_identified:
        answers, attributes = generated_answers(config)
        cells = cells_with_answers(events, first, last, answers, attributes)
    else:
        cells = window_cells(events, first, last)
    impacts = impacts_for_counts(group_counts(cells, settings), settings)
    ll144 = impacts["dimension"].isin(["sex", "race_ethnicity", "sex+race_ethnicity"])
    for name, frame in (("LL144", impacts[ll144]), ("proxy", impacts[~ll144])):
        if factor is None and len(frame):
            tables, any_sig, any_finding = table_alarms(frame, "significant", "impact_ratio", settings.threshold)
            tally.hits[f"{name} impact tables any significant"] += any_sig
            tally.trials[f"{name} impact tables any significant"] += tables
            tally.hits[f"{name} impact tables with a finding"] += any_finding
            tally.trials[f"{name} impact tables with a finding"] += tables
    candidates = first_shown_candidates(events, first, last)
    scores = scoring.scoring_rate_ratios(scoring.scoring_cells(candidates), settings)
    shown = shown_impressions(events, first, last)
    aggregates = search_aggregates(shown, keys=("tenant_id", "day"))
    ranks = exposure.rank_exposure(aggregates, settings, n_boot=n_boot, seed=seed)
    slate = slates.slate_concentration(aggregates, keys=("tenant_id", "day"), window_days=WINDOW_DAYS).summary
    fair = impacts if factor is None else impacts[impacts["tenant_id"] != "tenant-1"]
    for name, frame, significant, ratio in (
        ("impact", fair, "significant", "impact_ratio"),
        (
            "scoring",
            scores if factor is None else scores[scores["tenant_id"] != "tenant-1"],
            "significant",
            "impact_ratio",
        ),
        ("exposure", ranks, "significant", "exposure_ratio"),
        ("treatment", ranks, "treatment_significant", "treatment_ratio"),
        ("merit", ranks, "merit_significant", "merit_ratio"),
    ):
        if factor is not None and name in ("exposure", "treatment", "merit"):
            frame = frame[frame["tenant_id"] != "tenant-1"]
        singles = frame[~frame["dimension"].str.contains("+", regex=False)]
        for scope, part in (("single", singles), ("all", frame)):
            tables, any_sig, any_finding = table_alarms(part, significant, ratio, settings.threshold)
            tally.hits[f"{name} ({scope}) tables any significant"] += any_sig
            tally.hits[f"{name} ({scope}) tables with a finding"] += any_finding
            tally.trials[f"{name} ({scope}) tables any significant"] += tables
            tally.trials[f"{name} ({scope}) tables with a finding"] += tables
    slate_fair = slate if factor is None else slate[slate["tenant_id"] != "tenant-1"]
    for _tenant, days in slate_fair.groupby("tenant_id"):
        tally.add("slates: windows with a significant day", bool(_flag(days, "excess_significant").any()))
    audits = {
        "scoring_rate": scores.rename(columns={"above_median": "x"}),
        "exposure": ranks,
        "slate": slate[slate["day"] == last].rename(columns={"assessed": "slates"}),
    }
    verdict_outcome(tally, impacts, audits, last, factor is not None)


def null_cells(rng: np.random.Generator, candidates: int, tenant: str) -> pd.DataFrame:
    """Window cells of one fair tenant drawn from the null model: every group has the same funnel probabilities."""
    values = {d: [*DIMENSION_VALUES[d], UNKNOWN_GROUP] for d in DIMENSIONS}
    shares = {d: np.array([*(np.asarray(synthetic.GROUP_PROPORTIONS[d]) * 0.98), 0.02]) for d in DIMENSIONS}
    grid = pd.MultiIndex.from_product([values[d] for d in DIMENSIONS], names=list(DIMENSIONS)).to_frame(index=False)
    probs = np.ones(len(grid))
    for d in DIMENSIONS:
        probs *= grid[d].map(dict(zip(values[d], shares[d], strict=True))).to_numpy()
    shown = rng.multinomial(candidates, probs / probs.sum())
    clicked = rng.binomial(shown, synthetic._mean_click_prob(20))
    stages = {"shown": shown, "clicked": clicked}
    previous = clicked
    for stage, p in synthetic.STAGE_PROBS.items():
        previous = rng.binomial(previous, p)
        stages[stage] = previous
    parts = []
    for base, chosen in DEFAULT_STAGE_PAIRS:
        part = grid.assign(tenant_id=tenant, stage_pair=f"{base}->{chosen}", n=stages[base], x=stages[chosen])
        parts.append(part[part["n"] > 0])
    return pd.concat(parts, ignore_index=True)


def null_model(volume: int, tenants: int, seed: int, settings: AnalysisSettings, tally: Tally) -> None:
    """``tenants`` fair tenant-windows of the null model at ``volume`` events per tenant-day."""
    rng = np.random.default_rng([seed, volume])
    per_event = synthetic.expected_events_per_search(20) / 20  # events per shown impression
    # Unique candidates shown in 30 days: impressions spread over a pool three times their number.
    impressions = volume * WINDOW_DAYS / per_event
    candidates = int(synthetic.DEFAULT_POOL_FACTOR * impressions * (1 - math.exp(-1 / synthetic.DEFAULT_POOL_FACTOR)))
    window_end = dt.date(2026, 1, 30)
    for t in range(tenants):
        cells = null_cells(rng, candidates, f"null-{t}")
        impacts = impacts_for_counts(group_counts(cells, settings), settings)
        tables, any_sig, any_finding = table_alarms(impacts, "significant", "impact_ratio", settings.threshold)
        tally.hits["impact (all) tables any significant"] += any_sig
        tally.hits["impact (all) tables with a finding"] += any_finding
        tally.trials["impact (all) tables any significant"] += tables
        tally.trials["impact (all) tables with a finding"] += tables
        verdict_outcome(tally, impacts, {}, window_end, False)


def print_tally(title: str, tally: Tally) -> None:
    print(f"\n{title}")
    for name in sorted(tally.trials):
        print(f"  {name:<58} {rate_text(tally.hits[name], tally.trials[name])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds at 500 and 1,500 events; 50 null tenants")
    parser.add_argument("--seeds", type=int, default=12, help="generator seeds per volume and kind (3 tenants each)")
    parser.add_argument("--volumes", type=int, nargs="+", default=[500, 1500, 4000])
    parser.add_argument("--factors", type=float, nargs="*", default=[0.6, 0.7, 0.8])
    parser.add_argument("--null-tenants", type=int, default=400, help="null-model tenant-windows per volume")
    parser.add_argument("--n-boot", type=int, default=500, help="exposure bootstrap resamples")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument(
        "--self-identification",
        action="store_true",
        help="fair generator windows only, without and with every candidate's self-identification (LL144 tables)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.volumes, args.null_tenants, args.factors = 2, [500, 1500], 50, [0.7]
    print(machine_line())
    print(
        f"seeds {args.seeds}, volumes {args.volumes}, factors {args.factors}, null tenants {args.null_tenants}, "
        f"exposure bootstrap {args.n_boot}"
    )
    settings = AnalysisSettings()
    started = time.perf_counter()
    if args.self_identification:
        for volume in args.volumes:
            for self_identified in (False, True):
                tally = Tally()
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    generator_window(volume, seed, None, args.n_boot, settings, tally, self_identified)
                label = "with self-identification" if self_identified else "proxies only"
                elapsed = time.perf_counter() - started
                print_tally(f"generator, fair, {label}, {volume} events per tenant-day ({elapsed:.0f} s)", tally)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        return 0
    for volume in args.volumes:
        tally = Tally()
        null_model(volume, args.null_tenants, args.first_seed, settings, tally)
        print_tally(f"null model, {volume} events per tenant-day ({time.perf_counter() - started:.0f} s)", tally)
        tally = Tally()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            generator_window(volume, seed, None, args.n_boot, settings, tally)
        print_tally(f"generator, fair, {volume} events per tenant-day ({time.perf_counter() - started:.0f} s)", tally)
        for factor in args.factors:
            tally = Tally()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                generator_window(volume, seed, factor, args.n_boot, settings, tally)
            print_tally(
                f"generator, {PLANTED[0]}={PLANTED[1]}:{factor} in tenant-1, {volume} events per tenant-day "
                f"({time.perf_counter() - started:.0f} s)",
                tally,
            )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
