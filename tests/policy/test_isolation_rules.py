"""The rules of issue 14: namespaces closed by default, no unused API token, one writer of
model artifacts, MLflow without an upload proxy, trusted model code said out loud."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.registry import ARTIFACT_PREFIX
from policy.rules import Resource, Violation, check_plan, check_resource, check_stack
from policy.rules.models import ARTIFACT_PREFIX as POLICY_ARTIFACT_PREFIX
from policy.rules.models import allows
from tests.conftest import planned
from tests.policy.test_rules import CONTAINER
from tooling.plan import Plan

STACK = "fraud-prod"
NS_URN = "urn:pulumi:fraud-prod::mlops::kubernetes:core/v1:Namespace::team-ns"
DENY_URN = "urn:pulumi:fraud-prod::mlops::kubernetes:networking.k8s.io/v1:NetworkPolicy::deny"
SA_URN = "urn:pulumi:fraud-prod::mlops::kubernetes:core/v1:ServiceAccount::sa"
DEPLOY_URN = "urn:pulumi:fraud-prod::mlops::kubernetes:apps/v1:Deployment::scorer"
BUCKET_URN = "urn:pulumi:fraud-prod::mlops::aws:s3/bucket:Bucket::models"
BUCKET_ARN = "arn:aws:s3:::fraud-prod-models-1"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

NAMESPACE = Resource("kubernetes:core/v1:Namespace", NS_URN, {"metadata": {"name": "ml-fraud"}})
DEFAULT_DENY = {
    "metadata": {"name": "default-deny", "namespace": "ml-fraud"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}
ACCOUNT = {
    "metadata": {"name": "serve-scorer", "namespace": "ml-fraud"},
    "automountServiceAccountToken": False,
}
POD = {"serviceAccountName": "serve-scorer", "containers": [{"name": "serve", "image": "x"}]}


def policy(props: dict[str, Any]) -> Resource:
    return Resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", DENY_URN, props)


def deployment(pod: dict[str, Any]) -> Resource:
    return Resource(
        DEPLOYMENT,
        DEPLOY_URN,
        {
            "metadata": {"name": "scorer", "namespace": "ml-fraud"},
            "spec": {"template": {"spec": pod}},
        },
    )


def account(**changes: Any) -> Resource:
    return Resource("kubernetes:core/v1:ServiceAccount", SA_URN, {**ACCOUNT, **changes})


def write(sid: str, resource: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [resource]}


def role_policy(role: str, *statements: dict[str, Any]) -> Resource:
    return Resource(
        "aws:iam/rolePolicy:RolePolicy",
        f"urn:pulumi:fraud-prod::mlops::aws:iam/rolePolicy:RolePolicy::{role}",
        {
            "role": role,
            "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        },
    )


MODEL_BUCKET = Resource(
    "aws:s3/bucket:Bucket", BUCKET_URN, {"arn": BUCKET_ARN, "tags": {"mlops.dev/role": "models"}}
)
TRAINING = role_policy("fraud-prod-training", write("WriteArtifacts", f"{BUCKET_ARN}/artifacts/*"))
SERVING = role_policy(
    "fraud-prod-serve-scorer", write("Log", f"{BUCKET_ARN}/prediction-logs/scorer/*")
)

COMPLIANT = [
    NAMESPACE,
    policy(DEFAULT_DENY),
    account(),
    deployment(POD),
    MODEL_BUCKET,
    TRAINING,
    SERVING,
]

# (rule, resources, urns it fires on)
STACK_CASES = [
    pytest.param(
        "k8s-namespace-default-deny", [NAMESPACE], [NS_URN], id="namespace-without-policies"
    ),
    pytest.param(
        "k8s-namespace-default-deny",
        [
            NAMESPACE,
            policy({**DEFAULT_DENY, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
        ],
        [NS_URN],
        id="deny-ingress-only",
    ),
    pytest.param(
        "k8s-namespace-default-deny",
        [
            NAMESPACE,
            policy(
                {
                    **DEFAULT_DENY,
                    "spec": {**DEFAULT_DENY["spec"], "podSelector": {"matchLabels": {"a": "b"}}},
                }
            ),
        ],
        [NS_URN],
        id="deny-some-pods-only",
    ),
    pytest.param(
        "k8s-namespace-default-deny",
        [NAMESPACE, policy({**DEFAULT_DENY, "spec": {**DEFAULT_DENY["spec"], "egress": [{}]}})],
        [NS_URN],
        id="default-policy-allows-egress",
    ),
    pytest.param(
        "k8s-no-unused-api-token",
        [account(automountServiceAccountToken=True), deployment(POD)],
        [SA_URN, DEPLOY_URN],
        id="account-mounts-token",
    ),
    pytest.param(
        "k8s-no-unused-api-token",
        [account(), deployment({**POD, "automountServiceAccountToken": True})],
        [DEPLOY_URN],
        id="pod-mounts-token",
    ),
    pytest.param(
        "k8s-no-unused-api-token",
        [deployment({"containers": POD["containers"]})],
        [DEPLOY_URN],
        id="default-account-mounts-token",
    ),
    pytest.param(
        "model-artifacts-one-writer",
        [
            MODEL_BUCKET,
            TRAINING,
            role_policy("fraud-prod-serve-scorer", write("All", f"{BUCKET_ARN}/*")),
        ],
        [
            TRAINING.urn,
            "urn:pulumi:fraud-prod::mlops::aws:iam/rolePolicy:RolePolicy::fraud-prod-serve-scorer",
        ],
        id="serving-writes-the-whole-bucket",
    ),
    pytest.param(
        "model-artifacts-one-writer",
        [
            MODEL_BUCKET,
            TRAINING,
            role_policy(
                "fraud-prod-mlflow",
                {
                    "Effect": "Allow",
                    "Action": "s3:Delete*",
                    "Resource": f"{BUCKET_ARN}/artifacts/*",
                },
            ),
        ],
        [
            TRAINING.urn,
            "urn:pulumi:fraud-prod::mlops::aws:iam/rolePolicy:RolePolicy::fraud-prod-mlflow",
        ],
        id="server-deletes-artifacts",
    ),
]
TEAM = Resource(
    "mlops:team:TeamNamespace", "urn:pulumi:fraud-prod::mlops::mlops:team:TeamNamespace::team", {}
)
KEY_URN = "urn:pulumi:fraud-prod::mlops::aws:kms/key:Key::data-key-key"
KEY = Resource(
    "aws:kms/key:Key", KEY_URN, {"keyId": "k-1", "arn": "arn:aws:kms:eu-west-1:1:key/k-1"}
)
NAMED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "KeyAdministrators",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/mlops-deploy"]},
            "Action": ["kms:Put*", "kms:Describe*"],
            "Resource": "*",
        },
        {
            "Sid": "TeamWorkloads",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/fraud-prod-training"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    ],
}
ROOT_USES = {
    "Statement": [
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
}


def key_policy(
    document: dict[str, Any], key_id: str = "k-1", dependencies: tuple[str, ...] = ()
) -> Resource:
    return Resource(
        "aws:kms/keyPolicy:KeyPolicy",
        "urn:pulumi:fraud-prod::mlops::aws:kms/keyPolicy:KeyPolicy::data-key-access-policy",
        {"keyId": key_id, "policy": json.dumps(document)},
        dependencies=dependencies,
    )


COMPLIANT += [TEAM, KEY, key_policy(NAMED)]
STACK_CASES += [
    pytest.param(
        "kms-key-policy-names-principals", [TEAM, KEY], [KEY_URN], id="key-without-policy"
    ),
    pytest.param(
        "kms-key-policy-names-principals",
        [TEAM, KEY, key_policy(ROOT_USES)],
        [KEY_URN, KEY_URN],
        id="root-delegation",
    ),
    pytest.param(
        "kms-key-policy-names-principals",
        [TEAM, KEY, key_policy({"Statement": [NAMED["Statement"][1]]})],
        [KEY_URN],
        id="prod-without-administrators",
    ),
    pytest.param(
        "kms-key-policy-names-principals",
        [
            TEAM,
            KEY,
            key_policy(
                {"Statement": [{**NAMED["Statement"][1], "Principal": "*"}, NAMED["Statement"][0]]}
            ),
        ],
        [KEY_URN],
        id="anyone-uses",
    ),
]
STACK_RULE_NAMES = {
    "kms-key-policy-names-principals",
    "k8s-namespace-default-deny",
    "k8s-no-unused-api-token",
    "model-artifacts-one-writer",
}

MLFLOW = {
    **CONTAINER,
    "name": "mlflow",
    "command": ["mlflow"],
    "args": ["server", "--host", "0.0.0.0", "--no-serve-artifacts"],
}
RESOURCE_CASES = [
    pytest.param(
        "mlflow-no-artifact-proxy",
        {**MLFLOW, "args": ["server", "--serve-artifacts"]},
        id="serve-artifacts",
    ),
    pytest.param("mlflow-no-artifact-proxy", {**MLFLOW, "args": ["server"]}, id="proxy-by-default"),
    pytest.param(
        "mlflow-no-artifact-proxy",
        {**MLFLOW, "command": None, "args": ["mlflow", "server"]},
        id="entrypoint-args",
    ),
]
ADVISORY = {"serving-trusts-model-code"}
VIOLATING_RULES = STACK_RULE_NAMES | {p.values[0] for p in RESOURCE_CASES} | ADVISORY


def mine(resources: list[Resource]) -> list[Violation]:
    """The violations of this issue's rules (a bare bucket trips the S3 ones, tested elsewhere)."""
    return [v for v in check_stack(resources, STACK) if v.rule in VIOLATING_RULES]


def test_compliant_resources_pass() -> None:
    assert mine(COMPLIANT) == []


@pytest.mark.parametrize(("rule", "resources", "urns"), STACK_CASES)
def test_stack_rule_catches_its_violation(
    rule: str, resources: list[Resource], urns: list[str]
) -> None:
    assert sorted((v.rule, v.urn) for v in mine(resources)) == sorted((rule, urn) for urn in urns)


def test_an_rbac_bound_account_may_mount_its_token() -> None:
    binding = Resource(
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "urn:pulumi:s::p::kubernetes:rbac.authorization.k8s.io/v1:RoleBinding::b",
        {"subjects": [{"kind": "ServiceAccount", "name": "serve-scorer", "namespace": "ml-fraud"}]},
    )
    mounted = [account(automountServiceAccountToken=True), deployment(POD), binding]
    assert check_stack(mounted, STACK) == []


def test_a_key_policy_is_found_by_dependency_while_the_key_id_is_unknown() -> None:
    pending = Resource("aws:kms/key:Key", KEY_URN, {"keyId": "[unknown]"})
    assert mine([TEAM, pending, key_policy(NAMED, "[unknown]", (KEY_URN,))]) == []
    assert [v.rule for v in mine([TEAM, pending, key_policy(NAMED, "[unknown]")])] == [
        "kms-key-policy-names-principals"
    ]


def test_the_platform_keys_are_not_a_teams() -> None:
    assert mine([KEY]) == []  # no TeamNamespace: a platform stack, its key has a rule of its own


def test_dev_may_leave_administration_to_the_account() -> None:
    dev_admin = {**ROOT_USES["Statement"][0], "Action": ["kms:Put*", "kms:Describe*"]}
    document = {"Statement": [dev_admin, NAMED["Statement"][1]]}
    assert [
        v
        for v in check_stack([TEAM, KEY, key_policy(document)], "fraud-dev")
        if v.rule in VIOLATING_RULES
    ] == []


def test_a_policy_whose_namespace_is_not_known_yet_is_no_violation() -> None:
    unknown = policy({**DEFAULT_DENY, "metadata": {"name": "d", "namespace": "[unknown]"}})
    assert check_stack([NAMESPACE, unknown], STACK) == []


@pytest.mark.parametrize(("rule", "container"), RESOURCE_CASES)
def test_resource_rule_catches_its_violation(rule: str, container: dict[str, Any]) -> None:
    props = {"spec": {"template": {"spec": {"containers": [container]}}}}
    assert {v.rule for v in check_resource(DEPLOYMENT, props)} == {rule}


def test_a_server_without_the_proxy_passes() -> None:
    for server in (
        MLFLOW,
        {
            **MLFLOW,
            "args": ["server"],
            "env": [{"name": "MLFLOW_SERVE_ARTIFACTS", "value": "false"}],
        },
    ):
        props = {"spec": {"template": {"spec": {"containers": [server]}}}}
        assert check_resource(DEPLOYMENT, props) == []


def test_trusting_model_code_is_a_warning() -> None:
    env = [
        {"name": "MLOPS_ENDPOINT", "value": json.dumps({"name": "scorer", "trustModelCode": True})}
    ]
    trusting = deployment(
        {
            **POD,
            "automountServiceAccountToken": False,
            "containers": [{"name": "serve", "env": env}],
        }
    )
    (warning,) = check_stack([account(), trusting], STACK)
    assert (warning.rule, warning.advisory) == ("serving-trusts-model-code", True)
    assert "'scorer' loads pickled or custom pyfunc models" in warning.message


@pytest.mark.parametrize(
    ("action", "resource", "allowed"),
    [
        pytest.param("s3:PutObject", f"{BUCKET_ARN}/artifacts/x", True, id="prefix"),
        pytest.param("S3:PUTOBJECT", f"{BUCKET_ARN}/artifacts/x", True, id="actions-ignore-case"),
        pytest.param("s3:PutObject", f"{BUCKET_ARN}/Artifacts/x", False, id="resources-do-not"),
        pytest.param("s3:PutObject", f"{BUCKET_ARN}/artifactsX", False, id="not-the-prefix"),
        pytest.param("s3:GetObject", f"{BUCKET_ARN}/artifacts/x", False, id="other-action"),
    ],
)
def test_allows_matches_like_iam(action: str, resource: str, allowed: bool) -> None:
    document = {"Statement": [write("W", f"{BUCKET_ARN}/artifacts/*")]}
    assert allows(document, action, resource) is allowed


def test_the_pack_and_the_registry_agree_on_the_artifact_prefix() -> None:
    assert f"{ARTIFACT_PREFIX}/" == POLICY_ARTIFACT_PREFIX


def _without(plan: Plan, type_: str, name: str) -> Plan:
    plan = copy.deepcopy(plan)
    plan.resources = [r for r in plan.resources if not (r.type == type_ and r.name == name)]
    return plan


def test_a_real_stack_without_its_default_deny_is_caught() -> None:
    plan = _without(
        planned(STACK), "kubernetes:networking.k8s.io/v1:NetworkPolicy", "network-default-deny"
    )
    assert [v.rule for v in check_plan(plan)] == ["k8s-namespace-default-deny"]


def test_a_real_stack_whose_server_may_write_models_is_caught() -> None:
    plan = copy.deepcopy(planned(STACK))
    (server,) = [r for r in plan.resources if r.name == "registry-identity-policy"]
    document = json.loads(server.outputs["policy"])
    document["Statement"].append(write("Upload", "arn:aws:s3:::*"))
    server.outputs["policy"] = server.inputs["policy"] = json.dumps(document)
    assert {v.rule for v in check_plan(plan)} == {"model-artifacts-one-writer"}


# --- ingress: TLS only, authenticated when public in prod ----------------------------------------

T_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
ALB = "alb.ingress.kubernetes.io/"
TLS_INGRESS = {
    "metadata": {
        "name": "scorer",
        "labels": {"mlops.dev/environment": "prod"},
        "annotations": {
            f"{ALB}scheme": "internal",
            f"{ALB}listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
            f"{ALB}ssl-redirect": "443",
            f"{ALB}certificate-arn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
            f"{ALB}ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        },
    },
    "spec": {"ingressClassName": "alb"},
}


def ingress(**annotations: Any) -> dict[str, Any]:
    props = copy.deepcopy(TLS_INGRESS)
    for key, value in annotations.items():
        name = ALB + key.replace("_", "-")
        if value is None:
            del props["metadata"]["annotations"][name]
        else:
            props["metadata"]["annotations"][name] = value
    return props


INGRESS_CASES = [
    pytest.param("k8s-ingress-tls", ingress(listen_ports='[{"HTTP": 80}]'), id="http-only"),
    pytest.param("k8s-ingress-tls", ingress(listen_ports=None), id="default-http"),
    pytest.param("k8s-ingress-tls", ingress(certificate_arn=None), id="no-certificate"),
    pytest.param("k8s-ingress-tls", ingress(ssl_redirect=None), id="http-not-redirected"),
    pytest.param(
        "k8s-ingress-tls", ingress(ssl_policy="ELBSecurityPolicy-2016-08"), id="old-tls-policy"
    ),
    pytest.param(
        "k8s-ingress-public-authenticated-prod",
        ingress(scheme="internet-facing"),
        id="public-without-authenticator",
    ),
]
VIOLATING_RULES |= {p.values[0] for p in INGRESS_CASES}


@pytest.mark.parametrize(("rule", "props"), INGRESS_CASES)
def test_ingress_rule_catches_its_violation(rule: str, props: dict[str, Any]) -> None:
    assert {v.rule for v in check_resource(T_INGRESS, props)} == {rule}


def test_a_tls_ingress_passes_and_a_public_one_with_an_authenticator_too() -> None:
    assert check_resource(T_INGRESS, TLS_INGRESS) == []
    public = ingress(scheme="internet-facing", auth_type="oidc")
    assert check_resource(T_INGRESS, public) == []
    # Outside prod a public endpoint may go without (dev has no real users).
    dev = copy.deepcopy(ingress(scheme="internet-facing"))
    dev["metadata"]["labels"]["mlops.dev/environment"] = "dev"
    assert check_resource(T_INGRESS, dev) == []
    # Another ingress controller: not the ALB's annotations to judge.
    assert check_resource(T_INGRESS, {**TLS_INGRESS, "spec": {"ingressClassName": "nginx"}}) == []


# --- a Service of type LoadBalancer: an internal NLB with its own security group ----------------

T_SERVICE = "kubernetes:core/v1:Service"
NLB = "service.beta.kubernetes.io/aws-load-balancer-"
INTERNAL_NLB = {
    "metadata": {
        "name": "mlflow-sagemaker",
        "annotations": {
            f"{NLB}type": "external",
            f"{NLB}nlb-target-type": "ip",
            f"{NLB}scheme": "internal",
            f"{NLB}security-groups": "sg-0123456789abcdef0",
        },
    },
    "spec": {"type": "LoadBalancer", "ports": [{"port": 5000}]},
}


def nlb(**annotations: Any) -> dict[str, Any]:
    props = copy.deepcopy(INTERNAL_NLB)
    for key, value in annotations.items():
        name = NLB + key.replace("_", "-")
        if value is None:
            del props["metadata"]["annotations"][name]
        else:
            props["metadata"]["annotations"][name] = value
    return props


SERVICE_CASES = [
    pytest.param("k8s-load-balancer-service-internal", nlb(scheme="internet-facing"), id="public"),
    pytest.param("k8s-load-balancer-service-internal", nlb(scheme=None), id="scheme-unsaid"),
    pytest.param("k8s-load-balancer-service-internal", nlb(security_groups=None), id="no-own-sg"),
    pytest.param("k8s-load-balancer-service-internal", nlb(nlb_target_type="instance"), id="nodes"),
    pytest.param("k8s-load-balancer-service-internal", nlb(type=None), id="in-tree-classic-elb"),
]
VIOLATING_RULES |= {p.values[0] for p in SERVICE_CASES}


@pytest.mark.parametrize(("rule", "props"), SERVICE_CASES)
def test_load_balancer_service_rule_catches_its_violation(rule: str, props: dict[str, Any]) -> None:
    assert {v.rule for v in check_resource(T_SERVICE, props)} == {rule}


def test_an_internal_nlb_with_its_own_security_group_and_a_cluster_ip_service_pass() -> None:
    assert check_resource(T_SERVICE, INTERNAL_NLB) == []
    assert check_resource(T_SERVICE, {"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}) == []
