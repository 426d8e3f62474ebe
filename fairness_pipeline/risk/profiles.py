"""Weight profiles of the composite score: loaded from YAML and validated.

The shipped profiles are in ``profiles.yaml`` beside this module. A user file of the same format, given by the
``profiles_path`` argument or the ``FAIRNESS_RISK_PROFILES`` environment variable, adds profiles or replaces shipped
ones of the same name. Every error names the file, the profile and the problem.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fairness_pipeline.risk.components import COMPONENTS

SHIPPED_PROFILES = Path(__file__).with_name("profiles.yaml")
PROFILES_ENV = "FAIRNESS_RISK_PROFILES"
SUM_TOLERANCE = 1e-6


class ProfileError(ValueError):
    """A weight profile file or profile is invalid, or a requested profile does not exist."""


@dataclass(frozen=True)
class WeightProfile:
    name: str
    description: str
    weights: dict[str, float]
    source: str
    """The file the profile was read from."""


def read_yaml(path: Path, error: type[ValueError]) -> dict[str, Any]:
    """A YAML mapping from ``path``; ``error`` names the file on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _validate(path: Path, name: Any, body: Any) -> WeightProfile:
    where = f"{path}: profile {name!r}"
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{where}: the profile name must be a non-empty string")
    if not isinstance(body, dict):
        raise ProfileError(f"{where}: expected a mapping with 'weights' (and optionally 'description')")
    extra = sorted(set(body) - {"weights", "description"})
    if extra:
        raise ProfileError(f"{where}: unknown keys {extra}; allowed: 'weights', 'description'")
    weights = body.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ProfileError(f"{where}: 'weights' must be a non-empty mapping of component -> weight")
    unknown = sorted(str(k) for k in weights if k not in COMPONENTS)
    if unknown:
        raise ProfileError(f"{where}: unknown component(s) {unknown}; known: {list(COMPONENTS)}")
    clean: dict[str, float] = {}
    for component, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ProfileError(f"{where}: weight of {component!r} must be a finite number, got {weight!r}")
        if weight < 0:
            raise ProfileError(f"{where}: weight of {component!r} is negative ({weight})")
        clean[component] = float(weight)
    total = sum(clean.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ProfileError(f"{where}: weights sum to {total:.6g}, not 1")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: 'description' must be text")
    ordered = {c: clean.get(c, 0.0) for c in COMPONENTS}
    return WeightProfile(name=name, description=description.strip(), weights=ordered, source=str(path))


def load_profile_file(path: str | Path) -> dict[str, WeightProfile]:
    """All profiles of one file, validated (cached while the file is unchanged)."""
    path = Path(path)
    return dict(_load_profile_file(path, _mtime(path)))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1  # read_yaml reports the problem


@functools.lru_cache(maxsize=32)
def _load_profile_file(path: Path, mtime: int) -> dict[str, WeightProfile]:
    data = read_yaml(path, ProfileError)
    extra = sorted(str(k) for k in data if k != "profiles")
    if extra:
        raise ProfileError(f"{path}: unknown top-level keys {extra}; expected only 'profiles'")
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ProfileError(f"{path}: 'profiles' must be a non-empty mapping of name -> profile")
    return {name: _validate(path, name, body) for name, body in profiles.items()}


def load_profiles(path: str | Path | None = None) -> dict[str, WeightProfile]:
    """Shipped profiles plus those of ``path`` (or of ``$FAIRNESS_RISK_PROFILES`` when ``path`` is None)."""
    profiles = load_profile_file(SHIPPED_PROFILES)
    user = path if path is not None else os.environ.get(PROFILES_ENV, "").strip() or None
    if user is not None:
        profiles.update(load_profile_file(user))
    return profiles


def get_profile(name: str, path: str | Path | None = None) -> WeightProfile:
    """One profile by name, or ``ProfileError`` listing the available names and the files read."""
    profiles = load_profiles(path)
    if name not in profiles:
        sources = sorted({p.source for p in profiles.values()})
        raise ProfileError(f"unknown profile {name!r}; available: {sorted(profiles)} (from {', '.join(sources)})")
    return profiles[name]
