"""`mlops:network`: where the flows the team's NetworkPolicies open come from and go to."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Cidr, ConfigModel

NAMESPACE_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DEFAULT_MONITORING_NAMESPACE = "monitoring"


class NetworkConfig(ConfigModel):
    """Teams share a cluster: every flow into or out of the team's namespace is named here or
    derived from the stack (components/network.py); everything else is denied."""

    monitoring_namespace: Annotated[str, Field(pattern=NAMESPACE_NAME, max_length=63)] = (
        DEFAULT_MONITORING_NAMESPACE
    )
    """Namespace of the Prometheus that scrapes the serving pods' /metrics."""
    load_balancer_subnet_cidrs: list[Cidr] = []
    """Subnets the load balancer's network interfaces are in (the ALB reaches the pods of an
    endpoint with an `ingress` from there). Empty: the VPC's CIDR block. Pods have VPC addresses
    too (VPC CNI), so name subnets no pod runs in (the platform's public subnets, where it puts
    every ALB), or other pods of the VPC can reach the endpoint; prod requires it."""
    database_subnet_cidrs: list[Cidr] = []
    """Subnets of the registry database (PostgreSQL egress). Empty: the VPC's CIDR block (the
    database's security group is what tells teams apart there)."""
