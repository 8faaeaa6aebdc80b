"""`mlops:registry:ModelRegistry`: the team's MLflow (artifact bucket, PostgreSQL, tracking server).

How pods log in to the database without a password in config, state or a manifest, and why
only the bootstrap Job reads the master secret: `components/database.py`.

Who reaches port 5432: the database's security group admits one security group, the team's
database clients' (`<team>-<env>-registry-db-clients`), which EKS's security groups for pods
attach to exactly the pods labelled `mlops.dev/database-client` (a SecurityGroupPolicy, next to
the cluster's node security group so the pods keep every other flow); not the node group, whose
security group every pod of every team carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming, workload
from components.config.registry import Database, RegistryConfig
from components.database import (
    BOOTSTRAP_NAME,
    DATABASE_CLIENT_LABEL,
    DatabaseLogin,
    bootstrap_job,
    database_login,
)
from components.iam import (
    WorkloadIdentity,
    database_statements,
    db_user_arn,
    master_secret_statements,
    policy_document,
    statement,
)
from components.storage import SecureBucket
from components.team import ClusterInfo, DatabaseAccess, Team, postgres_uri
from runtime.spec import DatabaseRoleSpec

DATABASE_NAME = "mlops"
"""The instance's first database: the master user's (the bootstrap logs in to it), no data."""
MASTER_USERNAME = "mlops"
MLFLOW_ROLE = DatabaseRoleSpec(role="mlflow", database="mlflow")
"""MLflow's tracking store: its login role and the database it owns."""
FEAST_ROLE = DatabaseRoleSpec(role="feast", database="feast_registry")
"""Feast's SQL registry (only where a stack chooses it)."""
SECURITY_GROUP_POLICY_API = "vpc.amazonaws.com/v1beta1"
DATABASE_CLIENTS = "database-clients"
"""The SecurityGroupPolicy's name."""
POSTGRES_PORT = 5432
TRACKING_PORT = 5000
SERVER_NAME = "mlflow"
"""Deployment, Service and service account name of the tracking server."""
ARTIFACT_PREFIX = "artifacts"
SAGEMAKER_SERVICE = f"{SERVER_NAME}-sagemaker"
"""The Service that puts MLflow behind an internal NLB for the stack's SageMaker variants."""
NLB_NAME_MAX = 32
LB_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-"
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7


def sqlalchemy_uri(uri: str) -> str:
    """The URI with the driver the image ships: SQLAlchemy 2.1 maps a bare `postgresql://` to
    psycopg 3, which the runtime image does not have (found by `mlops rehearse`)."""
    return "postgresql+psycopg2://" + uri.removeprefix("postgresql://")


def tracking_uri(service: str, namespace: str, port: int = TRACKING_PORT) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{port}"


def allowed_hosts(
    service: str,
    namespace: str,
    port: int = TRACKING_PORT,
    *,
    load_balancer: str | None = None,
    region: str | None = None,
) -> list[str]:
    """Host headers the tracking server accepts: its in-cluster DNS names, a port-forward, and
    (``load_balancer``) the DNS name AWS gives that NLB (`<name>-<id>.elb.<region>.amazonaws.com`)."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ]
    if load_balancer is not None:
        names.append(f"{load_balancer}-*.elb.{region}.amazonaws.com")
    return [host for name in names for host in (name, f"{name}:{port}")]


def sagemaker_load_balancer_name(team: Team) -> str:
    """The internal NLB's name (its DNS name starts with it: the host check relies on that)."""
    return team.physical("mlflow-sm", NLB_NAME_MAX)


def load_balancer_annotations(name: str, security_group_id: str) -> dict[str, str]:
    """An internal NLB made by the AWS Load Balancer Controller: ip targets (the MLflow pods),
    its own security group (which admits only the SageMaker variants), the backend rules that
    let it reach the pods managed by the controller, and the client address not preserved, so
    the pods see the load balancer's subnets (what their NetworkPolicy admits)."""
    return {
        f"{LB_ANNOTATION}type": "external",
        f"{LB_ANNOTATION}nlb-target-type": "ip",
        f"{LB_ANNOTATION}scheme": "internal",
        f"{LB_ANNOTATION}name": name,
        f"{LB_ANNOTATION}security-groups": security_group_id,
        f"{LB_ANNOTATION}manage-backend-security-group-rules": "true",
        f"{LB_ANNOTATION}target-group-attributes": "preserve_client_ip.enabled=false",
    }


def load_balancer_hostname(status: Any) -> str | None:
    """The NLB's DNS name from the Service's status (None until the controller made it)."""
    if status is None:
        return None
    if hasattr(status, "load_balancer"):  # the SDK's output type
        ingress = getattr(status.load_balancer, "ingress", None) or []
        return getattr(ingress[0], "hostname", None) if ingress else None
    ingress = (status.get("loadBalancer") or {}).get("ingress")
    return (ingress or [{}])[0].get("hostname")


def parameter_group_family(engine_version: str) -> str:
    return f"postgres{engine_version.split('.', 1)[0]}"


def max_storage_gb(database: Database) -> int:
    """Storage autoscaling ceiling: the configured one, else four times the initial size."""
    return database.max_storage_gb or min(database.storage_gb * 4, 65_536)


def server_document(
    bucket_arn: str, kms_key_arn: str | None, connect_arn: str
) -> dict[str, object]:
    """The tracking server's policy: read its artifact bucket (the UI lists and shows artifacts;
    it proxies no upload), its key, log in to the database as `mlflow` (never the master)."""
    statements = [
        statement("ArtifactBucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]),
        statement("ReadArtifacts", ["s3:GetObject"], [f"{bucket_arn}/{ARTIFACT_PREFIX}/*"]),
    ]
    if kms_key_arn:
        statements.append(statement("ArtifactKey", ["kms:Decrypt"], [kms_key_arn]))
    statements += database_statements(connect_arn)
    return policy_document(*statements)


def bootstrap_document(secret_arn: str, secret_kms_key_arn: str | None) -> dict[str, object]:
    """The database bootstrap Job's policy: read the master secret, nothing else."""
    return policy_document(*master_secret_statements(secret_arn, secret_kms_key_arn))


def security_group_policy_spec(
    group_ids: list[pulumi.Input[str]],
) -> dict[str, object]:
    """A SecurityGroupPolicy's spec: the database-client pods get ``group_ids``."""
    return {
        "podSelector": {"matchLabels": dict(DATABASE_CLIENT_LABEL)},
        "securityGroups": {"groupIds": group_ids},
    }


@dataclass(frozen=True, kw_only=True)
class ModelRegistryArgs:
    config: RegistryConfig
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team namespace (pass the TeamNamespace output so objects wait for it)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """The team's KMS key; None: AWS-managed keys."""
    feast_registry: bool = False
    """The Feast registry lives in this database too: a role (and database) for it."""
    sagemaker_access: bool = False
    """The stack serves on SageMaker: MLflow also behind an internal NLB its variants reach."""


class ModelRegistry(pulumi.ComponentResource):
    """MLflow for one team: versions, lineage, aliases; artifacts in S3, metadata in PostgreSQL."""

    tracking_uri: pulumi.Output[str]
    """In-cluster URI of the tracking server (`http://mlflow.<namespace>.svc.cluster.local:5000`)."""
    artifact_bucket: pulumi.Output[str]
    """Name of the artifact bucket."""
    artifact_bucket_arn: pulumi.Output[str]
    artifact_uri: pulumi.Output[str]
    """Where experiments store artifacts (`s3://<bucket>/artifacts`)."""
    database_endpoint: pulumi.Output[str]
    """`<address>:<port>` of the PostgreSQL instance."""
    database_instance_id: pulumi.Output[str]
    """The RDS instance identifier (CloudWatch dimension `DBInstanceIdentifier`)."""
    secret_arn: pulumi.Output[str]
    """The RDS-managed master secret: read by the bootstrap Job alone."""
    database: DatabaseAccess
    """MLflow's login (the tracking server's)."""
    feast_database: DatabaseAccess | None
    """The Feast registry's login, for every pod that opens Feast; None: no SQL registry."""
    client_security_group_id: pulumi.Output[str]
    """The security group the database admits (the database-client pods wear it)."""
    server_role_arn: pulumi.Output[str]
    """IRSA role of the tracking server."""
    bootstrap_role_arn: pulumi.Output[str]
    """IRSA role of the database bootstrap Job (reads the master secret; decrypts it with the
    team key)."""
    sagemaker_tracking_uri: pulumi.Output[str] | None = None
    """MLflow through its internal NLB (`http://<nlb dns>:5000`), for SageMaker variants, which
    cannot resolve cluster names; None without a SageMaker endpoint."""
    sagemaker_security_group_id: pulumi.Output[str] | None = None
    """The NLB's security group: each SageMaker endpoint admits its variants to it."""

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:registry:ModelRegistry", name, None, opts)
        team, cluster, db = args.team, args.cluster, args.config.database
        child = pulumi.ResourceOptions(parent=self)

        # Model artifacts: hardened like every data bucket.
        bucket = SecureBucket(
            f"{name}-artifacts",
            team=team,
            role="models",
            lifecycle=args.config.artifact_lifecycle,
            kms_key_arn=args.kms_key_arn,
            opts=child,
        )

        # The database lives in the cluster's private subnets only.
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            description=f"Private subnets of the model registry database of {team.stack}",
            subnet_ids=cluster.private_subnet_ids,
            tags=team.tags,
            opts=child,
        )
        # Only the team's database clients may open a connection (security groups for pods).
        security_group = aws.ec2.SecurityGroup(
            f"{name}-db-sg",
            # The description predates security groups for pods and stays: it is immutable, and a
            # new one would replace the group the instance is attached to (its rules below say
            # who is admitted: the database clients, not the nodes).
            description=f"PostgreSQL of the model registry of {team.stack}: cluster nodes only",
            vpc_id=cluster.vpc_id,
            tags={**team.tags, "Name": team.physical("registry-db")},
            opts=child,
        )
        clients = aws.ec2.SecurityGroup(
            f"{name}-db-clients-sg",
            description=f"Pods of {team.stack} that log in to the model registry database",
            vpc_id=cluster.vpc_id,
            tags={**team.tags, "Name": team.physical("registry-db-clients")},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-from-clients",
            security_group_id=security_group.id,
            referenced_security_group_id=clients.id,
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            description="PostgreSQL from the team's database clients",
            tags=team.tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-db-clients-to-db",
            security_group_id=clients.id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            description="PostgreSQL to the model registry database",
            tags=team.tags,
            opts=child,
        )
        # The server refuses unencrypted connections.
        parameters = aws.rds.ParameterGroup(
            f"{name}-db-params",
            family=parameter_group_family(db.engine_version),
            description=f"Model registry database of {team.stack}: TLS only",
            parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
            tags=team.tags,
            opts=child,
        )
        identifier = naming.rds_identifier(team.name, team.environment)
        # Runs, versions and aliases; the password is generated and kept by Secrets Manager.
        instance = aws.rds.Instance(
            f"{name}-db",
            identifier=identifier,
            engine="postgres",
            engine_version=db.engine_version,
            instance_class=db.instance_class,
            allocated_storage=db.storage_gb,
            max_allocated_storage=max_storage_gb(db),
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=DATABASE_NAME,
            username=MASTER_USERNAME,
            manage_master_user_password=True,
            # The workloads' roles log in with IAM tokens (rds-db:connect), not passwords.
            iam_database_authentication_enabled=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=db.multi_az,
            backup_retention_period=db.backup_retention_days,
            deletion_protection=db.deletion_protection,
            skip_final_snapshot=not team.prod,
            final_snapshot_identifier=f"{identifier}-final" if team.prod else None,
            copy_tags_to_snapshot=True,
            performance_insights_enabled=db.performance_insights,
            performance_insights_retention_period=(
                PERFORMANCE_INSIGHTS_RETENTION_DAYS if db.performance_insights else None
            ),
            performance_insights_kms_key_id=(args.kms_key_arn if db.performance_insights else None),
            auto_minor_version_upgrade=True,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            tags=team.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=team.prod),
        )
        secret_arn = instance.master_user_secrets.apply(lambda secrets: str(secrets[0].secret_arn))

        def access(role: DatabaseRoleSpec) -> DatabaseAccess:
            return DatabaseAccess(
                host=instance.address,
                port=instance.port,
                database=role.database,
                username=role.role,
                connect_arn=pulumi.Output.all(instance.arn, instance.resource_id).apply(
                    lambda v: db_user_arn(str(v[0]), str(v[1]), role.role)
                ),
                region=team.region,
            )

        self.database = access(MLFLOW_ROLE)
        self.feast_database = access(FEAST_ROLE) if args.feast_registry else None
        roles = [MLFLOW_ROLE, *([FEAST_ROLE] if args.feast_registry else [])]

        k8s_child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        # Pods labelled as database clients get the clients' security group (and keep the
        # node group's, for every other flow); the database admits no other.
        k8s.apiextensions.CustomResource(
            f"{name}-db-clients",
            api_version=SECURITY_GROUP_POLICY_API,
            kind="SecurityGroupPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DATABASE_CLIENTS, namespace=args.namespace, labels=team.labels
            ),
            spec=security_group_policy_spec([clients.id, cluster.node_security_group_id]),
            opts=k8s_child,
        )
        # The one identity that reads the master secret, and the Job that makes the roles.
        bootstrap_identity = WorkloadIdentity(
            f"{name}-bootstrap-identity",
            team=team,
            cluster=cluster,
            namespace=args.namespace,
            service_account=BOOTSTRAP_NAME,
            policy=pulumi.Output.all(secret_arn, args.kms_key_arn).apply(
                lambda v: json.dumps(bootstrap_document(v[0], v[1]))
            ),
            opts=child,
        )
        bootstrap = bootstrap_job(
            f"{name}-bootstrap",
            team=team,
            namespace=args.namespace,
            service_account=bootstrap_identity.service_account.metadata.apply(
                lambda m: m.name or BOOTSTRAP_NAME
            ),
            admin_uri=pulumi.Output.all(instance.address, instance.port).apply(
                lambda v: postgres_uri(str(v[0]), int(v[1]), DATABASE_NAME, MASTER_USERNAME)
            ),
            master_secret_arn=secret_arn,
            roles=roles,
            opts=k8s_child,
        )

        # The tracking server's own AWS identity: its bucket prefix and its database login.
        policy = pulumi.Output.all(bucket.arn, args.kms_key_arn, self.database.connect_arn).apply(
            lambda v: json.dumps(server_document(v[0], v[1], v[2]))
        )
        identity = WorkloadIdentity(
            f"{name}-identity",
            team=team,
            cluster=cluster,
            namespace=args.namespace,
            service_account=SERVER_NAME,
            policy=policy,
            opts=child,
        )

        labels = workload.labels(team.labels, "model-registry", SERVER_NAME)
        selector = {"app.kubernetes.io/name": SERVER_NAME, "mlops.dev/team": team.name}
        artifact_uri = bucket.name.apply(lambda b: f"s3://{b}/{ARTIFACT_PREFIX}")
        login = database_login(self.database, team.image)
        # The tracking server: MLflow on the team's database and bucket, reachable in-cluster only.
        k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVER_NAME, namespace=args.namespace, labels=labels
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.config.server.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0, max_surge=1
                    ),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**labels, **login.labels}),
                    spec=workload.pod_spec(
                        [
                            self._server_container(
                                team, args, self.database.uri(), login, artifact_uri
                            )
                        ],
                        service_account=identity.service_account.metadata.apply(
                            lambda m: m.name or SERVER_NAME
                        ),
                        volumes=[*login.volumes, _tmp_volume()],
                        init_containers=login.init_containers,
                        topology_spread_constraints=[
                            k8s.core.v1.TopologySpreadConstraintArgs(
                                max_skew=1,
                                topology_key="topology.kubernetes.io/zone",
                                when_unsatisfiable="ScheduleAnyway",
                                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                            )
                        ],
                    ),
                ),
            ),
            # MLflow logs in as `mlflow`: the role must exist first.
            opts=pulumi.ResourceOptions.merge(
                k8s_child, pulumi.ResourceOptions(depends_on=[bootstrap])
            ),
        )
        # A stable in-cluster name for the tracking URI.
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVER_NAME, namespace=args.namespace, labels=labels
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=TRACKING_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=k8s_child,
        )
        if args.sagemaker_access:
            self._sagemaker_access(name, args, labels, selector, child, k8s_child)
        if team.prod:
            # Node drains never take the last tracking server down.
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=SERVER_NAME, namespace=args.namespace, labels=labels
                ),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                ),
                opts=k8s_child,
            )

        self.tracking_uri = service.metadata.apply(
            lambda m: tracking_uri(m.name or SERVER_NAME, m.namespace or team.namespace)
        )
        self.artifact_bucket = bucket.name
        self.artifact_bucket_arn = bucket.arn
        self.artifact_uri = artifact_uri
        self.database_endpoint = instance.endpoint
        self.database_instance_id = instance.identifier
        self.secret_arn = secret_arn
        self.client_security_group_id = clients.id
        self.server_role_arn = identity.role.arn
        self.bootstrap_role_arn = bootstrap_identity.role.arn
        self.register_outputs(
            {
                "trackingUri": self.tracking_uri,
                "artifactBucket": self.artifact_bucket,
                "artifactUri": self.artifact_uri,
                "databaseEndpoint": self.database_endpoint,
                "databaseInstanceId": self.database_instance_id,
                "secretArn": self.secret_arn,
                "serverRoleArn": self.server_role_arn,
            }
        )

    def _sagemaker_access(
        self,
        name: str,
        args: ModelRegistryArgs,
        labels: dict[str, str],
        selector: dict[str, str],
        child: pulumi.ResourceOptions,
        k8s_child: pulumi.ResourceOptions,
    ) -> None:
        """MLflow behind an internal NLB with a security group of its own: SageMaker variants
        live in the VPC, outside the cluster's DNS and NetworkPolicy; each SageMaker endpoint
        admits its variants' security group to this one (components/sagemaker.py)."""
        team, cluster = args.team, args.cluster
        vpc = aws.ec2.get_vpc_output(
            id=cluster.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sagemaker-lb-sg",
            description=f"MLflow load balancer of {team.stack}: the SageMaker variants only",
            vpc_id=cluster.vpc_id,
            tags={**team.tags, "Name": team.physical("mlflow-sagemaker-lb", 255)},
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sagemaker-lb-to-mlflow",
            security_group_id=security_group.id,
            cidr_ipv4=vpc.cidr_block,
            ip_protocol="tcp",
            from_port=TRACKING_PORT,
            to_port=TRACKING_PORT,
            description="To the MLflow pods (ip targets) and their health checks",
            tags=team.tags,
            opts=child,
        )
        lb_name = sagemaker_load_balancer_name(team)
        service = k8s.core.v1.Service(
            f"{name}-sagemaker-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SAGEMAKER_SERVICE,
                namespace=args.namespace,
                labels=labels,
                annotations=security_group.id.apply(
                    lambda sg: load_balancer_annotations(lb_name, sg)
                ),
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=TRACKING_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=k8s_child,
        )
        self.sagemaker_security_group_id = security_group.id
        self.sagemaker_tracking_uri = service.status.apply(
            lambda status: f"http://{load_balancer_hostname(status)}:{TRACKING_PORT}"
        )

    @staticmethod
    def _server_container(
        team: Team,
        args: ModelRegistryArgs,
        backend_uri: pulumi.Output[str],
        login: DatabaseLogin,
        artifact_uri: pulumi.Output[str],
    ) -> k8s.core.v1.ContainerArgs:
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="http")
        return workload.runtime_container(
            SERVER_NAME,
            image=team.image,
            command=["mlflow"],
            args=server_args(
                team.namespace,
                load_balancer=sagemaker_load_balancer_name(team) if args.sagemaker_access else None,
                region=team.region,
            ),
            env_vars=[
                *login.env,
                # Outputs go through env (the CLI reads both), the static flags through args.
                k8s.core.v1.EnvVarArgs(
                    name="MLFLOW_BACKEND_STORE_URI", value=backend_uri.apply(sqlalchemy_uri)
                ),
                # Clients read and write artifacts in S3 themselves (--no-serve-artifacts).
                k8s.core.v1.EnvVarArgs(name="MLFLOW_DEFAULT_ARTIFACT_ROOT", value=artifact_uri),
                k8s.core.v1.EnvVarArgs(name="AWS_DEFAULT_REGION", value=team.region),
                k8s.core.v1.EnvVarArgs(name="HOME", value=workload.WORK_DIR),
                # MLflow 3's job runner (GenAI jobs, a dozen huey processes) is not what a model
                # registry needs, and it alone outgrows the server's memory (`mlops rehearse`).
                k8s.core.v1.EnvVarArgs(name="MLFLOW_SERVER_ENABLE_JOB_EXECUTION", value="false"),
            ],
            spec=args.config.server.resources,
            extra_mounts=[
                *login.mounts,
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
            ports=[
                k8s.core.v1.ContainerPortArgs(
                    name="http", container_port=TRACKING_PORT, protocol="TCP"
                )
            ],
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=health, period_seconds=10, timeout_seconds=5, failure_threshold=3
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=health,
                initial_delay_seconds=30,
                period_seconds=20,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=health, period_seconds=5, failure_threshold=60
            ),
        )


def server_args(
    namespace: str, *, load_balancer: str | None = None, region: str | None = None
) -> list[str]:
    """`mlflow server` arguments: no artifact proxy, host check on for the in-cluster names.

    Without the proxy nobody writes model artifacts through the server: only the training role
    may write the artifact bucket, so a pod that reaches MLflow cannot upload a model (it can
    only point a version at artifacts training wrote, and serving checks where they are).
    The backend store and the artifact root come from MLFLOW_BACKEND_STORE_URI and
    MLFLOW_DEFAULT_ARTIFACT_ROOT (computed by the stack).
    """
    return [
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        str(TRACKING_PORT),
        "--workers",
        "2",
        "--no-serve-artifacts",
        "--allowed-hosts",
        ",".join(allowed_hosts(SERVER_NAME, namespace, load_balancer=load_balancer, region=region)),
    ]


def _tmp_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")
    )
