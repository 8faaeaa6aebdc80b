"""The SageMaker rules (policy/rules/sagemaker.py): each catches its violating fixture, the
compliant resources pass the whole pack, dev needs no prod safety."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy.rules import Context, check_resource
from policy.rules.sagemaker import IAM_ROLE, SAGEMAKER_ENDPOINT_CONFIG, SAGEMAKER_MODEL
from tests.policy.test_rules import DELETE, KEY_ARN, PROD, TAGS_PROD, changed

DEV = Context(stack="fraud-dev")
TAGS_DEV = {**TAGS_PROD, "environment": "dev"}
REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fraud-prod/runtime"
MODEL = {
    "executionRoleArn": "arn:aws:iam::123456789012:role/fraud-prod-sagemaker-scorer",
    "primaryContainer": {
        "image": f"{REPOSITORY}@sha256:{'a' * 64}",
        "mode": "SingleModel",
        "environment": {"MLOPS_SERVE_ALIAS": "champion"},
    },
    "vpcConfig": {"subnets": ["subnet-0aa11bb22cc33dd44"], "securityGroupIds": ["sg-0123"]},
    "tags": TAGS_PROD,
}
VARIANT = {
    "variantName": "champion",
    "modelName": "endpoint-scorer-champion-model-1a2b3c4",
    "initialInstanceCount": 2.0,
    "initialVariantWeight": 1.0,
    "instanceType": "ml.m5.large",
}
CONFIG = {
    "productionVariants": [VARIANT],
    "kmsKeyArn": KEY_ARN,
    "dataCaptureConfig": {
        "enableCapture": True,
        "initialSamplingPercentage": 100.0,
        "destinationS3Uri": "s3://fraud-prod-models-171000e/data-capture/fraud-prod-scorer/",
        "kmsKeyId": KEY_ARN,
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
    },
    "tags": TAGS_PROD,
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "SageMaker",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ],
}
ROLE = {
    "name": "fraud-prod-sagemaker-scorer",
    "assumeRolePolicy": json.dumps(TRUST),
    "maxSessionDuration": 3600.0,
    "tags": TAGS_PROD,
}
UNSCOPED_TRUST = json.dumps(
    {**TRUST, "Statement": [{k: v for k, v in TRUST["Statement"][0].items() if k != "Condition"}]}
)


@pytest.mark.parametrize(
    ("type_", "props"),
    [(SAGEMAKER_MODEL, MODEL), (SAGEMAKER_ENDPOINT_CONFIG, CONFIG), (IAM_ROLE, ROLE)],
    ids=["model", "endpoint-config", "execution-role"],
)
def test_compliant_sagemaker_resources_pass_every_rule(type_: str, props: dict[str, Any]) -> None:
    assert check_resource(type_, props, PROD) == []


VIOLATIONS = [
    pytest.param(
        "sagemaker-volume-kms",
        SAGEMAKER_ENDPOINT_CONFIG,
        changed(CONFIG, kmsKeyArn=DELETE),
        id="volume-kms",
    ),
    pytest.param(
        "sagemaker-data-capture-kms",
        SAGEMAKER_ENDPOINT_CONFIG,
        changed(CONFIG, dataCaptureConfig__kmsKeyId=DELETE),
        id="data-capture-kms",
    ),
    pytest.param(
        "sagemaker-data-capture-kms",
        SAGEMAKER_ENDPOINT_CONFIG,
        changed(CONFIG, dataCaptureConfig=DELETE),
        id="no-data-capture",
    ),
    pytest.param(
        "sagemaker-model-in-vpc", SAGEMAKER_MODEL, changed(MODEL, vpcConfig=DELETE), id="no-vpc"
    ),
    pytest.param(
        "sagemaker-image-pinned",
        SAGEMAKER_MODEL,
        changed(MODEL, primaryContainer__image=f"{REPOSITORY}:v1"),
        id="tag-in-prod",
    ),
    pytest.param(
        "sagemaker-execution-role-least-privilege",
        IAM_ROLE,
        changed(ROLE, assumeRolePolicy=UNSCOPED_TRUST),
        id="trust-any-account",
    ),
    pytest.param(
        "sagemaker-execution-role-least-privilege",
        IAM_ROLE,
        changed(ROLE, managedPolicyArns=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]),
        id="full-access",
    ),
]


@pytest.mark.parametrize(("rule", "type_", "props"), VIOLATIONS)
def test_rule_catches_its_violating_sagemaker_resource(
    rule: str, type_: str, props: dict[str, Any]
) -> None:
    violations = check_resource(type_, props, PROD)

    assert {v.rule for v in violations} == {rule}
    assert all(v.message for v in violations)


def test_dev_needs_no_prod_safety_but_a_pinned_image_and_the_vpc() -> None:
    dev_config = changed(CONFIG, tags=TAGS_DEV, kmsKeyArn=DELETE, dataCaptureConfig=DELETE)
    assert check_resource(SAGEMAKER_ENDPOINT_CONFIG, dev_config, DEV) == []
    tagged = changed(MODEL, tags=TAGS_DEV, primaryContainer__image=f"{REPOSITORY}:dev")
    assert check_resource(SAGEMAKER_MODEL, tagged, DEV) == []
    latest = changed(tagged, primaryContainer__image=f"{REPOSITORY}:latest")
    assert {v.rule for v in check_resource(SAGEMAKER_MODEL, latest, DEV)} == {
        "sagemaker-image-pinned"
    }
    no_vpc = changed(tagged, vpcConfig=DELETE)
    assert {v.rule for v in check_resource(SAGEMAKER_MODEL, no_vpc, DEV)} == {
        "sagemaker-model-in-vpc"
    }
