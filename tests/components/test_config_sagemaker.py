"""`backend: sagemaker` on a real-time endpoint: its settings, validated like the rest of the
config (every problem at once, each naming file, key, value and what is allowed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import aws_values
from components.config import ConfigError, parse_stack_config
from components.config.serving import SageMakerInstances
from tests.components.test_config import MINIMAL


def _load(environment: str, endpoints: list[dict[str, Any]], **keys: Any) -> Any:
    raw = {
        **MINIMAL,
        "mlops:team": "ads",
        "mlops:environment": environment,
        "mlops:serving": {"externalModels": ["mm"], "endpoints": endpoints},
        # MLflow's NLB for the variants lives there (see the test of that rule below).
        "mlops:network": {"loadBalancerSubnetCidrs": ["10.30.96.0/24"]},
        **keys,
    }
    file = Path(f"stacks/Pulumi.ads-{environment}.yaml")
    return parse_stack_config(raw, file=file, stack=f"ads-{environment}").config


def _problems(environment: str, endpoints: list[dict[str, Any]], **keys: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        _load(environment, endpoints, **keys)
    return [str(issue) for issue in error.value.issues]


def test_kubernetes_is_the_default_and_sagemaker_gets_instances_by_environment() -> None:
    dev = _load(
        "dev",
        [{"name": "aa", "model": "mm"}, {"name": "bb", "model": "mm", "backend": "sagemaker"}],
    )
    plain, sagemaker = dev.serving.endpoints
    assert (plain.backend, plain.sagemaker) == ("kubernetes", None)
    assert sagemaker.on_sagemaker
    assert sagemaker.sagemaker.instances == SageMakerInstances(
        instance_type="ml.m5.large", initial_count=1, min_count=1, max_count=2
    )
    prod = _load("prod", [{"name": "bb", "model": "mm", "backend": "sagemaker"}])
    capacity = prod.serving.endpoints[0].sagemaker.instances
    assert (capacity.initial_count, capacity.min_count, capacity.max_count) == (2, 2, 6)


def test_serverless_is_not_offered_and_is_an_unknown_key() -> None:
    # A serverless variant runs outside the VPC: it could not reach the registry its alias is in.
    problems = _problems(
        "dev",
        [
            {
                "name": "aa",
                "model": "mm",
                "backend": "sagemaker",
                "sagemaker": {"serverless": {"memoryMb": 2048}},
            },
            {"name": "bb", "model": "mm", "backend": "sagemakr"},
        ],
    )
    file = "stacks/Pulumi.ads-dev.yaml"
    assert problems == [
        f"{file}: mlops:serving.endpoints[0].sagemaker.serverless: should be a known key "
        "(instances, volumeSizeGb) (got {'memoryMb': 2048})",
        f"{file}: mlops:serving.endpoints[1].backend: should be 'kubernetes' or 'sagemaker' (got 'sagemakr')",
    ]


def test_each_backend_refuses_the_others_settings_all_at_once() -> None:
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/" + "a" * 36
    problems = _problems(
        "dev",
        [
            {"name": "aa", "model": "mm", "sagemaker": {"instances": {"maxCount": 3}}},
            {
                "name": "bb",
                "model": "mm",
                "backend": "sagemaker",
                "replicas": {"max": 4},
                "resources": {"cpu": "1", "memory": "2Gi"},
                "targetCpuPercent": 50,
                "ingress": {"host": "bb.acme.example", "certificateArn": certificate},
            },
        ],
    )
    where = "stacks/Pulumi.ads-dev.yaml: mlops:serving.endpoints"
    assert problems[0] == (
        f"{where}[0].sagemaker: should be left out on a Kubernetes endpoint (or set backend: "
        "sagemaker) (got {'instances': {'maxCount': 3}})"
    )
    assert [p.split(": ")[1] for p in problems[1:]] == [
        "mlops:serving.endpoints[1].replicas",
        "mlops:serving.endpoints[1].resources",
        "mlops:serving.endpoints[1].targetCpuPercent",
        "mlops:serving.endpoints[1].ingress",
    ]
    assert "Kubernetes only" in problems[1] and "(got {'max': 4})" in problems[1]
    assert "SageMaker's capacity is sagemaker.instances" in problems[-1]


def test_instance_types_are_ml_types_sagemaker_offers_and_counts_are_ordered() -> None:
    where = "stacks/Pulumi.ads-dev.yaml: mlops:serving.endpoints"
    ec2_type = {"instances": {"instanceType": "m5.large"}}
    (pattern,) = _problems(
        "dev", [{"name": "aa", "model": "mm", "backend": "sagemaker", "sagemaker": ec2_type}]
    )
    assert pattern.startswith(f"{where}[0].sagemaker.instances.instanceType: should be a SageMaker")
    assert pattern.endswith("(got 'm5.large')")
    problems = _problems(
        "dev",
        [
            {
                "name": "aa",
                "model": "mm",
                "backend": "sagemaker",
                "sagemaker": {
                    "instances": {"instanceType": "ml.m5.larg", "minCount": 3, "maxCount": 2}
                },
            },
            {
                "name": "bb",
                "model": "mm",
                "backend": "sagemaker",
                "sagemaker": {"instances": {"initialCount": 5}},
            },
        ],
    )
    n = len(aws_values.sagemaker_instance_types())
    assert problems == [
        f"{where}[0].sagemaker.instances.instanceType: should be an instance type SageMaker "
        f"hosting offers, ml.<family>.<size> (the {n} of botocore's "
        "ProductionVariantInstanceType); did you mean 'ml.m5.large'? (got 'ml.m5.larg')",
        f"{where}[0].sagemaker.instances.maxCount: should be at least minCount (3) (got 2)",
        f"{where}[1].sagemaker.instances.initialCount: should be between minCount and "
        "maxCount (1-2) (got 5)",
    ]


def test_prod_runs_at_least_two_instances_per_variant() -> None:
    problems = _problems(
        "prod",
        [
            {
                "name": "bb",
                "model": "mm",
                "backend": "sagemaker",
                "sagemaker": {"instances": {"minCount": 1, "initialCount": 1}},
            },
        ],
    )
    keys = [p.split(": ")[1] for p in problems]
    assert keys == [
        "mlops:serving.endpoints[0].sagemaker.instances.initialCount",
        "mlops:serving.endpoints[0].sagemaker.instances.minCount",
    ]
    assert problems[1].endswith(
        "should be at least 2 in prod (SageMaker spreads a variant's instances over zones: one instance is one zone) (got 1)"
    )


def test_a_sql_feast_registry_keeps_serving_on_kubernetes() -> None:
    problems = _problems(
        "dev",
        [{"name": "aa", "model": "mm", "backend": "sagemaker"}],
        **{"mlops:featureStore": {"registry": {"type": "sql"}}},
    )
    assert problems == [
        "stacks/Pulumi.ads-dev.yaml: mlops:serving.endpoints[0].backend: should be kubernetes "
        "while mlops:featureStore.registry is {type: sql}: a SageMaker variant cannot run the "
        "sidecar that logs in to the registry database (or keep the Feast registry in S3, the "
        "default) (got 'sagemaker')"
    ]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_sagemaker_endpoint_needs_the_load_balancer_subnets_named(environment: str) -> None:
    problems = _problems(
        environment,
        [{"name": "bb", "model": "mm", "backend": "sagemaker"}],
        **{"mlops:network": {}},
    )
    (problem,) = [p for p in problems if "loadBalancerSubnetCidrs" in p]
    assert "bb" in problem and "MLflow" in problem and "every pod of the VPC" in problem
