"""Alarms on the online store: throttled reads and writes of each DynamoDB table."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.monitoring.alarms.spec import (
    SENSITIVITY,
    AlarmSpec,
    Comparison,
    MetricQuery,
    MissingData,
)
from components.team import Team

DYNAMODB_NAMESPACE = "AWS/DynamoDB"
DYNAMODB_DIMENSION = "TableName"


def online_store_alarms(
    *, team: Team, online_table_names: Mapping[str, pulumi.Input[str]]
) -> list[AlarmSpec]:
    s = SENSITIVITY[team.environment]
    alarms: list[AlarmSpec] = []
    # Online store: DynamoDB reports throttling per table only as Read/WriteThrottleEvents
    # (ThrottledRequests carries an Operation dimension too, so a TableName-only alarm on it
    # would watch a metric that never exists).
    for view_name, table in sorted(online_table_names.items()):
        dims = {DYNAMODB_DIMENSION: table}
        alarms.append(
            AlarmSpec(
                key=f"online-{view_name}-throttles",
                summary=(
                    f"Online table of {view_name}: more than {s.throttled_requests:g} throttled "
                    "reads/writes per period"
                ),
                runbook=(
                    "check the table's consumed vs provisioned capacity and autoscaling limits "
                    "(`mlops:featureStore.onlineCapacity`), or a hot partition key; serving reads "
                    "fail while this lasts"
                ),
                comparison=Comparison.above,
                threshold=s.throttled_requests,
                missing=MissingData.not_breaching,  # published only when requests are throttled
                evaluation_periods=s.evaluation_periods,
                datapoints=s.datapoints,
                queries=(
                    MetricQuery(
                        "reads", DYNAMODB_NAMESPACE, "ReadThrottleEvents", dims, "Sum", s.period
                    ),
                    MetricQuery(
                        "writes", DYNAMODB_NAMESPACE, "WriteThrottleEvents", dims, "Sum", s.period
                    ),
                ),
                expression="FILL(reads, 0) + FILL(writes, 0)",
            )
        )
    return alarms
