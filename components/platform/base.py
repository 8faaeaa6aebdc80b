"""Who and where for the platform's resources: names and tags, like components.team for a team."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from components import naming
from components.config import Environment
from components.team import MANAGED_BY

PLATFORM_TEAM = "platform"
"""The `team` tag of the platform's resources (the policy pack requires one on everything)."""


@dataclass(frozen=True)
class Platform:
    cluster_name: str
    environment: Environment
    region: str
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def prod(self) -> bool:
        return self.environment == Environment.prod

    @property
    def tags(self) -> dict[str, str]:
        """AWS tags for every resource: the user's, then ours (ours win)."""
        return {
            **self.extra_tags,
            "team": PLATFORM_TEAM,
            "environment": str(self.environment),
            "managed-by": MANAGED_BY,
        }

    @property
    def cluster_tag(self) -> str:
        """`kubernetes.io/cluster/<name>`: what EKS, the load balancer controller and the
        autoscaler look for on subnets, security groups and node groups."""
        return f"kubernetes.io/cluster/{self.cluster_name}"

    def physical(self, role: str, max_length: int = naming.IAM_ROLE_MAX) -> str:
        """`<cluster>-<role>`, fitted to ``max_length``."""
        return naming.fit(f"{self.cluster_name}-{role}", max_length)

    def named(self, role: str) -> dict[str, str]:
        """Tags with a `Name` (what the EC2 console lists)."""
        return {**self.tags, "Name": self.physical(role, 255)}
