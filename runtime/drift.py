"""Drift statistics of many columns at once: PSI and the two-sample Kolmogorov-Smirnov test.

Columns are laid out as one ``(columns, rows)`` array, so sorting, quantiles, minima and maxima
run over every column in one numpy call; per column only an ``np.searchsorted`` over all its
rows remains. Non-finite values (NaN, +-inf) are dropped per column before anything is counted.

PSI = sum over bins of ``(ref% - cur%) * ln(ref% / cur%)``, empty bins filled with a small
epsilon. Two binnings:

- ``quantile`` (the monitor's default): bin edges at the reference's quantiles (deciles), so every
  bin holds about the same share of the training data.
- ``sturges``: equal-width bins over both samples together, as many as Sturges' rule gives; this
  is evidently's PSI definition, kept so its verdicts can be compared one to one.

Either way a numeric column with at most ``DISCRETE_MAX_VALUES`` distinct reference values, and
every string column, is compared value by value (categorical PSI).

KS is exact: the statistic is scipy's ``ks_2samp`` statistic (to rounding, tested against it),
not an approximation. It is found without searching every value: the CDF difference is
evaluated at every ``KS_GRID``-th sorted value first, and only the gaps whose end points leave
room for a larger difference are searched value by value (see ``_ks_statistic``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd

DEFAULT_BINS = 10
"""Quantile bins of the reference (deciles)."""
DEFAULT_PSI_THRESHOLD = 0.2
"""PSI at or above which a column counts as drifted (a common rule of thumb: 0.1 moderate, 0.2+ major)."""
MODERATE_PSI = 0.1
"""PSI from which a shift is worth a look."""
DISCRETE_MAX_VALUES = 20
"""Numeric columns with at most this many distinct reference values are compared value by value."""
EPSILON = 1e-4
"""Share given to an empty bin (smaller when the smallest non-empty share is below it)."""
KSTWO_MAX_N = 100_000
"""Largest effective sample size whose KS p-value uses Smirnov's finite-n distribution."""
KS_GRID = 256
"""KS evaluates the CDFs at every KS_GRID-th sorted value first, then only near the peak."""
_DISCRETE_PROBE_ROWS = 1000
PARALLEL_MIN_VALUES = 200_000
"""Columns of at least this many values are sorted and searched on every CPU the process may use."""


class Binning(StrEnum):
    quantile = "quantile"
    """Edges at the reference's quantiles."""
    sturges = "sturges"
    """Equal-width bins over both samples, Sturges' count (evidently's PSI)."""


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: Literal["numeric", "categorical"]
    psi: float
    ks_statistic: float | None
    """Largest distance between the two empirical CDFs (numeric columns)."""
    ks_pvalue: float | None
    """Two-sided p-value of the KS statistic, as scipy's ``ks_2samp(method="asymp")``."""
    reference_rows: int
    current_rows: int

    def drifted(self, threshold: float = DEFAULT_PSI_THRESHOLD) -> bool:
        return bool(self.psi >= threshold)


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    bins: int = DEFAULT_BINS,
    binning: Binning | str = Binning.quantile,
) -> np.ndarray:
    """PSI of every column of two numeric arrays shaped ``(rows, columns)`` (or 1-D: one column).

    Binned on continuous values only: use ``drift`` for the discrete/categorical rule.
    """
    ref, cur = _columns(reference), _columns(current)
    return _binned_psi(ref, cur, bins=bins, binning=Binning(binning))


def ks_2samp(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided two-sample KS statistic and asymptotic p-value of every column.

    The statistic equals ``scipy.stats.ks_2samp``'s; the p-value equals its ``method="asymp"``.
    """
    return _ks(_sorted(_columns(reference)), _sorted(_columns(current)))


def categorical_psi(reference: Sequence[object], current: Sequence[object]) -> float:
    """PSI over the distinct values of both samples (missing values ignored)."""
    return _categorical(_objects(reference), _objects(current))[0]


def drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int = DEFAULT_BINS,
    binning: Binning | str = Binning.quantile,
    ks: bool = True,
) -> list[ColumnDrift]:
    """PSI (and KS for numeric columns) of each of ``columns`` (default: those both frames have)."""
    binning = Binning(binning)
    names = list(columns) if columns is not None else [c for c in reference if c in current]
    numeric = [
        c
        for c in names
        if pd.api.types.is_numeric_dtype(reference[c])
        and pd.api.types.is_numeric_dtype(current[c])
        and not pd.api.types.is_bool_dtype(reference[c])
    ]
    # String columns are counted in a worker while the numeric ones are sorted and searched.
    pool = _pool() if len(reference) + len(current) >= PARALLEL_MIN_VALUES else None
    pending = {
        name: pool.submit(_categorical, _objects(reference[name]), _objects(current[name]))
        for name in names
        if pool is not None and name not in numeric
    }
    ref = _columns_of(reference, numeric)
    cur = _columns_of(current, numeric)
    ref_valid = _finite_counts(ref)
    cur_valid = _finite_counts(cur)
    discrete = _discrete_rows(ref, ref_valid)
    continuous = [i for i in range(len(numeric)) if i not in discrete]

    ref_sorted = cur_sorted = None
    statistics: dict[str, tuple[float, float]] = {}
    if ks and numeric:
        ref_sorted, cur_sorted = _sorted(ref), _sorted(cur)
        d, p = _ks(ref_sorted, cur_sorted, ref_valid, cur_valid)
        statistics = {c: (float(d[i]), float(p[i])) for i, c in enumerate(numeric)}
    values: dict[str, float] = {}
    if continuous:
        # Discrete rows are binned too (a few searches each): picking rows out would copy them.
        scores = _binned_psi(
            ref, cur, bins=bins, binning=binning, ref_sorted=ref_sorted, cur_sorted=cur_sorted
        )
        values |= {numeric[i]: float(scores[i]) for i in continuous}
    for i in discrete:
        if ref_sorted is not None and cur_sorted is not None:
            found = (ref_sorted[i, : ref_valid[i]], cur_sorted[i, : cur_valid[i]])
            values[numeric[i]] = _psi_of_counts(*_sorted_value_counts(*found))[0]
        else:
            values[numeric[i]] = _categorical(ref[i], cur[i])[0]

    results = []
    for name in names:
        if name in values:
            index = numeric.index(name)
            stat = statistics.get(name)
            results.append(
                ColumnDrift(
                    name,
                    "numeric",
                    values[name],
                    stat[0] if stat else None,
                    stat[1] if stat else None,
                    int(ref_valid[index]),
                    int(cur_valid[index]),
                )
            )
        else:
            value, ref_rows, cur_rows = (
                pending[name].result()
                if name in pending
                else _categorical(_objects(reference[name]), _objects(current[name]))
            )
            results.append(ColumnDrift(name, "categorical", value, None, None, ref_rows, cur_rows))
    return results


def _columns(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    if array.ndim == 1:
        return array[None, :]
    if array.ndim != 2:
        raise ValueError(f"expected a (rows, columns) array, got shape {array.shape}")
    return np.ascontiguousarray(array.T)


def _columns_of(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    if not names:
        return np.empty((0, len(frame)))
    # One contiguous row per column: every later pass reads a column as one block.
    return np.stack([frame[name].to_numpy(dtype="float64", na_value=np.nan) for name in names])


def _objects(values: Sequence[object] | pd.Series) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    return array if array.dtype == object else array.astype(object)


def _finite_counts(columns: np.ndarray) -> np.ndarray:
    counts = np.full(columns.shape[0], columns.shape[1])
    for i in _with_non_finite(columns):
        counts[i] = np.isfinite(columns[i]).sum()
    return counts


def _with_non_finite(columns: np.ndarray) -> list[int]:
    """Rows holding NaN or +-inf: NaN makes a sum NaN and +-inf makes it infinite."""
    if not columns.size:
        return []
    return list(np.flatnonzero(~np.isfinite(columns.sum(axis=1))))


def _discrete_rows(ref: np.ndarray, valid: np.ndarray) -> list[int]:
    """Columns with at most DISCRETE_MAX_VALUES distinct finite reference values."""
    found = []
    for i, column in enumerate(ref):
        # A handful of rows with more distinct values settles it without touching the rest.
        probe = column[:_DISCRETE_PROBE_ROWS]
        if np.unique(probe[np.isfinite(probe)]).size > DISCRETE_MAX_VALUES:
            continue
        if valid[i] == 0 or len(pd.unique(_finite(column))) <= DISCRETE_MAX_VALUES:
            found.append(i)
    return found


def _finite(column: np.ndarray) -> np.ndarray:
    mask = np.isfinite(column)
    return column if mask.all() else column[mask]


def _binned_psi(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    bins: int,
    binning: Binning,
    ref_sorted: np.ndarray | None = None,
    cur_sorted: np.ndarray | None = None,
) -> np.ndarray:
    """PSI per row of ``(columns, rows)`` arrays; sorted copies (from KS) make counting free."""
    if ref.shape[0] != cur.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} columns, current {cur.shape[0]}")
    if not ref.shape[0]:
        return np.empty(0)
    low, high, sizes = _range(ref, cur)
    interior = (
        _quantile_edges(ref, bins, ref_sorted)
        if binning == Binning.quantile
        else _sturges_edges(low, high, sizes)
    )
    width = max(len(edges) for edges in interior) + 1
    # Padding bins hold share 1 on both sides: (1 - 1) * ln(1) adds nothing.
    ref_share = np.ones((len(interior), width))
    cur_share = np.ones((len(interior), width))
    for i, edges in enumerate(interior):
        for values, ordered, share in ((ref, ref_sorted, ref_share), (cur, cur_sorted, cur_share)):
            counts = _counts(
                values[i], None if ordered is None else ordered[i], edges, low[i], high[i]
            )
            share[i, : len(edges) + 1] = counts / max(counts.sum(), 1)
    return _psi_of_shares(ref_share, cur_share)


def _counts(
    values: np.ndarray, ordered: np.ndarray | None, interior: np.ndarray, low: float, high: float
) -> np.ndarray:
    """Counts of bins [e_i, e_i+1) (the last one closed) between the interior edges."""
    if ordered is not None:
        # NaN sorts last, so the finite values are a prefix; binning them is a binary search.
        size = int(np.searchsorted(ordered, np.inf, "right"))
        below = np.searchsorted(ordered[:size], interior, "left")
        return np.diff(below, prepend=0, append=size)
    values = _finite(values)
    if not np.isfinite(low):
        return np.zeros(len(interior) + 1, dtype=np.int64)
    return np.histogram(values, np.concatenate([[low], interior, [high]]))[0]


def _range(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite minimum, maximum and count per column of both samples together."""
    low = np.minimum(ref.min(axis=1, initial=np.inf), cur.min(axis=1, initial=np.inf))
    high = np.maximum(ref.max(axis=1, initial=-np.inf), cur.max(axis=1, initial=-np.inf))
    sizes = np.full(ref.shape[0], ref.shape[1] + cur.shape[1])
    for i in np.flatnonzero(~(np.isfinite(low) & np.isfinite(high))):
        both = np.concatenate([_finite(ref[i]), _finite(cur[i])])
        sizes[i] = both.size
        low[i], high[i] = (both.min(), both.max()) if both.size else (np.nan, np.nan)
    return low, high, sizes


def _quantile_edges(
    ref: np.ndarray, bins: int, ref_sorted: np.ndarray | None = None
) -> list[np.ndarray]:
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    cuts = np.linspace(0, 1, bins + 1)[1:-1]
    if ref_sorted is not None:
        return [_sorted_quantiles(column, cuts) for column in ref_sorted]
    edges = np.quantile(ref, cuts, axis=1).T
    for i in _with_non_finite(ref):
        values = _finite(ref[i])
        edges[i] = np.quantile(values, cuts) if values.size else np.nan
    # Bins are [e_i, e_i+1): a value on an edge goes up; repeated edges leave empty bins (no PSI).
    return [row[np.isfinite(row)] for row in edges]


def _sorted_quantiles(ordered: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """``np.quantile(values, cuts)`` (linear method) of sorted values, NaN last."""
    size = int(np.searchsorted(ordered, np.inf, "right"))
    if not size:
        return np.empty(0)
    position = cuts * (size - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, size - 1)
    fraction = position - below
    return ordered[below] + fraction * (ordered[above] - ordered[below])


def _sturges_edges(low: np.ndarray, high: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Interior edges of ``np.histogram_bin_edges(both, bins="sturges")`` per column."""
    result = []
    for lo, hi, size in zip(low, high, sizes, strict=True):
        if size == 0:
            result.append(np.empty(0))
            continue
        first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
        # Same arithmetic as numpy's "sturges" selector, so the bin count is identical.
        width = (hi - lo) / (np.log2(size) + 1.0)
        count = int(np.ceil((last - first) / width)) if width else 1
        result.append(np.linspace(first, last, count + 1)[1:-1])
    return result


def _value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each distinct value (hash-based, one pass) in both samples; missing ignored."""
    if ref.dtype.kind == "f" or cur.dtype.kind == "f":
        ref, cur = (
            np.where(np.isinf(v), np.nan, v) if v.dtype.kind == "f" else v for v in (ref, cur)
        )
    # Missing values (None, NaN) get code -1; they count in neither sample.
    codes, uniques = pd.factorize(np.concatenate([ref, cur]), sort=False)
    size = len(uniques) + 1
    ref_counts = np.bincount(codes[: len(ref)] + 1, minlength=size)[1:]
    cur_counts = np.bincount(codes[len(ref) :] + 1, minlength=size)[1:]
    return ref_counts, cur_counts


def _sorted_value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_value_counts`` of sorted finite samples: runs of equal values, no hashing."""
    found = []
    for ordered in (ref, cur):
        starts = np.flatnonzero(np.concatenate([[ordered.size > 0], ordered[1:] != ordered[:-1]]))
        found.append((ordered[starts], np.diff(np.append(starts, ordered.size))))
    (ref_values, ref_runs), (cur_values, cur_runs) = found
    distinct = np.union1d(ref_values, cur_values)
    ref_counts = np.zeros(distinct.size, dtype=np.int64)
    cur_counts = np.zeros(distinct.size, dtype=np.int64)
    ref_counts[np.searchsorted(distinct, ref_values)] = ref_runs
    cur_counts[np.searchsorted(distinct, cur_values)] = cur_runs
    return ref_counts, cur_counts


def _categorical(ref: np.ndarray, cur: np.ndarray) -> tuple[float, int, int]:
    """PSI over distinct values and the non-missing row counts."""
    return _psi_of_counts(*_value_counts(ref, cur))


def _psi_of_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, int, int]:
    ref_rows, cur_rows = int(ref_counts.sum()), int(cur_counts.sum())
    ref_share = ref_counts / max(ref_rows, 1)
    cur_share = cur_counts / max(cur_rows, 1)
    if not ref_share.size:
        return float("nan"), ref_rows, cur_rows
    value = float(_psi_of_shares(ref_share[None, :], cur_share[None, :])[0])
    return value, ref_rows, cur_rows


def _fill_empty(share: np.ndarray) -> np.ndarray:
    """Empty bins get EPSILON, or a millionth of the smallest share when that is below EPSILON."""
    nonzero = np.where(share > 0, share, np.inf).min(axis=1, keepdims=True)
    fill = np.where(nonzero <= EPSILON, nonzero / 1e6, EPSILON)
    return np.where(share > 0, share, fill)


def _psi_of_shares(ref_share: np.ndarray, cur_share: np.ndarray) -> np.ndarray:
    ref_share, cur_share = _fill_empty(ref_share), _fill_empty(cur_share)
    return ((ref_share - cur_share) * np.log(ref_share / cur_share)).sum(axis=1)


@cache
def _pool() -> ThreadPoolExecutor | None:
    # numpy releases the GIL while it sorts and searches: one thread per usable CPU.
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ThreadPoolExecutor(usable, thread_name_prefix="drift") if (usable or 1) > 1 else None


def _each_row(columns: np.ndarray, work: Callable[[int], object]) -> None:
    """``work(i)`` for every row (column of the data); in parallel when the rows are long."""
    pool = _pool() if columns.shape[0] > 1 and columns.shape[1] >= PARALLEL_MIN_VALUES else None
    if pool is None:
        for i in range(columns.shape[0]):
            work(i)
    else:
        list(pool.map(work, range(columns.shape[0])))


def _sorted(columns: np.ndarray) -> np.ndarray:
    # NaN sorts last; +-inf are dropped like NaN.
    if np.isinf(columns).any():
        columns = np.where(np.isinf(columns), np.nan, columns)
    ordered = np.empty_like(columns)

    def sort(i: int) -> None:
        ordered[i] = np.sort(columns[i])

    _each_row(columns, sort)
    return ordered


def _ks(
    ref: np.ndarray,
    cur: np.ndarray,
    ref_valid: np.ndarray | None = None,
    cur_valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """KS of sorted columns (``_ks_statistic`` per column), with scipy's asymptotic p-value."""
    ref_valid = _finite_counts(ref) if ref_valid is None else ref_valid
    cur_valid = _finite_counts(cur) if cur_valid is None else cur_valid
    statistic = np.full(ref.shape[0], np.nan)

    def one(i: int) -> None:
        n1, n2 = int(ref_valid[i]), int(cur_valid[i])
        if n1 and n2:
            statistic[i] = _ks_statistic(ref[i, :n1], cur[i, :n2])

    _each_row(ref if ref.shape[1] >= cur.shape[1] else cur, one)
    return statistic, _ks_pvalue(statistic, ref_valid, cur_valid)


def _ks_statistic(r: np.ndarray, c: np.ndarray) -> float:
    """Exact KS statistic of two sorted finite samples, looking closely only where it can peak.

    The CDF difference is evaluated exactly at every ``KS_GRID``-th value of either sample. Between
    two such values each CDF moves by at most ``KS_GRID`` values, so a gap whose CDFs at its ends
    cannot beat the best grid value is skipped; the values inside the other gaps (around the
    peak: usually a few percent of them) are evaluated one by one. Same result as evaluating
    every value, an order of magnitude less searching.
    """
    n1, n2 = len(r), len(c)
    if n1 + n2 <= 16 * KS_GRID:
        return _ks_at(r, c, np.arange(n1), np.arange(n2))
    grid = np.unique(np.concatenate([r[KS_GRID - 1 :: KS_GRID], c[KS_GRID - 1 :: KS_GRID]]))
    f1 = np.searchsorted(r, grid, "right")
    f2 = np.searchsorted(c, grid, "right")
    difference = f1 / n1 - f2 / n2
    best = max(float(difference.max()), float(-difference.min()), 0.0)
    # Open gaps between -inf, the grid values, +inf; in one, F1 - F2 <= F1(right) - F2(left).
    at1 = np.concatenate([[0], f1, [n1]]) / n1
    at2 = np.concatenate([[0], f2, [n2]]) / n2
    bound = np.maximum(at1[1:] - at2[:-1], at2[1:] - at1[:-1])
    gaps = np.flatnonzero(bound > best)
    if not gaps.size:
        return best
    edges = np.concatenate([[-np.inf], grid, [np.inf]])
    left, right = edges[gaps], edges[gaps + 1]
    inside_r = _spans(np.searchsorted(r, left, "right"), np.searchsorted(r, right, "left"))
    inside_c = _spans(np.searchsorted(c, left, "right"), np.searchsorted(c, right, "left"))
    return max(best, _ks_at(r, c, inside_r, inside_c))


def _ks_at(r: np.ndarray, c: np.ndarray, at_r: np.ndarray, at_c: np.ndarray) -> float:
    """Largest CDF difference at the sorted values ``r[at_r]`` and ``c[at_c]``.

    The difference only rises at reference values and only falls at current values, so its
    maximum is at a reference value and its minimum at a current value. At the last of equal
    values the rank is exact; earlier ties only under-estimate.
    """
    n1, n2 = len(r), len(c)
    best = 0.0
    if at_r.size:
        best = max(best, float(((at_r + 1) / n1 - np.searchsorted(c, r[at_r], "right") / n2).max()))
    if at_c.size:
        best = max(best, float(((at_c + 1) / n2 - np.searchsorted(r, c[at_c], "right") / n1).max()))
    return best


def _spans(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The indices of ranges ``[start, stop)``, concatenated."""
    lengths = np.maximum(stops - starts, 0)
    total = int(lengths.sum())
    if not total:
        return np.empty(0, dtype=np.intp)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return shift + np.arange(total)


def _ks_pvalue(statistic: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    from scipy.stats import kstwo, kstwobign

    pvalue = np.full(statistic.shape, np.nan)
    for i, d in enumerate(statistic):
        if np.isnan(d):
            continue
        m, n = float(max(n1[i], n2[i])), float(min(n1[i], n2[i]))
        effective = round(m * n / (m + n))
        # scipy's asymptotic formula; past KSTWO_MAX_N its limit (kstwo gets slow, same to 1 %).
        if effective <= KSTWO_MAX_N:
            pvalue[i] = kstwo.sf(d, max(effective, 1))
        else:
            pvalue[i] = kstwobign.sf(d * np.sqrt(effective))
    return np.clip(pvalue, 0, 1)
