"""`mlops:network:TeamNetwork`: the team namespace's NetworkPolicies.

Teams share a cluster, so the namespace starts closed (default deny, ingress and egress) and
each flow the workloads need is opened on its own, by one policy that says why:

| policy | pods | flow |
|---|---|---|
| default-deny | all | nothing in, nothing out |
| dns | all | out to CoreDNS in kube-system, port 53 |
| aws-apis | all | out to port 443 (S3, DynamoDB, STS, CloudWatch, Secrets Manager, KMS) |
| in-namespace | all | out to the MLflow server and the serving pods of the same namespace |
| model-registry | MLflow | in from the team's own pods only and, with a SageMaker endpoint, its internal load balancer's subnets, port 5000 |
| database | the database clients (`mlops.dev/database-client`: the bootstrap Job, MLflow, and with a SQL Feast registry every pod that opens Feast) | out to the database subnets, 5432 |
| serving-<endpoint> | the endpoint's pods | in from the team's pods, the monitoring namespace's scraper and (with an ingress) the load balancer's subnets, port 8080 |

The kubelet's probes come from the node, which NetworkPolicy never blocks. The rehearsal
(`mlops rehearse`, podman) runs no NetworkPolicy at all: isolation is proven by
tests/components/test_network.py evaluating these policies, not by the rehearsal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config.network import NetworkConfig
from components.config.serving import BatchEndpoint, RealtimeEndpoint
from components.database import DATABASE_CLIENT_LABEL
from components.registry import POSTGRES_PORT, SERVER_NAME, TRACKING_PORT
from components.serving import HTTP_PORT
from components.serving import selector as serving_selector
from components.team import ClusterInfo, Team

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace (its name): what a namespaceSelector can rely on."""
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
"""CoreDNS's pods on EKS (the add-on keeps the kube-dns label)."""
DNS_PORT = 53
HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
"""AWS's public API endpoints (and VPC interface endpoints): no narrower range is stable."""
SERVING_COMPONENT = {"app.kubernetes.io/component": "serving"}
"""Every real-time endpoint's pods (serving.selector without the endpoint name)."""


# --- planning arithmetic: plain data ------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """A real-time endpoint, and whether a load balancer reaches it (an ingress)."""

    name: str
    load_balanced: bool


def exposures(endpoints: Sequence[RealtimeEndpoint | BatchEndpoint]) -> list[Exposure]:
    return [
        Exposure(e.name, e.ingress is not None)
        for e in endpoints
        # A SageMaker endpoint has no pod in the namespace to admit traffic to.
        if isinstance(e, RealtimeEndpoint) and not e.on_sagemaker
    ]


def registry_selector(team: str) -> dict[str, str]:
    """The MLflow server's pods (its Deployment's selector)."""
    return {"app.kubernetes.io/name": SERVER_NAME, "mlops.dev/team": team}


def _pods(labels: Mapping[str, str] | None = None) -> k8s.meta.v1.LabelSelectorArgs:
    """A pod selector: these labels, or (None) every pod."""
    return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels) if labels else None)


def _tcp(port: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
    return k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")


def _cidrs(cidrs: Sequence[pulumi.Input[str]]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c))
        for c in cidrs
    ]


def _namespace(name: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: name})


SAME_NAMESPACE = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=_pods())
"""Every pod of the policy's own namespace (a podSelector alone never leaves it)."""


def team_policies(
    *,
    team: str,
    monitoring_namespace: str,
    endpoints: Sequence[Exposure],
    load_balancer_cidrs: Sequence[pulumi.Input[str]],
    database_cidrs: Sequence[pulumi.Input[str]],
    registry_load_balanced: bool = False,
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Policy name -> spec: default deny, then each flow the team's workloads need.

    The database flow is the database clients' (`DATABASE_CLIENT_LABEL`, which the pods that
    log in wear); the database's security group admits the same pods (security groups for pods).

    ``registry_load_balanced``: MLflow is behind an internal NLB for SageMaker variants (which
    the NLB's own security group admits alone); the pods see the NLB's subnets as source.
    """
    spec = k8s.networking.v1.NetworkPolicySpecArgs
    ingress = k8s.networking.v1.NetworkPolicyIngressRuleArgs
    egress = k8s.networking.v1.NetworkPolicyEgressRuleArgs
    peer = k8s.networking.v1.NetworkPolicyPeerArgs
    policies = {
        "default-deny": spec(pod_selector=_pods(), policy_types=["Ingress", "Egress"]),
        "dns": spec(
            pod_selector=_pods(),
            policy_types=["Egress"],
            egress=[
                egress(
                    to=[
                        peer(
                            namespace_selector=_namespace(DNS_NAMESPACE),
                            pod_selector=_pods(DNS_POD_LABELS),
                        )
                    ],
                    ports=[
                        k8s.networking.v1.NetworkPolicyPortArgs(port=DNS_PORT, protocol=protocol)
                        for protocol in ("UDP", "TCP")
                    ],
                )
            ],
        ),
        "aws-apis": spec(
            pod_selector=_pods(),
            policy_types=["Egress"],
            egress=[egress(to=_cidrs([ANYWHERE]), ports=[_tcp(HTTPS_PORT)])],
        ),
        "in-namespace": spec(
            pod_selector=_pods(),
            policy_types=["Egress"],
            egress=[
                egress(
                    to=[peer(pod_selector=_pods(registry_selector(team)))],
                    ports=[_tcp(TRACKING_PORT)],
                ),
                egress(to=[peer(pod_selector=_pods(SERVING_COMPONENT))], ports=[_tcp(HTTP_PORT)]),
            ],
        ),
        "model-registry": spec(
            pod_selector=_pods(registry_selector(team)),
            policy_types=["Ingress"],
            ingress=[
                ingress(
                    from_=[
                        SAME_NAMESPACE,
                        *(_cidrs(load_balancer_cidrs) if registry_load_balanced else []),
                    ],
                    ports=[_tcp(TRACKING_PORT)],
                )
            ],
        ),
        "database": spec(
            pod_selector=_pods(DATABASE_CLIENT_LABEL),
            policy_types=["Egress"],
            egress=[egress(to=_cidrs(database_cidrs), ports=[_tcp(POSTGRES_PORT)])],
        ),
    }
    for endpoint in endpoints:
        sources = [SAME_NAMESPACE, peer(namespace_selector=_namespace(monitoring_namespace))]
        if endpoint.load_balanced:
            sources += _cidrs(load_balancer_cidrs)
        policies[f"serving-{endpoint.name}"] = spec(
            pod_selector=_pods(serving_selector(endpoint.name)),
            policy_types=["Ingress"],
            ingress=[ingress(from_=sources, ports=[_tcp(HTTP_PORT)])],
        )
    return policies


# --- the component ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TeamNetworkArgs:
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team namespace (pass the TeamNamespace output so the policies wait for it)."""
    config: NetworkConfig
    endpoints: Sequence[RealtimeEndpoint | BatchEndpoint]


class TeamNetwork(pulumi.ComponentResource):
    """The namespace's NetworkPolicies: closed by default, each needed flow opened by name."""

    policies: list[str]
    """Names of the NetworkPolicies, default-deny first."""

    def __init__(
        self, name: str, args: TeamNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:network:TeamNetwork", name, None, opts)
        team, config = args.team, args.config
        endpoints = exposures(args.endpoints)
        # MLflow behind an internal NLB for the SageMaker variants (components/registry.py).
        registry_load_balanced = any(
            isinstance(e, RealtimeEndpoint) and e.on_sagemaker for e in args.endpoints
        )
        load_balanced = registry_load_balanced or any(e.load_balanced for e in endpoints)

        # Unset CIDRs default to the VPC's block (read only when a policy needs it).
        lb_cidrs: list[pulumi.Input[str]] = list(config.load_balancer_subnet_cidrs)
        db_cidrs: list[pulumi.Input[str]] = list(config.database_subnet_cidrs)
        if (load_balanced and not lb_cidrs) or not db_cidrs:
            vpc = aws.ec2.get_vpc_output(
                id=args.cluster.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            lb_cidrs = lb_cidrs or [vpc.cidr_block]
            db_cidrs = db_cidrs or [vpc.cidr_block]
        policies = team_policies(
            team=team.name,
            monitoring_namespace=config.monitoring_namespace,
            endpoints=endpoints,
            load_balancer_cidrs=lb_cidrs,
            database_cidrs=db_cidrs,
            registry_load_balanced=registry_load_balanced,
        )
        self.policies = list(policies)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        for policy, spec in policies.items():
            # One flow (or the default deny) per policy: `kubectl get netpol` reads as the table above.
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=policy, namespace=args.namespace, labels=team.labels
                ),
                spec=spec,
                opts=k8s_opts,
            )
        self.register_outputs({"policies": self.policies})
