"""The retention policy: packaged default, files that raise or lower it, and the cutoffs it gives."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fairness_pipeline.lifecycle import CATEGORIES, PolicyError, load_policy
from fairness_pipeline.lifecycle.erasure import field_pattern, subject_hash


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_packaged_policy_keeps_everything_at_least_a_year(monkeypatch):
    monkeypatch.delenv("FAIRNESS_RETENTION_POLICY", raising=False)
    policy = load_policy()
    assert policy.minimum_days == 365
    assert set(policy.days) == set(CATEGORIES)
    assert min(policy.days.values()) >= 365
    assert policy.days["events"] == 730


def test_cutoffs_count_back_from_today():
    policy = load_policy()
    cutoffs = policy.cutoffs(date(2026, 12, 3))
    assert cutoffs["events"] == date(2024, 12, 3)  # 730 days: 2025-12-03 (365) then 2024-12-03 (365, no 29 Feb)
    assert cutoffs["rejects"] == date(2025, 12, 3)
    assert cutoffs["results"] == date(2021, 12, 4)  # 1825 days span 29 Feb 2024: one day later than five years


def test_a_file_names_some_categories_and_the_rest_keep_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRNESS_RETENTION_POLICY", str(write(tmp_path, "retention_days:\n  events: 1000\n")))
    policy = load_policy()
    assert policy.days["events"] == 1000
    assert policy.days["rejects"] == 365
    assert policy.source.endswith("policy.yaml")


def test_toml_files_are_read(tmp_path):
    text = "minimum_days = 400\n[retention_days]\nevents = 500\nrejects = 400\nquarantine = 400\narrays = 400\n"
    policy = load_policy(write(tmp_path, text, "policy.toml"))
    assert (policy.minimum_days, policy.days["events"], policy.days["reports"]) == (400, 500, 1825)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention_days:\n  events: 200\n", "events (200 days)"),
        ("retention_days:\n  rejects: 364\n  quarantine: 180\n", "rejects (364 days), quarantine (180 days)"),
        ("minimum_days: 180\n", "below the regulatory minimum of 365 days"),
        ("minimum_days: 400\n", "rejects (365 days)"),  # raising the minimum applies to the packaged ages too
        ("retention_days:\n  evnets: 800\n", "unknown categories evnets"),
        ("retention_days:\n  events: 1.5e3\n", "whole number of days"),
        ("retention_days:\n  events: true\n", "whole number of days"),
        ("retention: {}\n", "unknown key(s) retention"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("retention_days: [\n", "not valid YAML"),
    ],
)
def test_policies_below_the_minimum_or_malformed_are_refused(tmp_path, text, message):
    with pytest.raises(PolicyError) as refused:
        load_policy(write(tmp_path, text))
    assert message in str(refused.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the retention policy"):
        load_policy(tmp_path / "absent.yaml")


def test_the_subject_hash_needs_a_salt(monkeypatch):
    import hashlib
    import hmac

    monkeypatch.delenv("FAIRNESS_ERASURE_SALT", raising=False)
    assert subject_hash("tenant-1", "cand-7") is None
    expected = hmac.new(b"pepper", b"tenant-1\x00cand-7", hashlib.sha256).hexdigest()
    assert subject_hash("tenant-1", "cand-7", salt="pepper") == expected
    monkeypatch.setenv("FAIRNESS_ERASURE_SALT", "pepper")
    assert subject_hash("tenant-1", "cand-7") == expected
    assert subject_hash("tenant-1", "cand-70") != expected


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("e1,2026-01-01,cand.7,bogus,s1,tenant-1,u", True),
        ('{"candidate_id": "cand.7", "tenant_id": "tenant-1"}', True),
        ("e1,2026-01-01,cand.70,bogus,s1,tenant-1,u", False),
        ("e1,2026-01-01,xcand.7,bogus,s1,tenant-1,u", False),
        ("e1,2026-01-01,candx7,bogus,s1,tenant-1,u", False),  # the dot is literal
    ],
)
def test_field_pattern_matches_whole_fields_only(conn, line, matches):
    with conn.cursor() as cur:
        cur.execute("SELECT %s ~ %s", (line, field_pattern("cand.7")))
        assert cur.fetchone()[0] is matches
