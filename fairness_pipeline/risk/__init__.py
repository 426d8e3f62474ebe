"""Risk classification of one tenant and day: components, composite score with a bootstrap interval, risk level.

Pure Python on the impact tables of ``fairness_pipeline.metrics``; no Dagster, no database. Entry point: ``assess``.
"""

from fairness_pipeline.risk.assessment import ComponentScore, RiskAssessment, assess
from fairness_pipeline.risk.classification import BANDS, LEVELS, RulesError, load_rules
from fairness_pipeline.risk.components import COMPONENTS, RESAMPLED, ComponentSettings
from fairness_pipeline.risk.profiles import PROFILES_ENV, ProfileError, WeightProfile, get_profile, load_profiles

__all__ = [
    "BANDS",
    "COMPONENTS",
    "LEVELS",
    "PROFILES_ENV",
    "RESAMPLED",
    "ComponentScore",
    "ComponentSettings",
    "ProfileError",
    "RiskAssessment",
    "RulesError",
    "WeightProfile",
    "assess",
    "get_profile",
    "load_profiles",
    "load_rules",
]
