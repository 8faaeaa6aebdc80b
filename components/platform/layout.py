"""Network arithmetic of the platform: subnet layout and address checks, plain functions.

Like pulumi-awsx's subnet planner, but small and explicit: private subnets (where nodes and pods
live) come first and are large, public subnets (load balancers, NAT) follow and are small. No
Pulumi here; unit-tested without mocks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

AWS_RESERVED_PER_SUBNET = 5
"""AWS keeps the first four and the last address of every subnet."""
MIN_PRIVATE_SUBNET_ADDRESSES = 4096 - AWS_RESERVED_PER_SUBNET
"""Usable addresses a private subnet needs (a /20): with the VPC CNI every pod takes a VPC address
and every node holds a warm pool of them, so node subnets run out long before the nodes do."""
VPC_PREFIX_RANGE = (16, 28)
"""The VPC CIDR block sizes AWS accepts."""


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet of the layout."""

    zone: str
    """Availability zone name, e.g. eu-west-1a."""
    cidr: str
    public: bool

    @property
    def usable_addresses(self) -> int:
        return ipaddress.ip_network(self.cidr).num_addresses - AWS_RESERVED_PER_SUBNET

    @property
    def suffix(self) -> str:
        """The zone's letter (`a` of eu-west-1a): names resources per zone."""
        return self.zone.removeprefix(self.zone.rstrip("abcdefghijklmnopqrstuvwxyz"))


class LayoutError(ValueError):
    """The requested subnets do not fit in the VPC."""


def zone_names(region: str, count: int) -> list[str]:
    """The first ``count`` zones of a region by letter: eu-west-1a, eu-west-1b, ..."""
    return [f"{region}{letter}" for letter in "abcdefghijklmnopqrstuvwxyz"[:count]]


def plan_subnets(
    vpc_cidr: str, zones: Sequence[str], *, private_prefix: int, public_prefix: int
) -> list[SubnetPlan]:
    """One private and one public subnet per zone, carved from ``vpc_cidr`` in order: every
    private subnet (largest first, so they align), then every public one. Deterministic: the same
    inputs always give the same CIDRs, so a re-plan never moves a subnet."""
    vpc = ipaddress.ip_network(vpc_cidr)
    wanted = [(zone, private_prefix, False) for zone in zones] + [
        (zone, public_prefix, True) for zone in zones
    ]
    cursor = int(vpc.network_address)
    end = int(vpc.broadcast_address) + 1
    planned: list[SubnetPlan] = []
    for zone, prefix, public in wanted:
        if prefix < vpc.prefixlen:
            raise LayoutError(f"a /{prefix} subnet is larger than the VPC {vpc_cidr}")
        size = 2 ** (32 - prefix)
        cursor = -(-cursor // size) * size  # align to the subnet's own size
        if cursor + size > end:
            raise LayoutError(
                f"{len(zones)} private /{private_prefix} and {len(zones)} public "
                f"/{public_prefix} subnets do not fit in {vpc_cidr}"
            )
        network = ipaddress.ip_network((cursor, prefix))
        planned.append(SubnetPlan(zone, str(network), public))
        cursor += size
    return planned


def overlaps(cidrs: Sequence[str]) -> Iterator[tuple[int, int]]:
    """Index pairs (i < j) of CIDR blocks that share addresses."""
    networks = [ipaddress.ip_network(c) for c in cidrs]
    for i, first in enumerate(networks):
        for j in range(i + 1, len(networks)):
            if first.overlaps(networks[j]):
                yield i, j


def within(cidr: str, vpc_cidr: str) -> bool:
    return ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(vpc_cidr))  # type: ignore[arg-type]
