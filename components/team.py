"""The shared types at the bottom of the components: who and where (team, cluster), and what
workloads get from the data plane. Imports only the config and naming, nothing above them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config import Environment, StackConfig

MANAGED_BY = "mlops-stack"


@dataclass(frozen=True)
class Team:
    name: str
    environment: Environment
    region: str
    image: pulumi.Input[str]
    """The runtime image every workload runs (`mlops:image`, or the stack's repository's)."""
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: StackConfig, region: str, default_image: pulumi.Input[str] = "") -> Team:
        """The team of ``config``, running `mlops:image` or else ``default_image`` (the stack's
        own repository's; empty for the components built before it, which run nothing)."""
        image = config.image or default_image
        return cls(config.team, config.environment, region, image, dict(config.tags))

    @property
    def prod(self) -> bool:
        return self.environment == Environment.prod

    @property
    def stack(self) -> str:
        return naming.stack_prefix(self.name, self.environment)

    @property
    def namespace(self) -> str:
        """The Kubernetes namespace all of the team's workloads run in."""
        return naming.namespace_name(self.name)

    @property
    def tags(self) -> dict[str, str]:
        """AWS tags for every resource: the user's, then ours (ours win)."""
        return {
            **self.extra_tags,
            "team": self.name,
            "environment": str(self.environment),
            "managed-by": MANAGED_BY,
        }

    @property
    def labels(self) -> dict[str, str]:
        """Kubernetes labels for every object."""
        return {
            "app.kubernetes.io/part-of": "mlops",
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "mlops.dev/team": self.name,
            "mlops.dev/environment": str(self.environment),
        }

    def physical(self, role: str, max_length: int = naming.IAM_ROLE_MAX) -> str:
        return naming.physical_name(self.name, self.environment, role, max_length)


@dataclass(frozen=True)
class ClusterInfo:
    """What the team's stack knows about the shared EKS cluster."""

    name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    node_security_group_id: pulumi.Output[str]
    provider: k8s.Provider
    """The one Kubernetes provider every Kubernetes object of the stack uses."""


@dataclass(frozen=True)
class DatabaseAccess:
    """How a workload reaches the registry database: where it is, as which role, and the
    `rds-db:connect` resource its IAM role needs to sign a login token for that role."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: str
    """The role's own database (no other role may connect to it)."""
    username: str
    """The role (made by the database bootstrap Job; never the master user)."""
    connect_arn: pulumi.Output[str]
    """`arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<username>`."""
    region: str
    """Where the instance is (the token is signed for it)."""

    def uri(self) -> pulumi.Output[str]:
        """A libpq URI without password (it comes from PGPASSFILE), TLS required."""
        return pulumi.Output.all(self.host, self.port).apply(
            lambda v: postgres_uri(str(v[0]), int(v[1]), self.database, self.username)
        )


def postgres_uri(host: str, port: int, database: str, username: str) -> str:
    return f"postgresql://{username}@{host}:{port}/{database}?sslmode=require"


EVENTS_PREFIX = "ct-events"
"""Prefix of the continuous-training event log in the artifact bucket."""


@dataclass(frozen=True)
class DataPlane:
    """What workloads need of the feature store and the model registry (their outputs).

    Built in `__main__.py` from the FeatureStore and ModelRegistry components and handed to
    the compute and monitoring components, so none of them depends on another's internals.
    """

    offline_bucket: pulumi.Output[str]
    """Name of the feature store's offline (S3) bucket."""
    offline_bucket_arn: pulumi.Output[str]
    online_table_arns: pulumi.Output[list[str]]
    """ARNs of the DynamoDB online tables."""
    online_table_names: Mapping[str, pulumi.Output[str]]
    """Feature view name -> its DynamoDB table name."""
    artifact_bucket: pulumi.Output[str]
    """Name of the model registry's artifact bucket."""
    artifact_bucket_arn: pulumi.Output[str]
    kms_key_arns: pulumi.Output[list[str]]
    """Customer-managed keys the data is encrypted with (empty: AWS-managed keys)."""
    database_instance_id: pulumi.Output[str]
    """The registry database's RDS instance identifier."""
    feast_registry_database: DatabaseAccess | None
    """The database the Feast registry lives in (SQL registry): every pod that opens the feature
    store logs in to it. None: the registry is an S3 object."""
    settings: Mapping[str, pulumi.Input[object]]
    """runtime Settings field -> value, for every runtime process that reads features or models
    (tracking_uri, artifact_uri, offline_store_uri, online_store, feast_registry_uri, ...)."""

    def prediction_log_uri(self, endpoint: str) -> pulumi.Output[str]:
        """Where an endpoint's prediction log goes; the serving and monitoring jobs agree on it."""
        return self.artifact_bucket.apply(
            lambda bucket: f"s3://{bucket}/prediction-logs/{endpoint}/"
        )

    def events_uri(self) -> pulumi.Output[str]:
        """Where continuous-training events go, next to the prediction logs; the training and
        monitoring jobs agree on it."""
        return self.artifact_bucket.apply(lambda bucket: f"s3://{bucket}/{EVENTS_PREFIX}/")
