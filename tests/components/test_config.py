"""Environment presets: dev cheap, prod safe, the user's word wins where prod allows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.config import parse_stack_config

MINIMAL: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "mlops:cluster": {"stackReference": "acme/platform/x"},
    "mlops:monitoring": {"alertEmails": ["oncall@acme.example"]},
    "mlops:image": f"registry.example/ads/runtime@sha256:{'a' * 64}",
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
