"""The runtime image: the team's ECR repository, one image in every workload, digests in prod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError, parse_stack_config
from components.config.rules import IMAGE_BY_DIGEST
from components.image import DEFAULT_IMAGE_TAG, KEEP_IMAGES, lifecycle_policy, repository_name
from components.team import Team
from tests.components._data_plane_helpers import data_key, stack_config
from tests.conftest import EXAMPLE_STACKS, planned
from tooling.mocks import ACCOUNT_ID

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
WORKLOADS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
DIGEST = "sha256:" + "ab" * 32


# -- planning functions, no mocks -------------------------------------------------------------


def test_repository_is_per_stack() -> None:
    team = Team.of(stack_config("fraud-prod"), "eu-west-1")
    assert repository_name(team) == "fraud-prod/runtime"


def test_the_default_image_is_what_mlops_image_pushes() -> None:
    """`mlops image build --push <repository>` pushes the local tag's tag: the default's."""
    from tooling.image import DEFAULT_TAG

    assert DEFAULT_TAG.rsplit(":", 1)[1] == DEFAULT_IMAGE_TAG


def test_lifecycle_keeps_the_last_images_and_drops_untagged_ones_first() -> None:
    rules = lifecycle_policy()["rules"]

    priorities = [r["rulePriority"] for r in rules]
    assert len(set(priorities)) == len(priorities)
    # ECR: a `tagStatus: any` rule must be evaluated last (highest priority number).
    last = max(rules, key=lambda r: r["rulePriority"])
    assert last["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": KEEP_IMAGES,
    }
    assert all(r["action"] == {"type": "expire"} for r in rules)


# -- the cross-field rule --------------------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "mlops:team": "ads",
    "mlops:cluster": {"stackReference": "acme/platform/x"},
    "mlops:monitoring": {"alertEmails": ["oncall@acme.example"]},
    "mlops:keyAdministrators": ["arn:aws:iam::123456789012:role/mlops-deploy"],
}


def _issues(environment: str, image: str | None) -> list[str]:
    raw = {**MINIMAL, "mlops:environment": environment}
    if image is not None:
        raw["mlops:image"] = image
    try:
        parse_stack_config(raw, file=Path("Pulumi.yaml"), stack=f"ads-{environment}")
    except ConfigError as error:
        return [f"{i.path}: {i.message}" for i in error.issues]
    return []


def _values(environment: str, image: str) -> list[Any]:
    raw = {**MINIMAL, "mlops:environment": environment, "mlops:image": image}
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, file=Path("Pulumi.yaml"), stack=f"ads-{environment}")
    return [i.value for i in raised.value.issues]


PINNED = (
    "mlops:image: should be pinned by digest in prod, <repository>@sha256:<64 hex digits> "
    "(`mlops image build --push <repository>` prints it): a tag can be moved to another image"
)
UNSET = (
    "mlops:image: should be set in prod, to the stack's repository pinned by digest, "
    "<repository>@sha256:<64 hex digits> (`mlops image build --push <repository>` prints it; "
    "<repository>: the stack output imageRepository)"
)
MALFORMED = (
    "mlops:image: should be <repository>@sha256:<64 lower-case hex digits> "
    "(a digest as the registry prints it)"
)


@pytest.mark.parametrize(
    ("environment", "image", "issues"),
    [
        pytest.param("dev", None, [], id="dev-default-tag"),
        pytest.param("dev", "localhost/mlops-runtime:dev", [], id="dev-tag"),
        pytest.param("dev", f"registry.example/ads/runtime@{DIGEST}", [], id="dev-digest"),
        pytest.param("prod", f"registry.example/ads/runtime@{DIGEST}", [], id="prod-digest"),
        pytest.param(
            "prod", f"registry.example/ads/runtime:1.2@{DIGEST}", [], id="prod-tag-and-digest"
        ),
        pytest.param("prod", None, [UNSET], id="prod-default-image"),
        pytest.param("prod", "registry.example/ads/runtime:1.2.3", [PINNED], id="prod-tag"),
        pytest.param("staging", "registry.example/ads/runtime:1.2.3", [], id="staging-tag"),
        pytest.param("prod", "registry.example/ads/runtime@sha256:abc", [MALFORMED], id="short"),
        pytest.param(
            "dev", f"registry.example/ads/runtime@{DIGEST.upper()}", [MALFORMED], id="upper-case"
        ),
        pytest.param("dev", f"registry.example/ads/runtime@md5:{'a' * 64}", [MALFORMED], id="md5"),
    ],
)
def test_prod_runs_an_image_pinned_by_digest(
    environment: str, image: str | None, issues: list[str]
) -> None:
    assert _issues(environment, image) == issues


def test_the_problem_names_the_bad_value() -> None:
    assert _values("prod", "registry.example/ads/runtime:latest") == [
        "registry.example/ads/runtime:latest"
    ]


# -- every example stack's plan --------------------------------------------------------------


def _pod_specs(resource_type: str, manifest: dict[str, Any]) -> dict[str, Any]:
    spec: Any = manifest
    for key in WORKLOADS[resource_type]:
        spec = spec[key]
    return dict(spec)


def test_every_container_of_every_workload_runs_the_configured_image(example_stack: str) -> None:
    plan, image = planned(example_stack), stack_config(example_stack).image
    (repository,) = plan.of_type(REPOSITORY)
    if image is None:
        # Not set: the stack's own repository, never a public registry's unqualified name.
        image = f"{repository.outputs['repositoryUrl']}:{DEFAULT_IMAGE_TAG}"
    seen = 0
    for resource in plan.resources:
        if resource.type not in WORKLOADS:
            continue
        pod = _pod_specs(resource.type, resource.inputs)
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            seen += 1
            assert container["image"] == image, f"{resource.name}/{container['name']}"
    assert seen >= 3  # serving, training, the MLflow server and its sidecar at least
    assert plan.outputs["image"] == image


def test_the_team_has_a_scanned_immutable_encrypted_repository(example_stack: str) -> None:
    plan = planned(example_stack)
    (repository,) = plan.of_type(REPOSITORY)
    team = stack_config(example_stack)

    assert repository.inputs["name"] == f"{example_stack}/runtime"
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    (encryption,) = repository.inputs["encryptionConfigurations"]
    assert encryption["encryptionType"] == "KMS"
    key = data_key(plan)
    assert encryption.get("kmsKey") == (key.outputs["arn"] if key else None)
    assert repository.inputs["tags"]["team"] == team.team
    prod = team.environment == "prod"
    assert (repository.protect, repository.inputs["forceDelete"]) == (prod, not prod)
    assert plan.outputs["imageRepository"] == repository.outputs["repositoryUrl"]

    (lifecycle,) = plan.of_type(LIFECYCLE)
    assert lifecycle.inputs["repository"] == repository.outputs["name"]
    assert json.loads(lifecycle.inputs["policy"]) == lifecycle_policy()


@pytest.mark.parametrize("stack", [s for s in EXAMPLE_STACKS if s.endswith("-prod")])
def test_prod_examples_pin_an_image_of_their_own_repository(stack: str) -> None:
    plan, image = planned(stack), stack_config(stack).image
    assert IMAGE_BY_DIGEST.match(image)
    (repository,) = plan.of_type(REPOSITORY)
    assert image.split("@", 1)[0] == repository.outputs["repositoryUrl"]
    assert repository.outputs["repositoryUrl"].startswith(f"{ACCOUNT_ID}.dkr.ecr.")
