"""Published version of a report: small cells suppressed, derived sections rebuilt from the suppressed data.

Rules, with k = ``min_cell`` (default from the report, 5):

- Primary: a group's count n is hidden when 0 < n < k (shown as ``"< k"``); its selected count x when 0 < x < k
  (``"< k"``) or when the not-selected count 0 < n - x < k (``"> n-k"``). Zeros are shown: they single nobody out.
  When a group has a hidden count, everything computed from it (rate, share, impact ratio, interval, test statistic,
  p-values, shortfall, flip-flop ratio, Cohen's h) is withheld (None) and the row is marked ``suppressed``. Its
  finding label (e.g. "insufficient evidence") stays: it is not a count.
- Reference: when the reference group's counts are hidden, its rate and every impact ratio of the table are withheld
  (a group's rate divided by its ratio would give the reference rate back).
- Complementary: within a table, when exactly one group's n (or x) is hidden, the next smallest non-zero n (or x) is
  hidden too (shown as ``"suppressed"``: it is not under k), so the table total does not give the hidden count back;
  the table's unknown count is hidden with the unknown group's n.
- Table totals, unknown counts, demographic parity (withheld when any group is suppressed), trend points, and the
  groups named in the risk assessment follow the same rules.

Limitation: linked tables (an intersection's cells add up to the single-dimension counts) are not protected against
each other; treat the published format as a disclosure aid, not a formal statistical-disclosure guarantee.
"""

from __future__ import annotations

from typing import Any

from fairness_pipeline.metrics.impact import is_unknown_group
from fairness_pipeline.reports.builder import complete_report
from fairness_pipeline.reports.interpretation import withheld_counts
from fairness_pipeline.reports.schema import copy_report

DERIVED_FIELDS: tuple[str, ...] = (
    "selection_rate",
    "share",
    "impact_ratio",
    "statistic",
    "p_value",
    "p_adjusted",
    "ci_low",
    "ci_high",
    "shortfall",
    "flip_flop_ratio",
    "cohens_h",
    "table_p_adjusted",
)
"""Group fields computed from the counts, withheld when a count is hidden."""
RATIO_FIELDS: tuple[str, ...] = (
    "impact_ratio",
    "statistic",
    "p_value",
    "p_adjusted",
    "ci_low",
    "ci_high",
    "shortfall",
    "flip_flop_ratio",
    "cohens_h",
    "table_p_adjusted",
)
"""Fields that depend on the reference group's counts."""


def hidden(n: Any, x: Any, k: int) -> tuple[bool, bool]:
    """(n is hidden, x is hidden) for counts n and x under the primary rule."""
    if not isinstance(n, int) or not isinstance(x, int):
        return False, False
    return 0 < n < k, 0 < x < k or 0 < n - x < k


SUPPRESSED = "suppressed"
"""How a count hidden by complementary suppression is shown (it is not under k, so '< k' would be false)."""


def shown_n(n: int, k: int) -> str:
    return f"< {k}" if n < k else SUPPRESSED


def shown_x(n: int, x: int, k: int) -> str:
    """'< k' when x (or n, hence x) is under k; '> n-k' when the not-selected count is; else 'suppressed'."""
    if 0 < x < k or n < k:
        return f"< {k}"
    return f"> {n - k}" if 0 < n - x < k else SUPPRESSED


def _hide_row(row: dict[str, Any], hide_n: bool, hide_x: bool, k: int) -> int:
    """Hide the counts of one row (and what is computed from them); returns the number of cells hidden."""
    n, x = row["n"], row["x"]
    row["n"] = shown_n(n, k) if hide_n else n
    row["x"] = shown_x(n, x, k) if hide_x or hide_n else x
    for field in (*DERIVED_FIELDS, "rate"):
        if field in row:
            row[field] = None
    row["suppressed"] = True
    return int(hide_n) + int(hide_x or hide_n)


def suppress_rows(rows: list[dict[str, Any]], k: int) -> int:
    """Primary and complementary suppression of one table's rows (in place); returns the cells hidden."""
    flags = [list(hidden(r["n"], r["x"], k)) for r in rows]
    for column, key in ((0, "n"), (1, "x")):
        if sum(f[column] for f in flags) == 1:
            others = [i for i, r in enumerate(rows) if not flags[i][column] and isinstance(r[key], int) and r[key] > 0]
            if others:
                flags[min(others, key=lambda i: rows[i][key])][column] = True
    hidden_cells = 0
    for row, (hide_n, hide_x) in zip(rows, flags, strict=True):
        if hide_n or hide_x:
            hidden_cells += _hide_row(row, hide_n, hide_x, k)
    return hidden_cells


def _suppress_table(table: dict[str, Any], k: int) -> int:
    rows = table["groups"]
    reference = next((r for r in rows if r.get("is_reference")), None)
    cells = suppress_rows(rows, k)
    if reference is not None and reference["suppressed"]:
        table["reference_rate"] = None
        table["ratios_suppressed"] = True
        for row in rows:
            for field in RATIO_FIELDS:
                row[field] = None
    hide_n, hide_x = hidden(table["n"], table["x"], k)
    if hide_n or hide_x:
        n = table["n"]
        table["n"] = shown_n(n, k) if hide_n else n
        table["x"] = shown_x(n, table["x"], k)
        table["overall_rate"] = None
        cells += int(hide_n) + 1
    if any(r["suppressed"] for r in rows):
        table["dp_ratio"] = table["dp_difference"] = None
    unknown = table.get("unknown_count")
    unknown_hidden = any(r["suppressed"] and not isinstance(r["n"], int) and is_unknown_group(r["group"]) for r in rows)
    if isinstance(unknown, int) and (0 < unknown < k or unknown_hidden):
        table["unknown_count"] = shown_n(unknown, k)
        cells += 1
    return cells


def _suppress_finding(finding: dict[str, Any] | None, k: int) -> bool:
    """Hide the counts of a group named in the risk assessment; True when hidden."""
    if not finding or "n" not in finding:
        return False
    hide_n, hide_x = hidden(finding["n"], finding.get("x", 0), k)
    if not (hide_n or hide_x):
        return False
    n = finding["n"]
    finding["n"] = shown_n(n, k) if hide_n else n
    if "x" in finding:
        finding["x"] = shown_x(n, finding["x"], k)
    for field in (
        "impact_ratio",
        "p_adjusted",
        "table_p_adjusted",
        "gap",
        "evidence_weight",
        "fitted_change",
        "last_impact_ratio",
    ):
        if field in finding:
            finding[field] = None
    finding["suppressed"] = True
    return True


def _suppress_risk(risk: dict[str, Any], k: int) -> None:
    for component in risk["components"].values():
        _suppress_finding(component.get("driver"), k)
    for rule in risk["applied_rules"]:
        if _suppress_finding(rule.get("finding"), k):
            f = rule["finding"]
            rule["reason"] = (
                f"Condition met for {f['group']} ({f['dimension']}, {f['stage_pair']}); its figures are withheld: "
                f"{withheld_counts(f, k)}."
            )


def publish_report(report: dict[str, Any], min_cell: int | None = None) -> dict[str, Any]:
    """A suppressed copy of an internal report; the input is left unchanged. Already published reports are
    returned as a copy (suppression is not applied twice)."""
    if report["publication"]["suppressed"]:
        return copy_report(report)
    k = min_cell if min_cell is not None else report["publication"]["min_cell"]
    if k < 1:
        raise ValueError("min_cell must be at least 1")
    out = copy_report(report)
    cells = sum(_suppress_table(t, k) for t in out["detailed_analysis"])
    for chart in out["charts"].get("trend", []):
        for series in chart["series"]:
            for point in series["points"]:
                hide_n, hide_x = hidden(point["n"], point["x"], k)
                if hide_n or hide_x:
                    cells += _hide_row(point, hide_n, hide_x, k)
    _suppress_risk(out["risk_assessment"], k)
    out["publication"] = {"suppressed": True, "min_cell": k, "suppressed_cells": cells}
    return complete_report(out)
