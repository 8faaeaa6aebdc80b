"""SageMaker endpoints (`backend: sagemaker`): encrypted volumes and captured data, models inside
the VPC, pinned images in prod, an execution role only SageMaker of this account assumes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import as_list, dig, is_prod, known, policy_document, statements
from policy.rules.registry import Context, resource_rule
from policy.rules.workloads import image_problem

SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
SAGEMAKER_ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
IAM_ROLE = "aws:iam/role:Role"
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
BROAD_MANAGED_POLICIES = ("FullAccess", "AdministratorAccess", "PowerUserAccess")


@resource_rule(
    "sagemaker-volume-kms",
    "SageMaker endpoint configurations encrypt their instances' ML volumes with the team's key "
    "in prod.",
    SAGEMAKER_ENDPOINT_CONFIG,
)
def sagemaker_volume_kms(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not is_prod(props, ctx.stack):
        return []
    if not props.get("kmsKeyArn"):
        return ["set kmsKeyArn to the team's data key: the instances' ML volumes hold the model"]
    return []


@resource_rule(
    "sagemaker-data-capture-kms",
    "SageMaker endpoint configurations capture requests and responses, encrypted with the team's "
    "key, in prod.",
    SAGEMAKER_ENDPOINT_CONFIG,
)
def sagemaker_data_capture_kms(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not is_prod(props, ctx.stack):
        return []
    capture = props.get("dataCaptureConfig")
    if not isinstance(capture, Mapping) or capture.get("enableCapture") is False:
        return ["enable dataCaptureConfig: prod keeps what each variant was asked and answered"]
    if not capture.get("kmsKeyId"):
        return ["set dataCaptureConfig.kmsKeyId to the team's data key: captured requests are data"]
    return []


@resource_rule(
    "sagemaker-model-in-vpc",
    "SageMaker models run in the cluster's private subnets with a security group.",
    SAGEMAKER_MODEL,
)
def sagemaker_model_in_vpc(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    vpc = props.get("vpcConfig")
    if (
        isinstance(vpc, Mapping)
        and as_list(vpc.get("subnets"))
        and as_list(vpc.get("securityGroupIds"))
    ):
        return []
    return [
        "set vpcConfig (the cluster's private subnets and a security group): without it the "
        "container reaches the internet directly, and not the team's registry"
    ]


@resource_rule(
    "sagemaker-image-pinned",
    "SageMaker models run a pinned image; in prod, pinned by digest.",
    SAGEMAKER_MODEL,
)
def sagemaker_image_pinned(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    images = [
        dig(c, "image")
        for c in [props.get("primaryContainer"), *as_list(props.get("containers"))]
        if isinstance(c, Mapping)
    ]
    found = [p for p in map(image_problem, images) if p]
    if is_prod(props, ctx.stack):
        found += [
            f"image {image!r} is not pinned by digest in prod: <repository>@sha256:<digest>"
            for image in images
            if isinstance(image, str) and known(image) and "@sha256:" not in image
        ]
    return found


@resource_rule(
    "sagemaker-execution-role-least-privilege",
    "SageMaker execution roles trust SageMaker acting for this account only (aws:SourceAccount) "
    "and carry no broad AWS managed policy (AmazonSageMakerFullAccess and the like).",
    IAM_ROLE,
)
def sagemaker_execution_role(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    trusts = [
        s
        for s in statements(policy_document(props.get("assumeRolePolicy")))
        if s.get("Effect") == "Allow"
        and SAGEMAKER_PRINCIPAL in as_list(dig(s, "Principal.Service"))
    ]
    if not trusts:
        return []
    found = [
        f"trust statement {s.get('Sid') or i} lets SageMaker assume the role for any account: "
        "add Condition StringEquals {'aws:SourceAccount': '<account>'}"
        for i, s in enumerate(trusts)
        if not dig(s, "Condition.StringEquals.aws:SourceAccount")
    ]
    found += [
        f"managed policy {arn} grants far more than the endpoint needs: give the serving reads, "
        "the image pull and the endpoint's log group in an inline policy"
        for arn in as_list(props.get("managedPolicyArns"))
        if isinstance(arn, str)
        and ":iam::aws:policy/" in arn
        and any(broad in arn for broad in BROAD_MANAGED_POLICIES)
    ]
    return found
