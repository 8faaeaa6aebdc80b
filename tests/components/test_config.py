"""Environment presets: dev cheap, prod safe, the user's word wins where prod allows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.config import parse_stack_config

MINIMAL: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "mlops:cluster": {"stackReference": "acme/platform/x"},
    "mlops:monitoring": {"alertEmails": ["oncall@acme.example"]},
    "mlops:image": f"registry.example/ads/runtime@sha256:{'a' * 64}",
    "mlops:keyAdministrators": ["arn:aws:iam::123456789012:role/mlops-deploy"],
}


def _load(environment: str, **keys: Any) -> Any:
    raw = {**MINIMAL, "mlops:team": "ads", "mlops:environment": environment, **keys}
    return parse_stack_config(raw, file=Path("Pulumi.yaml"), stack=f"ads-{environment}").config


def test_dev_is_cheap_and_prod_is_safe() -> None:
    dev, prod = _load("dev"), _load("prod")

    assert (dev.registry.database.instance_class, dev.registry.database.multi_az) == (
        "db.t4g.micro",
        False,
    )
    assert (
        dev.registry.database.deletion_protection,
        dev.registry.database.backup_retention_days,
    ) == (False, 1)
    assert (prod.registry.database.multi_az, prod.registry.database.deletion_protection) == (
        True,
        True,
    )
    assert prod.registry.database.backup_retention_days == 14
    assert (prod.feature_store.point_in_time_recovery, prod.feature_store.customer_managed_key) == (
        True,
        True,
    )
    assert (dev.registry.server.replicas, prod.registry.server.replicas) == (1, 2)
    assert (dev.monitoring.no_traffic_alarm, prod.monitoring.no_traffic_alarm) == (False, True)


def test_presets_reach_list_items_and_the_user_wins() -> None:
    serving = {
        "externalModels": ["mm"],
        "endpoints": [
            {"name": "aa", "model": "mm"},
            {"name": "bb", "model": "mm", "replicas": {"max": 9}},
        ],
    }
    prod = _load(
        "prod",
        **{"mlops:serving": serving, "mlops:registry": {"database": {"backupRetentionDays": 30}}},
    )
    a, b = prod.serving.endpoints
    assert (a.replicas.min, a.replicas.max) == (2, 6)
    assert (b.replicas.min, b.replicas.max) == (2, 9)
    assert prod.registry.database.backup_retention_days == 30
    assert prod.registry.database.multi_az  # the rest of the preset still applies


def _ranker(environment: str, **pipeline: Any) -> Any:
    """A stack with one pipeline `ranker`, served by an endpoint with a canary."""
    keys = {
        "mlops:featureStore": {
            "entities": [{"name": "user", "joinKey": "user_id"}],
            "featureViews": [
                {
                    "name": "clicks",
                    "entities": ["user"],
                    "source": {"path": "clicks/"},
                    "features": {"ctr_7d": "float64"},
                }
            ],
        },
        "mlops:training": {
            "nodePools": [{"name": "cpu", "instanceTypes": ["m6i.large"]}],
            "pipelines": [
                {
                    "name": "ranker",
                    "schedule": "*/15 * * * *",
                    "nodePool": "cpu",
                    "labels": {"path": "labels/"},
                    "features": ["clicks:ctr_7d"],
                    **pipeline,
                }
            ],
        },
        "mlops:serving": {
            "endpoints": [
                {
                    "name": "rank",
                    "model": "ranker",
                    "replicas": {"min": 2},
                    "canary": {"weight": 10},
                }
            ]
        },
    }
    return _load(environment, **keys)


def test_continuous_training_presets_dev_quick_prod_sparing() -> None:
    def pipeline(environment: str, ct: dict[str, Any]) -> Any:
        return _ranker(environment, continuousTraining=ct).training.pipelines[0]

    ct = {"triggers": {"schedule": {"every": "7d"}}, "promotion": {}}
    dev = pipeline("dev", ct).continuous_training
    prod = pipeline("prod", ct).continuous_training
    staging = pipeline("staging", ct).continuous_training

    assert (dev.cooldown.total_seconds(), dev.budget.runs, dev.min_rows) == (3600, 20, 100)
    assert (prod.cooldown.total_seconds(), prod.budget.runs, prod.min_rows) == (86400, 3, 1000)
    assert (prod.quarantine_after, prod.max_held.days) == (2, 2)
    assert (staging.cooldown.total_seconds(), staging.budget.runs) == (6 * 3600, 5)
    assert (dev.promotion.min_requests, prod.promotion.min_requests) == (200, 2000)
    assert prod.promotion.observe.total_seconds() == 6 * 3600
    # Each trigger stays off unless given; the user's word wins over the preset.
    assert prod.triggers.enabled == ["schedule"]
    mine = pipeline("prod", {**ct, "cooldown": "2h"}).continuous_training
    assert (mine.cooldown.total_seconds(), mine.budget.runs) == (7200, 3)


def test_continuous_training_reaches_the_runtime_with_the_pipeline_deadline_as_lease() -> None:
    from components.training import pipeline_spec
    from runtime.settings import Settings, render_env

    config = _ranker(
        "dev", deadline="2h", continuousTraining={"triggers": {"newData": {"minRows": 50}}}
    )
    env = render_env(pipelines=[pipeline_spec(config.training.pipelines[0])])
    (received,) = Settings.model_validate(
        {"pipelines": json.loads(env["MLOPS_PIPELINES"])}
    ).pipelines

    ct = received.continuous_training
    assert ct is not None
    assert (ct.lease.total_seconds(), ct.cooldown.total_seconds()) == (7200, 3600)
    assert ct.triggers.new_data is not None and ct.triggers.new_data.min_rows == 50
