"""IAM documents of the cluster services, least privilege, as plain data (tested without mocks).

Reads that AWS cannot scope to a resource are pinned to the cluster's region; every write is
conditioned on a tag that only this cluster's resources carry.
"""

from __future__ import annotations

from typing import Any

from components.iam import policy_document, statement

AUTOSCALER_TAG = "k8s.io/cluster-autoscaler"
"""EKS tags every managed node group's Auto Scaling group `k8s.io/cluster-autoscaler/<cluster>`."""
LOAD_BALANCER_TAG = "elbv2.k8s.aws/cluster"
"""The AWS Load Balancer Controller tags what it creates with the cluster's name."""


def _in_region(region: str) -> dict[str, Any]:
    return {"StringEquals": {"aws:RequestedRegion": region}}


def cluster_autoscaler_policy(
    cluster: str, region: str, account: str, partition: str
) -> dict[str, Any]:
    """Discover every group, resize only this cluster's (auto-discovery by tag)."""
    return policy_document(
        statement(
            "Discover",
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            ["*"],
            _in_region(region),
        ),
        statement(
            "NodeGroups",
            ["eks:DescribeNodegroup"],
            [f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster}/*/*"],
        ),
        statement(
            "ResizeThisClustersGroups",
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ["*"],
            {"StringEquals": {f"aws:ResourceTag/{AUTOSCALER_TAG}/{cluster}": "owned"}},
        ),
    )


def load_balancer_controller_policy(
    cluster: str, region: str, account: str, partition: str, node_security_group: str
) -> dict[str, Any]:
    """Manage load balancers, target groups and their security groups tagged for this cluster;
    open the node security group to them; read what it needs in the region."""
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account}"
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    tagged = {"StringEquals": {f"aws:ResourceTag/{LOAD_BALANCER_TAG}": cluster}}
    tagging = {"StringEquals": {f"aws:RequestTag/{LOAD_BALANCER_TAG}": cluster}}
    load_balancers = [f"{elb}:loadbalancer/app/*/*", f"{elb}:loadbalancer/net/*/*"]
    target_groups = [f"{elb}:targetgroup/*/*"]
    listeners = [
        f"{elb}:listener/app/*/*/*",
        f"{elb}:listener/net/*/*/*",
        f"{elb}:listener-rule/app/*/*/*",
        f"{elb}:listener-rule/net/*/*/*",
    ]
    return policy_document(
        statement(
            "ServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:{partition}:iam::{account}:role/aws-service-role/elasticloadbalancing.amazonaws.com/*"
            ],
            {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
        statement(
            "Describe",
            [
                "acm:DescribeCertificate",
                "acm:ListCertificates",
                "cognito-idp:DescribeUserPoolClient",
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstances",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeTags",
                "ec2:DescribeVpcs",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:DescribeCapacityReservation",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTrustStores",
            ],
            ["*"],
            _in_region(region),
        ),
        statement(
            "CreateTaggedSecurityGroups",
            ["ec2:CreateSecurityGroup"],
            [f"{ec2}:security-group/*"],
            tagging,
        ),
        statement("InTheVpc", ["ec2:CreateSecurityGroup"], [f"{ec2}:vpc/*"], _in_region(region)),
        statement(
            "TagSecurityGroupsOnCreate",
            ["ec2:CreateTags"],
            [f"{ec2}:security-group/*"],
            {
                "StringEquals": {
                    "ec2:CreateAction": "CreateSecurityGroup",
                    f"aws:RequestTag/{LOAD_BALANCER_TAG}": cluster,
                }
            },
        ),
        statement(
            "OwnSecurityGroups",
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateTags",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteTags",
                "ec2:RevokeSecurityGroupIngress",
            ],
            [f"{ec2}:security-group/*"],
            tagged,
        ),
        statement(
            "NodeSecurityGroup",
            ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            [f"{ec2}:security-group/{node_security_group}"],
        ),
        statement(
            "CreateTaggedLoadBalancers",
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            [*load_balancers, *target_groups],
            tagging,
        ),
        statement(
            "TagLoadBalancersOnCreate",
            ["elasticloadbalancing:AddTags"],
            [*load_balancers, *target_groups],
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": [
                        "CreateLoadBalancer",
                        "CreateTargetGroup",
                    ],
                    f"aws:RequestTag/{LOAD_BALANCER_TAG}": cluster,
                }
            },
        ),
        statement(
            "OwnLoadBalancers",
            [
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:RemoveTags",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
            ],
            [*load_balancers, *target_groups],
            tagged,
        ),
        statement(
            "Listeners",
            [
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:RemoveTags",
                "elasticloadbalancing:SetRulePriorities",
            ],
            listeners,
        ),
    )
