"""SageMaker's container contract: the runtime started as SageMaker starts a real-time variant.

SageMaker runs `docker run <image> serve`: the image's exec-form ENTRYPOINT with the one argument
`serve`, the Model's Environment and nothing else of ours (no SAGEMAKER_BIND_TO_PORT on a
real-time endpoint: the container listens on 8080). It then polls GET /ping until 200 (each
answer within 2 s), sends POST /invocations with the caller's Content-Type and Accept, and stops
the container with SIGTERM, then SIGKILL 30 s later.

Here: the image's entrypoint (from the Containerfile) with `serve`, and the env of forecasting-dev's
planned `demand-sm` challenger Model (a shadow variant), with only the backends made local: the
registry a SQLite file, AWS a moto server (the prediction log's bucket, CloudWatch metrics).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from runtime import registry
from runtime.prediction_log import read_prediction_log
from runtime.settings import ENV_PREFIX, Settings
from tests.conftest import planned
from tests.runtime.test_serve_support import FEATURES, ROW, register_demo_model

pytestmark = [pytest.mark.moto, pytest.mark.slow]

STACK = "forecasting-dev"
ENDPOINT = "demand-sm"
SAGEMAKER_PORT = 8080
SIGKILL_AFTER_SECONDS = 30
"""SageMaker's grace period: SIGKILL this long after SIGTERM."""
PING_ANSWER_SECONDS = 2
CONTAINERFILE = Path(__file__).resolve().parents[2] / "Containerfile"


def _entrypoint() -> list[str]:
    """The image's ENTRYPOINT (exec form, so SIGTERM reaches the runtime), as installed here."""
    (line,) = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", CONTAINERFILE.read_text(), re.MULTILINE)
    entrypoint = json.loads(line)
    assert entrypoint == ["mlops-runtime"], entrypoint
    return [str(Path(sys.executable).parent / entrypoint[0]), *entrypoint[1:]]


def _planned_env(alias: str) -> dict[str, str]:
    model = planned(STACK).one("aws:sagemaker/model:Model", f"endpoint-{ENDPOINT}-{alias}-model")
    return {k: str(v) for k, v in model.inputs["primaryContainer"]["environment"].items()}


def _port() -> int:
    """8080 as on SageMaker; another free port only if something else on this machine holds it
    (the port is a value of the env, not a property of the process)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", SAGEMAKER_PORT))
            return SAGEMAKER_PORT
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def _wait_for_ping(process: subprocess.Popen[str], port: int, timeout: float = 180) -> float:
    """Poll /ping as SageMaker does until 200; returns the slowest answer's seconds."""
    deadline, slowest = time.monotonic() + timeout, 0.0
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{process.stdout.read()}")  # type: ignore[union-attr]
        try:
            started = time.monotonic()
            answer = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=PING_ANSWER_SECONDS)
            slowest = max(slowest, time.monotonic() - started)
            if answer.status_code == 200:
                return slowest
            assert answer.status_code == 503, answer.text
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise AssertionError("/ping never answered 200")
        time.sleep(0.25)


def test_a_variant_started_as_sagemaker_starts_it_honours_the_contract(
    tmp_path: Path, mlflow_template: Path, moto_endpoint: str
) -> None:
    planned_env = _planned_env("challenger")
    assert planned_env[f"{ENV_PREFIX}PORT"] == str(SAGEMAKER_PORT)
    assert planned_env[f"{ENV_PREFIX}SERVE_ALIAS"] == "challenger"
    home = tmp_path / "opt-ml"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    port = _port()
    local = planned_env | {
        f"{ENV_PREFIX}HOME": str(home),
        f"{ENV_PREFIX}TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        f"{ENV_PREFIX}AWS_ENDPOINT_URL": moto_endpoint,
        f"{ENV_PREFIX}PORT": str(port),
    }
    with pytest.MonkeyPatch.context() as patch:  # the variant's settings, as it parses them
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            patch.delenv(name)
        for name, value in local.items():
            patch.setenv(name, value)
        settings = Settings()
    assert settings.endpoint is not None and settings.prediction_log_uri
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=settings.aws_region)
    uris = (settings.prediction_log_uri, settings.artifact_uri or "")
    for bucket in {u.removeprefix("s3://").split("/", 1)[0] for u in uris if u.startswith("s3://")}:
        config = {"LocationConstraint": settings.aws_region}
        if settings.aws_region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=config)
    model = settings.endpoint.model
    register_demo_model(settings, model=model)
    register_demo_model(settings, model=model, seed=1)
    client = registry.client(settings)
    client.set_registered_model_alias(model, registry.CHAMPION, "1")
    client.set_registered_model_alias(model, registry.CHALLENGER, "2")
    # What SageMaker gives the container: our Environment, no SAGEMAKER_BIND_TO_PORT.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith((ENV_PREFIX, "SAGEMAKER_")) and k != "PROMETHEUS_MULTIPROC_DIR"
    } | local

    process = subprocess.Popen(
        [*_entrypoint(), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        slowest_ping = _wait_for_ping(process, port)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            ping = http.get("/ping")
            as_json = http.post("/invocations", json={"instances": [ROW, ROW]})
            line = ",".join(str(ROW[name]) for name in FEATURES)
            csv_in = http.post(
                "/invocations",
                content=f"{line}\n{line}\n",
                headers={"content-type": "text/csv", "accept": "application/json"},
            )
            csv_out = http.post(
                "/invocations",
                content=f"{line}\n",
                headers={"content-type": "text/csv", "accept": "text/csv"},
            )
            refused = http.post(
                "/invocations", content=b"<x/>", headers={"content-type": "application/xml"}
            )
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=SIGKILL_AFTER_SECONDS + 5)
        stopped_in = time.monotonic() - stopping
        output = process.stdout.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert slowest_ping < PING_ANSWER_SECONDS
    assert ping.status_code == 200
    assert (ping.json()["variant"], ping.json()["challenger"], ping.json()["mode"]) == (
        "challenger",
        "2",
        "shadow",
    )
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    answer = as_json.json()
    assert (answer["variant"], answer["version"], len(answer["predictions"])) == (
        "challenger",
        "2",
        2,
    )
    assert csv_in.status_code == 200 and len(csv_in.json()["predictions"]) == 2
    assert csv_out.status_code == 200 and csv_out.headers["content-type"].startswith("text/csv")
    (row,) = csv_out.text.splitlines()
    prediction, *probabilities = row.split(",")
    assert prediction == str(answer["predictions"][0])
    # The ONNX fast path scores in float32: equal to a few ulps across calls.
    assert [float(p) for p in probabilities] == pytest.approx(answer["probabilities"][0], abs=1e-5)
    assert refused.status_code == 415
    # SIGTERM: drained and flushed well inside SageMaker's 30 s, not killed.
    assert code in (0, -signal.SIGTERM), output
    assert stopped_in < SIGKILL_AFTER_SECONDS, stopped_in
    log = read_prediction_log(settings.prediction_log_uri, settings=settings)
    assert len(log) == 5, output
    assert set(log["variant"]) == {"challenger"} and log["shadow"].all()
    assert set(log["model_version"]) == {"2"}
