"""k8s-image-from-stack-repository: a team's workloads run its own repository's images, by
digest in prod (#14: no public registry namespace)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from policy.rules import Resource, check_plan, check_stack
from tests.conftest import planned

RULE = "k8s-image-from-stack-repository"
IMAGE_RULES = {RULE}
REPOSITORY_URL = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fraud-prod/runtime"
DIGEST = "@sha256:" + "ab" * 32
TEAM = Resource("mlops:team:TeamNamespace", "urn:pulumi:fraud-prod::mlops::team", {})
DEPLOY_URN = "urn:pulumi:fraud-prod::mlops::kubernetes:apps/v1:Deployment::scorer"


def repository(**props: Any) -> Resource:
    props = {"name": "fraud-prod/runtime", "repositoryUrl": REPOSITORY_URL, **props}
    return Resource("aws:ecr/repository:Repository", "urn:pulumi:fraud-prod::mlops::repo", props)


def deployment(image: str, *, init: str | None = None, environment: str = "prod") -> Resource:
    pod: dict[str, Any] = {"containers": [{"name": "serve", "image": image}]}
    if init:
        pod["initContainers"] = [{"name": "setup", "image": init}]
    props = {
        "metadata": {"name": "scorer", "labels": {"mlops.dev/environment": environment}},
        "spec": {"template": {"spec": pod}},
    }
    return Resource("kubernetes:apps/v1:Deployment", DEPLOY_URN, props)


def found(resources: list[Resource], stack: str = "fraud-prod") -> list[str]:
    return [v.message for v in check_stack(resources, stack) if v.rule == RULE]


def test_the_stacks_own_repository_by_digest_passes() -> None:
    assert found([TEAM, repository(), deployment(REPOSITORY_URL + DIGEST)]) == []


def test_a_tag_of_the_own_repository_passes_outside_prod() -> None:
    stack = [TEAM, repository(), deployment(REPOSITORY_URL + ":dev", environment="dev")]
    assert found(stack, "fraud-dev") == []


@pytest.mark.parametrize(
    ("image", "init", "expected"),
    [
        pytest.param("python:3.11-slim", None, "is not from the stack's ECR", id="docker-hub"),
        pytest.param("ghcr.io/acme/mlops-runtime" + DIGEST, None, "is not from", id="ghcr"),
        pytest.param(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-prod/runtime" + DIGEST,
            None,
            "is not from",
            id="another-teams-repository",
        ),
        pytest.param(
            REPOSITORY_URL + "-evil" + DIGEST, None, "is not from", id="a-name-that-extends-it"
        ),
        pytest.param(REPOSITORY_URL + ":v1", None, "prod runs a digest", id="prod-tag"),
        pytest.param(
            REPOSITORY_URL + DIGEST, "busybox:1.36", "initContainer 'setup'", id="init-container"
        ),
    ],
)
def test_an_image_from_elsewhere_or_a_prod_tag_is_refused(
    image: str, init: str | None, expected: str
) -> None:
    [message] = found([TEAM, repository(), deployment(image, init=init)])
    assert expected in message


def test_without_its_url_the_repository_name_on_a_private_registry_counts() -> None:
    unknown_url = repository(repositoryUrl="[unknown]")
    assert found([TEAM, unknown_url, deployment(REPOSITORY_URL + DIGEST)]) == []
    [message] = found([TEAM, unknown_url, deployment("public.ecr.aws/fraud-prod/runtime" + DIGEST)])
    assert "not from the stack's ECR repository" in message


def test_a_team_stack_without_a_repository_is_refused() -> None:
    [message] = found([TEAM, deployment(REPOSITORY_URL + DIGEST)])
    assert "an ECR repository of the stack" in message


def test_an_unknown_image_and_the_platform_are_not_judged() -> None:
    assert found([TEAM, repository(), deployment("[unknown]")]) == []
    assert found([repository(), deployment("registry.k8s.io/x:v1")], "prod") == []


@pytest.mark.parametrize("stack", ["fraud-dev", "fraud-prod", "recommendations-prod"])
def test_the_example_stacks_pass_and_a_public_image_in_their_plan_fails(stack: str) -> None:
    plan = planned(stack)
    assert [v for v in check_plan(plan) if v.rule == RULE] == []
    resources = []
    for r in plan.resources:
        if r.type == "kubernetes:apps/v1:Deployment" and r.inputs["metadata"]["name"] == "mlflow":
            outputs = {**r.outputs}
            spec = outputs["spec"]["template"]["spec"]
            outputs["spec"] = {"template": {"spec": {**spec, "containers": [
                {**spec["containers"][0], "image": "ghcr.io/mlflow/mlflow:v2.16.0"}
            ]}}}  # fmt: skip
            r = dataclasses.replace(r, outputs=outputs)
        resources.append(r)
    seeded = dataclasses.replace(plan, resources=resources)
    [violation] = [v for v in check_plan(seeded) if v.rule == RULE]
    assert "ghcr.io/mlflow/mlflow:v2.16.0" in violation.message
