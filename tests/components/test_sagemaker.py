"""`backend: sagemaker`: the planned SageMaker resources of the example stack (forecasting-dev's
`demand-sm`) replayed through boto3 against a moto server, as `pulumi up` would send them, and
each variant's env parsed by the runtime's own Settings: the contract holds on SageMaker too."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest

from components import sagemaker
from components.config.serving import RealtimeEndpoint
from components.monitoring.alarms.sagemaker import SAGEMAKER_NAMESPACE, rollback_keys
from runtime.settings import Settings
from tests.components.test_monitoring import alarms, loaded, plan_of, put_metric_alarm_request
from tooling.plan import Plan, PlannedResource

STACK = "forecasting-dev"
ENDPOINT = "demand-sm"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT_TYPE = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
_SESSION = botocore.session.get_session()
# Fields the provider sends itself or that are not CreateX parameters.
_NOT_SENT = {"tags", "name", "region", "mode"}


def _endpoint() -> RealtimeEndpoint:
    (endpoint,) = [e for e in loaded(STACK).config.serving.endpoints if e.name == ENDPOINT]
    assert isinstance(endpoint, RealtimeEndpoint) and endpoint.on_sagemaker
    return endpoint


def _under(plan: Plan, component: str) -> list[PlannedResource]:
    (parent,) = [r for r in plan.resources if r.urn.endswith(f"::{component}")]
    return plan.children(parent)


def _of(plan: Plan, type_: str) -> list[PlannedResource]:
    return [r for r in _under(plan, f"endpoint-{ENDPOINT}") if r.type == type_]


def _request(value: Any, shape: Any) -> Any:
    """A planned input (camelCase, numbers as floats) as the API's request value, by its shape."""
    if shape.type_name == "structure":
        members = {name.lower(): name for name in shape.members}
        result = {}
        for key, item in value.items():
            if key in _NOT_SENT and key.lower() not in members:
                continue
            member = members[key.lower()]
            result[member] = _request(item, shape.members[member])
        return result
    if shape.type_name == "list":
        return [_request(item, shape.member) for item in value]
    if shape.type_name == "map":
        return {k: _request(v, shape.value) for k, v in value.items()}
    if shape.type_name == "integer":
        assert value == int(value)
        return int(value)
    if shape.type_name in ("float", "double"):
        return float(value)
    if getattr(shape, "enum", None):
        assert value in shape.enum, (shape.name, value)
    return value


def _call(service: str, operation: str, inputs: dict[str, Any], **given: Any) -> dict[str, Any]:
    shape = _SESSION.get_service_model(service).operation_model(operation).input_shape
    body = {k: v for k, v in inputs.items() if k not in _NOT_SENT}
    return {**_request(body, shape), **given}


@pytest.fixture(scope="module")
def clients(aws_endpoint: str) -> Iterator[dict[str, Any]]:
    region = loaded(STACK).region
    yield {
        name: boto3.client(
            name,
            region_name=region,
            endpoint_url=aws_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("sagemaker", "application-autoscaling", "cloudwatch")
    }


def test_a_model_per_variant_with_the_pods_contract_and_its_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan, endpoint = plan_of(STACK), _endpoint()
    models = {
        m.inputs["primaryContainer"]["environment"]["MLOPS_SERVE_ALIAS"]: m
        for m in _of(plan, MODEL)
    }
    assert sorted(models) == ["challenger", "champion"]  # shadow: the challenger's variant
    # The env a Kubernetes pod of the same stack gets: same values for everything not per endpoint.
    (pod,) = [
        r
        for r in plan.resources
        if r.type == "kubernetes:apps/v1:Deployment" and r.urn.endswith("demand-api-deployment")
    ]
    (container,) = pod.inputs["spec"]["template"]["spec"]["containers"]
    pod_env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("MLOPS_")}
    # MLOPS_TRACKING_URI: MLflow's internal NLB (the cluster's names do not resolve there).
    # MLOPS_SERVE_WORKERS: the pod's, from its CPU request; a variant runs the default (one).
    per_endpoint = {
        "MLOPS_ENDPOINT",
        "MLOPS_PREDICTION_LOG_URI",
        "MLOPS_HOME",
        "MLOPS_TRACKING_URI",
        "MLOPS_SERVE_WORKERS",
    }
    (balanced,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:Service")
        if r.inputs["spec"]["type"] == "LoadBalancer"
    ]
    (ingress,) = balanced.outputs["status"]["loadBalancer"]["ingress"]
    for alias, model in models.items():
        env = model.inputs["primaryContainer"]["environment"]
        assert {k: v for k, v in pod_env.items() if k not in per_endpoint} == {
            k: v for k, v in env.items() if k in pod_env and k not in per_endpoint
        }
        assert set(env) - set(pod_env) == {"MLOPS_SERVE_ALIAS", "MLOPS_SHUTDOWN_DRAIN_SECONDS"}
        with monkeypatch.context() as patch:  # the variant's container env, as it starts
            for key, value in env.items():
                patch.setenv(key, value)
            settings = Settings()
        assert settings.serve_alias == alias
        assert settings.tracking_uri == f"http://{ingress['hostname']}:5000"
        assert pod_env["MLOPS_TRACKING_URI"].endswith(".svc.cluster.local:5000")
        assert settings.port == 8080
        assert settings.shutdown_drain_seconds < 30  # SageMaker SIGKILLs 30 s after SIGTERM
        assert settings.endpoint is not None and settings.endpoint.name == ENDPOINT
        assert settings.endpoint.canary is None and settings.endpoint.shadow == endpoint.shadow
        assert settings.prediction_log_uri is not None
        assert settings.prediction_log_uri.endswith(f"/prediction-logs/{ENDPOINT}/")
        assert str(settings.home).startswith("/opt/ml")
        assert (
            model.inputs["vpcConfig"]["subnets"] == loaded(STACK).config.cluster.private_subnet_ids
        )
        assert model.inputs["primaryContainer"]["image"] == plan.outputs["image"]
    assert endpoint.shadow


def test_mlflow_behind_an_internal_nlb_admits_only_the_variants() -> None:
    """The NLB: internal, ip targets, a security group of its own that the variants' security
    group alone may enter on the tracking port (and the variants may leave for), and MLflow's
    host check accepts its DNS name."""
    plan = plan_of(STACK)
    (service,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:Service")
        if r.inputs["spec"]["type"] == "LoadBalancer"
    ]
    annotations = service.inputs["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert {k.removeprefix(prefix): v for k, v in annotations.items()} | {
        "security-groups": "sg"
    } == {
        "type": "external",
        "nlb-target-type": "ip",
        "scheme": "internal",
        "name": annotations[f"{prefix}name"],
        "security-groups": "sg",
        "manage-backend-security-group-rules": "true",
        "target-group-attributes": "preserve_client_ip.enabled=false",
    }
    assert service.inputs["spec"]["ports"][0]["port"] == 5000
    (lb_sg,) = [
        r for r in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if "sagemaker-lb" in r.name
    ]
    assert annotations[f"{prefix}security-groups"] == lb_sg.id
    (variants_sg,) = _of(plan, "aws:ec2/securityGroup:SecurityGroup")
    ingress = [
        r.inputs
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == lb_sg.id
    ]
    assert ingress == [
        {
            **ingress[0],
            "referencedSecurityGroupId": variants_sg.id,
            "fromPort": 5000,
            "toPort": 5000,
            "ipProtocol": "tcp",
        }
    ]
    assert "cidrIpv4" not in ingress[0]
    (out,) = [
        r.inputs
        for r in _of(plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs.get("referencedSecurityGroupId") == lb_sg.id
    ]
    assert (out["fromPort"], out["toPort"]) == (5000, 5000)
    (server,) = [
        r
        for r in plan.of_type("kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == "mlflow"
    ]
    (container,) = server.inputs["spec"]["template"]["spec"]["containers"]
    hosts = container["args"][container["args"].index("--allowed-hosts") + 1].split(",")
    hostname = service.outputs["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert any(fnmatch.fnmatch(f"{hostname}:5000", pattern) for pattern in hosts)
    assert not any(fnmatch.fnmatch("evil.example:5000", pattern) for pattern in hosts)


def test_replayed_through_the_sagemaker_and_autoscaling_apis(clients: dict[str, Any]) -> None:
    plan, endpoint = plan_of(STACK), _endpoint()
    sm, scaling = clients["sagemaker"], clients["application-autoscaling"]
    for model in _of(plan, MODEL):
        sm.create_model(
            **_call("sagemaker", "CreateModel", model.inputs, ModelName=model.outputs["name"])
        )
    (config,) = _of(plan, CONFIG)
    inputs = json.loads(json.dumps(config.inputs))
    names = {m.urn: m.outputs["name"] for m in _of(plan, MODEL)}
    for variant in [*inputs["productionVariants"], *inputs.get("shadowProductionVariants", [])]:
        if variant["modelName"] == "[unknown]":  # not in a plan: the model's name output
            variant["modelName"] = next(
                n for u, n in names.items() if u.endswith(f"-{variant['variantName']}-model")
            )
    config_name = config.outputs["name"]
    sm.create_endpoint_config(
        **_call("sagemaker", "CreateEndpointConfig", inputs, EndpointConfigName=config_name)
    )
    (planned_endpoint,) = _of(plan, ENDPOINT_TYPE)
    sm.create_endpoint(
        **_call(
            "sagemaker",
            "CreateEndpoint",
            {**planned_endpoint.inputs, "endpointConfigName": config_name},
            EndpointName=planned_endpoint.inputs["name"],
        )
    )

    described = sm.describe_endpoint_config(EndpointConfigName=config_name)
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["champion"]
    assert described["DataCaptureConfig"]["DestinationS3Uri"].endswith(
        f"/data-capture/{planned_endpoint.inputs['name']}/"
    )
    back = sm.describe_endpoint(EndpointName=planned_endpoint.inputs["name"])
    assert back["EndpointName"] == sagemaker.endpoint_name(_team(), ENDPOINT)
    for model in _of(plan, MODEL):
        container = sm.describe_model(ModelName=model.outputs["name"])["PrimaryContainer"]
        assert container["Environment"] == model.inputs["primaryContainer"]["environment"]

    for target in _of(plan, TARGET):
        scaling.register_scalable_target(
            **_call("application-autoscaling", "RegisterScalableTarget", target.inputs)
        )
    for policy in _of(plan, POLICY):
        scaling.put_scaling_policy(
            **_call(
                "application-autoscaling",
                "PutScalingPolicy",
                policy.inputs,
                PolicyName=policy.outputs["name"],
            )
        )
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    capacity = endpoint.sagemaker_settings.instances
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (
            f"endpoint/{planned_endpoint.inputs['name']}/variant/champion",
            capacity.min_count,
            capacity.max_count,
        )
    ]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        for p in policies
    ] == ["SageMakerVariantInvocationsPerInstance"]


def test_alarms_bind_the_real_endpoint_and_variants_and_roll_deployments_back(
    clients: dict[str, Any],
) -> None:
    plan, endpoint = plan_of(STACK), _endpoint()
    (planned_endpoint,) = _of(plan, ENDPOINT_TYPE)
    name = planned_endpoint.inputs["name"]
    watched = {
        key: alarm
        for key, alarm in alarms(plan).items()
        if key.startswith(f"sagemaker-{ENDPOINT}-")
    }
    assert sorted(watched) == sorted(
        f"sagemaker-{ENDPOINT}-champion-{kind}"
        for kind in ("4xx-rate", "5xx-rate", "model-latency")
    )
    for alarm in watched.values():
        queries = [q["metric"] for q in alarm.get("metricQueries", []) if "metric" in q] or [alarm]
        for metric in queries:
            assert metric["namespace"] == SAGEMAKER_NAMESPACE
            assert metric["dimensions"] == {"EndpointName": name, "VariantName": "champion"}
        assert alarm["alarmActions"] == [plan.outputs["alertTopicArn"]]
    rollback = planned_endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    assert [a["alarmName"] for a in rollback] == [
        watched[key]["name"] for key in rollback_keys(endpoint)
    ]
    cloudwatch = clients["cloudwatch"]
    for alarm in watched.values():
        cloudwatch.put_metric_alarm(**put_metric_alarm_request(alarm))
    stored = cloudwatch.describe_alarms(AlarmNames=[a["alarmName"] for a in rollback])
    assert len(stored["MetricAlarms"]) == len(rollback)


def _team() -> Any:
    from tests.components.test_monitoring import team_of

    return team_of(STACK)
