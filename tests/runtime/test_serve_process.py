"""The real `mlops-runtime serve` process: SIGTERM loses no logged prediction; S3 outages spool."""

from __future__ import annotations

import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest

from runtime import registry
from runtime.prediction_log import PredictionLogWriter, PredictionRecord, read_prediction_log
from runtime.settings import Settings
from runtime.spec import CanarySpec
from tests.runtime.test_serve_support import (
    ROW,
    endpoint_settings,
    free_port,
    register_demo_model,
    running_server,
    serve_command,
    settings_env,
    wait_for,
)


def _serving_settings(
    tmp_path: Path, mlflow_template: Path, canary: CanarySpec | None = None, **update: object
) -> Settings:
    """The endpoint's settings (with ``update``) for a server on a free port, its home holding
    the template registry with the demo model registered."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    port = free_port()
    endpoint = endpoint_settings(home, canary=canary) if canary else endpoint_settings(home)
    settings = endpoint.model_copy(update={"port": port, **update})
    register_demo_model(settings)
    return settings


@pytest.mark.slow
def test_sigterm_flushes_every_logged_prediction(tmp_path: Path, mlflow_template: Path) -> None:
    settings = _serving_settings(tmp_path, mlflow_template)
    home, port = settings.home, settings.port

    with running_server(settings_env(settings), port) as process:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            ids = [
                http.post("/predict", json={"rows": [ROW]}).json()["request_id"] for _ in range(40)
            ]
            assert http.get("/ready").json()["backend"] == "onnx"
        # The log flushes every few seconds: these records are still queued.
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)

    log = read_prediction_log(str(home / "prediction-log"))
    assert sorted(log["request_id"]) == sorted(ids)
    assert set(log["model_version"]) == {"1"}


@pytest.mark.slow
def test_rollback_stops_the_canary_within_a_poll(tmp_path: Path, mlflow_template: Path) -> None:
    settings = _serving_settings(tmp_path, mlflow_template, CanarySpec(weight=30))
    port = settings.port
    register_demo_model(settings, seed=1)
    client = registry.client(settings)
    client.set_registered_model_alias("fraud-model", registry.CHAMPION, "1")
    client.set_registered_model_alias("fraud-model", registry.CHALLENGER, "2")
    ready = f"http://127.0.0.1:{port}/ready"

    command = serve_command("--poll-seconds", "0.5")
    with running_server(settings_env(settings), port, timeout=300, command=command) as process:
        wait_for(lambda: httpx.get(ready).json()["challenger"] == "2")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            canary = {
                http.post("/predict", json={"rows": [ROW]}).json()["version"] for _ in range(40)
            }
            # What the trial did: the challenger promoted, then rolled back; no challenger left.
            # Each step waited for, so a slow poll cannot show an in-between state as the end.
            registry.promote(settings, "fraud-model")
            wait_for(lambda: _aliases(ready) == ("2", None))
            registry.rollback(settings, "fraud-model")
            wait_for(lambda: _aliases(ready) == ("1", None))
            after = {
                http.post("/predict", json={"rows": [ROW]}).json()["version"] for _ in range(40)
            }
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        output = process.stdout.read()

    assert canary == {"1", "2"}
    assert after == {"1"}
    assert "Task was destroyed" not in output, output


def _aliases(ready: str) -> tuple[str | None, str | None]:
    state = httpx.get(ready).json()
    return state["champion"], state["challenger"]


def _csv_body(rows: int) -> bytes:
    line = ",".join(str(value) for value in ROW.values())
    return "\n".join([",".join(ROW), *([line] * rows)]).encode()


@pytest.mark.slow
def test_large_requests_are_refused_early_and_errors_stay_short(
    tmp_path: Path, mlflow_template: Path
) -> None:
    settings = _serving_settings(tmp_path, mlflow_template, max_request_bytes=1024 * 1024)
    port = settings.port
    csv = {"content-type": "text/csv"}

    with (
        running_server(settings_env(settings), port, timeout=300),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):
        declared = http.post("/invocations", content=_csv_body(100_000), headers=csv)
        streamed = http.post("/invocations", content=iter([_csv_body(100_000)]), headers=csv)
        many_rows = http.post("/invocations", content=_csv_body(12_000), headers=csv)
        long_value = http.post("/predict", json={"rows": [{**ROW, "txn_count_7d": "x" * 500_000}]})
        alive = http.get("/ping")

    limit = "over the limit of 1048576 bytes (1 MiB, MLOPS_MAX_REQUEST_BYTES)"
    assert declared.status_code == 413 and limit in declared.json()["detail"]
    assert streamed.status_code == 413 and limit in streamed.json()["detail"]
    assert "more than" in streamed.json()["detail"]
    assert many_rows.status_code == 422
    assert many_rows.json()["detail"] == [
        {
            "type": "too_long",
            "loc": ["body", "rows"],
            "msg": "at most 10000 rows per request (got 12000)",
        }
    ]
    assert long_value.status_code == 422
    (error,) = long_value.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "txn_count_7d"]
    assert len(error["input"]) == 120 and len(long_value.content) < 1000
    assert alive.status_code == 200


@pytest.mark.moto
def test_s3_outage_spools_locally_then_delivers(tmp_path: Path, aws_credentials: None) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    first = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    first.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="prediction-logs"
    )
    settings = endpoint_settings(tmp_path / "home").model_copy(
        update={
            "aws_endpoint_url": endpoint,
            "prediction_log_uri": "s3://prediction-logs/fraud/scorer/",
        }
    )
    writer = PredictionLogWriter(settings, flush_interval=0.1, retry_interval=0.1)

    def record(i: int) -> PredictionRecord:
        return PredictionRecord(f"r{i}", "scorer", "fraud-model", "1", "champion", ROW, 0, 1.0)

    writer.start()
    try:
        writer.record(record(0))
        _until(lambda: writer.delivered == 1)
        first.stop()  # S3 goes away; serving goes on.
        for i in range(1, 6):
            writer.record(record(i))
        _until(lambda: writer.spooled == 5)
        assert writer.pending_spool()

        second = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        second.start()  # moto keeps its state in the process: the bucket is back.
        try:
            _until(lambda: not writer.pending_spool())
            writer.record(record(6))
            writer.close()
            log = read_prediction_log(
                settings.prediction_log_uri,
                datetime.now(UTC) - timedelta(hours=1),
                datetime.now(UTC) + timedelta(hours=1),
                settings=settings,
            )
        finally:
            second.stop()
    finally:
        writer.close()

    assert sorted(log["request_id"]) == [f"r{i}" for i in range(7)]
    assert writer.delivered == 7


def _until(condition: object, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_read_prediction_log_selects_the_window(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home")
    base = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    with PredictionLogWriter(settings) as writer:
        for hours in (0, 2, 30):
            writer.record(
                PredictionRecord(
                    f"r{hours}",
                    "scorer",
                    "fraud-model",
                    "1",
                    "champion",
                    {"x": float(hours), "prediction": 1},
                    "yes",
                    1.0,
                    timestamp=base + timedelta(hours=hours),
                )
            )

    window = read_prediction_log(
        str(tmp_path / "home" / "prediction-log"),
        base + timedelta(hours=1),
        base + timedelta(days=2),
    )
    empty = read_prediction_log(str(tmp_path / "nowhere"), base, base + timedelta(days=1))

    assert list(window["request_id"]) == ["r2", "r30"]
    assert list(window["x"]) == [2.0, 30.0]
    assert list(window["feature.prediction"]) == [1, 1]
    assert list(window["prediction"]) == ["yes", "yes"]
    assert empty.empty and "request_id" in empty.columns


@pytest.mark.slow
def test_two_processes_answer_log_and_count_together(tmp_path: Path, mlflow_template: Path) -> None:
    # A pod of two CPUs (MLOPS_SERVE_WORKERS=2): both processes answer on the one port, every
    # answered prediction is logged at SIGTERM, and /metrics counts the pod, not one process.
    settings = _serving_settings(tmp_path, mlflow_template, serve_workers=2)
    home, port = settings.home, settings.port

    with running_server(settings_env(settings), port, timeout=300) as process:
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        base = f"http://127.0.0.1:{port}"
        # A connection each: the kernel hands them to either process.
        ids = [
            httpx.post(f"{base}/predict", json={"rows": [ROW]}).json()["request_id"]
            for _ in range(40)
        ]
        metrics = httpx.get(f"{base}/metrics").text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)

    # Two serving processes (and multiprocessing's resource tracker).
    assert len(workers) >= 2
    (answered,) = [
        line for line in metrics.splitlines() if line.startswith("mlops_predictions_total{")
    ]
    assert float(answered.rsplit(" ", 1)[1]) == 40
    log = read_prediction_log(str(home / "prediction-log"))
    assert sorted(log["request_id"]) == sorted(ids)
