"""Drift math: KS against scipy, PSI against hand-computed values on known distributions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from runtime import drift
from runtime.drift import Binning


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240131)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        pytest.param(("normal", 0, 1, 3000), ("normal", 0, 1, 2500), id="same-normal"),
        pytest.param(("normal", 0, 1, 3000), ("normal", 0.3, 1.2, 2000), id="shifted-normal"),
        pytest.param(("exponential", 1, None, 500), ("exponential", 1.5, None, 800), id="exp"),
        pytest.param(("integers", 0, 6, 4000), ("integers", 0, 7, 3000), id="ties"),
        pytest.param(("normal", 0, 1, 40), ("uniform", -1, 1, 25), id="small"),
    ],
)
def test_ks_matches_scipy(rng: np.random.Generator, reference: tuple, current: tuple) -> None:
    def sample(kind: str, a: float, b: float | None, n: int) -> np.ndarray:
        draw = getattr(rng, kind)
        return (draw(a, b, n) if b is not None else draw(a, n)).astype(float)

    ref, cur = sample(*reference), sample(*current)
    statistic, pvalue = drift.ks_2samp(ref, cur)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert statistic[0] == pytest.approx(expected.statistic, abs=1e-12)
    assert pvalue[0] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert statistic[0] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


def test_ks_of_many_columns_at_once_equals_column_by_column(rng: np.random.Generator) -> None:
    ref = rng.normal(size=(2000, 6))
    cur = rng.normal(0.1, 1.1, size=(1500, 6))
    cur[::7, 2] = np.nan  # NaN and inf are dropped per column, as scipy with finite input
    cur[::11, 4] = np.inf
    statistic, _ = drift.ks_2samp(ref, cur)
    for column in range(6):
        values = cur[:, column]
        expected = stats.ks_2samp(ref[:, column], values[np.isfinite(values)]).statistic
        assert statistic[column] == pytest.approx(expected, abs=1e-12)


def test_large_samples_use_the_limiting_distribution(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=250_000), rng.normal(0.003, 1, size=250_000)
    statistic, pvalue = drift.ks_2samp(ref, cur)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert statistic[0] == pytest.approx(expected.statistic, abs=1e-12)
    assert pvalue[0] == pytest.approx(expected.pvalue, rel=0.01)


@pytest.mark.parametrize("grid", [pytest.param(2, id="grid-2"), pytest.param(7, id="grid-7")])
def test_ks_evaluated_near_its_peak_only_is_still_exact(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, grid: int
) -> None:
    # A coarse grid first, then only the gaps that can beat it: scipy's statistic (to rounding).
    monkeypatch.setattr(drift, "KS_GRID", grid)
    for case in range(200):
        n1, n2 = rng.integers(40, 900, 2)
        if case % 3 == 0:
            ref, cur = rng.normal(size=n1), rng.normal(rng.uniform(0, 0.5), 1, n2)
        elif case % 3 == 1:  # ties within and across the samples
            ref, cur = rng.integers(0, 6, n1) * 1.0, rng.integers(0, 7, n2) * 1.0
        else:
            ref, cur = np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.1, 1, n2), 1)
        statistic, _ = drift.ks_2samp(ref, cur)
        assert statistic[0] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.002, 0.2])
def test_ks_of_large_samples_equals_scipy(rng: np.random.Generator, shift: float) -> None:
    ref, cur = rng.normal(size=300_000), rng.normal(shift, 1, size=200_000)
    cur[::5] = np.round(cur[::5], 2)  # and some values shared by both samples
    ref[::5] = np.round(ref[::5], 2)
    statistic, _ = drift.ks_2samp(ref, cur)
    assert statistic[0] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


def test_psi_by_hand_on_quantile_bins() -> None:
    # Reference 0..99: deciles at 9.9, 19.8, ... put ten values in each bin.
    reference = np.arange(100, dtype=float)
    # Current: 55 % of the rows in the first decile, 5 % in each of the other nine.
    current = np.concatenate([np.full(55, 1.0), np.repeat(np.arange(15.0, 100.0, 10.0), 5)])
    expected_current = np.array([0.55] + [0.05] * 9)
    expected = np.sum((0.1 - expected_current) * np.log(0.1 / expected_current))
    assert drift.psi(reference, current, bins=10)[0] == pytest.approx(expected, rel=1e-12)


def test_psi_fills_empty_bins_with_epsilon() -> None:
    reference = np.arange(100, dtype=float)
    current = np.full(100, 5.0)  # everything in the first decile; nine empty bins
    eps = drift.EPSILON
    expected = (1 - 0.1) * np.log(1 / 0.1) + 9 * (0.1 - eps) * np.log(0.1 / eps)
    assert drift.psi(reference, current)[0] == pytest.approx(expected, rel=1e-12)


def test_psi_of_identical_samples_is_zero_and_of_known_normals_is_close_to_theory(
    rng: np.random.Generator,
) -> None:
    same = rng.normal(size=200_000)
    assert drift.psi(same, same)[0] == pytest.approx(0.0, abs=1e-12)
    # PSI of N(0,1) vs N(mu,1) tends to mu^2 (the symmetric KL divergence) as bins get finer.
    ref, cur = rng.normal(size=200_000), rng.normal(0.5, 1, size=200_000)
    assert drift.psi(ref, cur, bins=50)[0] == pytest.approx(0.25, rel=0.1)


def test_sturges_binning_reproduces_numpy_histogram(rng: np.random.Generator) -> None:
    ref, cur = rng.gamma(2, 1, 5000), rng.gamma(2.5, 1, 4000)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_share = np.histogram(ref, edges)[0] / len(ref)
    cur_share = np.histogram(cur, edges)[0] / len(cur)
    ref_share = np.where(ref_share == 0, drift.EPSILON, ref_share)
    cur_share = np.where(cur_share == 0, drift.EPSILON, cur_share)
    expected = np.sum((ref_share - cur_share) * np.log(ref_share / cur_share))
    assert drift.psi(ref, cur, binning=Binning.sturges)[0] == pytest.approx(expected, rel=1e-12)


def test_categorical_psi_by_hand() -> None:
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["d"] * 10 + [None] * 5
    ref = np.array([0.5, 0.3, 0.2, drift.EPSILON])
    cur = np.array([0.2, 0.3, 0.4, 0.1])
    expected = np.sum((ref - cur) * np.log(ref / cur))
    assert drift.categorical_psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_drift_of_a_frame(rng: np.random.Generator) -> None:
    n = 3000
    reference = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(size=n),
            "count": rng.poisson(3, n),
            "band": rng.choice(["a", "b", "c"], n),
        }
    )
    current = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(1.0, 1, size=n),
            "count": rng.poisson(3, n),
            "band": rng.choice(["a", "b", "c"], n, p=[0.1, 0.1, 0.8]),
        }
    )
    current.loc[::10, "stable"] = np.nan
    found = {c.column: c for c in drift.drift(reference, current)}
    assert [c for c, d in found.items() if d.drifted()] == ["shifted", "band"]
    assert found["band"].kind == "categorical" and found["band"].ks_statistic is None
    # Few distinct values: compared value by value, still with a KS statistic.
    assert found["count"].psi == pytest.approx(
        drift.categorical_psi(reference["count"].tolist(), current["count"].tolist())
    )
    assert found["stable"].current_rows == n - n // 10
    assert found["shifted"].ks_statistic == pytest.approx(
        stats.ks_2samp(reference["shifted"], current["shifted"]).statistic
    )
    # KS sorts the columns; binning then reads the sorted copy: same PSI either way.
    without_ks = {c.column: c.psi for c in drift.drift(reference, current, ks=False)}
    assert without_ks == pytest.approx({c: d.psi for c, d in found.items()}, rel=1e-12)


def test_constant_and_empty_columns_do_not_break() -> None:
    reference = pd.DataFrame({"x": np.ones(50), "y": np.full(50, np.nan)})
    current = pd.DataFrame({"x": np.ones(40), "y": np.arange(40.0)})
    found = {c.column: c for c in drift.drift(reference, current)}
    assert found["x"].psi == pytest.approx(0.0)
    assert found["y"].reference_rows == 0 and np.isnan(found["y"].ks_statistic)


def test_discrete_columns_counted_from_sorted_values_equal_the_hashed_counts(
    rng: np.random.Generator,
) -> None:
    reference = pd.DataFrame({"n": rng.poisson(3, 5000) * 1.0, "k": rng.integers(0, 8, 5000)})
    current = pd.DataFrame({"n": rng.poisson(3.4, 4000) * 1.0, "k": rng.integers(1, 9, 4000)})
    current.loc[::13, "n"] = np.nan
    with_ks = {c.column: c.psi for c in drift.drift(reference, current)}
    hashed = {c.column: c.psi for c in drift.drift(reference, current, ks=False)}
    assert with_ks == pytest.approx(hashed, rel=1e-12)
    assert with_ks["k"] > 0.1


def test_drift_over_parallel_threads_equals_the_serial_computation(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Columns long enough to be sorted and searched on several threads give what one thread gives.
    reference = pd.DataFrame(rng.normal(size=(3000, 5)), columns=list("abcde"))
    current = pd.DataFrame(rng.normal(0.2, 1.1, size=(2000, 5)), columns=list("abcde"))
    current.loc[::9, "c"] = np.nan
    reference["d"] = rng.integers(0, 4, 3000)  # one discrete column: a subset stays continuous
    serial = drift.drift(reference, current)
    monkeypatch.setattr(drift, "PARALLEL_MIN_VALUES", 1)
    pool = ThreadPoolExecutor(3)
    monkeypatch.setattr(drift, "_pool", lambda: pool)
    parallel = drift.drift(reference, current)
    assert parallel == serial
    assert {c.column: c.kind for c in parallel}["d"] == "numeric"
