"""Weight profiles: the shipped ones, user-defined ones, and errors that name the file, the profile and the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fairness_pipeline.metrics.impact import impact_ratio_table
from fairness_pipeline.risk import COMPONENTS, PROFILES_ENV, ProfileError, assess, get_profile, load_profiles
from fairness_pipeline.risk.profiles import SHIPPED_PROFILES


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_are_valid_and_complete(monkeypatch) -> None:
    monkeypatch.delenv(PROFILES_ENV, raising=False)
    profiles = load_profiles()
    assert {"default", "hiring", "nyc_ll144", "eu_ai_act_high_risk"} <= set(profiles)
    for profile in profiles.values():
        assert list(profile.weights) == list(COMPONENTS)
        assert sum(profile.weights.values()) == pytest.approx(1.0)
        assert all(w >= 0 for w in profile.weights.values())
        assert profile.source == str(SHIPPED_PROFILES)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("weights: {adverse_impact: 1.2, evidence: -0.2}", "weight of 'evidence' is negative (-0.2)"),
        ("weights: {adverse_impact: 0.5, evidence: 0.4}", "weights sum to 0.9, not 1"),
        ("weights: {adverse_impact: 0.5, gender: 0.5}", "unknown component(s) ['gender']"),
        ("weights: {adverse_impact: 'half', evidence: 0.5}", "weight of 'adverse_impact' must be a finite number"),
        ("weights: {adverse_impact: true}", "weight of 'adverse_impact' must be a finite number"),
        ("weights: {}", "'weights' must be a non-empty mapping"),
        ("weight: {adverse_impact: 1.0}", "unknown keys ['weight']"),
    ],
)
def test_invalid_profile_names_file_profile_and_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = write(tmp_path, f"profiles:\n  strict:\n    {body}\n")
    with pytest.raises(ProfileError) as info:
        load_profiles(path)
    message = str(info.value)
    assert str(path) in message and "profile 'strict'" in message and problem in message, message


def test_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=re.escape(f"{tmp_path / 'missing.yaml'}: cannot read the file")):
        load_profiles(tmp_path / "missing.yaml")
    bad_yaml = write(tmp_path, "profiles:\n  a: [unclosed\n", "bad.yaml")
    with pytest.raises(ProfileError, match=re.escape(f"{bad_yaml}: not valid YAML")):
        load_profiles(bad_yaml)
    not_mapping = write(tmp_path, "- just\n- a list\n", "list.yaml")
    with pytest.raises(ProfileError, match="expected a mapping at the top level"):
        load_profiles(not_mapping)
    no_profiles = write(tmp_path, "weights: {adverse_impact: 1}\n", "flat.yaml")
    with pytest.raises(ProfileError, match=re.escape(f"{no_profiles}: unknown top-level keys ['weights']")):
        load_profiles(no_profiles)


def test_user_profiles_from_argument_and_environment(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "profiles:\n  audit_only:\n    weights: {adverse_impact: 0.6, evidence: 0.4}\n")
    profile = get_profile("audit_only", path)
    assert profile.weights["adverse_impact"] == 0.6 and profile.weights["trend"] == 0.0
    assert profile.source == str(path)
    monkeypatch.setenv(PROFILES_ENV, str(path))
    assert "audit_only" in load_profiles() and "default" in load_profiles()
    table = impact_ratio_table(pd.DataFrame([("a", 100, 50), ("b", 100, 30)], columns=["group", "n", "x"]))
    result = assess(table.assign(stage_pair="p", dimension="d"), profile="audit_only")
    assert result.profile == "audit_only" and result.profile_source == str(path)


def test_user_profile_replaces_a_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    path = write(tmp_path, "profiles:\n  default:\n    weights: {adverse_impact: 1.0}\n")
    assert get_profile("default", path).weights["adverse_impact"] == 1.0


def test_unknown_profile_lists_what_exists(monkeypatch) -> None:
    monkeypatch.delenv(PROFILES_ENV, raising=False)
    with pytest.raises(
        ProfileError, match=r"unknown profile 'lending'; available: \[.*'default'.*\] \(from .*profiles"
    ):
        get_profile("lending")
