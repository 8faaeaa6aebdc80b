"""`mlops:cluster`: which EKS cluster the team's workloads land on."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from components.config.base import ConfigModel, Secret

CLUSTER_OUTPUTS = {
    "name": "clusterName",
    "kubeconfig": "kubeconfig",
    "oidc_provider_arn": "oidcProviderArn",
    "oidc_provider_url": "oidcProviderUrl",
    "vpc_id": "vpcId",
    "private_subnet_ids": "privateSubnetIds",
    "node_security_group_id": "nodeSecurityGroupId",
}
"""What a platform stack exports (platform/__main__.py) and a team stack reads
(components/cluster.py): the cluster's field -> the stack output's name. One definition."""
STACK_REFERENCE_OUTPUTS = tuple(CLUSTER_OUTPUTS.values())
"""What a platform stack must export for team stacks to reference it."""

STACK_REFERENCE = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
CLUSTER_NAME = r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$"
OIDC_PROVIDER_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+$"
OIDC_ISSUER = r"^(https://)?oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/[A-F0-9]+$"
VPC_ID = r"^vpc-[0-9a-f]{8,17}$"
SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
SECURITY_GROUP_ID = r"^sg-[0-9a-f]{8,17}$"


class StackReferenceCluster(ConfigModel):
    stack_reference: Annotated[str, Field(pattern=STACK_REFERENCE)]
    """The platform stack, `<org>/<project>/<stack>`, that exports the cluster outputs."""


class ExplicitCluster(ConfigModel):
    name: Annotated[str, Field(pattern=CLUSTER_NAME)]
    """EKS cluster name."""
    kubeconfig: Secret
    oidc_provider_arn: Annotated[str, Field(pattern=OIDC_PROVIDER_ARN)]
    oidc_provider_url: Annotated[str, Field(pattern=OIDC_ISSUER)]
    vpc_id: Annotated[str, Field(pattern=VPC_ID)]
    private_subnet_ids: Annotated[
        list[Annotated[str, Field(pattern=SUBNET_ID)]], Field(min_length=2)
    ]
    """At least two, in different availability zones."""
    node_security_group_id: Annotated[str, Field(pattern=SECURITY_GROUP_ID)]


def _cluster_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "stackReference" in value:
            return "stackReference"
        explicit = ExplicitCluster.model_fields
        return "explicit" if any(f.alias in value for f in explicit.values()) else None
    if isinstance(value, StackReferenceCluster):
        return "stackReference"
    return "explicit" if isinstance(value, ExplicitCluster) else None


Cluster = Annotated[
    Annotated[StackReferenceCluster, Tag("stackReference")]
    | Annotated[ExplicitCluster, Tag("explicit")],
    Discriminator(
        _cluster_kind,
        custom_error_type="cluster",
        custom_error_message="either {stackReference: <org>/<project>/<stack>} or the cluster's values "
        "(name, kubeconfig, oidcProviderArn, oidcProviderUrl, vpcId, privateSubnetIds, nodeSecurityGroupId)",
    ),
]
