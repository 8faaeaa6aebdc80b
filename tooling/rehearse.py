"""`mlops rehearse STACK`: the stack's planned Kubernetes workloads, played on this machine.

The manifests come from the mock-engine plan (what `pulumi up` would apply). Podman plays the
serving Deployment(s) and the MLflow server with `podman kube play`; the training and
materialization CronJobs run once as pods from their job templates. A local moto server stands
in for AWS (the plan's buckets, tables and topic created in it) and the local PostgreSQL for
RDS. What must change for one host is changed here, in plain functions (unit-tested without
podman), and listed in SUBSTITUTIONS; everything else is exactly what the plan rendered.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from runtime.spec import FeatureStoreSpec, PipelineSpec
from tooling.image import ULIMITS
from tooling.manifests import manifests
from tooling.plan import ROOT, Plan

if TYPE_CHECKING:
    import pandas as pd

STATE_DIR = ROOT / ".mlops" / "rehearsal"
STATE_FILE = "state.json"
TRACKING_PORT = 5000
"""The MLflow server's port (components.registry.TRACKING_PORT), on the host network."""
SERVING_PORT = 8080
"""The first endpoint's port; further endpoints get the next ones (one host network)."""
CREDENTIALS_MOUNT = "/var/run/mlops-rehearsal"
"""Where pods find the moto credentials file (stands in for IRSA's web-identity token)."""
CREDENTIALS_VOLUME = "rehearsal-aws"
DEFAULT_ADMIN_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
MODEL_REGISTRY_COMPONENT = "model-registry"
SERVING_COMPONENT = "serving"
TRAINING_COMPONENT = "training"
SIDECAR = "db-credentials"
"""The RDS-login sidecar (components.registry): the local PostgreSQL trusts its clients."""
DROPPED_POD_FIELDS = (
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
)
"""Cluster placement and identity: meaningless on one host (identity comes from the file)."""
DROPPED_CONTAINER_FIELDS = ("startupProbe", "readinessProbe", "livenessProbe")
"""podman runs HTTP probes with curl inside the container, which the image does not ship; the
rehearsal checks the same paths from the host instead."""
GPU = "nvidia.com/gpu"
MAX_RESTARTS = 2
"""A Deployment's container that restarted more often is crash-looping: stop waiting."""
SUBSTITUTIONS = (
    "image: every container runs the locally built image",
    "MLOPS_AWS_ENDPOINT_URL (and MLFLOW_S3_ENDPOINT_URL for the MLflow server): the local moto server",
    "MLOPS_TRACKING_URI: http://127.0.0.1:5000 (the MLflow server on the host network)",
    "registry database: the local PostgreSQL (trust auth, a fresh database) instead of RDS; the "
    "login sidecar and PGPASSFILE are dropped",
    "IRSA: service accounts dropped; AWS_SHARED_CREDENTIALS_FILE points at moto's fake keys in a "
    "read-only hostPath",
    "placement: node selectors, tolerations, spread constraints and GPU requests dropped",
    "probes: checked from the host (podman would run them with curl inside the image)",
    "replicas: 1 per Deployment; endpoint N listens on 8080+N (MLOPS_PORT); no declared ports "
    "(the host network has no port mappings)",
    "emptyDir volumes stay emptyDir (podman volumes)",
)


class RehearsalError(RuntimeError):
    """A step failed; the message says which and where its logs are."""


# --- what changes for one host: plain functions ------------------------------------------------


@dataclass(frozen=True)
class StandIns:
    """The local stand-ins for the cloud a rehearsal points the workloads at."""

    image: str
    aws_endpoint: str
    database_uri: str
    """`postgresql://postgres@127.0.0.1:5432/<fresh database>`."""
    credentials_dir: str
    """Host folder with `credentials` (moto's fake keys), mounted read-only."""
    tracking_uri: str = f"http://127.0.0.1:{TRACKING_PORT}"

    @property
    def credentials_file(self) -> str:
        return f"{CREDENTIALS_MOUNT}/credentials"


_DATABASE_URI = re.compile(r"^(postgres(?:ql)?(?:\+\w+)?)://")


def _local_database(value: str, stand_in: str) -> str:
    """``stand_in`` with the planned URI's scheme (its SQLAlchemy driver, if it names one)."""
    scheme = _DATABASE_URI.match(value)
    assert scheme is not None
    return f"{scheme.group(1)}://{stand_in.split('://', 1)[1]}"


def substituted_env(
    env: Iterable[Mapping[str, Any]], stand_ins: StandIns, *, port: int | None = None
) -> list[dict[str, Any]]:
    """A container's env with the rehearsal's stand-ins (SUBSTITUTIONS); the rest untouched."""
    result: list[dict[str, Any]] = []
    names = {str(e["name"]) for e in env}
    runtime = any(n.startswith("MLOPS_") for n in names)
    for entry in env:
        name, value = str(entry["name"]), entry.get("value")
        if name == "PGPASSFILE":
            continue
        if name == "MLOPS_TRACKING_URI":
            value = stand_ins.tracking_uri
        elif name == "MLOPS_PORT" and port is not None:
            value = str(port)
        elif isinstance(value, str) and _DATABASE_URI.match(value):
            value = _local_database(value, stand_ins.database_uri)
        result.append({**entry, "value": value})
    added = {"AWS_SHARED_CREDENTIALS_FILE": stand_ins.credentials_file}
    if runtime:
        added["MLOPS_AWS_ENDPOINT_URL"] = stand_ins.aws_endpoint
    if "MLFLOW_BACKEND_STORE_URI" in names:
        added["MLFLOW_S3_ENDPOINT_URL"] = stand_ins.aws_endpoint
    result += [{"name": k, "value": v} for k, v in added.items() if k not in names]
    return result


def _without_gpu(resources: Mapping[str, Any]) -> dict[str, Any]:
    return {
        kind: {k: v for k, v in values.items() if k != GPU}
        for kind, values in resources.items()
        if isinstance(values, Mapping)
    }


def rehearsal_pod_spec(
    spec: Mapping[str, Any], stand_ins: StandIns, *, port: int | None = None
) -> dict[str, Any]:
    """A planned pod spec as it runs on one host (SUBSTITUTIONS), security settings untouched."""
    pod = copy.deepcopy(dict(spec))
    for key in DROPPED_POD_FIELDS:
        pod.pop(key, None)
    pod["hostNetwork"] = True
    pod["initContainers"] = [c for c in pod.get("initContainers", []) if c["name"] != SIDECAR]
    if not pod["initContainers"]:
        del pod["initContainers"]
    pod["volumes"] = [
        *(v for v in pod.get("volumes", []) if v["name"] != SIDECAR),
        {
            "name": CREDENTIALS_VOLUME,
            "hostPath": {"path": stand_ins.credentials_dir, "type": "Directory"},
        },
    ]
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for key in DROPPED_CONTAINER_FIELDS:
            container.pop(key, None)
        container["image"] = stand_ins.image
        container["imagePullPolicy"] = "Never"
        if "resources" in container:
            container["resources"] = _without_gpu(container["resources"])
        container["env"] = substituted_env(container.get("env", []), stand_ins, port=port)
        # On the host network a port is the process's own; podman refuses port mappings there.
        container.pop("ports", None)
        container["volumeMounts"] = [
            *(m for m in container.get("volumeMounts", []) if m["name"] != SIDECAR),
            {"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_MOUNT, "readOnly": True},
        ]
    return pod


def _component(obj: Mapping[str, Any]) -> str:
    labels = obj.get("metadata", {}).get("labels") or {}
    return str(labels.get("app.kubernetes.io/component", ""))


def job_template(cronjob: Mapping[str, Any]) -> dict[str, Any]:
    return dict(cronjob["spec"]["jobTemplate"]["spec"]["template"])


def rehearsal_deployment(
    deployment: Mapping[str, Any], stand_ins: StandIns, *, port: int | None = None
) -> dict[str, Any]:
    """One replica of ``deployment`` on the host network."""
    played = copy.deepcopy(dict(deployment))
    played["metadata"] = {k: v for k, v in played["metadata"].items() if k != "namespace"}
    spec = played["spec"]
    spec["replicas"] = 1
    spec["template"]["spec"] = rehearsal_pod_spec(spec["template"]["spec"], stand_ins, port=port)
    return played


def job_pod(
    cronjob: Mapping[str, Any],
    stand_ins: StandIns,
    *,
    name: str,
    args: list[str] | None = None,
) -> dict[str, Any]:
    """A Pod that runs ``cronjob``'s job template once (``args`` instead of its own, if given)."""
    template = job_template(cronjob)
    spec = rehearsal_pod_spec(template["spec"], stand_ins)
    spec["restartPolicy"] = "Never"
    if args is not None:
        spec["containers"][0]["args"] = args
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


@dataclass
class Workloads:
    """The plan's Kubernetes objects a rehearsal plays, by role."""

    registry: dict[str, Any]
    serving: list[dict[str, Any]]
    training: list[dict[str, Any]]
    materialization: list[dict[str, Any]]
    config_maps: list[dict[str, Any]]


def workloads(plan: Plan) -> Workloads:
    objects = manifests(plan)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    cronjobs = [o for o in objects if o["kind"] == "CronJob"]
    registries = [d for d in deployments if _component(d) == MODEL_REGISTRY_COMPONENT]
    if len(registries) != 1:
        raise RehearsalError(
            f"expected one MLflow server Deployment, the plan has {len(registries)}"
        )
    return Workloads(
        registry=registries[0],
        serving=sorted(
            (d for d in deployments if _component(d) == SERVING_COMPONENT),
            key=lambda d: d["metadata"]["name"],
        ),
        training=[c for c in cronjobs if _component(c) == TRAINING_COMPONENT],
        materialization=[c for c in cronjobs if c["metadata"]["name"].startswith("materialize")],
        config_maps=[o for o in objects if o["kind"] == "ConfigMap"],
    )


def pod_name(obj: Mapping[str, Any]) -> str:
    """The pod `podman kube play` makes: a Pod keeps its name, a Deployment's gets `-pod`."""
    name = str(obj["metadata"]["name"])
    return name if obj["kind"] == "Pod" else f"{name}-pod"


def _pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"])


def container_names(obj: Mapping[str, Any]) -> list[str]:
    """`<pod>-<container>`: how podman names the containers of a played pod."""
    return [f"{pod_name(obj)}-{c['name']}" for c in _pod_spec(obj)["containers"]]


def cloud_resources(plan: Plan) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """The buckets, DynamoDB tables (create_table arguments) and SNS topics the stack creates."""
    buckets = sorted(
        str(r.outputs["bucket"])
        for r in plan.resources
        if r.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2") and not r.read
    )
    tables = []
    for table in plan.of_type("aws:dynamodb/table:Table"):
        inputs = table.inputs
        tables.append(
            {
                "TableName": inputs["name"],
                "KeySchema": [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": a["name"], "AttributeType": a["type"]}
                    for a in inputs["attributes"]
                ],
                "BillingMode": "PAY_PER_REQUEST",
            }
        )
    topics = sorted(str(r.outputs["name"]) for r in plan.of_type("aws:sns/topic:Topic"))
    return buckets, tables, topics


SYNTHETIC_DAYS = 30
SYNTHETIC_ENTITIES = 200
SYNTHETIC_LABELS = 5000
SYNTHETIC_SEED = 7


def synthetic_sources(
    feature_store: FeatureStoreSpec,
    pipelines: Iterable[PipelineSpec],
    *,
    end: datetime,
    seed: int = SYNTHETIC_SEED,
) -> dict[str, pd.DataFrame]:
    """Offline sources and labels shaped by the stack's own specs: path under the offline root
    -> rows. Daily snapshots per entity; labels depend on the point-in-time feature values, so
    a pipeline's quality gate can pass, and not on the protected attribute, so fairness can."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = pd.date_range(end=pd.Timestamp(end), periods=SYNTHETIC_DAYS, freq="D", tz="UTC")
    keys = {e.name: e for e in feature_store.entities}
    ids = np.arange(1, SYNTHETIC_ENTITIES + 1)
    frames: dict[str, pd.DataFrame] = {}
    values: dict[str, np.ndarray] = {}
    """`<view>:<feature>` -> standardized value per (day, entity), for the labels."""
    for view in feature_store.feature_views:
        frame: dict[str, Any] = {}
        for name in view.entities:
            entity = keys[name]
            column = np.tile(ids, len(days))
            frame[entity.join_key] = (
                column.astype("int64") if entity.value_type == "int64" else column.astype(str)
            )
        frame[view.source.timestamp_field] = np.repeat(days, len(ids))
        for feature, kind in view.features.items():
            level = rng.normal(0, 1, len(ids)) + rng.normal(0, 0.3, (len(days), len(ids)))
            values[f"{view.name}:{feature}"] = level
            frame[feature] = _typed(level, str(kind), rng)
        frames[f"{view.source.path.rstrip('/')}/part-0.parquet"] = pd.DataFrame(frame)
    views = {v.name: v for v in feature_store.feature_views}
    for pipeline in pipelines:
        day = rng.integers(7, len(days), SYNTHETIC_LABELS)
        who = rng.integers(0, len(ids), SYNTHETIC_LABELS)
        score = np.zeros(SYNTHETIC_LABELS)
        for ref in pipeline.features:
            score += rng.uniform(0.5, 1.5) * rng.choice([-1, 1]) * values[ref][day, who]
        score /= max(len(pipeline.features), 1) ** 0.5
        labels: dict[str, Any] = {}
        for name in {e for ref in pipeline.features for e in views[ref.split(":")[0]].entities}:
            key = keys[name]
            labels[key.join_key] = (
                ids[who].astype("int64") if key.value_type == "int64" else ids[who].astype(str)
            )
        hours = pd.to_timedelta(rng.integers(1, 23, SYNTHETIC_LABELS), unit="h")
        labels[pipeline.labels.timestamp_field] = days[day] + hours
        if pipeline.task == "regression":
            labels[pipeline.labels.target] = 100 + 10 * score + rng.normal(0, 2, SYNTHETIC_LABELS)
        else:
            chance = 1 / (1 + np.exp(-(2.5 * score - 1.0)))
            labels[pipeline.labels.target] = (rng.uniform(size=SYNTHETIC_LABELS) < chance).astype(
                "int64"
            )
        if pipeline.protected_attribute:
            labels[pipeline.protected_attribute] = rng.choice(["a", "b"], SYNTHETIC_LABELS)
        path = pipeline.labels.path
        path = path if path.endswith(".parquet") else f"{path.rstrip('/')}/part-0.parquet"
        frames[path] = pd.DataFrame(labels)
    return frames


def _typed(level: Any, kind: str, rng: Any) -> Any:
    import numpy as np

    if kind in ("int64", "int32"):
        return np.round(np.exp(1.5 + 0.5 * level)).astype(kind).ravel()
    if kind in ("float64", "float32"):
        return np.round(50 * np.exp(0.4 * level), 3).astype(kind).ravel()
    if kind == "bool":
        return (level > 0).ravel()
    return np.where(level > 0, "high", "low").ravel()


def write_sources(
    frames: Mapping[str, pd.DataFrame], offline_uri: str, endpoint: str, region: str
) -> list[str]:
    """Write ``frames`` as parquet under ``offline_uri`` (`s3://bucket/prefix`) in moto."""
    import io

    import boto3

    bucket, _, prefix = offline_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    written = []
    for path, frame in frames.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        key = f"{prefix.rstrip('/')}/{path}".lstrip("/")
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        written.append(f"s3://{bucket}/{key}")
    return written


def database_name(stack: str) -> str:
    return f"mlops_rehearsal_{stack.replace('-', '_')}"


# --- state of a rehearsal that is up ------------------------------------------------------------


@dataclass
class PlayedPod:
    role: str
    """`mlflow`, `serving`, `demo-data`, `materialize`, `train`, `promote`."""
    name: str
    """Pod name."""
    containers: list[str]
    yaml: str
    """The played YAML (for `podman kube down`)."""
    url: str | None = None
    exit_code: int | None = None
    detail: str = ""


@dataclass
class State:
    stack: str
    image: str
    aws_endpoint: str
    database: str
    database_uri: str
    admin_database_uri: str
    credentials_dir: str
    moto_pid: int | None = None
    pods: list[PlayedPod] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=lambda: list(SUBSTITUTIONS))

    def save(self, folder: Path) -> None:
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | None = None) -> State | None:
        file = (folder or STATE_DIR) / STATE_FILE
        if not file.exists():
            return None
        data = json.loads(file.read_text())
        data["pods"] = [PlayedPod(**p) for p in data.get("pods", [])]
        return cls(**data)

    def pods_of(self, role: str) -> list[PlayedPod]:
        return [p for p in self.pods if p.role == role]


# --- running it ---------------------------------------------------------------------------------

CONTAINERS_CONF = f"""# Written by `mlops rehearse`: `podman kube play` takes its limits and runtime from here.
[containers]
default_ulimits = [{", ".join(f'"{u}"' for u in ULIMITS)}]

[engine]
runtime = "runc"
"""
TOOLS = {"podman": "podman", "runc": "runc", "catatonit": "catatonit"}
"""Command -> Debian package: kube play needs catatonit for its pause image."""


class Podman:
    """The podman command line with the rehearsal's containers.conf (CONTAINERS_CONF)."""

    def __init__(self, folder: Path) -> None:
        conf = folder / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> str:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and done.returncode:
            raise RehearsalError(f"podman {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, obj_docs: list[dict[str, Any]], file: Path) -> tuple[str, list[str]]:
        """Play the YAML; the pod's name and its containers' names as podman gave them."""
        file.write_text(yaml.safe_dump_all(obj_docs, sort_keys=False))
        output = self.run("kube", "play", "--network", "host", "--replace", str(file))
        pod_id = output.split("Pod:", 1)[1].split()[0]
        name = self.run("pod", "inspect", "--format", "{{.Name}}", pod_id).strip()
        listed = self.run(
            "ps", "--all", "--filter", f"pod={pod_id}", "--format", "{{.Names}} {{.IsInfra}}"
        )
        containers = [
            n for n, infra in (line.split() for line in listed.splitlines()) if infra != "true"
        ]
        return name, sorted(containers)

    def down(self, file: Path) -> None:
        self.run("kube", "down", str(file), check=False)

    def wait(self, container: str, timeout: float) -> int:
        try:
            return int(self.run("wait", container, timeout=timeout).strip().splitlines()[-1])
        except subprocess.TimeoutExpired as error:
            raise RehearsalError(f"{container} still running after {timeout:.0f}s") from error

    def logs(self, container: str, lines: int = 40) -> str:
        done = subprocess.run(
            ["podman", "logs", "--tail", str(lines), container],
            capture_output=True,
            text=True,
            env=self.env,
        )
        return (done.stdout + done.stderr).strip()


def ensure_tools() -> None:
    from tooling import image

    missing = image.missing_tools(TOOLS)
    if missing:
        image.install_tools([TOOLS[t] for t in missing])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_status(url: str, timeout: float = 5) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RehearsalError(f"{what}: not there after {timeout:.0f}s")


def start_moto(folder: Path) -> tuple[int, str]:
    """A moto server in its own session (it outlives `--keep`); returns its pid and endpoint."""
    port = free_port()
    log = (folder / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_status(f"{endpoint}/moto-api/data.json") == 200, timeout=60, what="moto")
    return process.pid, endpoint


def create_cloud(plan: Plan, endpoint: str, region: str) -> list[str]:
    """Create the stack's buckets, tables and topics in moto; what was created, for the report."""
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, **keys)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **keys)
    sns = boto3.client("sns", endpoint_url=endpoint, region_name=region, **keys)
    buckets, tables, topics = cloud_resources(plan)
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket, **location)
    for table in tables:
        dynamodb.create_table(**table)
    for topic in topics:
        sns.create_topic(Name=topic)
    return [*(f"s3://{b}" for b in buckets), *(t["TableName"] for t in tables), *topics]


def fresh_database(admin_uri: str, name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(admin_uri)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def drop_database(admin_uri: str, name: str) -> None:
    import psycopg2

    try:
        connection = psycopg2.connect(admin_uri)
    except psycopg2.Error:
        return
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


def write_credentials(folder: Path) -> Path:
    """moto's fake keys, readable by the runtime user (UID 10001) through a read-only mount."""
    credentials = folder / "aws"
    credentials.mkdir(exist_ok=True)
    (credentials / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o755)
    (credentials / "credentials").chmod(0o644)
    return credentials


def down(folder: Path | None = None, log: Callable[[str], None] = print) -> bool:
    """Tear a rehearsal down: pods, moto, the database. False when nothing was up."""
    folder = folder or STATE_DIR
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
    folder: Path = STATE_DIR
    admin_database_uri: str = DEFAULT_ADMIN_DATABASE
    log: Callable[[str], None] = print
    job_timeout: float = 900
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
        return state

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
        pod.containers = [f"{pod.name}-{c['name']}" for c in _pod_spec(obj)["containers"]]
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
    ) -> PlayedPod:
        name = f"rehearse-{role}-{cronjob['metadata']['name']}"[:60].rstrip("-")
        self.log(f"running {role} once ({cronjob['metadata']['name']})")
        obj = job_pod(cronjob, stand_ins, name=name, args=args)
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


def _planned_env(cronjob: Mapping[str, Any] | None) -> dict[str, str]:
    if cronjob is None:
        return {}
    container = job_template(cronjob)["spec"]["containers"][0]
    return {e["name"]: str(e.get("value")) for e in container.get("env", [])}


def iter_rows(state: State) -> Iterator[tuple[str, str, str, str]]:
    """Role, pod, state, detail: what came up, for the report."""
    for pod in state.pods:
        if pod.exit_code is not None:
            status = "completed" if pod.exit_code == 0 else f"failed ({pod.exit_code})"
        else:
            status = "running"
        yield pod.role, pod.name, status, pod.detail or (pod.url or "")
