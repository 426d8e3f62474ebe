"""Impact ratios, significance tests and practical-significance checks for one counts frame.

Follows ``docs/fairness-methods.md``. Ratios, the 0.80 boundary, shortfall and flip-flop are computed from integer
cross-products so that, e.g., 60/100 against 75/100 gives exactly 0.8 (not adverse) without a tolerance. Rates are
``x / n`` computed directly; ``selection_rate_frame`` (fairlearn) gives the same numbers, which the tests check.

Reference group: the highest selection rate among *eligible* groups: not ``unknown`` (nor an intersection cell with an
``unknown`` part), at least ``min_share`` of the table's candidates, at least ``min_reference_candidates`` candidates
and ``min_reference_selections`` selections. When no group is eligible nothing is compared (``undefined_reason``
says so); there is no fallback to a small or unknown group. Unknown groups are reported, never compared.

Significance with a reference chosen after looking (the closed-testing gate): each table's compared groups (the
reference and every group compared with it) first get an omnibus test of homogeneity, ``p_omnibus``: Pearson's
chi-square on the K x 2 table when every expected cell is at least 5, otherwise Bonferroni over the K exact
(hypergeometric, doubled one-sided) tests of each group against the rest of the table. A group's ``p_adjusted`` is
max(Holm or Benjamini-Hochberg adjusted pairwise p, p_omnibus): no group is significant unless the table as a whole
differs, which bounds P(any significant | every rate equal) by alpha. With two compared groups the pairwise test is
the omnibus test (``p_omnibus = p_value``). ``p_value`` stays the textbook pairwise p. A reference declared before
looking (``declared_reference``) needs no gate: ``p_omnibus`` is NaN and ``p_adjusted`` the adjusted pairwise p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from fairness_pipeline.events.vocabulary import UNKNOWN_GROUP
from fairness_pipeline.metrics.selection_rates import EMPTY_GROUP_REASON, GROUP_SEPARATOR, validate_counts

KATZ_Z = 1.96
"""Normal quantile of the Katz 95% interval, as written in the methods doc."""
MIN_EXPECTED = 5
"""Below this expected cell count the 2x2 table is tested with Fisher's exact test."""
FISHER = "fisher_exact"
Z_TEST = "two_proportion_z"
ZERO_REFERENCE_REASON = "reference selection rate is 0"
UNKNOWN_GROUP_REASON = "unknown group: counted and reported, never compared"
NO_REFERENCE_REASON = "no eligible reference group"
ALPHA = 0.05
"""Significance level of the tests."""
THRESHOLD = 0.80
"""The four-fifths rule: a ratio strictly below it is adverse (and, when significant, a practical finding)."""
MIN_SHARE = 0.02
"""A group under this share of the table's candidates is left out of the comparisons (the 2% rule)."""
MIN_SAMPLE = 20
"""Groups with fewer candidates are flagged as low samples."""
MIN_REFERENCE_CANDIDATES = 30
"""Default least number of candidates of a reference group (see docs/fairness-methods.md, Calibration)."""
MIN_REFERENCE_SELECTIONS = 5
"""Default least number of selections of a reference group."""
CHI_SQUARE = "pearson_chi_square"
GROUP_VS_REST = "bonferroni_group_vs_rest"

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
    "p_omnibus",
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


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given)."""
    values = np.asarray(p_values, dtype=float)
    return adjusted_p_values(values, np.zeros(len(values), dtype=np.int64), False).tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (same order as given)."""
    values = np.asarray(p_values, dtype=float)
    return adjusted_p_values(values, np.zeros(len(values), dtype=np.int64), True).tolist()


def adjusted_p_values(p_values: np.ndarray, family: np.ndarray, fdr: bool | np.ndarray) -> np.ndarray:
    """Adjusted p-values, each ``family`` (an integer label per value) adjusted on its own.

    Holm step-down: the k-th smallest of m values becomes max over j <= k of min(1, (m - j) p_(j)) (0-based j).
    Benjamini-Hochberg (where ``fdr``, a bool or one per value, constant within a family): min over j >= k of
    min(1, m / (j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p.copy()
    family = np.asarray(family)
    fdr_flags = np.broadcast_to(np.asarray(fdr, dtype=bool), p.shape)
    order = np.lexsort((p, family))  # by family, then p; stable for ties
    sorted_family = family[order]
    frame = pd.DataFrame({"family": sorted_family, "p": p[order]})
    rank = frame.groupby("family", sort=False).cumcount().to_numpy()
    size = frame.groupby("family", sort=False)["p"].transform("size").to_numpy()
    holm_terms = np.minimum(1.0, (size - rank) * frame["p"].to_numpy())
    bh_terms = size / (rank + 1) * frame["p"].to_numpy()
    holm_values = pd.Series(holm_terms).groupby(sorted_family, sort=False).cummax().to_numpy()
    reversed_bh = pd.Series(bh_terms[::-1]).groupby(sorted_family[::-1], sort=False).cummin().to_numpy()[::-1]
    adjusted = np.where(fdr_flags[order], np.minimum(1.0, reversed_bh), holm_values)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def choose_reference(
    counts: pd.DataFrame,
    min_share: float = MIN_SHARE,
    *,
    min_reference_candidates: int = MIN_REFERENCE_CANDIDATES,
    min_reference_selections: int = MIN_REFERENCE_SELECTIONS,
) -> str | None:
    """The reference group: highest selection rate among eligible groups (see the module doc).

    Ties go to the larger n, then to the alphabetically first group name. None when no group is eligible.
    """
    clean = validate_counts(counts)
    tables = _Tables(clean, [], min_share, min_reference_candidates, min_reference_selections, None)
    position = tables.reference_position[0]
    return None if position < 0 else str(clean["group"].iloc[position])


def _meets_share(n: np.ndarray, total: np.ndarray, min_share: float) -> np.ndarray:
    """n / total >= min_share (the same division as the ``share`` column, so the two agree)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (total > 0) & (n / np.where(total > 0, total, 1) >= min_share)


def unknown_mask(groups: pd.Series | np.ndarray) -> np.ndarray:
    """Per group, whether it or a part of an intersection is ``unknown`` (:func:`is_unknown_group`, vectorised)."""
    text = pd.Series(np.asarray(groups, dtype=object)).astype(str)
    wrapped = GROUP_SEPARATOR + text + GROUP_SEPARATOR
    return wrapped.str.contains(f"{GROUP_SEPARATOR}{UNKNOWN_GROUP}{GROUP_SEPARATOR}", regex=False).to_numpy(dtype=bool)


def no_reference_reason(
    min_share: float, min_reference_candidates: int, min_reference_selections: int, declared: str | None = None
) -> str:
    """The ``undefined_reason`` of a table without an eligible reference group."""
    rule = (
        f"known group with at least {min_share:.0%} of the population, n >= {min_reference_candidates} and "
        f"x >= {min_reference_selections}"
    )  # no word "candidate" in stored reasons: documents are checked for candidate ids by that word
    if declared is not None:
        return f"{NO_REFERENCE_REASON}: the declared reference {declared!r} is not a {rule}"
    return f"{NO_REFERENCE_REASON}: no {rule}"


def can_be_reference(
    n: np.ndarray, x: np.ndarray, unknown: np.ndarray, min_reference_candidates: int, min_reference_selections: int
) -> np.ndarray:
    """Per group, whether it is a stable enough yardstick to be the reference (the share rule apart): known, with at
    least ``min_reference_candidates`` candidates and ``min_reference_selections`` selections."""
    return (n > 0) & ~unknown & (n >= min_reference_candidates) & (x >= min_reference_selections)


class _Tables:
    """Per-row facts of many counts tables at once (rows of one table share the values of ``keys``)."""

    def __init__(
        self,
        clean: pd.DataFrame,
        keys: list[str],
        min_share: float,
        min_reference_candidates: int,
        min_reference_selections: int,
        declared_reference: np.ndarray | None,
    ) -> None:
        rows = len(clean)
        self.table = (
            clean.groupby(keys, sort=False, dropna=False).ngroup().to_numpy() if keys else np.zeros(rows, np.int64)
        )
        self.n = clean["n"].to_numpy(dtype=np.int64)
        self.x = clean["x"].to_numpy(dtype=np.int64)
        self.total = np.bincount(self.table, weights=self.n, minlength=1)[self.table].astype(np.int64)
        self.meets_share = _meets_share(self.n, self.total, min_share)
        self.unknown = unknown_mask(clean["group"])
        eligible = self.meets_share & can_be_reference(
            self.n, self.x, self.unknown, min_reference_candidates, min_reference_selections
        )
        if declared_reference is not None:
            declared = np.asarray(declared_reference, dtype=object)
            has_declaration = pd.notna(declared)
            eligible &= ~has_declaration | (clean["group"].to_numpy(dtype=object) == declared)
        # Rates as doubles order exactly: equal fractions give the same correctly rounded double, and two different
        # fractions with denominators below 2**26 differ by more than the spacing of doubles.
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(self.n > 0, self.x / np.where(self.n > 0, self.n, 1), 0.0)
        ranking = pd.DataFrame(
            {"table": self.table, "out": ~eligible, "rate": -rate, "n": -self.n, "group": clean["group"].to_numpy()}
        ).sort_values(["table", "out", "rate", "n", "group"], kind="stable")
        first = ranking.groupby("table", sort=False).head(1)
        first = first[~first["out"]]
        self.reference_position = np.full(self.table.max() + 1 if rows else 0, -1, dtype=np.int64)
        self.reference_position[first["table"].to_numpy()] = first.index.to_numpy()


def impact_ratio_table(
    counts: pd.DataFrame,
    *,
    intersectional: bool = False,
    alpha: float = ALPHA,
    threshold: float = THRESHOLD,
    min_share: float = MIN_SHARE,
    min_sample: int = MIN_SAMPLE,
    min_reference_candidates: int = MIN_REFERENCE_CANDIDATES,
    min_reference_selections: int = MIN_REFERENCE_SELECTIONS,
    declared_reference: str | None = None,
) -> pd.DataFrame:
    """One row per group of ``counts`` (columns group, n, x) with impact ratios, tests and checks (``IMPACT_COLUMNS``).

    Rules, in order of precedence for ``undefined_reason``: an empty group has no rate; an ``unknown`` group is
    reported, never compared; a group under ``min_share`` of the population is reported (counts, rate, share) but
    left out of the comparison; a table without an eligible reference compares nothing; when the reference rate is 0
    every ratio is undefined. Compared columns of such rows are NaN / NA / None, never 0 or 1. The reference row has
    impact ratio 1, shortfall 0, Cohen's h 0 and no test. Every other compared group is tested against the reference
    (Fisher when an expected cell is below 5, else the pooled z-test); the p-values of one table are adjusted
    together (Holm, or Benjamini-Hochberg when ``intersectional``) and gated by the table's omnibus test (module doc).
    ``declared_reference`` names a reference fixed before looking (it must be eligible); then there is no gate.
    """
    return impact_ratio_tables(
        counts,
        [],
        intersectional=intersectional,
        alpha=alpha,
        threshold=threshold,
        min_share=min_share,
        min_sample=min_sample,
        min_reference_candidates=min_reference_candidates,
        min_reference_selections=min_reference_selections,
        declared_reference=None if declared_reference is None else np.full(len(counts), declared_reference, object),
    )


def impact_ratio_tables(
    counts: pd.DataFrame,
    keys: list[str],
    *,
    intersectional: bool | np.ndarray | pd.Series = False,
    alpha: float = ALPHA,
    threshold: float = THRESHOLD,
    min_share: float = MIN_SHARE,
    min_sample: int = MIN_SAMPLE,
    min_reference_candidates: int = MIN_REFERENCE_CANDIDATES,
    min_reference_selections: int = MIN_REFERENCE_SELECTIONS,
    declared_reference: np.ndarray | pd.Series | None = None,
) -> pd.DataFrame:
    """:func:`impact_ratio_table` of many tables at once, vectorised: ``keys`` + ``IMPACT_COLUMNS``, rows in order.

    Rows with the same values of ``keys`` form one table (e.g. tenant, stage pair, dimension). ``intersectional`` is
    one flag for all, or one per row (the same within a table); ``declared_reference`` one group name per row (the
    same within a table; None where the reference is the highest eligible rate). Only Fisher's exact test runs per
    group, for the few comparisons whose expected cell counts are below 5; the omnibus tests are vectorised.
    """
    clean = validate_counts(counts, keys)
    declared = None if declared_reference is None else np.asarray(declared_reference, dtype=object)
    tables = _Tables(clean, keys, min_share, min_reference_candidates, min_reference_selections, declared)
    n, x, table = tables.n, tables.x, tables.table
    groups = clean["group"].to_numpy(dtype=object)
    rows = len(clean)
    has_reference = tables.reference_position[table] >= 0 if rows else np.zeros(0, dtype=bool)
    ref_position = np.where(has_reference, tables.reference_position[table] if rows else 0, 0)
    x_r = np.where(has_reference, x[ref_position] if rows else 0, 0)
    n_r = np.where(has_reference, n[ref_position] if rows else 0, 0)
    is_reference = has_reference & (ref_position == np.arange(rows))
    empty = n == 0
    excluded = ~empty & ~tables.unknown & ~tables.meets_share
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame(
            {
                **{key: clean[key].to_numpy() for key in keys},
                "group": groups,
                "n": n,
                "x": x,
                "selection_rate": np.where(empty, np.nan, x / np.where(empty, 1, n)),
                "share": np.where(tables.total > 0, n / np.where(tables.total > 0, tables.total, 1), np.nan),
                "reference_group": np.where(has_reference, groups[ref_position] if rows else None, None),
                "reference_rate": np.where(n_r > 0, x_r / np.where(n_r > 0, n_r, 1), np.nan),
                "is_reference": is_reference,
                "excluded_small_share": excluded,
                "low_sample": n < min_sample,
            }
        )
    for column in (
        "impact_ratio",
        "statistic",
        "p_value",
        "p_omnibus",
        "p_adjusted",
        "ci_low",
        "ci_high",
        "flip_flop_ratio",
        "cohens_h",
    ):
        out[column] = np.nan
    for column in ("adverse_impact", "significant", "flip_flop"):
        out[column] = pd.array([pd.NA] * rows, dtype="boolean")
    out["shortfall"] = pd.array([pd.NA] * rows, dtype="Int64")
    for column in ("test", "adjustment_method"):
        out[column] = pd.Series([None] * rows, dtype=object)
    generic = no_reference_reason(min_share, min_reference_candidates, min_reference_selections)
    no_reference = np.full(rows, generic, dtype=object)
    if declared is not None:
        for name in pd.unique(declared[pd.notna(declared)]):
            no_reference[declared == name] = no_reference_reason(
                min_share, min_reference_candidates, min_reference_selections, str(name)
            )
    out["undefined_reason"] = first_reasons(
        [
            (empty, EMPTY_GROUP_REASON),
            (tables.unknown, UNKNOWN_GROUP_REASON),
            (excluded, f"excluded: under {min_share:.0%} of the population"),
            (~has_reference, no_reference),
            (x_r == 0, ZERO_REFERENCE_REASON),
        ],
        rows,
    )
    defined = ~empty & ~tables.unknown & ~excluded & has_reference & (x_r != 0)
    reference_rows = defined & is_reference
    out.loc[reference_rows, ["impact_ratio", "cohens_h"]] = [1.0, 0.0]
    out.loc[reference_rows, "adverse_impact"] = False
    out.loc[reference_rows, "shortfall"] = 0
    compared = np.flatnonzero(defined & ~is_reference)
    if compared.size:
        _compare(out, compared, x[compared], n[compared], x_r[compared], n_r[compared], threshold)
        fdr = np.broadcast_to(np.asarray(intersectional, dtype=bool), (rows,))[compared]
        p_value = out["p_value"].to_numpy()[compared]
        adjusted = adjusted_p_values(p_value, table[compared], fdr)
        gated = np.ones(rows, dtype=bool) if declared is None else pd.isna(declared)
        p_omnibus = omnibus_p_values(table, n, x, defined & gated, compared, p_value)
        out.loc[compared, "p_omnibus"] = p_omnibus[compared]
        adjusted = np.where(np.isnan(p_omnibus[compared]), adjusted, np.maximum(adjusted, p_omnibus[compared]))
        out.loc[compared, "p_adjusted"] = adjusted
        out.loc[compared, "adjustment_method"] = np.where(fdr, "fdr_bh", "holm")
        out.loc[compared, "significant"] = adjusted < alpha
    return _set_dtypes(out[[*keys, *IMPACT_COLUMNS]])


def omnibus_p_values(
    table: np.ndarray, n: np.ndarray, x: np.ndarray, members: np.ndarray, compared: np.ndarray, p_value: np.ndarray
) -> np.ndarray:
    """Per row, the omnibus p of its table's ``members`` (the reference and its compared groups); NaN off members.

    Two members: the pairwise p (``p_value``, one per ``compared`` row). More: Pearson's chi-square of homogeneity
    on the K x 2 table (K - 1 degrees of freedom) when every expected cell is at least 5, else Bonferroni over the K
    exact tests of each group against the rest, min(1, K min_k p_k) with p_k = min(1, 2 min(P(X <= x_k),
    P(X >= x_k))), X hypergeometric given the table's margins. Vectorised across tables.
    """
    rows = len(n)
    out = np.full(rows, np.nan)
    tables = int(table.max()) + 1 if rows else 0
    k = np.bincount(table[members], minlength=tables)
    size = np.bincount(table[members], weights=n[members], minlength=tables)
    chosen = np.bincount(table[members], weights=x[members], minlength=tables)
    two = members & (k[table] == 2)
    pairwise = np.full(rows, np.nan)
    pairwise[compared] = p_value
    pair_p = np.full(tables, np.nan)
    compared_two = compared[two[compared]]
    pair_p[table[compared_two]] = pairwise[compared_two]
    out[two] = pair_p[table[two]]
    many = members & (k[table] >= 3)
    if not many.any():
        return out
    rows_many = np.flatnonzero(many)
    t = table[rows_many]
    n_k, x_k = n[rows_many].astype(float), x[rows_many].astype(float)
    total, selected = size[t], chosen[t]
    rate = selected / total
    expected_low = np.minimum(n_k * rate, n_k * (1 - rate))
    smallest = np.full(tables, np.inf)
    np.minimum.at(smallest, t, expected_low)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where((rate > 0) & (rate < 1), (x_k - n_k * rate) ** 2 / (n_k * rate * (1 - rate)), 0.0)
    statistic = np.bincount(t, weights=term, minlength=tables)
    p_chi = chi2.sf(statistic, np.maximum(k - 1, 1))
    sparse = smallest[t] < MIN_EXPECTED  # the exact tests only where the chi-square is not used
    below, above, _ = hypergeometric_tests(x_k[sparse], total[sparse], n_k[sparse], selected[sparse])
    p_min = np.ones(tables)
    np.minimum.at(p_min, t[sparse], np.minimum(1.0, 2 * np.minimum(below, above)))
    p_exact = np.minimum(1.0, k * p_min)
    p_table = np.where(smallest >= MIN_EXPECTED, p_chi, p_exact)
    out[rows_many] = p_table[t]
    return out


def hypergeometric_tests(k, total, good, draws) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(X <= k), P(X >= k) and the two-sided Fisher p (the mass of outcomes no more likely than k, with a relative
    tolerance of 1e-7 as R's ``fisher.test``) of X ~ Hypergeometric(total, good, draws), vectorised over rows.

    The probabilities are built from the exact ratios of consecutive terms over a window about the mean reaching twice
    the distance to k plus 12 standard deviations plus 40 on both sides (beyond it the terms are far below P(k) and
    the tail mass below 1e-30), normalised on the window: they agree with scipy's ``hypergeom`` and ``fisher_exact``
    to about 1e-12, with no Python loop per row.
    """
    k, total, good, draws = (np.asarray(v, dtype=np.int64) for v in (k, total, good, draws))
    lower, upper, fisher = (np.empty(k.shape) for _ in range(3))
    if k.size == 0:
        return lower, upper, fisher
    low = np.maximum(0, draws - (total - good))
    high = np.minimum(good, draws)
    mean = draws * good / np.maximum(total, 1)
    spread = np.sqrt(mean * (total - good) / np.maximum(total, 1) * (total - draws) / np.maximum(total - 1, 1))
    reach = np.ceil(2 * np.abs(k - mean) + 12 * spread + 40).astype(np.int64)
    start = np.clip(np.floor(mean).astype(np.int64) - reach, low, high)
    stop = np.clip(np.ceil(mean).astype(np.int64) + reach, low, high)
    order = np.argsort(stop - start, kind="stable")
    for block in np.array_split(order, max(1, len(order) // 256)):
        width = int((stop[block] - start[block]).max()) + 1
        j = start[block, None] + np.arange(width)
        inside = j <= stop[block, None]
        g, d, t = good[block, None], draws[block, None], total[block, None]
        step = j[:, :-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(g - step) + np.log(d - step) - np.log(step + 1) - np.log(t - g - d + step + 1)
        log_ratio = np.where(inside[:, 1:], log_ratio, 0.0)
        log_p = np.concatenate([np.zeros((len(block), 1)), np.cumsum(log_ratio, axis=1)], axis=1)
        log_p = np.where(inside, log_p, -np.inf)
        weight = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        pmf = weight / weight.sum(axis=1, keepdims=True)
        at = (k[block] - start[block])[:, None]
        here = np.take_along_axis(pmf, at, axis=1)
        column = np.arange(width)[None, :]
        lower[block] = np.minimum(1.0, np.where(column <= at, pmf, 0.0).sum(axis=1))
        upper[block] = np.minimum(1.0, np.where(column >= at, pmf, 0.0).sum(axis=1))
        fisher[block] = np.minimum(1.0, np.where(pmf <= here * (1 + 1e-7), pmf, 0.0).sum(axis=1))
    return lower, upper, fisher


def two_proportion_z(x_g, n_g, x_r, n_r):
    """Pooled two-proportion z statistic of SR_g - SR_r and its two-sided p-value (scalars or arrays)."""
    pooled = (x_g + x_r) / (n_g + n_r)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_g + 1 / n_r))
    z = (x_g / n_g - x_r / n_r) / se
    return z, 2 * norm.sf(np.abs(z))


def katz_log_ratio(x_g, n_g, x_r, n_r):
    """ln(SR_g / SR_r) and its Katz variance 1/x_g - 1/n_g + 1/x_r - 1/n_r (scalars or arrays); when x_g or x_r is 0,
    0.5 is added to all four cells first."""
    zero = (np.asarray(x_g) == 0) | (np.asarray(x_r) == 0)
    a, b = np.asarray(x_g) + 0.5 * zero, np.asarray(n_g) + 1.0 * zero  # 0.5 to each of the two cells of each row
    c, d = np.asarray(x_r) + 0.5 * zero, np.asarray(n_r) + 1.0 * zero
    return np.log((a / b) / (c / d)), 1 / a - 1 / b + 1 / c - 1 / d


def katz_interval(x_g, n_g, x_r, n_r, z: float = KATZ_Z):
    """Katz log interval for SR_g / SR_r (scalars or arrays), from :func:`katz_log_ratio`."""
    log_ratio, variance = katz_log_ratio(x_g, n_g, x_r, n_r)
    half = z * np.sqrt(variance)
    return np.exp(log_ratio - half), np.exp(log_ratio + half)


def first_reasons(rules: list[tuple[np.ndarray, Any]], rows: int) -> np.ndarray:
    """Per row, the reason of the first rule that applies (None when none does). A rule is (mask, reason), the
    reason one text or one text per row."""
    reasons = np.full(rows, None, dtype=object)
    for applies, reason in reversed(rules):  # earlier rules overwrite later ones
        reasons[applies] = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[applies]
    return reasons


def _compare(
    out: pd.DataFrame,
    rows: np.ndarray,
    x_g: np.ndarray,
    n_g: np.ndarray,
    x_r: np.ndarray,
    n_r: np.ndarray,
    threshold: float,
) -> None:
    """Fill the comparison columns of ``rows`` (non-empty, non-reference groups against a reference with x_r > 0)."""
    impact_ratio = (x_g * n_r) / (n_g * x_r)  # exact integer products, one rounding: exact at the 0.80 boundary
    expected_ok = np.minimum(n_g, n_r) * np.minimum(x_g + x_r, n_g + n_r - x_g - x_r) >= MIN_EXPECTED * (n_g + n_r)
    statistic = np.full(len(rows), np.nan)
    p_value = np.full(len(rows), np.nan)
    if expected_ok.any():
        statistic[expected_ok], p_value[expected_ok] = two_proportion_z(
            x_g[expected_ok], n_g[expected_ok], x_r[expected_ok], n_r[expected_ok]
        )
    small = ~expected_ok  # Fisher's exact test, two-sided: the comparisons with small expected counts
    if small.any():
        a, b, c, d = x_g[small], n_g[small] - x_g[small], x_r[small], n_r[small] - x_r[small]
        p_value[small] = hypergeometric_tests(a, a + b + c + d, a + b, a + c)[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.where((b > 0) & (c > 0), (a * d) / np.where((b > 0) & (c > 0), b * c, 1), np.inf)
        statistic[small] = np.where((b + d == 0) | (a + c == 0), np.nan, odds)  # as scipy's fisher_exact
    ci_low, ci_high = katz_interval(x_g, n_g, x_r, n_r)
    lacking = n_g * x_r - x_g * n_r  # n_g * SR_r - x_g, times n_r
    flip_num, flip_den = (x_g + 1) * n_r, n_g * (x_r - 1)
    with np.errstate(divide="ignore"):
        flip_ratio = np.where(flip_den != 0, flip_num / np.where(flip_den != 0, flip_den, 1), np.inf)
    out.loc[rows, "impact_ratio"] = impact_ratio
    out.loc[rows, "adverse_impact"] = impact_ratio < threshold
    out.loc[rows, "test"] = np.where(expected_ok, Z_TEST, FISHER)
    out.loc[rows, "statistic"] = statistic
    out.loc[rows, "p_value"] = p_value
    out.loc[rows, "ci_low"] = ci_low
    out.loc[rows, "ci_high"] = ci_high
    out.loc[rows, "shortfall"] = np.maximum(0, -(-lacking // n_r))  # exact integer ceiling
    out.loc[rows, "flip_flop"] = flip_num >= flip_den
    out.loc[rows, "flip_flop_ratio"] = flip_ratio
    out.loc[rows, "cohens_h"] = 2 * np.arcsin(np.sqrt(x_g / n_g)) - 2 * np.arcsin(np.sqrt(x_r / n_r))


def _set_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes: int64 counts, float64 numbers (NaN when undefined), nullable booleans, object text."""
    table["n"] = table["n"].astype("int64")
    table["x"] = table["x"].astype("int64")
    for col in ("selection_rate", "share", "reference_rate", "impact_ratio", "statistic", "p_value", "p_omnibus"):
        table[col] = table[col].astype("float64")
    for col in ("p_adjusted", "ci_low", "ci_high", "flip_flop_ratio", "cohens_h"):
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


def unanswered_attribute_table(dimension: str, table: pd.DataFrame) -> bool:
    """True for a table (group, n) of a candidate-attribute dimension, or an intersection with one, where every
    candidate is ``unknown``: its tenant loaded no self-identification, so the table says nothing (no reference, no
    comparison) and documents and reports leave it out."""
    from fairness_pipeline.catalogue import INTERSECTION_SEPARATOR, load_catalogue

    if not set(load_catalogue().attribute_dimensions) & set(str(dimension).split(INTERSECTION_SEPARATOR)):
        return False
    return unknown_count(table) == int(table["n"].sum())


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
