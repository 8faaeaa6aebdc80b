"""The team namespace's NetworkPolicies, judged by what they let through, not by their YAML.

The planned policies are evaluated (tooling.netpol) over the planned workloads' pod labels and
namespaces: every flow the runtime needs is allowed, anything else is not, and another team's
pod reaches neither the MLflow server nor a serving endpoint, even wearing the team's labels.
Run with `-s` to see each stack's flow matrix.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.config.featurestore import SqlRegistry
from components.config.serving import RealtimeEndpoint
from components.network import DNS_POD_LABELS, registry_selector
from components.registry import POSTGRES_PORT, TRACKING_PORT
from components.serving import HTTP_PORT
from tests.components._data_plane_helpers import stack_config
from tests.conftest import planned
from tooling.manifests import manifests
from tooling.mocks import VPC_CIDR
from tooling.netpol import (
    Cluster,
    External,
    Peer,
    Pod,
    namespaces_of,
    policies_of,
    selects,
    workload_pods,
)
from tooling.plan import plan_stack

AWS_API = External("s3.eu-west-1.amazonaws.com", "52.218.0.10")
INTERNET = External("example.org", "93.184.215.14")
ALLOW, DENY = "allow", "deny"
POD_SUBNET = "10.0.0.0/19"
"""Where pods of a stack with the VPC-wide defaults get addresses (the first private subnet)."""


@dataclass(frozen=True)
class Flow:
    source: Peer
    destination: Peer
    port: int
    protocol: str
    expected: str
    why: str


def last_host(cidr: str, before: int = 0) -> str:
    return str(ipaddress.ip_network(cidr).broadcast_address - 1 - before)


def addresses(cidr: str) -> Iterator[str]:
    """Pod addresses: the VPC CNI gives pods VPC addresses (here the first private subnet)."""
    return (str(a) for a in ipaddress.ip_network(cidr).hosts())


def cluster_of(stack: str) -> tuple[Cluster, list[Pod], dict[str, Pod | External]]:
    """The stack's planned policies and pods, in a cluster with the others it shares."""
    config = stack_config(stack)
    objects = manifests(planned(stack))
    team_namespace = next(iter(namespaces_of(objects)))
    monitoring = config.network.monitoring_namespace
    ips = addresses((config.network.database_subnet_cidrs or [POD_SUBNET])[0])
    pods = workload_pods(objects, ips)
    assert pods and all(p.namespace == team_namespace for p in pods)
    by_name = {p.name: p for p in pods}
    mlflow = next(
        p for p in pods if selects({"matchLabels": registry_selector(config.team)}, p.labels)
    )
    lb_cidr = (config.network.load_balancer_subnet_cidrs or [VPC_CIDR])[0]
    db_cidr = (config.network.database_subnet_cidrs or [VPC_CIDR])[0]
    others: dict[str, Pod | External] = {
        "mlflow": mlflow,
        "dns": Pod("coredns", "kube-system", DNS_POD_LABELS, next(ips), {"dns": (53, "UDP")}),
        "prometheus": Pod("prometheus", monitoring, {"app": "prometheus"}, next(ips)),
        # Another team's pod wearing this team's labels: selectors never leave a namespace.
        "intruder": Pod("intruder", "ml-intruder", dict(mlflow.labels), next(ips)),
        "load-balancer": External("alb", last_host(lb_cidr)),
        "database": External("postgres", last_host(db_cidr, 1)),
    }
    cluster = Cluster(
        policies_of(objects),
        {**namespaces_of(objects), "kube-system": {}, monitoring: {}, "ml-intruder": {}},
    )
    return cluster, list(by_name.values()), others


def expected_flows(stack: str) -> list[Flow]:
    """Every flow the runtime needs (allow), and the ones isolation forbids (deny)."""
    config = stack_config(stack)
    _, pods, other = cluster_of(stack)
    mlflow, intruder = other["mlflow"], other["intruder"]
    sql_registry = isinstance(config.feature_store.registry, SqlRegistry)
    realtime = [
        e
        for e in config.serving.endpoints
        if isinstance(e, RealtimeEndpoint) and not e.on_sagemaker  # SageMaker: no pod here
    ]
    serving = {e.name: next(p for p in pods if p.name == f"Deployment/{e.name}") for e in realtime}
    on_sagemaker = any(
        isinstance(e, RealtimeEndpoint) and e.on_sagemaker for e in config.serving.endpoints
    )
    flows = []
    for pod in pods:
        flows += [
            Flow(pod, other["dns"], 53, "UDP", ALLOW, "names"),
            Flow(pod, AWS_API, 443, "TCP", ALLOW, "AWS APIs over TLS"),
            Flow(pod, INTERNET, 80, "TCP", DENY, "nothing else leaves"),
            Flow(pod, intruder, HTTP_PORT, "TCP", DENY, "no other team's pods"),
        ]
        if pod != mlflow:
            flows.append(Flow(pod, mlflow, TRACKING_PORT, "TCP", ALLOW, "the registry"))
        logs_in = (
            pod == mlflow
            or pod.name == "Job/database-bootstrap"
            or (sql_registry and "db-credentials" in _init_names(stack, pod))
        )
        flows.append(
            Flow(
                pod,
                other["database"],
                POSTGRES_PORT,
                "TCP",
                ALLOW if logs_in else DENY,
                "database login" if logs_in else "no database login",
            )
        )
    flows += [
        Flow(intruder, mlflow, TRACKING_PORT, "TCP", DENY, "another team's pod"),
        Flow(other["prometheus"], mlflow, TRACKING_PORT, "TCP", DENY, "not the team's"),
        Flow(
            other["load-balancer"],
            mlflow,
            TRACKING_PORT,
            "TCP",
            ALLOW if on_sagemaker else DENY,
            "its NLB, for SageMaker variants" if on_sagemaker else "not exposed",
        ),
    ]
    for endpoint in realtime:
        pod = serving[endpoint.name]
        client = next(p for p in pods if p != pod)
        exposed = endpoint.ingress is not None
        flows += [
            Flow(client, pod, HTTP_PORT, "TCP", ALLOW, "the team's callers"),
            Flow(other["prometheus"], pod, HTTP_PORT, "TCP", ALLOW, "metrics scraping"),
            Flow(
                other["load-balancer"],
                pod,
                HTTP_PORT,
                "TCP",
                ALLOW if exposed else DENY,
                "its ingress" if exposed else "no ingress",
            ),
            Flow(intruder, pod, HTTP_PORT, "TCP", DENY, "another team's pod"),
            Flow(other["prometheus"], pod, TRACKING_PORT, "TCP", DENY, "only the serving port"),
        ]
    return flows


def _init_names(stack: str, pod: Pod) -> set[str]:
    kind, name = pod.name.split("/", 1)
    for obj in manifests(planned(stack)):
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            spec = (
                obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                if kind == "CronJob"
                else obj["spec"]["template"]["spec"]
            )
            return {c["name"] for c in spec.get("initContainers") or []}
    return set()


def test_the_flow_matrix(example_stack: str) -> None:
    cluster, _, _ = cluster_of(example_stack)
    wrong = []
    print(f"\n{example_stack}: who may talk to whom")
    for flow in expected_flows(example_stack):
        ok, why = cluster.explain(flow.source, flow.destination, flow.port, flow.protocol)
        actual = ALLOW if ok else DENY
        mark = "  " if actual == flow.expected else "!!"
        print(
            f"{mark} {actual:5} {flow.source!s:48} -> {flow.destination!s:40} "
            f"{flow.port}/{flow.protocol:3}  {flow.why}; {why}"
        )
        if actual != flow.expected:
            wrong.append(f"{flow.source} -> {flow.destination}:{flow.port} is {actual}: {why}")
    assert wrong == []


def test_the_namespace_is_closed_by_default(example_stack: str) -> None:
    objects = manifests(planned(example_stack))
    (deny,) = [p for p in policies_of(objects) if p.name == "default-deny"]
    assert deny.spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert {p.namespace for p in policies_of(objects)} == set(namespaces_of(objects))


def test_a_pod_no_policy_knows_is_shut_out_both_ways(example_stack: str) -> None:
    cluster, _, other = cluster_of(example_stack)
    stray = Pod("debug", other["mlflow"].namespace, {"run": "debug"}, "10.0.255.1")  # type: ignore[union-attr]
    assert not cluster.allowed(stray, INTERNET, 80)
    assert not cluster.allowed(other["intruder"], stray, 8080)
    # What every pod of the namespace gets: names and the AWS APIs, and the registry.
    assert cluster.allowed(stray, other["dns"], 53, "UDP")
    assert cluster.allowed(stray, other["mlflow"], TRACKING_PORT)


EXPOSED_DEV = """\
config:
  aws:region: eu-west-1
  mlops:team: fraud
  mlops:environment: dev
  mlops:cluster: {stackReference: acme/mlops-platform/dev}
  mlops:serving:
    externalModels: [fraud-model]
    endpoints:
      - name: scorer
        model: fraud-model
        ingress:
          host: scorer.example.com
          certificateArn: arn:aws:acm:eu-west-1:123456789012:certificate/5f0c2b8e-8d3a-4c51-9f0e-2b7d6a1c4e93
"""


@pytest.mark.parametrize(
    ("lb_cidrs", "intruder_admitted"),
    [
        pytest.param(None, True, id="default-the-vpc"),
        pytest.param(["10.0.250.0/24"], False, id="load-balancer-subnets"),
    ],
)
def test_the_load_balancer_is_admitted_by_its_subnets(
    tmp_path: Path, lb_cidrs: list[str] | None, intruder_admitted: bool
) -> None:
    """Why prod must name the load balancer's subnets: the VPC-wide default admits pods too."""
    text = EXPOSED_DEV
    if lb_cidrs:
        text += f"  mlops:network: {{loadBalancerSubnetCidrs: [{', '.join(lb_cidrs)}]}}\n"
    file = tmp_path / "stacks" / "Pulumi.fraud-dev.yaml"
    file.parent.mkdir()
    file.write_text(text)
    objects = manifests(plan_stack(file))
    cluster = Cluster(policies_of(objects), namespaces_of(objects))
    pods = workload_pods(objects, addresses(POD_SUBNET))
    (scorer,) = [p for p in pods if p.name == "Deployment/scorer"]
    intruder = Pod("intruder", "ml-other", {}, "10.0.3.3")
    balancer = External("alb", last_host((lb_cidrs or [VPC_CIDR])[0]))
    assert cluster.allowed(balancer, scorer, HTTP_PORT)
    assert cluster.allowed(intruder, scorer, HTTP_PORT) is intruder_admitted


def test_pods_are_addressed_in_order() -> None:
    assert list(itertools.islice(addresses("10.0.0.0/30"), 2)) == ["10.0.0.1", "10.0.0.2"]
