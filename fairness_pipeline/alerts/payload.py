"""What an alert says: the payload guard (no candidate ids, ever) and the message the channels deliver."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fairness_pipeline.alerts.model import AlertRecord, PayloadError

_CANDIDATE_KEY = re.compile(r"candidates?(id|ids|uuid|uuids|ref|refs|key|keys|number|numbers)?")
_WORD = re.compile(r"[\w-]+")
_PUNCTUATION = ".,;:!?()[]{}<>\"'`"


def _tokens(text: str) -> set[str]:
    """Word-like pieces of a string: ``[\\w-]+`` runs and whitespace-separated words without outer punctuation."""
    pieces = {word.strip(_PUNCTUATION) for word in text.split()}
    pieces.update(_WORD.findall(text))
    pieces.discard("")
    return pieces


def _normalised_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def is_candidate_key(key: str) -> bool:
    """Whether a payload key names candidates or their ids (``candidate_id``, ``candidateIds``, ``Candidate-UUID``)."""
    normalised = _normalised_key(key)
    return bool(_CANDIDATE_KEY.fullmatch(normalised) or re.search(r"candidates?(id|uuid)", normalised))


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) below a JSON-like value, depth first; key is None for list items."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}"
            yield child, key, item
            yield from walk(item, child)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            child = f"{path}[{index}]"
            yield child, None, item
            yield from walk(item, child)


def value_tokens(payload: Mapping[str, Any]) -> set[str]:
    """The payload's scalar values as strings, and the word-like tokens inside its strings.

    A candidate id is caught whether it is a whole value or quoted inside a sentence.
    """
    found: set[str] = set()
    for _, _, item in walk(payload):
        if isinstance(item, bool) or item is None or isinstance(item, Mapping | list | tuple):
            continue
        text = str(item)
        found.add(text)
        if isinstance(item, str):
            found.update(_tokens(text))
    return found


def guard_payload(payload: Mapping[str, Any], candidate_ids: Collection[str] = ()) -> dict[str, Any]:
    """A JSON-safe copy of ``payload``, refusing any key named like a candidate id and any value that is one.

    Raises :class:`PayloadError` naming the offending path (never the value). ``candidate_ids`` are the ids the
    payload must not contain; :func:`raise_alert` also checks the payload's strings against the tenant's stored ids.
    """
    if not isinstance(payload, Mapping):
        raise PayloadError("an alert payload is a JSON object")
    for path, key, _ in walk(payload):
        if key is not None and not isinstance(key, str):
            raise PayloadError(f"payload key at {path} is not a string")
        if key is not None and is_candidate_key(key):
            raise PayloadError(f"payload key {path} names candidate ids; alert payloads carry no candidate ids")
    ids = {str(c) for c in candidate_ids}
    if ids:
        for path, _, item in walk(payload):
            if isinstance(item, Mapping | list | tuple | bool) or item is None:
                continue
            text = str(item)
            if text in ids or (isinstance(item, str) and ids.intersection(_tokens(text))):
                raise PayloadError(f"payload value at {path} is a candidate id; alert payloads carry no candidate ids")
    try:
        encoded = json.dumps(payload, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"payload is not JSON-serialisable: {exc}") from exc
    return json.loads(encoded)


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def build_payload(
    *,
    tenant_id: str,
    level: str,
    score: float | None = None,
    reasons: Collection[str] = (),
    window: Mapping[str, Any] | None = None,
    report_path: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The conventional payload: tenant, level, score, reasons, analysed window and links (report path)."""
    payload: dict[str, Any] = {
        "tenant_id": tenant_id,
        "level": level,
        "score": score,
        "reasons": list(reasons),
        "window": dict(window or {}),
        "links": {"report": report_path} if report_path else {},
    }
    payload.update(extra)
    return payload


@dataclass(frozen=True)
class AlertMessage:
    """What a channel delivers: the alert's envelope and its payload, with the escalation marked."""

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

    @classmethod
    def for_alert(
        cls, alert: AlertRecord, sent_at: datetime, review_id: int | None = None, priority: str | None = None
    ) -> AlertMessage:
        return cls(
            alert_id=alert.id, dedup_key=alert.dedup_key, tenant_id=alert.tenant_id, scope=alert.scope,
            level=alert.level, day=alert.day, window_start=alert.window_start, window_hours=alert.window_hours,
            created_at=alert.created_at, escalated_at=alert.escalated_at, review_id=review_id,
            review_priority=priority, payload=alert.payload, sent_at=sent_at,
        )  # fmt: skip

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    @property
    def delivery_id(self) -> str:
        """Stable per alert and stage: receivers use it to drop a repeat after a lost response."""
        return f"{self.alert_id}:{'escalation' if self.escalated else 'initial'}"

    def as_dict(self) -> dict[str, Any]:
        """Timestamps in UTC ISO 8601, whatever the database session's time zone."""
        return {
            "type": "fairness_alert",
            "alert_id": self.alert_id,
            "delivery_id": self.delivery_id,
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
