"""What an alert says: typed payloads that cannot hold a candidate id, and the message the channels deliver.

A payload is built only from fields this code controls: the tenant, the level, numbers (score and its interval,
component values, impact ratios, adjusted p values), dates, names from fixed vocabularies (stage pairs, dimensions
and groups of the dimension catalogue, risk components, the ids of the risk rule set, Dagster job names, run UUIDs)
and texts rendered from this module's templates over those fields. There is no free-text field: a value that is not
of its field's kind is refused when the payload is built, with a :class:`PayloadError` naming the field (never the
value). So no candidate id can reach an alert, whatever the ids look like (``3``, ``0.60``, ``HIGH``), and nothing
has to be scanned against the database.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from numbers import Integral, Real
from typing import Any, ClassVar
from uuid import UUID

from fairness_pipeline.alerts.model import LEVELS, AlertRecord, PayloadError
from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.events.vocabulary import EVENT_TYPES, UNKNOWN_GROUP

OPERATIONAL_TENANT = "operations"
"""Operational alerts concern the pipeline, not a tenant; they share the channels and the outbox."""

DIMENSION_SEPARATOR = "+"
"""Joins the two dimensions of an intersection (``company_tier+experience_band``), as in ``metrics/``."""
GROUP_SEPARATOR = "|"
"""Joins the two groups of an intersection (``startup|0-3``), as in ``metrics/``."""

FINDING_CONDITIONS = frozenset({"significant_adverse", "insufficient_evidence", "adverse_impact"})
"""Rule conditions (``risk/classification.py``) that hold because of a finding: their rule carries its worst one."""

REASON_TEMPLATES: dict[str, str] = {
    "significant_adverse": "statistically and practically significant adverse impact (impact ratio below "
    "{threshold:.2f}); lowest: {group} ({dimension}, {stage_pair}) at {impact_ratio:.2f}{p_text}",
    "insufficient_evidence": "large ratio gap (impact ratio below {threshold:.2f}) on small numbers, not "
    "statistically significant; lowest: {group} ({dimension}, {stage_pair}) at {impact_ratio:.2f}",
    "adverse_impact": "impact ratio below {threshold:.2f}; lowest: {group} ({dimension}, {stage_pair}) at "
    "{impact_ratio:.2f}{p_text}",
    "components_at_least": "{count} risk components at or above {threshold:.2f}: {names}",
    "no_comparison": "no group could be compared with a reference group",
}
"""The sentence of each rule condition, over fields of the payload only."""
RULE_REASON = "{rule} ({level_before} -> {level_after}): {text}."
OPERATIONAL_REASON = "run {run_id} of {job} failed; its error is in the Dagster run log, not in this alert."
REPORT_LINK = "fairness-pipeline report --tenant {tenant} --date {day}"

_DAGSTER_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
"""Dagster's rule for job names (``^[A-Za-z0-9_]+$``), with a length limit."""
_TENANT_MAX = 255
_RULE_ID = "the id of a rule of the risk rule set, with its condition"


# --- field checks: each returns the value in its canonical type or raises naming the field --------------------------


def _refuse(name: str, expected: str) -> PayloadError:
    return PayloadError(f"payload field {name} must be {expected}")


def _number(name: str, value: Any, *, unit: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _refuse(name, "a number")
    number = float(value)
    if not math.isfinite(number) or (unit and not 0.0 <= number <= 1.0):
        raise _refuse(name, "a number in [0, 1]" if unit else "a finite number")
    return number


def _optional_number(name: str, value: Any, *, unit: bool = False) -> float | None:
    return None if value is None else _number(name, value, unit=unit)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise _refuse(name, "a count (a whole number >= 0)")
    return int(value)


def _known(name: str, value: Any, allowed: Collection[str], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _refuse(name, what)
    return value


def _level(name: str, value: Any) -> str:
    return _known(name, value, LEVELS, f"one of {', '.join(LEVELS)}")


def _day(name: str, value: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _refuse(name, "a date")
    return value


def _tenant(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _TENANT_MAX or not value.isprintable():
        raise _refuse(name, f"a tenant id (printable, 1 to {_TENANT_MAX} characters)")
    return value


def _stage_pair(name: str, value: Any) -> str:
    baseline, _, selection = value.partition("->") if isinstance(value, str) else ("", "", "")
    if baseline not in EVENT_TYPES or selection not in EVENT_TYPES or baseline == selection:
        raise _refuse(name, "a stage pair of two event types, such as shown->shortlisted")
    return value


def _dimensions(name: str, value: Any) -> tuple[str, ...]:
    """A catalogue dimension (a proxy or an attribute such as ``sex``) or an intersection of distinct catalogue
    dimensions (``sex+race_ethnicity``), as its dimension names."""
    catalogue = load_catalogue()
    parts = tuple(value.split(DIMENSION_SEPARATOR)) if isinstance(value, str) else ()
    if not parts or len(set(parts)) != len(parts) or not all(part in catalogue for part in parts):
        raise _refuse(name, f"a catalogue dimension ({', '.join(catalogue.names)}) or an intersection a+b of them")
    return parts


def _group(name: str, value: Any, dimensions: tuple[str, ...]) -> str:
    catalogue = load_catalogue()
    parts = value.split(GROUP_SEPARATOR) if isinstance(value, str) else []
    if len(parts) != len(dimensions) or any(
        part not in (*catalogue.values(dimension), UNKNOWN_GROUP)
        for part, dimension in zip(parts, dimensions, strict=True)
    ):
        raise _refuse(name, "a group of its dimension's vocabulary (a|b for an intersection)")
    return value


@functools.cache
def _component_names() -> tuple[str, ...]:
    from fairness_pipeline.risk.components import COMPONENTS

    return COMPONENTS


def _rule_conditions(rules: Any = None) -> dict[str, tuple[str, float | None]]:
    """Rule id -> (condition, threshold) of every rule of the rule set (the shipped ``risk/rules.yaml`` by default),
    contexts' added rules included; the threshold is the ``below`` or ``value`` parameter."""
    if rules is None:
        from fairness_pipeline.risk.classification import load_rules

        rules = load_rules()
    every = [*rules.rules, *(rule for context in rules.contexts.values() for rule in context.add_rules)]
    return {rule.id: (rule.condition, rule.params.get("below", rule.params.get("value"))) for rule in every}


# --- the payloads ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The worst finding behind a rule: a group of a dimension on a stage pair, its impact ratio and adjusted p."""

    stage_pair: str
    dimension: str
    group: str
    impact_ratio: float
    p_adjusted: float | None = None
    where: str = field(default="finding", repr=False, compare=False)

    def __post_init__(self) -> None:
        dimensions = _dimensions(f"{self.where}.dimension", self.dimension)
        _set(self, "stage_pair", _stage_pair(f"{self.where}.stage_pair", self.stage_pair))
        _set(self, "group", _group(f"{self.where}.group", self.group, dimensions))
        _set(self, "impact_ratio", _number(f"{self.where}.impact_ratio", self.impact_ratio))
        _set(self, "p_adjusted", _optional_number(f"{self.where}.p_adjusted", self.p_adjusted, unit=True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage_pair": self.stage_pair,
            "dimension": self.dimension,
            "group": self.group,
            "impact_ratio": self.impact_ratio,
            "p_adjusted": self.p_adjusted,
        }


@dataclass(frozen=True)
class AppliedRule:
    """A risk rule whose condition held: its id, condition and threshold, the level change, its worst finding."""

    rule: str
    condition: str
    threshold: float | None
    level_before: str
    level_after: str
    finding: Finding | None = None
    where: str = field(default="rule", repr=False, compare=False)

    def __post_init__(self) -> None:
        _known(f"{self.where}.condition", self.condition, REASON_TEMPLATES, "a rule condition of risk/rules.yaml")
        _set(self, "threshold", _optional_number(f"{self.where}.threshold", self.threshold))
        _level(f"{self.where}.level_before", self.level_before)
        _level(f"{self.where}.level_after", self.level_after)
        if (self.finding is not None) != (self.condition in FINDING_CONDITIONS):
            raise PayloadError(f"payload field {self.where}.finding must be given exactly for finding conditions")
        if self.finding is not None and not isinstance(self.finding, Finding):
            raise _refuse(f"{self.where}.finding", "a Finding")
        if self.condition != "no_comparison" and self.threshold is None:
            raise _refuse(f"{self.where}.threshold", "a number for this condition")

    def check_rule(self, known: Mapping[str, tuple[str, float | None]]) -> None:
        if not isinstance(self.rule, str) or known.get(self.rule, (None,))[0] != self.condition:
            raise _refuse(f"{self.where}.rule", _RULE_ID)

    def reason(self, components: Mapping[str, float | None]) -> str:
        fields: dict[str, Any] = {"threshold": self.threshold}
        if self.finding is not None:
            p = self.finding.p_adjusted
            fields |= self.finding.as_dict() | {"p_text": "" if p is None else f", adjusted p = {p:.2g}"}
        if self.condition == "components_at_least":
            names = [n for n, v in components.items() if v is not None and v >= (self.threshold or 0.0)]
            fields |= {"count": len(names), "names": ", ".join(names) or "none"}
        text = REASON_TEMPLATES[self.condition].format(**fields)
        return RULE_REASON.format(
            rule=self.rule, level_before=self.level_before, level_after=self.level_after, text=text
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "condition": self.condition,
            "threshold": self.threshold,
            "level_before": self.level_before,
            "level_after": self.level_after,
            "finding": self.finding.as_dict() if self.finding else None,
        }


@dataclass(frozen=True)
class RiskAlertPayload:
    """A tenant's risk verdict for the window ending ``window_end``: level, score and interval, component values and
    the rules that set the level. The reasons and the report link are rendered from the templates of this module."""

    scope: ClassVar[str] = "risk"

    tenant_id: str
    level: str
    window_end: date
    window_days: int | None = None
    score: float | None = None
    score_interval: tuple[float, float] | None = None
    components: Mapping[str, float | None] = field(default_factory=dict)
    rules: tuple[AppliedRule, ...] = ()
    rule_set: Any = field(default=None, repr=False, compare=False)
    """The risk ``RuleSet`` the rule ids belong to (default: the shipped ``risk/rules.yaml``); not part of the alert."""

    def __post_init__(self) -> None:
        _tenant("tenant_id", self.tenant_id)
        _level("level", self.level)
        _day("window_end", self.window_end)
        if self.window_days is not None:
            _set(self, "window_days", _count("window_days", self.window_days))
        _set(self, "score", _optional_number("score", self.score, unit=True))
        if self.score_interval is not None:
            if not isinstance(self.score_interval, tuple | list) or len(self.score_interval) != 2:
                raise _refuse("score_interval", "a pair (low, high)")
            low, high = (_number(f"score_interval[{i}]", v, unit=True) for i, v in enumerate(self.score_interval))
            _set(self, "score_interval", (low, high))
        if not isinstance(self.components, Mapping):
            raise _refuse("components", "a mapping of risk component names to values")
        names = _component_names()
        for name in self.components:
            _known("components", name, names, "keyed by risk component names")
        components = {
            n: _optional_number(f"components.{n}", self.components[n], unit=True) for n in names if n in self.components
        }
        _set(self, "components", components)  # in the order of risk.components.COMPONENTS
        if isinstance(self.rules, str) or not isinstance(self.rules, Iterable):
            raise _refuse("rules", "a sequence of AppliedRule")
        _set(self, "rules", tuple(self.rules))
        known = _rule_conditions(self.rule_set)
        for index, rule in enumerate(self.rules):
            if not isinstance(rule, AppliedRule):
                raise _refuse(f"rules[{index}]", "an AppliedRule")
            rule.check_rule(known)

    @property
    def day(self) -> date:
        return self.window_end

    def reasons(self) -> list[str]:
        return [rule.reason(self.components) for rule in self.rules]

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in the outbox and delivered as the alert's ``details``."""
        interval = list(self.score_interval) if self.score_interval else None
        window = {"end": self.window_end.isoformat()} | ({"days": self.window_days} if self.window_days else {})
        link = REPORT_LINK.format(tenant=shlex.quote(self.tenant_id), day=self.window_end.isoformat())
        return {
            "kind": self.scope,
            "tenant_id": self.tenant_id,
            "level": self.level,
            "score": self.score,
            "score_interval": interval,
            "window": window,
            "components": dict(self.components),
            "rules": [rule.as_dict() for rule in self.rules],
            "reasons": self.reasons(),
            "links": {"report": link},
        }

    @classmethod
    def from_assessment(
        cls,
        tenant_id: str,
        window_end: date,
        assessment: Mapping[str, Any],
        *,
        window_days: int | None = None,
        rule_set: Any = None,
    ) -> RiskAlertPayload:
        """The payload of a stored risk assessment (``RiskAssessment.to_dict()``), from its structured fields only:
        the texts it holds (rule reasons, actions, notes) are left behind and the reasons rendered again."""
        known = _rule_conditions(rule_set)
        rules = []
        for index, applied in enumerate(assessment.get("applied_rules") or ()):
            where = f"rules[{index}]"
            rule = applied.get("rule")
            if not isinstance(rule, str) or rule not in known:
                raise _refuse(f"{where}.rule", _RULE_ID)
            condition, threshold = known[rule]
            raw = applied.get("finding") if condition in FINDING_CONDITIONS else None
            finding = None
            if raw is not None:
                finding = Finding(
                    raw.get("stage_pair"),
                    raw.get("dimension"),
                    raw.get("group"),
                    raw.get("impact_ratio"),
                    raw.get("p_adjusted"),
                    where=f"{where}.finding",
                )
            rules.append(
                AppliedRule(
                    rule,
                    condition,
                    threshold,
                    applied.get("level_before"),
                    applied.get("level_after"),
                    finding,
                    where=where,
                )
            )
        ci = (assessment.get("ci_low"), assessment.get("ci_high"))
        components = {name: (body or {}).get("value") for name, body in (assessment.get("components") or {}).items()}
        return cls(
            tenant_id=tenant_id,
            level=assessment.get("level"),
            window_end=window_end,
            window_days=window_days,
            score=assessment.get("score"),
            score_interval=None if None in ci else ci,
            components=components,
            rules=tuple(rules),
            rule_set=rule_set,
        )


@dataclass(frozen=True)
class OperationalAlertPayload:
    """A failed pipeline run: its job's name and run id. The run's error message is not carried (it is free text,
    which may quote data); the Dagster run log has it."""

    scope: ClassVar[str] = "operational"
    tenant_id: ClassVar[str] = OPERATIONAL_TENANT

    job: str
    run_id: UUID
    day: date
    level: str = "MEDIUM"

    def __post_init__(self) -> None:
        if not isinstance(self.job, str) or not _DAGSTER_NAME.fullmatch(self.job):
            raise _refuse("job", "a Dagster job name (letters, digits, underscores)")
        try:
            run_id = self.run_id if isinstance(self.run_id, UUID) else UUID(str(self.run_id))
        except ValueError:
            raise _refuse("run_id", "a run UUID") from None
        _set(self, "run_id", run_id)
        _day("day", self.day)
        _level("level", self.level)

    def reasons(self) -> list[str]:
        return [OPERATIONAL_REASON.format(run_id=self.run_id, job=self.job)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.scope,
            "level": self.level,
            "job": self.job,
            "run_id": str(self.run_id),
            "day": self.day.isoformat(),
            "reasons": self.reasons(),
            "links": {},
        }


AlertPayload = RiskAlertPayload | OperationalAlertPayload
"""What :func:`~fairness_pipeline.alerts.outbox.raise_alert` accepts; nothing else becomes an alert."""


def _set(instance: Any, name: str, value: Any) -> None:
    """Store the checked, canonical value on a frozen dataclass."""
    object.__setattr__(instance, name, value)


# --- the delivered message -------------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


@dataclass(frozen=True)
class AlertMessage:
    """What a channel delivers: the alert's envelope and its payload, with the escalation marked.

    ``delivery_id`` identifies the delivery on one channel (a UUID drawn at its first attempt, kept by its retries):
    see :func:`~fairness_pipeline.alerts.outbox.deliver_pending`.
    """

    alert_id: int
    dedup_key: str
    tenant_id: str
    scope: str
    level: str
    day: date
    window_start: datetime
    window_hours: int
    created_at: datetime
    escalated_at: datetime | None
    review_id: int | None
    review_priority: str | None
    payload: Mapping[str, Any]
    sent_at: datetime
    delivery_id: UUID

    @classmethod
    def for_alert(
        cls,
        alert: AlertRecord,
        sent_at: datetime,
        delivery_id: UUID,
        review_id: int | None = None,
        priority: str | None = None,
    ) -> AlertMessage:
        return cls(
            alert_id=alert.id,
            dedup_key=alert.dedup_key,
            tenant_id=alert.tenant_id,
            scope=alert.scope,
            level=alert.level,
            day=alert.day,
            window_start=alert.window_start,
            window_hours=alert.window_hours,
            created_at=alert.created_at,
            escalated_at=alert.escalated_at,
            review_id=review_id,
            review_priority=priority,
            payload=alert.payload,
            sent_at=sent_at,
            delivery_id=delivery_id,
        )

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    def as_dict(self) -> dict[str, Any]:
        """Timestamps in UTC ISO 8601, whatever the database session's time zone."""
        return {
            "type": "fairness_alert",
            "alert_id": self.alert_id,
            "delivery_id": str(self.delivery_id),
            "dedup_key": self.dedup_key,
            "tenant_id": self.tenant_id,
            "scope": self.scope,
            "level": self.level,
            "day": self.day.isoformat(),
            "dedup_window": {"start": _utc(self.window_start), "hours": self.window_hours},
            "created_at": _utc(self.created_at),
            "escalated": self.escalated,
            "escalated_at": _utc(self.escalated_at),
            "review": {"id": self.review_id, "priority": self.review_priority} if self.review_id else None,
            "details": dict(self.payload),
            "sent_at": _utc(self.sent_at),
        }

    def body(self) -> bytes:
        """The exact bytes sent (and signed): compact JSON with sorted keys, UTF-8."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def subject(self) -> str:
        prefix = "[ESCALATED] " if self.escalated else ""
        day = self.day.isoformat()
        text = f"{prefix}[fairness] {self.level} {self.scope} alert for tenant {self.tenant_id} ({day})"
        return " ".join(text.split())  # no line breaks in a header

    def text(self) -> str:
        """A plain-text rendering for e-mail and logs."""
        details = self.payload
        lines = [
            self.subject(),
            "",
            f"Tenant:    {self.tenant_id}",
            f"Scope:     {self.scope}",
            f"Level:     {self.level}",
            f"Day:       {self.day.isoformat()}",
            f"Raised at: {_utc(self.created_at)}",
        ]
        if self.escalated_at:
            lines.append(f"ESCALATED: {_utc(self.escalated_at)} (not acknowledged within its deadline)")
        if self.review_id:
            lines.append(f"Review:    #{self.review_id} ({self.review_priority} priority)")
        if details.get("score") is not None:
            lines.append(f"Score:     {details['score']}")
        reasons = details.get("reasons") or []
        if reasons:
            lines += ["", "Reasons:"] + [f"  - {reason}" for reason in reasons]
        links = details.get("links") or {}
        if links:
            lines += ["", "Links:"] + [f"  {name}: {target}" for name, target in links.items()]
        lines += ["", "Full alert (JSON):", json.dumps(self.as_dict(), indent=2, sort_keys=True, ensure_ascii=False)]
        return "\n".join(lines) + "\n"
