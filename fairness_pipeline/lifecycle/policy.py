"""The retention policy: how many days each kind of data is kept, checked against the regulatory minimum.

A policy is a YAML (or TOML) file: ``minimum_days`` and ``retention_days`` per category (see the packaged
``retention.yaml``). ``FAIRNESS_RETENTION_POLICY`` names the file to use; unset, the packaged one. Categories the
file leaves out keep the packaged ages. A policy is refused (``PolicyError``) when any age is shorter than its
minimum, or the minimum is lowered below :data:`REGULATORY_MINIMUM_DAYS`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

POLICY_ENV = "FAIRNESS_RETENTION_POLICY"
DEFAULT_POLICY = Path(__file__).with_name("retention.yaml")
REGULATORY_MINIMUM_DAYS = 365
"""EEOC 29 CFR 1602.14: one year for employment records; the EU AI Act, Art. 26(6): logs at least six months."""
CATEGORIES = ("events", "rejects", "quarantine", "arrays", "results", "reports")


class PolicyError(ValueError):
    """The policy file cannot be read or asks for less than the regulatory minimum."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Days kept per category; ``source`` is the file it came from."""

    minimum_days: int
    days: dict[str, int]
    source: str

    def cutoffs(self, today: date) -> dict[str, date]:
        """Per category the first day kept: rows of earlier days (or stamped before it, UTC) are removed."""
        return {category: today - timedelta(days=age) for category, age in self.days.items()}


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the retention policy {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise PolicyError(f"the retention policy {path} is not valid: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # yaml.YAMLError
        raise PolicyError(f"the retention policy {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"the retention policy {path} must be a mapping with minimum_days and retention_days")
    return data


def _whole_days(value: object, what: str, source: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{source}: {what} must be a whole number of days >= 1, not {value!r}")
    return value


def parse_policy(data: dict[str, Any], source: Path, defaults: dict[str, int] | None = None) -> RetentionPolicy:
    """Check a policy's contents; categories missing from ``data`` take ``defaults``."""
    unknown = sorted(set(data) - {"minimum_days", "retention_days"})
    if unknown:
        raise PolicyError(f"{source}: unknown key(s) {', '.join(unknown)}; expected minimum_days, retention_days")
    minimum = _whole_days(data.get("minimum_days", REGULATORY_MINIMUM_DAYS), "minimum_days", source)
    if minimum < REGULATORY_MINIMUM_DAYS:
        raise PolicyError(
            f"{source}: minimum_days {minimum} is below the regulatory minimum of {REGULATORY_MINIMUM_DAYS} days "
            "(EEOC 29 CFR 1602.14: one year; EU AI Act Art. 26: six months); it can only be raised"
        )
    ages = data.get("retention_days") or {}
    if not isinstance(ages, dict):
        raise PolicyError(f"{source}: retention_days must map categories to days")
    unknown = sorted(set(ages) - set(CATEGORIES))
    if unknown:
        raise PolicyError(f"{source}: unknown categories {', '.join(unknown)}; expected {', '.join(CATEGORIES)}")
    days = {}
    for category in CATEGORIES:
        if category in ages:
            days[category] = _whole_days(ages[category], f"retention_days.{category}", source)
        elif defaults is not None:
            days[category] = defaults[category]
        else:
            raise PolicyError(f"{source}: retention_days.{category} is missing")
    short = [f"{category} ({age} days)" for category, age in days.items() if age < minimum]
    if short:
        raise PolicyError(
            f"{source}: retention shorter than the minimum of {minimum} days for {', '.join(short)}; "
            "records must be kept at least that long"
        )
    return RetentionPolicy(minimum_days=minimum, days=days, source=str(source))


def load_policy(path: Path | str | None = None) -> RetentionPolicy:
    """The policy in ``path``, else in ``FAIRNESS_RETENTION_POLICY``, else the packaged one. Raises PolicyError."""
    defaults = parse_policy(_read(DEFAULT_POLICY), DEFAULT_POLICY)
    chosen = path or os.environ.get(POLICY_ENV, "").strip()
    if not chosen:
        return defaults
    source = Path(chosen).expanduser()
    return parse_policy(_read(source), source, defaults.days)
