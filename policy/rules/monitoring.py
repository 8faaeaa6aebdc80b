"""Alerting: SNS topics and CloudWatch alarms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import UNKNOWN, as_list
from policy.rules.registry import Context, resource_rule


@resource_rule("sns-topic-encrypted", "SNS topics are encrypted with KMS.", "aws:sns/topic:Topic")
def sns_topic_encrypted(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("kmsMasterKeyId"):
        return ["set kmsMasterKeyId to a KMS key CloudWatch may use (not alias/aws/sns for alarms)"]
    return []


ALARM_TYPES = frozenset(
    {"aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"}
)


@resource_rule(
    "cloudwatch-alarm-actions",
    "CloudWatch alarms notify someone when they fire.",
    *ALARM_TYPES,
)
def cloudwatch_alarm_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if props.get("actionsEnabled") is False:
        return ["actionsEnabled is false: the alarm never notifies; remove it or enable actions"]
    if props.get("alarmActions") != UNKNOWN and not as_list(props.get("alarmActions")):
        return ["no alarmActions: add the team's alert topic ARN"]
    return []


@resource_rule(
    "cloudwatch-alarm-ok-actions",
    "CloudWatch alarms notify when they recover.",
    *ALARM_TYPES,
)
def cloudwatch_alarm_ok_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if props.get("okActions") != UNKNOWN and not as_list(props.get("okActions")):
        return ["no okActions: add the team's alert topic ARN so on-call sees the recovery"]
    return []
