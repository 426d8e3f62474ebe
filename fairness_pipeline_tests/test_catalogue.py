"""The dimension catalogue: the packaged default, user files, validation errors, and what reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fairness_pipeline.catalogue import (
    DIMENSIONS_ENV,
    CatalogueError,
    load_catalogue,
    packaged_catalogue,
)
from fairness_pipeline.events import vocabulary
from fairness_pipeline.metrics import selection_rates
from fairness_pipeline.validation.event_suite import EXPECTATIONS

LL144_RACE_LABELS = {
    "hispanic_or_latino": "Hispanic or Latino",
    "white": "White (Not Hispanic or Latino)",
    "black_or_african_american": "Black or African American (Not Hispanic or Latino)",
    "native_hawaiian_or_pacific_islander": "Native Hawaiian or Pacific Islander (Not Hispanic or Latino)",
    "asian": "Asian (Not Hispanic or Latino)",
    "native_american_or_alaska_native": "Native American or Alaska Native (Not Hispanic or Latino)",
    "two_or_more_races": "Two or More Races (Not Hispanic or Latino)",
}


def test_packaged_catalogue_holds_the_proxies_and_the_ll144_categories() -> None:
    catalogue = packaged_catalogue()
    assert catalogue.event_dimensions == ("company_tier", "experience_band", "specialty")
    assert catalogue.attribute_dimensions == ("sex", "race_ethnicity")
    assert catalogue.values("sex") == ("male", "female")
    race = catalogue["race_ethnicity"]
    assert dict(zip(race.values, race.value_labels, strict=True)) == LL144_RACE_LABELS
    assert catalogue.intersection_names == (
        "company_tier+experience_band",
        "company_tier+specialty",
        "experience_band+specialty",
        "sex+race_ethnicity",
    )
    assert catalogue.parts("sex+race_ethnicity") == ("sex", "race_ethnicity")
    assert catalogue.analysis_dimensions(["sex", "race_ethnicity"]) == [
        ("sex",),
        ("race_ethnicity",),
        ("sex", "race_ethnicity"),
    ]


def test_vocabulary_and_validation_suite_read_the_catalogue() -> None:
    catalogue = packaged_catalogue()
    assert catalogue.event_dimensions == vocabulary.DIMENSIONS
    assert vocabulary.COMPANY_TIERS == ("faang", "enterprise", "startup", "other")
    for name in catalogue.event_dimensions:
        assert vocabulary.DIMENSION_VALUES[name] == catalogue.values(name)
    in_set = {e.column: e.kwargs["value_set"] for e in EXPECTATIONS if e.name.endswith("_in_set")}
    assert {d: tuple(in_set[d]) for d in catalogue.event_dimensions} == vocabulary.DIMENSION_VALUES
    # the separators the catalogue names intersections with are the analysis code's
    from fairness_pipeline import catalogue as module

    assert module.INTERSECTION_SEPARATOR == selection_rates.INTERSECTION_SEPARATOR
    assert module.GROUP_SEPARATOR == selection_rates.GROUP_SEPARATOR
    assert module.UNKNOWN == vocabulary.UNKNOWN_GROUP


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("female", "female"),
        ("  FEMALE ", "female"),
        ("Female", "female"),
        ("", None),
        ("Declined", None),
        ("unknown", None),
        (None, None),
    ],
)
def test_answers_map_to_codes(answer: str | None, code: str | None) -> None:
    assert packaged_catalogue().code_for("sex", answer) == code


def test_answers_by_display_label_and_bad_answers() -> None:
    catalogue = packaged_catalogue()
    assert catalogue.code_for("race_ethnicity", "asian (not hispanic or latino)") == "asian"
    with pytest.raises(CatalogueError, match=r"sex 'f' is not one of male, female"):
        catalogue.code_for("sex", "f")
    with pytest.raises(CatalogueError, match="unknown dimension 'gender'; the catalogue has"):
        catalogue.code_for("gender", "f")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dimensions.yaml"
    path.write_text(text)
    return path


def test_a_user_file_adds_a_dimension_and_relabels_without_code_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path,
        """
dimensions:
  disability:
    label: Disability
    source: attribute
    values: {"yes": Has a disability, "no": No disability}
  sex:
    label: Sex
    source: attribute
    values: [male, female, nonbinary]
  company_tier:
    label: Employer tier
    source: event
    values: {faang: Big tech, enterprise: Enterprise, startup: Start-up, other: Other}
intersections:
  - [sex, disability]
""",
    )
    monkeypatch.setenv(DIMENSIONS_ENV, str(path))
    catalogue = load_catalogue()
    assert catalogue.attribute_dimensions == ("sex", "race_ethnicity", "disability")
    assert catalogue.values("sex") == ("male", "female", "nonbinary")
    assert catalogue.values("disability") == ("yes", "no")
    assert catalogue["company_tier"].label_of("startup") == "Start-up"
    assert catalogue.intersection_names == ("sex+disability",)
    assert catalogue.files[-1] == str(path)
    assert packaged_catalogue().values("sex") == ("male", "female")  # the packaged default is untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dimensions: [a]", "'dimensions' must be a mapping"),
        ("colours: {}", "unknown top-level keys ['colours']"),
        ("dimensions: {Sex: {source: attribute, values: [m]}}", "a dimension name is lower-case letters"),
        ("dimensions: {age: {source: column, values: [young]}}", "source must be 'event' or 'attribute'"),
        ("dimensions: {age: {source: event, values: [young]}}", "an event dimension is a column of selection_events"),
        ("dimensions: {experience_band: {source: event, values: [a_band_of_21_characters]}}", "longer than 20"),
        ("dimensions: {age: {source: attribute, values: {old: {label: Old, share: 0}}}}", "a positive number"),
        ("dimensions: {age: {source: attribute, values: {old: {label: Old, share: 2}, young: Young}}}", "or to none"),
        ("dimensions: {age: {source: attribute, values: {old: {label: Old, colour: red}}}}", "unknown keys ['colour']"),
        ("dimensions: {age: {source: attribute, values: []}}", "'values' must be a non-empty mapping"),
        ("dimensions: {age: {source: attribute, values: [old, unknown]}}", "value 'unknown' is reserved"),
        ("dimensions: {age: {source: attribute, values: ['a|b']}}", "holds '|'"),
        ("dimensions: {age: {source: attribute, values: {old: Old, aged: old}}}", "'old' names two values"),
        ("dimensions: {age: {source: attribute, values: [old], colour: red}}", "unknown keys ['colour']"),
        ("dimensions: {age: {source: attribute, values: {yes: Old}}}", "(YAML reads yes/no/on/off so: quote it)"),
        ("intersections: [[sex]]", "must list two or more distinct dimensions"),
        ("intersections: [[sex, age]]", "names unknown dimension(s) ['age']"),
        ("dimensions: {age: {source: attribute, values: [old]}}\n  bad: [", "not valid YAML"),
    ],
)
def test_invalid_user_files_are_refused_with_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CatalogueError, match=re.escape(message)) as caught:
        load_catalogue(path)
    assert str(path) in str(caught.value)


def test_a_missing_user_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read the file"):
        load_catalogue(tmp_path / "absent.yaml")


def test_a_user_file_replaces_an_event_dimension_and_declares_shares(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
dimensions:
  company_tier:
    label: Employer sector
    source: event
    values:
      public_sector: {label: Public sector, share: 1}
      private: {label: Private, share: 3}
      nonprofit: Non-profit
""",
    )
    with pytest.raises(CatalogueError, match="give a 'share' to every value or to none"):
        load_catalogue(path)
    shared = tmp_path / "shared.yaml"
    shared.write_text(path.read_text().replace("nonprofit: Non-profit", "nonprofit: {label: Non-profit, share: 4}"))
    catalogue = load_catalogue(shared)
    tier = catalogue["company_tier"]
    assert tier.values == ("public_sector", "private", "nonprofit")
    assert tier.shares() == (0.125, 0.375, 0.5)
    assert catalogue["specialty"].values == packaged_catalogue().values("specialty")
    assert catalogue["sex"].shares() == (0.58, 0.42)
    uniform = tmp_path / "uniform.yaml"
    uniform.write_text("dimensions: {age: {source: attribute, values: [a, b, c, d]}}")
    assert load_catalogue(uniform)["age"].shares() == (0.25, 0.25, 0.25, 0.25)  # no share declared
