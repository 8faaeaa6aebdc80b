"""`mlops rehearse STACK --loop`: continuous training's loop, played by the stack's own jobs.

After the rehearsal (a first model trained by `train --if-due` and promoted, the endpoints up),
the loop plays what the CronJobs would do over days, in minutes: normal then drifted traffic to
the serving pod, the drift monitor's pod after each round (one monitor window each), the
training job's pod (`train --if-due` decides that a retrain is due), the serving pod taking the
new challenger on its canary (its `/ready` shows the version), canary traffic, the drift
monitor's pod again (it promotes the challenger), and the `history` of the model.

Every pod is the CronJob's job template as the rehearsal plays it (translate.py); the loop
changes only what LOOP_SUBSTITUTIONS lists: the short windows of `mlops demo --loop` in the
pipeline's `continuousTraining` (MLOPS_PIPELINES) and a monitor `--window` covering the traffic
just sent. The runtime has no code path of its own for the loop.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tooling.rehearse.errors import RehearsalError
from tooling.rehearse.translate import SERVING_PORT, Workloads, job_pod, job_template

DRIFT_FACTOR = 3.0
"""Drifted traffic: every float value multiplied by this (the training reference holds its
features as floats, so on fraud-dev that is every feature)."""
ROWS_PER_REQUEST = 5
NORMAL_REQUESTS = 60
DRIFTED_REQUESTS = 60
CANARY_CHALLENGER_REQUESTS = 40
"""Canary traffic goes on until the challenger answered this many (the promotion asks 25)."""
MAX_CANARY_REQUESTS = 1000
WINDOW_SLACK_SECONDS = 45
"""A monitor window reaches this far before its traffic began: the pod starts a little later
than it is asked to (a window that also sees the round before only dilutes its drift)."""
LOG_WAIT_SECONDS = 60
SWAP_SECONDS = 120
"""How long serving may take to load the challenger or follow a promotion (it polls every 10 s)."""
SEED = 2024


def loop_continuous_training() -> dict[str, Any]:
    """The short windows of `mlops demo --loop`, but for two that a pod's start-up (seconds,
    where the demo calls the monitor in-process) or the rehearsal's order would defeat: the
    cooldown (the first model came from `train --if-due` minutes before) and the promotion's
    observation time (the monitor judges the canary's last two observation times of traffic:
    with 5 s that is less than a monitor pod takes to start)."""
    from tooling.demo import LOOP_CONTINUOUS_TRAINING

    short: dict[str, Any] = copy.deepcopy(LOOP_CONTINUOUS_TRAINING)
    short["cooldown"] = "10s"
    short["promotion"] = {**short["promotion"], "observe": "1m"}
    return short


REHEARSAL_P99_LATENCY_MS = 5000.0
"""The canary's latency SLO in the loop: podman on a shared machine is no latency benchmark, and
two versions' p99 over a few dozen requests differ by the machine's noise, not the model's."""

LOOP_SUBSTITUTIONS = (
    "MLOPS_PIPELINES: each continuousTraining gets the short windows of `mlops demo --loop` "
    "(drift in 2 of the last 3 windows, windows of 100 rows, a 10m lease, promotion after 25 "
    "canary requests), but a 10 s cooldown (the first model is minutes old) and a 1 min "
    "observation time (a monitor pod takes longer to start than the demo's 5 s)",
    "monitor --window: the traffic sent since the round began (plus slack), one window a round",
    f"MLOPS_ENDPOINT: the canary's p99 latency SLO is {REHEARSAL_P99_LATENCY_MS:g} ms (a shared "
    "machine's noise would otherwise decide the canary; the error-rate SLO stays)",
)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def loop_env(env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A container's env with the loop's short windows in every continuousTraining and the
    rehearsal's latency SLO on the endpoint."""
    short = loop_continuous_training()
    result = []
    for entry in env:
        if entry["name"] == "MLOPS_PIPELINES" and entry.get("value"):
            pipelines = [
                _merge(p, {"continuousTraining": short}) if p.get("continuousTraining") else p
                for p in json.loads(entry["value"])
            ]
            entry = {**entry, "value": json.dumps(pipelines)}
        elif entry["name"] == "MLOPS_ENDPOINT" and entry.get("value"):
            endpoint = _merge(
                json.loads(entry["value"]), {"slo": {"p99LatencyMs": REHEARSAL_P99_LATENCY_MS}}
            )
            entry = {**entry, "value": json.dumps(endpoint)}
        result.append(entry)
    return result


def loop_pod(
    cronjob: Mapping[str, Any], stand_ins: Any, *, name: str, args: list[str] | None = None
) -> dict[str, Any]:
    """``cronjob``'s job template as the rehearsal runs it, with the loop's short windows."""
    pod = job_pod(cronjob, stand_ins, name=name, args=args)
    for container in pod["spec"]["containers"]:
        container["env"] = loop_env(container["env"])
    return pod


def planned_env(obj: Mapping[str, Any]) -> dict[str, str]:
    spec = (
        job_template(obj)["spec"] if obj["kind"] == "CronJob" else obj["spec"]["template"]["spec"]
    )
    return {e["name"]: str(e.get("value")) for e in spec["containers"][0].get("env", [])}


def planned_args(cronjob: Mapping[str, Any]) -> list[str]:
    return list(job_template(cronjob)["spec"]["containers"][0].get("args") or [])


@dataclass(frozen=True)
class LoopPlan:
    """What the loop plays: the endpoint, its monitor and the training job of its model."""

    model: str
    pipeline: dict[str, Any]
    endpoint: str
    port: int
    canary_weight: int
    monitor: dict[str, Any]
    training: dict[str, Any]


def loop_plan(played: Workloads) -> LoopPlan:
    """The first endpoint with a canary whose model a pipeline trains continuously."""
    for index, deployment in enumerate(played.serving):
        endpoint = json.loads(planned_env(deployment).get("MLOPS_ENDPOINT") or "{}")
        if not endpoint.get("canary"):
            continue
        for cronjob in played.training:
            pipelines = json.loads(planned_env(cronjob).get("MLOPS_PIPELINES") or "[]")
            args = planned_args(cronjob)
            name = args[args.index("--pipeline") + 1] if "--pipeline" in args else None
            for pipeline in pipelines:
                model = pipeline.get("model") or pipeline["name"]
                if (
                    pipeline["name"] != name
                    or model != endpoint.get("model")
                    or not pipeline.get("continuousTraining")
                    or "--if-due" not in args
                ):
                    continue
                monitors = [
                    m
                    for m in played.monitors
                    if json.loads(planned_env(m).get("MLOPS_ENDPOINT") or "{}").get("name")
                    == endpoint["name"]
                ]
                if not monitors:
                    continue
                return LoopPlan(
                    model=model,
                    pipeline=pipeline,
                    endpoint=endpoint["name"],
                    port=SERVING_PORT + index,
                    canary_weight=int(endpoint["canary"].get("weight", 10)),
                    monitor=monitors[0],
                    training=cronjob,
                )
    raise RehearsalError(
        "--loop needs an endpoint with a canary whose model a pipeline trains continuously "
        "(continuousTraining, `train --if-due`) and a drift monitor for that endpoint"
    )


def monitor_args(cronjob: Mapping[str, Any], seconds: float) -> list[str]:
    """The planned monitor command with a window of ``seconds`` (instead of the default hour)."""
    args = planned_args(cronjob)
    if "--window" in args:
        at = args.index("--window")
        del args[at : at + 2]
    return [*args, "--window", f"{int(seconds) + 1}s"]


def drifted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drifted world: every float feature ``DRIFT_FACTOR`` times larger."""
    return [
        {k: round(v * DRIFT_FACTOR, 3) if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    ]


@contextlib.contextmanager
def moto_env(endpoint: str, region: str) -> Iterator[None]:
    """This process talks to the rehearsal's moto (MLflow's artifacts, the prediction log)."""
    wanted = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in [*wanted, "AWS_SESSION_TOKEN", "AWS_PROFILE"]}
    os.environ.update(wanted)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sample_rows(tracking_uri: str, model: str, features: list[str]) -> list[dict[str, Any]]:
    """Feature rows as the champion saw them in training (its drift reference)."""
    import tempfile

    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from runtime.train import REFERENCE_ARTIFACT

    champion = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(model, "champion")
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            run_id=champion.run_id,
            artifact_path=REFERENCE_ARTIFACT,
            dst_path=folder,
            tracking_uri=tracking_uri,
        )
        frame = pd.read_parquet(path)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise RehearsalError(f"the champion's training reference lacks {missing}")
    records: list[dict[str, Any]] = frame[features].to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def send(
    base_url: str,
    rows: list[dict[str, Any]],
    requests: int,
    *,
    shift: bool,
    rng: Any,
    until: Callable[[dict[str, int]], bool] | None = None,
    pace: float = 0.0,
) -> tuple[dict[str, int], int]:
    """POST ``requests`` requests (or until ``until`` holds); answers per `variant vN`, rows."""
    import httpx

    answered: dict[str, int] = {}
    sent_rows = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(requests):
            picked = [rows[i] for i in rng.integers(0, len(rows), ROWS_PER_REQUEST)]
            body = {"rows": drifted(picked) if shift else picked}
            answer = client.post("/predict", json=body)
            if answer.status_code != 200:
                raise RehearsalError(
                    f"/predict of {base_url} answered {answer.status_code}: {answer.text[:300]}"
                )
            reply = answer.json()
            key = f"{reply.get('variant', '?')} v{reply.get('version', '?')}"
            answered[key] = answered.get(key, 0) + 1
            sent_rows += ROWS_PER_REQUEST
            if until is not None and until(answered):
                break
            if pace:
                time.sleep(pace)
    return answered, sent_rows


def ready(base_url: str) -> dict[str, Any]:
    import httpx

    with contextlib.suppress(httpx.HTTPError, ValueError):
        reply = httpx.get(f"{base_url}/ready", timeout=5)
        if reply.status_code == 200:
            return dict(reply.json())
    return {}


def wait_ready(
    base_url: str, wanted: Callable[[dict[str, Any]], bool], *, what: str, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = ready(base_url)
        if answer and wanted(answer):
            return answer
        time.sleep(1)
    raise RehearsalError(f"{base_url}/ready: {what} not seen within {timeout:.0f}s ({answer})")


def wait_logged(
    log_uri: str, endpoint: str, region: str, aws_endpoint: str, since: datetime, rows: int
) -> int:
    """Wait until serving flushed ``rows`` rows logged since ``since``; how many it found."""
    from runtime.prediction_log import read_prediction_log
    from runtime.settings import Settings

    settings = Settings(
        prediction_log_uri=log_uri, aws_region=region, aws_endpoint_url=aws_endpoint
    )
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    found = 0
    while time.monotonic() < deadline:
        logged = read_prediction_log(log_uri, since, None, settings=settings, expand_features=False)
        found = int((logged["endpoint"] == endpoint).sum()) if not logged.empty else 0
        if found >= rows:
            return found
        time.sleep(1)
    raise RehearsalError(
        f"the prediction log of {endpoint} holds {found} of the {rows} rows sent since "
        f"{since:%H:%M:%S} after {LOG_WAIT_SECONDS}s"
    )


def now() -> datetime:
    return datetime.now(UTC)
