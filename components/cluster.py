"""`mlops:cluster:ClusterReference`: the shared EKS cluster, from a platform stack or given values."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.config.cluster import CLUSTER_OUTPUTS, ExplicitCluster, StackReferenceCluster
from components.team import ClusterInfo


class ClusterReference(pulumi.ComponentResource):
    """The cluster's coordinates, and the Kubernetes provider bound to it."""

    info: ClusterInfo
    """Cluster outputs and the Kubernetes provider."""

    def __init__(
        self,
        name: str,
        cluster: StackReferenceCluster | ExplicitCluster,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:cluster:ClusterReference", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if isinstance(cluster, StackReferenceCluster):
            # The platform stack owns the VPC and the cluster; a team stack only reads them.
            platform = pulumi.StackReference(
                f"{name}-platform", stack_name=cluster.stack_reference, opts=child
            )
            read = {
                field: platform.require_output(output) for field, output in CLUSTER_OUTPUTS.items()
            }
            cluster_name = read["name"]
            kubeconfig: pulumi.Output[str] = pulumi.Output.secret(read["kubeconfig"])
            oidc_arn = read["oidc_provider_arn"]
            oidc_url = read["oidc_provider_url"]
            vpc_id = read["vpc_id"]
            subnets = read["private_subnet_ids"]
            node_sg = read["node_security_group_id"]
        else:
            cluster_name = pulumi.Output.from_input(cluster.name)
            kubeconfig = pulumi.Output.secret(cluster.kubeconfig.get_secret_value())
            oidc_arn = pulumi.Output.from_input(cluster.oidc_provider_arn)
            oidc_url = pulumi.Output.from_input(cluster.oidc_provider_url)
            vpc_id = pulumi.Output.from_input(cluster.vpc_id)
            subnets = pulumi.Output.from_input(cluster.private_subnet_ids)
            node_sg = pulumi.Output.from_input(cluster.node_security_group_id)

        # One explicit provider: no Kubernetes object may fall back to an ambient kubeconfig.
        provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig, opts=child)
        self.info = ClusterInfo(
            name=cluster_name,
            oidc_provider_arn=oidc_arn,
            oidc_provider_url=oidc_url,
            vpc_id=vpc_id,
            private_subnet_ids=subnets,
            node_security_group_id=node_sg,
            provider=provider,
        )
        self.register_outputs(
            {"clusterName": cluster_name, "oidcProviderArn": oidc_arn, "vpcId": vpc_id}
        )
