"""Kubernetes Ingresses and load-balanced Services on the AWS Load Balancer Controller: TLS only,
authenticated when public; an NLB internal, with ip targets and a security group of its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policy.rules.properties import dig, is_prod, known
from policy.rules.registry import Context, resource_rule

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
ALB = "alb.ingress.kubernetes.io/"
MODERN_TLS_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    }
)
"""TLS 1.2+ with forward secrecy (AWS's TLS13 policies)."""


def _alb_annotations(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ALB controller's annotations of an ALB Ingress; None for another class."""
    if dig(props, "spec.ingressClassName") not in ("alb", None):
        return None
    annotations = dig(props, "metadata.annotations")
    return annotations if isinstance(annotations, Mapping) else {}


def _ports(annotations: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = annotations.get(f"{ALB}listen-ports")
    try:
        ports = json.loads(raw) if isinstance(raw, str) and known(raw) else [{"HTTP": 80}]
    except ValueError:
        return []
    return [p for p in ports if isinstance(p, Mapping)] if isinstance(ports, list) else []


@resource_rule(
    "k8s-ingress-tls",
    "ALB Ingresses serve HTTPS with a certificate and a modern TLS policy; HTTP only redirects.",
    INGRESS,
)
def k8s_ingress_tls(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    annotations = _alb_annotations(props)
    if annotations is None:
        return []
    ports = _ports(annotations)
    found = []
    if not any("HTTPS" in p for p in ports):
        found.append(
            f'listen only on HTTPS: {ALB}listen-ports [{{"HTTPS": 443}}] (and HTTP 80 to redirect)'
        )
    if not annotations.get(f"{ALB}certificate-arn"):
        found.append(f"set {ALB}certificate-arn (the ACM certificate of the host)")
    if any("HTTP" in p for p in ports) and not annotations.get(f"{ALB}ssl-redirect"):
        found.append(f"HTTP is served, not redirected: set {ALB}ssl-redirect: '443'")
    policy = annotations.get(f"{ALB}ssl-policy")
    if known(policy) and policy not in MODERN_TLS_POLICIES:
        found.append(
            f"{ALB}ssl-policy is {policy or 'unset (the 2016 default, TLS 1.0)'}: use "
            "ELBSecurityPolicy-TLS13-1-2-2021-06"
        )
    return found


@resource_rule(
    "k8s-ingress-public-authenticated-prod",
    "A prod ALB Ingress that faces the internet authenticates users (OIDC or Cognito) first.",
    INGRESS,
)
def k8s_ingress_public_authenticated_prod(
    type_: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    annotations = _alb_annotations(props)
    if annotations is None or not is_prod(props, ctx.stack):
        return []
    if annotations.get(f"{ALB}scheme") != "internet-facing":
        return []
    if annotations.get(f"{ALB}auth-type") in ("oidc", "cognito"):
        return []
    return [
        "internet-facing in prod without an authenticator: set the endpoint's "
        "ingress.authentication (OIDC or Cognito), or make it internal"
    ]


SERVICE = "kubernetes:core/v1:Service"
NLB = "service.beta.kubernetes.io/aws-load-balancer-"


@resource_rule(
    "k8s-load-balancer-service-internal",
    "A Service of type LoadBalancer is an internal NLB of the AWS Load Balancer Controller with "
    "ip targets and a security group of its own (which says who may connect), not the VPC-wide "
    "default.",
    SERVICE,
)
def k8s_load_balancer_service_internal(
    type_: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    if dig(props, "spec.type") != "LoadBalancer":
        return []
    raw = dig(props, "metadata.annotations")
    annotations: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    problems = []
    if annotations.get(f"{NLB}type") != "external":
        problems.append(
            f"not the AWS Load Balancer Controller's ({NLB}type: external): the in-tree "
            "controller makes a Classic ELB open to the VPC"
        )
    if annotations.get(f"{NLB}scheme") != "internal":
        problems.append(f"not internal ({NLB}scheme: internal)")
    if annotations.get(f"{NLB}nlb-target-type") != "ip":
        problems.append(
            f"instance targets open a node port on every node ({NLB}nlb-target-type: ip)"
        )
    if not annotations.get(f"{NLB}security-groups"):
        problems.append(
            f"no security group of its own ({NLB}security-groups): the controller's default "
            "admits the whole VPC"
        )
    return problems
