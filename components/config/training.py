"""`mlops:training`: node pools, the team's quota, and the scheduled training pipelines."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from components.config.base import ConfigModel, Cron, Environment, Presets, Quantity
from components.config.resources import ContainerResources
from runtime.spec import AutoPromotion, ContinuousTraining, Duration, Name, PipelineSpec

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


class AutoPromotionConfig(AutoPromotion, ConfigModel):
    __presets__: ClassVar[Presets] = {
        Environment.dev: {"observe": "30m", "minRequests": 200},
        Environment.prod: {"observe": "6h", "minRequests": 2000, "minLabelledRows": 500},
    }


class ContinuousTrainingConfig(ContinuousTraining, ConfigModel):
    # dev: quick feedback; prod: few, well-spaced retrains and a person told early.
    __presets__: ClassVar[Presets] = {
        Environment.dev: {"minRows": 100, "cooldown": "1h", "budget": {"runs": 20, "per": "7d"}},
        Environment.prod: {
            "minRows": 1000,
            "cooldown": "24h",
            "budget": {"runs": 3, "per": "7d"},
            "quarantineAfter": 2,
            "maxHeld": "2d",
        },
    }

    promotion: AutoPromotionConfig | None = None
    """Promote a healthy canary automatically; None: promote by hand (`mlops-runtime promote`)."""


class TrainingPipeline(PipelineSpec, ConfigModel):
    schedule: Cron
    """When to retrain (cron, UTC); with `continuousTraining`, when the training job checks
    whether a retrain is due (e.g. every 15 minutes)."""
    node_pool: Name
    """Node pool (by name) the training pods run on."""
    resources: ContainerResources = ContainerResources(cpu="1", memory="2Gi")
    retries: Annotated[StrictInt, Field(ge=0, le=10)] = 2
    """Pod retries before the run counts as failed (Job backoffLimit)."""
    deadline: Duration = timedelta(hours=6)
    """A run still going after this is stopped (Job activeDeadlineSeconds)."""
    continuous_training: ContinuousTrainingConfig | None = None
    """Retrain on drift, decay, new data or age, and promote a healthy canary, with guardrails
    (None: train on `schedule`, promote by hand)."""


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
