"""`mlops:featureStore`: the declared features (runtime spec) plus where and how they are stored."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, StrictInt, Tag

from components.config.base import ConfigModel, Cron, Environment, Presets
from components.config.resources import ContainerResources
from runtime.spec import FeatureStoreSpec


class OnDemand(ConfigModel):
    billing: Literal["onDemand"] = "onDemand"


class Provisioned(ConfigModel):
    billing: Literal["provisioned"]
    read_capacity: Annotated[StrictInt, Field(ge=1, le=40_000)] = 5
    """Minimum read capacity units; autoscaling raises it up to `maxReadCapacity`."""
    write_capacity: Annotated[StrictInt, Field(ge=1, le=40_000)] = 5
    max_read_capacity: Annotated[StrictInt, Field(ge=1, le=40_000)] = 100
    max_write_capacity: Annotated[StrictInt, Field(ge=1, le=40_000)] = 100
    target_utilization: Annotated[StrictInt, Field(ge=20, le=90)] = 70
    """Percent of provisioned capacity that autoscaling aims for."""


OnlineCapacity = Annotated[
    Annotated[OnDemand, Tag("onDemand")] | Annotated[Provisioned, Tag("provisioned")],
    Discriminator(
        lambda v: (
            v.get("billing", "onDemand") if isinstance(v, dict) else getattr(v, "billing", None)
        ),
        custom_error_type="billing",
        custom_error_message="billing is onDemand or provisioned",
    ),
]


class S3Registry(ConfigModel):
    type: Literal["s3"] = "s3"


class SqlRegistry(ConfigModel):
    type: Literal["sql"]
    """Keep the Feast registry in the model registry's PostgreSQL database."""


FeastRegistry = Annotated[
    Annotated[S3Registry, Tag("s3")] | Annotated[SqlRegistry, Tag("sql")],
    Discriminator(
        lambda v: v.get("type", "s3") if isinstance(v, dict) else getattr(v, "type", None),
        custom_error_type="registry_type",
        custom_error_message="registry type is s3 or sql",
    ),
]


class Lifecycle(ConfigModel):
    noncurrent_version_expiration_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 30
    """Delete overwritten object versions after this many days."""
    infrequent_access_after_days: Annotated[StrictInt, Field(ge=30, le=3650)] | None = None
    """Move objects to STANDARD_IA after this many days (none: never)."""
    expiration_days: Annotated[StrictInt, Field(ge=1, le=36500)] | None = None
    """Delete objects after this many days (none: keep)."""


class Materialization(ConfigModel):
    schedule: Cron = "0 * * * *"
    resources: ContainerResources = ContainerResources()
    completions: Annotated[int, Field(ge=1, le=100)] = 1
    """Shares the online feature views are materialized in, one pod each (a Kubernetes Indexed
    Job above 1): each view by exactly one share. Needs the SQL registry."""
    parallelism: Annotated[int, Field(ge=1, le=100)] | None = None
    """Pods materializing at once (default: all of ``completions``); at most ``completions``."""


class FeatureStoreConfig(FeatureStoreSpec, ConfigModel):
    __presets__: ClassVar[Presets] = {
        Environment.prod: {"pointInTimeRecovery": True, "customerManagedKey": True},
        Environment.staging: {"pointInTimeRecovery": True},
    }

    materialization: Materialization = Materialization()
    online_capacity: OnlineCapacity = OnDemand()
    registry: FeastRegistry = S3Registry()
    offline_lifecycle: Lifecycle = Lifecycle()
    point_in_time_recovery: bool = False
    """DynamoDB point-in-time recovery on online tables (prod default: on)."""
    customer_managed_key: bool = False
    """Encrypt bucket and tables with the team's own KMS key (prod default: on)."""
