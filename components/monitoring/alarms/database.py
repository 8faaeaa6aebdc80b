"""Alarms on the registry database: the real RDS instance, AWS's own metrics."""

from __future__ import annotations

import math

import pulumi

from components.config.registry import Database
from components.monitoring.alarms.spec import (
    SENSITIVITY,
    AlarmSpec,
    Comparison,
    MetricQuery,
    MissingData,
)
from components.team import Team

RDS_NAMESPACE = "AWS/RDS"
RDS_DIMENSION = "DBInstanceIdentifier"
FREE_STORAGE_FRACTION = 0.10
"""Alarm below this share of the allocated storage; storage autoscaling acts at 10 % of the
current (larger or equal) allocation first, so this fires only when autoscaling cannot help."""
CONNECTIONS_FRACTION = 0.80
"""Alarm above this share of PostgreSQL's default max_connections for the instance class."""


_MEMORY_OF_LARGE_GIB = {"t": 8, "m": 8, "c": 4, "r": 16, "x": 32, "z": 16}
_FRACTION_OF_LARGE = {"micro": 0.125, "small": 0.25, "medium": 0.5, "large": 1.0, "xlarge": 2.0}


def instance_memory_gib(instance_class: str) -> float | None:
    """Memory of an RDS instance class (`db.r6g.xlarge` -> 32), None when unknown."""
    _, family, size = instance_class.split(".", 2)
    large = _MEMORY_OF_LARGE_GIB.get(family[:1])
    if large is None:
        return None
    if size in _FRACTION_OF_LARGE:
        return large * _FRACTION_OF_LARGE[size]
    if size.endswith("xlarge") and size.removesuffix("xlarge").isdigit():
        return large * 2 * int(size.removesuffix("xlarge"))
    return None


def postgres_max_connections(instance_class: str) -> int:
    """RDS PostgreSQL's default max_connections: LEAST(DBInstanceClassMemory / 9531392, 5000).

    DBInstanceClassMemory is what remains after the OS and RDS processes; ~85 % of the memory.
    """
    memory = instance_memory_gib(instance_class)
    if memory is None:
        return 100
    return min(int(memory * 2**30 * 0.85 / 9531392), 5000)


def database_alarms(
    *, team: Team, database: Database, database_instance_id: pulumi.Input[str]
) -> list[AlarmSpec]:
    s = SENSITIVITY[team.environment]
    alarms: list[AlarmSpec] = []
    rds = {RDS_DIMENSION: database_instance_id}
    storage_bytes = database.storage_gb * 2**30 * FREE_STORAGE_FRACTION
    connections = math.floor(
        postgres_max_connections(database.instance_class) * CONNECTIONS_FRACTION
    )
    for key, summary, runbook, metric, stat, comparison, threshold in (
        (
            "registry-db-cpu",
            f"Registry database: CPU above {s.database_cpu_percent:g} %",
            "look for long MLflow queries (Performance Insights) and runaway clients; "
            "scale the instance class (`mlops:registry.database.instanceClass`)",
            "CPUUtilization",
            "Average",
            Comparison.above,
            s.database_cpu_percent,
        ),
        (
            "registry-db-storage",
            f"Registry database: less than {FREE_STORAGE_FRACTION:.0%} of "
            f"{database.storage_gb} GB free",
            "storage autoscaling has reached its ceiling or cannot keep up; raise "
            "`mlops:registry.database.maxStorageGb` or prune old MLflow runs",
            "FreeStorageSpace",
            "Minimum",
            Comparison.below,
            storage_bytes,
        ),
        (
            "registry-db-connections",
            f"Registry database: more than {connections} connections "
            f"({CONNECTIONS_FRACTION:.0%} of max_connections for {database.instance_class})",
            "find the client holding connections (MLflow server replicas, training jobs); "
            "restart it or scale the instance class",
            "DatabaseConnections",
            "Maximum",
            Comparison.above,
            float(connections),
        ),
    ):
        alarms.append(
            AlarmSpec(
                key=key,
                summary=summary,
                runbook=runbook,
                comparison=comparison,
                threshold=threshold,
                missing=MissingData.missing,  # RDS reports every minute unless stopped
                evaluation_periods=s.evaluation_periods,
                datapoints=s.datapoints,
                queries=(MetricQuery("db", RDS_NAMESPACE, metric, rds, stat, max(s.period, 60)),),
            )
        )
    return alarms
