"""Tags on every taggable AWS resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import UNKNOWN
from policy.rules.registry import Context, resource_rule

REQUIRED_TAGS = ("team", "environment", "managed-by")

TAGGABLE_TYPES = frozenset(
    {
        "aws:cloudwatch/compositeAlarm:CompositeAlarm",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:dynamodb/table:Table",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/instance:Instance",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ecr/repository:Repository",
        "aws:efs/fileSystem:FileSystem",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/addon:Addon",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:lambda/function:Function",
        "aws:rds/cluster:Cluster",
        "aws:rds/instance:Instance",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)
"""AWS types that take `tags` (any other `aws:` resource that passes `tags` is checked too)."""


@resource_rule(
    "aws-required-tags",
    f"Taggable AWS resources carry the tags {', '.join(REQUIRED_TAGS)}.",
)
def aws_required_tags(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not type_.startswith("aws:") or (type_ not in TAGGABLE_TYPES and "tags" not in props):
        return []
    if props.get("tags") == UNKNOWN:
        return []
    tags = {
        **(t if isinstance(t := props.get("tagsAll"), Mapping) else {}),
        **(t if isinstance(t := props.get("tags"), Mapping) else {}),
    }
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        return [f"missing tag(s) {', '.join(missing)}: pass Team.tags (components/team.py)"]
    return []
