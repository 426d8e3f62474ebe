"""Dagster wrapping of ``fairness_pipeline.alerts``: channel resources configured from the environment, the alert job
(raise, then deliver) and the delivery/escalation job a schedule runs every few minutes.

Register with ``resources={"database": ..., **alert_resources()}``, ``jobs=[alert_job, deliver_and_escalate_job]``
and ``schedules=[alert_delivery_schedule]``. A sensor raising an alert submits ``alert_job`` with
``alert_run_config(...)``: it names what to report (a tenant's stored risk verdict of a day, or a failed run), never
the text of it; the op builds the typed payload (``fairness_pipeline.alerts.payload``) from the stored assessment's
structured fields, or from the failed run's job name and id.

Environment (a channel whose variables are unset is disabled; the log channel is always on):

``FAIRNESS_WEBHOOK_URL``, ``FAIRNESS_WEBHOOK_SECRET`` (required with the URL), ``FAIRNESS_WEBHOOK_TIMEOUT`` (seconds,
10), ``FAIRNESS_WEBHOOK_RETRIES`` (3), ``FAIRNESS_WEBHOOK_BACKOFF`` (seconds, 1); ``FAIRNESS_SMTP_HOST``,
``FAIRNESS_SMTP_PORT`` (587), ``FAIRNESS_SMTP_FROM``, ``FAIRNESS_SMTP_TO`` (comma-separated), ``FAIRNESS_SMTP_STARTTLS``
(true), ``FAIRNESS_SMTP_USERNAME``, ``FAIRNESS_SMTP_PASSWORD``, ``FAIRNESS_SMTP_TIMEOUT`` (seconds, 10).
Secrets and addresses are passed as ``dg.EnvVar`` so their values never appear in run config or the UI.
"""

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from fairness_pipeline.alerts import (
    DEFAULT_WINDOW_HOURS,
    OPERATIONAL_TENANT,
    AlertPayload,
    Channel,
    EmailChannel,
    LogChannel,
    OperationalAlertPayload,
    PayloadError,
    RiskAlertPayload,
    WebhookChannel,
    deliver_pending,
    escalate_overdue,
    raise_alert,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.store import alerts as alert_store

WEBHOOK_URL = "FAIRNESS_WEBHOOK_URL"
WEBHOOK_SECRET = "FAIRNESS_WEBHOOK_SECRET"
WEBHOOK_TIMEOUT = "FAIRNESS_WEBHOOK_TIMEOUT"
WEBHOOK_RETRIES = "FAIRNESS_WEBHOOK_RETRIES"
WEBHOOK_BACKOFF = "FAIRNESS_WEBHOOK_BACKOFF"
SMTP_HOST = "FAIRNESS_SMTP_HOST"
SMTP_PORT = "FAIRNESS_SMTP_PORT"
SMTP_FROM = "FAIRNESS_SMTP_FROM"
SMTP_TO = "FAIRNESS_SMTP_TO"
SMTP_STARTTLS = "FAIRNESS_SMTP_STARTTLS"
SMTP_USERNAME = "FAIRNESS_SMTP_USERNAME"
SMTP_PASSWORD = "FAIRNESS_SMTP_PASSWORD"
SMTP_TIMEOUT = "FAIRNESS_SMTP_TIMEOUT"


class LogChannelResource(dg.ConfigurableResource):
    """The log channel (always on): one JSON line per alert in the run's logs."""

    def channel(self) -> LogChannel:
        return LogChannel(dg.get_dagster_logger("fairness_alerts"))


class WebhookChannelResource(dg.ConfigurableResource):
    """Signed JSON webhook; disabled without a URL."""

    url: str | None = Field(default=None, description="Receiver URL (FAIRNESS_WEBHOOK_URL); empty disables.")
    secret: str | None = Field(default=None, description="HMAC-SHA256 key (FAIRNESS_WEBHOOK_SECRET).")
    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 1.0

    def channel(self) -> WebhookChannel | None:
        if not self.url:
            return None
        if not self.secret:
            raise dg.Failure(f"{WEBHOOK_URL} is set but {WEBHOOK_SECRET} is not: webhook alerts are always signed")
        return WebhookChannel(
            self.url, self.secret, timeout=self.timeout_seconds, retries=self.retries, backoff=self.backoff_seconds
        )


class EmailChannelResource(dg.ConfigurableResource):
    """E-mail over SMTP; disabled without a host."""

    host: str | None = Field(default=None, description="SMTP host (FAIRNESS_SMTP_HOST); empty disables.")
    port: int = 587
    sender: str | None = Field(default=None, description="From address (FAIRNESS_SMTP_FROM).")
    recipients: str | None = Field(default=None, description="Comma-separated To addresses (FAIRNESS_SMTP_TO).")
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 10.0

    def channel(self) -> EmailChannel | None:
        if not self.host:
            return None
        try:
            return EmailChannel(
                self.host,
                self.port,
                self.sender or "",
                (self.recipients or "").split(","),
                starttls=self.starttls,
                username=self.username or None,
                password=self.password or None,
                timeout=self.timeout_seconds,
            )
        except ValueError as exc:
            raise dg.Failure(f"e-mail channel misconfigured ({SMTP_HOST} is set): {exc}") from None


def _set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if _set(name) else None


def _number(name: str, default: float, kind: type = float) -> Any:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a {kind.__name__}") from None


def _flag(name: str, default: bool) -> bool:
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={text!r} is not a boolean (true/false)")


def alert_resources() -> dict[str, dg.ConfigurableResource]:
    """The channel resources, configured from the environment (see the module docstring)."""
    return {
        "alert_log": LogChannelResource(),
        "alert_webhook": WebhookChannelResource(
            url=_env(WEBHOOK_URL),
            secret=_env(WEBHOOK_SECRET),
            timeout_seconds=_number(WEBHOOK_TIMEOUT, 10.0),
            retries=_number(WEBHOOK_RETRIES, 3, int),
            backoff_seconds=_number(WEBHOOK_BACKOFF, 1.0),
        ),
        "alert_email": EmailChannelResource(
            host=_env(SMTP_HOST),
            port=dg.EnvVar.int(SMTP_PORT) if _set(SMTP_PORT) else 587,
            sender=_env(SMTP_FROM),
            recipients=_env(SMTP_TO),
            starttls=_flag(SMTP_STARTTLS, True),
            username=_env(SMTP_USERNAME),
            password=_env(SMTP_PASSWORD),
            timeout_seconds=_number(SMTP_TIMEOUT, 10.0),
        ),
    }


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- ops and jobs -----------------------------------------------------------------------------------------------


class RaiseAlertConfig(dg.Config):
    """One alert, as a sensor submits it: what to report, not its text (no free-text field exists)."""

    tenant_id: str
    level: str = Field(description="LOW, MEDIUM, HIGH or CRITICAL (a risk alert takes its stored assessment's)")
    day: str = Field(description="The analysed day, YYYY-MM-DD")
    scope: str = Field(default="risk", description="risk (the tenant's stored assessment of `day`) or operational")
    window_days: int | None = Field(default=None, description="Length of the analysed window ending on `day`.")
    failed_job: str | None = Field(default=None, description="operational: the failed run's job name")
    failed_run_id: str | None = Field(default=None, description="operational: the failed run's id")
    dedup_window_hours: int = DEFAULT_WINDOW_HOURS
    now: str | None = Field(default=None, description="ISO timestamp to use as the current time (tests).")


class DeliveryConfig(dg.Config):
    limit: int = Field(default=100, description="At most this many alerts per tick.")
    now: str | None = None


class EscalationConfig(dg.Config):
    critical_hours: float = 24.0
    high_hours: float = 14 * 24.0
    now: str | None = None


def alert_run_config(tenant_id: str, level: str, day: str, **fields: Any) -> dict[str, Any]:
    """Run config of ``alert_job`` for one alert (what a sensor's ``RunRequest`` carries)."""
    return {"ops": {"raise_alerts_op": {"config": {"tenant_id": tenant_id, "level": level, "day": day, **fields}}}}


def _pipeline_jobs() -> frozenset[str]:
    """The jobs whose failures raise operational alerts (the run failure sensor's)."""
    from fairness_pipeline.defs.jobs import event_days_job, metrics_job

    return frozenset(job.name for job in (event_days_job, metrics_job))


def alert_payload(conn, config: RaiseAlertConfig) -> AlertPayload:
    """The typed payload the config names: the tenant's stored risk assessment of the day, or the failed run."""
    day = date.fromisoformat(config.day)
    if config.scope == "operational":
        if config.tenant_id != OPERATIONAL_TENANT or config.failed_job not in _pipeline_jobs():
            raise PayloadError(
                f"operational alerts are for tenant {OPERATIONAL_TENANT!r} and a failed run of a pipeline job "
                f"({', '.join(sorted(_pipeline_jobs()))})"
            )
        return OperationalAlertPayload(config.failed_job, config.failed_run_id, day, config.level)
    if config.scope != "risk":
        raise PayloadError("payload field scope must be risk or operational")
    row = alert_store.stored_risk_assessment(conn, config.tenant_id, day)
    if row is None:
        raise dg.Failure(f"no risk assessment is stored for tenant {config.tenant_id} and day {day}")
    level, score, ci_low, ci_high, assessment = row
    stored = {**assessment, "level": level, "score": score, "ci_low": ci_low, "ci_high": ci_high}
    return RiskAlertPayload.from_assessment(config.tenant_id, day, stored, window_days=config.window_days)


@dg.op(description="Write the alert to the outbox, de-duplicated per tenant, scope, level and window.")
def raise_alerts_op(context: dg.OpExecutionContext, config: RaiseAlertConfig, database: FairnessDatabase) -> list[int]:
    with database.connect() as conn:
        payload = alert_payload(conn, config)
        if payload.level != config.level:
            stored = f"the stored assessment of {config.tenant_id} is now {payload.level}"
            context.log.warning(f"{stored}, not {config.level}: the alert says {payload.level}")
        alert = raise_alert(conn, payload, _now(config.now), window_hours=config.dedup_window_hours)
    if alert is None:
        context.log.info(f"{config.level} {config.scope} alert for {config.tenant_id} already raised in this window")
        return []
    review = f", review {alert.review_id} opened" if alert.review_id else ""
    context.log.info(f"raised alert {alert.id} ({alert.dedup_key}){review}")
    return [alert.id]


def enabled_channels(
    log: LogChannelResource, webhook: WebhookChannelResource, email: EmailChannelResource
) -> list[Channel]:
    """The log channel and every configured one (a misconfigured channel fails the run: nothing is lost)."""
    channels: list[Channel | None] = [log.channel(), webhook.channel(), email.channel()]
    return [channel for channel in channels if channel is not None]


@dg.op(
    ins={"after": dg.In(dg.Nothing)},
    description="One outbox tick: deliver every undelivered alert on each enabled channel, recording every attempt.",
)
def deliver_alerts_op(
    context: dg.OpExecutionContext,
    config: DeliveryConfig,
    database: FairnessDatabase,
    alert_log: LogChannelResource,
    alert_webhook: WebhookChannelResource,
    alert_email: EmailChannelResource,
) -> dg.Output[int]:
    channels = enabled_channels(alert_log, alert_webhook, alert_email)
    with database.connect() as conn:
        attempts = deliver_pending(conn, channels, _now(config.now), limit=config.limit)
    failed = [a for a in attempts if not a.delivered]
    for attempt in failed:
        context.log.warning(
            f"alert {attempt.alert_id} on {attempt.channel} (attempt {attempt.attempt}) failed: "
            f"{attempt.error}; retried next tick"
        )
    delivered = len(attempts) - len(failed)
    return dg.Output(
        delivered,
        metadata={
            "channels": ", ".join(c.name for c in channels),
            "delivered": delivered,
            "failed": len(failed),
            "alerts": len({a.alert_id for a in attempts}),
        },
    )


@dg.op(description="Escalate alerts whose review is still open past their level's deadline.")
def escalate_alerts_op(context: dg.OpExecutionContext, config: EscalationConfig, database: FairnessDatabase) -> int:
    deadlines = {"CRITICAL": timedelta(hours=config.critical_hours), "HIGH": timedelta(hours=config.high_hours)}
    with database.connect() as conn:
        escalated = escalate_overdue(conn, _now(config.now), deadlines)
    for item in escalated:
        context.log.warning(
            f"escalated {item.level} alert {item.alert_id} for {item.tenant_id}: review "
            f"{item.review_id} unacknowledged, now {item.priority} priority"
        )
    return len(escalated)


@dg.job(description="Raise one alert (run config from a sensor) and deliver it.")
def alert_job() -> None:
    deliver_alerts_op(after=raise_alerts_op())


@dg.job(description="Escalate overdue alerts, then deliver everything still pending (retries included).")
def deliver_and_escalate_job() -> None:
    deliver_alerts_op(after=escalate_alerts_op())


alert_delivery_schedule = dg.ScheduleDefinition(
    name="alert_delivery_schedule",
    job=deliver_and_escalate_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every five minutes: escalate and deliver pending alerts.",
)
