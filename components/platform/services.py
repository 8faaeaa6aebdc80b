"""`mlops:platform:ClusterServices`: Cluster Autoscaler and the AWS Load Balancer Controller as
plain Kubernetes objects with pinned images.

Not `helm.v3.Release` (one opaque resource) nor `helm.v3.Chart` (its rendering needs the Helm
binary or a manifest snapshot to answer the mock engine): each object here is a resource that
plan, diff and the policy pack see, and a reviewer reads. What each object needs (RBAC rules,
arguments, ports) follows the upstream charts (kubernetes/autoscaler cluster-autoscaler,
aws/eks-charts aws-load-balancer-controller), trimmed to what this platform uses.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.iam import irsa_trust_policy
from components.platform import policies
from components.platform.base import Platform

NAMESPACE = "kube-system"
SYSTEM_NODES = {"mlops.dev/pool": "system"}
"""Where the controllers run: the platform's own on-demand nodes, never a team's spot pool."""
NONROOT_UID = 65534
ALB_CLASS = "alb"
"""The IngressClass team endpoints name (components/serving.py)."""
ALB_CONTROLLER = "ingress.k8s.aws/alb"
WEBHOOK_PORT = 9443
CERT_VALIDITY_HOURS = 10 * 365 * 24
CERT_RENEWAL_HOURS = 365 * 24
"""A `pulumi up` within a year of expiry issues new webhook certificates."""


def rule(
    groups: Sequence[str], resources: Sequence[str], verbs: Sequence[str], names: Sequence[str] = ()
) -> k8s.rbac.v1.PolicyRuleArgs:
    """One RBAC policy rule."""
    return k8s.rbac.v1.PolicyRuleArgs(
        api_groups=list(groups),
        resources=list(resources),
        verbs=list(verbs),
        resource_names=list(names) or None,
    )


READ = ("get", "list", "watch")

AUTOSCALER_CLUSTER_RULES = [
    rule([""], ["events", "endpoints"], ["create", "patch"]),
    rule([""], ["pods/eviction"], ["create"]),
    rule([""], ["pods/status"], ["update"]),
    rule([""], ["endpoints"], ["get", "update"], ["cluster-autoscaler"]),
    rule([""], ["nodes"], ["get", "list", "update", "watch"]),
    rule(
        [""],
        [
            "namespaces",
            "pods",
            "services",
            "replicationcontrollers",
            "persistentvolumeclaims",
            "persistentvolumes",
        ],
        READ,
    ),
    rule(["batch"], ["jobs", "cronjobs"], READ),
    rule(["apps"], ["daemonsets", "replicasets", "statefulsets"], READ),
    rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
    rule(
        ["storage.k8s.io"],
        ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"],
        READ,
    ),
    rule(["coordination.k8s.io"], ["leases"], ["create"]),
    rule(["coordination.k8s.io"], ["leases"], ["get", "update"], ["cluster-autoscaler"]),
]
"""What the autoscaler reads to simulate scheduling, and the node and pod writes it makes."""
AUTOSCALER_NAMESPACE_RULES = [
    rule([""], ["configmaps"], ["create", "list", "watch"]),
    rule(
        [""],
        ["configmaps"],
        ["delete", "get", "update", "watch"],
        ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
    ),
]
LOAD_BALANCER_CLUSTER_RULES = [
    rule(
        ["elbv2.k8s.aws"],
        ["targetgroupbindings"],
        ["create", "delete", "get", "list", "patch", "update", "watch"],
    ),
    rule(["elbv2.k8s.aws"], ["ingressclassparams"], READ),
    rule([""], ["events"], ["create", "patch"]),
    rule([""], ["pods"], READ),
    rule(["networking.k8s.io"], ["ingressclasses"], READ),
    rule(
        ["", "extensions", "networking.k8s.io"],
        ["services", "ingresses"],
        ["get", "list", "patch", "update", "watch"],
    ),
    rule([""], ["nodes", "namespaces", "endpoints"], READ),
    rule(["discovery.k8s.io"], ["endpointslices"], READ),
    rule(
        ["elbv2.k8s.aws", "", "extensions", "networking.k8s.io"],
        ["targetgroupbindings/status", "pods/status", "services/status", "ingresses/status"],
        ["update", "patch"],
    ),
]
"""Ingresses and Services in, load balancers out; statuses written back."""
LOAD_BALANCER_LEADER = "aws-load-balancer-controller-leader"
LOAD_BALANCER_NAMESPACE_RULES = [
    rule([""], ["configmaps"], ["create"]),
    rule([""], ["configmaps"], ["get", "patch", "update"], [LOAD_BALANCER_LEADER]),
    rule(["coordination.k8s.io"], ["leases"], ["create"]),
    rule(["coordination.k8s.io"], ["leases"], ["get", "patch", "update"], [LOAD_BALANCER_LEADER]),
]


def autoscaler_args(cluster: str) -> list[str]:
    """Cluster Autoscaler flags: find this cluster's groups by the tags EKS puts on them."""
    return [
        "--cloud-provider=aws",
        f"--namespace={NAMESPACE}",
        f"--node-group-auto-discovery=asg:tag={policies.AUTOSCALER_TAG}/enabled,"
        f"{policies.AUTOSCALER_TAG}/{cluster}",
        "--balance-similar-node-groups=true",
        "--expander=least-waste",
        # Team pools scale from zero; a node running only DaemonSets may go.
        "--skip-nodes-with-system-pods=false",
        "--skip-nodes-with-local-storage=false",
        "--logtostderr=true",
        "--stderrthreshold=info",
        "--v=4",
    ]


def load_balancer_args(cluster: str, region: str, vpc_id: str) -> list[str]:
    """Controller flags; region and VPC given, since IMDS is out of a pod's reach (hop limit 1)."""
    return [
        f"--cluster-name={cluster}",
        f"--ingress-class={ALB_CLASS}",
        f"--aws-region={region}",
        f"--aws-vpc-id={vpc_id}",
        f"--webhook-bind-port={WEBHOOK_PORT}",
        # Not granted (and not used by team endpoints): WAF and Shield integrations.
        "--enable-shield=false",
        "--enable-waf=false",
        "--enable-wafv2=false",
    ]


def _security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=NONROOT_UID,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def _pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=NONROOT_UID,
        fs_group=NONROOT_UID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


@dataclass(frozen=True)
class ClusterServicesArgs:
    platform: Platform
    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    provider: k8s.Provider
    autoscaler_image: str
    load_balancer_controller_image: str


class ClusterServices(pulumi.ComponentResource):
    """Cluster Autoscaler (team pools scale from zero) and the AWS Load Balancer Controller (the
    `alb` IngressClass), each with its own least-privilege IRSA role."""

    ingress_class: pulumi.Output[str]
    """The IngressClass team endpoints name."""

    def __init__(
        self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:platform:ClusterServices", name, None, opts)
        self._args = args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition
        self._region = aws.get_region_output(opts=invoke).region
        self._labels = {
            "app.kubernetes.io/part-of": "mlops-platform",
            "app.kubernetes.io/managed-by": "mlops-stack",
        }
        self._cluster_autoscaler(f"{name}-autoscaler")
        self.ingress_class = self._load_balancer_controller(f"{name}-lbc")
        self.register_outputs({"ingressClass": self.ingress_class})

    # -- shared pieces -----------------------------------------------------------------------------

    def _k8s(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self, provider=self._args.provider, depends_on=list(depends_on)
        )

    def _meta(self, app: str, name: str | None = None, **extra: Any) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name or app,
            namespace=NAMESPACE,
            labels={**self._labels, "app.kubernetes.io/name": app},
            **extra,
        )

    def _identity(
        self, name: str, account: str, role: str, policy: pulumi.Input[str]
    ) -> k8s.core.v1.ServiceAccount:
        """The IAM role only ``account`` in kube-system can assume, and that service account."""
        args, platform = self._args, self._args.platform
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_provider_url).apply(
            lambda v: json.dumps(irsa_trust_policy(v[0], v[1], NAMESPACE, account))
        )
        iam_role = aws.iam.Role(
            f"{name}-role",
            name=platform.physical(role),
            assume_role_policy=trust,
            max_session_duration=3600,
            tags=platform.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=iam_role.name,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=self._meta(account, annotations={"eks.amazonaws.com/role-arn": iam_role.arn}),
            automount_service_account_token=True,  # both controllers call the Kubernetes API
            opts=self._k8s(),
        )

    def _rbac(
        self,
        name: str,
        app: str,
        account: k8s.core.v1.ServiceAccount,
        cluster_rules: list[k8s.rbac.v1.PolicyRuleArgs],
        namespace_rules: list[k8s.rbac.v1.PolicyRuleArgs],
    ) -> list[pulumi.Resource]:
        subject = [k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=app, namespace=NAMESPACE)]
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-clusterrole",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app, labels={**self._labels, "app.kubernetes.io/name": app}
            ),
            rules=cluster_rules,
            opts=self._k8s(),
        )
        role = k8s.rbac.v1.Role(
            f"{name}-role", metadata=self._meta(app), rules=namespace_rules, opts=self._k8s()
        )
        return [
            cluster_role,
            role,
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-clusterrolebinding",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=app, labels={**self._labels, "app.kubernetes.io/name": app}
                ),
                role_ref=k8s.rbac.v1.RoleRefArgs(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=app
                ),
                subjects=subject,
                opts=self._k8s([cluster_role, account]),
            ),
            k8s.rbac.v1.RoleBinding(
                f"{name}-rolebinding",
                metadata=self._meta(app),
                role_ref=k8s.rbac.v1.RoleRefArgs(
                    api_group="rbac.authorization.k8s.io", kind="Role", name=app
                ),
                subjects=subject,
                opts=self._k8s([role, account]),
            ),
        ]

    def _deployment(
        self,
        name: str,
        app: str,
        *,
        replicas: int,
        container: k8s.core.v1.ContainerArgs,
        volumes: Sequence[k8s.core.v1.VolumeArgs] = (),
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> k8s.apps.v1.Deployment:
        selector = {"app.kubernetes.io/name": app}
        spread = (
            [
                k8s.core.v1.TopologySpreadConstraintArgs(
                    max_skew=1,
                    topology_key="topology.kubernetes.io/zone",
                    when_unsatisfiable="ScheduleAnyway",
                    label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                )
            ]
            if replicas > 1
            else None
        )
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._meta(app),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**self._labels, **selector}),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=app,
                        priority_class_name="system-cluster-critical",
                        node_selector=SYSTEM_NODES,
                        security_context=_pod_security_context(),
                        containers=[container],
                        volumes=list(volumes) or None,
                        topology_spread_constraints=spread,
                    ),
                ),
            ),
            opts=self._k8s(depends_on),
        )

    # -- Cluster Autoscaler --------------------------------------------------------------------------

    def _cluster_autoscaler(self, name: str) -> None:
        app, args = "cluster-autoscaler", self._args
        policy = pulumi.Output.all(
            args.cluster_name, self._region, self._account, self._partition
        ).apply(lambda v: json.dumps(policies.cluster_autoscaler_policy(v[0], v[1], v[2], v[3])))
        account = self._identity(name, app, "cluster-autoscaler", policy)
        rbac = self._rbac(name, app, account, AUTOSCALER_CLUSTER_RULES, AUTOSCALER_NAMESPACE_RULES)
        # One replica: it elects a leader anyway, and a restart only delays a scale-up.
        self._deployment(
            name,
            app,
            replicas=1,
            container=k8s.core.v1.ContainerArgs(
                name=app,
                image=args.autoscaler_image,
                command=["./cluster-autoscaler"],
                args=args.cluster_name.apply(autoscaler_args),
                env=[k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=self._region)],
                ports=[k8s.core.v1.ContainerPortArgs(name="metrics", container_port=8085)],
                liveness_probe=k8s.core.v1.ProbeArgs(
                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/health-check", port="metrics")
                ),
                # Ready once its loop runs: a rollout waits for the new pod before the old goes.
                readiness_probe=k8s.core.v1.ProbeArgs(
                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/health-check", port="metrics")
                ),
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "100m", "memory": "300Mi"},
                    limits={"cpu": "500m", "memory": "600Mi"},
                ),
                security_context=_security_context(),
            ),
            depends_on=rbac,
        )

    # -- AWS Load Balancer Controller ----------------------------------------------------------------

    def _load_balancer_controller(self, name: str) -> pulumi.Output[str]:
        app, args = "aws-load-balancer-controller", self._args
        policy = pulumi.Output.all(
            args.cluster_name,
            self._region,
            self._account,
            self._partition,
            args.node_security_group_id,
        ).apply(lambda v: json.dumps(policies.load_balancer_controller_policy(*v)))
        account = self._identity(name, app, "load-balancer-controller", policy)
        rbac = self._rbac(
            name, app, account, LOAD_BALANCER_CLUSTER_RULES, LOAD_BALANCER_NAMESPACE_RULES
        )
        crds = [self._crd(name, kind) for kind in _CRDS]
        service_name = "aws-load-balancer-webhook-service"
        ca_pem, cert_pem, key_pem = self._webhook_certificate(name, service_name)
        secret = k8s.core.v1.Secret(
            f"{name}-tls",
            metadata=self._meta(app, "aws-load-balancer-tls"),
            type="kubernetes.io/tls",
            string_data={
                "ca.crt": ca_pem,
                "tls.crt": cert_pem,
                "tls.key": key_pem.apply(pulumi.Output.secret),
            },
            opts=self._k8s(),
        )
        container = k8s.core.v1.ContainerArgs(
            name=app,
            image=args.load_balancer_controller_image,
            args=pulumi.Output.all(args.cluster_name, self._region, args.vpc_id).apply(
                lambda v: load_balancer_args(v[0], v[1], v[2])
            ),
            ports=[
                k8s.core.v1.ContainerPortArgs(name="webhook-server", container_port=WEBHOOK_PORT),
                k8s.core.v1.ContainerPortArgs(name="metrics-server", container_port=8080),
            ],
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(
                    name="cert", mount_path="/tmp/k8s-webhook-server/serving-certs", read_only=True
                )
            ],
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=61779),
                initial_delay_seconds=30,
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=61779),
                initial_delay_seconds=10,
            ),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "128Mi"},
                limits={"cpu": "500m", "memory": "512Mi"},
            ),
            security_context=_security_context(),
        )
        # Two replicas across zones: Ingress admission (the webhooks) must not have one point of failure.
        deployment = self._deployment(
            name,
            app,
            replicas=2,
            container=container,
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="cert",
                    secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name="aws-load-balancer-tls"),
                )
            ],
            depends_on=[*rbac, *crds, secret],
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=self._meta(app),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"app.kubernetes.io/name": app}
                ),
            ),
            opts=self._k8s(),
        )
        service = k8s.core.v1.Service(
            f"{name}-webhook-service",
            metadata=self._meta(app, service_name),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector={"app.kubernetes.io/name": app},
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="webhook", port=443, target_port="webhook-server"
                    )
                ],
            ),
            opts=self._k8s(),
        )
        self._webhooks(name, app, service_name, ca_pem, [deployment, service])
        # The class team endpoints' Ingresses name.
        ingress_class = k8s.networking.v1.IngressClass(
            f"{name}-ingress-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ALB_CLASS, labels={**self._labels, "app.kubernetes.io/name": app}
            ),
            spec=k8s.networking.v1.IngressClassSpecArgs(controller=ALB_CONTROLLER),
            opts=self._k8s([deployment]),
        )
        return ingress_class.metadata.apply(lambda m: m.name or ALB_CLASS)

    def _crd(
        self, name: str, kind: Mapping[str, Any]
    ) -> k8s.apiextensions.v1.CustomResourceDefinition:
        plural = kind["plural"]
        return k8s.apiextensions.v1.CustomResourceDefinition(
            f"{name}-crd-{plural}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{plural}.elbv2.k8s.aws",
                labels={**self._labels, "app.kubernetes.io/name": "aws-load-balancer-controller"},
            ),
            spec=k8s.apiextensions.v1.CustomResourceDefinitionSpecArgs(
                group="elbv2.k8s.aws",
                scope=kind["scope"],
                names=k8s.apiextensions.v1.CustomResourceDefinitionNamesArgs(
                    kind=kind["kind"],
                    list_kind=f"{kind['kind']}List",
                    plural=plural,
                    singular=kind["kind"].lower(),
                ),
                versions=[
                    k8s.apiextensions.v1.CustomResourceDefinitionVersionArgs(
                        name="v1beta1",
                        served=True,
                        storage=True,
                        subresources=k8s.apiextensions.v1.CustomResourceSubresourcesArgs(status={})
                        if kind["status"]
                        else None,
                        schema=k8s.apiextensions.v1.CustomResourceValidationArgs(
                            open_apiv3_schema=kind["schema"]
                        ),
                    )
                ],
            ),
            opts=self._k8s(),
        )

    def _webhook_certificate(
        self, name: str, service: str
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        """A private CA for the webhook's serving certificate (the API server trusts only it)."""
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name="aws-load-balancer-controller-ca"),
            validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=CERT_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=child,
        )
        key = tls.PrivateKey(
            f"{name}-webhook-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child
        )
        dns = [f"{service}.{NAMESPACE}.svc", f"{service}.{NAMESPACE}.svc.cluster.local"]
        request = tls.CertRequest(
            f"{name}-webhook-csr",
            private_key_pem=key.private_key_pem,
            dns_names=dns,
            subject=tls.CertRequestSubjectArgs(common_name=dns[0]),
            opts=child,
        )
        signed = tls.LocallySignedCert(
            f"{name}-webhook-cert",
            cert_request_pem=request.cert_request_pem,
            ca_cert_pem=ca.cert_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=CERT_RENEWAL_HOURS,
            allowed_uses=["key_encipherment", "digital_signature", "server_auth"],
            opts=child,
        )
        return ca.cert_pem, signed.cert_pem, key.private_key_pem

    def _webhooks(
        self,
        name: str,
        app: str,
        service: str,
        ca_pem: pulumi.Output[str],
        depends_on: list[pulumi.Resource],
    ) -> None:
        bundle = ca_pem.apply(lambda pem: base64.b64encode(pem.encode()).decode())

        def client(path: str) -> k8s.admissionregistration.v1.WebhookClientConfigArgs:
            return k8s.admissionregistration.v1.WebhookClientConfigArgs(
                ca_bundle=bundle,
                service=k8s.admissionregistration.v1.ServiceReferenceArgs(
                    name=service, namespace=NAMESPACE, path=path
                ),
            )

        def on(
            groups: list[str], resources: list[str], operations: list[str]
        ) -> list[k8s.admissionregistration.v1.RuleWithOperationsArgs]:
            return [
                k8s.admissionregistration.v1.RuleWithOperationsArgs(
                    api_groups=groups,
                    api_versions=["v1", "v1beta1"],
                    operations=operations,
                    resources=resources,
                )
            ]

        # Pods in namespaces that ask for it get the target group's readiness gate.
        readiness = k8s.meta.v1.LabelSelectorArgs(
            match_expressions=[
                k8s.meta.v1.LabelSelectorRequirementArgs(
                    key="elbv2.k8s.aws/pod-readiness-gate-inject", operator="In", values=["enabled"]
                )
            ]
        )
        k8s.admissionregistration.v1.MutatingWebhookConfiguration(
            f"{name}-mutating-webhook",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="aws-load-balancer-webhook",
                labels={**self._labels, "app.kubernetes.io/name": app},
            ),
            webhooks=[
                k8s.admissionregistration.v1.MutatingWebhookArgs(
                    name="mpod.elbv2.k8s.aws",
                    admission_review_versions=["v1"],
                    client_config=client("/mutate-v1-pod"),
                    failure_policy="Fail",
                    namespace_selector=readiness,
                    rules=on([""], ["pods"], ["CREATE"]),
                    side_effects="None",
                ),
                k8s.admissionregistration.v1.MutatingWebhookArgs(
                    name="mtargetgroupbinding.elbv2.k8s.aws",
                    admission_review_versions=["v1"],
                    client_config=client("/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding"),
                    failure_policy="Fail",
                    rules=on(["elbv2.k8s.aws"], ["targetgroupbindings"], ["CREATE", "UPDATE"]),
                    side_effects="None",
                ),
            ],
            opts=self._k8s(depends_on),
        )
        k8s.admissionregistration.v1.ValidatingWebhookConfiguration(
            f"{name}-validating-webhook",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="aws-load-balancer-webhook",
                labels={**self._labels, "app.kubernetes.io/name": app},
            ),
            webhooks=[
                k8s.admissionregistration.v1.ValidatingWebhookArgs(
                    name="vtargetgroupbinding.elbv2.k8s.aws",
                    admission_review_versions=["v1"],
                    client_config=client("/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding"),
                    failure_policy="Fail",
                    rules=on(["elbv2.k8s.aws"], ["targetgroupbindings"], ["CREATE", "UPDATE"]),
                    side_effects="None",
                ),
                k8s.admissionregistration.v1.ValidatingWebhookArgs(
                    name="vingress.elbv2.k8s.aws",
                    admission_review_versions=["v1"],
                    client_config=client("/validate-networking-v1-ingress"),
                    # An Ingress of another class must not be blocked by this controller's outage.
                    failure_policy="Ignore",
                    match_policy="Equivalent",
                    rules=on(["networking.k8s.io"], ["ingresses"], ["CREATE", "UPDATE"]),
                    side_effects="None",
                ),
            ],
            opts=self._k8s(depends_on),
        )


_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_CRDS = [
    {
        "kind": "TargetGroupBinding",
        "plural": "targetgroupbindings",
        "scope": "Namespaced",
        "status": True,
        "schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["serviceRef", "targetGroupARN"],
                    "properties": {
                        "targetGroupARN": {"type": "string", "minLength": 1},
                        "targetType": {"type": "string", "enum": ["instance", "ip"]},
                        "serviceRef": {
                            "type": "object",
                            "required": ["name", "port"],
                            "properties": {
                                "name": {"type": "string"},
                                "port": {"x-kubernetes-int-or-string": True},
                            },
                        },
                        "networking": _OBJECT,
                        "nodeSelector": _OBJECT,
                        "ipAddressType": {"type": "string", "enum": ["ipv4", "ipv6"]},
                        "vpcID": {"type": "string"},
                    },
                },
                "status": _OBJECT,
            },
        },
    },
    {
        "kind": "IngressClassParams",
        "plural": "ingressclassparams",
        "scope": "Cluster",
        "status": False,
        "schema": {"type": "object", "properties": {"spec": _OBJECT}},
    },
]
"""The controller's two custom resources. Schemas cover the fields this platform relies on and
keep the rest (the controller's own webhook validates them)."""
