"""How fast `monitor`'s drift computation is next to evidently's DataDriftPreset (method psi).

Synthetic reference/current frames of 20 columns (continuous, low-cardinality integers, strings,
a column with missing values), a third of them shifted by amounts that straddle the threshold.
For each size: wall time (best of 3; evidently once at 1M rows), peak traced memory (tracemalloc, a separate pass so tracing does not
slow the timed one), and the per-column drift verdicts of both at evidently's PSI threshold (0.1).

Like for like, the comparison uses the same PSI definition as evidently (``Binning.sturges``:
equal-width bins over both samples, Sturges' count, value-by-value for <= 20 distinct values,
its epsilon for empty bins). The last column of the table is what `monitor` actually runs:
quantile-binned PSI plus a two-sample KS test per column.

evidently brings a large stack of its own (litestar, plotly, statsmodels, nltk), so it gets an
environment of its own, outside the work tree:

    python3 -m venv ~/.venvs/mlops-bench && ~/.venvs/mlops-bench/bin/pip install -e '.[bench]'
    ~/.venvs/mlops-bench/bin/python benchmarks/drift.py     # 100k and 1M rows; markdown to stdout
    ~/.venvs/mlops-bench/bin/python benchmarks/drift.py --rows 100000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime import drift  # noqa: E402

THRESHOLD = 0.1
"""evidently's default PSI threshold; both sides judge with it."""
COLUMNS = 20
SEED = 7
REPEAT = 3
"""Timed calls per case; the best counts."""
EVIDENTLY_REPEAT_ROWS = 200_000
"""Above this many rows evidently is timed once."""
TRAINING_REFERENCE_ROWS = 2000
"""What `train` logs as the reference by default (`training_reference_rows`): `monitor`'s usual case."""
SHIFTS = np.linspace(0, 0.6, 14)
"""Shift of each continuous column in `current`, in standard deviations."""


def continuous(rng: np.random.Generator, i: int, rows: int) -> np.ndarray:
    """Continuous column ``i``: normal, lognormal, gamma or uniform, in turn."""
    kind = i % 4
    if kind == 0:
        return rng.normal(0, 1, rows)
    if kind == 1:
        return rng.lognormal(3, 0.6, rows)
    if kind == 2:
        return rng.gamma(2, 1.5, rows)
    return rng.uniform(0, 1, rows)


def synthetic(
    rows: int, seed: int = SEED
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference and current frames; returns them with the numeric and categorical column names."""
    rng = np.random.default_rng(seed)

    def frame(shift: bool) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        # Continuous columns of four shapes, shifted in `current` by 0 to 0.6 of their spread:
        # PSI grows like shift^2, so several land close to the 0.1 threshold on either side.
        for i, shift_sd in enumerate(SHIFTS):
            values = continuous(rng, i, rows)
            columns[f"num_{i}"] = values + (shift_sd * values.std() if shift else 0.0)
        missing = rng.normal(0.15 if shift else 0, 1, rows)
        missing[rng.uniform(size=rows) < 0.02] = np.nan
        columns["num_missing"] = missing
        # Low-cardinality integers: evidently (and we) compare them value by value.
        columns["int_count"] = rng.poisson(3.6 if shift else 3, rows)
        columns["int_small"] = rng.integers(0, 8, rows)
        # Strings.
        p = [0.4, 0.3, 0.2, 0.1] if not shift else [0.3, 0.3, 0.25, 0.15]
        columns["cat_band"] = rng.choice(["a", "b", "c", "d"], rows, p=p)
        columns["cat_region"] = rng.choice(["north", "south", "east", "west", "x"], rows)
        columns["num_wide"] = rng.standard_t(3, rows) * (1.3 if shift else 1)
        return pd.DataFrame(columns)

    reference, current = frame(False), frame(True)
    assert reference.shape[1] == COLUMNS
    categorical = ["cat_band", "cat_region"]
    numeric = [c for c in reference.columns if c not in categorical]
    return reference, current, numeric, categorical


def ours(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """The monitor's computation with evidently's PSI definition (no KS: evidently's preset
    computes PSI only)."""
    return {c.column: c.psi for c in drift.drift(reference, current, binning="sturges", ks=False)}


def ours_monitor(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """What `monitor` runs: quantile-binned PSI and KS for every column."""
    return {c.column: c.psi for c in drift.drift(reference, current)}


def evidently_psi(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report([DataDriftPreset(method="psi", threshold=THRESHOLD)])
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            scores[config["column"]] = float(metric["value"])
    return scores


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """The value and the best wall time of ``repeat`` calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def run(rows: int) -> dict[str, Any]:
    reference, current, numeric, categorical = synthetic(rows)
    sampled = reference.sample(n=min(rows, TRAINING_REFERENCE_ROWS), random_state=SEED)
    cases = {
        "ours": lambda: ours(reference, current),
        "evidently": lambda: evidently_psi(reference, current, numeric, categorical),
        "monitor": lambda: ours_monitor(reference, current),
        "monitor_sampled": lambda: ours_monitor(sampled, current),
    }
    # Warm-up on a small slice: imports and first-call costs stay out of the figures.
    small = slice(0, 2000)
    ours(reference[small], current[small])
    ours_monitor(reference[small], current[small])
    evidently_psi(reference[small], current[small], numeric, categorical)
    results: dict[str, Any] = {"rows": rows}
    for name, fn in cases.items():
        # evidently takes most of a minute per call at 1M rows: one call there.
        repeat = 1 if name == "evidently" and rows > EVIDENTLY_REPEAT_ROWS else REPEAT
        results[f"{name}_scores"], results[f"{name}_seconds"] = timed(fn, repeat)
    for name, fn in cases.items():
        results[f"{name}_mib"] = peak_mib(fn)
    a, b = results["ours_scores"], results["evidently_scores"]
    verdicts = {c: (a[c] >= THRESHOLD, b[c] >= THRESHOLD) for c in b}
    results["agree"] = sum(x == y for x, y in verdicts.values())
    results["columns"] = len(verdicts)
    results["drifted"] = sum(y for _, y in verdicts.values())
    results["max_psi_difference"] = max(abs(a[c] - b[c]) for c in b)
    results["disagreeing"] = [c for c, (x, y) in verdicts.items() if x != y]
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows x cols | evidently (s) | ours, same PSI (s) | speed-up | evidently peak (MiB) "
        "| ours peak (MiB) | verdicts agree | max PSI diff | monitor: PSI + KS (s) | monitor peak (MiB) "
        f"| monitor, {TRAINING_REFERENCE_ROWS:,}-row reference (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} x {COLUMNS} | {r['evidently_seconds']:.2f} | {r['ours_seconds']:.3f} "
            f"| {r['evidently_seconds'] / r['ours_seconds']:.0f}x | {r['evidently_mib']:.0f} "
            f"| {r['ours_mib']:.0f} | {r['agree']}/{r['columns']} ({r['drifted']} drifted) "
            f"| {r['max_psi_difference']:.1e} | {r['monitor_seconds']:.2f} "
            f"| {r['monitor_mib']:.0f} | {r['monitor_sampled_seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results = []
    for rows in args.rows:
        result = run(rows)
        results.append(result)
        print(
            f"{rows:,} rows: evidently {result['evidently_seconds']:.2f}s, ours "
            f"{result['ours_seconds']:.3f}s, monitor {result['monitor_seconds']:.2f}s "
            f"({result['monitor_sampled_seconds']:.2f}s with the training reference); "
            f"agree {result['agree']}/{result['columns']}"
            + (f" (differ: {result['disagreeing']})" if result["disagreeing"] else ""),
            file=sys.stderr,
        )
    print(table(results))


if __name__ == "__main__":
    main()
