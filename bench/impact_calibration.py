"""Simulated false-alarm rates and power of the impact-ratio tests, on tables of realistic shapes (no database).

Run: ``.venv/bin/python bench/impact_calibration.py [--tables 4000] [--seed 13] [--legacy PATH]`` (about three minutes).

Families of null tables (every group has the same selection rate, drawn log-uniform in 0.5%-40%):

* single dimensions: 3-5 known groups (Dirichlet shares) plus ``unknown`` at 2%, 300-5,000 candidates (and at
  pipeline volumes: 2,000-50,000 candidates, rates 2%-40%, for this and the next family);
* intersections: (2-4 known + unknown) x (3-8 known + unknown) cells, 10-45 of them, 500-20,000 candidates;
* scoring rates: the single-dimension shape at rate 0.5 (the share above the median score);
* trends: two weeks of a single-dimension table (300-3,000 candidates a week), the same rates in both.

A table's false alarm is any compared group with ``p_adjusted < 0.05`` (for trends: any significant change, and
separately any "worsening" and any "improving"). Methods compared: ``legacy`` (the code before issue 13, read from
``--legacy`` and ``--legacy-trends``: ``git show 852f10f:fairness_pipeline/metrics/impact.py > /tmp/legacy_impact.py``
and the same for ``audits/trends.py``; skipped when absent), ``gate`` (what ``impact_ratio_tables``
does now), ``chi2_only`` (the gate with Pearson's asymptotic p everywhere), ``mc_exact`` (the gate with an exact
conditional Monte Carlo p, 999 draws from the multivariate hypergeometric distribution given the margins) and
``declared`` (a reference fixed before looking: the group with the largest expected share). Power: one group (single
dimensions) or one value of the first dimension (every cell of its row, intersections) selected at 0.7 times the
others' rate, at fixed volumes. Figures are proportions with Wilson 95% intervals.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairness_pipeline.audits.trends import week_over_week
from fairness_pipeline.metrics.impact import adjusted_p_values, impact_ratio_tables
from fairness_pipeline.metrics.window import TABLE_KEYS, AnalysisSettings

ALPHA = 0.05


def wilson(hits: int, total: int) -> str:
    """``p% (lo-hi)``: the proportion with its Wilson 95% interval."""
    if total == 0:
        return "n/a"
    z = 1.96
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return f"{100 * p:.1f}% ({100 * (centre - half):.1f}-{100 * (centre + half):.1f})"


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _sizes_and_rates(rng, tables: int, size, rate, rates) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.rint(_log_uniform(rng, *size, tables)).astype(int) if isinstance(size, tuple) else np.full(tables, size)
    return sizes, (_log_uniform(rng, *rates, tables) if rate is None else np.full(tables, rate))


def single_tables(
    rng, tables: int, *, rate=None, effect=1.0, size=(300, 5000), rates=(0.005, 0.40), unknown_share=0.02
) -> pd.DataFrame:
    """Null (or one planted group at ``effect`` times the rate) single-dimension tables: tenant_id = table number."""
    rows = []
    sizes, rates = _sizes_and_rates(rng, tables, size, rate, rates)
    for t in range(tables):
        k = int(rng.integers(3, 6))
        shares = np.sort(rng.dirichlet(np.full(k, 3.0)))[::-1] * (1 - unknown_share)
        shares = np.append(shares, unknown_share)
        n = rng.multinomial(sizes[t], shares)
        p = np.full(k + 1, rates[t])
        if effect != 1.0:
            p[1 + int(rng.integers(0, k - 1))] *= effect  # a known group other than the largest
        x = rng.binomial(n, p)
        names = [f"g{i}" for i in range(k)] + ["unknown"]
        rows.append(
            pd.DataFrame(
                {
                    "tenant_id": f"t{t:05d}",
                    "group": names,
                    "n": n,
                    "x": x,
                    "planted": p < rates[t],
                    "true_rate": rates[t],
                }
            )
        )
    return pd.concat(rows, ignore_index=True).assign(stage_pair="s", dimension="d")


def intersection_tables(
    rng, tables: int, *, rate=None, effect=1.0, size=(500, 20000), rates=(0.005, 0.40)
) -> pd.DataFrame:
    """Null (or one planted row of cells) intersection tables with 10-45 cells, unknown parts included."""
    rows = []
    sizes, rates = _sizes_and_rates(rng, tables, size, rate, rates)
    for t in range(tables):
        while True:
            k1, k2 = int(rng.integers(2, 5)), int(rng.integers(3, 9))
            if 10 <= (k1 + 1) * (k2 + 1) <= 45:
                break
        a = np.append(np.sort(rng.dirichlet(np.full(k1, 3.0)))[::-1] * 0.98, 0.02)
        b = np.append(np.sort(rng.dirichlet(np.full(k2, 3.0)))[::-1] * 0.98, 0.02)
        shares = np.outer(a, b).ravel()
        n = rng.multinomial(sizes[t], shares)
        p = np.full(shares.size, rates[t])
        planted = np.zeros(shares.size, dtype=bool)
        if effect != 1.0:
            row = 1 + int(rng.integers(0, k1 - 1))
            planted.reshape(k1 + 1, k2 + 1)[row, :k2] = True
            p[planted] *= effect
        x = rng.binomial(n, p)
        va = [f"a{i}" for i in range(k1)] + ["unknown"]
        vb = [f"b{i}" for i in range(k2)] + ["unknown"]
        names = [f"{u}|{v}" for u in va for v in vb]
        rows.append(
            pd.DataFrame(
                {"tenant_id": f"t{t:05d}", "group": names, "n": n, "x": x, "planted": planted, "true_rate": rates[t]}
            )
        )
    return pd.concat(rows, ignore_index=True).assign(stage_pair="s", dimension="a+b")


def null_weeks(rng, tables: int, size=(300, 3000)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two weeks of null single-dimension tables: the same groups, shares and rate, sizes drawn per week."""
    weeks: tuple[list, list] = ([], [])
    for t in range(tables):
        k = int(rng.integers(3, 6))
        shares = np.append(np.sort(rng.dirichlet(np.full(k, 3.0)))[::-1] * 0.98, 0.02)
        rate = float(_log_uniform(rng, 0.005, 0.40, 1)[0])
        names = [f"g{i}" for i in range(k)] + ["unknown"]
        for week in weeks:
            n = rng.multinomial(int(_log_uniform(rng, *size, 1)[0]), shares)
            week.append(
                pd.DataFrame(
                    {"tenant_id": f"t{t:05d}", "group": names, "n": n, "x": rng.binomial(n, rate), "planted": False}
                )
            )
    current, previous = (pd.concat(w, ignore_index=True).assign(stage_pair="s", dimension="d") for w in weeks)
    return current, previous


def _load_legacy(path: Path):
    spec = importlib.util.spec_from_file_location("legacy_impact", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def monte_carlo_omnibus(members: pd.DataFrame, rng: np.random.Generator, draws: int = 999) -> pd.Series:
    """Exact conditional Monte Carlo p of Pearson's statistic per table (K >= 3), sequential hypergeometric draws."""
    out = {}
    for table, part in members.groupby("tenant_id", sort=False):
        n, x = part["n"].to_numpy(np.int64), part["x"].to_numpy(np.int64)
        total, chosen = n.sum(), x.sum()
        if len(n) < 3 or chosen in (0, total):
            continue
        rate = chosen / total

        def stat(counts: np.ndarray, n=n, rate=rate) -> np.ndarray:
            return ((counts - n * rate) ** 2 / (n * rate * (1 - rate))).sum(axis=-1)

        observed = stat(x)
        left, remaining = np.full(draws, total), np.full(draws, chosen)
        sample = np.empty((draws, len(n)), dtype=np.int64)
        for k in range(len(n)):
            if k == len(n) - 1:
                sample[:, k] = remaining
                break
            sample[:, k] = rng.hypergeometric(remaining, left - remaining, n[k])
            remaining -= sample[:, k]
            left -= n[k]
        out[table] = (1 + np.count_nonzero(stat(sample) >= observed - 1e-9)) / (draws + 1)
    return pd.Series(out, dtype=float)


def variants(counts: pd.DataFrame, rng: np.random.Generator, legacy, intersectional: bool) -> dict[str, pd.DataFrame]:
    """Per method, the impact table (keys + group + impact_ratio, p_adjusted, planted)."""
    keys = list(TABLE_KEYS)
    out = {}
    if legacy is not None:
        old = legacy.impact_ratio_tables(counts, keys, intersectional=intersectional)
        out["legacy"] = old.assign(planted=counts["planted"].to_numpy())
    gate = impact_ratio_tables(counts, keys, intersectional=intersectional).assign(planted=counts["planted"].to_numpy())
    out["gate"] = gate
    compared = gate["p_value"].notna().to_numpy()
    family = gate.groupby(keys, sort=False).ngroup().to_numpy()
    pairwise = np.full(len(gate), np.nan)
    pairwise[compared] = adjusted_p_values(gate["p_value"].to_numpy()[compared], family[compared], intersectional)
    members = gate[gate["impact_ratio"].notna()]
    k = members.groupby("tenant_id")["group"].size()
    totals = members.groupby("tenant_id")[["n", "x"]].sum()
    rate = totals["x"] / totals["n"]
    m = members.join(rate.rename("rate"), on="tenant_id")
    m["term"] = (m["x"] - m["n"] * m["rate"]) ** 2 / (m["n"] * m["rate"] * (1 - m["rate"]))
    chi_p = pd.Series(chi2.sf(m.groupby("tenant_id")["term"].sum(), (k - 1).clip(lower=1)), index=k.index)
    chi_p[k < 3] = np.nan
    mc_p = monte_carlo_omnibus(members, rng)
    for name, omnibus in (("chi2_only", chi_p), ("mc_exact", mc_p)):
        gate_p = gate["tenant_id"].map(omnibus).to_numpy(dtype=float)
        two = gate["tenant_id"].map(k).to_numpy() == 2
        gate_p = np.where(two, gate["p_value"].to_numpy(), gate_p)
        adjusted = np.where(np.isnan(gate_p), pairwise, np.maximum(pairwise, gate_p))
        out[name] = gate.assign(p_adjusted=np.where(compared, adjusted, np.nan))
    declared = counts.groupby("tenant_id", sort=False)["group"].transform("first").to_numpy()  # largest share
    fixed = impact_ratio_tables(counts, keys, intersectional=intersectional, declared_reference=declared)
    out["declared"] = fixed.assign(planted=counts["planted"].to_numpy())
    return out


def false_alarms(table: pd.DataFrame) -> tuple[int, int, int]:
    """(tables with any significant group, tables with any significant adverse group, tables)."""
    significant = (table["p_adjusted"] < ALPHA).to_numpy()
    adverse = significant & (table["impact_ratio"] < 0.8).to_numpy()
    frame = pd.DataFrame({"t": table["tenant_id"], "s": significant, "a": adverse}).groupby("t")[["s", "a"]].any()
    return int(frame["s"].sum()), int(frame["a"].sum()), len(frame)


def detected(table: pd.DataFrame) -> tuple[int, int]:
    """(tables where a planted group is significant and below the reference, tables)."""
    hit = (table["p_adjusted"] < ALPHA).to_numpy() & (table["impact_ratio"] < 1).to_numpy() & table["planted"]
    frame = pd.DataFrame({"t": table["tenant_id"], "h": hit}).groupby("t")["h"].any()
    return int(frame.sum()), len(frame)


def trend_alarms(current: pd.DataFrame, previous: pd.DataFrame, legacy_trends) -> dict[str, tuple[int, int, int, int]]:
    """Per method: tables with any significant change, any worsening, any improving, tables."""
    out = {}
    for name, function in (("legacy", getattr(legacy_trends, "week_over_week", None)), ("pooled", week_over_week)):
        if function is None:
            continue
        table = function(current.drop(columns="planted"), previous.drop(columns="planted"), AnalysisSettings())
        significant = table["significant"].fillna(False).astype(bool)
        improving = significant & (table["log_change"] > 0)
        flags = pd.DataFrame(
            {"t": table["tenant_id"], "s": significant, "w": significant & (table["log_change"] < 0), "i": improving}
        )
        per = flags.groupby("t")[["s", "w", "i"]].any()
        out[name] = (int(per["s"].sum()), int(per["w"].sum()), int(per["i"].sum()), len(per))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--legacy", type=Path, default=Path("/tmp/legacy_impact.py"))
    parser.add_argument("--legacy-trends", type=Path, default=Path("/tmp/legacy_trends.py"))
    args = parser.parse_args()
    legacy = _load_legacy(args.legacy) if args.legacy.exists() else None
    legacy_trends = _load_legacy(args.legacy_trends) if args.legacy_trends.exists() else None
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    print(f"False alarms per table on null data ({args.tables} tables per family), alpha = {ALPHA}")
    families = {
        "single dimensions": (single_tables(rng, args.tables), False),
        "intersections": (intersection_tables(rng, args.tables), True),
        "scoring rates (rate 0.5)": (single_tables(rng, args.tables, rate=0.5), False),
        "single, pipeline volumes": (single_tables(rng, args.tables, size=(2000, 50000), rates=(0.02, 0.4)), False),
        "intersections, pipeline": (intersection_tables(rng, args.tables, size=(2000, 50000), rates=(0.02, 0.4)), True),
    }
    for family, (counts, intersectional) in families.items():
        for method, table in variants(counts, rng, legacy, intersectional).items():
            s, a, t = false_alarms(table)
            print(f"  {family:26s} {method:10s} any significant {wilson(s, t):22s} significant adverse {wilson(a, t)}")

    print("Trends (two null weeks, single dimensions)")
    current, previous = null_weeks(rng, args.tables)
    for method, (s, w, i, t) in trend_alarms(current, previous, legacy_trends).items():
        print(f"  {method:8s} any significant {wilson(s, t)}  worsening {wilson(w, t)}  improving {wilson(i, t)}")

    print("Power: planted group at 0.7 x the others' rate (share of tables where it is significant)")
    for family, maker, volumes in (
        ("single", single_tables, ((1000, 0.10), (2000, 0.10), (5000, 0.05), (10000, 0.04))),
        ("intersection", intersection_tables, ((2000, 0.10), (5000, 0.05), (10000, 0.04), (20000, 0.04))),
    ):
        for size, rate in volumes:
            counts = maker(rng, args.tables // 4, rate=rate, effect=0.7, size=size)
            results = variants(counts, rng, legacy, family == "intersection")
            line = "  ".join(f"{m} {wilson(*detected(t))}" for m, t in results.items())
            print(f"  {family:12s} N={size:6d} rate={rate:.2f}: {line}")
    reference_minimums(rng, args.tables, legacy)
    print(f"({time.perf_counter() - started:.0f} s)")


def reference_minimums(rng: np.random.Generator, tables: int, legacy) -> None:
    """What the reference minimums buy on null tables: how far the reference rate sits above the true rate (the
    yardstick's inflation, which sets every impact ratio), tables left without a reference; and power at one volume."""
    print("Reference minimums (null tables): reference rate / true rate (median, 90th percentile), no reference")
    single = single_tables(rng, tables)
    inter = intersection_tables(rng, tables)
    planted = intersection_tables(rng, tables // 4, rate=0.05, effect=0.7, size=5000)
    keys = list(TABLE_KEYS)
    if legacy is not None:
        for name, counts, flag in (("single", single, False), ("intersections", inter, True)):
            old = legacy.impact_ratio_tables(counts, keys, intersectional=flag)
            ref = old[old["is_reference"]]
            unknown = ref["group"].str.contains("unknown", regex=False)
            print(
                f"  legacy {name}: unknown reference {wilson(int(unknown.sum()), len(ref))}, reference with < 20 "
                f"candidates {wilson(int((ref['n'] < 20).sum()), len(ref))}"
            )
    for min_n, min_x in ((0, 1), (20, 1), (30, 5), (50, 5), (100, 10)):
        line = [f"  candidates >= {min_n:3d}, selections >= {min_x:2d}:"]
        for name, counts, flag in (("single", single, False), ("intersections", inter, True)):
            table = impact_ratio_tables(
                counts, keys, intersectional=flag, min_reference_candidates=min_n, min_reference_selections=min_x
            )
            ref = table["is_reference"].to_numpy()
            inflation = table["selection_rate"].to_numpy()[ref] / counts["true_rate"].to_numpy()[ref]
            none = 1 - ref.sum() / counts["tenant_id"].nunique()
            line.append(
                f"{name} {np.median(inflation):.2f} / {np.quantile(inflation, 0.9):.2f}, none {100 * none:.1f}%;"
            )
        table = impact_ratio_tables(
            planted, keys, intersectional=True, min_reference_candidates=min_n, min_reference_selections=min_x
        )
        line.append(f"power (intersections N=5000, 5%) {wilson(*detected(table.assign(planted=planted['planted'])))}")
        print(" ".join(line))


if __name__ == "__main__":
    main()
