"""The platform program: read the stack config once, validate it, build the VPC and the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import config as engine_config

from components.config import ConfigError
from components.config.cluster import CLUSTER_OUTPUTS
from components.platform.base import Platform
from components.platform.cluster import Cluster, ClusterArgs
from components.platform.config import LoadedPlatform, parse_platform_config
from components.platform.network import Network
from components.platform.services import ClusterServices, ClusterServicesArgs


def load() -> LoadedPlatform:
    """The stack's config as the engine hands it over, validated; every problem at once."""
    values: dict[str, Any] = {**engine_config.get_config_env(), **engine_config.CONFIG.get()}
    raw = {key: _decode(value) for key, value in values.items()}
    stack = pulumi.get_stack()
    try:
        return parse_platform_config(raw, file=Path("stacks") / f"Pulumi.{stack}.yaml", stack=stack)
    except ConfigError as error:
        # A user's mistake: a clean list of problems, no traceback, nothing registered.
        raise pulumi.RunError(
            f"{len(error.issues)} problem(s) in the stack config:\n{error}"
        ) from None


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


loaded = load()
config = loaded.config
platform = Platform(config.cluster_name, config.environment, loaded.region, dict(config.tags))

network = Network(
    "network",
    platform=platform,
    cidr=config.network.cidr,
    subnets=loaded.subnets,
    nat_per_zone=config.network.nat_gateway_per_zone,
)
cluster = Cluster(
    "cluster",
    ClusterArgs(
        platform=platform,
        config=config.cluster,
        addons=config.addons,
        system_nodes=config.system_nodes,
        private_subnet_ids=network.private_subnet_ids,
    ),
)

# The Kubernetes provider of the cluster services: bound to this cluster, never an ambient one.
provider = k8s.Provider("cluster-k8s", kubeconfig=cluster.kubeconfig)
services = ClusterServices(
    "services",
    ClusterServicesArgs(
        platform=platform,
        cluster_name=cluster.name,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_provider_url=cluster.oidc_provider_url,
        vpc_id=network.vpc_id,
        node_security_group_id=cluster.node_security_group_id,
        provider=provider,
        autoscaler_image=config.cluster_autoscaler_image,
        load_balancer_controller_image=config.services.load_balancer_controller_image,
    ),
    # Controllers schedule on the system nodes and resolve names through CoreDNS.
    opts=pulumi.ResourceOptions(depends_on=[cluster]),
)

# Exactly what team stacks read (components/config/cluster.py), under the names they read.
exported = {
    "name": cluster.name,
    "kubeconfig": cluster.kubeconfig,
    "oidc_provider_arn": cluster.oidc_provider_arn,
    "oidc_provider_url": cluster.oidc_provider_url,
    "vpc_id": network.vpc_id,
    "private_subnet_ids": network.private_subnet_ids,
    "node_security_group_id": cluster.node_security_group_id,
}
for field, output in CLUSTER_OUTPUTS.items():
    pulumi.export(output, exported[field])
