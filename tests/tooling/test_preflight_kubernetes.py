"""The API server's rules the OpenAPI schema does not encode, over every planned Kubernetes object:
each rule with an object that breaks it, and a component whose mistake the schema lets through."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.stackgen import generated_config, write_stack
from tooling.manifests import schema_errors
from tooling.plan import PlanError, PlannedResource, plan_stack
from tooling.preflight.kubernetes import (
    admission_findings,
    object_problems,
    quantity_value,
    schedule_problem,
)


def _deployment(**pod: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "scorer"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scorer", "namespace": "ml-fraud", "labels": labels},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": "serve",
                            "image": "runtime@sha256:" + "a" * 64,
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"cpu": "1", "memory": "1Gi"},
                            },
                        }
                    ],
                    **pod,
                },
            },
        },
    }


def test_a_valid_deployment_has_no_problem() -> None:
    obj = _deployment()
    assert schema_errors(obj) == []
    assert list(object_problems(obj)) == []


C = "spec.template.spec.containers[0]"


def _set(path: str, value: Any) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        node: Any = obj
        parts = path.replace("[", ".").replace("]", "").split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        node[parts[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "found"),
    [
        pytest.param(
            _set("metadata.name", "Scorer_1"),
            [("metadata.name", "Scorer_1", "a DNS-1123 subdomain")],
            id="object-name",
        ),
        pytest.param(
            _set("metadata.namespace", "ml.fraud"),
            [("metadata.namespace", "ml.fraud", "a DNS-1123 label")],
            id="namespace-name",
        ),
        pytest.param(
            _set("metadata.labels", {"team": "fraud detection"}),
            [("metadata.labels.team", "fraud detection", "a label value")],
            id="label-value-with-a-space",
        ),
        pytest.param(
            _set("metadata.labels", {"-team": "fraud", "acme.example/" + "x" * 64: "y"}),
            [
                ("metadata.labels.-team", "-team", "a label key whose name"),
                (
                    "metadata.labels.acme.example/" + "x" * 64,
                    "acme.example/" + "x" * 64,
                    "a label key whose name",
                ),
            ],
            id="label-keys",
        ),
        pytest.param(
            _set("metadata.annotations", {"note": "x" * (256 * 1024)}),
            [("metadata.annotations", f"{256 * 1024 + 4} bytes", "at most 262144 bytes in all")],
            id="annotations-over-256-kib",
        ),
        pytest.param(
            _set("spec.selector.matchLabels", {"app.kubernetes.io/name": "scorer-v2"}),
            [
                (
                    "spec.selector.matchLabels",
                    {"app.kubernetes.io/name": "scorer-v2"},
                    "labels the pod template carries",
                )
            ],
            id="selector-that-selects-nothing",
        ),
        pytest.param(
            _set(f"{C}.resources.limits.memory", "1GB"),
            [(f"{C}.resources.limits.memory", "1GB", "a quantity")],
            id="quantity-with-a-unit-kubernetes-lacks",
        ),
        pytest.param(
            _set(f"{C}.resources.requests.cpu", "2"),
            [(f"{C}.resources.requests.cpu", "2", "at most the limit (1)")],
            id="request-above-its-limit",
        ),
        pytest.param(
            _set(
                f"{C}.resources",
                {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}},
            ),
            [(f"{C}.resources.requests.nvidia.com/gpu", 1, "equal to its limit (2)")],
            id="gpu-request-not-its-limit",
        ),
        pytest.param(
            _set(f"{C}.ports", [{"name": "http-metrics-port", "containerPort": 70000}]),
            [
                (f"{C}.ports[0].containerPort", 70000, "a port number from 1 to 65535"),
                (f"{C}.ports[0].name", "http-metrics-port", "a port name"),
            ],
            id="port-number-and-name",
        ),
        pytest.param(
            _set(f"{C}.env", [{"name": "1_MLOPS_HOME", "value": "/var/lib/mlops"}]),
            [(f"{C}.env[0].name", "1_MLOPS_HOME", "an environment variable name")],
            id="env-var-name",
        ),
        pytest.param(
            _set(f"{C}.volumeMounts", [{"name": "home", "mountPath": "/var/lib/mlops"}]),
            [(f"{C}.volumeMounts[0].name", "home", "a volume of the pod (none)")],
            id="mount-of-a-volume-the-pod-lacks",
        ),
        pytest.param(
            _set(
                "spec.template.spec.initContainers",
                [{"name": "serve", "image": "busybox@sha256:" + "b" * 64}],
            ),
            [
                (
                    f"{C}.name",
                    "serve",
                    "unique among the pod's containers (spec.template.spec.initContainers[0].name has it too)",
                )
            ],
            id="container-name-twice-in-a-pod",
        ),
    ],
)
def test_what_the_api_server_refuses(mutate: Any, found: list[tuple[str, Any, str]]) -> None:
    obj = copy.deepcopy(_deployment())
    mutate(obj)

    problems = list(object_problems(obj))

    assert [(p, v) for p, v, _ in problems] == [(p, v) for p, v, _ in found]
    for (_, _, message), (_, _, start) in zip(problems, found, strict=True):
        assert message.startswith(start), message


@pytest.mark.parametrize(
    ("kind", "name", "start"),
    [
        pytest.param(
            "CronJob", "train-" + "a" * 50, "at most 52 characters for a CronJob", id="cronjob-52"
        ),
        pytest.param("Service", "1-scorer", "a DNS-1035 label", id="service-starts-with-a-digit"),
        pytest.param("Namespace", "ml.fraud", "a DNS-1123 label", id="namespace-no-dots"),
        pytest.param("ConfigMap", "feast.config", None, id="configmap-dots-are-fine"),
    ],
)
def test_names_follow_their_kind(kind: str, name: str, start: str | None) -> None:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
    problems = [m for p, _, m in object_problems(obj) if p == "metadata.name"]
    assert problems == [] if start is None else problems[0].startswith(start)


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("*/30 * * * *", True),
        ("@daily", True),
        ("0 3 * * 0", True),
        ("0 0 3 * * *", False),  # six fields: seconds are not cron's
        ("CRON_TZ=UTC 0 3 * * *", False),
        ("0 25 * * *", False),
    ],
)
def test_cronjob_schedules_are_what_the_controller_parses(schedule: str, ok: bool) -> None:
    assert (schedule_problem(schedule) is None) is ok


def test_service_ports() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "scorer"},
        "spec": {
            "selector": {"app": "scorer "},
            "ports": [{"port": 80, "targetPort": "HTTP"}, {"port": 0, "name": "metrics"}],
        },
    }
    assert [(p, v) for p, v, _ in object_problems(service)] == [
        ("spec.selector.app", "scorer "),
        ("spec.ports[0].targetPort", "HTTP"),
        ("spec.ports[0].name", None),
        ("spec.ports[1].port", 0),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2Gi", Decimal(2 * 2**30)),
        ("1e3", Decimal(1000)),
        ("8GB", None),
        (".5", Decimal("0.5")),
    ],
)
def test_quantities_parse_as_the_api_server_parses_them(text: str, value: Decimal | None) -> None:
    assert quantity_value(text) == value


def test_a_cpu_limit_broken_in_component_code_stops_the_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "1.5cores" is a string, and the OpenAPI schema takes any string for a quantity."""
    monkeypatch.setattr("components.naming.cpu_limit", lambda request: "1.5cores")

    with pytest.raises(PlanError) as caught:
        plan_stack("fraud-dev")

    shown = [str(issue) for issue in caught.value.issues]
    assert (
        "stacks/Pulumi.fraud-dev.yaml: kubernetes:apps/v1:Deployment endpoint-scorer-deployment: "
        "spec.template.spec.containers[0].resources.limits.cpu: should be a quantity: a number "
        "with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent), "
        "e.g. '500m', '2' or '8Gi' (not '8GB') (got '1.5cores')"
    ) in shown
    assert all(": should be a quantity" in line for line in shown)


def _planned(obj: dict[str, Any]) -> PlannedResource:
    kind, name = obj["kind"], obj["metadata"]["name"]
    return PlannedResource(
        urn=f"urn:pulumi:s::p::kubernetes:x:{kind}::{name}",
        type=f"kubernetes:x:{kind}",
        name=name,
        parent=None,
        custom=True,
        inputs=obj,
        outputs=obj,
    )


def _namespace_guards(hard: dict[str, str], **limit: Any) -> list[PlannedResource]:
    meta = {"namespace": "ml-fraud"}
    return [
        _planned(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "team-quota", **meta},
                "spec": {"hard": hard},
            }
        ),
        _planned(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "container-defaults", **meta},
                "spec": {"limits": [{"type": "Container", **limit}]},
            }
        ),
    ]


def _hpa(maximum: int) -> PlannedResource:
    return _planned(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "scorer", "namespace": "ml-fraud"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scorer"},
                "minReplicas": 1,
                "maxReplicas": maximum,
            },
        }
    )


def test_a_namespace_that_fits_its_workloads_at_their_peak() -> None:
    resources = [
        *_namespace_guards({"requests.cpu": "4", "limits.memory": "8Gi", "pods": "4"}),
        _planned(_deployment()),
        _hpa(4),
    ]
    assert list(admission_findings(resources)) == []


def test_quota_and_limit_range_admission() -> None:
    deployment = _deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = (
        "16Gi"
    )
    resources = [
        *_namespace_guards({"requests.cpu": "2", "limits.memory": "20Gi"}, max={"memory": "8Gi"}),
        _planned(deployment),
        _hpa(6),
    ]

    found = [(f.where, f.value, f.message.split(":")[0]) for f in admission_findings(resources)]

    assert found == [
        (
            f"kubernetes:x:Deployment scorer: {C}.resources.limits.memory",
            "16Gi",
            "at most the namespace LimitRange's max for a container (8Gi)",
        ),
        (
            "kubernetes:x:ResourceQuota team-quota: spec.hard.requests.cpu",
            "2",
            "at least 3",
        ),
        (
            "kubernetes:x:ResourceQuota team-quota: spec.hard.limits.memory",
            "20Gi",
            "at least 96Gi",
        ),
    ]


def test_a_pod_that_names_no_cpu_in_a_namespace_whose_quota_counts_it() -> None:
    deployment = _deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
    resources = [*_namespace_guards({"requests.cpu": "4"}), _planned(deployment)]

    [finding] = admission_findings(resources)

    assert finding.where == f"kubernetes:x:Deployment scorer: {C}.resources.requests.cpu"
    assert finding.message.startswith("set: the namespace's ResourceQuota counts requests.cpu")


def test_a_team_quota_too_small_for_its_stack_stops_the_plan(tmp_path: Path) -> None:
    config = generated_config(21, environment="dev")
    config["mlops:training"]["quota"] = {"cpu": "4", "memory": "64Gi", "gpu": 0, "pods": 100}

    with pytest.raises(PlanError) as caught:
        plan_stack(write_stack(tmp_path, config))

    shown = [str(issue) for issue in caught.value.issues]
    assert any(
        "kubernetes:core/v1:ResourceQuota team-quota: spec.hard.requests.cpu: should be at least"
        in line
        for line in shown
    ), shown
    assert any("requests.nvidia.com/gpu: 0" in line for line in shown), shown
