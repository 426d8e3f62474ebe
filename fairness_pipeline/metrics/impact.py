"""Impact ratios, significance tests and practical-significance checks for one counts frame.

Follows ``docs/fairness-methods.md``. Ratios, the 0.80 boundary, shortfall and flip-flop are computed from integer
cross-products so that, e.g., 60/100 against 75/100 gives exactly 0.8 (not adverse) without a tolerance. Rates are
``x / n`` computed directly; ``selection_rate_frame`` (fairlearn) gives the same numbers, which the tests check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, norm

from fairness_pipeline.events.vocabulary import UNKNOWN_GROUP
from fairness_pipeline.metrics.selection_rates import EMPTY_GROUP_REASON, GROUP_SEPARATOR, validate_counts

KATZ_Z = 1.96
"""Normal quantile of the Katz 95% interval, as written in the methods doc."""
MIN_EXPECTED = 5
"""Below this expected cell count the 2x2 table is tested with Fisher's exact test."""
FISHER = "fisher_exact"
Z_TEST = "two_proportion_z"
ZERO_REFERENCE_REASON = "reference selection rate is 0"

IMPACT_COLUMNS: tuple[str, ...] = (
    "group",
    "n",
    "x",
    "selection_rate",
    "share",
    "reference_group",
    "reference_rate",
    "is_reference",
    "excluded_small_share",
    "impact_ratio",
    "adverse_impact",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "adjustment_method",
    "significant",
    "ci_low",
    "ci_high",
    "shortfall",
    "flip_flop",
    "flip_flop_ratio",
    "cohens_h",
    "low_sample",
    "undefined_reason",
)


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, m / (rank + 1) * p_values[i])
        adjusted[i] = running
    return adjusted


def choose_reference(counts: pd.DataFrame, min_share: float = 0.02) -> str | None:
    """The reference group: highest selection rate among groups with at least ``min_share`` of the population.

    If no group reaches ``min_share``, the highest rate among all non-empty groups. Ties go to the larger n, then to
    the alphabetically first group name. None when every group is empty.
    """
    clean = validate_counts(counts)
    total = int(clean["n"].sum())
    populated = clean[clean["n"] > 0]
    if populated.empty:
        return None
    eligible = populated[[_meets_share(n, total, min_share) for n in populated["n"].tolist()]]
    pool = eligible if not eligible.empty else populated
    rows = [(int(r.x), int(r.n), str(r.group)) for r in pool.itertuples(index=False)]
    # Highest rate x/n compared exactly via fractions; then larger n; then group name.
    best = rows[0]
    for row in rows[1:]:
        cross = row[0] * best[1] - best[0] * row[1]  # sign of x/n - best_x/best_n
        if cross > 0 or (cross == 0 and (row[1] > best[1] or (row[1] == best[1] and row[2] < best[2]))):
            best = row
    return best[2]


def _meets_share(n: int, total: int, min_share: float) -> bool:
    """True when n / total >= min_share (the same division as the ``share`` column, so the two agree)."""
    return total > 0 and n / total >= min_share


def two_proportion_z(x_g: int, n_g: int, x_r: int, n_r: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic of SR_g - SR_r and its two-sided p-value."""
    pooled = (x_g + x_r) / (n_g + n_r)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_g + 1 / n_r))
    z = (x_g / n_g - x_r / n_r) / se
    return z, float(2 * norm.sf(abs(z)))


def katz_interval(x_g: int, n_g: int, x_r: int, n_r: int, z: float = KATZ_Z) -> tuple[float, float]:
    """Katz log interval for SR_g / SR_r; adds 0.5 to all four cells when x_g or x_r is 0."""
    a, b, c, d = float(x_g), float(n_g), float(x_r), float(n_r)
    if x_g == 0 or x_r == 0:
        a, b, c, d = a + 0.5, b + 1.0, c + 0.5, d + 1.0  # 0.5 to each of the two cells of each row
    log_ratio = math.log((a / b) / (c / d))
    half = z * math.sqrt(1 / a - 1 / b + 1 / c - 1 / d)
    return math.exp(log_ratio - half), math.exp(log_ratio + half)


def impact_ratio_table(
    counts: pd.DataFrame,
    *,
    intersectional: bool = False,
    alpha: float = 0.05,
    threshold: float = 0.80,
    min_share: float = 0.02,
    min_sample: int = 20,
) -> pd.DataFrame:
    """One row per group of ``counts`` (columns group, n, x) with impact ratios, tests and checks (``IMPACT_COLUMNS``).

    Rules, in order of precedence for ``undefined_reason``: an empty group has no rate; a group under ``min_share``
    of the population is reported (counts, rate, share) but left out of the comparison; when the reference rate is 0
    every ratio is undefined. Compared columns of such rows are NaN / NA / None, never 0 or 1. The reference row has
    impact ratio 1, shortfall 0, Cohen's h 0 and no test. Every other compared group is tested against the reference
    (Fisher when an expected cell is below 5, else the pooled z-test), and the p-values of one table are adjusted
    together: Holm, or Benjamini-Hochberg when ``intersectional``. When no group reaches ``min_share``, none is
    excluded and the reference is the highest rate overall.
    """
    clean = validate_counts(counts)
    total = int(clean["n"].sum())
    reference = choose_reference(clean, min_share)
    any_eligible = any(n > 0 and _meets_share(n, total, min_share) for n in clean["n"].tolist())
    ref_row = clean[clean["group"] == reference].iloc[0] if reference is not None else None
    x_r = int(ref_row["x"]) if ref_row is not None else 0
    n_r = int(ref_row["n"]) if ref_row is not None else 0
    reference_rate = x_r / n_r if n_r else math.nan

    rows: list[dict[str, Any]] = []
    for group, n_g, x_g in zip(clean["group"], clean["n"].tolist(), clean["x"].tolist(), strict=True):
        row: dict[str, Any] = dict.fromkeys(IMPACT_COLUMNS)
        is_reference = group == reference
        excluded = any_eligible and not _meets_share(n_g, total, min_share)
        row.update(
            group=group,
            n=n_g,
            x=x_g,
            selection_rate=x_g / n_g if n_g else math.nan,
            share=n_g / total if total else math.nan,
            reference_group=reference,
            reference_rate=reference_rate,
            is_reference=is_reference,
            excluded_small_share=excluded,
            low_sample=n_g < min_sample,
        )
        if n_g == 0:
            row["undefined_reason"] = EMPTY_GROUP_REASON
        elif excluded:
            row["undefined_reason"] = f"excluded: under {min_share:.0%} of the population"
        elif x_r == 0:
            row["undefined_reason"] = ZERO_REFERENCE_REASON
        elif is_reference:
            row.update(impact_ratio=1.0, adverse_impact=False, shortfall=0, cohens_h=0.0)
        else:
            row.update(_compare(x_g, n_g, x_r, n_r, threshold))
        rows.append(row)

    table = pd.DataFrame(rows, columns=list(IMPACT_COLUMNS))
    tested = table["p_value"].notna()
    if tested.any():
        p_values = table.loc[tested, "p_value"].astype(float).tolist()
        adjusted = benjamini_hochberg(p_values) if intersectional else holm(p_values)
        table.loc[tested, "p_adjusted"] = adjusted
        table.loc[tested, "adjustment_method"] = "fdr_bh" if intersectional else "holm"
        table.loc[tested, "significant"] = [p < alpha for p in adjusted]
    return _set_dtypes(table)


def _compare(x_g: int, n_g: int, x_r: int, n_r: int, threshold: float) -> dict[str, Any]:
    """Comparison columns of a non-empty, non-reference group against a reference with x_r > 0."""
    impact_ratio = (x_g * n_r) / (n_g * x_r)  # one rounding: exact at the 0.80 boundary
    expected_ok = min(n_g, n_r) * min(x_g + x_r, n_g + n_r - x_g - x_r) >= MIN_EXPECTED * (n_g + n_r)
    if expected_ok:
        test, (statistic, p_value) = Z_TEST, two_proportion_z(x_g, n_g, x_r, n_r)
    else:
        result = fisher_exact([[x_g, n_g - x_g], [x_r, n_r - x_r]], alternative="two-sided")
        test, statistic, p_value = FISHER, float(result.statistic), float(result.pvalue)
    ci_low, ci_high = katz_interval(x_g, n_g, x_r, n_r)
    lacking = n_g * x_r - x_g * n_r  # n_g * SR_r - x_g, times n_r
    flip_num, flip_den = (x_g + 1) * n_r, n_g * (x_r - 1)
    return {
        "impact_ratio": impact_ratio,
        "adverse_impact": impact_ratio < threshold,
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "shortfall": max(0, -(-lacking // n_r)),  # exact integer ceiling
        "flip_flop": flip_num >= flip_den,
        "flip_flop_ratio": flip_num / flip_den if flip_den else math.inf,
        "cohens_h": 2 * math.asin(math.sqrt(x_g / n_g)) - 2 * math.asin(math.sqrt(x_r / n_r)),
    }


def _set_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes: int64 counts, float64 numbers (NaN when undefined), nullable booleans, object text."""
    table["n"] = table["n"].astype("int64")
    table["x"] = table["x"].astype("int64")
    for col in ("selection_rate", "share", "reference_rate", "impact_ratio", "statistic", "p_value", "p_adjusted"):
        table[col] = table[col].astype("float64")
    for col in ("ci_low", "ci_high", "flip_flop_ratio", "cohens_h"):
        table[col] = table[col].astype("float64")
    for col in ("is_reference", "excluded_small_share", "low_sample"):
        table[col] = table[col].astype(bool)
    for col in ("adverse_impact", "significant", "flip_flop"):
        table[col] = pd.array(table[col].tolist(), dtype="boolean")
    table["shortfall"] = pd.array(table["shortfall"].tolist(), dtype="Int64")
    for col in ("group", "reference_group", "test", "adjustment_method", "undefined_reason"):
        values = [None if value is None or value is pd.NA or value != value else value for value in table[col]]
        table[col] = pd.Series(values, index=table.index, dtype=object)  # None, not NaN, for missing text
    return table


def is_unknown_group(group: str) -> bool:
    """True when the group, or any part of an intersection group, is ``unknown``."""
    return UNKNOWN_GROUP in str(group).split(GROUP_SEPARATOR)


def unknown_count(table: pd.DataFrame) -> int:
    """Candidates in ``unknown`` groups (for intersections: unknown on either dimension)."""
    mask = table["group"].map(is_unknown_group).astype(bool)
    return int(table.loc[mask, "n"].sum())


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts of Python types; NaN and NA become None (infinite ratios stay ``inf``)."""
    records = []
    for record in table.to_dict("records"):
        clean: dict[str, Any] = {}
        for key, value in record.items():
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                clean[key] = None
            elif isinstance(value, np.generic):
                clean[key] = value.item()
            else:
                clean[key] = value
        records.append(clean)
    return records


def summarise_impact(table: pd.DataFrame) -> dict[str, Any]:
    """Headline facts of an impact table, as plain Python values (JSON-ready)."""
    ratios = table.loc[table["impact_ratio"].notna() & ~table["is_reference"], ["group", "impact_ratio"]]
    lowest = ratios.loc[ratios["impact_ratio"].idxmin()] if not ratios.empty else None
    adverse = table["adverse_impact"].fillna(False).astype(bool)
    significant = table["significant"].fillna(False).astype(bool)
    reference = table["reference_group"].dropna()
    return {
        "groups": len(table),
        "candidates": int(table["n"].sum()),
        "reference_group": str(reference.iloc[0]) if not reference.empty else None,
        "lowest_impact_ratio": float(lowest["impact_ratio"]) if lowest is not None else None,
        "lowest_impact_group": str(lowest["group"]) if lowest is not None else None,
        "adverse_groups": table.loc[adverse, "group"].astype(str).tolist(),
        "significant_adverse_groups": table.loc[adverse & significant, "group"].astype(str).tolist(),
        "low_sample_groups": table.loc[table["low_sample"], "group"].astype(str).tolist(),
        "excluded_groups": table.loc[table["excluded_small_share"], "group"].astype(str).tolist(),
        "undefined_groups": table.loc[table["undefined_reason"].notna(), "group"].astype(str).tolist(),
        "unknown_count": unknown_count(table),
    }
