"""Risk classification of one tenant and day: components, composite score with a bootstrap interval, risk level.

Pure Python on the impact tables of ``fairness_pipeline.metrics``; no Dagster, no database. Entry point: ``assess``.
The names below are imported on first use, so that ``risk.levels`` (read by the alerts) costs no pandas or scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ComponentScore": "assessment",
    "RiskAssessment": "assessment",
    "assess": "assessment",
    "BANDS": "classification",
    "RulesError": "classification",
    "load_rules": "classification",
    "COMPONENTS": "components",
    "RESAMPLED": "components",
    "ComponentSettings": "components",
    "LEVELS": "levels",
    "PROFILES_ENV": "profiles",
    "ProfileError": "profiles",
    "WeightProfile": "profiles",
    "get_profile": "profiles",
    "load_profiles": "profiles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
