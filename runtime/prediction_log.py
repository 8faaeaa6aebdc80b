"""The prediction log: one record per answered row, written off the request path, read by `monitor`.

Format (the contract between `serve` and `monitor`): parquet files under the log root
(``settings.prediction_log_uri``, an ``s3://bucket/prefix/`` or, embedded, a folder in ``home``),
one file per flushed batch and UTC hour, partitioned by date and hour; the name holds the times of
the file's first and last records, so a reader picks a window's files from listings alone::

    <root>/date=2026-01-31/hour=10/20260131T101500.123456Z-20260131T101504.998000Z-<uuid>.parquet

Columns: ``request_id``, ``timestamp`` (UTC), ``endpoint``, ``model``, ``model_version``,
``variant`` (champion/challenger), ``shadow`` (scored but not answered), ``prediction`` (JSON
text: labels and regression outputs share it), ``score`` (probability of the positive class,
classifiers only), ``latency_ms``, and one typed column per feature, ``feature.<name>`` (int64,
double, bool or string as the values were; mixed or nested values as JSON text). A feature a
batch's records did not send is absent from that file (null when some records sent it).

Files written before the typed columns and the hour level sit directly under ``date=`` (named by
their first record only, which may spill into the next day) and hold the features as one JSON
object column, ``features``; readers still read them.

Readers: ``open_window`` lists only the files that can hold a window's records and reads only the
columns asked for (``monitor`` reads the record columns once, then the features a few at a
time); ``read_prediction_log`` returns a window as one frame with one column per feature.

Writing never blocks a request: records go to an in-memory queue that a background thread
flushes in batches (it wakes on its interval or once a batch is full, never per record). When
the destination is unreachable the batch is spooled to local disk (``home/spool/prediction-log``) and delivered by a later flush; ``close`` (SIGTERM) flushes what
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
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from runtime.settings import Settings

LOCAL_FOLDER = "prediction-log"
"""Embedded default root, under ``home``."""
SPOOL_FOLDER = "spool/prediction-log"
"""Batches that could not be delivered yet, under ``home``."""
FLUSH_ROWS = 5000
RETRY_SECONDS = 10.0
RECORD_COLUMNS = (
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
)
"""The columns every file has; features follow, one column each."""
FEATURE_PREFIX = "feature."
"""Prefix of a feature's column in a file (and, in a frame, of a feature named like a column)."""
LEGACY_FEATURES = "features"
"""The JSON object column of files written before the typed feature columns."""
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
    ]
)
"""The record columns' types; the feature columns follow in each file."""
READ_THREADS = 8
"""Files read at once (object-store latency, not CPU, bounds a window's read)."""
_STAMP = "%Y%m%dT%H%M%S.%fZ"
REPEATED_COLUMNS = ("endpoint", "model", "model_version", "variant")
"""Record columns of a handful of distinct values: read as pandas categoricals."""
# A few distinct values per column: dictionary-encoded, a window of them costs 4 bytes a row.
_PARQUET = pads.ParquetFileFormat(
    read_options=pads.ParquetReadOptions(dictionary_columns=list(REPEATED_COLUMNS))
)
_log = logging.getLogger(__name__)


@dataclass(slots=True)
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
    """Records -> an arrow table: the record columns, then one typed column per feature.

    It runs on the flushing thread beside the event loop that answers requests, so per-record
    Python is kept to a list comprehension per column: a prediction's JSON text is made once per
    distinct label, and features go to arrow as they are (arrow reads numpy scalars).
    """
    rows = list(records)
    columns = {
        "request_id": [r.request_id for r in rows],
        "timestamp": [r.timestamp for r in rows],
        "endpoint": [r.endpoint for r in rows],
        "model": [r.model for r in rows],
        "model_version": [r.model_version for r in rows],
        "variant": [r.variant for r in rows],
        "shadow": [r.shadow for r in rows],
        "prediction": _json_texts([r.prediction for r in rows]),
        "score": [None if r.score is None else float(r.score) for r in rows],
        "latency_ms": [float(r.latency_ms) for r in rows],
    }
    fields = list(SCHEMA)
    arrays = [pa.array(columns[f.name], type=f.type) for f in SCHEMA]
    names, values = _feature_columns([r.features for r in rows])
    for name, column in zip(names, values, strict=True):
        array = _feature_array(column)
        fields.append(pa.field(FEATURE_PREFIX + name, array.type))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _feature_columns(
    features: list[Mapping[str, Any]],
) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """The features' names (in first-seen order) and each one's values in record order (None
    where a record lacks it)."""
    first = list(features[0]) if features else []
    if len(first) > 1 and sum(map(len, features)) == len(first) * len(features):
        try:
            # Every record has the same features (one model's rows): transposed in C.
            return first, zip(*map(itemgetter(*first), features), strict=True)
        except KeyError:
            pass
    names = list(dict.fromkeys(chain.from_iterable(features)))
    return names, ([values.get(name) for values in features] for name in names)


def _json_texts(values: list[Any]) -> list[str]:
    """Each value's JSON text; a classifier's few labels are each encoded once."""
    texts: dict[tuple[type, Any], str] = {}
    out = []
    for value in values:
        try:
            # The type is part of the key: 1, 1.0 and True are equal, their texts are not.
            key = (type(value), value)
            text = texts.get(key)
            if text is None:
                text = texts[key] = json.dumps(_plain(value))
        except TypeError:  # unhashable (a list): encoded each time
            text = json.dumps(_plain(value))
        out.append(text)
    return out


def _feature_array(values: list[Any]) -> pa.Array:
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        array = None
    kind = array.type if array is not None else None
    if kind is not None and (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_null(kind)
    ):
        return array
    # Mixed or nested values keep their JSON text, as the whole record did before.
    return pa.array(
        [None if v is None else json.dumps(_plain(v), default=str) for v in values], pa.string()
    )


def _plain(value: Any) -> Any:
    # numpy scalars -> Python scalars (json wants them).
    return value.item() if hasattr(value, "item") else value


def object_key(first: datetime, last: datetime | None = None) -> str:
    """Relative path of a file whose records lie between ``first`` and ``last`` (same UTC hour)."""
    first = first.astimezone(UTC)
    last = (last or first).astimezone(UTC)
    return (
        f"date={first:%Y-%m-%d}/hour={first:%H}/"
        f"{first.strftime(_STAMP)}-{last.strftime(_STAMP)}-{uuid.uuid4().hex[:12]}.parquet"
    )


_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_files(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """A batch's table as files: one per UTC hour its records fall in, with the key of each."""
    if table.num_rows == 0:
        return []
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    hours = micros // _HOUR_US
    files = []
    for hour in np.unique(hours):
        inside = hours == hour
        part = table if inside.all() else table.filter(pa.array(inside))
        stamps = micros[inside]
        first, last = (
            _EPOCH + timedelta(microseconds=int(us)) for us in (stamps.min(), stamps.max())
        )
        files.append((object_key(first, last), part))
    return files


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
            self._flush_remaining()

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
                self._flush_remaining()
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

    def _flush_remaining(self) -> None:
        """Everything queued (and the spool), in batches of at most ``flush_rows`` as ever."""
        self._flush(self._drain(self._flush_rows), final=True)
        while self._records:
            self._flush(self._drain(self._flush_rows), final=True)

    def _flush(self, batch: list[PredictionRecord], *, final: bool) -> None:
        with self._lock:
            try:
                self._deliver_spool(force=final)
            except Exception:
                _log.warning("prediction log: spool delivery failed", exc_info=True)
            for key, part in hour_files(to_table(batch)):
                self._deliver(key, part)

    def _deliver(self, key: str, part: pa.Table) -> None:
        data = _parquet_bytes(part)
        try:
            self._destination.put(key, data)
            self.delivered += part.num_rows
        except Exception as error:
            _log.warning(
                "prediction log: %s unreachable (%s); %d records spooled locally",
                self.root,
                str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
                part.num_rows,
            )
            self._spool.mkdir(parents=True, exist_ok=True)
            path = self._spool / key.replace("/", "__")
            path.with_suffix(".part").write_bytes(data)
            path.with_suffix(".part").replace(path)
            self.spooled += part.num_rows
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
    prefixed ``feature.``); without, the features are not read. An empty or missing log gives an
    empty frame with the log's columns.
    """
    window = open_window(uri, start, end, settings=settings)
    frame = window.records()
    # Plain strings, as this frame always had (``records`` keeps them categorical).
    frame = frame.astype({c: object for c in REPEATED_COLUMNS})
    if expand_features:
        features = window.features(window.feature_names(), frame.index.to_numpy())
        features.columns = [
            f"{FEATURE_PREFIX}{c}" if c in RECORD_COLUMNS else c for c in features.columns
        ]
        frame = pd.concat([frame, features.set_axis(frame.index)], axis=1)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def open_window(
    uri: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    settings: Settings | None = None,
) -> LogWindow:
    """The files of the log at ``uri`` that can hold records of ``[start, end)``, unread."""
    settings = settings or Settings()
    fs, base = _filesystem(settings, uri.rstrip("/"))
    return LogWindow(fs, _files_in_window(fs, base, start, end), start, end)


class LogWindow:
    """A window of the prediction log: its files, read a few columns at a time.

    ``records`` reads the record columns of the rows in the window; its index numbers each row
    across the window's files, and ``features`` reads feature columns for rows so numbered. Each
    file's footer is read once; a file none of whose rows is asked for is not opened again.
    """

    def __init__(
        self, fs: Any, files: list[Any], start: datetime | None, end: datetime | None
    ) -> None:
        self._fs = fs
        self._files = files
        self._start = None if start is None else pd.Timestamp(start).tz_convert("UTC")
        self._end = None if end is None else pd.Timestamp(end).tz_convert("UTC")
        self._fragments: list[Any] = [None] * len(files)
        self._legacy: dict[int, pd.DataFrame] = {}
        self._offsets: np.ndarray | None = None
        self._counting = threading.Lock()
        self.bytes_read = 0
        """Bytes of footers and column chunks read so far (what a read transfers, about)."""

    @property
    def files(self) -> list[str]:
        return [info.path for info in self._files]

    @property
    def size(self) -> int:
        """Bytes of the window's files."""
        return sum(int(info.size or 0) for info in self._files)

    def records(self, columns: Sequence[str] = RECORD_COLUMNS) -> pd.DataFrame:
        """The record ``columns`` of the rows in the window (file order; index: row number)."""
        wanted = list(dict.fromkeys(["timestamp", *columns]))
        unknown = [c for c in wanted if c not in SCHEMA.names]
        if unknown:
            raise ValueError(f"not a record column of the prediction log: {unknown}")
        shown = list(dict.fromkeys(columns))
        schema = pa.schema(
            [
                pa.field(c, pa.dictionary(pa.int32(), pa.string()))
                if c in REPEATED_COLUMNS
                else SCHEMA.field(c)
                for c in shown
            ]
        )
        offsets = self._row_offsets()

        def inside(i: int) -> tuple[pa.Table, np.ndarray]:
            table = self._read(i, wanted)
            mask = self._inside(table.column("timestamp"))
            if mask is None or mask.false_count == 0:
                numbers = offsets[i] + np.arange(table.num_rows)
            else:
                table = table.filter(mask)
                numbers = offsets[i] + np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            return table.select(shown).cast(schema), numbers

        found = self._map(inside, range(len(self._files)))
        table = pa.concat_tables([t for t, _ in found]) if found else schema.empty_table()
        numbers = np.concatenate([n for _, n in found]) if found else np.empty(0, np.int64)
        del found
        predictions = _decode_json(table["prediction"]) if "prediction" in shown else None
        if predictions is not None:
            table = table.drop_columns(["prediction"])
        # Column by column, each freed once converted: the window is not held twice.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        if predictions is not None:
            frame.insert(shown.index("prediction"), "prediction", predictions)
        frame.index = pd.Index(numbers)
        return frame

    def feature_names(self) -> list[str]:
        """Every feature some file of the window holds, in the order first seen."""
        names: dict[str, None] = {}
        for i in range(len(self._files)):
            schema = self._fragment(i).physical_schema
            if LEGACY_FEATURES in schema.names:
                names |= dict.fromkeys(self._legacy_features(i).columns)
            names |= {n.removeprefix(FEATURE_PREFIX): None for n in schema.names if _is_feature(n)}
        return list(names)

    def features(self, names: Sequence[str], rows: np.ndarray) -> pd.DataFrame:
        """Feature columns ``names`` of the rows numbered ``rows`` (from ``records``), in order.

        Only the files holding some of ``rows`` are read, and of them only these columns.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if not names:
            return pd.DataFrame(index=pd.RangeIndex(len(rows)))
        # Rows usually come in file order; any other order is restored at the end.
        ascending = bool(np.all(rows[1:] >= rows[:-1]))
        order = np.arange(len(rows)) if ascending else np.argsort(rows, kind="stable")
        ordered = rows if ascending else rows[order]
        offsets = self._row_offsets()
        bounds = np.searchsorted(ordered, offsets)
        wanted = [i for i in range(len(self._files)) if bounds[i] < bounds[i + 1]]
        columns = [FEATURE_PREFIX + n for n in names]

        def piece(i: int) -> dict[str, pa.ChunkedArray | pd.Series | int]:
            local = ordered[bounds[i] : bounds[i + 1]] - offsets[i]
            if LEGACY_FEATURES in self._fragment(i).physical_schema.names:
                legacy = self._legacy_features(i).reindex(columns=list(names)).iloc[local]
                return {name: legacy[name].reset_index(drop=True) for name in names}
            table = self._read(i, columns).take(pa.array(local))
            found: dict[str, pa.ChunkedArray | pd.Series | int] = {
                name: table.column(FEATURE_PREFIX + name)
                for name in names
                if FEATURE_PREFIX + name in table.column_names
            }
            return found | {"": len(local)}

        pieces = self._map(piece, wanted)
        frame = pd.DataFrame({name: _combined(pieces, name) for name in names}, copy=False)
        if ascending:
            return frame
        return frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)

    def _map(self, work: Any, items: Iterable[int]) -> list[Any]:
        items = list(items)
        if len(items) <= 1:
            return [work(i) for i in items]
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="prediction-log") as pool:
            return list(pool.map(work, items))

    def _fragment(self, i: int) -> Any:
        fragment = self._fragments[i]
        if fragment is None:
            info = self._files[i]
            # The listing gave the size: no request for it; the footer is read once, here.
            fragment = _PARQUET.make_fragment(info.path, self._fs, file_size=info.size)
            fragment.ensure_complete_metadata()
            self._fragments[i] = fragment
            self._count(fragment.metadata.serialized_size + 8)
        return fragment

    def _meta(self, i: int) -> pq.FileMetaData:
        metadata: pq.FileMetaData = self._fragment(i).metadata
        return metadata

    def _read(self, i: int, columns: Sequence[str]) -> pa.Table:
        fragment = self._fragment(i)
        present = [c for c in columns if c in fragment.physical_schema.names]
        table: pa.Table = fragment.to_table(columns=present, use_threads=False)
        self._count(_chunk_bytes(fragment.metadata, present))
        return table

    def _count(self, size: int) -> None:
        with self._counting:
            self.bytes_read += size

    def _legacy_features(self, i: int) -> pd.DataFrame:
        if i not in self._legacy:
            values = self._read(i, [LEGACY_FEATURES]).column(LEGACY_FEATURES).to_pylist()
            self._legacy[i] = pd.DataFrame.from_records([json.loads(v) for v in values])
        return self._legacy[i]

    def _row_offsets(self) -> np.ndarray:
        if self._offsets is None:
            counts = self._map(lambda i: self._meta(i).num_rows, range(len(self._files)))
            self._offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        return self._offsets

    def _inside(self, stamps: pa.ChunkedArray) -> pa.Array | None:
        mask = None
        for bound, op in ((self._start, pc.greater_equal), (self._end, pc.less)):
            if bound is not None:
                test = op(stamps, pa.scalar(bound.to_pydatetime(), stamps.type))
                mask = test if mask is None else pc.and_(mask, test)
        return None if mask is None else mask.combine_chunks()


def _is_feature(column: str) -> bool:
    return column.startswith(FEATURE_PREFIX)


def _chunk_bytes(metadata: pq.FileMetaData, columns: Sequence[str]) -> int:
    names = set(columns)
    total = 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.path_in_schema in names:
                total += chunk.total_compressed_size
    return total


def _combined(pieces: list[dict[str, Any]], name: str) -> pd.Series | np.ndarray:
    """One feature's values from every file's piece, in one array (numbers: no second copy)."""
    sizes = [len(p[name]) if name in p else p[""] for p in pieces]
    chunks = [p.pop(name, None) for p in pieces]
    kinds = [None if c is None or isinstance(c, pd.Series) else c.type for c in chunks]
    numeric = all(
        kind is not None
        and (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind))
        for kind in kinds
    )
    if not numeric or not chunks:
        series = [_as_series(c, size) for c, size in zip(chunks, sizes, strict=True)]
        return pd.concat(series, ignore_index=True) if series else pd.Series(dtype=float)
    whole = all(
        pa.types.is_integer(k) and c.null_count == 0 for k, c in zip(kinds, chunks, strict=True)
    )
    values = np.empty(sum(sizes), dtype=np.int64 if whole else np.float64)
    at = 0
    for i, chunk in enumerate(chunks):
        part = values[at : at + len(chunk)]
        if pa.types.is_null(chunk.type):
            part[:] = np.nan
        else:
            part[:] = chunk.cast(pa.float64() if not whole else pa.int64()).to_numpy()
        at += len(chunk)
        chunks[i] = None
    return values


def _as_series(chunk: pa.ChunkedArray | pd.Series | None, rows: int) -> pd.Series:
    if chunk is None or (not isinstance(chunk, pd.Series) and pa.types.is_null(chunk.type)):
        # A feature no record of this file sent: missing, whatever its type elsewhere.
        return pd.Series(np.full(rows, np.nan))
    return chunk if isinstance(chunk, pd.Series) else chunk.to_pandas()


def _decode_json(column: pa.ChunkedArray) -> pd.Series:
    """JSON texts -> values, each distinct text parsed once (labels repeat)."""
    if not len(column):
        return pd.Series([], dtype=object)
    encoded = column.combine_chunks().dictionary_encode()
    values = np.empty(len(encoded.dictionary), dtype=object)
    values[:] = [json.loads(v) for v in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return pd.Series(values[codes]).infer_objects()


def _filesystem(settings: Settings, root: str) -> tuple[Any, str]:
    from pyarrow import fs as pafs

    if root.startswith("s3://"):
        endpoint = settings.aws_endpoint_url
        s3 = pafs.S3FileSystem(
            region=settings.aws_region,
            endpoint_override=endpoint,
            scheme="http" if endpoint and endpoint.startswith("http://") else "https",
        )
        return s3, root.removeprefix("s3://")
    return pafs.LocalFileSystem(), str(Path(root).resolve())


def _files_in_window(fs: Any, base: str, start: datetime | None, end: datetime | None) -> list[Any]:
    """The files that can hold records of ``[start, end)``, from the listings alone."""
    from pyarrow import fs as pafs

    def listing(path: str) -> list[Any]:
        try:
            return list(fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))
        except (FileNotFoundError, OSError):
            return []

    start = start.astimezone(UTC) if start else None
    end = end.astimezone(UTC) if end else None
    # A legacy file is filed under the date of its first record and may spill into the next day.
    first_day = (start - timedelta(days=1)).date() if start else None
    last_day = end.date() if end else None
    files: list[Any] = []
    for partition in listing(base):
        name = partition.base_name
        if partition.type != pafs.FileType.Directory or not name.startswith("date="):
            continue
        day = datetime.strptime(name.removeprefix("date="), "%Y-%m-%d").replace(tzinfo=UTC)
        if (first_day and day.date() < first_day) or (last_day and day.date() > last_day):
            continue
        for entry in listing(partition.path):
            if entry.type == pafs.FileType.File and entry.base_name.endswith(".parquet"):
                first, _ = _stamps(entry.base_name)
                if end is None or first is None or first < end:
                    files.append(entry)
            elif entry.type == pafs.FileType.Directory and entry.base_name.startswith("hour="):
                hour = day + timedelta(hours=int(entry.base_name.removeprefix("hour=")))
                # Every record of a file lies in its hour.
                if (end and hour >= end) or (start and hour + timedelta(hours=1) <= start):
                    continue
                for item in listing(entry.path):
                    if item.type != pafs.FileType.File or not item.base_name.endswith(".parquet"):
                        continue
                    first, last = _stamps(item.base_name)
                    if (end and first and first >= end) or (start and last and last < start):
                        continue
                    files.append(item)
    return sorted(files, key=lambda info: info.path)


def _stamps(name: str) -> tuple[datetime | None, datetime | None]:
    """First and last record times in a file's name (a legacy name has the first only)."""
    parts = name.removesuffix(".parquet").split("-")
    found = []
    for part in parts[:2]:
        try:
            found.append(datetime.strptime(part, _STAMP).replace(tzinfo=UTC))
        except ValueError:
            break
    if not found:
        return None, None
    return found[0], found[1] if len(found) > 1 else None
