"""A rehearsal run, end to end, and its teardown."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.spec import FeatureStoreSpec, PipelineSpec
from tooling.plan import Plan
from tooling.rehearse.cloud import (
    create_cloud,
    database_name,
    drop_database,
    fresh_database,
    start_moto,
    write_credentials,
)
from tooling.rehearse.errors import RehearsalError
from tooling.rehearse.net import http_status, port_in_use, wait_for
from tooling.rehearse.podman import Podman, ensure_tools
from tooling.rehearse.state import PlayedPod, State, state_dir
from tooling.rehearse.synthetic import synthetic_sources, write_sources
from tooling.rehearse.translate import (
    MAX_RESTARTS,
    SERVING_PORT,
    TRACKING_PORT,
    StandIns,
    container_names,
    job_pod,
    job_template,
    pod_name,
    pod_spec,
    rehearsal_deployment,
    workloads,
)

DEFAULT_ADMIN_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


def down(folder: Path | None = None, log: Callable[[str], None] = print) -> bool:
    """Tear a rehearsal down: pods, moto, the database. False when nothing was up."""
    folder = folder or state_dir()
    state = State.load(folder)
    if state is None:
        return False
    podman = Podman(folder)
    for pod in reversed(state.pods):
        podman.down(Path(pod.yaml))
        podman.run("pod", "rm", "--force", "--ignore", pod.name, check=False)
    if state.moto_pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.moto_pid, signal.SIGTERM)
    drop_database(state.admin_database_uri, state.database)
    shutil.rmtree(folder, ignore_errors=True)
    log(f"rehearsal of {state.stack} is down")
    return True


@dataclass
class Rehearsal:
    """One rehearsal run: the plan, its stand-ins, and what it played so far."""

    plan: Plan
    image: str
    folder: Path = field(default_factory=state_dir)
    admin_database_uri: str = DEFAULT_ADMIN_DATABASE
    log: Callable[[str], None] = print
    job_timeout: float = 900
    loop: bool = False
    """Then play continuous training's loop (loop.py)."""
    created: list[str] = field(default_factory=list)

    def run(self) -> State:
        from components.config import load_stack_file
        from tooling.plan import stack_file

        ensure_tools()
        self.folder.mkdir(parents=True, exist_ok=True)
        podman = Podman(self.folder)
        if subprocess.run(["podman", "image", "exists", self.image], env=podman.env).returncode:
            raise RehearsalError(
                f"no image {self.image!r}: build it first (`mlops image build --make-base`)"
            )
        stack = self.plan.stack
        config = load_stack_file(stack_file(stack))
        played = workloads(self.plan)
        ports = [TRACKING_PORT, *(SERVING_PORT + i for i in range(len(played.serving)))]
        busy = [p for p in ports if port_in_use(p)]
        if busy:
            raise RehearsalError(f"port(s) {busy} are in use on this host; stop what uses them")

        name = database_name(stack)
        database_uri = f"{self.admin_database_uri.rsplit('/', 1)[0]}/{name}"
        credentials = write_credentials(self.folder)
        self.log("starting moto (S3, DynamoDB, CloudWatch, SNS)")
        moto_pid, endpoint = start_moto(self.folder)
        state = State(
            stack=stack,
            image=self.image,
            aws_endpoint=endpoint,
            database=name,
            database_uri=database_uri,
            admin_database_uri=self.admin_database_uri,
            credentials_dir=str(credentials),
            moto_pid=moto_pid,
        )
        state.save(self.folder)
        stand_ins = StandIns(
            image=self.image,
            aws_endpoint=endpoint,
            database_uri=database_uri,
            credentials_dir=str(credentials),
        )
        self.created = create_cloud(self.plan, endpoint, config.region)
        fresh_database(self.admin_database_uri, name)

        # The model registry first: everything else talks to it.
        self.log("playing the MLflow server")
        registry = rehearsal_deployment(played.registry, stand_ins)
        pod = self._play(podman, state, "mlflow", [registry])
        pod.url = stand_ins.tracking_uri
        self._wait_http(podman, pod, f"{pod.url}/health", timeout=240)

        # Demo data first, shaped by the stack's own feature views and pipelines.
        self.log("writing synthetic sources and labels into the offline store")
        env = _planned_env(played.training[0] if played.training else None)
        if env.get("MLOPS_OFFLINE_STORE_URI"):
            frames = synthetic_sources(
                FeatureStoreSpec.model_validate_json(env["MLOPS_FEATURE_STORE"]),
                [PipelineSpec.model_validate(p) for p in json.loads(env["MLOPS_PIPELINES"])],
                end=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
            )
            self.created += write_sources(
                frames, env["MLOPS_OFFLINE_STORE_URI"], endpoint, config.region
            )
        for cronjob in played.materialization:
            self._job(
                podman, state, "materialize", cronjob, stand_ins, config_maps=played.config_maps
            )
        for cronjob in played.training:
            train = self._job(podman, state, "train", cronjob, stand_ins)
            model = self._pipeline_model(cronjob)
            train.detail = f"registered {model}"
            self._job(podman, state, "promote", cronjob, stand_ins, args=["promote", model])

        for index, deployment in enumerate(played.serving):
            port = SERVING_PORT + index
            self.log(f"playing endpoint {deployment['metadata']['name']} on :{port}")
            obj = rehearsal_deployment(deployment, stand_ins, port=port)
            pod = self._play(podman, state, "serving", [obj])
            pod.url = f"http://127.0.0.1:{port}"
            self._wait_http(podman, pod, f"{pod.url}/ping", timeout=300)
        state.save(self.folder)
        if self.loop:
            self._loop(podman, state, played, stand_ins, config.region)
        return state

    def _loop(
        self, podman: Podman, state: State, played: Any, stand_ins: StandIns, region: str
    ) -> None:
        """Continuous training's loop on the stack's own jobs (loop.py says what it plays)."""
        import numpy as np
        from mlflow import MlflowClient

        from tooling.rehearse import loop

        plan = loop.loop_plan(played)
        base_url = f"http://127.0.0.1:{plan.port}"
        monitor_env = loop.planned_env(plan.monitor)
        log_uri = loop.planned_env(next(
            d for d in played.serving
            if json.loads(loop.planned_env(d)["MLOPS_ENDPOINT"])["name"] == plan.endpoint
        ))["MLOPS_PREDICTION_LOG_URI"]  # fmt: skip
        registry = MlflowClient(tracking_uri=stand_ins.tracking_uri)
        previous = str(registry.get_model_version_by_alias(plan.model, "champion").version)
        record: dict[str, Any] = {
            "model": plan.model,
            "endpoint": plan.endpoint,
            "pipeline": plan.pipeline["name"],
            "events_uri": monitor_env.get("MLOPS_EVENTS_URI"),
            "region": region,
            "started": loop.now().isoformat(),
            "previous": previous,
            "version": None,
            "finished": False,
            "steps": [],
        }
        state.loop = record
        state.save(self.folder)
        began = time.monotonic()

        def step(name: str, detail: str) -> None:
            record["steps"].append({"step": name, "seconds": round(time.monotonic() - began, 1),
                                    "detail": detail})  # fmt: skip
            state.save(self.folder)
            self.log(f"loop: {name}: {detail}")

        features = [ref.split(":", 1)[1] for ref in plan.pipeline["features"]]
        rng = np.random.default_rng(loop.SEED)
        with loop.moto_env(state.aws_endpoint, region):
            rows = loop.sample_rows(stand_ins.tracking_uri, plan.model, features)
            windows = 0

            def monitor(since: datetime, sent_rows: int) -> str:
                nonlocal windows
                windows += 1
                loop.wait_logged(log_uri, plan.endpoint, region, state.aws_endpoint, since,
                                 sent_rows)  # fmt: skip
                seconds = (loop.now() - since).total_seconds() + loop.WINDOW_SLACK_SECONDS
                pod = self._job(
                    podman, state, "monitor", plan.monitor, stand_ins,
                    args=loop.monitor_args(plan.monitor, seconds), name_suffix=str(windows),
                    make=loop.loop_pod,
                )  # fmt: skip
                pod.detail = podman.logs(pod.containers[0], lines=20)
                state.save(self.folder)
                return pod.detail

            for name, requests, shift in (
                ("normal traffic", loop.NORMAL_REQUESTS, False),
                ("drifted traffic (1)", loop.DRIFTED_REQUESTS, True),
                ("drifted traffic (2)", loop.DRIFTED_REQUESTS, True),
            ):
                since = loop.now()
                answered, sent = loop.send(base_url, rows, requests, shift=shift, rng=rng)
                step(name, f"{requests} requests x {loop.ROWS_PER_REQUEST} rows: {answered}")
                step(
                    f"monitor window {windows + 1}",
                    _first_line(monitor(since, sent), f"{plan.endpoint}:"),
                )

            train = self._job(
                podman, state, "train", plan.training, stand_ins, name_suffix="loop",
                make=loop.loop_pod,
            )  # fmt: skip
            challenger = _alias(registry, plan.model, "challenger")
            if challenger is None or challenger == previous:
                logs = podman.logs(train.containers[0], lines=20)
                raise RehearsalError(f"train --if-due did not retrain:\n{logs}")
            train.detail = f"registered {plan.model}"
            record["version"] = challenger
            step("train --if-due", f"version {challenger} registered as challenger")

            answer = loop.wait_ready(
                base_url, lambda r: r.get("challenger") == challenger,
                what=f"challenger {challenger}", timeout=loop.SWAP_SECONDS,
            )  # fmt: skip
            step(
                "serving takes the challenger",
                f"/ready: champion {answer.get('champion')}, challenger {answer.get('challenger')} "
                f"({answer.get('mode')})",
            )

            since = loop.now()
            wanted = f"challenger v{challenger}"
            answered, sent = loop.send(
                base_url, rows, loop.MAX_CANARY_REQUESTS, shift=True, rng=rng,
                until=lambda a: a.get(wanted, 0) >= loop.CANARY_CHALLENGER_REQUESTS,
                pace=0.02,
            )  # fmt: skip
            if answered.get(wanted, 0) < loop.CANARY_CHALLENGER_REQUESTS:
                raise RehearsalError(f"the canary answered too few requests: {answered}")
            step("canary traffic", f"{sum(answered.values())} requests: {answered}")
            # The promotion rule's observation time counts from the version's registration.
            registered = datetime.fromtimestamp(
                int(registry.get_model_version(plan.model, challenger).creation_timestamp) / 1000,
                UTC,
            )
            waited = (registered - loop.now()).total_seconds() + _seconds(loop_observe()) + 1
            time.sleep(max(0.0, waited))
            verdict = monitor(since, sent)
            champion = _alias(registry, plan.model, "champion")
            if champion != challenger:
                raise RehearsalError(
                    f"the monitor did not promote version {challenger} (champion: "
                    f"{champion}):\n{verdict}"
                )
            step("monitor promotes", _first_line(verdict, "canary:"))

            answer = loop.wait_ready(
                base_url, lambda r: r.get("champion") == challenger,
                what=f"champion {challenger}", timeout=loop.SWAP_SECONDS,
            )  # fmt: skip
            step("serving follows the promotion", f"/ready: champion {answer.get('champion')}")

        history = self._job(
            podman, state, "history", plan.monitor, stand_ins, args=["history", plan.model],
            name_suffix="loop", make=loop.loop_pod,
        )  # fmt: skip
        history.detail = podman.logs(history.containers[0], lines=60)
        step("history", f"{len(history.detail.splitlines())} event(s)")
        record["finished"] = True
        record["seconds"] = round(time.monotonic() - began, 1)
        state.save(self.folder)

    def _play(
        self, podman: Podman, state: State, role: str, docs: list[dict[str, Any]]
    ) -> PlayedPod:
        obj = docs[-1]
        file = self.folder / f"{pod_name(obj)}.yaml"
        pod = PlayedPod(role, pod_name(obj), container_names(obj), str(file))
        state.pods.append(pod)
        state.save(self.folder)
        pod.name, containers = podman.play(docs, file)
        # Main containers in spec order (podman 4.3 names a Deployment's pod `<name>-pod-0`).
        pod.containers = [f"{pod.name}-{c['name']}" for c in pod_spec(obj)["containers"]]
        missing = set(pod.containers) - set(containers)
        if missing:
            raise RehearsalError(f"podman did not create {sorted(missing)} (it made {containers})")
        state.save(self.folder)
        return pod

    def _job(
        self,
        podman: Podman,
        state: State,
        role: str,
        cronjob: Mapping[str, Any],
        stand_ins: StandIns,
        *,
        args: list[str] | None = None,
        config_maps: list[dict[str, Any]] = (),  # type: ignore[assignment]
        name_suffix: str = "",
        make: Callable[..., dict[str, Any]] = job_pod,
    ) -> PlayedPod:
        name = f"rehearse-{role}-{cronjob['metadata']['name']}"[:56].rstrip("-")
        name = f"{name}-{name_suffix}" if name_suffix else name
        self.log(f"running {role} once ({cronjob['metadata']['name']})")
        obj = make(cronjob, stand_ins, name=name, args=args)
        pod = self._play(podman, state, role, [*config_maps, obj])
        code = podman.wait(pod.containers[0], timeout=self.job_timeout)
        pod.exit_code = code
        state.save(self.folder)
        if code != 0:
            raise RehearsalError(
                f"{role} pod {pod.name} exited {code}:\n{podman.logs(pod.containers[0])}"
            )
        return pod

    @staticmethod
    def _pipeline_model(cronjob: Mapping[str, Any]) -> str:
        container = job_template(cronjob)["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        pipelines = json.loads(env.get("MLOPS_PIPELINES") or "[]")
        pipeline = container["args"][container["args"].index("--pipeline") + 1]
        found = next((p for p in pipelines if p["name"] == pipeline), {"name": pipeline})
        return str(found.get("model") or found["name"])

    def _wait_http(self, podman: Podman, pod: PlayedPod, url: str, *, timeout: float) -> None:
        container = pod.containers[0]

        def answered() -> bool:
            status, restarts = self._status(podman, container)
            if status not in ("running", "created", "initialized") or restarts > MAX_RESTARTS:
                raise RehearsalError(
                    f"{container} is {status} after {restarts} restart(s):\n"
                    f"{podman.logs(container)}"
                )
            return http_status(url) == 200

        wait_for(answered, timeout=timeout, what=f"{url} of {container}")
        pod.detail = f"{url} answers 200"

    @staticmethod
    def _status(podman: Podman, container: str) -> tuple[str, int]:
        found = podman.run(
            "container",
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}}",
            container,
            check=False,
        ).split()
        return (found[0], int(found[1])) if len(found) == 2 else ("gone", 0)


def _first_line(text: str, prefix: str = "") -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    chosen = [line for line in lines if prefix and line.startswith(prefix)] or lines[-1:]
    return chosen[0] if chosen else ""


def _alias(registry: Any, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(registry.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def loop_observe() -> Any:
    from runtime.spec import AutoPromotion
    from tooling.rehearse.loop import loop_continuous_training

    return AutoPromotion.model_validate(loop_continuous_training()["promotion"]).observe


def _seconds(value: Any) -> float:
    return float(value.total_seconds())


def _planned_env(cronjob: Mapping[str, Any] | None) -> dict[str, str]:
    if cronjob is None:
        return {}
    container = job_template(cronjob)["spec"]["containers"][0]
    return {e["name"]: str(e.get("value")) for e in container.get("env", [])}
