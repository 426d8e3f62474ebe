"""Numbers in report sentences: counts read back from a table as floats still print as whole numbers."""

from __future__ import annotations

import numpy as np

from fairness_pipeline.reports import interpretation as words


def test_counts_print_as_whole_numbers_whatever_their_type() -> None:
    assert words.fmt_count(484.0) == "484"
    assert words.fmt_count(np.float64(12345.0)) == "12,345"
    assert words.fmt_count(np.int64(7)) == "7"
    assert words.fmt_count(4549) == "4,549"
    assert words.fmt_count("< 5") == "< 5"
    assert words.fmt_count(None) == "n/a"
    assert words.fmt_count(2.5) == "2.5"  # not a count: shown as it is


def test_a_shortfall_read_as_a_float_reads_as_an_integer() -> None:
    table = {
        "stage_pair": "shown->shortlisted",
        "dimension": "company_tier",
        "reference_group": "faang",
        "reference_rate": 0.065,
    }
    row = {
        "finding": "adverse_impact",
        "group": "startup",
        "selection_rate": 0.023,
        "impact_ratio": 0.35,
        "adjustment_method": "holm",
        "p_adjusted": 1e-9,
        "shortfall": 484.0,
    }
    sentence = words.group_sentence(table, row, k=5)
    assert "; 484 more selection(s) would have brought the group to the reference rate" in sentence
    assert "484.0" not in sentence
