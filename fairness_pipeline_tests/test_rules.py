"""Each rule is declared once: the Dagster config, the partition mappings, the risk and alert levels and the audits'
names all read the domain's declarations, and the window's lineage covers the days a run reads."""

from __future__ import annotations

import dataclasses
from datetime import date

import pydantic
import pytest

from fairness_pipeline.alerts import model as alert_model
from fairness_pipeline.audits import AUDIT_TABLES, RISK_AUDITS
from fairness_pipeline.defs import automation
from fairness_pipeline.defs.assets.risk import RiskConfig
from fairness_pipeline.defs.config import AuditConfig, SlateConfig, TrendConfig, WindowConfig
from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS, HEADLINE_STAGE_PAIR
from fairness_pipeline.risk import components
from fairness_pipeline.risk.levels import LEVELS, levels_at_or_above

DAY = date(2026, 3, 31)


def test_the_analysis_defaults_are_the_methods_documents() -> None:
    assert (DEFAULT_ANALYSIS.window_days, DEFAULT_ANALYSIS.alpha, DEFAULT_ANALYSIS.threshold) == (30, 0.05, 0.80)
    assert (DEFAULT_ANALYSIS.min_share, DEFAULT_ANALYSIS.min_sample, DEFAULT_ANALYSIS.trend_days) == (0.02, 20, 90)
    assert (DEFAULT_ANALYSIS.min_reference_candidates, DEFAULT_ANALYSIS.min_reference_selections) == (30, 5)
    assert HEADLINE_STAGE_PAIR == "shown->shortlisted"
    assert ("shown", "shortlisted") in DEFAULT_ANALYSIS.stage_pairs


@pytest.mark.parametrize("config", [WindowConfig(), AuditConfig(), TrendConfig()])
def test_config_defaults_build_the_declared_settings(config: WindowConfig) -> None:
    assert config.settings() == DEFAULT_ANALYSIS


def test_config_changes_reach_the_settings_and_other_fields_stay() -> None:
    settings = AuditConfig(window_days=7, alpha=0.01, n_boot=10).settings()
    assert settings == dataclasses.replace(DEFAULT_ANALYSIS, window_days=7, alpha=0.01)
    assert SlateConfig().alpha == DEFAULT_ANALYSIS.alpha
    assert RiskConfig().window_days == DEFAULT_ANALYSIS.window_days
    component_defaults = components.ComponentSettings()
    assert (component_defaults.threshold, component_defaults.min_share, component_defaults.trend_days) == (
        0.80,
        0.02,
        90,
    )


def test_the_default_window_is_thirty_days_ending_on_the_day() -> None:
    first, last = DEFAULT_ANALYSIS.window(DAY)
    assert (first, last) == (date(2026, 3, 2), DAY) and (last - first).days + 1 == 30


def test_a_window_longer_than_the_lineage_is_refused_a_shorter_one_accepted() -> None:
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 30"):
        WindowConfig(window_days=31)
    with pytest.raises(pydantic.ValidationError):
        TrendConfig(window_days=0)
    assert WindowConfig(window_days=3).settings().window(DAY) == (date(2026, 3, 29), DAY)


def test_risk_levels_are_one_declaration() -> None:
    assert LEVELS == ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    assert alert_model.LEVELS is LEVELS
    assert sorted(alert_model.REVIEW_LEVELS) == ["CRITICAL", "HIGH"]
    assert levels_at_or_above("MEDIUM") == ("MEDIUM", "HIGH", "CRITICAL")
    assert automation.levels_at_or_above("CRITICAL") == ["CRITICAL"]
    with pytest.raises(ValueError, match="FAIRNESS_ALERT_LEVEL='SEVERE' is not one of LOW, MEDIUM, HIGH, CRITICAL"):
        automation.levels_at_or_above("SEVERE")


def test_each_audit_has_one_asset_in_the_audits_group() -> None:
    from fairness_pipeline.definitions import defs

    groups = {node.key.to_user_string(): node.group_name for node in defs.resolve_asset_graph().asset_nodes}
    assert {groups[table] for table in AUDIT_TABLES.values()} == {"audits"}
    assert set(RISK_AUDITS) < set(AUDIT_TABLES) and components.AUDIT_NAMES == RISK_AUDITS
