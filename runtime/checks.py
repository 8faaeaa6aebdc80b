"""Data checks with pandera: label data before the join, the training set after it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from runtime.errors import DataCheckError
from runtime.spec import PipelineSpec, Task, ValueRange, ValueType

MAX_REPORTED_CASES = 3
"""Failing values quoted per check in the report."""


def check_labels(
    frame: pd.DataFrame, pipeline: PipelineSpec, join_keys: Mapping[str, ValueType], where: str
) -> pd.DataFrame:
    """Validate the label data: columns, types, no nulls, ranges, row count. Returns it coerced."""
    labels = pipeline.labels
    columns: dict[str, pa.Column] = {
        key: pa.Column(
            "int64" if kind == ValueType.int64 else "str",
            nullable=False,
            coerce=kind == ValueType.string,
        )
        for key, kind in join_keys.items()
    }
    columns[labels.timestamp_field] = pa.Column(
        nullable=False,
        checks=[
            pa.Check(
                lambda s: pd.api.types.is_datetime64_any_dtype(s),
                error="a timestamp column (parquet timestamp, not text or numbers)",
            )
        ],
    )
    columns[labels.target] = pa.Column(
        nullable=False, checks=_target_checks(pipeline), coerce=False
    )
    if pipeline.protected_attribute:
        columns[pipeline.protected_attribute] = pa.Column(nullable=False)
    for column, bounds in pipeline.checks.ranges.items():
        if column in frame.columns and column not in columns:
            columns[column] = pa.Column(checks=_range_checks(bounds), nullable=True)
        elif column in columns:
            columns[column].checks.extend(_range_checks(bounds))
    schema = pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(
                lambda df: len(df) >= pipeline.checks.min_rows,
                error=f"at least {pipeline.checks.min_rows} rows (got {len(frame)})",
            )
        ],
        strict=False,
    )
    return _validate(schema, frame, where)


def check_training_set(
    frame: pd.DataFrame, pipeline: PipelineSpec, features: list[str], where: str
) -> pd.DataFrame:
    """Validate the joined training set: share of missing values and ranges per feature."""
    limit = pipeline.checks.max_null_fraction
    columns = {
        name: pa.Column(
            nullable=True,
            checks=[
                pa.Check(
                    lambda s, limit=limit: s.isna().mean() <= limit,
                    error=f"at most {limit:.0%} missing values after the point-in-time join",
                ),
                *_range_checks(pipeline.checks.ranges.get(name)),
            ],
        )
        for name in features
    }
    return _validate(pa.DataFrameSchema(columns, strict=False), frame, where)


def _target_checks(pipeline: PipelineSpec) -> list[pa.Check]:
    if pipeline.task == Task.classification:
        return [
            pa.Check(
                lambda s: pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s),
                error="a binary label of type int (0/1) or bool",
            ),
            pa.Check(
                lambda s: (
                    set(pd.unique(s.astype("int64"))) == {0, 1}
                    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
                    else False
                ),
                error="both classes 0 and 1 present and no other value",
            ),
        ]
    return [
        pa.Check(lambda s: pd.api.types.is_numeric_dtype(s), error="a numeric label"),
        pa.Check(
            lambda s: bool(pd.api.types.is_numeric_dtype(s) and s.map(_finite).all()),
            error="finite values",
        ),
    ]


def _finite(value: object) -> bool:
    return bool(pd.notna(value)) and abs(float(value)) != float("inf")  # type: ignore[arg-type]


def _range_checks(bounds: ValueRange | None) -> list[pa.Check]:
    if bounds is None:
        return []
    checks = []
    if bounds.min is not None:
        checks.append(pa.Check.ge(bounds.min, ignore_na=True))
    if bounds.max is not None:
        checks.append(pa.Check.le(bounds.max, ignore_na=True))
    return checks


def _validate(schema: pa.DataFrameSchema, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    if frame.empty:
        raise DataCheckError(where, ["no rows at all"])
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise DataCheckError(where, _report(errors, frame)) from None


def _report(errors: SchemaErrors, frame: pd.DataFrame) -> list[str]:
    cases = errors.failure_cases
    lines: list[str] = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        found = [
            v for v in group["failure_case"].dropna().unique() if not isinstance(v, bool | np.bool_)
        ]
        check = str(check)
        if check == "column_in_dataframe":
            lines.extend(f"column {name!r} is missing" for name in found)
            continue
        name = "the table" if pd.isna(column) or column is None else f"column {column!r}"
        if check.startswith("dtype("):
            actual = frame[column].dtype if column in frame.columns else "?"
            lines.append(f"{name} has type {actual}, expected {check[6:-1]}")
        elif check == "not_nullable":
            lines.append(f"{name} has {len(group)} missing value(s)")
        else:
            shown = ", ".join(repr(v) for v in found[:MAX_REPORTED_CASES])
            lines.append(f"{name} must be {check}" + (f" (found {shown})" if shown else ""))
    return lines
