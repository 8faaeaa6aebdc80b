"""Reading and writing parquet under the offline store root, local folder or S3 prefix."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from runtime.errors import DataCheckError
from runtime.feast_config import offline_root
from runtime.settings import Settings


def offline_uri(settings: Settings, path: str) -> str:
    """Absolute URI of ``path`` (relative to the offline store root)."""
    return f"{offline_root(settings)}/{path.lstrip('/')}"


def storage_options(settings: Settings, uri: str) -> dict[str, Any] | None:
    """fsspec options for ``uri`` (the emulator endpoint for S3), None for local paths."""
    if not uri.startswith("s3://"):
        return None
    client_kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    if settings.aws_endpoint_url:
        client_kwargs["endpoint_url"] = settings.aws_endpoint_url
    return {"client_kwargs": client_kwargs}


def _filesystem(settings: Settings, uri: str) -> tuple[Any, str]:
    if uri.startswith("s3://"):
        import s3fs

        fs = s3fs.S3FileSystem(**(storage_options(settings, uri) or {}))
        return fs, uri.removeprefix("s3://")
    from pathlib import Path

    return None, str(Path(uri))


def read_parquet(settings: Settings, path: str, what: str) -> pd.DataFrame:
    """Read a parquet file or folder under the offline root; a missing one is a data error."""
    uri = offline_uri(settings, path)
    try:
        return pd.read_parquet(uri, storage_options=storage_options(settings, uri))
    except (FileNotFoundError, OSError, pa.ArrowInvalid) as error:
        raise DataCheckError(what, [f"cannot read parquet at {uri} ({_short(error)})"]) from None


def parquet_schema(settings: Settings, path: str, what: str) -> pa.Schema:
    """Schema of a parquet file or folder, read from metadata only."""
    uri = offline_uri(settings, path)
    fs, local = _filesystem(settings, uri)
    try:
        return ds.dataset(local, format="parquet", filesystem=fs).schema
    except (FileNotFoundError, OSError, pa.ArrowInvalid) as error:
        raise DataCheckError(what, [f"cannot read parquet at {uri} ({_short(error)})"]) from None


def count_rows_after(settings: Settings, path: str, column: str, after: datetime) -> int:
    """Rows of the parquet at ``path`` (under the offline root) whose ``column`` is after ``after``.

    Reads that one column only; a missing file or column counts as no rows."""
    uri = offline_uri(settings, path)
    fs, local = _filesystem(settings, uri)
    try:
        table = ds.dataset(local, format="parquet", filesystem=fs).to_table(columns=[column])
    except (FileNotFoundError, OSError, pa.ArrowInvalid, KeyError):
        return 0
    stamps = pd.to_datetime(table.column(column).to_pandas(), utc=True)
    return int((stamps > pd.Timestamp(after).tz_convert("UTC")).sum())


def write_parquet(settings: Settings, frame: pd.DataFrame, path: str) -> str:
    """Write ``frame`` to ``path`` under the offline root; returns the URI written."""
    uri = offline_uri(settings, path)
    if not uri.startswith("s3://"):
        from pathlib import Path

        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(uri, index=False, storage_options=storage_options(settings, uri))
    return uri


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
