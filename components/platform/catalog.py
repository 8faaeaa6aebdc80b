"""What EKS offers: Kubernetes versions and which add-on versions go with which.

AWS publishes no machine-readable list outside its API, so this is a small table, from the
Amazon EKS User Guide ("Kubernetes versions", and each add-on's "versions" table), as of
2025-10. Refresh it from `aws eks describe-addon-versions --kubernetes-version <v>` when EKS
releases a version. The rules below are what the tables follow, so a newer `-eksbuild.N` of a
known line passes without a refresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KUBERNETES_VERSIONS = ("1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34")
"""Versions EKS creates clusters at (standard and extended support)."""

ADDON_VERSION = re.compile(r"^v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-eksbuild\.\d+$")


@dataclass(frozen=True)
class AddonLine:
    """The versions of one add-on a Kubernetes version accepts."""

    name: str
    """The EKS add-on name (`aws eks describe-addon-versions --addon-name`)."""
    minors: dict[str, tuple[tuple[int, int], ...]]
    """Kubernetes version -> the (major, minor) lines of the add-on EKS offers for it."""
    latest: dict[str, str]
    """Kubernetes version -> the latest build the User Guide lists (what `validate` suggests)."""


def _same(versions: dict[str, str]) -> dict[str, tuple[tuple[int, int], ...]]:
    return {k: (_line(v),) for k, v in versions.items()}


def _line(version: str) -> tuple[int, int]:
    match = ADDON_VERSION.match(version)
    assert match, version
    return int(match["major"]), int(match["minor"])


_KUBE_PROXY = {
    "1.28": "v1.28.15-eksbuild.31",
    "1.29": "v1.29.15-eksbuild.16",
    "1.30": "v1.30.14-eksbuild.8",
    "1.31": "v1.31.13-eksbuild.2",
    "1.32": "v1.32.9-eksbuild.2",
    "1.33": "v1.33.5-eksbuild.2",
    "1.34": "v1.34.1-eksbuild.2",
}
_COREDNS = {
    "1.28": "v1.10.1-eksbuild.38",
    **dict.fromkeys(("1.29", "1.30", "1.31", "1.32"), "v1.11.4-eksbuild.24"),
    **dict.fromkeys(("1.33", "1.34"), "v1.12.4-eksbuild.1"),
}
# These three follow their own release lines, each build offered for every Kubernetes version.
_ANY_MINOR: tuple[tuple[int, int], ...] = ()
_VPC_CNI_LATEST = "v1.20.1-eksbuild.3"
_POD_IDENTITY_LATEST = "v1.3.7-eksbuild.2"
_EBS_CSI_LATEST = "v1.44.0-eksbuild.1"

VPC_CNI_NETWORK_POLICY_SINCE = (1, 14)
"""The first vpc-cni line that enforces NetworkPolicy (`enableNetworkPolicy`)."""

ADDONS: dict[str, AddonLine] = {
    "vpcCni": AddonLine(
        "vpc-cni",
        dict.fromkeys(KUBERNETES_VERSIONS, _ANY_MINOR),
        dict.fromkeys(KUBERNETES_VERSIONS, _VPC_CNI_LATEST),
    ),
    "coredns": AddonLine("coredns", _same(_COREDNS), _COREDNS),
    "kubeProxy": AddonLine("kube-proxy", _same(_KUBE_PROXY), _KUBE_PROXY),
    "podIdentityAgent": AddonLine(
        "eks-pod-identity-agent",
        dict.fromkeys(KUBERNETES_VERSIONS, _ANY_MINOR),
        dict.fromkeys(KUBERNETES_VERSIONS, _POD_IDENTITY_LATEST),
    ),
    "ebsCsiDriver": AddonLine(
        "aws-ebs-csi-driver",
        dict.fromkeys(KUBERNETES_VERSIONS, _ANY_MINOR),
        dict.fromkeys(KUBERNETES_VERSIONS, _EBS_CSI_LATEST),
    ),
}
"""Config key (`platform:addons.<key>`) -> the add-on."""


def addon_problem(key: str, version: str, kubernetes: str) -> str | None:
    """Why EKS would refuse add-on ``key`` at ``version`` on ``kubernetes``; None if it fits."""
    line = ADDONS[key]
    match = ADDON_VERSION.match(version)
    if match is None:
        return f"an EKS add-on version such as {line.latest[kubernetes]!r} (v<x.y.z>-eksbuild.<n>)"
    minors = line.minors[kubernetes]
    found = (int(match["major"]), int(match["minor"]))
    if key == "vpcCni" and found < VPC_CNI_NETWORK_POLICY_SINCE:
        return (
            f"v{'.'.join(map(str, VPC_CNI_NETWORK_POLICY_SINCE))} or later: team namespaces rely on "
            f"NetworkPolicy enforcement (latest: {line.latest[kubernetes]!r})"
        )
    if minors and found not in minors:
        offered = ", ".join(f"v{a}.{b}.x" for a, b in minors)
        return (
            f"a {line.name} version EKS offers for Kubernetes {kubernetes} ({offered}; "
            f"latest: {line.latest[kubernetes]!r})"
        )
    return None


CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
"""Cluster Autoscaler releases one minor per Kubernetes minor; use the one that matches."""
CLUSTER_AUTOSCALER_TAGS = {
    "1.28": "v1.28.7",
    "1.29": "v1.29.5",
    "1.30": "v1.30.5",
    "1.31": "v1.31.3",
    "1.32": "v1.32.2",
    "1.33": "v1.33.1",
    "1.34": "v1.34.1",
}
LOAD_BALANCER_CONTROLLER_IMAGE = "public.ecr.aws/eks/aws-load-balancer-controller:v2.13.4"
"""The AWS Load Balancer Controller supports every Kubernetes version EKS offers."""
