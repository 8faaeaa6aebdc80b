"""The prediction log's files: typed feature columns, hour partitions, windows read by `monitor`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import drift, monitor
from runtime.monitor import feature_drift
from runtime.prediction_log import (
    SCHEMA,
    PredictionLogWriter,
    PredictionRecord,
    object_key,
    open_window,
    read_prediction_log,
    to_table,
)
from runtime.settings import Settings
from tests.runtime.conftest import REGION

BASE = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
LEGACY_SCHEMA = SCHEMA.append(pa.field("features", pa.string()))
"""The files written before the typed feature columns."""


def record(i: int, at: datetime, features: dict[str, object], **extra: object) -> PredictionRecord:
    fields: dict[str, object] = {"score": 0.5, "variant": "champion", "prediction": 1} | extra
    return PredictionRecord(
        request_id=f"r{i}",
        endpoint="scorer",
        model="fraud-model",
        model_version="1",
        features=features,
        latency_ms=2.0,
        timestamp=at,
        **fields,  # type: ignore[arg-type]
    )


def write(settings: Settings, records: list[PredictionRecord], *, rows: int = 5000) -> None:
    # A flush every `rows` records, as serving's flushes cut the stream.
    with PredictionLogWriter(settings, flush_rows=rows) as writer:
        for item in records:
            writer.record(item)


def legacy_file(root: Path, records: list[PredictionRecord]) -> Path:
    """A file as the log wrote it before: JSON features, directly under the date."""
    table = to_table(records).select(SCHEMA.names)
    features = [json.dumps(dict(r.features)) for r in records]
    table = table.append_column("features", pa.array(features, pa.string()))
    first = records[0].timestamp
    path = root / f"date={first:%Y-%m-%d}" / f"{first:%Y%m%dT%H%M%S.%fZ}-0123456789ab.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(LEGACY_SCHEMA), path)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", team="fraud")


def test_each_feature_is_a_typed_column(settings: Settings) -> None:
    records = [
        record(0, BASE, {"amount": 1.5, "count": 3, "band": "a", "new": True, "mixed": 1}),
        record(1, BASE, {"amount": 2.5, "count": 4, "band": None, "mixed": "x"}),
    ]
    write(settings, records)

    [path] = (settings.home / "prediction-log").rglob("*.parquet")
    schema = pq.read_schema(path)

    assert path.parent.name == "hour=10" and path.parent.parent.name == "date=2026-01-31"
    assert "features" not in schema.names
    assert {n: str(schema.field(n).type) for n in schema.names if n.startswith("feature.")} == {
        "feature.amount": "double",
        "feature.count": "int64",
        "feature.band": "string",
        "feature.new": "bool",
        # Values of several types keep their JSON text.
        "feature.mixed": "string",
    }
    log = read_prediction_log(str(settings.home / "prediction-log"), settings=settings)
    assert list(log["amount"]) == [1.5, 2.5]
    assert list(log["count"]) == [3, 4]
    assert log["new"].tolist() == [True, None]
    assert list(log["mixed"]) == ["1", '"x"']


def test_records_with_the_same_features_and_numpy_values_are_typed_as_python_ones() -> None:
    # One model's rows (every record has every feature), values as numpy hands them over.
    records = [
        record(i, BASE, {"amount": np.float64(i + 0.5), "count": np.int64(i), "band": "a"})
        for i in range(3)
    ]

    table = to_table(records)

    assert table.column("feature.amount").to_pylist() == [0.5, 1.5, 2.5]
    assert table.column("feature.count").type == pa.int64()
    assert table.column("feature.band").to_pylist() == ["a", "a", "a"]


def test_each_prediction_keeps_the_json_text_of_its_own_type() -> None:
    # 1, 1.0 and True are equal (one dictionary key), their JSON texts are not.
    predictions = [1, 1.0, True, "1", 1, np.int64(2), [1, 2]]
    records = [record(i, BASE, {"x": 1}, prediction=p) for i, p in enumerate(predictions)]

    texts = to_table(records).column("prediction").to_pylist()

    assert texts == ["1", "1.0", "true", '"1"', "1", "2", "[1, 2]"]


def test_files_of_the_old_layout_are_still_read(settings: Settings) -> None:
    root = settings.home / "prediction-log"
    legacy_file(root, [record(0, BASE, {"amount": 1.0, "band": "a"})])
    write(settings, [record(1, BASE + timedelta(minutes=1), {"amount": 2.0, "band": "b"})])

    log = read_prediction_log(str(root), BASE, BASE + timedelta(hours=1), settings=settings)
    window = open_window(str(root), BASE, BASE + timedelta(hours=1), settings=settings)
    rows = window.records()

    assert list(log["request_id"]) == ["r0", "r1"]
    assert list(log["amount"]) == [1.0, 2.0]
    assert list(log["band"]) == ["a", "b"]
    assert list(log["prediction"]) == [1, 1]
    assert window.feature_names() == ["amount", "band"]
    assert list(window.features(["band", "amount"], rows.index.to_numpy())["band"]) == ["a", "b"]


def test_a_batch_across_an_hour_is_two_files(settings: Settings) -> None:
    at = BASE + timedelta(minutes=59, seconds=59)
    write(settings, [record(0, at, {"x": 1}), record(1, at + timedelta(seconds=2), {"x": 2})])

    paths = sorted((settings.home / "prediction-log").rglob("*.parquet"))

    assert [p.parent.name for p in paths] == ["hour=10", "hour=11"]
    assert paths[0].name.startswith("20260131T105959.000000Z-20260131T105959.000000Z-")


def test_a_window_reads_only_the_files_that_can_hold_it(settings: Settings) -> None:
    root = settings.home / "prediction-log"
    # A busy day: a batch every five minutes from 00:00 to 23:55, and one the day before.
    records = [
        record(i, BASE.replace(hour=0) + timedelta(minutes=5 * i), {"x": float(i)})
        for i in range(288)
    ]
    write(settings, records, rows=1)
    write(settings, [record(999, BASE - timedelta(days=1), {"x": -1.0})])
    start = BASE + timedelta(minutes=12)

    window = open_window(str(root), start, start + timedelta(minutes=30), settings=settings)
    rows = window.records(["request_id"])

    # 10:15, 10:20, ..., 10:40: no other file is listed, none is opened.
    assert len(window.files) == 6
    assert list(rows["request_id"]) == [f"r{i}" for i in range(123, 129)]
    assert window.bytes_read < window.size


def test_a_window_is_read_from_s3(moto_endpoint: str) -> None:
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(Bucket="logs")
    settings = Settings(
        team="fraud",
        prediction_log_uri="s3://logs/prediction-log/scorer/",
        aws_region=REGION,
        aws_endpoint_url=moto_endpoint,
    )
    write(settings, [record(i, BASE + timedelta(minutes=i), {"x": float(i)}) for i in range(90)])

    window = open_window(
        "s3://logs/prediction-log/scorer",
        BASE + timedelta(minutes=70),
        BASE + timedelta(minutes=80),
        settings=settings,
    )
    rows = window.records(["score"])

    assert len(window.files) == 1  # the 11:00 hour's
    assert list(window.features(["x"], rows.index.to_numpy())["x"]) == [
        float(i) for i in range(70, 80)
    ]


def test_streamed_drift_over_many_files_equals_the_in_memory_drift(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    rows = 200_000
    frame = pd.DataFrame(
        {
            "normal": rng.normal(0.2, 1, rows),
            "gamma": rng.gamma(2, 1.5, rows),
            "count": rng.poisson(3, rows),
            "band": rng.choice(["a", "b", "c"], rows),
            "gaps": np.where(rng.uniform(size=rows) < 0.05, np.nan, rng.normal(size=rows)),
        }
    )
    reference = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, 5000),
            "gamma": rng.gamma(2, 1.4, 5000),
            "count": rng.poisson(3.3, 5000),
            "band": rng.choice(["a", "b", "c", "d"], 5000),
            "gaps": rng.normal(size=5000),
        }
    )
    variants = np.where(rng.uniform(size=rows) < 0.1, "challenger", "champion")
    stamps = BASE + pd.to_timedelta(np.arange(rows) * 30, unit="ms")
    # As serving writes: flushes of 5000 rows, each file in its hour (01:40 of traffic: two hours).
    root = settings.home / "prediction-log"
    names = list(frame.columns)
    for first in range(0, rows, 5000):
        part = frame.iloc[first : first + 5000]
        table = pa.table(
            {
                "request_id": [f"r{i}" for i in range(first, first + len(part))],
                "timestamp": pa.array(stamps[first : first + len(part)], SCHEMA.field(1).type),
                "endpoint": ["scorer"] * len(part),
                "model": ["fraud-model"] * len(part),
                "model_version": ["1"] * len(part),
                "variant": variants[first : first + len(part)],
                "shadow": [False] * len(part),
                "prediction": ["1"] * len(part),
                "score": np.full(len(part), 0.5),
                "latency_ms": np.full(len(part), 2.0),
            }
            | {f"feature.{n}": part[n].to_numpy() for n in names},
        )
        first_at, last_at = stamps[first], stamps[first + len(part) - 1]
        path = root / object_key(first_at.to_pydatetime(), last_at.to_pydatetime())
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several row groups per file.
        pq.write_table(table, path, row_group_size=1200)
    start, end = BASE + timedelta(minutes=10, seconds=7), BASE + timedelta(minutes=95, seconds=1)

    window = open_window(str(root), start, end, settings=settings)
    log = window.records(["variant"])
    answered = log[log["variant"] == "champion"]
    # Two features at a time, as a window a hundred times bigger would be read.
    monkeypatch.setattr(monitor, "STREAM_BYTES", 2 * 3 * 8 * len(answered))
    streamed = feature_drift(window, reference, answered.index, names)

    inside = (stamps >= start) & (stamps < end) & (variants == "champion")
    expected = drift.drift(reference, frame[inside].reset_index(drop=True), names)
    # The four files of 10:00-10:10 and the one of 11:37:30-11:40 are not read; the window's first
    # and last files are read in part.
    assert len(window.files) == rows // 5000 - 5
    assert streamed == expected


def test_a_window_of_no_files_is_empty(settings: Settings) -> None:
    window = open_window(str(settings.home / "nowhere"), BASE, BASE + timedelta(hours=1))

    assert window.records().empty
    assert window.feature_names() == []
    assert list(window.features(["x"], np.empty(0, np.int64)).columns) == ["x"]


def test_a_spooled_file_keeps_its_hour(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    writer = PredictionLogWriter(settings, root=str(tmp_path / "a-file" / "log"))
    writer.record(record(0, BASE, {"x": 1.0}))
    writer.close()
    [spooled] = writer.pending_spool()

    assert spooled.name.startswith("date=2026-01-31__hour=10__20260131T100000.000000Z-")
    assert pq.read_table(io.BytesIO(spooled.read_bytes())).column("feature.x").to_pylist() == [1.0]
