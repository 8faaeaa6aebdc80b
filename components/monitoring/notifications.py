"""Who gets paged: the alert topic, its key and its subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config.monitoring import MonitoringConfig
from components.team import Team

TOPIC_NAME_MAX = 256


CLOUDWATCH = "cloudwatch.amazonaws.com"
"""Alarms publish into the topic: the topic's key lets CloudWatch use it."""


def topic_name(team: Team) -> str:
    return team.physical("alerts", TOPIC_NAME_MAX)


def expected_topic_arn(
    team: Team, opts: pulumi.InvokeOutputOptions | None = None
) -> pulumi.Output[str]:
    """The alert topic's ARN before the topic exists (its name is the stack's): for the jobs
    made before the monitoring component, e.g. continuous training's notices."""
    caller = aws.get_caller_identity_output(opts=opts)
    partition = aws.get_partition_output(opts=opts)
    return pulumi.Output.all(partition.partition, caller.account_id).apply(
        lambda v: f"arn:{v[0]}:sns:{team.region}:{v[1]}:{topic_name(team)}"
    )


def notify_policy(topic_arn: str, key_arn: str) -> dict[str, Any]:
    """Publish into the team's topic (encrypted with its key): what a publisher role needs."""
    from components import iam

    return iam.policy_document(
        iam.statement("NotifyTheTeam", ["sns:Publish"], [topic_arn]),
        iam.statement("EncryptNotifications", ["kms:GenerateDataKey", "kms:Decrypt"], [key_arn]),
    )


@dataclass(frozen=True)
class AlertTopic:
    topic: aws.sns.Topic
    key_arn: pulumi.Input[str]
    """The key the topic is encrypted with: whoever publishes needs it."""
    key: aws.kms.Key | None
    """The topic's own key (its policy is set once the publishers exist), None for a given one."""


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
    key = None
    if key_arn is None:
        # Alarms cannot publish into a topic under aws/sns: the topic gets a key they may use
        # (its policy, naming them and the publishing roles, is a KeyAccess of the component).
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{team.stack} alert topic",
            enable_key_rotation=True,
            deletion_window_in_days=30 if team.prod else 7,
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
    return AlertTopic(topic, key_arn, key)
