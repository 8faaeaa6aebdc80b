"""What changes for one host: the planned manifests as podman plays them, in plain functions
(unit-tested without podman); every change is listed in SUBSTITUTIONS."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tooling.manifests import manifests
from tooling.plan import Plan
from tooling.rehearse.errors import RehearsalError

TRACKING_PORT = 5000
"""The MLflow server's port (components.registry.TRACKING_PORT), on the host network."""
SERVING_PORT = 8080
"""The first endpoint's port; further endpoints get the next ones (one host network)."""
CREDENTIALS_MOUNT = "/var/run/mlops-rehearsal"
"""Where pods find the moto credentials file (stands in for IRSA's web-identity token)."""
CREDENTIALS_VOLUME = "rehearsal-aws"
MODEL_REGISTRY_COMPONENT = "model-registry"
SERVING_COMPONENT = "serving"
TRAINING_COMPONENT = "training"
DRIFT_MONITOR_COMPONENT = "drift-monitor"
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
    "database bootstrap Job and SecurityGroupPolicy: not played (every workload logs in to the "
    "one fresh database as the server's trusted admin, so no role is needed; "
    "tests/runtime/test_database_roles.py runs the bootstrap against the same PostgreSQL)",
    "IRSA: service accounts dropped; AWS_SHARED_CREDENTIALS_FILE points at moto's fake keys in a "
    "read-only hostPath",
    "placement: node selectors, tolerations, spread constraints and GPU requests dropped",
    "probes: checked from the host (podman would run them with curl inside the image)",
    "replicas: 1 per Deployment; endpoint N listens on 8080+N (MLOPS_PORT); no declared ports "
    "(the host network has no port mappings)",
    "emptyDir volumes stay emptyDir (podman volumes)",
    "NetworkPolicies: not played (podman has none; every pod shares the host network), so the "
    "rehearsal proves no isolation: tests/components/test_network.py evaluates the policies",
)


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
    monitors: list[dict[str, Any]] = field(default_factory=list)
    """The drift monitors' CronJobs (played only by `--loop`)."""


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
        monitors=[c for c in cronjobs if _component(c) == DRIFT_MONITOR_COMPONENT],
    )


def pod_name(obj: Mapping[str, Any]) -> str:
    """The pod `podman kube play` makes: a Pod keeps its name, a Deployment's gets `-pod`."""
    name = str(obj["metadata"]["name"])
    return name if obj["kind"] == "Pod" else f"{name}-pod"


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"])


def container_names(obj: Mapping[str, Any]) -> list[str]:
    """`<pod>-<container>`: how podman names the containers of a played pod."""
    return [f"{pod_name(obj)}-{c['name']}" for c in pod_spec(obj)["containers"]]
