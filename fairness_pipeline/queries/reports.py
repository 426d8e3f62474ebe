"""Read queries for summaries printed by the CLI and written to reports."""

ADVERSE_FINDINGS = """
SELECT tenant_id, dimension, group_value, n, impact_ratio, ci_low, ci_high, p_adjusted, significant, flip_flop
FROM impact_ratios
WHERE window_end = %(window_end)s AND stage_pair = %(stage_pair)s AND adverse_impact
  AND position('+' IN dimension) = 0
ORDER BY tenant_id, significant DESC, impact_ratio
"""
"""Groups with adverse impact on the single dimensions of one stage pair (intersections are in the reports)."""
