"""Pure-Python statistics core: selection rates, impact ratios and significance tests on aggregated counts.

Nothing here touches Dagster or the database. The rules come from ``docs/fairness-methods.md``.
"""
