"""ServingEndpoint: planning arithmetic without mocks, every example stack's plan, reordering."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import naming
from components.config.resources import ContainerResources
from components.config.serving import BatchEndpoint, Ingress, RealtimeEndpoint
from components.serving import (
    BATCH_RETRIES,
    HTTP_PORT,
    TLS_POLICY,
    batch_policy,
    endpoint_spec,
    ingress_annotations,
    prefix_arn,
    realtime_policy,
    serve_workers,
    service_account_name,
    spread,
)
from runtime.spec import CanarySpec, EndpointSpec
from tests.components.test_training import (
    actions_of,
    assert_hardened,
    assert_irsa_trust,
    assert_registry_login,
    child,
    config_of,
    env_of,
    plan_compute,
    settings_from,
    sql_registry,
)
from tests.conftest import STACKS
from tooling.manifests import is_kubernetes_object, schema_errors
from tooling.plan import Plan

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/5f0c2b8e-8d3a-4c51-9f0e-2b7d6a1c4e93"
REALTIME = RealtimeEndpoint.model_validate(
    {
        "name": "scorer",
        "model": "fraud-model",
        "replicas": {"min": 3, "max": 12},
        "canary": {"weight": 10},
        "ingress": {"host": "scorer.ml.acme.internal", "certificateArn": CERTIFICATE},
    }
)
BATCH = BatchEndpoint.model_validate(
    {
        "name": "nightly",
        "model": "ranker",
        "mode": "batch",
        "schedule": "30 3 * * *",
        "input": "batch/users/",
    }
)


# --- planning arithmetic ----------------------------------------------------------------------


def test_the_runtime_gets_the_endpoint_spec_without_infrastructure_fields() -> None:
    spec = endpoint_spec(REALTIME)
    assert spec == EndpointSpec(name="scorer", model="fraud-model", canary=CanarySpec(weight=10))
    assert endpoint_spec(BATCH) == EndpointSpec(name="nightly", model="ranker")


def test_each_endpoint_has_its_own_service_account() -> None:
    assert service_account_name(REALTIME) == "serve-scorer"
    assert service_account_name(BATCH) == "batch-nightly"


def test_prefix_arn_covers_every_object_under_the_prefix() -> None:
    assert prefix_arn("s3://art/prediction-logs/scorer/", "aws") == (
        "arn:aws:s3:::art/prediction-logs/scorer/*"
    )
    with pytest.raises(ValueError, match="not an S3 URI"):
        prefix_arn("/tmp/logs", "aws")


def test_realtime_policy_reads_features_and_models_and_writes_only_its_log() -> None:
    document = realtime_policy(
        team="fraud",
        online_table_arns=["arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card"],
        artifact_bucket_arn="arn:aws:s3:::art",
        kms_key_arns=[],
        feast_registry_uri="s3://off/feast/registry.pb",
        prediction_log_uri="s3://art/prediction-logs/scorer/",
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["ReadOnlineFeatures"]["Action"] == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]
    assert by_sid["FeastRegistry"]["Action"] == ["s3:GetObject"]
    assert by_sid["WritePredictionLog"] == {
        "Sid": "WritePredictionLog",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::art/prediction-logs/scorer/*"],
    }
    assert by_sid["PutTeamMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "MLOps/fraud"}
    }
    writes = [s for s in document["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Sid"] for s in writes] == ["WritePredictionLog"]


def test_batch_policy_writes_only_under_its_output_prefix() -> None:
    document = batch_policy(
        team="recs",
        offline_bucket_arn="arn:aws:s3:::off",
        artifact_bucket_arn="arn:aws:s3:::art",
        kms_key_arns=["arn:aws:kms:us-east-1:123456789012:key/k"],
        feast_registry_uri=None,
        output_uri="s3://art/recommendations/",
    )
    writes = {
        r for s in document["Statement"] if "s3:PutObject" in s["Action"] for r in s["Resource"]
    }
    assert writes == {"arn:aws:s3:::art/recommendations/*"}
    assert "dynamodb:GetItem" not in actions_of(document)
    assert "kms:Decrypt" in actions_of(document)


CONNECT = "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-X/feast"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            realtime_policy(
                team="recs",
                online_table_arns=[],
                artifact_bucket_arn="arn:aws:s3:::art",
                kms_key_arns=[],
                feast_registry_uri="postgresql://mlops@db:5432/mlops?sslmode=require",
                prediction_log_uri="s3://art/prediction-logs/scorer/",
                feast_registry_connect_arn=CONNECT,
            ),
            id="realtime",
        ),
        pytest.param(
            batch_policy(
                team="recs",
                offline_bucket_arn="arn:aws:s3:::off",
                artifact_bucket_arn="arn:aws:s3:::art",
                kms_key_arns=[],
                feast_registry_uri="postgresql://mlops@db:5432/mlops?sslmode=require",
                output_uri="s3://art/recommendations/",
                feast_registry_connect_arn=CONNECT,
            ),
            id="batch",
        ),
    ],
)
def test_a_sql_feast_registry_adds_only_the_login_to_an_endpoint_policy(
    document: dict[str, Any],
) -> None:
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["DatabaseLogin"]["Resource"] == [CONNECT]
    assert "FeastRegistry" not in by_sid
    assert {a for a in actions_of(document) if a.startswith(("secretsmanager:", "rds-db:"))} == {
        "rds-db:connect"
    }


OIDC = {
    "kind": "oidc",
    "issuer": "https://login.acme.example",
    "authorizationEndpoint": "https://login.acme.example/authorize",
    "tokenEndpoint": "https://login.acme.example/token",
    "userInfoEndpoint": "https://login.acme.example/userinfo",
    "secretName": "scorer-oidc",
}


def _ingress(**fields: Any) -> Ingress:
    return Ingress.model_validate(
        {"host": "a.example.com", "certificateArn": CERTIFICATE, **fields}
    )


@pytest.mark.parametrize(
    ("ingress", "scheme"),
    [
        pytest.param(_ingress(), "internal", id="internal by default"),
        pytest.param(_ingress(public=True), "internet-facing", id="public"),
    ],
)
def test_alb_ingress_annotations(ingress: Ingress, scheme: str) -> None:
    annotations = ingress_annotations(ingress, {"team": "fraud", "environment": "prod"})
    assert annotations["alb.ingress.kubernetes.io/scheme"] == scheme
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/tags"] == "environment=prod,team=fraud"
    # HTTPS only: HTTP answers with a redirect, a modern TLS policy, the configured certificate.
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTP": 80},
        {"HTTPS": 443},
    ]
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"] == TLS_POLICY
    assert "alb.ingress.kubernetes.io/auth-type" not in annotations


def test_an_authenticator_signs_users_in_at_the_load_balancer() -> None:
    oidc = ingress_annotations(_ingress(public=True, authentication=OIDC), {})
    assert oidc["alb.ingress.kubernetes.io/auth-type"] == "oidc"
    assert oidc["alb.ingress.kubernetes.io/auth-on-unauthenticated-request"] == "authenticate"
    assert json.loads(oidc["alb.ingress.kubernetes.io/auth-idp-oidc"]) == {
        "issuer": "https://login.acme.example",
        "authorizationEndpoint": "https://login.acme.example/authorize",
        "tokenEndpoint": "https://login.acme.example/token",
        "userInfoEndpoint": "https://login.acme.example/userinfo",
        "secretName": "scorer-oidc",
    }
    cognito = {
        "kind": "cognito",
        "userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC",
        "userPoolClientId": "client",
        "userPoolDomain": "acme-login",
    }
    annotations = ingress_annotations(_ingress(public=True, authentication=cognito), {})
    assert json.loads(annotations["alb.ingress.kubernetes.io/auth-idp-cognito"]) == {
        "userPoolARN": cognito["userPoolArn"],
        "userPoolClientID": "client",
        "userPoolDomain": "acme-login",
    }


def test_other_ingress_classes_get_no_alb_annotations() -> None:
    assert ingress_annotations(_ingress(class_name="nginx"), {}) == {}


def test_spread_is_strict_across_zones_only_in_prod() -> None:
    def rules(prod: bool) -> dict[str, str]:
        return {c.topology_key: c.when_unsatisfiable for c in spread("scorer", prod=prod)}

    assert rules(True) == {
        "topology.kubernetes.io/zone": "DoNotSchedule",
        "kubernetes.io/hostname": "ScheduleAnyway",
    }
    assert rules(False)["topology.kubernetes.io/zone"] == "ScheduleAnyway"


# --- every example stack ----------------------------------------------------------------------


def realtime_endpoints(stack: str) -> list[RealtimeEndpoint]:
    """The real-time endpoints served by pods (`backend: kubernetes`)."""
    return [
        e
        for e in config_of(stack).serving.endpoints
        if isinstance(e, RealtimeEndpoint) and not e.on_sagemaker
    ]


def batch_endpoints(stack: str) -> list[BatchEndpoint]:
    return [e for e in config_of(stack).serving.endpoints if isinstance(e, BatchEndpoint)]


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def test_every_compute_object_validates_against_the_openapi_schema(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    objects = [dict(r.inputs) for r in plan.resources if is_kubernetes_object(r)]
    assert [e for obj in objects for e in schema_errors(obj)] == []


def test_realtime_deployment(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    for endpoint in realtime_endpoints(example_stack):
        deployment = child(
            plan, "kubernetes:apps/v1:Deployment", f"endpoint-{endpoint.name}-deployment"
        )
        manifest = deployment.inputs
        assert manifest["metadata"]["name"] == endpoint.name
        assert manifest["metadata"]["namespace"] == naming.namespace_name(config.team)
        spec = manifest["spec"]
        assert spec["replicas"] == endpoint.replicas.min
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
        assert spec["minReadySeconds"] > 0
        pod = pod_of(manifest)
        assert_hardened(pod)
        assert pod["serviceAccountName"] == f"serve-{endpoint.name}"
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        for constraint in pod["topologySpreadConstraints"]:
            assert constraint["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
        (container,) = pod["containers"]
        assert container["image"] == plan.outputs["image"]  # mlops:image or the repository's :dev
        assert container["args"] == ["serve"]
        assert container["ports"] == [{"name": "http", "containerPort": HTTP_PORT}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        resources = container["resources"]
        assert resources["requests"]["cpu"] == endpoint.resources.cpu
        assert resources["requests"]["memory"] == resources["limits"]["memory"]
        assert "cpu" in resources["limits"]
        assert deployment.dependencies, "the Deployment waits for its service account"
        labels = manifest["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_realtime_service_autoscaler_and_ingress(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    for endpoint in realtime_endpoints(example_stack):
        name = f"endpoint-{endpoint.name}"
        deployment = child(plan, "kubernetes:apps/v1:Deployment", f"{name}-deployment").inputs
        service = child(plan, "kubernetes:core/v1:Service", f"{name}-service").inputs
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        hpa = child(
            plan, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", f"{name}-hpa"
        ).inputs["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": endpoint.name,
        }
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
            endpoint.replicas.min,
            endpoint.replicas.max,
        )
        (metric,) = hpa["metrics"]
        assert metric["resource"] == {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": endpoint.target_cpu_percent},
        }
        ingresses = [
            r
            for r in plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")
            if r.name == f"{name}-ingress"
        ]
        if endpoint.ingress is None:
            assert ingresses == []
            continue
        (ingress,) = ingresses
        assert ingress.inputs["spec"]["ingressClassName"] == endpoint.ingress.class_name
        (rule,) = ingress.inputs["spec"]["rules"]
        assert rule["host"] == endpoint.ingress.host
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": endpoint.name, "port": {"name": "http"}}
        annotations = ingress.inputs["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_pdb_only_in_prod(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    prod = config_of(example_stack).environment == "prod"
    pdbs = {r.name: r for r in plan.of_type("kubernetes:policy/v1:PodDisruptionBudget")}
    for endpoint in realtime_endpoints(example_stack):
        name = f"endpoint-{endpoint.name}-pdb"
        assert (name in pdbs) is prod
        if prod:
            spec = pdbs[name].inputs["spec"]
            assert spec["maxUnavailable"] == 1
            assert spec["selector"]["matchLabels"]["app.kubernetes.io/name"] == endpoint.name
            assert endpoint.replicas.min >= 2


def test_endpoint_identity_and_policy(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    for endpoint in config.serving.endpoints:
        if isinstance(endpoint, RealtimeEndpoint) and endpoint.on_sagemaker:
            continue  # its execution role: tests/components/test_sagemaker.py
        name = f"endpoint-{endpoint.name}"
        account = service_account_name(endpoint)
        role = child(plan, "aws:iam/role:Role", f"{name}-identity-role")
        assert_irsa_trust(role, example_stack, naming.namespace_name(config.team), account)
        policy = json.loads(
            child(plan, "aws:iam/rolePolicy:RolePolicy", f"{name}-identity-policy").inputs["policy"]
        )
        actions = actions_of(policy)
        assert not [a for a in actions if a.endswith("*")]
        assert not [a for a in actions if a.startswith("dynamodb:") and "Get" not in a]
        writes = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
        (write,) = writes
        (prefix,) = write["Resource"]
        if isinstance(endpoint, RealtimeEndpoint):
            assert prefix.endswith(f"/prediction-logs/{endpoint.name}/*")
        else:
            assert prefix.endswith(f"/{endpoint.output.rstrip('/')}/*")
        (metrics,) = [s for s in policy["Statement"] if "cloudwatch:PutMetricData" in s["Action"]]
        assert metrics["Resource"] == ["*"]
        assert metrics["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": f"MLOps/{config.team}"}
        }


def test_serving_env_is_the_runtime_contract(
    example_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    for endpoint in realtime_endpoints(example_stack):
        deployment = child(
            plan, "kubernetes:apps/v1:Deployment", f"endpoint-{endpoint.name}-deployment"
        )
        (container,) = pod_of(deployment.inputs)["containers"]
        with monkeypatch.context() as env:
            settings = settings_from(env_of(container), env)
        assert settings.endpoint == endpoint_spec(endpoint)
        assert settings.endpoint.canary == endpoint.canary
        assert settings.endpoint.shadow == endpoint.shadow
        assert settings.port == HTTP_PORT
        assert settings.serve_workers == serve_workers(endpoint.resources)
        assert settings.prediction_log_uri and settings.prediction_log_uri.endswith(
            f"/prediction-logs/{endpoint.name}/"
        )
        assert settings.team == config.team
        assert settings.metrics_namespace == f"MLOps/{config.team}"
        assert settings.online_store == "dynamodb"
        assert settings.tracking_uri


@pytest.mark.parametrize(
    ("cpu", "workers"),
    [("250m", 1), ("1", 1), ("1500m", 1), ("1999m", 1), ("2", 2), ("2000m", 2), ("3.5", 3)],
)
def test_serving_processes_follow_the_cpu_request(cpu: str, workers: int) -> None:
    # One process per whole CPU requested: a fraction of a core is no second process.
    assert serve_workers(ContainerResources(cpu=cpu)) == workers


def test_batch_endpoint_cronjob(example_stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    for endpoint in batch_endpoints(example_stack):
        cronjob = child(plan, "kubernetes:batch/v1:CronJob", f"endpoint-{endpoint.name}-cronjob")
        spec = cronjob.inputs["spec"]
        assert cronjob.inputs["metadata"]["name"] == f"batch-{endpoint.name}"
        assert spec["schedule"] == endpoint.schedule
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        assert (
            0
            < job["activeDeadlineSeconds"]
            <= naming.schedule_period(endpoint.schedule).total_seconds()
        )
        pod = job["template"]["spec"]
        assert_hardened(pod)
        assert pod["serviceAccountName"] == f"batch-{endpoint.name}"
        (container,) = pod["containers"]
        assert container["args"] == ["batch-predict"]
        with monkeypatch.context() as env:
            settings = settings_from(env_of(container), env)
        assert settings.batch_input == endpoint.input
        assert settings.batch_output_uri and settings.batch_output_uri.startswith("s3://")
        assert settings.batch_output_uri.endswith(f"/{endpoint.output.rstrip('/')}/")
        assert settings.endpoint == endpoint_spec(endpoint)
        assert settings.team == config.team
        # The run's folder is the Job's name: the same for every index and retry of a run.
        (run,) = [e for e in container["env"] if e["name"] == "MLOPS_BATCH_RUN"]
        assert run["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['batch.kubernetes.io/job-name']"
        )
        assert settings.batch_shards == endpoint.completions
        if endpoint.completions > 1:
            assert job["completionMode"] == "Indexed"
            assert job["completions"] == endpoint.completions
            assert job["parallelism"] == (endpoint.parallelism or endpoint.completions)
            assert job["backoffLimitPerIndex"] == BATCH_RETRIES and "backoffLimit" not in job
        else:
            assert "completionMode" not in job and job["backoffLimit"] == BATCH_RETRIES
        assert not [
            r
            for r in plan.resources
            if r.parent == cronjob.parent and r.type == "kubernetes:apps/v1:Deployment"
        ]


def test_endpoint_pods_log_in_to_a_sql_feast_registry(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    for endpoint in config_of(example_stack).serving.endpoints:
        if isinstance(endpoint, RealtimeEndpoint) and endpoint.on_sagemaker:
            continue  # its execution role: tests/components/test_sagemaker.py
        name = f"endpoint-{endpoint.name}"
        policy = json.loads(
            child(plan, "aws:iam/rolePolicy:RolePolicy", f"{name}-identity-policy").inputs["policy"]
        )
        if isinstance(endpoint, RealtimeEndpoint):
            deployment = child(plan, "kubernetes:apps/v1:Deployment", f"{name}-deployment")
            pod, container = pod_of(deployment.inputs), "serve"
        else:
            cronjob = child(plan, "kubernetes:batch/v1:CronJob", f"{name}-cronjob").inputs
            pod, container = (
                cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                "batch-predict",
            )
        assert_registry_login(plan, pod, container, policy, sql=sql_registry(example_stack))


def test_a_realtime_endpoint_on_a_sql_feast_registry_logs_in_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No example stack serves in real time on a SQL registry: fraud-dev with one does."""
    document = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    document["config"]["mlops:featureStore"]["registry"] = {"type": "sql"}
    folder = tmp_path / "stacks"
    folder.mkdir()
    path = folder / "Pulumi.fraud-dev.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = plan_compute(path)
    policy = json.loads(
        child(plan, "aws:iam/rolePolicy:RolePolicy", "endpoint-scorer-identity-policy").inputs[
            "policy"
        ]
    )
    deployment = child(plan, "kubernetes:apps/v1:Deployment", "endpoint-scorer-deployment").inputs
    assert_registry_login(plan, pod_of(deployment), "serve", policy, sql=True)
    (container,) = pod_of(deployment)["containers"]
    with monkeypatch.context() as env:
        settings = settings_from(env_of(container), env)
    assert settings.feast_registry_uri and settings.feast_registry_uri.startswith("postgresql://")
    assert schema_errors(deployment) == []


def test_endpoint_service_names_are_exported(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    assert plan.outputs["endpoints"] == {e.name: e.name for e in realtime_endpoints(example_stack)}


def test_prod_serves_with_more_replicas_than_dev() -> None:
    def replicas(plan: Plan) -> int:
        return child(plan, "kubernetes:apps/v1:Deployment", "endpoint-scorer-deployment").inputs[
            "spec"
        ]["replicas"]

    assert replicas(plan_compute("fraud-dev")) < replicas(plan_compute("fraud-prod"))
    assert replicas(plan_compute("fraud-prod")) >= 2


# --- names do not depend on list positions ----------------------------------------------------


def _with_more_of_everything(document: dict[str, Any]) -> dict[str, Any]:
    """fraud-prod with a second node pool, pipeline, real-time endpoint and a batch endpoint."""
    config = document["config"]
    training, serving = config["mlops:training"], config["mlops:serving"]
    training["nodePools"].append({"name": "cpu-small", "instanceTypes": ["m6i.large"]})
    second = {**training["pipelines"][0], "name": "fraud-lite", "nodePool": "cpu-small"}
    second["resources"] = {"cpu": "1", "memory": "2Gi"}
    training["pipelines"].append(second)
    serving["endpoints"] += [
        {"name": "scorer-lite", "model": "fraud-lite"},
        {
            "name": "nightly",
            "mode": "batch",
            "model": "fraud-lite",
            "schedule": "0 5 * * *",
            "input": "batch/cards/",
        },
    ]
    return document


def _write(folder: Path, document: dict[str, Any]) -> Path:
    folder.mkdir()
    path = folder / "Pulumi.fraud-prod.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_reordering_pools_pipelines_and_endpoints_changes_no_name(tmp_path: Path) -> None:
    document = _with_more_of_everything(
        yaml.safe_load((STACKS / "Pulumi.fraud-prod.yaml").read_text())
    )
    original = _write(tmp_path / "original", document)
    reordered_doc = copy.deepcopy(document)
    for key, lists in (
        ("mlops:training", ("nodePools", "pipelines")),
        ("mlops:serving", ("endpoints",)),
    ):
        for name in lists:
            reordered_doc["config"][key][name].reverse()
    reordered = _write(tmp_path / "reordered", reordered_doc)

    before, after = plan_compute(original), plan_compute(reordered)
    assert {r.urn for r in before.resources} == {r.urn for r in after.resources}
    assert len(before.of_type("mlops:serving:ServingEndpoint")) == 3
    assert len(before.of_type("aws:eks/nodeGroup:NodeGroup")) == 3
    # Same URN, same inputs: nothing about a resource depends on its position in a list.
    inputs_after = {r.urn: r.inputs for r in after.resources}
    mine = ("mlops:training:", "mlops:serving:")
    compute = {r.urn for r in before.resources if any(part in r.urn for part in mine)}
    assert compute
    assert [urn for urn in sorted(compute) if before_inputs(before, urn) != inputs_after[urn]] == []
    assert before.outputs["endpoints"] == after.outputs["endpoints"]


def before_inputs(plan: Plan, urn: str) -> dict[str, Any]:
    (resource,) = [r for r in plan.resources if r.urn == urn]
    return resource.inputs
