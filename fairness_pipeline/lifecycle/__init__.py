"""Data lifecycle: the retention policy (how long each kind of data is kept, never below the regulatory minimum)
and the erasure of one candidate's data. Plain Python: the SQL is in ``store/lifecycle.py``, the commands in
``cli/lifecycle.py``, the daily schedule in ``defs/retention.py``."""

from fairness_pipeline.lifecycle.erasure import subject_hash
from fairness_pipeline.lifecycle.policy import (
    CATEGORIES,
    REGULATORY_MINIMUM_DAYS,
    PolicyError,
    RetentionPolicy,
    load_policy,
)

__all__ = [
    "CATEGORIES",
    "REGULATORY_MINIMUM_DAYS",
    "PolicyError",
    "RetentionPolicy",
    "load_policy",
    "subject_hash",
]
