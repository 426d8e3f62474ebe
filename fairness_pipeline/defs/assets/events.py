"""Event-layer assets: the raw table observed, validated and quarantined events, per-candidate daily stages.

Each asset reads through the store, calls the domain, writes through the store, one UTC day at a time, and records
each day's own figures on that day's materialisation.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from fairness_pipeline.defs.declare import daily_asset_factory, daily_multi_asset
from fairness_pipeline.defs.metadata import (
    markdown_preview,
    numbers_metadata,
    record_day,
    table_metadata,
    table_schema,
)
from fairness_pipeline.defs.partitions import day_bounds, partition_days
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.store import analysis, audits, events, validation
from fairness_pipeline.store.partition_lock import partition_transaction
from fairness_pipeline.store.schema import transaction

GROUP = "events"
events_asset = daily_asset_factory(GROUP, kinds={"postgres"})

EVENT_SCHEMA = table_schema(events.SELECTION_EVENTS)


@events_asset(pool=None, automation_condition=None)
def raw_selection_events(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    """The selection_events table, observed per UTC day: event count and latest created_at. Rows arrive through
    `fairness-pipeline ingest` or the logging API; this asset records what is there."""
    total, latest, per_day = 0, None, []
    with database.connect() as conn, transaction(conn) as cur:
        for day in partition_days(context):
            count, day_latest = events.observe_raw_day(cur, day_bounds(day))
            per_day.append({"day": day.isoformat(), "events": count, "latest_created_at": day_latest})
            latest_text = day_latest.isoformat() if day_latest else "none"
            record_day(
                context,
                day,
                {
                    "dagster/row_count": count,
                    "events": count,
                    "latest_created_at": latest_text,
                    "preview": markdown_preview(pd.DataFrame(per_day[-1:])),
                },
            )
            total += count
            latest = max(filter(None, [latest, day_latest]), default=None)
    return dg.MaterializeResult(
        metadata=table_metadata(
            total,
            EVENT_SCHEMA,
            markdown_preview(pd.DataFrame(per_day)),
            {"events": total, "latest_created_at": latest.isoformat() if latest else "none"},
        ),
        data_version=dg.DataVersion(f"{total}:{latest.isoformat() if latest else ''}"),
    )


MAX_DAYS_SHOWN = 31
"""Days listed in the run's check metadata (each day also has its own check evaluation)."""


def _severity(share: float, max_share: float) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if share > max_share else dg.AssetCheckSeverity.WARN


def _log_day_checks(
    context: dg.AssetExecutionContext, day, raw: int, valid: int, quarantined: int, max_share: float
) -> None:
    """Each day's own results of the two checks, recorded with its partition (the run's results follow at the end:
    they are the ones that block downstream steps)."""
    key, partition = dg.AssetKey("validated_selection_events"), day.isoformat()
    share = quarantined / raw if raw else 0.0
    context.log_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name="event_suite_passes",
            passed=quarantined == 0,
            severity=_severity(share, max_share),
            metadata={"quarantined_share": dg.MetadataValue.float(share), "quarantined": quarantined},
            blocking=True,
            partition=partition,
        )
    )
    context.log_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name="raw_equals_validated_plus_quarantined",
            passed=raw == valid + quarantined,
            metadata={"raw": raw, "validated": valid, "quarantined": quarantined},
            blocking=True,
            partition=partition,
        )
    )


class ValidationConfig(dg.Config):
    max_quarantined_share: float = 0.05
    """Above this share of quarantined rows the suite check fails with ERROR and blocks downstream assets."""


@daily_multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_selection_events",
            deps=[raw_selection_events],
            group_name=GROUP,
            kinds={"postgres", "great_expectations"},
            description="Events that pass the Great Expectations suite (fairness_pipeline.validation.event_suite).",
        ),
        dg.AssetSpec(
            "quarantined_selection_events",
            deps=[raw_selection_events],
            group_name=GROUP,
            kinds={"postgres"},
            description="Events that fail the suite, with every failed expectation named.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "event_suite_passes",
            asset="validated_selection_events",
            blocking=True,
            description="The GX suite's result on the day's raw events. Fails with WARN when some rows were "
            "quarantined, with ERROR (blocking downstream) when more than the allowed share was.",
        ),
        dg.AssetCheckSpec(
            "raw_equals_validated_plus_quarantined",
            asset="validated_selection_events",
            blocking=True,
            description="Every raw row of the partition is in exactly one of validated and quarantined.",
        ),
    ],
)
def validated_selection_events(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: ValidationConfig
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Validate each day's raw events with the GX suite; store the passing rows and quarantine the others."""
    from fairness_pipeline.validation.event_suite import validate_events

    now = datetime.now(UTC)
    raw = valid = quarantined = 0
    failures: dict[str, int] = {}
    samples: list[pd.DataFrame] = []
    reconciliation_ok = True
    per_day = []
    with database.connect() as conn:
        for day in partition_days(context):
            bounds = day_bounds(day)
            with partition_transaction(conn, "validated_selection_events", day) as cur:
                result = validate_events(validation.read_raw_day(cur, bounds), now)
                day_raw, day_valid, day_quarantined = validation.replace_validated_day(
                    cur,
                    bounds,
                    result.quarantined["event_id"].astype(str).tolist(),
                    result.quarantined["failed_expectations"].tolist(),
                )
            reconciliation_ok &= day_raw == day_valid + day_quarantined
            raw, valid, quarantined = raw + day_raw, valid + day_valid, quarantined + day_quarantined
            day_failures = {
                e["name"]: e["unexpected_count"] for e in result.summary["expectations"] if e["unexpected_count"]
            }
            for name, count in day_failures.items():
                failures[name] = failures.get(name, 0) + count
            if len(result.quarantined):
                samples.append(result.quarantined.drop(columns=["candidate_id", "user_id_hash"]).head(5))
            per_day.append({"day": day.isoformat(), "raw": day_raw, "valid": day_valid, "quarantined": day_quarantined})
            day_share = day_quarantined / day_raw if day_raw else 0.0
            day_numbers = {"raw_events": day_raw, "quarantined_events": day_quarantined, "quarantined_share": day_share}
            record_day(
                context,
                day,
                {
                    "dagster/row_count": day_valid,
                    "preview": markdown_preview(pd.DataFrame(per_day[-1:])),
                    **numbers_metadata(day_numbers),
                },
                asset_key="validated_selection_events",
            )
            record_day(
                context,
                day,
                {
                    "dagster/row_count": day_quarantined,
                    "quarantined_events": day_quarantined,
                    "failed_expectations": dg.MetadataValue.json(day_failures),
                    "preview": markdown_preview(samples[-1] if len(result.quarantined) else pd.DataFrame()),
                },
                asset_key="quarantined_selection_events",
            )
            _log_day_checks(context, day, day_raw, day_valid, day_quarantined, config.max_quarantined_share)
            context.log.info(f"{day}: {day_raw} raw, {day_valid} valid, {day_quarantined} quarantined")

    share = quarantined / raw if raw else 0.0
    suite_check = dg.AssetCheckResult(
        check_name="event_suite_passes",
        asset_key="validated_selection_events",
        passed=quarantined == 0,
        severity=_severity(share, config.max_quarantined_share),
        metadata={
            "quarantined_share": dg.MetadataValue.float(share),
            "max_quarantined_share": dg.MetadataValue.float(config.max_quarantined_share),
            "failed_expectations": dg.MetadataValue.json(failures),
            "days": markdown_preview(pd.DataFrame(per_day), rows=MAX_DAYS_SHOWN),
        },
    )
    count_check = dg.AssetCheckResult(
        check_name="raw_equals_validated_plus_quarantined",
        asset_key="validated_selection_events",
        passed=reconciliation_ok,
        metadata={"raw": raw, "validated": valid, "quarantined": quarantined},
    )
    preview = pd.concat(samples).head(10) if samples else pd.DataFrame()
    yield dg.MaterializeResult(
        asset_key="validated_selection_events",
        metadata=table_metadata(
            valid,
            table_schema(validation.VALIDATED_SELECTION_EVENTS),
            markdown_preview(pd.DataFrame(per_day)),
            {"raw_events": raw, "quarantined_events": quarantined, "quarantined_share": share},
        ),
    )
    yield dg.MaterializeResult(
        asset_key="quarantined_selection_events",
        metadata=table_metadata(
            quarantined,
            table_schema(validation.QUARANTINED_SELECTION_EVENTS),
            markdown_preview(preview),
            {"quarantined_events": quarantined, "failed_expectations": dg.MetadataValue.json(failures)},
        ),
    )
    yield suite_check
    yield count_check


@events_asset(deps=["validated_selection_events"])
def candidate_daily_stages(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    """One row per tenant, day, stage and candidate (first event of the day), so that 30-day windows count
    candidates without reading events; and the day's candidates as arrays per tenant and stage."""
    per_day = []
    with database.connect() as conn:
        for day in partition_days(context):
            bounds = day_bounds(day)
            with partition_transaction(conn, "candidate_daily_stages", day) as cur:
                _, validated, _ = validation.day_counts(cur, bounds)
                rows = analysis.replace_candidate_day(cur, bounds, validated)
                audits.store_candidate_arrays(cur, day)
            per_day.append({"day": day.isoformat(), "validated_events": validated, "candidate_rows": rows})
            record_day(
                context,
                day,
                {
                    "dagster/row_count": rows,
                    "candidate_rows": rows,
                    "validated_events": validated,
                    "preview": markdown_preview(pd.DataFrame(per_day[-1:])),
                },
            )
    total = sum(d["candidate_rows"] for d in per_day)
    return dg.MaterializeResult(
        metadata=table_metadata(
            total,
            table_schema(analysis.CANDIDATE_DAILY_STAGES, extra=[audits.CANDIDATE_DAY_ARRAYS]),
            markdown_preview(pd.DataFrame(per_day)),
            {"candidate_rows": total, "validated_events": sum(d["validated_events"] for d in per_day)},
        )
    )
