"""Who gets paged: the alert topic, its key and its subscriptions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config.monitoring import MonitoringConfig
from components.team import Team

TOPIC_NAME_MAX = 256


def topic_key_policy(account_id: str, partition: str) -> dict[str, Any]:
    """CloudWatch alarms may encrypt into the topic (the AWS-managed aws/sns key refuses them)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }


def topic_name(team: Team) -> str:
    return team.physical("alerts", TOPIC_NAME_MAX)


@dataclass(frozen=True)
class AlertTopic:
    topic: aws.sns.Topic
    key_arn: pulumi.Input[str]
    """The key the topic is encrypted with: whoever publishes needs it."""


def alert_topic(
    name: str,
    *,
    team: Team,
    config: MonitoringConfig,
    key_arn: pulumi.Input[str] | None,
    parent: pulumi.Resource,
) -> AlertTopic:
    """The team's alert topic with its subscriptions, under `key_arn` or a key of its own."""
    child = pulumi.ResourceOptions(parent=parent)
    if key_arn is None:
        # Alarms cannot publish into a topic under aws/sns: the topic gets a key they may use.
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=parent))
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{team.stack} alert topic",
            enable_key_rotation=True,
            deletion_window_in_days=30 if team.prod else 7,
            policy=pulumi.Output.all(caller.account_id, partition.partition).apply(
                lambda v: json.dumps(topic_key_policy(v[0], v[1]))
            ),
            tags=team.tags,
            opts=child,
        )
        key_arn = key.arn
    # The one place the team is paged from.
    topic = aws.sns.Topic(
        f"{name}-topic",
        name=topic_name(team),
        kms_master_key_id=key_arn,
        tags=team.tags,
        opts=child,
    )
    for email in config.alert_emails:
        aws.sns.TopicSubscription(
            f"{name}-email-{email}",
            topic=topic.arn,
            protocol="email",
            endpoint=email,
            opts=child,
        )
    # A webhook URL is a secret: it cannot name its subscription, so its position does.
    for number, webhook in enumerate(config.alert_webhooks, start=1):
        aws.sns.TopicSubscription(
            f"{name}-webhook-{number}",
            topic=topic.arn,
            protocol="https",
            endpoint=pulumi.Output.secret(webhook.get_secret_value()),
            endpoint_auto_confirms=True,
            opts=child,
        )
    return AlertTopic(topic, key_arn)
