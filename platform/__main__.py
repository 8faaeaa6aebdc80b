"""The platform program: read the stack config once, validate it, build the VPC and the cluster."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.budget import CostModel
from components.config.cluster import CLUSTER_OUTPUTS
from components.platform.base import Platform
from components.platform.cluster import Cluster, ClusterArgs
from components.platform.config import parse_platform_config
from components.platform.network import Network
from components.platform.services import ClusterServices, ClusterServicesArgs
from components.program import load_config

loaded = load_config(
    lambda engine: parse_platform_config(engine.values, file=engine.file, stack=engine.stack)
)
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
        key_administrators=config.key_administrators,
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

# The budget and usage assumptions, for `mlops cost` and the policy pack's budget rules.
CostModel("cost", region=loaded.region, budget=config.budget, usage=config.usage)

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
