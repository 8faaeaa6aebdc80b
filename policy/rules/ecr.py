"""ECR repositories: scanned images, immutable tags; team workloads run their own images."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.properties import dig, is_off, is_prod, known
from policy.rules.registry import Context, Resource, resource_rule, stack_rule
from policy.rules.workloads import WORKLOAD_TYPES, containers, pod_spec

ECR_REPOSITORY = "aws:ecr/repository:Repository"


@resource_rule("ecr-scan-on-push", "ECR repositories scan images on push.", ECR_REPOSITORY)
def ecr_scan_on_push(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_off(dig(props, "imageScanningConfiguration.scanOnPush")):
        return ["set imageScanningConfiguration.scanOnPush: true"]
    return []


@resource_rule("ecr-immutable-tags", "ECR repositories have immutable tags.", ECR_REPOSITORY)
def ecr_immutable_tags(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    mutability = props.get("imageTagMutability")
    if mutability is None or (known(mutability) and not str(mutability).startswith("IMMUTABLE")):
        return [f"imageTagMutability is {mutability or 'MUTABLE (default)'}: set it to IMMUTABLE"]
    return []


TEAM_NAMESPACE = "mlops:team:TeamNamespace"
"""The component every team stack has: its workloads run the team's own image."""
_ECR_HOST = r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"


def _repository_prefixes(resources: Sequence[Resource]) -> list[re.Pattern[str]]:
    """What an image of the stack's own repositories starts with: the repository URL where it is
    known, else the private-registry host of any account and region with the repository's name."""
    found = []
    for r in resources:
        if r.type != ECR_REPOSITORY:
            continue
        url, name = r.props.get("repositoryUrl"), r.props.get("name")
        if isinstance(url, str) and known(url):
            found.append(re.compile(re.escape(url) + r"[:@]"))
        elif isinstance(name, str) and known(name):
            found.append(re.compile(f"{_ECR_HOST}/{re.escape(name)}[:@]"))
    return found


@stack_rule(
    "k8s-image-from-stack-repository",
    "A team stack's workloads run images of the stack's own ECR repository (no public registry "
    "namespace), and in prod by digest.",
)
def k8s_image_from_stack_repository(
    resources: Sequence[Resource], stack: str
) -> list[tuple[str, str]]:
    if not any(r.type == TEAM_NAMESPACE for r in resources):
        return []  # the platform runs its controllers' upstream releases (platform:services)
    prefixes = _repository_prefixes(resources)
    found = []
    for r in resources:
        if r.type not in WORKLOAD_TYPES:
            continue
        for label, container in containers(pod_spec(r.type, r.props)):
            image = container.get("image")
            if not isinstance(image, str) or not known(image):
                continue
            if not any(p.match(image) for p in prefixes):
                where = (
                    "the stack's ECR repository" if prefixes else "an ECR repository of the stack"
                )
                found.append(
                    (
                        r.urn,
                        f"{label}: image {image!r} is not from {where}: push it there "
                        "(`mlops image build --push <repository>`) and set mlops:image to the "
                        "<repository>@sha256:<digest> it prints",
                    )
                )
            elif is_prod(r.props, stack) and "@sha256:" not in image:
                found.append(
                    (
                        r.urn,
                        f"{label}: image {image!r} is a tag: prod runs a digest, "
                        "<repository>@sha256:<digest>",
                    )
                )
    return found
