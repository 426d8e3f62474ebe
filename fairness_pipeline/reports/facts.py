"""The facts a report states about the audited tool and its data, read from a TOML file.

The packaged ``facts.toml`` holds the project's data source and its explanation; a deployment copies it and names
its copy in ``$FAIRNESS_REPORT_FACTS`` (or ``fairness-pipeline report --facts FILE``) to add the tool's distribution
date, the auditor and the employer. ``reports.builder.apply_facts`` restates an already built report with other facts.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

FACTS_ENV = "FAIRNESS_REPORT_FACTS"
PACKAGED_FACTS = Path(__file__).with_name("facts.toml")
TEXT_KEYS = ("data_source", "data_explanation", "auditor", "employer")
KEYS = (*TEXT_KEYS, "tool_distribution_date")


class FactsError(ValueError):
    """A facts file that cannot be read or holds something else than the known keys."""


@dataclass(frozen=True)
class ReportFacts:
    data_source: str
    data_explanation: str
    tool_distribution_date: date | None = None
    auditor: str | None = None
    employer: str | None = None
    source: str = str(PACKAGED_FACTS)


def _text(path: Path, data: dict[str, Any], key: str, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not " ".join(value.split()):
        raise FactsError(f"{path}: {key!r} must be non-empty text")
    return " ".join(value.split())


def load_facts(path: str | Path | None = None) -> ReportFacts:
    """The facts of ``path``, else of ``$FAIRNESS_REPORT_FACTS``, else the packaged file; missing required keys
    (data_source, data_explanation) are taken from the packaged file."""
    chosen = Path(path) if path is not None else Path(os.environ.get(FACTS_ENV, "").strip() or PACKAGED_FACTS)
    try:
        data = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FactsError(f"cannot read the report facts {chosen}: {exc}") from exc
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise FactsError(f"{chosen}: unknown keys {unknown}; expected some of {list(KEYS)}")
    if chosen != PACKAGED_FACTS:
        packaged = tomllib.loads(PACKAGED_FACTS.read_text(encoding="utf-8"))
        data = {"data_source": packaged["data_source"], "data_explanation": packaged["data_explanation"], **data}
    released = data.get("tool_distribution_date")
    if isinstance(released, str):
        try:
            released = date.fromisoformat(released)
        except ValueError as exc:
            raise FactsError(f"{chosen}: tool_distribution_date {released!r} is not YYYY-MM-DD") from exc
    if released is not None and not isinstance(released, date):
        raise FactsError(f"{chosen}: tool_distribution_date must be a date (YYYY-MM-DD)")
    return ReportFacts(
        data_source=_text(chosen, data, "data_source", True) or "",
        data_explanation=_text(chosen, data, "data_explanation", True) or "",
        tool_distribution_date=released,
        auditor=_text(chosen, data, "auditor", False),
        employer=_text(chosen, data, "employer", False),
        source=str(chosen),
    )


def facts_section(facts: ReportFacts) -> dict[str, Any]:
    """The report's ``data_source`` section."""
    return {
        "name": facts.data_source,
        "explanation": facts.data_explanation,
        "auditor": facts.auditor,
        "employer": facts.employer,
    }
