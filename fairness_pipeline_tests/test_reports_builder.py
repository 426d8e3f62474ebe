"""The report JSON: schema, contents (LL144, checklist, interpretation), suppression, markdown, no personal data."""

from __future__ import annotations

import copy
import functools
import json
import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from fairness_pipeline.events.vocabulary import DEFAULT_STAGE_PAIRS, DIMENSIONS, stage_pair_name
from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.reports import (
    ReportSchemaError,
    build_report,
    load_schema,
    publish_report,
    render_html,
    render_markdown,
    validate_report,
)
from fairness_pipeline.risk import assess

END = date(2026, 3, 31)
GENERATED = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
SHORTLIST = "shown->shortlisted"
CONTACT = "shortlisted->contacted"


def table(pair: str, dimension: str, rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    counts = pd.DataFrame(rows, columns=["group", "n", "x"])
    out = impact_ratio_table(counts, intersectional="+" in dimension)
    return out.assign(tenant_id="acme", stage_pair=pair, dimension=dimension)


def hand_impacts() -> pd.DataFrame:
    """One tenant's window, by hand.

    shown->shortlisted, company_tier (664 candidates): faang 40/100 = 0.40 is the reference; enterprise 105/300 = 0.35
    (IR 0.875); startup 40/200 = 0.20 (IR 0.50, z-test p < 0.001: significant adverse impact); unknown 18/60 = 0.30
    (unknown: reported, never compared); other 1/4 holds 0.6% of candidates: left out under the 2% rule.
    experience_band: 3-7 80/250 = 0.32 is the reference; 0-3 90/300 (IR 0.94); 7-15 30/110 (IR 0.85); 15+ 6/30
    (IR 0.625, p about 0.2: insufficient evidence); unknown 0/4 reported, never compared. An intersection table
    (startup|0-3 24/100 against faang|0-3 20/50: IR 0.60), and shortlisted->contacted with a small 'other' group
    (n = 1). Verdict HIGH: significant adverse impacts, none below 0.50.
    """
    return pd.concat(
        [
            table(
                SHORTLIST,
                "company_tier",
                [
                    ("faang", 100, 40),
                    ("enterprise", 300, 105),
                    ("startup", 200, 40),
                    ("other", 4, 1),
                    ("unknown", 60, 18),
                ],
            ),
            table(
                SHORTLIST,
                "experience_band",
                [("0-3", 300, 90), ("3-7", 250, 80), ("7-15", 110, 30), ("15+", 30, 6), ("unknown", 4, 0)],
            ),
            table(
                SHORTLIST,
                "company_tier+experience_band",
                [
                    ("faang|0-3", 50, 20),
                    ("startup|0-3", 100, 24),
                    ("enterprise|3-7", 150, 55),
                    ("startup|7-15", 60, 12),
                ],
            ),
            table(
                CONTACT,
                "company_tier",
                [("faang", 40, 20), ("enterprise", 105, 50), ("startup", 40, 10), ("other", 1, 1), ("unknown", 18, 9)],
            ),
        ],
        ignore_index=True,
    )


def hand_trends() -> pd.DataFrame:
    """60 days of shown->shortlisted company_tier: startup falls linearly from 0.70 to 0.50, the others stay."""
    rows = []
    for day in range(60):
        when = END - timedelta(days=59 - day)
        startup = 0.70 - 0.2 * day / 59
        for group, ratio, n in (
            ("faang", 1.0, 100),
            ("enterprise", 0.875, 300),
            ("startup", startup, 200),
            ("other", None, 4),
        ):
            rows.append(
                {
                    "window_end": when,
                    "stage_pair": SHORTLIST,
                    "dimension": "company_tier",
                    "group": group,
                    "n": n,
                    "x": 1 if n == 4 else 40,
                    "impact_ratio": ratio,
                }
            )
    return pd.DataFrame(rows)


def hand_scoring() -> pd.DataFrame:
    """Scoring-rate audit: candidates scoring above the window's median, per company tier."""
    return pd.DataFrame(
        {
            "dimension": "company_tier",
            "group": ["faang", "enterprise", "startup", "unknown"],
            "n": [100, 300, 200, 60],
            "x": [60, 160, 70, 30],
        }
    )


def hand_report(**kwargs) -> dict:
    impacts, trends, audits = hand_impacts(), hand_trends(), {"scoring_rate": hand_scoring()}
    assessment = assess(impacts, audits=audits, trends=trends, window_end=END, seed=11, context="nyc_ll144")
    kwargs.setdefault("data_source", "selection_events of the search product (hand-built test data)")
    return build_report(
        "acme", END, impacts, None, assessment, trends=trends, audits=audits, generated_at=GENERATED, **kwargs
    )


def group(report: dict, pair: str, dimension: str, name: str, kind: str = "selection") -> dict:
    tables = [
        t
        for t in report["detailed_analysis"]
        if (t["kind"], t["stage_pair"], t["dimension"]) == (kind, pair, dimension)
    ]
    assert len(tables) == 1
    return next(g for g in tables[0]["groups"] if g["group"] == name)


def test_report_validates_against_the_schema_internal_and_published() -> None:
    report = hand_report()
    validate_report(report)
    validate_report(publish_report(report))
    assert set(report) == set(load_schema()["required"])
    json.dumps(report, allow_nan=False)  # no NaN or Infinity anywhere


def _broken(report: dict, path: tuple, value: object) -> dict:
    """A deep copy of ``report`` with the value at ``path`` replaced (``DELETE``: removed)."""
    broken = copy.deepcopy(report)
    *parents, last = path
    holder = functools.reduce(lambda node, key: node[key], parents, broken)
    if value is DELETE:
        del holder[last]
    else:
        holder[last] = value
    return broken


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        (("executive_summary", "risk_level"), "SEVERE", "/executive_summary/risk_level"),  # not in the enum
        (("generated_at",), "yesterday", "/generated_at"),  # not a date-time
        (("window", "start"), "2026-02-30", "/window/start"),  # not a date
        (("window", "end"), 20260301, "/window/end"),  # not a string
        (("executive_summary",), DELETE, ""),  # a required part missing
        (("unexpected_part",), {}, ""),  # no other parts
    ],
)
def test_schema_rejects_a_broken_report_as_jsonschema_does(path: tuple, value: object, pointer: str) -> None:
    """The compiled validator and the reference implementation (``jsonschema``, with its format checker) agree: the
    report passes both, each broken copy fails both, at the same place."""
    import jsonschema

    reference = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    report = hand_report()
    assert not list(reference.iter_errors(report))
    broken = _broken(report, path, value)
    (error,) = reference.iter_errors(broken)
    assert "/" + "/".join(map(str, error.absolute_path)) == (pointer or "/")
    with pytest.raises(ReportSchemaError) as raised:
        validate_report(broken)
    assert raised.value.pointer == pointer


def test_findings_and_interpretation() -> None:
    report = hand_report()
    startup = group(report, SHORTLIST, "company_tier", "startup")
    assert startup["impact_ratio"] == 0.5 and startup["finding"] == "adverse_impact"
    assert group(report, SHORTLIST, "company_tier", "unknown")["finding"] == "undefined"  # never compared
    assert group(report, SHORTLIST, "experience_band", "15+")["finding"] == "insufficient_evidence"
    assert group(report, SHORTLIST, "company_tier", "other")["finding"] == "excluded"
    assert group(report, SHORTLIST, "company_tier", "faang")["finding"] == "reference"
    summary = report["executive_summary"]
    assert summary["risk_level"] == report["risk_assessment"]["level"] == "HIGH"
    assert any("startup" in s and "impact ratio of 0.50" in s for s in summary["key_findings"])
    text = " ".join(report["interpretation"])
    assert "insufficient evidence" in text and "neither a finding of adverse impact nor a clearance" in text
    assert "startup (company_tier, shown → shortlisted step) went from 0.70 to 0.50" in text


def test_ll144_summary() -> None:
    report = hand_report(tool_distribution_date=date(2025, 11, 3))
    ll = report["ll144_audit_summary"]
    assert ll["audit_date"] == "2026-04-01"
    assert ll["data_period"] == {"start": "2026-03-02", "end": "2026-03-31"}
    assert ll["data_source"].startswith("selection_events") and ll["data_explanation"]
    assert ll["tool_distribution_date"] == "2025-11-03"
    selection = ll["selection"]
    assert selection["stage_pair"] == SHORTLIST and selection["number_of_candidates"] == 664
    assert selection["unknown_count"] == {"company_tier": 60, "experience_band": 4}
    categories = {(c["dimension"], c["category"]): c for c in selection["categories"]}
    assert categories[("company_tier", "startup")]["rate"] == 0.2
    assert categories[("company_tier+experience_band", "startup|0-3")]["intersectional"]
    assert {(e["category"], e["n"]) for e in selection["excluded_categories"]} == {("other", 4)}
    scoring = ll["scoring"]
    assert scoring and {c["category"]: c["rate"] for c in scoring["categories"]}["startup"] == 0.35
    checklist = {c["id"]: c["status"] for c in report["compliance_checklist"]}
    assert checklist["no_significant_adverse_impact"] == "fail"
    assert checklist["ll144_distribution_date"] == "pass" and checklist["ll144_scoring_rates"] == "pass"
    assert checklist["insufficient_evidence_flagged"] == "attention"


def test_published_report_suppresses_small_cells_and_the_internal_one_does_not() -> None:
    report = hand_report(min_cell=5)
    published = publish_report(report)
    # Internal: exact counts.
    assert group(report, SHORTLIST, "company_tier", "other")["n"] == 4
    # Published: other has n = 4 and x = 1 (both under 5); its rate and share are withheld.
    other = group(published, SHORTLIST, "company_tier", "other")
    assert (other["n"], other["x"], other["selection_rate"], other["share"]) == ("< 5", "< 5", None, None)
    assert other["suppressed"] and other["finding"] == "excluded"
    # Complementary: with exactly one hidden n the total would give it back, so the next smallest (unknown, 60) goes,
    # shown as "suppressed" (it is not under 5), and the table's unknown count with it.
    unknown = group(published, SHORTLIST, "company_tier", "unknown")
    assert (unknown["n"], unknown["x"], unknown["impact_ratio"]) == ("suppressed", "suppressed", None)
    selection = published["ll144_audit_summary"]["selection"]
    assert selection["unknown_count"] == {"company_tier": "suppressed", "experience_band": "< 5"}
    # Not-selected count under 5: 'other' at shortlisted->contacted has n = 1, x = 1.
    assert group(published, CONTACT, "company_tier", "other")["n"] == "< 5"
    # Large groups are untouched.
    assert group(published, SHORTLIST, "company_tier", "startup")["impact_ratio"] == 0.5
    assert published["publication"]["suppressed"] and published["publication"]["suppressed_cells"] > 0
    ll = {(c["dimension"], c["category"]): c for c in published["ll144_audit_summary"]["selection"]["categories"]}
    assert ll[("company_tier", "other")]["n"] == "< 5"
    assert publish_report(published) == published  # publishing twice changes nothing
    assert not report["publication"]["suppressed"]


def test_reference_group_under_min_cell_withholds_every_ratio_of_its_table() -> None:
    # The reference (enterprise, 5 of 60: a reference needs 5 selections) is under a min_cell of 10.
    impacts = table("interviewed->hired", "company_tier", [("faang", 30, 4), ("enterprise", 60, 5), ("startup", 80, 3)])
    report = build_report(
        "acme", END, impacts, None, assess(impacts), data_source="test", generated_at=GENERATED, min_cell=10
    )
    published = publish_report(report)
    validate_report(published)
    t = published["detailed_analysis"][0]
    assert t["ratios_suppressed"] and t["reference_rate"] is None
    assert all(g["impact_ratio"] is None for g in t["groups"])
    assert "reference group's counts are under 10" in " ".join(t["interpretation"])


def test_markdown_chart_is_a_table_that_renders_anywhere() -> None:
    text = render_markdown(hand_report())
    assert "**Risk level: HIGH**" in text and "| adverse_impact |" in text
    assert "data:" not in text and "![" not in text and "<svg" not in text  # no image: GitHub/Confluence show tables
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") == 7
    }
    # startup: 40 of 200 against faang's 40 of 100 -> 0.20 / 0.40 = 0.50, ten blocks of 0.05
    assert rows["startup"][0] == "0.50" and rows["startup"][1].count("█") == 10
    assert rows["startup"][3] == "200" and rows["startup"][4] == "adverse impact (significant)"
    assert rows["faang"][1].count("█") == 20 and rows["faang"][4] == "reference group"
    # 'other' has 4 candidates: its count is shown as '< 5' and the row says which count is withheld
    assert rows["other"][0] == "" and rows["other"][3] == "\\< 5" and "candidates" in rows["other"][4]
    assert len(text) < 60_000  # small metadata: the Dagster event log keeps it


def test_html_is_self_contained() -> None:
    page = render_html(hand_report())
    assert page.startswith("<!doctype html>")
    for forbidden in ("<script", "<link", "<iframe", "@import", 'src="http', "src='http", "url(http"):
        assert forbidden not in page.lower()
    assert page.count("<svg") >= 8


# --- no personal data -----------------------------------------------------------------------------------------------


def synthetic_window():
    """Events from the synthetic generator, counted per candidate as the window SQL does, then analysed."""
    from fairness_pipeline.metrics.window import AnalysisSettings, analyse_window
    from fairness_pipeline.synthetic import GeneratorConfig, generate_events

    config = GeneratorConfig(seed=5, days=7, tenants=1, events_per_day=3000, bias=("company_tier=startup:0.5",))
    events = pd.concat(list(generate_events(config)), ignore_index=True)
    cells = []
    for baseline, selection in DEFAULT_STAGE_PAIRS:
        firsts = events[events["event_type"] == baseline].sort_values(["timestamp", "event_id"])
        firsts = firsts.drop_duplicates(["tenant_id", "candidate_id"]).copy()
        selected = events.loc[events["event_type"] == selection, ["tenant_id", "candidate_id"]].drop_duplicates()
        firsts["x"] = firsts.merge(selected, how="left", indicator=True)["_merge"].eq("both").to_numpy().astype(int)
        firsts["n"] = 1
        summed = firsts.groupby(["tenant_id", *DIMENSIONS], dropna=False)[["n", "x"]].sum().reset_index()
        cells.append(summed.assign(stage_pair=stage_pair_name(baseline, selection)))
    analysis = analyse_window(pd.concat(cells, ignore_index=True), AnalysisSettings())
    return events, analysis.impacts, analysis.frames


def test_no_candidate_id_appears_in_any_report() -> None:
    events, impacts, frames = synthetic_window()
    tenant = events["tenant_id"].iloc[0]
    stray = impacts.assign(candidate_id=events["candidate_id"].iloc[0])  # a careless caller's extra column
    assessment = assess(stray, seed=1, window_end=END)
    report = build_report(
        tenant, END, stray, frames, assessment, data_source="synthetic events", generated_at=GENERATED
    )
    validate_report(report)
    outputs = {
        "internal json": json.dumps(report),
        "published json": json.dumps(publish_report(report)),
        "html": render_html(report),
        "markdown": render_markdown(report),
    }
    identifiers = set()
    for column in ("candidate_id", "event_id", "search_id", "user_id_hash"):
        identifiers |= set(events[column].dropna().astype(str))
    assert len(identifiers) > 1000
    pattern = re.compile(r"[A-Za-z0-9_\-]{8,}")  # every token long enough to be an identifier
    for name, text in outputs.items():
        tokens = set(pattern.findall(text))
        assert not tokens & identifiers, f"{name} holds identifiers: {sorted(tokens & identifiers)[:3]}"
        assert "cand-" not in text and "candidate_id" not in text, name


def test_suppression_of_a_small_not_selected_count() -> None:
    from fairness_pipeline.reports.publish import suppress_rows

    # 48 of 50 selected: the 2 not selected are a small cell; x is shown as "> 45" (50 - 5), n stays.
    rows = [
        {"group": "a", "n": 50, "x": 48, "selection_rate": 0.96},
        {"group": "b", "n": 500, "x": 100, "selection_rate": 0.2},
        {"group": "c", "n": 400, "x": 90, "selection_rate": 0.225},
    ]
    assert suppress_rows(rows, 5) == 2
    assert (rows[0]["n"], rows[0]["x"], rows[0]["selection_rate"]) == (50, "> 45", None)
    # ... and the next smallest x (c, 90) is hidden too, as "suppressed".
    assert (rows[2]["x"], rows[1]["x"]) == ("suppressed", 100)
