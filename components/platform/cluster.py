"""`mlops:platform:Cluster`: the EKS cluster every team stack deploys to, built from pulumi-aws
resources directly (no pulumi-eks: its one opaque component would hide all of this from plan,
diff and policy)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import irsa_trust_policy, policy_document, statement
from components.keys import administrators_statement, key_administrators
from components.platform.base import Platform
from components.platform.config import (
    SYSTEM_AMI_TYPE,
    AddonsConfig,
    ClusterConfig,
    SystemNodesConfig,
)
from components.training import NODE_MANAGED_POLICIES, node_trust_policy

KMS_DELETION_WINDOW_DAYS = 30
ACCESS_POLICIES = {
    "admins": "AmazonEKSClusterAdminPolicy",
    "deployers": "AmazonEKSAdminPolicy",
    "viewers": "AmazonEKSViewPolicy",
}
"""Access-entry role -> the EKS access policy it is associated with, cluster-wide."""
ROOT_DEVICE = "/dev/xvda"
IMDS_HOP_LIMIT = 1
"""IMDSv2 answers the node only: a pod (one network hop further) cannot take the node's role."""
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
EBS_CSI_MANAGED_POLICY = "service-role/AmazonEBSCSIDriverPolicy"


# --- plain data: unit-tested without mocks ------------------------------------------------------


def cluster_trust_policy() -> dict[str, Any]:
    return policy_document(
        {
            "Sid": "EksControlPlane",
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )


ENVELOPE_ENCRYPTION_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:ListGrants",
)
"""What the EKS control plane (as the cluster role) needs of the secrets key: envelope
encryption of Kubernetes secrets, and the grants EKS keeps for it; nothing else."""


def secrets_key_policy(administrators: Sequence[str], cluster_role_arn: str) -> dict[str, Any]:
    """The administrators manage the key; the cluster role alone uses it. No statement
    delegates to the account's IAM (`:root` with kms:*), as KMS's default policy does."""
    return policy_document(
        administrators_statement(administrators),
        {
            "Sid": "ClusterEnvelopeEncryption",
            "Effect": "Allow",
            "Principal": {"AWS": cluster_role_arn},
            "Action": list(ENVELOPE_ENCRYPTION_ACTIONS),
            "Resource": "*",
        },
    )


def secrets_encryption_policy(key_arn: str) -> dict[str, Any]:
    """The cluster role's own grant of the same actions, on this key only."""
    return policy_document(statement("EnvelopeEncryption", ENVELOPE_ENCRYPTION_ACTIONS, [key_arn]))


def vpc_cni_configuration() -> str:
    """vpc-cni's configuration values: NetworkPolicy enforced (team namespaces rely on it), and
    security groups for pods (a team's database admits only the pods its SecurityGroupPolicy
    gives the database-client group; `standard` mode keeps the node's rules for kubelet probes
    and Services, and source NAT, for them)."""
    return json.dumps(
        {
            "enableNetworkPolicy": "true",
            "env": {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"},
        },
        sort_keys=True,
    )


def kubeconfig(name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "server": endpoint,
                        "certificate-authority-data": certificate_authority,
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                name,
                                "--region",
                                region,
                            ],
                        }
                    },
                }
            ],
        }
    )


@dataclass(frozen=True)
class ClusterArgs:
    platform: Platform
    config: ClusterConfig
    addons: AddonsConfig
    system_nodes: SystemNodesConfig
    private_subnet_ids: pulumi.Input[Sequence[str]]
    key_administrators: Sequence[str] = ()
    """Who administers the secrets key (`platform:keyAdministrators`; none: the account)."""


class Cluster(pulumi.ComponentResource):
    """EKS control plane (KMS-encrypted secrets, logs, access entries), OIDC provider, add-ons,
    and the system node group."""

    name: pulumi.Output[str]
    """The EKS cluster name."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (secret) authenticating with `aws eks get-token`."""
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    """The cluster's OIDC issuer, `https://oidc.eks.<region>.amazonaws.com/id/<ID>`."""
    node_security_group_id: pulumi.Output[str]
    """The cluster security group: on the control plane and on every node (system and team)."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:platform:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform, config = args.platform, args.config
        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke).partition
        self._partition = partition
        self._platform = platform

        # Kubernetes secrets are envelope-encrypted with this key (prod: protected, like data).
        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Kubernetes secrets of EKS cluster {platform.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            tags=platform.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=platform.prod),
        )
        aws.kms.Alias(
            f"{name}-secrets-alias",
            name=f"alias/{platform.physical('secrets')}",
            target_key_id=key.key_id,
            opts=child,
        )
        # Created before the cluster, so EKS does not make it without a retention period.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{platform.cluster_name}/cluster",
            retention_in_days=config.log_retention_days,
            tags=platform.tags,
            opts=child,
        )

        # The control plane's role: the managed cluster policy and the secrets key, nothing more.
        role = aws.iam.Role(
            f"{name}-role",
            name=platform.physical("cluster"),
            assume_role_policy=json.dumps(cluster_trust_policy()),
            tags=platform.tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-role-cluster-policy",
            role=role.name,
            policy_arn=self._managed_policy("AmazonEKSClusterPolicy"),
            opts=child,
        )
        # Security groups for pods: the VPC resource controller manages the pods' branch ENIs.
        vpc_resources = aws.iam.RolePolicyAttachment(
            f"{name}-role-vpc-resource-controller",
            role=role.name,
            policy_arn=self._managed_policy("AmazonEKSVPCResourceController"),
            opts=child,
        )
        encryption = aws.iam.RolePolicy(
            f"{name}-role-secrets-key",
            role=role.name,
            policy=key.arn.apply(lambda arn: json.dumps(secrets_encryption_policy(arn))),
            opts=child,
        )
        # Who may use the key, by name: a policy of its own, applied once the cluster role it
        # names exists (KMS refuses a principal that does not), before the cluster uses the key.
        key_policy = aws.kms.KeyPolicy(
            f"{name}-secrets-key-policy",
            key_id=key.key_id,
            policy=pulumi.Output.all(caller.account_id, partition, role.arn).apply(
                lambda v: json.dumps(
                    secrets_key_policy(
                        key_administrators(args.key_administrators, v[0], v[1]), v[2]
                    )
                )
            ),
            opts=child,
        )

        endpoint = config.endpoint
        # Unset with public access on means EKS's default, anywhere: config refuses that in prod.
        public_cidrs = list(endpoint.public_access_cidrs) if endpoint.public_access else None
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=platform.cluster_name,
            version=config.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=endpoint.public_access,
                public_access_cidrs=public_cidrs,
            ),
            # Access entries only, and none for whoever runs `pulumi up`: access is in config.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(config.log_types),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                ip_family="ipv4", service_ipv4_cidr=config.service_cidr
            ),
            # The add-ons below are EKS-managed, versions pinned; no unmanaged copies first.
            bootstrap_self_managed_addons=False,
            deletion_protection=config.deletion_protection,
            tags=platform.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[logs, attachment, vpc_resources, encryption, key_policy],
                protect=platform.prod,
            ),
        )
        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index]
        # IRSA: service accounts' tokens are trusted by IAM through this provider.
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=platform.tags,
            opts=child,
        )

        for role_name, policy in ACCESS_POLICIES.items():
            for index, principal in enumerate(getattr(config.access, role_name)):
                self._access_entry(f"{name}-{role_name}-{index}", cluster.name, principal, policy)

        # Node add-ons first (nodes need networking to become Ready), then the nodes, then the
        # add-ons that run as Deployments (they wait for nodes to schedule on).
        node_addons = [
            self._addon(
                name, cluster.name, "vpc-cni", args.addons.vpc_cni, vpc_cni_configuration()
            ),
            self._addon(name, cluster.name, "kube-proxy", args.addons.kube_proxy),
            self._addon(
                name, cluster.name, "eks-pod-identity-agent", args.addons.pod_identity_agent
            ),
        ]
        security_group = cluster.vpc_config.cluster_security_group_id
        nodes = self._system_nodes(
            name,
            platform,
            args.system_nodes,
            cluster,
            security_group,
            args.private_subnet_ids,
            node_addons,
        )
        self._addon(name, cluster.name, "coredns", args.addons.coredns, depends_on=[nodes])
        ebs_role = self._irsa_role(
            f"{name}-ebs-csi", platform, oidc, issuer, EBS_CSI_SERVICE_ACCOUNT, "ebs-csi-driver"
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy",
            role=ebs_role.name,
            policy_arn=self._managed_policy(EBS_CSI_MANAGED_POLICY),
            opts=child,
        )
        self._addon(
            name,
            cluster.name,
            "aws-ebs-csi-driver",
            args.addons.ebs_csi_driver,
            service_account_role_arn=ebs_role.arn,
            depends_on=[nodes],
        )

        region = aws.get_region_output(opts=invoke).region
        self.name = cluster.name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data, region
            ).apply(lambda v: kubeconfig(v[0], v[1], v[2], v[3]))
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_provider_url = issuer
        self.node_security_group_id = security_group
        self.oidc_provider = oidc
        self.register_outputs(
            {
                "name": self.name,
                "oidcProviderArn": self.oidc_provider_arn,
                "oidcProviderUrl": self.oidc_provider_url,
                "nodeSecurityGroupId": self.node_security_group_id,
            }
        )

    def _managed_policy(self, policy: str) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:", self._partition, f":iam::aws:policy/{policy}")

    def _access_entry(
        self, name: str, cluster: pulumi.Output[str], principal: str, policy: str
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        entry = aws.eks.AccessEntry(
            name,
            cluster_name=cluster,
            principal_arn=principal,
            type="STANDARD",
            tags=self._platform.tags,
            opts=child,
        )
        aws.eks.AccessPolicyAssociation(
            name,
            cluster_name=cluster,
            principal_arn=entry.principal_arn,
            policy_arn=pulumi.Output.concat(
                "arn:", self._partition, f":eks::aws:cluster-access-policy/{policy}"
            ),
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=child,
        )

    def _addon(
        self,
        name: str,
        cluster: pulumi.Output[str],
        addon: str,
        version: str,
        configuration: str | None = None,
        *,
        service_account_role_arn: pulumi.Input[str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        # The version in config is the version: conflicting edits in the cluster are overwritten.
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster,
            addon_name=addon,
            addon_version=version,
            configuration_values=configuration,
            service_account_role_arn=service_account_role_arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=self._platform.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def _irsa_role(
        self,
        name: str,
        platform: Platform,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer: pulumi.Output[str],
        service_account: tuple[str, str],
        role: str,
    ) -> aws.iam.Role:
        namespace, account = service_account
        trust = pulumi.Output.all(oidc.arn, issuer).apply(
            lambda v: json.dumps(irsa_trust_policy(v[0], v[1], namespace, account))
        )
        return aws.iam.Role(
            f"{name}-role",
            name=platform.physical(role),
            assume_role_policy=trust,
            max_session_duration=3600,
            tags=platform.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _system_nodes(
        self,
        name: str,
        platform: Platform,
        nodes: SystemNodesConfig,
        cluster: aws.eks.Cluster,
        security_group: pulumi.Output[str],
        subnets: pulumi.Input[Sequence[str]],
        depends_on: Sequence[pulumi.Resource],
    ) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-node-role",
            name=platform.physical("system-nodes"),
            assume_role_policy=json.dumps(node_trust_policy()),
            tags=platform.tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=role.name,
                policy_arn=self._managed_policy(policy),
                opts=child,
            )
            for policy in NODE_MANAGED_POLICIES
        ]
        # IMDSv2 only, one hop: pods cannot borrow the node's credentials. The cluster security
        # group, the one exported to team stacks, is what the nodes carry.
        template = aws.ec2.LaunchTemplate(
            f"{name}-system-nodes",
            name_prefix=f"{platform.physical('system-', 100)}",
            description=f"System nodes of EKS cluster {platform.cluster_name}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=nodes.disk_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            vpc_security_group_ids=[security_group],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags=platform.named("system-node")
                )
                for kind in ("instance", "volume")
            ],
            tags=platform.tags,
            opts=child,
        )
        # On-demand, across the private subnets of every zone; the autoscaler owns the size.
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_group_name=platform.physical("system", 63),
            node_role_arn=role.arn,
            subnet_ids=subnets,
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            instance_types=list(nodes.instance_types),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes.min_size, desired_size=nodes.min_size, max_size=nodes.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={"mlops.dev/pool": "system"},
            tags=platform.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, *depends_on],
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
