"""`mlops:team:TeamNamespace`: the team's namespace, its quota, and default container limits."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config.training import Quota
from components.team import ClusterInfo, Team
from components.workload import GPU_RESOURCE


class TeamNamespace(pulumi.ComponentResource):
    """Where every workload of the team runs, bounded so one team cannot starve the others."""

    name: pulumi.Output[str]
    """The namespace name."""

    def __init__(
        self,
        name: str,
        *,
        team: Team,
        cluster: ClusterInfo,
        quota: Quota,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:team:TeamNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)

        # Pod Security "restricted": the API server refuses root or privileged pods here.
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=team.namespace,
                labels={
                    **team.labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            ),
            opts=child,
        )
        self.name = namespace.metadata.apply(lambda m: str(m.name))
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=cluster.provider, depends_on=[namespace]
        )

        # The team's share of the cluster.
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="team-quota", namespace=team.namespace, labels=team.labels
            ),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "requests.cpu": quota.cpu,
                    "limits.cpu": naming.cpu_limit(quota.cpu),
                    "requests.memory": quota.memory,
                    "limits.memory": quota.memory,
                    f"requests.{GPU_RESOURCE}": str(quota.gpu),
                    "pods": str(quota.pods),
                }
            ),
            opts=in_namespace,
        )
        # Defaults for any container that names no resources of its own.
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="container-defaults", namespace=team.namespace, labels=team.labels
            ),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": "500m", "memory": "512Mi"},
                        default_request={"cpu": "100m", "memory": "256Mi"},
                        max={"memory": quota.memory},
                    )
                ]
            ),
            opts=in_namespace,
        )
        self.register_outputs({"name": self.name})
