"""Selection rates via fairlearn and the cell-table helpers, checked against hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairness_pipeline.events.vocabulary import DIMENSIONS, UNKNOWN_GROUP
from fairness_pipeline.metrics.selection_rates import (
    analysis_dimensions,
    counts_by_dimension,
    dimension_name,
    selection_rate_frame,
    validate_counts,
)


def _counts(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["group", "n", "x"])


def test_ugesp_example_rates_and_parity() -> None:
    # UGESP-style example: 48 of 80 selected (60%) against 12 of 40 (30%).
    # Overall 60/120 = 0.5; DP ratio 0.3/0.6 = 0.5; DP difference 0.6 - 0.3 = 0.3.
    frame = selection_rate_frame(_counts([("white", 80, 48), ("black", 40, 12)]))
    rates = frame.by_group.set_index("group")["selection_rate"]
    assert rates["white"] == 0.6
    assert rates["black"] == 0.3
    assert frame.overall_rate == 0.5
    assert frame.dp_ratio == pytest.approx(0.5, abs=1e-15)
    assert frame.dp_difference == pytest.approx(0.3, abs=1e-15)
    assert list(frame.by_group.columns) == ["group", "n", "x", "selection_rate", "undefined_reason"]


def test_fairlearn_rates_equal_x_over_n_exactly() -> None:
    rng = np.random.default_rng(7)
    n = rng.integers(1, 5000, size=12)
    x = (n * rng.random(12)).astype(int)
    x[0], x[1] = 0, n[1]  # a group with no selections and one with all selected
    counts = pd.DataFrame({"group": [f"g{i:02d}" for i in range(12)], "n": n, "x": x})
    frame = selection_rate_frame(counts)
    expected = x / n
    assert frame.by_group["selection_rate"].tolist() == expected.tolist()  # exact, not approx
    assert frame.by_group.loc[0, "selection_rate"] == 0.0  # the selected flag is in y_pred, not ones
    assert frame.by_group.loc[1, "selection_rate"] == 1.0
    assert frame.overall_rate == pytest.approx(x.sum() / n.sum(), rel=1e-12)
    assert frame.dp_difference == pytest.approx(expected.max() - expected.min(), rel=1e-12)
    assert frame.dp_ratio == pytest.approx(expected.min() / expected.max(), rel=1e-12)


def test_empty_group_has_no_rate() -> None:
    frame = selection_rate_frame(_counts([("a", 10, 5), ("b", 0, 0), ("c", 20, 4)]))
    row = frame.by_group.set_index("group").loc["b"]
    assert np.isnan(row["selection_rate"])
    assert row["undefined_reason"] == "empty group"
    # DP over the two defined groups: 0.2 / 0.5 = 0.4, 0.5 - 0.2 = 0.3.
    assert frame.dp_ratio == pytest.approx(0.4)
    assert frame.dp_difference == pytest.approx(0.3)
    assert frame.overall_rate == pytest.approx(9 / 30)


def test_one_group_dimension_has_no_parity() -> None:
    frame = selection_rate_frame(_counts([("only", 50, 10), ("empty", 0, 0)]))
    assert frame.overall_rate == pytest.approx(0.2)
    assert frame.dp_ratio is None
    assert frame.dp_difference is None


def test_all_rates_zero_ratio_undefined() -> None:
    frame = selection_rate_frame(_counts([("a", 10, 0), ("b", 30, 0)]))
    assert frame.dp_ratio is None  # 0 / 0
    assert frame.dp_difference == 0.0
    assert frame.overall_rate == 0.0


def test_all_groups_empty() -> None:
    frame = selection_rate_frame(_counts([("a", 0, 0)]))
    assert frame.overall_rate is None and frame.dp_ratio is None and frame.dp_difference is None
    assert np.isnan(frame.by_group.loc[0, "selection_rate"])


@pytest.mark.parametrize(
    "rows",
    [
        [("a", 10, 11)],  # x > n
        [("a", 10, -1)],
        [("a", 10, 1), ("a", 5, 1)],  # duplicate group
        [(None, 10, 1)],
    ],
)
def test_invalid_counts_rejected(rows: list[tuple[str, int, int]]) -> None:
    with pytest.raises(ValueError):
        validate_counts(_counts(rows))


def test_analysis_dimensions_singles_then_pairs() -> None:
    assert analysis_dimensions(("a", "b", "c")) == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c")]
    assert analysis_dimensions(("a", "b"), pairs=False) == [("a",), ("b",)]
    assert analysis_dimensions()[:3] == [(d,) for d in DIMENSIONS]
    assert dimension_name(("company_tier", "experience_band")) == "company_tier+experience_band"


def _cells() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "company_tier": ["startup", "startup", "startup", "faang", None, "faang"],
            "experience_band": ["0-3", "0-3", "3-7", "0-3", "0-3", ""],
            "specialty": ["backend", "ml", "backend", "ml", "ml", "data"],
            "n": [10, 5, 7, 4, 3, 2],
            "x": [2, 1, 3, 4, 0, 1],
        }
    )


def test_counts_by_single_dimension() -> None:
    counts = counts_by_dimension(_cells(), ("company_tier",))
    # faang: 4 + 2 = 6, selected 4 + 1 = 5; startup: 10 + 5 + 7 = 22, 2 + 1 + 3 = 6; unknown: 3, 0.
    assert counts.to_dict("records") == [
        {"group": "faang", "n": 6, "x": 5},
        {"group": "startup", "n": 22, "x": 6},
        {"group": UNKNOWN_GROUP, "n": 3, "x": 0},
    ]


def test_counts_by_pair() -> None:
    counts = counts_by_dimension(_cells(), ("company_tier", "experience_band"))
    assert counts.set_index("group")[["n", "x"]].to_dict("index") == {
        "faang|0-3": {"n": 4, "x": 4},
        "faang|unknown": {"n": 2, "x": 1},  # empty string counts as unknown
        "startup|0-3": {"n": 15, "x": 3},
        "startup|3-7": {"n": 7, "x": 3},
        "unknown|0-3": {"n": 3, "x": 0},
    }
    assert counts["n"].sum() == _cells()["n"].sum()  # nobody is dropped


def test_counts_feed_selection_rates() -> None:
    frame = selection_rate_frame(counts_by_dimension(_cells(), ("company_tier",)))
    rates = frame.by_group.set_index("group")["selection_rate"]
    assert rates["faang"] == 5 / 6
    assert rates["startup"] == 6 / 22
    assert rates[UNKNOWN_GROUP] == 0.0


def test_group_counts_of_all_tables_equal_per_table_sums() -> None:
    """``window.group_counts`` (one grouping per dimension for every tenant and stage pair) against a per-table loop of
    ``counts_by_dimension`` with the allowed values of single dimensions appended as empty groups."""
    from fairness_pipeline.events.vocabulary import DIMENSION_VALUES
    from fairness_pipeline.metrics.window import AnalysisSettings, group_counts

    rng = np.random.default_rng(3)
    size = 400
    cells = pd.DataFrame(
        {
            "tenant_id": rng.choice(["t1", "t2"], size),
            "stage_pair": rng.choice(["shown->clicked", "shown->shortlisted"], size),
            "company_tier": rng.choice([*DIMENSION_VALUES["company_tier"][:3], None], size),  # 'other' never seen
            "experience_band": rng.choice(DIMENSION_VALUES["experience_band"], size),
            "specialty": rng.choice(["backend", "ml", "", None], size),  # blank and null are unknown
            "n": rng.integers(0, 50, size),
        }
    )
    cells["x"] = (cells["n"] * rng.random(size)).astype(int)
    for intersections in (True, False):
        settings = AnalysisSettings(intersections=intersections)
        expected = []
        for (tenant, pair), table in cells.groupby(["tenant_id", "stage_pair"], sort=True):
            for dims in analysis_dimensions(settings.dimensions, pairs=intersections):
                counts = counts_by_dimension(table, dims)
                if len(dims) == 1:
                    absent = [g for g in DIMENSION_VALUES[dims[0]] if g not in set(counts["group"])]
                    counts = pd.concat([counts, _counts([(g, 0, 0) for g in absent])], ignore_index=True)
                counts = counts.sort_values("group", ignore_index=True)
                expected.append(counts.assign(tenant_id=tenant, stage_pair=pair, dimension=dimension_name(dims)))
        oracle = pd.concat(expected, ignore_index=True)[["tenant_id", "stage_pair", "dimension", "group", "n", "x"]]
        oracle[["n", "x"]] = oracle[["n", "x"]].astype("int64")
        got = group_counts(cells, settings)
        pd.testing.assert_frame_equal(
            got, oracle.astype({c: object for c in ("tenant_id", "stage_pair", "dimension", "group")})
        )
        assert (got.loc[got["group"] == "other", "n"] == 0).all()
        assert {"unknown"} <= set(got.loc[got["dimension"] == "specialty", "group"])
    empty = group_counts(cells.iloc[:0], AnalysisSettings())
    assert list(empty.columns) == ["tenant_id", "stage_pair", "dimension", "group", "n", "x"] and empty.empty


def test_group_codes_equal_factorised_labels() -> None:
    from fairness_pipeline.metrics.selection_rates import group_codes, group_labels

    rng = np.random.default_rng(1)
    size = 3000
    frame = pd.DataFrame(
        {
            "company_tier": rng.choice(["faang", "startup", "", " ", None], size),  # blank and null are unknown
            "experience_band": pd.Categorical(rng.choice(["15+", "0-3", None], size)),
            "specialty": rng.choice(["ml", "backend"], size),
        }
    )
    for dims in [(d,) for d in frame.columns] + list(analysis_dimensions(tuple(frame.columns))[3:]):
        codes, groups = group_codes(frame, dims)
        expected_codes, expected_groups = pd.factorize(group_labels(frame, dims), sort=True)
        assert groups == list(expected_groups), dims
        np.testing.assert_array_equal(codes, expected_codes)
    assert "unknown" in group_codes(frame, ("company_tier",))[1]
    with pytest.raises(ValueError, match="lacks dimension columns"):
        group_codes(frame, ("gender",))
