"""The markdown report prints what came from the data (tenant ids, group names, dimension values) literally.

Rendered with markdown-it-py (CommonMark plus tables, as GitHub and the Dagster UI read it): a tenant id full of
markdown and HTML must come out as the same characters, with no emphasis, link, HTML tag or extra table cell.
"""

from __future__ import annotations

import html
import re
from collections import Counter

import pytest
from markdown_it import MarkdownIt

from fairness_pipeline.reports import build_report, render_markdown
from fairness_pipeline.reports.markdown import md_text
from fairness_pipeline.risk import assess
from fairness_pipeline_tests.test_reports_builder import END, GENERATED, hand_impacts

TENANT = "t|1 *x* <b>[a](b)"
GROUP = "start_up_ <i>x</i> `y` [z](http://e) ~~s~~ &amp;"
"""Stands in for the ``startup`` company tier: the adverse group the findings name."""


def render(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def inline_texts(markdown: str) -> list[str]:
    """The plain text of every inline run (heading, paragraph, list item, cell), as a reader sees it."""
    texts = []
    for token in MarkdownIt("commonmark").enable("table").parse(markdown):
        if token.type == "inline":
            texts.append("".join(child.content for child in token.children if child.type == "text"))
    return texts


def report_markdown(tenant: str, group: str) -> str:
    impacts = hand_impacts()
    impacts["tenant_id"] = tenant
    impacts["group"] = impacts["group"].replace("startup", group)
    assessment = assess(impacts, window_end=END, seed=11, context="nyc_ll144")
    report = build_report(tenant, END, impacts, None, assessment, data_source="hand-built", generated_at=GENERATED)
    return render_markdown(report, chart=False)


@pytest.fixture(scope="module")
def markdown() -> str:
    return report_markdown(TENANT, GROUP)


def test_unescaped_the_tenant_id_would_be_markup() -> None:
    """The premise: these strings are markup when pasted into markdown as they are."""
    raw = render(f"## Fairness report: {TENANT}\n\n- {GROUP}\n")
    assert "<em>x</em>" in raw and "<b>" in raw and '<a href="b">' in raw and "<i>x</i>" in raw


def test_tenant_id_renders_literally(markdown: str) -> None:
    texts = inline_texts(markdown)
    assert texts[0] == f"Fairness report: {TENANT}, window ending {END}"
    assert any(f"risk for {TENANT} in the 30-day window" in text for text in texts)  # the headline


def test_group_names_render_literally(markdown: str) -> None:
    findings = [text for text in inline_texts(markdown) if text.startswith("At the shown → shortlisted step")]
    assert findings and f"{GROUP} candidates (company_tier)" in findings[0]


def test_no_markup_from_the_data(markdown: str) -> None:
    """The same HTML elements, as many of each, as the report of a plain tenant and group: the data adds none."""
    page, plain = render(markdown), render(report_markdown("acme", "startup"))
    assert Counter(re.findall(r"<(\w+)", page)) == Counter(re.findall(r"<(\w+)", plain))
    assert "<b>" not in page and "<i>" not in page and "<a " not in page
    assert html.escape(TENANT, quote=False) in page
    tables = [block.splitlines() for block in markdown.split("\n\n") if block.startswith("| ")]
    assert [table[0].count(" | ") for table in tables] == [3, 6]  # the components (4 cells) and LL144 (7) tables
    assert all(line.count(" | ") == table[0].count(" | ") for table in tables for line in table[2:])


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("1. first", "<p>1. first</p>"),
        ("- item", "<p>- item</p>"),
        ("# title", "<p># title</p>"),
        ("a\nb  c", "<p>a b c</p>"),
        ("x &amp; y", "<p>x &amp;amp; y</p>"),
        ("back\\slash", "<p>back\\slash</p>"),
    ],
)
def test_md_text_keeps_block_syntax_and_entities_out(text: str, rendered: str) -> None:
    assert render(md_text(text)).strip() == rendered
