"""Risk level from the composite score, override rules, regulatory contexts, and the actions of each level.

Everything configurable is in ``rules.yaml`` beside this module (its header documents the format). The level is
found in three steps, each recorded: (1) the score's level from the thresholds (a context may replace them);
(2) the rules, in file order, then the context's added rules, each raising, lowering or setting the level when its
condition holds; (3) the actions of the final level, of each flag raised, and of the context.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fairness_pipeline.metrics.window import DEFAULT_ANALYSIS
from fairness_pipeline.risk.components import ComponentValue, is_intersection
from fairness_pipeline.risk.levels import LEVELS
from fairness_pipeline.risk.profiles import read_yaml

SHIPPED_RULES = Path(__file__).with_name("rules.yaml")
BANDS: tuple[str, ...] = ("EXCELLENT", "GOOD", "MODERATE", "POOR", "CRITICAL")
EFFECTS: tuple[str, ...] = ("at_least", "at_most", "set")
SCOPES: tuple[str, ...] = ("all", "single")

CONDITIONS: dict[str, dict[str, Any]] = {
    "significant_adverse": {"below": DEFAULT_ANALYSIS.threshold, "practical": True, "scope": "all"},
    "insufficient_evidence": {"below": DEFAULT_ANALYSIS.threshold, "scope": "single"},
    "adverse_impact": {"below": DEFAULT_ANALYSIS.threshold, "scope": "all"},
    "components_at_least": {"value": 0.60, "count": 2},
    "no_comparison": {},
}
"""Known conditions and their parameters with defaults (the defaults also give each parameter's type)."""

_SAMPLE_FIELDS: dict[str, Any] = {
    "count": 1,
    "below": 0.8,
    "stage_pair": "a->b",
    "dimension": "d",
    "group": "g",
    "impact_ratio": 0.5,
    "p_adjusted": 0.01,
    "value": 0.6,
    "names": "adverse_impact",
}


class RulesError(ValueError):
    """The rules file is invalid, or a requested context does not exist."""


@dataclass(frozen=True)
class Rule:
    id: str
    condition: str
    params: dict[str, Any]
    effect: str | None
    level: str | None
    flag: str | None
    reason: str
    source: str
    """``base`` or ``context:<name>``."""


@dataclass(frozen=True)
class LevelPolicy:
    timeline: str
    days: int
    urgency: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    name: str
    description: str
    thresholds: dict[str, float] | None
    remove_rules: tuple[str, ...]
    add_rules: tuple[Rule, ...]
    flags: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    thresholds: dict[str, float]
    bands: dict[str, float]
    rules: tuple[Rule, ...]
    levels: dict[str, LevelPolicy]
    flag_actions: dict[str, tuple[str, ...]]
    contexts: dict[str, Context]
    source: str


@dataclass(frozen=True)
class Classification:
    """The outcome of ``classify``: the levels before and after rules, and what was applied."""

    score_level: str | None
    level: str
    band: str | None
    thresholds: dict[str, float]
    applied_rules: list[dict[str, Any]]
    flags: list[str]
    actions: list[str]
    timeline: dict[str, Any]
    context: str | None
    context_description: str | None = None


# --- loading ---------------------------------------------------------------------------------------------------------


def _fail(path: Path, where: str, problem: str) -> RulesError:
    return RulesError(f"{path}: {where}: {problem}")


def _thresholds(path: Path, where: str, raw: Any, names: tuple[str, ...], first_zero: bool) -> dict[str, float]:
    if not isinstance(raw, dict) or list(raw) != list(names):
        raise _fail(path, where, f"expected the keys {list(names)} in this order, got {raw!r}")
    values = []
    for name in names:
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise _fail(path, where, f"{name} must be a number in [0, 1], got {value!r}")
        values.append(float(value))
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise _fail(path, where, f"values must increase strictly, got {values}")
    if first_zero and values[0] != 0:
        raise _fail(path, where, f"the first band must start at 0, got {values[0]}")
    return dict(zip(names, values, strict=True))


def _rule(path: Path, raw: Any, source: str) -> Rule:
    if not isinstance(raw, dict):
        raise _fail(path, f"{source} rules", f"each rule must be a mapping, got {raw!r}")
    rule_id = raw.get("id")
    where = f"rule {rule_id!r}"
    if not isinstance(rule_id, str) or not rule_id:
        raise _fail(path, where, "'id' must be a non-empty string")
    allowed = {"id", "condition", "params", "reason", "flag", *EFFECTS}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _fail(path, where, f"unknown keys {extra}; allowed: {sorted(allowed)}")
    condition = raw.get("condition")
    if condition not in CONDITIONS:
        raise _fail(path, where, f"unknown condition {condition!r}; known: {sorted(CONDITIONS)}")
    params = dict(CONDITIONS[condition])
    given = raw.get("params") or {}
    if not isinstance(given, dict):
        raise _fail(path, where, "'params' must be a mapping")
    for key, value in given.items():
        if key not in params:
            raise _fail(path, where, f"unknown parameter {key!r} of {condition}; known: {sorted(params)}")
        default = params[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = value in SCOPES
        if not ok:
            raise _fail(path, where, f"parameter {key!r} has an invalid value {value!r}")
        params[key] = float(value) if isinstance(default, float) else value
    effects = [e for e in EFFECTS if e in raw]
    if len(effects) > 1:
        raise _fail(path, where, f"at most one of {list(EFFECTS)}, got {effects}")
    effect = effects[0] if effects else None
    level = raw[effect] if effect else None
    if effect and level not in LEVELS:
        raise _fail(path, where, f"{effect} must be one of {list(LEVELS)}, got {level!r}")
    flag = raw.get("flag")
    if flag is not None and (not isinstance(flag, str) or not flag):
        raise _fail(path, where, "'flag' must be a non-empty string")
    if effect is None and flag is None:
        raise _fail(path, where, f"a rule needs an effect ({', '.join(EFFECTS)}) or a flag")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise _fail(path, where, "'reason' must be a non-empty text")
    try:
        reason.format(**_SAMPLE_FIELDS)
    except (KeyError, IndexError, ValueError) as exc:
        raise _fail(path, where, f"reason template cannot be filled: {exc!r}") from exc
    return Rule(rule_id, condition, params, effect, level, flag, " ".join(reason.split()), source)


def _texts(path: Path, where: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, str) and t.strip() for t in raw):
        raise _fail(path, where, "expected a list of non-empty texts")
    return tuple(" ".join(t.split()) for t in raw)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules file (the shipped ``rules.yaml`` by default), validated; errors name the file and the place.

    Cached while the file is unchanged.
    """
    path = Path(path) if path is not None else SHIPPED_RULES
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # read_yaml reports the problem
    return _load_rules(path, mtime)


@functools.lru_cache(maxsize=8)
def _load_rules(path: Path, mtime: int) -> RuleSet:
    data = read_yaml(path, RulesError)
    known = {"thresholds", "bands", "rules", "levels", "flag_actions", "contexts"}
    extra = sorted(str(k) for k in set(data) - known)
    if extra:
        raise _fail(path, "top level", f"unknown keys {extra}; known: {sorted(known)}")
    thresholds = _thresholds(path, "thresholds", data.get("thresholds"), LEVELS[1:], first_zero=False)
    bands = _thresholds(path, "bands", data.get("bands"), BANDS, first_zero=True)
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _fail(path, "rules", "expected a list")
    rules = tuple(_rule(path, r, "base") for r in raw_rules)
    raw_levels = data.get("levels")
    if not isinstance(raw_levels, dict) or sorted(raw_levels) != sorted(LEVELS):
        raise _fail(path, "levels", f"expected exactly the levels {list(LEVELS)}")
    levels = {}
    for name in LEVELS:
        body = raw_levels[name]
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("timeline"), str)
            or not isinstance(body.get("days"), int)
        ):
            raise _fail(path, f"level {name}", "needs 'timeline' (text), 'days' (integer), 'urgency', 'actions'")
        levels[name] = LevelPolicy(
            body["timeline"],
            body["days"],
            str(body.get("urgency", name.lower())),
            _texts(path, f"level {name} actions", body.get("actions")),
        )
    raw_flags = data.get("flag_actions") or {}
    if not isinstance(raw_flags, dict):
        raise _fail(path, "flag_actions", "expected a mapping of flag -> list of actions")
    flag_actions = {str(k): _texts(path, f"flag_actions {k}", v) for k, v in raw_flags.items()}
    contexts = {}
    raw_contexts = data.get("contexts") or {}
    if not isinstance(raw_contexts, dict):
        raise _fail(path, "contexts", "expected a mapping of name -> context")
    for name, body in raw_contexts.items():
        where = f"context {name!r}"
        allowed = {"description", "thresholds", "remove_rules", "add_rules", "flags", "actions"}
        if not isinstance(body, dict) or set(body) - allowed:
            raise _fail(path, where, f"expected a mapping with keys among {sorted(allowed)}")
        ctx_thresholds = body.get("thresholds")
        if ctx_thresholds is not None:
            ctx_thresholds = _thresholds(path, f"{where} thresholds", ctx_thresholds, LEVELS[1:], first_zero=False)
        remove = tuple(body.get("remove_rules") or ())
        unknown = sorted(set(remove) - {r.id for r in rules})
        if unknown:
            raise _fail(path, where, f"remove_rules names unknown rules {unknown}")
        add = tuple(_rule(path, r, f"context:{name}") for r in body.get("add_rules") or ())
        contexts[str(name)] = Context(
            str(name),
            " ".join(str(body.get("description", "")).split()),
            ctx_thresholds,
            remove,
            add,
            _texts(path, f"{where} flags", body.get("flags")),
            _texts(path, f"{where} actions", body.get("actions")),
        )
    ids = [r.id for r in rules] + [r.id for c in contexts.values() for r in c.add_rules]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise _fail(path, "rules", f"duplicate rule ids {duplicated}")
    return RuleSet(thresholds, bands, rules, levels, flag_actions, contexts, str(path))


# --- conditions ------------------------------------------------------------------------------------------------------


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _in_scope(impacts: pd.DataFrame, scope: str) -> pd.DataFrame:
    compared = impacts[impacts["impact_ratio"].notna() & ~impacts["is_reference"].astype(bool)]
    if scope == "single":
        compared = compared[~compared["dimension"].map(is_intersection).astype(bool)]
    return compared


def _significant(rows: pd.DataFrame, below: float, practical: bool) -> pd.DataFrame:
    mask = (rows["impact_ratio"] < below) & _flag(rows, "adverse_impact") & _flag(rows, "significant")
    if practical:
        mask &= ~_flag(rows, "flip_flop")
    return rows[mask]


def _findings(rows: pd.DataFrame) -> list[dict[str, Any]]:
    ordered = rows.sort_values(["impact_ratio", "stage_pair", "dimension", "group"], kind="stable")
    out = []
    for row in ordered.itertuples(index=False):
        p_adjusted = getattr(row, "p_adjusted", math.nan)
        out.append(
            {
                "stage_pair": row.stage_pair,
                "dimension": row.dimension,
                "group": row.group,
                "impact_ratio": float(row.impact_ratio),
                "n": int(row.n),
                "x": int(row.x),
                "p_adjusted": None if pd.isna(p_adjusted) else float(p_adjusted),
                "significant": bool(row.significant) if not pd.isna(row.significant) else False,
            }
        )
    return out


def _match_findings(rows: pd.DataFrame, below: float) -> dict[str, Any] | None:
    if rows.empty:
        return None
    findings = _findings(rows)
    worst = findings[0]
    p_adjusted = worst["p_adjusted"] if worst["p_adjusted"] is not None else math.nan
    return {
        "count": len(findings),
        "below": below,
        "stage_pair": worst["stage_pair"],
        "dimension": worst["dimension"],
        "group": worst["group"],
        "impact_ratio": worst["impact_ratio"],
        "p_adjusted": p_adjusted,
        "finding": worst,
        "findings": findings,
    }


def evaluate(
    condition: str, params: Mapping[str, Any], impacts: pd.DataFrame, components: Mapping[str, ComponentValue]
) -> dict[str, Any] | None:
    """The reason fields when ``condition`` holds, else None."""
    if condition == "significant_adverse":
        rows = _significant(_in_scope(impacts, params["scope"]), params["below"], params["practical"])
        return _match_findings(rows, params["below"])
    if condition == "insufficient_evidence":
        rows = _in_scope(impacts, params["scope"])
        if not _significant(rows, 1.0, practical=True).empty:
            return None
        small = _flag(rows, "low_sample") | _flag(rows, "flip_flop")
        mask = (rows["impact_ratio"] < params["below"]) & _flag(rows, "adverse_impact") & small
        mask &= ~_flag(rows, "significant")
        return _match_findings(rows[mask], params["below"])
    if condition == "adverse_impact":
        rows = _in_scope(impacts, params["scope"])
        rows = rows[(rows["impact_ratio"] < params["below"]) & _flag(rows, "adverse_impact")]
        return _match_findings(rows, params["below"])
    if condition == "components_at_least":
        names = [c.name for c in components.values() if c.value is not None and c.value >= params["value"]]
        if len(names) < params["count"]:
            return None
        return {"count": len(names), "value": params["value"], "names": ", ".join(names)}
    if condition == "no_comparison":
        return None if len(_in_scope(impacts, "all")) else {}
    raise KeyError(condition)


# --- classification --------------------------------------------------------------------------------------------------


def level_for_score(score: float, thresholds: Mapping[str, float]) -> str:
    """LOW below the MEDIUM threshold; otherwise the highest level whose threshold the score reaches (>=)."""
    level = LEVELS[0]
    for name in LEVELS[1:]:
        if score >= thresholds[name]:
            level = name
    return level


def band_for_score(score: float, bands: Mapping[str, float]) -> str:
    band = BANDS[0]
    for name in BANDS[1:]:
        if score >= bands[name]:
            band = name
    return band


def _apply(effect: str | None, target: str | None, level: str) -> str:
    if effect is None or target is None:
        return level
    index, target_index = LEVELS.index(level), LEVELS.index(target)
    if effect == "at_least":
        return LEVELS[max(index, target_index)]
    if effect == "at_most":
        return LEVELS[min(index, target_index)]
    return target


def classify(
    score: float | None,
    impacts: pd.DataFrame,
    components: Mapping[str, ComponentValue],
    rules: RuleSet,
    context: str | None = None,
) -> Classification:
    """Level, band, applied rules, flags, actions and timeline for one tenant and day."""
    ctx = None
    if context is not None:
        if context not in rules.contexts:
            raise RulesError(f"unknown regulatory context {context!r}; available: {sorted(rules.contexts)}")
        ctx = rules.contexts[context]
    thresholds = ctx.thresholds if ctx and ctx.thresholds else rules.thresholds
    score_level = level_for_score(score, thresholds) if score is not None else None
    level = score_level or LEVELS[0]
    band = band_for_score(score, rules.bands) if score is not None else None
    applied: list[dict[str, Any]] = []
    flags: list[str] = list(ctx.flags) if ctx else []
    active = [r for r in rules.rules if not ctx or r.id not in ctx.remove_rules] + list(ctx.add_rules if ctx else ())
    for rule in active:
        matched = evaluate(rule.condition, rule.params, impacts, components)
        if matched is None:
            continue
        before = level
        level = _apply(rule.effect, rule.level, level)
        if rule.flag and rule.flag not in flags:
            flags.append(rule.flag)
        fields = {k: v for k, v in matched.items() if k in _SAMPLE_FIELDS}
        applied.append(
            {
                "rule": rule.id,
                "source": rule.source,
                "reason": rule.reason.format(**fields),
                "effect": rule.effect,
                "target_level": rule.level,
                "level_before": before,
                "level_after": level,
                "changed": before != level,
                "flag": rule.flag,
                "finding": matched.get("finding"),
            }
        )
    policy = rules.levels[level]
    actions = list(policy.actions)
    for flag in flags:
        actions += [a for a in rules.flag_actions.get(flag, ()) if a not in actions]
    if ctx:
        actions += [a for a in ctx.actions if a not in actions]
    timeline = {"level": level, "timeline": policy.timeline, "days": policy.days, "urgency": policy.urgency}
    return Classification(
        score_level=score_level,
        level=level,
        band=band,
        thresholds=dict(thresholds),
        applied_rules=applied,
        flags=flags,
        actions=actions,
        timeline=timeline,
        context=context,
        context_description=ctx.description if ctx else None,
    )
