"""The dimension catalogue: every group dimension, its values and labels, its source and the intersections analysed.

Declared once, as data: the packaged ``dimensions.yaml`` beside this module, plus an optional user file of the same
shape (``FAIRNESS_DIMENSIONS``, or the ``path`` argument) that adds dimensions or replaces those of the same name, and
whose ``intersections``, when given, replace the packaged ones. Every error names the file and the entry at fault.

A dimension's ``source`` is ``event`` (a column of ``selection_events``: the three inferred proxies) or ``attribute``
(a candidate attribute such as ``sex``, loaded apart from events into ``candidate_attributes``). Any dimension's
values may be replaced by a user file: no schema lists them (ingest and the Great Expectations suite check events
against the catalogue in force when the process starts). A value may carry a ``share``, the generator's share of
candidates in it (uniform when none is given).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

PACKAGED_FILE = Path(__file__).with_name("dimensions.yaml")
DIMENSIONS_ENV = "FAIRNESS_DIMENSIONS"
UNKNOWN = "unknown"
"""The group of a missing, blank or declined value: counted and reported, never the reference."""
UNKNOWN_ANSWERS: frozenset[str] = frozenset({"", UNKNOWN, "declined"})
"""Attribute answers (compared case-insensitively) that mean ``unknown``."""
INTERSECTION_SEPARATOR = "+"
"""Joins dimension names of an intersection (as ``metrics.selection_rates``): ``sex+race_ethnicity``."""
GROUP_SEPARATOR = "|"
"""Joins the values of an intersection group (as ``metrics.selection_rates``): ``female|asian``."""
EVENT_DIMENSION_WIDTHS: dict[str, int] = {"company_tier": 50, "experience_band": 20, "specialty": 50}
"""The dimension columns of ``selection_events`` (the only names an ``event`` dimension can have) and their VARCHAR
sizes, the longest value code each can hold."""
EVENT_DIMENSION_COLUMNS: tuple[str, ...] = tuple(EVENT_DIMENSION_WIDTHS)
SOURCES: tuple[str, ...] = ("event", "attribute")
MAX_VALUE_LENGTH = 100
"""``candidate_attributes.value`` is VARCHAR(100)."""
MAX_NAME_LENGTH = 50
"""``candidate_attributes.attribute`` is VARCHAR(50)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class CatalogueError(ValueError):
    """A catalogue file is invalid, or a dimension or value is not in the catalogue."""


@dataclass(frozen=True)
class Dimension:
    name: str
    label: str
    source: Literal["event", "attribute"]
    values: tuple[str, ...]
    """Codes, in display order (``unknown`` is implied, never listed)."""
    value_labels: tuple[str, ...]
    """Display label of each code, in the order of ``values``."""
    value_shares: tuple[float, ...] | None = None
    """The generator's share of candidates in each value (any positive numbers, normalised), None when not given."""

    def shares(self) -> tuple[float, ...]:
        """Share of each value, summing to 1: the declared ``value_shares`` normalised, else uniform."""
        weights = self.value_shares or (1.0,) * len(self.values)
        total = sum(weights)
        return tuple(w / total for w in weights)

    def label_of(self, value: str) -> str:
        """Display label of a code (``unknown`` is ``Unknown``)."""
        if value == UNKNOWN:
            return "Unknown"
        return dict(zip(self.values, self.value_labels, strict=True))[value]


@dataclass(frozen=True)
class Catalogue:
    dimensions: tuple[Dimension, ...]
    intersections: tuple[tuple[str, ...], ...]
    files: tuple[str, ...]
    """The files read, packaged first."""

    def __getitem__(self, name: str) -> Dimension:
        for dimension in self.dimensions:
            if dimension.name == name:
                return dimension
        raise CatalogueError(f"unknown dimension {name!r}; the catalogue has {', '.join(self.names)}")

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.dimensions)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def event_dimensions(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions if d.source == "event")

    @property
    def attribute_dimensions(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions if d.source == "attribute")

    @property
    def intersection_names(self) -> tuple[str, ...]:
        return tuple(INTERSECTION_SEPARATOR.join(parts) for parts in self.intersections)

    def values(self, name: str) -> tuple[str, ...]:
        return self[name].values

    def parts(self, name: str) -> tuple[str, ...]:
        """The dimensions of a single dimension or declared intersection name (``sex+race_ethnicity``)."""
        if name in self:
            return (name,)
        for parts in self.intersections:
            if INTERSECTION_SEPARATOR.join(parts) == name:
                return parts
        known = [*self.names, *self.intersection_names]
        raise CatalogueError(f"unknown dimension {name!r}; the catalogue has {', '.join(known)}")

    def analysis_dimensions(self, names: Iterable[str] | None = None) -> list[tuple[str, ...]]:
        """Single dimensions then the declared intersections, restricted to ``names`` (default: all) and to the
        intersections whose every part is among them."""
        chosen = set(self.names if names is None else names)
        for name in chosen:
            self[name]  # raises on an unknown name
        singles = [(d,) for d in self.names if d in chosen]
        return singles + [parts for parts in self.intersections if set(parts) <= chosen]

    def code_for(self, name: str, answer: str | None) -> str | None:
        """The code of an attribute answer, given as its code or display label (any case, surrounding spaces
        ignored); None for ``unknown`` (blank, ``declined``, ``unknown``). Raises ``CatalogueError`` otherwise."""
        dimension = self[name]
        text = (answer or "").strip().casefold()
        if text in UNKNOWN_ANSWERS:
            return None
        for code, label in zip(dimension.values, dimension.value_labels, strict=True):
            if text in (code.casefold(), label.casefold()):
                return code
        shown = (answer or "").strip()
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        raise CatalogueError(
            f"{name} {shown!r} is not one of {', '.join(dimension.values)} (or blank, 'declined', 'unknown')"
        )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogueError(f"{path}: expected a mapping with 'dimensions' (and optionally 'intersections')")
    extra = sorted(str(k) for k in data if k not in ("dimensions", "intersections"))
    if extra:
        raise CatalogueError(f"{path}: unknown top-level keys {extra}; expected 'dimensions' and 'intersections'")
    return data


def _text(where: str, what: str, value: Any, limit: int | None = None) -> str:
    if isinstance(value, bool):
        raise CatalogueError(f"{where}: {what} must be text, got {value!r} (YAML reads yes/no/on/off so: quote it)")
    if not isinstance(value, str | int | float) or not str(value).strip():
        raise CatalogueError(f"{where}: {what} must be non-empty text, got {value!r}")
    text = str(value).strip()
    if limit is not None and len(text) > limit:
        raise CatalogueError(f"{where}: {what} {text!r} is longer than {limit} characters")
    return text


def _dimension(path: Path, name: Any, body: Any) -> Dimension:
    where = f"{path}: dimension {name!r}"
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise CatalogueError(
            f"{where}: a dimension name is lower-case letters, digits and '_', starting with a letter, "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    if not isinstance(body, dict):
        raise CatalogueError(f"{where}: expected a mapping with 'label', 'source' and 'values'")
    extra = sorted(str(k) for k in body if k not in ("label", "source", "values"))
    missing = [k for k in ("source", "values") if k not in body]
    if extra or missing:
        raise CatalogueError(f"{where}: unknown keys {extra} / missing keys {missing}; allowed: label, source, values")
    source = body["source"]
    if source not in SOURCES:
        raise CatalogueError(f"{where}: source must be 'event' or 'attribute', got {source!r}")
    if source == "event" and name not in EVENT_DIMENSION_COLUMNS:
        raise CatalogueError(
            f"{where}: an event dimension is a column of selection_events ({', '.join(EVENT_DIMENSION_COLUMNS)}); "
            "declare other dimensions with source: attribute"
        )
    raw = body["values"]
    if isinstance(raw, list):
        raw = {value: value for value in raw}
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError(f"{where}: 'values' must be a non-empty mapping code: label (or a list of codes)")
    longest = EVENT_DIMENSION_WIDTHS[name] if source == "event" else MAX_VALUE_LENGTH
    codes: list[str] = []
    labels: list[str] = []
    shares: list[float | None] = []
    for code, entry in raw.items():
        code = _text(where, "a value code", code, longest)
        if code.casefold() in UNKNOWN_ANSWERS or GROUP_SEPARATOR in code or code == INTERSECTION_SEPARATOR:
            raise CatalogueError(f"{where}: value {code!r} is reserved or holds '{GROUP_SEPARATOR}'")
        if code in codes:
            raise CatalogueError(f"{where}: value {code!r} is listed twice")
        label, share = _value_entry(where, code, entry)
        codes.append(code)
        labels.append(label)
        shares.append(share)
    answers: dict[str, str] = {}
    for code, value_label in zip(codes, labels, strict=True):
        for answer in (code.casefold(), value_label.casefold()):
            if answers.setdefault(answer, code) != code:
                raise CatalogueError(f"{where}: {answer!r} names two values ({answers[answer]!r} and {code!r})")
    if any(s is not None for s in shares) and any(s is None for s in shares):
        raise CatalogueError(f"{where}: give a 'share' to every value or to none")
    label = _text(where, "'label'", body.get("label", name))
    value_shares = None if shares[0] is None else tuple(s for s in shares if s is not None)
    return Dimension(name, label, source, tuple(codes), tuple(labels), value_shares)


def _value_entry(where: str, code: str, entry: Any) -> tuple[str, float | None]:
    """A value's display label and share: ``code: label`` or ``code: {label: ..., share: ...}``."""
    if not isinstance(entry, dict):
        return _text(where, f"the label of {code!r}", entry), None
    extra = sorted(str(k) for k in entry if k not in ("label", "share"))
    if extra:
        raise CatalogueError(f"{where}: value {code!r}: unknown keys {extra}; allowed: label, share")
    label = _text(where, f"the label of {code!r}", entry.get("label", code))
    share = entry.get("share")
    if share is None:
        return label, None
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < float("inf"):
        raise CatalogueError(f"{where}: value {code!r}: 'share' must be a positive number, got {share!r}")
    return label, float(share)


def _intersections(path: Path, raw: Any, known: dict[str, Dimension]) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise CatalogueError(f"{path}: 'intersections' must be a list of lists of dimension names")
    result: list[tuple[str, ...]] = []
    for entry in raw:
        if not isinstance(entry, list) or len(entry) < 2 or len(set(map(str, entry))) != len(entry):
            raise CatalogueError(f"{path}: intersection {entry!r} must list two or more distinct dimensions")
        unknown = [str(part) for part in entry if part not in known]
        if unknown:
            raise CatalogueError(f"{path}: intersection {entry!r} names unknown dimension(s) {unknown}")
        parts = tuple(str(part) for part in entry)
        if parts in result:
            raise CatalogueError(f"{path}: intersection {entry!r} is listed twice")
        result.append(parts)
    return tuple(result)


def _merge(base: Catalogue | None, path: Path) -> Catalogue:
    data = _read_yaml(path)
    raw_dimensions = data.get("dimensions", {})
    if not isinstance(raw_dimensions, dict):
        raise CatalogueError(f"{path}: 'dimensions' must be a mapping name: dimension")
    known = {d.name: d for d in base.dimensions} if base else {}
    for name, body in raw_dimensions.items():
        dimension = _dimension(path, name, body)
        known[dimension.name] = dimension
    if base is None and "intersections" not in data:
        raise CatalogueError(f"{path}: 'intersections' is missing")
    if "intersections" in data:
        intersections = _intersections(path, data["intersections"], known)
    else:
        assert base is not None
        intersections = base.intersections
    files = (*(base.files if base else ()), str(path))
    return Catalogue(tuple(known.values()), intersections, files)


@functools.cache
def packaged_catalogue() -> Catalogue:
    """The packaged default catalogue (no user file)."""
    return _merge(None, PACKAGED_FILE)


@functools.lru_cache(maxsize=16)
def _with_user_file(path: Path, mtime: int) -> Catalogue:
    return _merge(packaged_catalogue(), path)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The packaged catalogue with ``path`` (or ``$FAIRNESS_DIMENSIONS``) applied, cached while the file is
    unchanged."""
    user = path if path is not None else os.environ.get(DIMENSIONS_ENV, "").strip() or None
    if user is None:
        return packaged_catalogue()
    user_path = Path(user).expanduser()
    try:
        mtime = user_path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # _read_yaml reports the problem
    return _with_user_file(user_path, mtime)
