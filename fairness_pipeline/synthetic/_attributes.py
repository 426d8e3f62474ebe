"""Self-identified attributes of the synthetic candidates (sex, race/ethnicity, any attribute dimension of the
catalogue), drawn once per tenant pool from their own random streams, and the matching self-identification file."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping, Set
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from fairness_pipeline.catalogue import load_catalogue
from fairness_pipeline.synthetic._frames import TEXT_DTYPE, numbered, write_rows

if TYPE_CHECKING:
    from fairness_pipeline.synthetic._config import GeneratorConfig

ATTRIBUTE_PROPORTIONS: dict[str, tuple[float, ...]] = {
    name: load_catalogue()[name].shares() for name in load_catalogue().attribute_dimensions
}
"""Share of each value among the candidates who answer, in catalogue order, as the catalogue in force at import
declares them (``share``; uniform when it declares none). The generator reads the catalogue in force when it runs."""
DECLINED_SHARE_OF_UNKNOWN = 2 / 3
"""Of the candidates without an answer, the share written as ``declined`` (the others are left blank)."""


def _stream(config: GeneratorConfig, kind: int, index: int, name: str) -> np.random.Generator:
    """A random stream of its own per (tenant, attribute): adding a dimension changes no other draw."""
    return np.random.default_rng([config.seed, kind, index, zlib.crc32(name.encode())])


def draw_attributes(config: GeneratorConfig, index: int, pool: int) -> dict[str, np.ndarray]:
    """Per attribute dimension of the catalogue, the code of each pool candidate (its value's position, -1 unknown)."""
    catalogue = load_catalogue()
    codes: dict[str, np.ndarray] = {}
    for name in catalogue.attribute_dimensions:
        size = len(catalogue.values(name))
        rng = _stream(config, 3, index, name)
        drawn = rng.choice(size, size=pool, p=catalogue[name].shares()).astype(np.int8)
        drawn[rng.random(pool) < config.attribute_unknown_share] = -1
        codes[name] = drawn
    return codes


def attribute_frames(
    config: GeneratorConfig, candidates: Mapping[str, Set[str]] | None = None
) -> Iterator[pd.DataFrame]:
    """The self-identification rows of each tenant's candidates, one frame per tenant: tenant_id, candidate_id, then
    each attribute's code, ``declined`` or blank (missing). ``candidates`` keeps only those ids per tenant (those
    of the generated events, say); by default the whole pool."""
    catalogue = load_catalogue()
    for index, tenant_id in enumerate(config.tenant_ids):
        pool = config.pool_size
        columns: dict[str, object] = {
            "tenant_id": np.full(pool, tenant_id, dtype=object),
            "candidate_id": numbered(f"{tenant_id}-cand-", np.arange(pool), 7),
        }
        for name, codes in draw_attributes(config, index, pool).items():
            declined = _stream(config, 4, index, name).random(pool) < DECLINED_SHARE_OF_UNKNOWN
            lookup = np.array([*catalogue.values(name), None], dtype=object)  # code -1 picks the trailing entry
            values = lookup[codes]
            values[(codes == -1) & declined] = "declined"
            columns[name] = values
        frame = pd.DataFrame({name: pd.Series(values, dtype=TEXT_DTYPE) for name, values in columns.items()})
        if candidates is not None:
            frame = frame[frame["candidate_id"].isin(candidates.get(tenant_id, set())).to_numpy()]
        yield frame.reset_index(drop=True)


def write_attributes(
    config: GeneratorConfig,
    path: str | Path,
    fmt: Literal["csv", "jsonl"] = "csv",
    candidates: Mapping[str, Set[str]] | None = None,
) -> int:
    """Write the self-identification file matching ``config``'s events (``candidates``: only those ids per tenant);
    return the number of candidates written."""
    columns = ("tenant_id", "candidate_id", *load_catalogue().attribute_dimensions)
    return write_rows(attribute_frames(config, candidates), path, columns, fmt, what="attribute")


def collect_candidates(frames: Iterable[pd.DataFrame], into: dict[str, set[str]]) -> Iterator[pd.DataFrame]:
    """Pass event frames through, adding each tenant's candidate ids to ``into``: once the frames are out, the
    ``candidates`` argument of :func:`write_attributes` for a self-identification file of every candidate."""
    for frame in frames:
        for tenant, ids in frame.groupby("tenant_id")["candidate_id"]:
            into.setdefault(str(tenant), set()).update(ids.unique())
        yield frame
