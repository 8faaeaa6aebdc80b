"""The whole `mlops:` namespace of one stack: one field per config key."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import ConfigModel, Environment, PrincipalArn, Tags
from components.config.cluster import Cluster
from components.config.cost import Budget, Usage
from components.config.featurestore import FeatureStoreConfig
from components.config.monitoring import MonitoringConfig
from components.config.network import NetworkConfig
from components.config.registry import RegistryConfig
from components.config.serving import ServingConfig
from components.config.training import TrainingConfig

NAMESPACE = "mlops"
TEAM_PATTERN = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
IMAGE_REFERENCE = r"^[^\s]+$"


class StackConfig(ConfigModel):
    """Everything a team's stack is built from. Keys are `mlops:<field>` in the stack file."""

    team: Annotated[str, Field(pattern=TEAM_PATTERN)]
    """Team name: 2-20 lower-case letters, digits and '-'; the stack is `<team>-<environment>`."""
    environment: Environment
    """dev (cheap), staging, or prod (safe: backups, multi-AZ, deletion protection, 2+ replicas)."""
    cluster: Cluster
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    registry: RegistryConfig = RegistryConfig()
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    network: NetworkConfig = NetworkConfig()
    key_administrators: list[PrincipalArn] = []
    """IAM roles/users that administer the team's KMS keys (data and alert topic): include the
    role that runs `pulumi up`. Nobody else, and no IAM policy alone, may use or manage a key;
    the team's workloads may use it. Required in prod (dev default: the account, via IAM)."""
    tags: Tags = {}
    """Extra AWS tags on every resource (team, environment and managed-by are always set)."""
    budget: Budget | None = None
    """What the stack may cost a month; the policy pack fails a change whose estimate can pass it."""
    usage: Usage = Usage()
    """Usage the cost estimate assumes (`mlops cost`); defaults per environment."""
    image: Annotated[str, Field(min_length=3, max_length=512, pattern=IMAGE_REFERENCE)] | None = (
        None
    )
    """Runtime container image for every workload. Default: the stack's own ECR repository,
    `<repository>:dev` (what `mlops image build --push` pushes); prod: `<repository>@sha256:...`."""

    @property
    def stack_name(self) -> str:
        return f"{self.team}-{self.environment}"

    @property
    def feast_project(self) -> str:
        return self.feature_store.project or self.team.replace("-", "_")


CONFIG_KEYS: dict[str, str] = {
    (field.alias or name): name for name, field in StackConfig.model_fields.items()
}
"""`<key>` of `mlops:<key>` -> StackConfig field name."""
REQUIRED_KEYS = tuple(
    key for key, name in CONFIG_KEYS.items() if StackConfig.model_fields[name].is_required()
)
