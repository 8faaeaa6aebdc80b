"""`mlops:training`: node pools, the team's quota, and the scheduled training pipelines."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from components.config.base import ConfigModel, Cron, Environment, Presets, Quantity
from components.config.resources import ContainerResources
from runtime.spec import Duration, Name, PipelineSpec

INSTANCE_TYPE = r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$"


class Capacity(StrEnum):
    spot = "spot"
    on_demand = "onDemand"


class NodePool(ConfigModel):
    name: Name
    instance_types: Annotated[
        list[Annotated[str, Field(pattern=INSTANCE_TYPE)]],
        Field(min_length=1, max_length=20),
    ]
    capacity: Capacity = Capacity.spot
    min_nodes: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    """0 lets the pool scale to zero when no training runs."""
    max_nodes: Annotated[StrictInt, Field(ge=1, le=100)] = 2
    disk_gb: Annotated[StrictInt, Field(ge=20, le=2000)] = 50


class TrainingPipeline(PipelineSpec, ConfigModel):
    schedule: Cron
    """When to retrain (cron, UTC)."""
    node_pool: Name
    """Node pool (by name) the training pods run on."""
    resources: ContainerResources = ContainerResources(cpu="1", memory="2Gi")
    retries: Annotated[StrictInt, Field(ge=0, le=10)] = 2
    """Pod retries before the run counts as failed (Job backoffLimit)."""
    deadline: Duration = timedelta(hours=6)
    """A run still going after this is stopped (Job activeDeadlineSeconds)."""


class Quota(ConfigModel):
    __presets__: ClassVar[Presets] = {
        Environment.prod: {"cpu": "64", "memory": "256Gi", "pods": 200},
    }

    cpu: Quantity = "16"
    memory: Quantity = "64Gi"
    gpu: Annotated[StrictInt, Field(ge=0, le=1000)] = 4
    pods: Annotated[StrictInt, Field(ge=1, le=10_000)] = 50


class TrainingConfig(ConfigModel):
    node_pools: list[NodePool] = []
    pipelines: list[TrainingPipeline] = []
    quota: Quota = Quota()
