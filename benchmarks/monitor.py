"""What `monitor` reads, how long it takes and how much memory it holds for a big window on S3.

A moto server (a process of its own, so its copy of the objects is not counted) gets a prediction
log as serving writes it: files of ``FLUSH_ROWS`` rows, the record columns plus one typed column
per feature (20: 15 continuous, one with gaps, 2 small integers, 2 strings), zstd, under
``date=/hour=`` with the first and last record times in the name. ``--rows`` rows fall in the
one-hour window; ``--outside`` more lie around it (the hour before, the hour after, the same hour
the day before) to show they are not read.

A second process then does what `monitor` does with the window: lists the files that can hold
it, reads the record columns it needs, picks the champion's answered rows, and measures PSI + KS
of every feature (read as many at a time as ``monitor.STREAM_BYTES`` allows) and of the score against a training
reference. Reported: wall time of each step, peak RSS of that process (``ru_maxrss``: the
kernel's high-water mark, interpreter and libraries included; its RSS before reading is shown
too, and a 20 ms sampling thread's peak as a cross-check), files and bytes read vs the whole log
(bytes read: footers and the projected column chunks, from the files' metadata).

    .venv/bin/python benchmarks/monitor.py --rows 10000000     # the target: peak RSS < 2 GiB
    .venv/bin/python benchmarks/monitor.py --rows 1000000      # a quick check of the harness
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.drift import continuous  # noqa: E402
from runtime import drift, monitor  # noqa: E402
from runtime.prediction_log import (  # noqa: E402
    FLUSH_ROWS,
    SCHEMA,
    PredictionRecord,
    object_key,
    open_window,
    to_table,
)
from runtime.settings import Settings  # noqa: E402

BUCKET = "prediction-logs"
PREFIX = "scorer"
REGION = "us-east-1"
WINDOW_START = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
CHAMPION = "3"
SHADOW_SHARE = 0.02
"""Rows scored in shadow: logged, not measured."""
UPLOAD_THREADS = 8
SEED = 11
SHIFTS = np.linspace(0, 0.6, 15)
"""Shift of each continuous feature in the window, in standard deviations."""


def features(rng: np.random.Generator, rows: int, *, shifted: bool) -> dict[str, np.ndarray]:
    """20 features like a scoring service's: continuous, one with gaps, small integers, strings."""
    columns: dict[str, np.ndarray] = {}
    for i, shift in enumerate(SHIFTS):
        values = continuous(rng, i, rows)
        # Logged values carry the precision the client sent: four decimals.
        columns[f"num_{i}"] = np.round(values * (1 + shift * 0.2) if shifted else values, 4)
    gaps = np.round(rng.normal(0.15 if shifted else 0, 1, rows), 4)
    gaps[rng.uniform(size=rows) < 0.02] = np.nan
    columns["num_missing"] = gaps
    columns["int_count"] = rng.poisson(3.6 if shifted else 3, rows)
    columns["int_small"] = rng.integers(0, 8, rows)
    p = [0.3, 0.3, 0.25, 0.15] if shifted else [0.4, 0.3, 0.2, 0.1]
    columns["cat_band"] = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), rows, p=p)
    columns["cat_region"] = rng.choice(
        np.array(["north", "south", "east", "west"], dtype=object), rows
    )
    return columns


def log_file(rng: np.random.Generator, first: int, stamps: pd.DatetimeIndex) -> pa.Table:
    """One flushed batch, with the columns and types `PredictionLogWriter` writes."""
    rows = len(stamps)
    score = rng.uniform(0, 1, rows)
    shadow = rng.uniform(size=rows) < SHADOW_SHARE
    table = {
        "request_id": [f"req-{i:012d}" for i in range(first, first + rows)],
        "timestamp": pa.array(stamps, SCHEMA.field("timestamp").type),
        "endpoint": ["scorer"] * rows,
        "model": ["fraud-model"] * rows,
        "model_version": np.where(shadow, "4", CHAMPION),
        "variant": np.where(shadow, "challenger", "champion"),
        "shadow": shadow,
        "prediction": np.where(score >= 0.5, "1", "0"),
        "score": score,
        "latency_ms": rng.gamma(2, 3, rows),
    }
    arrays = [pa.array(table[f.name], f.type) for f in SCHEMA]
    fields = list(SCHEMA)
    for name, values in features(rng, rows, shifted=True).items():
        array = pa.array(values, from_pandas=False)
        arrays.append(array)
        fields.append(pa.field(f"feature.{name}", array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def check_layout() -> None:
    """The harness writes what the writer writes: same columns, same types."""
    rng = np.random.default_rng(0)
    stamps = pd.date_range(WINDOW_START, periods=2, freq="s")
    ours = log_file(rng, 0, stamps)
    sample = features(rng, 1, shifted=False)
    record = PredictionRecord(
        "r", "scorer", "fraud-model", CHAMPION, "champion",
        {name: values[0] for name, values in sample.items()}, 1, 1.0, score=0.5,
    )  # fmt: skip
    if to_table([record]).schema != ours.schema:
        raise SystemExit(f"harness layout differs from the writer's:\n{ours.schema}")


def segments(rows: int, outside: int) -> list[tuple[datetime, int]]:
    """(hour, rows) to write: the window's hour, then the hours around it."""
    share = outside // 3
    return [
        (WINDOW_START, rows),
        (WINDOW_START - timedelta(hours=1), share),
        (WINDOW_START + WINDOW, share),
        (WINDOW_START - timedelta(days=1), outside - 2 * share),
    ]


def write_log(endpoint: str, rows: int, outside: int) -> dict[str, Any]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    written = {"files": 0, "bytes": 0}
    lock = threading.Lock()

    def put(key: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=data)
        with lock:
            written["files"] += 1
            written["bytes"] += len(data)

    first = 0
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        futures = []
        for hour, count in segments(rows, outside):
            if not count:
                continue
            # Evenly spread over the hour; every file lies in it, as the writer cuts them.
            offsets = np.linspace(0, 3600e6, count, endpoint=False).astype("int64")
            stamps = pd.DatetimeIndex(pd.Timestamp(hour) + pd.to_timedelta(offsets, unit="us"))
            for at in range(0, count, FLUSH_ROWS):
                part = stamps[at : at + FLUSH_ROWS]
                key = object_key(part[0].to_pydatetime(), part[-1].to_pydatetime())
                futures.append(pool.submit(put, key, log_file(rng, first, part)))
                first += len(part)
                if len(futures) >= 4 * UPLOAD_THREADS:
                    futures.pop(0).result()
        for future in futures:
            future.result()
    return written | {"seconds": time.perf_counter() - started}


def rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(endpoint: str, reference_rows: int) -> dict[str, Any]:
    """The monitor's read of the window and its drift, in this (fresh) process."""
    from pyarrow import fs as pafs

    settings = Settings(aws_region=REGION, aws_endpoint_url=endpoint)
    reference = pd.DataFrame(
        features(np.random.default_rng(SEED + 1), reference_rows, shifted=False)
    )
    reference["score"] = np.random.default_rng(SEED + 2).uniform(0, 1, reference_rows)
    names = [c for c in reference.columns if c != "score"]
    drift.drift(reference.head(500), reference.tail(500))  # imports and first calls
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampled = {"peak": rss_now()}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            sampled["peak"] = max(sampled["peak"], rss_now())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    root = f"s3://{BUCKET}/{PREFIX}"
    started = time.perf_counter()
    window = open_window(root, WINDOW_START, WINDOW_START + WINDOW, settings=settings)
    listed = time.perf_counter()
    _, answered = monitor.window_rows(window, "scorer", CHAMPION)
    records = time.perf_counter()
    held = rss_now()
    measured = monitor.feature_drift(window, reference, answered.index, names)
    score = drift.drift(reference[["score"]], answered[["score"]].reset_index(drop=True))
    finished = time.perf_counter()
    done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    s3, base = (
        pafs.S3FileSystem(region=REGION, endpoint_override=endpoint, scheme="http"),
        f"{BUCKET}/{PREFIX}",
    )
    everything = [
        f
        for f in s3.get_file_info(pafs.FileSelector(base, recursive=True))
        if f.type == pafs.FileType.File
    ]
    return {
        "rows": len(answered),
        "features": len(measured),
        "drifted": sum(c.drifted() for c in measured),
        "score_psi": score[0].psi,
        "list_seconds": listed - started,
        "records_seconds": records - listed,
        "drift_seconds": finished - records,
        "seconds": finished - started,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "sampled_peak_rss": sampled["peak"],
        "records_rss": held,
        "files_read": len(window.files),
        "files_total": len(everything),
        "bytes_read": window.bytes_read,
        "bytes_window": window.size,
        "bytes_total": sum(int(f.size or 0) for f in everything),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the window")
    parser.add_argument("--outside", type=int, default=None, help="rows around it (rows / 5)")
    parser.add_argument("--reference-rows", type=int, default=2000)
    parser.add_argument("--measure", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    if args.measure:
        print(json.dumps(measure(args.measure, args.reference_rows)))
        return

    check_layout()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        outside = args.rows // 5 if args.outside is None else args.outside
        written = write_log(endpoint, args.rows, outside)
        print(
            f"wrote {args.rows:,} rows in the window and {outside:,} around it: "
            f"{written['files']:,} files, {written['bytes'] / 2**20:,.0f} MiB "
            f"in {written['seconds']:.0f}s",
            file=sys.stderr,
        )
        answer = subprocess.run(
            [sys.executable, __file__, "--measure", endpoint, "--reference-rows",
             str(args.reference_rows)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(answer.stdout)
    finally:
        server.terminate()
        server.wait()
    gib = 2**30
    print(
        "| window rows x features | list (s) | record columns (s) | features: read + PSI + KS (s) "
        "| total (s) | peak RSS (GiB) | RSS before / with the records (GiB) | files read / total "
        "| MiB read / window / total |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {r['rows']:,} x {r['features']} | {r['list_seconds']:.2f} "
        f"| {r['records_seconds']:.1f} | {r['drift_seconds']:.1f} | {r['seconds']:.1f} "
        f"| {r['peak_rss'] / gib:.2f} (sampled {r['sampled_peak_rss'] / gib:.2f}) "
        f"| {r['baseline_rss'] / gib:.2f} / {r['records_rss'] / gib:.2f} "
        f"| {r['files_read']:,} / {r['files_total']:,} "
        f"| {r['bytes_read'] / 2**20:,.0f} / {r['bytes_window'] / 2**20:,.0f} "
        f"/ {r['bytes_total'] / 2**20:,.0f} |"
    )


if __name__ == "__main__":
    main()
