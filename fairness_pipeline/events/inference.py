"""Infer the proxy dimensions of a candidate from profile data (seed 000's rules, ported to Python).

No demographics are collected: the monitored groups are the candidate's company tier, experience band and specialty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_FAANG_LIKE = (
    "google",
    "meta",
    "facebook",
    "amazon",
    "apple",
    "microsoft",
    "netflix",
    "uber",
    "airbnb",
    "stripe",
    "linkedin",
    "twitter",
    "salesforce",
    "oracle",
    "snap",
    "spotify",
    "doordash",
    "instacart",
    "coinbase",
    "robinhood",
)
_ENTERPRISE = (
    "ibm",
    "cisco",
    "intel",
    "dell",
    "hp",
    "vmware",
    "sap",
    "adobe",
    "workday",
    "servicenow",
    "splunk",
    "atlassian",
    "twilio",
    "datadog",
    "snowflake",
    "palantir",
    "databricks",
)
_STARTUP_MARKERS = ("startup", "seed", "series")

_NOT_LETTERS = re.compile(r"[^a-z]")


def infer_company_tier(companies: Iterable[str]) -> str:
    """``faang`` if any employer is FAANG-like, else ``enterprise``, else ``startup`` by name markers, else ``other``.

    Names are compared lower-cased with non-letters removed, by substring (as in the seed).
    """
    names = [c for c in companies if c]
    normalised = [_NOT_LETTERS.sub("", name.lower()) for name in names]
    if any(known in name for name in normalised for known in _FAANG_LIKE):
        return "faang"
    if any(known in name for name in normalised for known in _ENTERPRISE):
        return "enterprise"
    if any(marker in name.lower() for name in names for marker in _STARTUP_MARKERS):
        return "startup"
    return "other"


def infer_experience_band(years_experience: float | None) -> str:
    """Bands with boundaries 3, 7 and 15 years (lower bound inclusive); unknown experience defaults to ``3-7``."""
    if years_experience is None:
        return "3-7"
    if years_experience < 3:
        return "0-3"
    if years_experience < 7:
        return "3-7"
    if years_experience < 15:
        return "7-15"
    return "15+"


_TITLE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("frontend", ("frontend", "front-end")),
    ("backend", ("backend", "back-end")),
    ("fullstack", ("fullstack", "full-stack")),
    ("devops", ("devops", "sre", "platform")),
    ("data", ("data engineer", "data scientist")),
    ("ml", ("ml", "machine learning", "ai")),
    ("mobile", ("mobile", "ios", "android")),
)
_SKILL_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("frontend", ("react", "vue", "angular", "css", "html", "javascript", "typescript", "nextjs")),
    ("backend", ("java", "python", "go", "rust", "c++", "nodejs", "postgresql", "mongodb")),
    ("devops", ("kubernetes", "docker", "terraform", "aws", "gcp", "azure", "jenkins", "ci/cd")),
    ("data", ("sql", "spark", "hadoop", "airflow", "dbt", "snowflake", "bigquery")),
    ("ml", ("pytorch", "tensorflow", "scikit-learn", "pandas", "numpy", "ml", "deep learning")),
    ("mobile", ("swift", "kotlin", "react native", "flutter", "ios", "android")),
)
_FULLSTACK_MIN_EACH = 2


def infer_specialty(skills: Sequence[str], title: str | None = None) -> str:
    """Specialty from the title first (substring rules in a fixed order), then from the skills.

    Skills: each specialty counts the skills containing one of its keywords. Two or more frontend and two or more
    backend skills make ``fullstack``; otherwise the specialty with the most matches wins (earliest in the rule order
    on a tie); no match gives ``other``.
    """
    title_lower = (title or "").lower()
    for specialty, needles in _TITLE_RULES:
        if any(needle in title_lower for needle in needles):
            return specialty

    lowered = [skill.lower() for skill in skills]
    counts = {
        specialty: sum(1 for skill in lowered if any(keyword in skill for keyword in keywords))
        for specialty, keywords in _SKILL_RULES
    }
    best = max(counts.values(), default=0)
    if best == 0:
        return "other"
    if counts["frontend"] >= _FULLSTACK_MIN_EACH and counts["backend"] >= _FULLSTACK_MIN_EACH:
        return "fullstack"
    return next(specialty for specialty, count in counts.items() if count == best)
