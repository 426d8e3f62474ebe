"""Typed alert payloads: only numbers, levels, vocabulary values and rendered templates; no database scan."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairness_pipeline.alerts import (
    AppliedRule,
    Finding,
    LogChannel,
    OperationalAlertPayload,
    PayloadError,
    RiskAlertPayload,
    deliver_pending,
    raise_alert,
)
from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, UNKNOWN_GROUP
from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.risk import assess
from fairness_pipeline_tests.test_alerts_support import (
    DAY,
    STARTUP_FINDING,
    STARTUP_REASON,
    T0,
    RecordingChannel,
    query,
    risk_payload,
)

CANDIDATE_ID = "t1-cand-0000042"
COMPONENTS = {"adverse_impact": 0.9, "evidence": 1.0, "scoring_rate": 0.3, "exposure": 0.2, "slate": 0.6, "trend": None}
SEVERAL = AppliedRule("several_high_components", "components_at_least", 0.60, "MEDIUM", "HIGH")


def test_alert_is_written_and_delivered_when_candidate_ids_equal_its_words(conn) -> None:
    """The defect of the database scan: a candidate '3' stopped '3 risk components at or above 0.60 ...'."""
    for index, candidate in enumerate(("3", "0.60", "HIGH", "risk", "slate", "t1", "several_high_components")):
        query(
            conn,
            """INSERT INTO selection_events (event_id, candidate_id, event_type, search_id, tenant_id,
                       user_id_hash) VALUES (%s, %s, 'shown', 's', 't1', 'u') RETURNING 1""",
            (f"e{index}", candidate),
        )
    payload = RiskAlertPayload("t1", "HIGH", DAY, 30, 0.61, (0.55, 0.68), COMPONENTS, (SEVERAL,))
    alert = raise_alert(conn, payload, T0)
    assert alert is not None
    memory = RecordingChannel()
    assert [a.outcome for a in deliver_pending(conn, [LogChannel(), memory], T0)] == ["delivered", "delivered"]
    # 0.9, 1.0 and 0.6 are at or above 0.60; 0.3, 0.2 and None are not
    expected = (
        "several_high_components (MEDIUM -> HIGH): 3 risk components at or above 0.60: adverse_impact, evidence, slate."
    )
    assert memory.sent[0].payload["reasons"] == [expected]
    assert query(conn, "SELECT payload->'reasons'->>0, status FROM fairness_alerts") == [(expected, "delivered")]


def _finding(**fields) -> Finding:
    base = {"stage_pair": "shown->shortlisted", "dimension": "company_tier", "group": "startup", "impact_ratio": 0.5}
    return Finding(**(base | fields))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: _finding(group=CANDIDATE_ID), "finding.group"),
        (lambda: _finding(group="0-3"), "finding.group"),  # a group of another dimension
        (lambda: _finding(dimension="company_tier+specialty", group="startup"), "finding.group"),
        (lambda: _finding(dimension="company_tier+specialty", group=f"startup|{CANDIDATE_ID}"), "finding.group"),
        (lambda: _finding(dimension=CANDIDATE_ID), "finding.dimension"),
        (lambda: _finding(dimension="company_tier+company_tier"), "finding.dimension"),
        (lambda: _finding(stage_pair=f"shown->{CANDIDATE_ID}"), "finding.stage_pair"),
        (lambda: _finding(impact_ratio=CANDIDATE_ID), "finding.impact_ratio"),
        (lambda: _finding(impact_ratio=float("nan")), "finding.impact_ratio"),
        (lambda: _finding(p_adjusted=1.5), "finding.p_adjusted"),
        (lambda: RiskAlertPayload("t1", CANDIDATE_ID, DAY), "level"),
        (lambda: RiskAlertPayload("t1", "HIGH", DAY, score=True), "score"),
        (lambda: RiskAlertPayload("t1", "HIGH", DAY, components={CANDIDATE_ID: 0.5}), "components"),
        (lambda: RiskAlertPayload("t1", "HIGH", DAY, components={"slate": CANDIDATE_ID}), "components.slate"),
        (lambda: RiskAlertPayload("t1", "HIGH", DAY, rules=(f"see {CANDIDATE_ID}",)), "rules[0]"),
        (lambda: RiskAlertPayload("t1", "HIGH", DAY, rules=f"see {CANDIDATE_ID}"), "rules"),
        (
            lambda: RiskAlertPayload(
                "t1", "HIGH", DAY, rules=(AppliedRule(CANDIDATE_ID, "no_comparison", None, "LOW", "MEDIUM"),)
            ),
            "rule.rule",
        ),
        (lambda: AppliedRule("no_comparison", CANDIDATE_ID, None, "LOW", "MEDIUM"), "rule.condition"),
        (lambda: AppliedRule("significant_adverse", "significant_adverse", 0.8, "LOW", "HIGH"), "rule.finding"),
        (lambda: OperationalAlertPayload(f"job {CANDIDATE_ID}", uuid.uuid4(), DAY), "job"),
        (lambda: OperationalAlertPayload("metrics_job", CANDIDATE_ID, DAY), "run_id"),
    ],
)
def test_free_text_and_unknown_names_are_refused_naming_the_field_not_the_value(build, field: str) -> None:
    with pytest.raises(PayloadError) as raised:
        build()
    assert str(raised.value).startswith(f"payload field {field} ")
    assert CANDIDATE_ID not in str(raised.value)


def test_raise_alert_takes_typed_payloads_only(conn) -> None:
    with pytest.raises(PayloadError, match="RiskAlertPayload"):
        raise_alert(conn, {"reasons": ["rarely shortlisted"]}, T0)  # type: ignore[arg-type]
    assert query(conn, "SELECT count(*) FROM fairness_alerts") == [(0,)]


def test_intersections_and_unknown_groups_are_vocabulary() -> None:
    finding = _finding(dimension="company_tier+specialty", group=f"startup|{UNKNOWN_GROUP}", p_adjusted=0.01)
    rule = AppliedRule("significant_adverse", "significant_adverse", 0.8, "HIGH", "HIGH", finding)
    [reason] = RiskAlertPayload("t1", "HIGH", DAY, rules=(rule,)).reasons()
    assert reason == (
        "significant_adverse (HIGH -> HIGH): statistically and practically significant adverse impact (impact ratio "
        "below 0.80); lowest: startup|unknown (company_tier+specialty, shown->shortlisted) at 0.50, adjusted p = 0.01."
    )


@pytest.mark.parametrize(
    ("dimension", "group"),
    [
        ("sex", "female"),
        ("race_ethnicity", "native_american_or_alaska_native"),
        ("sex+race_ethnicity", "male|asian"),
        ("sex+race_ethnicity", "female|unknown"),
        ("company_tier+sex", "startup|female"),
    ],
)
def test_ll144_dimensions_and_values_are_vocabulary(dimension: str, group: str) -> None:
    finding = _finding(dimension=dimension, group=group, p_adjusted=0.01)
    rule = AppliedRule("significant_adverse", "significant_adverse", 0.8, "HIGH", "HIGH", finding)
    [reason] = RiskAlertPayload("t1", "HIGH", DAY, rules=(rule,)).reasons()
    assert f"lowest: {group} ({dimension}, shown->shortlisted) at 0.50" in reason


@pytest.mark.parametrize(
    ("dimension", "group", "field"),
    [
        ("sex", "nonbinary", "finding.group"),
        ("sex", "female|asian", "finding.group"),
        ("gender", "female", "finding.dimension"),
        ("sex+sex", "male|male", "finding.dimension"),
        ("sex+race_ethnicity", "asian|male", "finding.group"),
    ],
)
def test_values_outside_the_catalogue_are_refused(dimension: str, group: str, field: str) -> None:
    with pytest.raises(PayloadError) as raised:
        _finding(dimension=dimension, group=group)
    assert str(raised.value).startswith(f"payload field {field} ")


VOCABULARY = {value for values in DIMENSION_VALUES.values() for value in values} | {UNKNOWN_GROUP}


@given(st.one_of(st.text(max_size=20), st.sampled_from(sorted(VOCABULARY))))
def test_a_group_is_accepted_exactly_when_it_is_a_value_of_its_dimension(group: str) -> None:
    allowed = (*DIMENSION_VALUES["specialty"], UNKNOWN_GROUP)
    try:
        _finding(dimension="specialty", group=group)
    except PayloadError:
        assert group not in allowed
    else:
        assert group in allowed


def test_payload_of_a_stored_assessment_leaves_its_texts_behind() -> None:
    assessment = {
        "level": "HIGH",
        "score": 0.71,
        "ci_low": 0.64,
        "ci_high": 0.78,
        "components": {"adverse_impact": {"value": 0.4, "note": f"driven by {CANDIDATE_ID}"}},
        "applied_rules": [
            {
                "rule": "significant_adverse",
                "reason": f"rarely shortlisted: {CANDIDATE_ID}",
                "level_before": "MEDIUM",
                "level_after": "HIGH",
                "finding": {**STARTUP_FINDING.as_dict(), "n": 120, "x": 9, "note": CANDIDATE_ID},
            }
        ],
        "actions": [f"call {CANDIDATE_ID}"],
    }
    payload = RiskAlertPayload.from_assessment("t1", DAY, assessment, window_days=30)
    assert payload == risk_payload("t1", "HIGH")
    assert payload.reasons() == [STARTUP_REASON.format(level="HIGH")]
    assert CANDIDATE_ID not in json.dumps(payload.to_dict())
    with pytest.raises(PayloadError, match=r"^payload field rules\[0\]\.rule "):
        RiskAlertPayload.from_assessment("t1", DAY, {**assessment, "applied_rules": [{"rule": CANDIDATE_ID}]})


def test_operational_payload_carries_the_job_and_run_only() -> None:
    run = uuid.UUID("0b0e5a3e-6a09-4b8e-9a0f-1c2d3e4f5a6b")
    payload = OperationalAlertPayload("metrics_job", str(run), date(2026, 3, 9))
    assert payload.run_id == run and (payload.tenant_id, payload.scope, payload.level) == (
        "operations",
        "operational",
        "MEDIUM",
    )
    assert payload.to_dict() == {
        "kind": "operational",
        "level": "MEDIUM",
        "job": "metrics_job",
        "run_id": str(run),
        "day": "2026-03-09",
        "reasons": [f"run {run} of metrics_job failed; its error is in the Dagster run log, not in this alert."],
        "links": {},
    }


# --- the payload of real assessments (risk.assess on hand-built impact tables) ---------------------------------------


def _impacts(rows: list[tuple[str, int, int]], dimension: str = "company_tier") -> pd.DataFrame:
    counts = pd.DataFrame(rows, columns=["group", "n", "x"])
    return impact_ratio_table(counts, intersectional="+" in dimension).assign(
        tenant_id="t1", stage_pair="shown->shortlisted", dimension=dimension
    )


HIGH_COMPONENTS = {
    "exposure": pd.DataFrame(
        {"dimension": ["company_tier"] * 2, "group": ["faang", "startup"], "exposure_ratio": [1, 0.2]}
    ),
    "slate": pd.DataFrame({"dimension": ["company_tier"], "slates": [100], "concentrated": [70]}),
}


@pytest.mark.parametrize(
    ("impacts", "audits", "context", "rules"),
    [
        (
            _impacts([("faang", 100, 60), ("startup", 100, 20)]),
            None,
            None,
            ["significant_adverse_below_half", "significant_adverse"],
        ),
        (_impacts([("faang", 100, 50), ("startup", 10, 2)]), None, None, ["insufficient_evidence"]),
        (_impacts([("faang", 100, 0), ("startup", 50, 0)]), None, None, ["no_comparison"]),
        (_impacts([("faang", 200, 100), ("startup", 200, 100)]), HIGH_COMPONENTS, None, ["several_high_components"]),
        (
            _impacts([("faang", 100, 30), ("startup", 100, 22)]),
            None,
            "nyc_ll144",
            ["ll144_published_ratio_below_four_fifths"],
        ),
        (
            _impacts([("faang|0-3", 400, 240), ("startup|15+", 400, 80)], "company_tier+experience_band"),
            None,
            None,
            ["significant_adverse_below_half", "significant_adverse"],
        ),
    ],
)
def test_every_rule_of_a_real_assessment_becomes_a_rendered_reason(impacts, audits, context, rules) -> None:
    result = assess(impacts, audits=audits, context=context, window_end=DAY)
    assert [r["rule"] for r in result.applied_rules] == rules
    stored = json.loads(json.dumps(result.to_dict()))  # as risk_assessments holds it
    payload = RiskAlertPayload.from_assessment("t1", DAY, stored, window_days=30)
    assert (payload.level, payload.score) == (result.level, result.score)
    for applied, reason in zip(result.applied_rules, payload.reasons(), strict=True):
        prefix = f"{applied['rule']} ({applied['level_before']} -> {applied['level_after']}): "
        assert reason.startswith(prefix)
        finding = applied["finding"]
        if applied["rule"] == "several_high_components":  # the same sentence as the rule's own template
            assert reason == prefix + applied["reason"]
        elif finding:
            where = f"lowest: {finding['group']} ({finding['dimension']}, {finding['stage_pair']})"
            assert f"{where} at {finding['impact_ratio']:.2f}" in reason
