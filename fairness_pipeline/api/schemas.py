"""Request and response bodies of the transparency API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fairness_pipeline.alerts.model import Review, ReviewEvent

Priority = Literal["critical", "high", "medium", "low"]
MAX_TEXT = 2000


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: the status again and one sentence saying what was wrong."""

    status: int
    error: str
    details: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    version: str


class Links(BaseModel):
    report_json: str
    report_html: str
    report_pdf: str


class AppliedRule(BaseModel):
    rule: str
    level_before: str | None
    level_after: str | None
    reason: str | None


class Compliance(BaseModel):
    """A tenant's compliance status from its published report: the risk verdict, why, and the LL144 summary."""

    tenant_id: str
    window: dict[str, Any] = Field(description="start, end (YYYY-MM-DD) and days of the analysed window")
    level: str = Field(description="LOW, MEDIUM, HIGH or CRITICAL")
    score: float | None = Field(description="composite risk in [0, 1], 1 = worst")
    score_interval: list[float] | None = Field(description="95% bootstrap interval of the score")
    band: str | None
    profile: str | None
    context: str | None
    dominant_component: str | None
    reasons: list[str]
    rules_applied: list[AppliedRule]
    actions: list[str]
    ll144_summary: dict[str, Any] = Field(description="NYC LL144 audit summary (published: small counts suppressed)")
    generated_at: str
    links: Links


class Assessment(BaseModel):
    window_end: date
    level: str
    score: float | None
    score_interval: list[float] | None
    band: str | None
    profile: str
    context: str | None
    dominant_component: str | None
    computed_at: str


class Assessments(BaseModel):
    tenant_id: str
    assessments: list[Assessment]


class ImpactRatios(BaseModel):
    """One window, stage pair and dimension: the selection table, and the audits of the same dimension."""

    tenant_id: str
    window: dict[str, Any]
    stage_pair: str
    dimension: str
    min_cell: int = Field(description="counts under this are shown as '< k'; what derives from them is withheld")
    selection: dict[str, Any] = Field(description="the report's impact table (published)")
    scoring: dict[str, Any] | None = Field(description="LL144 scoring-rate table of the dimension, when audited")
    exposure: list[dict[str, Any]] = Field(description="rank exposure per group (ratios; searches counted)")
    trends: list[dict[str, Any]] = Field(description="week-over-week impact ratios of the stage pair per group")


class ReportEntry(BaseModel):
    window_end: date
    generated_at: str
    links: Links


class ReportList(BaseModel):
    tenant_id: str
    reports: list[ReportEntry]


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_TEXT, description="why a review is needed")
    priority: Priority = "medium"
    day: date | None = Field(default=None, description="the analysed day the request is about (default: today)")


class ReviewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=MAX_TEXT)


class ResolveNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_TEXT, description="what was found or done")


class ReviewWithHistory(BaseModel):
    """A review (scope 'risk': opened by a HIGH or CRITICAL alert; 'review_request': requested through the API) and
    its append-only history."""

    review: Review
    history: list[ReviewEvent]


class ReviewList(BaseModel):
    tenant_id: str
    reviews: list[Review]
