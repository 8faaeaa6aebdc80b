"""`mlops:budget` and `mlops:usage`: what a stack may cost, and the usage its estimate assumes."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from components.config.base import ConfigModel, Environment, Presets

BUDGET_WARN_PERCENT = 80


class Budget(ConfigModel):
    monthly_usd: Annotated[float, Field(gt=0, le=10_000_000)]
    """The most the stack may cost a month (USD, list prices): the policy pack fails a stack
    whose estimate can go above it (the top of its range)."""
    warn_at_percent: Annotated[int, Field(ge=1, le=100)] = BUDGET_WARN_PERCENT
    """Warn (without failing) when the top of the range passes this share of the budget."""


class Usage(ConfigModel):
    """What the estimate cannot read from the resources, per month. Request and transfer
    volumes count from none to `peakFactor` times the figure; stored GB are as given."""

    __presets__: ClassVar[Presets] = {
        Environment.staging: {
            "nodePoolHours": 40,
            "replicaLoadPercent": 10,
            "bucketStorageGb": 50,
            "bucketPutRequests": 100_000,
            "bucketGetRequests": 1_000_000,
            "onlineReadsMillions": 5,
            "onlineWritesMillions": 2,
            "onlineStorageGb": 5,
            "natDataGb": 500,
        },
        Environment.prod: {
            "nodePoolHours": 100,
            "replicaLoadPercent": 25,
            "bucketStorageGb": 200,
            "bucketPutRequests": 500_000,
            "bucketGetRequests": 5_000_000,
            "onlineReadsMillions": 50,
            "onlineWritesMillions": 10,
            "onlineStorageGb": 20,
            "imageStorageGb": 20,
            "alertNotifications": 1000,
            "natDataGb": 2000,
            "loadBalancerCapacityUnits": 2,
        },
    }

    shared_node_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$")] = (
        "m6i.xlarge"
    )
    """Instance type of the cluster's shared nodes: serving, MLflow and job pods are priced at
    their requests' share of one (the larger of CPU and memory)."""
    node_pool_hours: Annotated[float, Field(ge=0, le=1_000_000)] = 20
    """Node-hours each team node pool runs above its desired size (training runs)."""
    replica_load_percent: Annotated[int, Field(ge=0, le=100)] = 0
    """Where autoscaled endpoints sit on average, from min (0) to max (100) replicas."""
    job_run_minutes: Annotated[float, Field(gt=0, le=10_080)] = 10
    """How long one run of a scheduled job on the shared nodes takes (materialization, drift)."""
    bucket_storage_gb: Annotated[float, Field(ge=0)] = 10
    """GB stored in each S3 bucket."""
    bucket_put_requests: Annotated[int, Field(ge=0)] = 10_000
    """PUT/LIST requests to each bucket."""
    bucket_get_requests: Annotated[int, Field(ge=0)] = 100_000
    """GET requests to each bucket."""
    online_reads_millions: Annotated[float, Field(ge=0)] = 0.5
    """Million read request units on each on-demand online table."""
    online_writes_millions: Annotated[float, Field(ge=0)] = 0.5
    """Million write request units on each on-demand online table (materialization)."""
    online_storage_gb: Annotated[float, Field(ge=0)] = 1
    """GB stored in each online table."""
    image_storage_gb: Annotated[float, Field(ge=0)] = 5
    """GB of images kept in the runtime image repository."""
    alert_notifications: Annotated[int, Field(ge=0)] = 100
    """Alerts published to the topic (each delivered to every subscription)."""
    nat_data_gb: Annotated[float, Field(ge=0)] = 100
    """GB through each NAT gateway (platform stacks)."""
    load_balancer_capacity_units: Annotated[float, Field(ge=0)] = 1
    """Average load balancer capacity units (LCU) each load balancer uses."""
    peak_factor: Annotated[float, Field(ge=1, le=1000)] = 3
    """The top of a request or transfer range: this many times the figure above."""
