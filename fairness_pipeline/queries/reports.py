"""Read queries for summaries printed by the CLI and written to reports."""

ADVERSE_FINDINGS = """
SELECT tenant_id, dimension, group_value, n, impact_ratio, ci_low, ci_high, p_adjusted, significant, flip_flop
FROM impact_ratios
WHERE window_end = %(window_end)s AND stage_pair = %(stage_pair)s AND adverse_impact
  AND position('+' IN dimension) = 0
ORDER BY tenant_id, significant DESC, impact_ratio
"""
"""Groups with adverse impact on the single dimensions of one stage pair (intersections are in the reports)."""

SCORING_FINDINGS = """
SELECT tenant_id, dimension, group_value, n, scoring_rate, impact_ratio, ci_low, ci_high, p_adjusted, significant
FROM scoring_rate_ratios
WHERE window_end = %(window_end)s AND adverse_impact AND position('+' IN dimension) = 0
ORDER BY tenant_id, significant DESC, impact_ratio
"""
"""Groups whose LL144 scoring rate is adverse (impact ratio < 0.80) in the window, single dimensions."""

EXPOSURE_FINDINGS = """
SELECT tenant_id, dimension, group_value, searches, exposure_ratio, ratio_ci_low, ratio_ci_high, p_adjusted,
       significant, skew_at_k, treatment_ratio, treatment_significant
FROM rank_exposure
WHERE window_end = %(window_end)s AND position('+' IN dimension) = 0
  AND (significant AND low_exposure OR treatment_significant AND treatment_ratio < %(threshold)s)
ORDER BY tenant_id, significant DESC, exposure_ratio
"""
"""Groups ranked significantly lower than the best-exposed group, or than their scores would place them, by a ratio
below the practical threshold (``threshold``, 0.80), single dimensions."""

SLATE_FINDINGS = """
SELECT s.tenant_id, s.dimension, sum(s.assessed)::bigint AS assessed, sum(s.concentrated)::bigint AS concentrated,
       sum(s.concentrated)::float8 / nullif(sum(s.assessed), 0) AS concentrated_share,
       sum(s.expected_share * s.assessed) / nullif(sum(s.assessed), 0) AS expected_share,
       count(*) FILTER (WHERE s.excess_significant) AS significant_days, count(*) AS days,
       (SELECT g.group_value FROM slate_concentration_groups g
        WHERE g.tenant_id = s.tenant_id AND g.dimension = s.dimension AND g.day BETWEEN %(first_day)s AND %(last_day)s
        GROUP BY g.group_value ORDER BY sum(g.concentrated) DESC, g.group_value LIMIT 1) AS top_group
FROM slate_concentration s
WHERE s.day BETWEEN %(first_day)s AND %(last_day)s AND position('+' IN s.dimension) = 0
GROUP BY s.tenant_id, s.dimension
HAVING count(*) FILTER (WHERE s.excess_significant) > 0
ORDER BY s.tenant_id, concentrated_share DESC
"""
"""Per tenant and dimension over the window's days: slates with more than 70% of one group, against the share expected
by chance, on the days where the excess is significant, and the group that dominates most of them."""

TREND_FINDINGS = """
SELECT tenant_id, stage_pair, dimension, group_value, ratio_previous, ratio_current, p_adjusted, worsening,
       latest_ratio, slope_per_day, approaching_threshold
FROM fairness_trends
WHERE window_end = %(window_end)s AND position('+' IN dimension) = 0 AND (worsening OR approaching_threshold)
ORDER BY tenant_id, worsening DESC, p_adjusted, stage_pair
"""
"""Series of single dimensions that worsened significantly week over week, or approach the 0.80 threshold."""
