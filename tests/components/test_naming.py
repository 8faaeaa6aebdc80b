"""Naming and sizing arithmetic, without any mocks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from components import naming


def test_fit_keeps_short_names_and_hashes_long_ones() -> None:
    assert naming.fit("fraud-prod-serving", 64) == "fraud-prod-serving"
    long = "recommendations-staging-" + "x" * 60
    fitted = naming.fit(long, 64)
    assert len(fitted) == 64 and fitted.startswith("recommendations-staging-x")
    assert fitted != naming.fit(long + "y", 64)  # distinct names stay distinct
    assert naming.fit(long, 64) == fitted  # and stable


def test_physical_and_table_names() -> None:
    assert naming.physical_name("fraud", "prod", "serving-scorer") == "fraud-prod-serving-scorer"
    assert naming.rds_identifier("fraud", "prod") == "fraud-prod-registry"
    assert naming.feast_project("card-risk") == "card_risk"
    assert naming.online_table_name("fraud", "card_profile") == "fraud.card_profile"
    assert len(naming.cronjob_name("train", "a" * 60)) == naming.CRONJOB_MAX


@pytest.mark.parametrize(
    ("instance", "gpus"),
    [
        ("m6i.2xlarge", 0),
        ("g5.xlarge", 1),
        ("g5.12xlarge", 4),
        ("p4d.24xlarge", 8),
        ("g4dn.metal", 8),
    ],
)
def test_gpus_per_instance(instance: str, gpus: int) -> None:
    assert naming.gpus_per_instance(instance) == gpus
    assert naming.is_gpu_instance(instance) == (gpus > 0)


@pytest.mark.parametrize(
    ("schedule", "period"),
    [
        ("*/30 * * * *", timedelta(minutes=30)),
        ("0 3 * * 0", timedelta(days=7)),
        ("0 1,13 * * *", timedelta(hours=12)),
        ("0 9 * * 1-5", timedelta(days=3)),
        ("@daily", timedelta(days=1)),
    ],
)
def test_schedule_period_is_the_longest_gap(schedule: str, period: timedelta) -> None:
    assert naming.schedule_period(schedule) == period


def test_quantities() -> None:
    assert naming.quantity("500m") == 0.5
    assert naming.quantity("2Gi") == 2 * 2**30
    assert naming.cpu_limit("250m") == "500m"
    assert naming.cpu_limit("4") == "8000m"
    with pytest.raises(ValueError, match="not a Kubernetes quantity: '2 cores'"):
        naming.quantity("2 cores")
