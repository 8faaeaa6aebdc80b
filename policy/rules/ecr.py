"""ECR repositories: scanned images, immutable tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import dig, is_off, known
from policy.rules.registry import Context, resource_rule

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
