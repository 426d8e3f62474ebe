"""Event-layer assets: the raw table observed, validated and quarantined events, per-candidate daily stages."""

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from psycopg2 import sql

from fairness_pipeline.defs.metadata import column_schema, markdown_preview, table_metadata
from fairness_pipeline.defs.partitions import (
    PARTITION_WRITES_POOL,
    daily_partitions,
    day_bounds,
    downstream_automation,
    partition_days,
    single_run,
)
from fairness_pipeline.defs.resources import FairnessDatabase
from fairness_pipeline.events.vocabulary import EVENT_COLUMNS
from fairness_pipeline.queries import analysis as q
from fairness_pipeline.queries import audits as audit_queries
from fairness_pipeline.store.partition_lock import lock_partition, partition_transaction

EVENT_SCHEMA = column_schema(
    [
        ("event_id", "varchar(64)", "unique event id"),
        ("timestamp", "timestamptz", "when the event happened (partition day, UTC)"),
        ("candidate_id", "varchar(255)", "candidate (never shown in reports)"),
        ("event_type", "varchar(50)", "funnel stage"),
        ("search_id", "varchar(255)", "search the candidate was shown in"),
        ("tenant_id", "varchar(255)", "employer"),
        ("user_id_hash", "varchar(64)", "SHA-256 of the recruiter"),
        ("company_tier", "varchar(50)", "proxy dimension; NULL = unknown"),
        ("experience_band", "varchar(20)", "proxy dimension; NULL = unknown"),
        ("specialty", "varchar(50)", "proxy dimension; NULL = unknown"),
        ("rank", "integer", "position in the search results"),
        ("score", "numeric(5,4)", "match score"),
        ("created_at", "timestamptz", "when the row was stored"),
    ]
)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="events",
    kinds={"postgres"},
    description="The selection_events table, observed per UTC day: event count and latest created_at. Rows arrive "
    "through `fairness-pipeline ingest` or the logging API; this asset records what is there.",
)
def raw_selection_events(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    total, latest, per_day = 0, None, []
    with database.connect() as conn, conn.cursor() as cur:
        for day in partition_days(context):
            cur.execute(q.RAW_DAY_OBSERVATION, day_bounds(day))
            count, day_latest = cur.fetchone()
            per_day.append({"day": day.isoformat(), "events": count, "latest_created_at": day_latest})
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


NULL_MARKER = "\\N"


def _read_raw_day(cur, bounds: dict) -> pd.DataFrame:
    """One day of raw events through COPY (fast), typed as the validation suite expects."""
    buffer = io.StringIO()
    statement = sql.SQL(q.RAW_DAY_EVENTS).format(
        day_start=sql.Literal(bounds["day_start"]), day_end=sql.Literal(bounds["day_end"])
    )
    cur.copy_expert(statement.as_string(cur.connection), buffer)
    buffer.seek(0)
    text_columns = [c for c in EVENT_COLUMNS if c not in ("timestamp", "rank", "score")]
    frame = pd.read_csv(
        buffer,
        dtype={c: "string" for c in text_columns} | {"rank": "Int64", "score": "float64"},
        keep_default_na=False,
        na_values=[NULL_MARKER],
    )
    for column in ("timestamp", "created_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


class ValidationConfig(dg.Config):
    max_quarantined_share: float = 0.05
    """Above this share of quarantined rows the suite check fails with ERROR and blocks downstream assets."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_selection_events",
            deps=[raw_selection_events],
            group_name="events",
            kinds={"postgres", "great_expectations"},
            description="Events that pass the Great Expectations suite (fairness_pipeline.validation.event_suite).",
        ),
        dg.AssetSpec(
            "quarantined_selection_events",
            deps=[raw_selection_events],
            group_name="events",
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
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
)
def validated_selection_events(
    context: dg.AssetExecutionContext, database: FairnessDatabase, config: ValidationConfig
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
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
                events = _read_raw_day(cur, bounds)
                result = validate_events(events, now)
                quarantine = [
                    {"event_id": event_id, "failed_expectations": failed}
                    for event_id, failed in zip(
                        result.quarantined["event_id"].astype(str),
                        result.quarantined["failed_expectations"],
                        strict=True,
                    )
                ]  # one entry per quarantined row only
                cur.execute(q.DELETE_VALIDATED_DAY, bounds)
                cur.execute(q.DELETE_QUARANTINED_DAY, bounds)
                cur.execute(q.INSERT_QUARANTINED, {"quarantine": json.dumps(quarantine)})
                cur.execute(q.INSERT_VALIDATED_DAY, bounds)
                cur.execute(q.DAY_RECONCILIATION, bounds)
                day_raw, day_valid, day_quarantined = cur.fetchone()
            reconciliation_ok &= day_raw == day_valid + day_quarantined
            raw, valid, quarantined = raw + day_raw, valid + day_valid, quarantined + day_quarantined
            for expectation in result.summary["expectations"]:
                if expectation["unexpected_count"]:
                    name = expectation["name"]
                    failures[name] = failures.get(name, 0) + expectation["unexpected_count"]
            if len(result.quarantined):
                samples.append(result.quarantined.drop(columns=["candidate_id", "user_id_hash"]).head(5))
            per_day.append({"day": day.isoformat(), "raw": day_raw, "valid": day_valid, "quarantined": day_quarantined})
            context.log.info(f"{day}: {day_raw} raw, {day_valid} valid, {day_quarantined} quarantined")

    share = quarantined / raw if raw else 0.0
    suite_check = dg.AssetCheckResult(
        check_name="event_suite_passes",
        asset_key="validated_selection_events",
        passed=quarantined == 0,
        severity=dg.AssetCheckSeverity.ERROR if share > config.max_quarantined_share else dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined_share": dg.MetadataValue.float(share),
            "max_quarantined_share": dg.MetadataValue.float(config.max_quarantined_share),
            "failed_expectations": dg.MetadataValue.json(failures),
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
            EVENT_SCHEMA,
            markdown_preview(pd.DataFrame(per_day)),
            {"raw_events": raw, "quarantined_events": quarantined, "quarantined_share": share},
        ),
    )
    yield dg.MaterializeResult(
        asset_key="quarantined_selection_events",
        metadata=table_metadata(
            quarantined,
            EVENT_SCHEMA,
            markdown_preview(preview),
            {"quarantined_events": quarantined, "failed_expectations": dg.MetadataValue.json(failures)},
        ),
    )
    yield suite_check
    yield count_check


CANDIDATE_STAGE_SCHEMA = column_schema(
    [
        ("tenant_id", "varchar", "employer"),
        ("day", "date", "UTC day"),
        ("event_type", "varchar", "funnel stage"),
        ("candidate_id", "varchar", "candidate"),
        ("first_at", "timestamptz", "first event of this stage that day"),
        ("company_tier / experience_band / specialty", "varchar", "dimensions of that first event"),
        ("score, rank", "numeric, integer", "of that first event"),
        ("events", "integer", "events of this stage that day"),
    ]
)


def store_candidate_arrays(cur, day) -> None:
    """Write the day's candidates as arrays per tenant and event type (``candidate_day_arrays``, read by the windows
    that count candidates in numpy) and mark the day as done; SQL does the work. The arrays are part of the day's
    candidate_daily_stages partition: written under its lock."""
    lock_partition(cur, "candidate_daily_stages", day)
    cur.execute(audit_queries.DELETE_CANDIDATE_ARRAYS, {"day": day})
    cur.execute(sql.SQL(audit_queries.INSERT_CANDIDATE_ARRAYS).format(codes=audit_queries.dimension_code_bytes()),
                {"day": day})  # fmt: skip
    cur.execute(audit_queries.RECORD_CANDIDATE_ARRAYS, {"day": day})


@dg.asset(
    deps=["validated_selection_events"],
    automation_condition=downstream_automation,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=PARTITION_WRITES_POOL,
    group_name="events",
    kinds={"postgres"},
    description="One row per tenant, day, stage and candidate (first event of the day), so that 30-day windows "
    "count candidates without reading events.",
)
def candidate_daily_stages(context: dg.AssetExecutionContext, database: FairnessDatabase) -> dg.MaterializeResult:
    per_day = []
    with database.connect() as conn:
        for day in partition_days(context):
            bounds = day_bounds(day)
            with partition_transaction(conn, "candidate_daily_stages", day) as cur:
                cur.execute(q.DELETE_CANDIDATE_DAY, bounds)
                cur.execute(q.INSERT_CANDIDATE_DAY, bounds)
                rows = cur.rowcount
                cur.execute(q.DAY_RECONCILIATION, bounds)
                _, validated, _ = cur.fetchone()
                cur.execute(q.RECORD_CANDIDATE_DAY, {**bounds, "validated_events": validated, "candidate_rows": rows})
                store_candidate_arrays(cur, day)
            per_day.append({"day": day.isoformat(), "validated_events": validated, "candidate_rows": rows})
    total = sum(d["candidate_rows"] for d in per_day)
    return dg.MaterializeResult(
        metadata=table_metadata(
            total,
            CANDIDATE_STAGE_SCHEMA,
            markdown_preview(pd.DataFrame(per_day)),
            {"candidate_rows": total, "validated_events": sum(d["validated_events"] for d in per_day)},
        )
    )
