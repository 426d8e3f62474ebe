"""SQL of the risk and report assets: read a window's results, store verdicts and reports."""

IMPACTS_FOR_WINDOW = """
SELECT tenant_id, stage_pair, dimension, group_value AS "group", n, x, selection_rate, share, reference_group,
       reference_rate, is_reference, excluded_small_share, impact_ratio, adverse_impact, test, statistic, p_value,
       p_omnibus, p_adjusted, adjustment_method, significant, ci_low, ci_high, shortfall, flip_flop, flip_flop_ratio,
       cohens_h, low_sample, undefined_reason
FROM impact_ratios
WHERE window_end = %(window_end)s
ORDER BY tenant_id, stage_pair, dimension, group_value
"""

IMPACT_SERIES = """
SELECT window_end, tenant_id, stage_pair, dimension, group_value AS "group", n, x, impact_ratio
FROM impact_ratios
WHERE window_end BETWEEN %(first_day)s AND %(last_day)s AND position('+' IN dimension) = 0
ORDER BY window_end, tenant_id, stage_pair, dimension, group_value
"""
"""Past impact ratios of the single dimensions: the trend component and the report's 90-day chart."""

SCORING_FOR_WINDOW = """
SELECT tenant_id, dimension, group_value AS "group", n, above_median AS x, impact_ratio, significant
FROM scoring_rate_ratios WHERE window_end = %(window_end)s
"""

EXPOSURE_FOR_WINDOW = """
SELECT tenant_id, dimension, group_value AS "group", exposure_ratio, significant
FROM rank_exposure WHERE window_end = %(window_end)s
"""

SLATES_FOR_DAY = """
SELECT tenant_id, dimension, assessed AS slates, concentrated, excess_significant
FROM slate_concentration WHERE day = %(window_end)s
"""

AUDIT_TABLES_PRESENT = """
SELECT to_regclass('scoring_rate_ratios') IS NOT NULL AND to_regclass('rank_exposure') IS NOT NULL
   AND to_regclass('slate_concentration') IS NOT NULL
"""

DELETE_ASSESSMENTS = "DELETE FROM risk_assessments WHERE window_end = %(window_end)s"

INSERT_ASSESSMENT = """
INSERT INTO risk_assessments (window_end, tenant_id, profile, context, score, ci_low, ci_high, band, level,
    dominant_component, assessment)
VALUES (%(window_end)s, %(tenant_id)s, %(profile)s, %(context)s, %(score)s, %(ci_low)s, %(ci_high)s, %(band)s,
    %(level)s, %(dominant_component)s, %(assessment)s)
"""

ASSESSMENTS_FOR_WINDOW = """
SELECT tenant_id, level, score, assessment FROM risk_assessments WHERE window_end = %(window_end)s ORDER BY tenant_id
"""

ASSESSMENTS_AT_LEAST = """
SELECT tenant_id, level, score, ci_low, ci_high, assessment
FROM risk_assessments
WHERE window_end = %(window_end)s AND level = ANY(%(levels)s)
ORDER BY tenant_id
"""

DELETE_REPORTS = "DELETE FROM fairness_reports WHERE window_end = %(window_end)s"

INSERT_REPORT = """
INSERT INTO fairness_reports (window_end, tenant_id, report_json, report_html, report_markdown)
VALUES (%(window_end)s, %(tenant_id)s, %(report_json)s, %(report_html)s, %(report_markdown)s)
"""

REPORT = """
SELECT report_json, report_html, report_markdown FROM fairness_reports
WHERE tenant_id = %(tenant_id)s AND window_end = %(window_end)s
"""

LATEST_REPORT_DAY = "SELECT max(window_end) FROM fairness_reports WHERE tenant_id = %(tenant_id)s"
