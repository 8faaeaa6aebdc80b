"""The platform's typed config: the `platform:` namespace of `platform/stacks/Pulumi.<env>.yaml`.

Same rules as the team config (components/config): camelCase keys, unknown keys refused,
environment presets (dev cheap, prod safe), every problem reported at once with file, key path,
value and what is allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field

from components import aws_values
from components.config.base import (
    Cidr,
    ConfigModel,
    Environment,
    Presets,
    PrincipalArn,
    Tags,
)
from components.config.cost import Budget, Usage
from components.config.loading import (
    ConfigError,
    Issue,
    Namespace,
    read_stack_document,
    stack_name_of,
    validate_namespace,
)
from components.config.rules import Problem
from components.platform import catalog, layout

NAMESPACE = "platform"


KUBERNETES_VERSION = r"^1\.\d{2}$"
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
"""The retention periods CloudWatch Logs accepts."""
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
"""The system node group's AMI: its instance types must be x86_64 without accelerators."""


class NetworkConfig(ConfigModel):
    """The VPC: public and private subnets in each zone, NAT, gateway endpoints."""

    __presets__: ClassVar[Presets] = {
        Environment.dev: {"zones": 2, "natGatewayPerZone": False},
        Environment.staging: {"zones": 2, "natGatewayPerZone": False},
        Environment.prod: {"zones": 3, "natGatewayPerZone": True},
    }

    cidr: Cidr = "10.0.0.0/16"
    """The VPC's CIDR block (/16 to /28)."""
    zones: Annotated[int, Field(ge=1, le=6)] = 2
    """How many availability zones (the region's first, by letter): 2 in dev, 3 in prod."""
    availability_zones: list[
        Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")]
    ] = []
    """Explicit zone names instead (e.g. [eu-west-1a, eu-west-1c]); overrides `zones`."""
    private_subnet_prefix: Annotated[int, Field(ge=16, le=28)] = 19
    """Size of each private subnet (nodes and pods), as a prefix length."""
    public_subnet_prefix: Annotated[int, Field(ge=16, le=28)] = 24
    """Size of each public subnet (load balancers, NAT), as a prefix length."""
    private_subnet_cidrs: list[Cidr] = []
    """Explicit private subnets, one per zone in order; instead of the computed layout."""
    public_subnet_cidrs: list[Cidr] = []
    """Explicit public subnets, one per zone in order; instead of the computed layout."""
    nat_gateway_per_zone: bool = False
    """A NAT gateway in every zone (prod: a zone's outage cuts only that zone off), or one."""


class EndpointConfig(ConfigModel):
    """Who reaches the Kubernetes API: always privately from the VPC, publicly only if set."""

    __presets__: ClassVar[Presets] = {
        Environment.dev: {"publicAccess": True},
        Environment.staging: {"publicAccess": True},
        Environment.prod: {"publicAccess": False},
    }

    public_access: bool = False
    """A public API endpoint as well (off in prod unless limited by `publicAccessCidrs`)."""
    public_access_cidrs: list[Cidr] = []
    """Where the public endpoint may be reached from (empty: anywhere, refused in prod)."""


class AccessConfig(ConfigModel):
    """Access entries: who administers the cluster, independent of who ran `pulumi up`."""

    admins: list[PrincipalArn] = []
    """IAM roles/users with cluster-admin (AmazonEKSClusterAdminPolicy)."""
    deployers: list[PrincipalArn] = []
    """IAM roles that deploy team stacks (the CI deploy role): cluster-wide AmazonEKSAdminPolicy."""
    viewers: list[PrincipalArn] = []
    """IAM roles/users with read-only access (AmazonEKSViewPolicy)."""


class ClusterConfig(ConfigModel):
    """The EKS control plane."""

    __presets__: ClassVar[Presets] = {
        Environment.dev: {"logRetentionDays": 30, "deletionProtection": False},
        Environment.staging: {"logRetentionDays": 90, "deletionProtection": False},
        Environment.prod: {"logRetentionDays": 365, "deletionProtection": True},
    }

    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")] | None = None
    """EKS cluster name (default: mlops-<environment>)."""
    kubernetes_version: Annotated[str, Field(pattern=KUBERNETES_VERSION)]
    """Pinned Kubernetes minor, e.g. "1.33"; upgrading is a config change, one minor at a time."""
    endpoint: EndpointConfig = EndpointConfig()
    access: AccessConfig = AccessConfig()
    log_types: list[str] = list(CONTROL_PLANE_LOGS)
    """Control-plane logs sent to CloudWatch."""
    log_retention_days: int = 30
    """How long the control-plane log group keeps them (a CloudWatch retention period)."""
    service_cidr: Cidr = "172.20.0.0/16"
    """Kubernetes Service addresses: must not overlap the VPC."""
    deletion_protection: bool = False
    """EKS refuses to delete the cluster while set (on in prod)."""


class AddonsConfig(ConfigModel):
    """EKS add-on versions, pinned (`aws eks describe-addon-versions --kubernetes-version`)."""

    vpc_cni: str
    """vpc-cni (pod networking, NetworkPolicy enforcement)."""
    coredns: str
    kube_proxy: str
    pod_identity_agent: str
    """eks-pod-identity-agent."""
    ebs_csi_driver: str
    """aws-ebs-csi-driver (its own IRSA role)."""


class SystemNodesConfig(ConfigModel):
    """The node group for cluster services (CoreDNS, controllers): on-demand, AL2023."""

    __presets__: ClassVar[Presets] = {
        Environment.dev: {"minSize": 1, "maxSize": 3},
        Environment.staging: {"minSize": 2, "maxSize": 4},
        Environment.prod: {"minSize": 2, "maxSize": 6},
    }

    instance_types: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")]], Field(min_length=1)
    ] = ["m6i.large"]
    min_size: Annotated[int, Field(ge=1, le=100)] = 1
    max_size: Annotated[int, Field(ge=1, le=100)] = 3
    disk_gb: Annotated[int, Field(ge=20, le=16384)] = 50
    """Root volume (gp3, encrypted)."""


class ServicesConfig(ConfigModel):
    """Cluster services installed as plain Kubernetes objects, images pinned."""

    cluster_autoscaler_image: (
        Annotated[str, Field(pattern=r"^[^\s:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$")] | None
    ) = None
    """Default: registry.k8s.io/autoscaling/cluster-autoscaler at the Kubernetes minor's release."""
    load_balancer_controller_image: Annotated[
        str, Field(pattern=r"^[^\s:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$")
    ] = catalog.LOAD_BALANCER_CONTROLLER_IMAGE


class PlatformConfig(ConfigModel):
    """Everything a platform stack is built from. Keys are `platform:<field>` in the stack file."""

    environment: Environment
    """dev (cheap: 2 zones, one NAT), staging, or prod (3 zones, NAT per zone, private API)."""
    network: NetworkConfig = NetworkConfig()
    cluster: ClusterConfig
    addons: AddonsConfig
    system_nodes: SystemNodesConfig = SystemNodesConfig()
    services: ServicesConfig = ServicesConfig()
    key_administrators: list[PrincipalArn] = []
    """IAM roles/users that administer the cluster's secrets-encryption KMS key: include the role
    that runs `pulumi up`. They manage the key; only the cluster role uses it, and no IAM policy
    alone grants either. Required in prod (dev default: the account administers, via IAM)."""
    tags: Tags = {}
    """Extra AWS tags on every resource (team=platform, environment, managed-by are always set)."""
    budget: Budget | None = None
    """What the platform may cost a month (USD, list prices); `mlops policy` fails a plan whose
    estimate can go above it, as for team stacks."""
    usage: Usage = Usage()
    """What the estimate cannot read from the resources (GB through the NAT gateways, load
    balancer capacity units); `mlops cost platform/<stack>` says which line used which."""

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"mlops-{self.environment}"

    @property
    def cluster_autoscaler_image(self) -> str:
        return self.services.cluster_autoscaler_image or (
            f"{catalog.CLUSTER_AUTOSCALER_IMAGE}:"
            f"{catalog.CLUSTER_AUTOSCALER_TAGS[self.cluster.kubernetes_version]}"
        )


PLATFORM_NAMESPACE = Namespace(NAMESPACE, PlatformConfig)


@dataclass(frozen=True)
class LoadedPlatform:
    config: PlatformConfig
    region: str
    file: Path
    zones: list[str]
    subnets: list[layout.SubnetPlan]
    """The planned subnets: every private one, then every public one, zone by zone."""


def load_platform_file(file: Path) -> LoadedPlatform:
    """Read and validate a platform stack file. Raises ConfigError with every problem."""
    document = read_stack_document(file, NAMESPACE)
    return parse_platform_config(document, file=file, stack=stack_name_of(file))


def parse_platform_config(
    raw: Mapping[str, Any], *, file: Path, stack: str | None
) -> LoadedPlatform:
    """Validate one platform stack's config values (`platform:<key>` -> value)."""
    shown = str(file)
    values, issues = validate_namespace(raw, PLATFORM_NAMESPACE, file=shown, first=("environment",))
    region = values.pop("aws:region", None)
    problems = list(_problems(values, region, stack)) if not issues else []
    issues += [Issue(shown, p.path, p.value, f"should be {p.message}") for p in problems]
    if issues:
        raise ConfigError(issues)
    config = PlatformConfig.model_validate(values)
    zones = _zones(config.network, str(region))
    return LoadedPlatform(config, str(region), file, zones, _subnets(config.network, zones))


def _zones(network: NetworkConfig, region: str) -> list[str]:
    return list(network.availability_zones) or layout.zone_names(region, network.zones)


def _subnets(network: NetworkConfig, zones: list[str]) -> list[layout.SubnetPlan]:
    if network.private_subnet_cidrs or network.public_subnet_cidrs:
        return [
            layout.SubnetPlan(zone, cidr, public)
            for public, cidrs in (
                (False, network.private_subnet_cidrs),
                (True, network.public_subnet_cidrs),
            )
            for zone, cidr in zip(zones, cidrs, strict=True)
        ]
    return layout.plan_subnets(
        network.cidr,
        zones,
        private_prefix=network.private_subnet_prefix,
        public_prefix=network.public_subnet_prefix,
    )


def _problems(values: dict[str, Any], region: str | None, stack: str | None) -> Iterator[Problem]:
    """Cross-field rules: what no single key can check."""
    environment: Environment = values["environment"]
    prod = environment == Environment.prod
    if stack and stack != str(environment) and not stack.endswith(f"-{environment}"):
        yield Problem(
            "platform:environment",
            str(environment),
            f"the environment the stack {stack!r} is named after (<environment> or <name>-<environment>)",
        )
    network: NetworkConfig = values["network"]
    cluster: ClusterConfig = values["cluster"]
    yield from _network_problems(network, cluster, region, prod)
    yield from _cluster_problems(cluster, prod)
    if cluster.kubernetes_version in catalog.KUBERNETES_VERSIONS:
        addons: AddonsConfig = values["addons"]
        for key in catalog.ADDONS:
            version = getattr(addons, _snake(key))
            problem = catalog.addon_problem(key, version, cluster.kubernetes_version)
            if problem:
                yield Problem(f"platform:addons.{key}", version, problem)
        image = values["services"].cluster_autoscaler_image
        wanted = f"v{cluster.kubernetes_version}."
        tag = image.rsplit(":", 1)[-1] if image and "@" not in image else None
        if tag is not None and not tag.startswith(wanted):
            yield Problem(
                "platform:services.clusterAutoscalerImage",
                image,
                f"a Cluster Autoscaler release of the cluster's minor ({wanted}x, e.g. "
                f"{catalog.CLUSTER_AUTOSCALER_TAGS[cluster.kubernetes_version]}): each release "
                "supports one Kubernetes minor",
            )
    yield from _key_administrator_problems(values.get("key_administrators", []), prod)
    nodes: SystemNodesConfig = values["system_nodes"]
    for finding in aws_values.node_group_problems(nodes.instance_types):
        yield Problem(
            f"platform:systemNodes.instanceTypes[{finding.index}]", finding.value, finding.message
        )
    for i, name in enumerate(nodes.instance_types):
        problem = aws_values.ami_hardware_problem(SYSTEM_AMI_TYPE, name)
        if problem:
            yield Problem(f"platform:systemNodes.instanceTypes[{i}]", name, problem)
    if nodes.max_size < nodes.min_size:
        yield Problem(
            "platform:systemNodes.maxSize", nodes.max_size, f"at least minSize ({nodes.min_size})"
        )
    if prod and nodes.min_size < 2:
        yield Problem(
            "platform:systemNodes.minSize",
            nodes.min_size,
            "at least 2 in prod (cluster services must survive the loss of a node or a zone)",
        )


def _network_problems(
    network: NetworkConfig, cluster: ClusterConfig, region: str | None, prod: bool
) -> Iterator[Problem]:
    vpc = ipaddress.IPv4Network(network.cidr)
    low, high = layout.VPC_PREFIX_RANGE
    if not low <= vpc.prefixlen <= high:
        yield Problem(
            "platform:network.cidr", network.cidr, f"a /{low} to /{high} block (AWS limits)"
        )
        return
    if not vpc.is_private:
        yield Problem(
            "platform:network.cidr", network.cidr, "a private range (10/8, 172.16/12, 192.168/16)"
        )
    zones = list(network.availability_zones) or (
        layout.zone_names(region, network.zones) if region else []
    )
    count = len(zones)
    needed = 3 if prod else 2
    if count < needed:
        key = "availabilityZones" if network.availability_zones else "zones"
        yield Problem(
            f"platform:network.{key}",
            network.availability_zones or network.zones,
            f"at least {needed} zones{' in prod' if prod else ''} "
            "(EKS needs subnets in two zones; prod must survive the loss of one)",
        )
    for i, zone in enumerate(network.availability_zones):
        if region and not zone.startswith(region):
            yield Problem(
                f"platform:network.availabilityZones[{i}]",
                zone,
                f"a zone of {region} ({region}a, ...)",
            )
    if len(set(zones)) != len(zones):
        yield Problem("platform:network.availabilityZones", zones, "distinct zones")
    if ipaddress.IPv4Network(cluster.service_cidr).overlaps(vpc):
        yield Problem(
            "platform:cluster.serviceCidr",
            cluster.service_cidr,
            f"a block that does not overlap the VPC ({network.cidr}): Service and pod addresses would collide",
        )
    explicit = {
        "privateSubnetCidrs": network.private_subnet_cidrs,
        "publicSubnetCidrs": network.public_subnet_cidrs,
    }
    if any(explicit.values()):
        yield from _explicit_subnet_problems(explicit, network.cidr, count)
    else:
        try:
            planned = layout.plan_subnets(
                network.cidr,
                zones,
                private_prefix=network.private_subnet_prefix,
                public_prefix=network.public_subnet_prefix,
            )
        except layout.LayoutError as error:
            yield Problem(
                "platform:network.cidr",
                network.cidr,
                f"large enough for the subnets: {error} (use a larger VPC or smaller subnet prefixes)",
            )
            return
        private = next((s for s in planned if not s.public), None)
        if private and private.usable_addresses < layout.MIN_PRIVATE_SUBNET_ADDRESSES:
            yield Problem(
                "platform:network.privateSubnetPrefix",
                network.private_subnet_prefix,
                f"at most 20 (a /20 or larger: {layout.MIN_PRIVATE_SUBNET_ADDRESSES} usable addresses; "
                "with the VPC CNI every pod takes one)",
            )


def _explicit_subnet_problems(
    explicit: dict[str, list[str]], vpc_cidr: str, zones: int
) -> Iterator[Problem]:
    every: list[tuple[str, str]] = []
    for key, cidrs in explicit.items():
        if len(cidrs) != zones:
            yield Problem(f"platform:network.{key}", cidrs, f"one CIDR per zone ({zones})")
        for i, cidr in enumerate(cidrs):
            path = f"platform:network.{key}[{i}]"
            every.append((path, cidr))
            if not layout.within(cidr, vpc_cidr):
                yield Problem(path, cidr, f"inside the VPC's {vpc_cidr}")
            elif key == "privateSubnetCidrs" and (
                layout.SubnetPlan("", cidr, False).usable_addresses
                < layout.MIN_PRIVATE_SUBNET_ADDRESSES
            ):
                yield Problem(
                    path,
                    cidr,
                    f"a /20 or larger ({layout.MIN_PRIVATE_SUBNET_ADDRESSES} usable addresses; "
                    "with the VPC CNI every pod takes one)",
                )
    for i, j in layout.overlaps([cidr for _, cidr in every]):
        yield Problem(
            every[j][0], every[j][1], f"a block that does not overlap {every[i][0]} ({every[i][1]})"
        )


def _cluster_problems(cluster: ClusterConfig, prod: bool) -> Iterator[Problem]:
    if cluster.kubernetes_version not in catalog.KUBERNETES_VERSIONS:
        yield Problem(
            "platform:cluster.kubernetesVersion",
            cluster.kubernetes_version,
            f"a version EKS offers ({', '.join(catalog.KUBERNETES_VERSIONS)})",
        )
    endpoint = cluster.endpoint
    if endpoint.public_access and prod and not endpoint.public_access_cidrs:
        yield Problem(
            "platform:cluster.endpoint.publicAccess",
            True,
            "false in prod, or limited with publicAccessCidrs (the API would be open to the internet)",
        )
    for i, cidr in enumerate(endpoint.public_access_cidrs):
        if ipaddress.IPv4Network(cidr).prefixlen == 0 and prod:
            yield Problem(
                f"platform:cluster.endpoint.publicAccessCidrs[{i}]",
                cidr,
                "a block narrower than the whole internet in prod",
            )
    if cluster.log_retention_days not in LOG_RETENTION_DAYS:
        yield Problem(
            "platform:cluster.logRetentionDays",
            cluster.log_retention_days,
            f"a CloudWatch retention period ({', '.join(map(str, LOG_RETENTION_DAYS))})",
        )
    for i, kind in enumerate(cluster.log_types):
        if kind not in CONTROL_PLANE_LOGS:
            yield Problem(
                f"platform:cluster.logTypes[{i}]", kind, f"one of {', '.join(CONTROL_PLANE_LOGS)}"
            )
    if prod and "audit" not in cluster.log_types:
        yield Problem("platform:cluster.logTypes", cluster.log_types, "including audit in prod")
    for role in ("admins", "deployers", "viewers"):
        arns: list[str] = getattr(cluster.access, role)
        for i, arn in enumerate(arns):
            if arns.index(arn) != i:
                yield Problem(f"platform:cluster.access.{role}[{i}]", arn, "listed once")
    if not (cluster.access.admins or cluster.access.deployers):
        yield Problem(
            "platform:cluster.access.admins",
            [],
            "at least one admin or deployer ARN: the cluster creator gets no access of its own",
        )


def _key_administrator_problems(arns: list[str], prod: bool) -> Iterator[Problem]:
    """Who administers the secrets key: named in prod (else the account would, through IAM)."""
    for i, arn in enumerate(arns):
        if arns.index(arn) != i:
            yield Problem(f"platform:keyAdministrators[{i}]", arn, "listed once")
    if prod and not arns:
        yield Problem(
            "platform:keyAdministrators",
            [],
            "the IAM roles that administer the cluster's secrets key in prod, including the one "
            "that runs `pulumi up`, e.g. [arn:aws:iam::123456789012:role/platform-admin]",
        )


def _snake(key: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key)
