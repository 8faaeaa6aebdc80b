"""pytest-testinfra against the running workloads of a stack.

Rehearsal (default): the pods `mlops rehearse STACK --keep` left up, through testinfra's
`podman://` backend. These tests skip with the reason when podman, the image or a rehearsal is
missing, except in CI (CI=true), where they fail instead: CI builds the image and rehearses first.

A real cluster: `pytest tests/infra --hosts='kubectl://POD?namespace=ml-<team>&container=serve'`
runs the checks marked `cluster` against a serving pod the stack deployed; the checks that need
the rehearsal's podman and moto (planned env, image history, training) skip there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import testinfra

from tests.conftest import planned
from tooling import rehearse
from tooling.image import ULIMITS

CI = os.environ.get("CI") == "true"
RUNTIME_UID = 10001
WORK_DIR = "/var/lib/mlops"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|API_?KEY|ACCESS_KEY", re.I)
SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|aws_secret_access_key|password=|://[^/\s:@]+:[^/\s@]+@",
    re.I,
)
"""Key ids, private keys, secret keys, passwords in URIs or options."""
PODMAN_ENV = {"HOSTNAME", "container", "TERM", "HOME"}
"""What podman adds to a container's env by itself."""

cluster = pytest.mark.cluster


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"CI must rehearse before these tests: {reason}")
    pytest.skip(reason)


def _on_cluster(config: pytest.Config) -> bool:
    return bool(config.getoption("hosts", None))


@pytest.fixture(scope="module")
def state(request: pytest.FixtureRequest) -> rehearse.State:
    if _on_cluster(request.config):
        pytest.skip("needs the rehearsal (podman, moto), not a cluster")
    if shutil.which("podman") is None:
        _unavailable("podman is not installed (`mlops image build --make-base` installs it)")
    found = rehearse.State.load()
    if found is None:
        _unavailable(
            "no rehearsal is up: `mlops image build --make-base && mlops rehearse fraud-dev --keep`"
        )
    assert found is not None
    if subprocess.run(["podman", "image", "exists", found.image]).returncode:
        _unavailable(f"the rehearsal's image {found.image} is gone")
    return found


def _serving_pod(state: rehearse.State) -> rehearse.PlayedPod:
    pods = state.pods_of("serving")
    if not pods:
        _unavailable(f"the rehearsal of {state.stack} plays no serving endpoint")
    return pods[0]


@pytest.fixture(scope="module")
def serving(request: pytest.FixtureRequest) -> Any:
    """The serving container: the given `--hosts` (a cluster pod) or the rehearsed one."""
    if _on_cluster(request.config):
        return request.getfixturevalue("host")
    return testinfra.get_host(
        f"podman://{_serving_pod(request.getfixturevalue('state')).containers[0]}"
    )


def _inspect(container: str) -> dict[str, Any]:
    done = subprocess.run(
        ["podman", "container", "inspect", container], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout)[0])


def _http(host: Any, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """A request from inside the container (works through kubectl exec too): status, JSON."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "data = sys.argv[3].encode() if sys.argv[3] else None\n"
        "req = urllib.request.Request('http://127.0.0.1:' + sys.argv[4] + sys.argv[2], data=data,"
        " method=sys.argv[1], headers={'content-type': 'application/json'})\n"
        "try:\n    r = urllib.request.urlopen(req, timeout=30); print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n"
    )
    port = host.check_output("printenv MLOPS_PORT || echo 8080").strip() or "8080"
    result = host.run_expect(
        [0],
        "python -c %s %s %s %s %s",
        script,
        method,
        path,
        json.dumps(body) if body is not None else "",
        port,
    )
    status, _, text = result.stdout.partition("\n")
    try:
        payload = json.loads(text) if text.strip() else None
    except ValueError:
        payload = text
    return int(status), payload


def _entity(host: Any, key: int) -> dict[str, int]:
    """A row naming only entity keys (demo data numbers entities from 1)."""
    feature_store = json.loads(host.check_output("printenv MLOPS_FEATURE_STORE"))
    return {entity["joinKey"]: key for entity in feature_store["entities"]}


# --- the serving container: also against a real cluster -----------------------------------------


@cluster
def test_serving_runs_as_the_runtime_user(serving: Any) -> None:
    assert serving.user().uid == RUNTIME_UID
    assert serving.user().gid == RUNTIME_UID
    status = serving.file("/proc/1/status").content_string
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
    assert uids is not None
    assert set(uids.group(1).split()) == {str(RUNTIME_UID)}


@cluster
def test_serving_root_filesystem_is_read_only_but_its_work_folder_is_not(serving: Any) -> None:
    denied = serving.run("touch /opt/mlops/probe")
    assert denied.rc != 0
    assert "Read-only file system" in denied.stderr
    assert serving.run(f"touch {WORK_DIR}/probe && rm {WORK_DIR}/probe").rc == 0
    assert serving.file(WORK_DIR).is_directory


@cluster
def test_serving_listens_on_8080(serving: Any) -> None:
    port = serving.check_output("printenv MLOPS_PORT || echo 8080").strip()
    assert serving.socket(f"tcp://0.0.0.0:{port}").is_listening


@cluster
def test_ping_and_a_real_prediction_answer(serving: Any) -> None:
    status, ready = _http(serving, "GET", "/ping")
    assert status == 200, ready

    # Only the entity keys: the model's inputs come from the online store (DynamoDB).
    status, answer = _http(
        serving, "POST", "/predict", {"rows": [_entity(serving, 1), _entity(serving, 2)]}
    )
    assert status == 200, answer
    assert len(answer["predictions"]) == 2
    assert answer["variant"] in ("champion", "challenger")
    assert answer["version"]


@cluster
def test_no_secret_in_the_serving_environment(serving: Any) -> None:
    env = dict(
        line.split("=", 1) for line in serving.check_output("env").splitlines() if "=" in line
    )
    assert not [name for name in env if SECRET_NAME.search(name)]
    assert not [name for name, value in env.items() if SECRET_VALUE.search(value)]


# --- what only a rehearsal can show -------------------------------------------------------------


def test_serving_env_is_what_the_plan_rendered(state: rehearse.State) -> None:
    pod = _serving_pod(state)
    (container,) = pod.containers
    played = rehearse.workloads(planned(state.stack)).serving[0]
    planned_env = {
        e["name"]: e["value"] for e in played["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    # The documented stand-ins (tooling.rehearse.SUBSTITUTIONS), nothing else.
    expected = {
        **planned_env,
        "MLOPS_TRACKING_URI": "http://127.0.0.1:5000",
        "MLOPS_AWS_ENDPOINT_URL": state.aws_endpoint,
        "AWS_SHARED_CREDENTIALS_FILE": f"{rehearse.CREDENTIALS_MOUNT}/credentials",
    }
    inspected = _inspect(container)
    image_env = dict(
        e.split("=", 1) for e in _inspect_image(state.image)["Config"].get("Env") or []
    )
    actual = dict(e.split("=", 1) for e in inspected["Config"]["Env"])
    # The image's own defaults stay (PATH, HOME, ...) unless the plan sets the same name.
    from_pod = {
        k: v
        for k, v in actual.items()
        if k not in PODMAN_ENV and (k not in image_env or image_env[k] != v or k in expected)
    }
    assert from_pod == expected


def _inspect_image(image: str) -> dict[str, Any]:
    done = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout)[0])


def test_serving_container_is_hardened_as_planned(state: rehearse.State) -> None:
    inspected = _inspect(_serving_pod(state).containers[0])
    host_config = inspected["HostConfig"]

    assert host_config["ReadonlyRootfs"] is True
    assert inspected["Config"]["User"].split(":")[0] == str(RUNTIME_UID)
    assert not host_config.get("Privileged")
    assert "no-new-privileges" in " ".join(host_config.get("SecurityOpt") or [])
    assert not (host_config.get("CapAdd") or [])
    assert inspected["ImageName"] == state.image


def test_no_secret_in_the_image_history_or_labels(state: rehearse.State) -> None:
    history = subprocess.run(
        ["podman", "history", "--no-trunc", "--format", "{{.CreatedBy}}", state.image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    labels = json.dumps(_inspect_image(state.image)["Config"].get("Labels") or {})

    for text in (history, labels):
        assert not SECRET_VALUE.search(text)
        assert not re.search(r"(SECRET|PASSWORD|TOKEN)[A-Z_]*=\S", text)
    assert "org.opencontainers.image.revision" in labels


def test_the_mlflow_server_answers_as_the_runtime_user(state: rehearse.State) -> None:
    (pod,) = state.pods_of("mlflow")
    server = testinfra.get_host(f"podman://{pod.containers[0]}")

    assert server.user().uid == RUNTIME_UID
    assert server.socket(f"tcp://0.0.0.0:{rehearse.TRACKING_PORT}").is_listening
    assert rehearse.http_status(f"http://127.0.0.1:{rehearse.TRACKING_PORT}/health") == 200
    assert _inspect(pod.containers[0])["HostConfig"]["ReadonlyRootfs"] is True


@pytest.fixture(scope="module")
def registry(state: rehearse.State) -> Iterator[Any]:
    from mlflow import MlflowClient

    yield MlflowClient(tracking_uri=f"http://127.0.0.1:{rehearse.TRACKING_PORT}")


def test_training_ran_to_completion_and_registered_a_version(
    state: rehearse.State, registry: Any
) -> None:
    trained = state.pods_of("train")
    assert trained, "the rehearsal ran no training pod"
    for pod in trained:
        (container,) = pod.containers
        assert _inspect(container)["State"]["ExitCode"] == 0
        model = pod.detail.removeprefix("registered ")
        versions = registry.search_model_versions(f"name='{model}'")
        assert versions, f"no version of {model} in the registry"
        assert registry.get_model_version_by_alias(model, "champion").version


def test_the_endpoint_serves_the_version_training_registered(
    state: rehearse.State, registry: Any
) -> None:
    host = testinfra.get_host(f"podman://{_serving_pod(state).containers[0]}")
    model = state.pods_of("train")[0].detail.removeprefix("registered ")
    champion = registry.get_model_version_by_alias(model, "champion")

    status, answer = _http(host, "POST", "/predict", {"rows": [_entity(host, 3)]})
    assert status == 200, answer
    assert (answer["model"], answer["version"]) == (model, str(champion.version))


# --- continuous training's loop (`mlops rehearse STACK --keep --loop`) ---------------------------


@pytest.fixture(scope="module")
def loop(state: rehearse.State) -> dict[str, Any]:
    if state.loop is None:
        _unavailable(f"the rehearsal of {state.stack} did not play the loop (`--loop`)")
    assert state.loop is not None
    return state.loop


def _events(state: rehearse.State, loop: dict[str, Any]) -> list[Any]:
    """The model's event log as the jobs wrote it (in moto's S3), oldest first."""
    from runtime import events
    from runtime.settings import Settings
    from tooling.rehearse.loop import moto_env

    settings = Settings(
        events_uri=loop["events_uri"],
        aws_endpoint_url=state.aws_endpoint,
        aws_region=loop["region"],
    )
    with moto_env(state.aws_endpoint, loop["region"]):
        return events.read(settings, loop["model"])


def test_the_loop_ran_every_step_in_pods_that_succeeded(
    state: rehearse.State, loop: dict[str, Any]
) -> None:
    assert loop["finished"], f"the loop stopped after {[s['step'] for s in loop['steps']]}"
    steps = [s["step"] for s in loop["steps"]]
    assert steps == [
        "normal traffic",
        "monitor window 1",
        "drifted traffic (1)",
        "monitor window 2",
        "drifted traffic (2)",
        "monitor window 3",
        "train --if-due",
        "serving takes the challenger",
        "canary traffic",
        "monitor promotes",
        "serving follows the promotion",
        "history",
    ]
    played = [*state.pods_of("monitor"), *state.pods_of("train"), *state.pods_of("history")]
    assert len(state.pods_of("monitor")) == 4 and len(state.pods_of("train")) == 2
    for pod in played:
        assert pod.exit_code == 0, pod.detail
        assert _inspect(pod.containers[0])["State"]["ExitCode"] == 0


def test_the_loop_retrained_on_drift_and_the_monitor_promoted_the_challenger(
    state: rehearse.State, loop: dict[str, Any], registry: Any
) -> None:
    model, version, previous = loop["model"], loop["version"], loop["previous"]
    assert version and version != previous
    champion = registry.get_model_version_by_alias(model, "champion")
    assert str(champion.version) == version
    tags = champion.tags
    assert "PSI" in tags["mlops.ct.trigger"]  # why: the drift trigger's evidence
    assert tags["mlops.ct.promoted_by"].startswith(f"monitor of {loop['endpoint']}")
    assert tags["mlops.previous_champion"] == previous

    # Serving follows the alias: it answers with the promoted version.
    host = testinfra.get_host(f"podman://{_serving_pod(state).containers[0]}")
    status, ready = _http(host, "GET", "/ready")
    assert status == 200 and ready["champion"] == version, ready


def test_the_event_log_holds_the_loops_timeline(
    state: rehearse.State, loop: dict[str, Any]
) -> None:
    from datetime import datetime

    version = loop["version"]
    started = datetime.fromisoformat(loop["started"])
    timeline = [(e.kind, e.version, e) for e in _events(state, loop) if e.at >= started]
    kinds = [str(kind) for kind, _, _ in timeline]
    # triggered (by drift) -> trained (the challenger) -> promoted (by the monitor), in order.
    triggered = kinds.index("triggered")
    assert "drift" in timeline[triggered][2].details["triggers"]
    trained = kinds.index("trained", triggered)
    assert timeline[trained][1] == version
    promoted = kinds.index("promoted", trained)
    assert timeline[promoted][1] == version
    assert timeline[promoted][2].by.startswith("mlops (monitor")
    assert not {"failed", "gated-out", "rolled-back", "quarantined", "crashed"} & set(kinds)
    # `mlops-runtime history` in a pod printed the same timeline.
    (history,) = state.pods_of("history")
    printed = [line.split()[2] for line in history.detail.splitlines() if line[:2] == "20"]
    for kind in ("triggered", "trained", "promoted"):
        assert kind in printed, history.detail


# --- the image as SageMaker starts a real-time variant -------------------------------------------

SAGEMAKER_PORT = 8080
SAGEMAKER_GRACE_SECONDS = 30
"""SageMaker stops a container with SIGTERM, then SIGKILL this long after."""


def _free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_image_started_as_sagemaker_starts_it_answers_ping_and_invocations(
    state: rehearse.State,
) -> None:
    """`podman run <image> serve`, as SageMaker's `docker run <image> serve`: the image's own
    entrypoint and user, a writable root, port 8080, the Model's env (here the rehearsed serving
    pod's, whose backends are the rehearsal's, plus the variant's alias), stopped by SIGTERM."""
    import httpx

    serving = _serving_pod(state)
    inspected = _inspect(serving.containers[0])
    pod_env = inspected["Config"]["Env"]
    # What the rehearsal mounts for AWS (moto's credentials file), as a Model's role would give.
    credentials = next(
        e.split("=", 1)[1] for e in pod_env if e.startswith("AWS_SHARED_CREDENTIALS_FILE=")
    )
    mounts = [
        a
        for m in inspected["Mounts"]
        if credentials.startswith(m["Destination"].rstrip("/") + "/")
        or credentials == m["Destination"]
        for a in ("--volume", f"{m['Source']}:{m['Destination']}:ro")
    ]
    assert mounts, inspected["Mounts"]
    env = [
        e
        for e in pod_env
        if e.split("=", 1)[0] not in PODMAN_ENV | {"PATH", "MLOPS_PORT", "MLOPS_ENDPOINT"}
    ]
    # A variant's endpoint: SageMaker splits the traffic, so no canary of the runtime's own.
    (endpoint,) = [
        json.loads(e.split("=", 1)[1]) for e in pod_env if e.startswith("MLOPS_ENDPOINT=")
    ]
    endpoint.pop("canary", None)
    env += [f"MLOPS_ENDPOINT={json.dumps(endpoint)}", "MLOPS_SERVE_ALIAS=champion"]
    name = f"mlops-sagemaker-contract-{os.getpid()}"
    options = [a for e in env for a in ("--env", e)]
    # The bounded limits the rehearsal's pods get (podman's defaults are refused on some hosts).
    limits = [a for limit in ULIMITS for a in ("--ulimit", limit)]
    # The rehearsal's pods share the host's network, and its serving pod listens on 8080 too:
    # it stops while the variant runs (this is the suite's last test) and starts again after.
    subprocess.run(["podman", "pod", "stop", serving.name], check=True, capture_output=True)
    try:
        if not _free(SAGEMAKER_PORT):
            _unavailable(f"port {SAGEMAKER_PORT} (SageMaker's) is taken on this machine")
        subprocess.run(
            ["podman", "run", "--detach", "--name", name, "--network", "host", *limits, *mounts, *options,
             state.image, "serve"],
            check=True, capture_output=True,
        )  # fmt: skip
        row = json.loads(
            subprocess.run(
                ["podman", "exec", name, "printenv", "MLOPS_FEATURE_STORE"],
                check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        entity = {e["joinKey"]: 1 for e in row["entities"]}
        base = f"http://127.0.0.1:{SAGEMAKER_PORT}"
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(120):
                try:
                    if http.get("/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(1)
            ping = http.get("/ping")
            answer = http.post("/invocations", json={"instances": [entity, entity]})
            refused = http.post(
                "/invocations", content=b"<x/>", headers={"content-type": "application/xml"}
            )
        started = time.monotonic()
        subprocess.run(
            ["podman", "stop", "--time", str(SAGEMAKER_GRACE_SECONDS), name],
            check=True, capture_output=True,
        )  # fmt: skip
        stopped_in = time.monotonic() - started
        exit_code = _inspect(name)["State"]["ExitCode"]
        user = _inspect(name)["Config"]["User"]
    finally:
        shown = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
        logs = shown.stdout + shown.stderr
        subprocess.run(["podman", "rm", "--force", name], capture_output=True)
        subprocess.run(["podman", "pod", "start", serving.name], capture_output=True)

    assert ping.status_code == 200, logs[-2000:]
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2
    assert answer.json()["variant"] == "champion"
    assert refused.status_code == 415
    assert user.split(":")[0] == "10001"  # the image's own non-root user (and group), not root
    # SIGTERM drains and exits inside SageMaker's grace period, not killed by its SIGKILL.
    assert stopped_in < SAGEMAKER_GRACE_SECONDS and exit_code in (0, 143), (exit_code, logs[-2000:])
