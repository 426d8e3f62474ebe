"""What a report states and how it words what it hides: the facts file, the one small-count rule, left-out rows,
the verdict's re-adjustment and short trends."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from scipy.stats import norm

from fairness_pipeline.reports import publish_report, render_html, render_markdown, validate_report
from fairness_pipeline.reports.builder import apply_facts
from fairness_pipeline.reports.facts import FACTS_ENV, FactsError, load_facts
from fairness_pipeline.reports.interpretation import suppression_note
from fairness_pipeline_tests.test_reports_builder import CONTACT, END, SHORTLIST, group, hand_report, hand_trends

FACTS = """data_source = "ATS exports of Acme Corp"
tool_distribution_date = 2025-06-01
auditor = "Independent Audits LLC"
employer = "Acme Corp"
"""


def test_packaged_facts_hold_the_whole_data_source_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FACTS_ENV, raising=False)
    facts = load_facts()
    assert "shortlisted, contacted, interviewed, hired), validated with" in facts.data_source
    assert facts.data_source.endswith("Great Expectations suite")
    assert facts.tool_distribution_date is None and facts.auditor is None


def test_a_facts_file_is_stated_in_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "facts.toml"
    path.write_text(FACTS)
    monkeypatch.setenv(FACTS_ENV, str(path))
    facts = load_facts()
    assert facts.tool_distribution_date == date(2025, 6, 1) and facts.employer == "Acme Corp"
    assert facts.data_explanation.startswith("Selection events logged")  # missing keys: the packaged text
    report = hand_report(data_source=None)
    validate_report(report)
    assert report["data_source"]["name"] == "ATS exports of Acme Corp"
    checklist = {c["id"]: c for c in report["compliance_checklist"]}
    assert checklist["ll144_distribution_date"]["status"] == "pass"
    assert checklist["ll144_distribution_date"]["detail"] == "2025-06-01"
    page = render_html(report)
    assert "<th>Auditor</th><td>Independent Audits LLC</td>" in page
    assert "<th>Employer</th><td>Acme Corp</td>" in page

    monkeypatch.delenv(FACTS_ENV)
    plain = hand_report()
    restated = apply_facts(plain, facts)
    assert restated["data_source"]["auditor"] == "Independent Audits LLC"
    assert plain["data_source"]["auditor"] is None  # the input is left as it was
    validate_report(restated)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('data_source = "x"\nvendor = "y"\n', "unknown keys \\['vendor'\\]"),
        ('tool_distribution_date = "last year"\n', "is not YYYY-MM-DD"),
        ('data_source = "  "\n', "'data_source' must be non-empty text"),
        ("data_source = \n", "cannot read"),
    ],
)
def test_a_bad_facts_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "facts.toml"
    path.write_text(text)
    with pytest.raises(FactsError, match=message):
        load_facts(path)


def test_small_counts_follow_one_rule_stated_once() -> None:
    report = hand_report()
    published = publish_report(report)
    other = group(published, SHORTLIST, "company_tier", "other")  # n = 4: the count of candidates is withheld
    assert other["n"] == "< 5" and other["impact_ratio"] is None
    page = render_html(report)
    assert page.count(suppression_note(5)[:40]) == 1
    assert "counts under the minimum" not in page and "rest on fewer than" not in page
    markdown = render_markdown(report)
    assert markdown.count("Small counts:") == 1
    # experience_band: unknown (4 candidates) is hidden, so the next smallest, 15+ (30), is withheld with it; 15+ is
    # insufficient evidence (6/30 against 80/250), and its sentence says which counts are withheld and why
    words = " ".join(t for table in published["detailed_analysis"] for t in table["interpretation"])
    assert (
        "15+ (experience_band) is classed as insufficient evidence, but its rates and ratios are withheld: its counts "
        "are withheld with another group's: otherwise the table total would give back a count under 5."
    ) in words
    assert "The number of candidates with no recorded experience_band is withheld (< 5)." in words


def test_left_out_groups_are_grey_rows_not_a_paragraph() -> None:
    report = hand_report()
    page = render_html(report)
    # other: 4 of 664 candidates (0.6%) in the headline pair's company_tier table of the LL144 summary
    assert len(re.findall(r'<tr class="left-out"><td>other</td>', page)) == 1
    assert "left out of the impact ratios and reported with" not in page
    assert "Left out under the 2% rule:" not in page
    assert not any("left out" in p for p in report["interpretation"])


def test_the_verdict_readjustment_is_explained_where_it_changes_a_finding() -> None:
    report = hand_report()
    startup = group(report, CONTACT, "company_tier", "startup")
    # startup 10/40 against faang 20/40: pooled z-test, Holm over the table's two compared groups
    pooled = 30 / 80
    z = (20 / 40 - 10 / 40) / math.sqrt(pooled * (1 - pooled) * (1 / 40 + 1 / 40))
    holm = 2 * 2 * norm.sf(z)
    assert startup["table_p_adjusted"] == pytest.approx(holm, rel=1e-6)
    assert startup["table_significant"] and not startup["significant"]
    assert startup["finding"] == "insufficient_evidence"
    sentence = next(s for s in report["executive_summary"]["key_findings"] if "shortlisted → contacted" in s)
    assert f"Its own table's adjustment finds the gap significant (p = {holm:.3f})" in sentence
    assert "does not keep it" in sentence
    shortlist = group(report, SHORTLIST, "company_tier", "startup")  # kept by both: no such note
    assert shortlist["significant"] and "Its own table's" not in " ".join(
        report["executive_summary"]["key_findings"][:1]
    )


def test_a_trend_with_few_windows_says_how_many() -> None:
    trends = hand_trends()
    one_day = trends[trends["window_end"] == END]
    from fairness_pipeline.reports.builder import build_report
    from fairness_pipeline.risk import assess
    from fairness_pipeline_tests.test_reports_builder import hand_impacts

    impacts = hand_impacts()
    report = build_report("acme", END, impacts, None, assess(impacts), trends=one_day, data_source="test")
    assert report["charts"]["trend"][0]["windows"] == 1
    assert "1 window(s) so far" in render_html(report)
    full = build_report("acme", END, impacts, None, assess(impacts), trends=trends, data_source="test")
    assert full["charts"]["trend"][0]["windows"] == 60 and "window(s) so far" not in render_html(full)
    assert END - timedelta(days=59) == min(trends["window_end"])
