"""The platform: EKS, its nodes and its network."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.kms import TEAM_NAMESPACE, key_policy_findings
from policy.rules.properties import (
    UNKNOWN,
    as_list,
    dig,
    is_off,
    is_prod,
    is_true,
    known,
)
from policy.rules.registry import Context, Resource, resource_rule, stack_rule

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_ADDON = "aws:eks/addon:Addon"
EKS_ACCESS_TYPES = frozenset(
    {"aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"}
)
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
REQUIRED_CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[^*?]+$")


@resource_rule(
    "eks-secrets-encryption",
    "EKS clusters envelope-encrypt Kubernetes secrets with a KMS key.",
    EKS_CLUSTER,
)
def eks_secrets_encryption(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    config = props.get("encryptionConfig")
    if config == UNKNOWN:
        return []
    if "secrets" not in as_list(dig(config, "resources")) or not dig(config, "provider.keyArn"):
        return ["set encryptionConfig {resources: [secrets], provider: {keyArn: <KMS key>}}"]
    return []


@stack_rule(
    "eks-secrets-key-policy-names-administrators",
    "The platform's KMS key (the cluster's secrets key) has a key policy naming who administers "
    "it (platform:keyAdministrators, required in prod); no account-wide use (the default "
    "policy's root kms:*).",
)
def eks_secrets_key_policy_names_administrators(
    resources: Sequence[Resource], stack: str
) -> list[tuple[str, str]]:
    if any(r.type == TEAM_NAMESPACE for r in resources) or not any(
        r.type == EKS_CLUSTER for r in resources
    ):
        return []  # not a platform stack: a team's keys have their own rule (rules/kms.py)
    return key_policy_findings(
        resources,
        stack,
        naming="platform:keyAdministrators and the cluster role",
        setting="platform:keyAdministrators",
    )


@resource_rule(
    "eks-private-endpoint",
    "The Kubernetes API is reachable privately; in prod not from the whole internet.",
    EKS_CLUSTER,
)
def eks_private_endpoint(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    vpc = props.get("vpcConfig")
    if not isinstance(vpc, Mapping):
        return []
    found = []
    if is_off(vpc.get("endpointPrivateAccess")):
        found.append(
            "set vpcConfig.endpointPrivateAccess: true (nodes reach the API inside the VPC)"
        )
    public = vpc.get("endpointPublicAccess")
    cidrs = vpc.get("publicAccessCidrs")
    # EKS's defaults: public access on, from anywhere.
    if is_prod(props, ctx.stack) and (public is None or is_true(public)) and cidrs != UNKNOWN:
        open_to = [c for c in as_list(cidrs) if c in OPEN_CIDRS] or ([] if cidrs else ["0.0.0.0/0"])
        if open_to:
            found.append(
                f"the prod API is public to {', '.join(open_to)}: set vpcConfig.endpointPublicAccess "
                "false, or publicAccessCidrs to the networks that need it"
            )
    return found


@resource_rule(
    "eks-control-plane-logs",
    f"EKS clusters send the {', '.join(REQUIRED_CONTROL_PLANE_LOGS)} control-plane logs to CloudWatch.",
    EKS_CLUSTER,
)
def eks_control_plane_logs(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    logs = props.get("enabledClusterLogTypes")
    if logs == UNKNOWN:
        return []
    missing = [kind for kind in REQUIRED_CONTROL_PLANE_LOGS if kind not in as_list(logs)]
    if missing:
        return [f"add {', '.join(missing)} to enabledClusterLogTypes"]
    return []


@resource_rule(
    "eks-access-entries-only",
    "EKS access comes from access entries only, none for whoever created the cluster.",
    EKS_CLUSTER,
)
def eks_access_entries_only(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    if dig(props, "accessConfig.authenticationMode") != "API":
        found.append("set accessConfig.authenticationMode: API (no aws-auth ConfigMap)")
    if dig(props, "accessConfig.bootstrapClusterCreatorAdminPermissions") is not False:
        found.append(
            "set accessConfig.bootstrapClusterCreatorAdminPermissions: false (access must not "
            "depend on who ran `pulumi up`; name admins in access entries)"
        )
    return found


@resource_rule(
    "eks-access-entry-named-principal",
    "EKS access entries name one IAM role or user, never a wildcard.",
    *EKS_ACCESS_TYPES,
)
def eks_access_entry_named_principal(
    type_: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    principal = props.get("principalArn")
    if not known(principal) or (isinstance(principal, str) and _PRINCIPAL.match(principal)):
        return []
    return [f"principalArn {principal!r} is not one IAM role or user ARN: name the principal"]


@resource_rule(
    "eks-addon-version-pinned",
    "EKS add-ons run a pinned version (not whatever EKS picks when created).",
    EKS_ADDON,
)
def eks_addon_version_pinned(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("addonVersion"):
        return [
            f"set addonVersion for {props.get('addonName')!r} (aws eks describe-addon-versions)"
        ]
    return []


@resource_rule(
    "ec2-imdsv2-hop-limit",
    "Instances require IMDSv2 with a hop limit of 1: pods cannot take the node's role.",
    LAUNCH_TEMPLATE,
    EC2_INSTANCE,
)
def ec2_imdsv2_hop_limit(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    options = props.get("metadataOptions")
    options = options if isinstance(options, Mapping) else {}
    found = []
    if options.get("httpTokens") != "required":
        found.append("set metadataOptions.httpTokens: required (IMDSv2 only)")
    hops = options.get("httpPutResponseHopLimit")
    if hops is None or (known(hops) and float(hops) > 1):
        found.append(
            f"metadataOptions.httpPutResponseHopLimit is {hops or 'unset (2 on EKS AMIs)'}: set 1"
        )
    return found


@resource_rule(
    "ec2-subnet-no-public-ip",
    "Subnets do not give instances a public IP address.",
    SUBNET,
)
def ec2_subnet_no_public_ip(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_true(props.get("mapPublicIpOnLaunch")):
        return ["mapPublicIpOnLaunch is true: instances go in private subnets, behind NAT"]
    return []


@resource_rule(
    "cloudwatch-log-retention",
    "CloudWatch log groups expire their logs (a retention period is set).",
    LOG_GROUP,
)
def cloudwatch_log_retention(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("retentionInDays"):
        return ["set retentionInDays: without it the logs are kept (and paid for) forever"]
    return []


@stack_rule(
    "nat-gateway-per-zone-prod",
    "Prod VPCs have a NAT gateway in every zone with private subnets.",
)
def nat_gateway_per_zone_prod(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    # Public subnets carry the load balancers (kubernetes.io/role/elb); the rest reach out via NAT.
    private = [
        r
        for r in resources
        if r.type == SUBNET and "kubernetes.io/role/elb" not in (dig(r.props, "tags") or {})
    ]
    zones = {dig(r.props, "availabilityZone") for r in private}
    nats = [r for r in resources if r.type == NAT_GATEWAY]
    if not private or not any(is_prod(r.props, stack) for r in private) or len(nats) >= len(zones):
        return []
    return [
        (
            nat.urn,
            f"{len(nats)} NAT gateway(s) for private subnets in {len(zones)} zones: one per zone, "
            "or a zone's outage cuts every zone off the internet",
        )
        for nat in nats or private[:1]
    ]
