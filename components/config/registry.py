"""`mlops:registry`: the model registry (artifact bucket, PostgreSQL, MLflow server)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from components.config.base import ConfigModel, Environment, Presets
from components.config.featurestore import Lifecycle
from components.config.resources import ContainerResources

INSTANCE_CLASS = r"^db\.[a-z0-9]+\.[a-z0-9]+$"
ENGINE_VERSION = r"^1[3-9](\.\d+)?$"


class Database(ConfigModel):
    __presets__: ClassVar[Presets] = {
        Environment.dev: {"instanceClass": "db.t4g.micro", "storageGb": 20},
        Environment.staging: {"instanceClass": "db.t4g.small", "backupRetentionDays": 3},
        Environment.prod: {
            "instanceClass": "db.t4g.medium",
            "storageGb": 50,
            "multiAz": True,
            "backupRetentionDays": 14,
            "deletionProtection": True,
            "performanceInsights": True,
        },
    }

    instance_class: Annotated[str, Field(pattern=INSTANCE_CLASS)] = "db.t4g.micro"
    storage_gb: Annotated[StrictInt, Field(ge=20, le=65_536)] = 20
    max_storage_gb: Annotated[StrictInt, Field(ge=20, le=65_536)] | None = None
    """Storage autoscaling ceiling (default: 4 x storageGb)."""
    engine_version: Annotated[str, Field(pattern=ENGINE_VERSION)] = "16"
    """PostgreSQL major (or major.minor) version."""
    backup_retention_days: Annotated[StrictInt, Field(ge=0, le=35)] = 1
    multi_az: bool = False
    deletion_protection: bool = False
    performance_insights: bool = False


class MlflowServer(ConfigModel):
    __presets__: ClassVar[Presets] = {Environment.prod: {"replicas": 2}}

    replicas: Annotated[StrictInt, Field(ge=1, le=10)] = 1
    resources: ContainerResources = ContainerResources(cpu="250m", memory="1Gi")


class RegistryConfig(ConfigModel):
    database: Database = Database()
    server: MlflowServer = MlflowServer()
    artifact_lifecycle: Lifecycle = Lifecycle()
