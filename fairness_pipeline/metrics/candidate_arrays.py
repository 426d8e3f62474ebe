"""Counting a window's candidates from per-day arrays: the numpy counterpart of the SQL that sorts candidate rows.

Each day stores, per tenant and event type, its candidates as arrays in the same order (``candidate_day_arrays``):
a 64-bit key of the candidate id, the score and the dimension codes of the candidate's first event of that type on the
day. A window concatenates its days in day order; a candidate's first event of a type in the window is then the row
of its earliest day (:func:`earliest_rows`). Two ids with the same 64-bit key would count as one candidate: for a
million candidates in a window the chance of any such pair is about 3 in 100 million.

Dimension codes are each value's 1-based position in its vocabulary (``events.vocabulary.DIMENSION_VALUES``), 0 for a
missing value; negative codes (a value outside the vocabulary) are refused.

Candidate attributes (``sex``, ``race_ethnicity``) are not in the arrays: a self-identification file often arrives
after the events and an erasure deletes attributes, so they are looked up when a window is counted
(:class:`AttributePeriods`, read by ``store.attributes.attribute_periods``). The arrays give the day of each candidate's
first event of a type in the window, not its time, so a candidate's group is the value **in force at the end of that
day** (its last instant, 23:59:59.999999 UTC). The SQL path (``store.attributes.IN_FORCE_VALUES``) takes the value in
force at the first event itself; the two differ only when an answer changed on that very day after the event (the
arrays then count the new answer). Two candidate ids with the same 64-bit key would share their attributes too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairness_pipeline.events.vocabulary import DIMENSION_VALUES, DIMENSIONS


@dataclass(frozen=True)
class StageArrays:
    """One tenant's rows of one event type over a window, days in order: ``keys`` (int64), ``scores`` (float64, NaN
    when missing), ``codes`` (int64, one column per dimension of :data:`DIMENSIONS`) and ``days`` (int64, the row's
    day as an offset from the window's first day; None when not given)."""

    keys: np.ndarray
    scores: np.ndarray
    codes: np.ndarray
    days: np.ndarray | None = None

    @classmethod
    def concatenate(
        cls, days: Sequence[tuple[bytes, bytes, bytes]], *, offsets: Sequence[int] | None = None
    ) -> StageArrays:
        """From the stored big-endian bytes of each day (keys, scores, codes), in day order; ``offsets``: each day's
        offset from the window's first day."""
        key_parts = [np.frombuffer(k, dtype=">i8") for k, _, _ in days]
        keys = np.concatenate(key_parts).astype(np.int64)
        scores = np.concatenate([np.frombuffer(s, dtype=">f8") for _, s, _ in days]).astype(np.float64)
        codes = np.concatenate([np.frombuffer(c, dtype=">i2") for _, _, c in days]).astype(np.int64)
        codes = codes.reshape(len(keys), len(DIMENSIONS))
        for i, dim in enumerate(DIMENSIONS):
            if (codes[:, i] < 0).any():
                raise ValueError(f"{dim} values outside the vocabulary {list(DIMENSION_VALUES[dim])}")
        day_of_row = None
        if offsets is not None:
            day_of_row = np.repeat(np.asarray(offsets, dtype=np.int64), [len(part) for part in key_parts])
        return cls(keys, scores, codes, day_of_row)

    def first(self) -> StageArrays:
        """Each candidate's row of its earliest day, in key order."""
        rows = earliest_rows(self.keys)
        days = self.days[rows] if self.days is not None else None
        return StageArrays(self.keys[rows], self.scores[rows], self.codes[rows], days)


def earliest_rows(keys: np.ndarray) -> np.ndarray:
    """Positions of the first row of each key, rows being given in time order (days ascending): the rows of each
    candidate's earliest day, in key order. One stable sort, no Python loop."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


def cell_frame(
    codes: np.ndarray, counts: dict[str, np.ndarray], vocabularies: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """Per combination of dimension values present (any count > 0): the dimension values (None when missing) and the
    ``counts``, each summed by ``np.bincount`` over the rows' ``codes``. ``vocabularies`` names the columns of
    ``codes`` and their values, in order (default: the event dimensions, ``DIMENSION_VALUES``)."""
    vocabularies = DIMENSION_VALUES if vocabularies is None else vocabularies
    sizes = [len(values) + 1 for values in vocabularies.values()]
    combined = np.ravel_multi_index(tuple(codes.T), sizes) if len(codes) else np.zeros(0, dtype=np.int64)
    summed = {
        name: np.bincount(combined, weights=values, minlength=math.prod(sizes)) for name, values in counts.items()
    }
    present = np.flatnonzero(np.sum(list(summed.values()), axis=0) > 0)
    frame = pd.DataFrame(index=range(len(present)))
    for (dim, values), position in zip(vocabularies.items(), np.unravel_index(present, sizes), strict=True):
        frame[dim] = np.array([None, *values], dtype=object)[position]
    for name, values in summed.items():
        frame[name] = values[present].astype(np.int64)
    return frame


def stage_pair_cells(
    tenant_id: str,
    stages: dict[str, StageArrays],
    stage_pairs: Sequence[tuple[str, str]],
    pair_names: Sequence[str],
    *,
    attributes: AttributePeriods | None = None,
) -> pd.DataFrame:
    """A tenant's window cells (``store.analysis.WINDOW_CELLS``'s columns: tenant_id, stage_pair, the dimensions,
    then with ``attributes`` one column per attribute, n, x): per stage pair, the candidates with a baseline event in
    the window, in the groups of their first baseline event (attributes: in force at the end of its day), ``n``, and
    those of them with a selection event in the window, ``x``; cells with n = 0 left out."""
    firsts = {stage: arrays.first() for stage, arrays in stages.items()}
    vocabularies = with_attributes(attributes)
    coded: dict[str, np.ndarray] = {}  # per baseline stage: event codes and attribute codes of its first rows
    parts = []
    for (baseline, selection), name in zip(stage_pairs, pair_names, strict=True):
        population = firsts.get(baseline)
        if population is None or not len(population.keys):
            continue
        if baseline not in coded:
            coded[baseline] = attach_attributes(tenant_id, population, attributes)
        selected_keys = firsts[selection].keys if selection in firsts else np.zeros(0, dtype=np.int64)
        selected = np.isin(population.keys, selected_keys, assume_unique=True)  # both hold each key once
        cells = cell_frame(coded[baseline], {"n": np.ones(len(selected)), "x": selected.astype(float)}, vocabularies)
        cells.insert(0, "stage_pair", name)
        cells.insert(0, "tenant_id", tenant_id)
        parts.append(cells)
    columns = ["tenant_id", "stage_pair", *vocabularies, "n", "x"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def with_attributes(attributes: AttributePeriods | None) -> dict[str, tuple[str, ...]]:
    """The event dimensions' vocabularies followed by those of ``attributes`` (if any): the columns of the codes
    :func:`attach_attributes` returns."""
    vocabularies = dict(DIMENSION_VALUES)
    if attributes is not None:
        vocabularies.update(zip(attributes.names, attributes.vocabularies, strict=True))
    return vocabularies


def attach_attributes(tenant_id: str, first: StageArrays, attributes: AttributePeriods | None) -> np.ndarray:
    """``first.codes`` (one row per candidate, each at its first day) with one column per attribute appended: the code
    in force at the end of the row's day (0: unknown)."""
    if attributes is None:
        return first.codes
    if first.days is None:
        raise ValueError("attribute lookup needs the day of each row (StageArrays.days)")
    return np.hstack([first.codes, attributes.codes_at(tenant_id, first.keys, first.days)])


@dataclass(frozen=True)
class _InForce:
    """One tenant's periods of one attribute, ordered by (candidate key, first day), as searchsorted needs them."""

    unique_keys: np.ndarray
    key_rank: np.ndarray
    """Per period, its key's position in ``unique_keys``."""
    starts: np.ndarray
    stops: np.ndarray
    codes: np.ndarray


@dataclass(frozen=True)
class AttributeSnapshot:
    """One tenant's whole history of one attribute, known values only, as arrays ordered by (candidate key, start):
    a value is in force at the end of UTC day number d (days since 1970-01-01) when ``from_days`` <= d <
    ``to_days`` (the int4 extremes for an open end); ``codes`` are 1-based positions in
    ``values``. Windows clip it to their days (:meth:`AttributePeriods.from_snapshots`)."""

    tenant_id: str
    attribute: str
    values: tuple[str, ...]
    keys: np.ndarray
    from_days: np.ndarray
    to_days: np.ndarray
    codes: np.ndarray

    @classmethod
    def from_value_groups(
        cls, tenant_id: str, attribute: str, groups: Iterable[tuple[str, bytes, bytes, bytes]]
    ) -> AttributeSnapshot:
        """From one group per value: (value, keys, first days, stop days), big-endian int8 and int4 arrays in any
        order, as the store reads the history. Values are coded in sorted order; periods that cover no day's end
        (a value replaced on the day it was given) are left out, so no two kept periods of a key start on one day."""
        parts = sorted((value, _int64(k, ">i8"), _int64(f, ">i4"), _int64(t, ">i4")) for value, k, f, t in groups)
        values = tuple(value for value, *_ in parts)
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(tenant_id, attribute, (), empty, empty, empty, empty)
        keys, from_days, to_days = (np.concatenate([part[i] for part in parts]) for i in (1, 2, 3))
        codes = np.repeat(np.arange(1, len(parts) + 1, dtype=np.int64), [len(part[1]) for part in parts])
        kept = from_days < to_days
        order = np.lexsort((from_days[kept], keys[kept]))
        return cls(
            tenant_id,
            attribute,
            values,
            keys[kept][order],
            from_days[kept][order],
            to_days[kept][order],
            codes[kept][order],
        )

    @classmethod
    def from_bytes(
        cls,
        tenant_id: str,
        attribute: str,
        values: Sequence[str],
        keys: bytes,
        from_days: bytes,
        to_days: bytes,
        codes: bytes,
    ) -> AttributeSnapshot:
        """From big-endian arrays (int8 keys, int4 days, int2 codes), as the store keeps them."""
        return cls(
            tenant_id,
            attribute,
            tuple(values),
            _int64(keys, ">i8"),
            _int64(from_days, ">i4"),
            _int64(to_days, ">i4"),
            _int64(codes, ">i2"),
        )

    def to_bytes(self) -> tuple[bytes, bytes, bytes, bytes]:
        """The arrays as :meth:`from_bytes` reads them: keys, first days, stop days, codes."""
        return (
            self.keys.astype(">i8").tobytes(),
            self.from_days.astype(">i4").tobytes(),
            self.to_days.astype(">i4").tobytes(),
            self.codes.astype(">i2").tobytes(),
        )


@dataclass(frozen=True)
class AttributePeriods:
    """Candidate attributes over a window of ``window_days`` days, as periods of days: per tenant and attribute, arrays
    of candidate keys, first and stop day (the value is in force at the end of day d, an offset from the window's
    first day, when start <= d < stop) and value codes (1-based positions in ``vocabularies``). Unknown values are
    not listed: a candidate with no period covering a day is unknown on that day."""

    names: tuple[str, ...]
    vocabularies: tuple[tuple[str, ...], ...]
    window_days: int
    periods: Mapping[tuple[str, str], _InForce]

    @classmethod
    def from_snapshots(
        cls,
        names: Sequence[str],
        vocabularies: Sequence[Sequence[str]],
        first_day: int,
        window_days: int,
        snapshots: Iterable[AttributeSnapshot],
    ) -> AttributePeriods:
        """The periods of the ``window_days`` days from UTC day number ``first_day`` (days since 1970-01-01) in
        ``snapshots`` of ``names`` (others are skipped). A value outside an attribute's vocabulary is added after it,
        in sorted order, when a period of the window holds it, so that the cells carry it as the SQL does."""
        position = {name: i for i, name in enumerate(names)}
        clipped = []
        for snapshot in snapshots:
            if snapshot.attribute not in position:
                continue
            starts = np.clip(snapshot.from_days - first_day, 0, window_days)
            stops = np.clip(snapshot.to_days - first_day, 0, window_days)
            keep = starts < stops  # clipping keeps the (key, first day) order
            if keep.any():
                _check_order(snapshot)
                clipped.append((snapshot, snapshot.keys[keep], starts[keep], stops[keep], snapshot.codes[keep]))
        vocab = [list(values) for values in vocabularies]
        extra: dict[str, set[str]] = {}
        for snapshot, *_, codes in clipped:
            used = np.flatnonzero(np.bincount(codes, minlength=len(snapshot.values) + 1)[1:])
            extra.setdefault(snapshot.attribute, set()).update(snapshot.values[i] for i in used)
        for attribute, values in extra.items():
            known = vocab[position[attribute]]
            known.extend(sorted(values - set(known)))
        periods = {}
        for snapshot, keys, starts, stops, codes in clipped:
            known = vocab[position[snapshot.attribute]]
            # a value outside the vocabulary that no period of the window holds is not in it: no kept code uses it
            recode = np.array(
                [0, *(known.index(value) + 1 if value in known else 0 for value in snapshot.values)], dtype=np.int64
            )
            periods[(snapshot.tenant_id, snapshot.attribute)] = _ranked(keys, starts, stops, recode[codes])
        return cls(tuple(names), tuple(tuple(v) for v in vocab), window_days, periods)

    @property
    def tenants(self) -> set[str]:
        """The tenants with at least one known value in the window."""
        return {tenant for tenant, _ in self.periods}

    def codes_at(self, tenant_id: str, keys: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Per candidate (``keys``) and day (``days``), the code of each attribute in force at the end of that day:
        an array (len(keys), len(names)), 0 for unknown. Vectorised: two ``searchsorted`` per attribute."""
        out = np.zeros((len(keys), len(self.names)), dtype=np.int64)
        days = np.asarray(days, dtype=np.int64)
        if len(days) and (days.min() < 0 or days.max() >= self.window_days):
            raise ValueError(f"days outside the window of {self.window_days} days")
        for column, name in enumerate(self.names):
            table = self.periods.get((tenant_id, name))
            if table is not None and len(keys):
                out[:, column] = _lookup(table, np.asarray(keys, dtype=np.int64), days, self.window_days)
        return out

    def fingerprint(self) -> str:
        """A digest of every period (per tenant and attribute, in a fixed order): equal when the values in force on
        each day of the window are."""
        digest = hashlib.sha256(repr((self.names, self.vocabularies, self.window_days)).encode())
        for tenant, name in sorted(self.periods):
            table = self.periods[(tenant, name)]
            digest.update(f"|{tenant}|{name}|".encode())
            for array in (table.unique_keys[table.key_rank], table.starts, table.stops, table.codes):
                digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
        return digest.hexdigest()

    def within(self, first: int, window_days: int, vocabularies: Sequence[Sequence[str]]) -> AttributePeriods:
        """The periods of days ``first`` .. ``first + window_days - 1`` as a window of their own: the same periods,
        vocabularies and :meth:`fingerprint` as read for those days alone, given the ``vocabularies`` this was read
        with (a value outside them stays only while a period of those days holds it). No database read."""
        if first < 0 or window_days < 1 or first + window_days > self.window_days:
            raise ValueError(f"days {first}..{first + window_days - 1} outside the window of {self.window_days} days")
        tables = [
            AttributeSnapshot(
                tenant,
                name,
                self.vocabularies[self.names.index(name)],
                table.unique_keys[table.key_rank],
                table.starts,
                table.stops,
                table.codes,
            )
            for (tenant, name), table in self.periods.items()
        ]
        return AttributePeriods.from_snapshots(self.names, vocabularies, first, window_days, tables)


def _int64(data: bytes, kind: str) -> np.ndarray:
    """Big-endian bytes of ``kind`` as native int64."""
    return np.frombuffer(data, dtype=kind).astype(np.int64)


def _check_order(snapshot: AttributeSnapshot) -> None:
    """Refuse a snapshot not ordered by (key, start): the lookups would silently miss."""
    keys, starts = snapshot.keys, snapshot.from_days
    same = keys[1:] == keys[:-1]
    if (keys[1:] < keys[:-1]).any() or (starts[1:][same] < starts[:-1][same]).any():
        raise ValueError(f"attribute snapshot of {snapshot.attribute!r} is not ordered by candidate key and start")


def _ranked(keys: np.ndarray, starts: np.ndarray, stops: np.ndarray, codes: np.ndarray) -> _InForce:
    """Periods already sorted by (key, start), with each key's rank among the distinct keys."""
    new_key = np.ones(len(keys), dtype=bool)
    new_key[1:] = keys[1:] != keys[:-1]  # sorted: no hashing unique (numpy's np.unique hashes, 5x slower here)
    return _InForce(keys[new_key], np.cumsum(new_key) - 1, starts, stops, codes)


def _lookup(table: _InForce, keys: np.ndarray, days: np.ndarray, window_days: int) -> np.ndarray:
    """The code of the period of ``table`` covering each (key, day), 0 when none. A key's periods do not overlap, so
    the one covering a day is the last starting on or before it; (key rank, start) is searched as one integer."""
    if not len(table.unique_keys):
        return np.zeros(len(keys), dtype=np.int64)
    stride = window_days + 1
    rank = np.minimum(np.searchsorted(table.unique_keys, keys), len(table.unique_keys) - 1)
    known = table.unique_keys[rank] == keys
    combined = table.key_rank * stride + table.starts
    row = np.searchsorted(combined, rank * stride + days, side="right") - 1
    safe = np.maximum(row, 0)
    covered = known & (row >= 0) & (table.key_rank[safe] == rank) & (days < table.stops[safe])
    return np.where(covered, table.codes[safe], 0)


__all__ = [
    "AttributePeriods",
    "AttributeSnapshot",
    "StageArrays",
    "attach_attributes",
    "cell_frame",
    "earliest_rows",
    "stage_pair_cells",
    "with_attributes",
]
