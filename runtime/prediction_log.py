"""The prediction log: one record per answered row, written off the request path, read by `monitor`.

Format (the contract between `serve` and `monitor`): parquet files under the log root
(``settings.prediction_log_uri``, an ``s3://bucket/prefix/`` or, embedded, a folder in ``home``),
one file per flushed batch, partitioned by the UTC date of the batch's first record::

    <root>/date=2026-01-31/20260131T101500.123456Z-<uuid>.parquet

Columns: ``request_id``, ``timestamp`` (UTC), ``endpoint``, ``model``, ``model_version``,
``variant`` (champion/challenger), ``shadow`` (scored but not answered), ``prediction``, ``score``
(probability of the positive class, classifiers only), ``latency_ms``, ``features`` (a JSON object
feature -> value). ``read_prediction_log`` returns the same with one column per feature.

Writing never blocks a request: records go to an in-memory queue that a background thread
flushes in batches (it wakes on its interval or once a batch is full, never per record). When the destination is unreachable the batch is spooled to local disk
(``home/spool/prediction-log``) and delivered by a later flush; ``close`` (SIGTERM) flushes what
is queued, so a gracefully stopped server loses no logged prediction.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runtime.settings import Settings

LOCAL_FOLDER = "prediction-log"
"""Embedded default root, under ``home``."""
SPOOL_FOLDER = "spool/prediction-log"
"""Batches that could not be delivered yet, under ``home``."""
FLUSH_ROWS = 5000
RETRY_SECONDS = 10.0
COLUMNS = (
    "request_id",
    "timestamp",
    "endpoint",
    "model",
    "model_version",
    "variant",
    "shadow",
    "prediction",
    "score",
    "latency_ms",
    "features",
)
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("endpoint", pa.string()),
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("variant", pa.string()),
        ("shadow", pa.bool_()),
        # Labels (int/str) and regression outputs share one column: JSON keeps the type.
        ("prediction", pa.string()),
        ("score", pa.float64()),
        ("latency_ms", pa.float64()),
        ("features", pa.string()),
    ]
)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionRecord:
    """One answered (or shadow-scored) row."""

    request_id: str
    endpoint: str
    model: str
    model_version: str
    variant: str
    features: Mapping[str, Any]
    prediction: Any
    latency_ms: float
    score: float | None = None
    shadow: bool = False
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def log_root(settings: Settings) -> str:
    """Root of the prediction log: ``prediction_log_uri`` or a folder in ``home``."""
    if settings.prediction_log_uri:
        return settings.prediction_log_uri.rstrip("/")
    return str(settings.home.resolve() / LOCAL_FOLDER)


def to_table(records: Iterable[PredictionRecord]) -> pa.Table:
    """Records -> an arrow table with the log's schema."""
    rows = list(records)
    return pa.table(
        {
            "request_id": [r.request_id for r in rows],
            "timestamp": [r.timestamp for r in rows],
            "endpoint": [r.endpoint for r in rows],
            "model": [r.model for r in rows],
            "model_version": [r.model_version for r in rows],
            "variant": [r.variant for r in rows],
            "shadow": [r.shadow for r in rows],
            "prediction": [json.dumps(_plain(r.prediction)) for r in rows],
            "score": [None if r.score is None else float(r.score) for r in rows],
            "latency_ms": [float(r.latency_ms) for r in rows],
            "features": [json.dumps({k: _plain(v) for k, v in r.features.items()}) for r in rows],
        },
        schema=SCHEMA,
    )


def _plain(value: Any) -> Any:
    # numpy scalars -> Python scalars (json and parquet both want them).
    return value.item() if hasattr(value, "item") else value


def object_key(first: datetime) -> str:
    """Relative path of a batch whose first record is at ``first``."""
    first = first.astimezone(UTC)
    stamp = first.strftime("%Y%m%dT%H%M%S.%fZ")
    return f"date={first:%Y-%m-%d}/{stamp}-{uuid.uuid4().hex[:12]}.parquet"


class _Destination:
    """Where batches end up: an S3 prefix (boto3) or a local folder."""

    def __init__(self, settings: Settings, root: str) -> None:
        self._settings = settings
        self.root = root
        self._client: Any = None

    def put(self, key: str, data: bytes) -> None:
        if self.root.startswith("s3://"):
            bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
            self._s3().put_object(
                Bucket=bucket, Key=f"{prefix.strip('/')}/{key}".lstrip("/"), Body=data
            )
            return
        path = Path(self.root) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        # A reader never sees half a file.
        partial.replace(path)

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                region_name=self._settings.aws_region,
                endpoint_url=self._settings.aws_endpoint_url,
                # Fail fast into the spool; the next flush retries.
                config=Config(
                    connect_timeout=2,
                    read_timeout=5,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return self._client


class PredictionLogWriter:
    """Queues records and flushes them in batches from a background thread.

    ``record`` never blocks and never raises for a delivery problem. Use ``start``/``close``
    (or the context manager); ``close`` flushes everything queued.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        root: str | None = None,
        flush_interval: float | None = None,
        flush_rows: int = FLUSH_ROWS,
        retry_interval: float = RETRY_SECONDS,
    ) -> None:
        self._destination = _Destination(settings, root or log_root(settings))
        self._spool = settings.home.resolve() / SPOOL_FOLDER
        # A deque (append and popleft are atomic) and an event set once a batch is full: a
        # queue would wake the flushing thread for every record, and under load each wake-up
        # takes the interpreter lock from the event loop that answers requests.
        self._records: deque[PredictionRecord] = deque()
        self._wake = threading.Event()
        self._closing = False
        # Settings say how often serving flushes; a caller (a test) may say otherwise.
        self._flush_interval = (
            settings.prediction_log_flush_seconds if flush_interval is None else flush_interval
        )
        self._flush_rows = flush_rows
        self._retry_interval = retry_interval
        self._next_retry = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        """Records written to the destination so far (spooled ones count once delivered)."""
        self.spooled = 0
        """Records written to the local spool so far."""

    @property
    def root(self) -> str:
        return self._destination.root

    def record(self, item: PredictionRecord) -> None:
        """Queue one record (thread-safe, O(1))."""
        self._records.append(item)
        if len(self._records) >= self._flush_rows:
            self._wake.set()

    def start(self) -> PredictionLogWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Flush every queued record (to the destination, else the spool) and stop."""
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join()
            self._thread = None
        else:
            self._flush(self._drain(), final=True)

    def pending_spool(self) -> list[Path]:
        return sorted(self._spool.glob("*.parquet")) if self._spool.exists() else []

    def __enter__(self) -> PredictionLogWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self, limit: int | None = None) -> list[PredictionRecord]:
        """Up to ``limit`` (default: all) queued records, oldest first."""
        records, batch = self._records, []
        count = len(records) if limit is None else min(limit, len(records))
        for _ in range(count):
            batch.append(records.popleft())
        return batch

    def _run(self) -> None:
        deadline = time.monotonic() + self._flush_interval
        while True:
            self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            if self._closing:
                self._flush(self._drain(), final=True)
                return
            due, flushed = time.monotonic() >= deadline, False
            while len(self._records) >= self._flush_rows or (due and self._records):
                self._flush(self._drain(self._flush_rows), final=False)
                flushed = True
            if due:
                if not flushed:
                    # Nothing queued: the spool is still retried on the interval.
                    self._flush([], final=False)
                deadline = time.monotonic() + self._flush_interval

    def _flush(self, batch: list[PredictionRecord], *, final: bool) -> None:
        with self._lock:
            try:
                self._deliver_spool(force=final)
            except Exception:
                _log.warning("prediction log: spool delivery failed", exc_info=True)
            if not batch:
                return
            key = object_key(batch[0].timestamp)
            data = _parquet_bytes(to_table(batch))
            try:
                self._destination.put(key, data)
                self.delivered += len(batch)
            except Exception as error:
                _log.warning(
                    "prediction log: %s unreachable (%s); %d records spooled locally",
                    self.root,
                    str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
                    len(batch),
                )
                self._spool.mkdir(parents=True, exist_ok=True)
                path = self._spool / key.replace("/", "__")
                path.with_suffix(".part").write_bytes(data)
                path.with_suffix(".part").replace(path)
                self.spooled += len(batch)
                self._next_retry = time.monotonic() + self._retry_interval

    def _deliver_spool(self, *, force: bool) -> None:
        if not force and time.monotonic() < self._next_retry:
            return
        for path in self.pending_spool():
            data = path.read_bytes()
            try:
                self._destination.put(path.name.replace("__", "/"), data)
            except Exception:
                self._next_retry = time.monotonic() + self._retry_interval
                return
            self.delivered += pq.read_metadata(io.BytesIO(data)).num_rows
            path.unlink()


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_prediction_log(
    uri: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    settings: Settings | None = None,
    expand_features: bool = True,
) -> pd.DataFrame:
    """Records with ``start <= timestamp < end`` (UTC) from the log at ``uri``, oldest first.

    ``settings`` supplies the AWS region and endpoint for ``s3://`` URIs. With
    ``expand_features`` each feature becomes a column (a feature named like a log column is
    prefixed ``feature.``); the ``features`` JSON column is dropped. An empty or missing log gives
    an empty frame with the log's columns.
    """
    settings = settings or Settings()
    root = uri.rstrip("/")
    fs, base = _filesystem(settings, root)
    files = _files_in_window(fs, base, start, end)
    if files:
        table = pa.concat_tables(
            [pq.read_table(path, filesystem=fs, schema=SCHEMA) for path in files]
        )
        frame = table.to_pandas()
    else:
        frame = SCHEMA.empty_table().to_pandas()
    if start is not None:
        frame = frame[frame["timestamp"] >= pd.Timestamp(start).tz_convert("UTC")]
    if end is not None:
        frame = frame[frame["timestamp"] < pd.Timestamp(end).tz_convert("UTC")]
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["prediction"] = [json.loads(v) for v in frame["prediction"]]
    if not expand_features:
        return frame
    if frame.empty:
        return frame.drop(columns=["features"])
    features = pd.DataFrame.from_records(
        [json.loads(v) for v in frame.pop("features")], index=frame.index
    )
    features.columns = [f"feature.{c}" if c in COLUMNS else c for c in features.columns]
    return pd.concat([frame, features], axis=1)


def _filesystem(settings: Settings, root: str) -> tuple[Any, str]:
    if root.startswith("s3://"):
        from pyarrow import fs as pafs

        endpoint = settings.aws_endpoint_url
        s3 = pafs.S3FileSystem(
            region=settings.aws_region,
            endpoint_override=endpoint,
            scheme="http" if endpoint and endpoint.startswith("http://") else "https",
        )
        return s3, root.removeprefix("s3://")
    from pyarrow import fs as pafs

    return pafs.LocalFileSystem(), str(Path(root).resolve())


def _files_in_window(fs: Any, base: str, start: datetime | None, end: datetime | None) -> list[str]:
    from pyarrow import fs as pafs

    try:
        partitions = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except (FileNotFoundError, OSError):
        return []
    # A batch is filed under the date of its first record, so it may hold the next day's too.
    first_day = (start.astimezone(UTC) - timedelta(days=1)).date() if start else None
    last_day = end.astimezone(UTC).date() if end else None
    files: list[str] = []
    for info in partitions:
        name = info.base_name
        if info.type != pafs.FileType.Directory or not name.startswith("date="):
            continue
        day = datetime.strptime(name.removeprefix("date="), "%Y-%m-%d").date()
        if (first_day and day < first_day) or (last_day and day > last_day):
            continue
        for entry in fs.get_file_info(pafs.FileSelector(info.path)):
            if entry.type == pafs.FileType.File and entry.base_name.endswith(".parquet"):
                files.append(entry.path)
    return sorted(files)
