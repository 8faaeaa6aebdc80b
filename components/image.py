"""`mlops:image:RuntimeRepository`: the team's ECR repository for the runtime image.

Every workload of the stack runs the image named by `mlops:image`; in prod that is
`<this repository>@sha256:...`, pushed by the deploy workflow before `pulumi up`. Tags are
immutable and every push is scanned; the lifecycle policy keeps the last images (rollbacks pin
a digest that must still exist) and drops untagged leftovers early.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.team import Team

KEEP_IMAGES = 30
"""Images a repository keeps: enough to roll back weeks of deploys."""
UNTAGGED_DAYS = 14
"""Untagged images (layers of superseded multi-arch pushes, failed pushes) go after this."""
REPOSITORY_SUFFIX = "runtime"
DEFAULT_IMAGE_TAG = "dev"
"""The tag `mlops image build --push` gives an image it pushes (tooling.image.DEFAULT_TAG's):
what a stack without `mlops:image` runs, from its own repository (prod must pin a digest)."""


def repository_name(team: Team) -> str:
    """`<team>-<env>/runtime`: one repository per stack, so dev and prod never share tags."""
    return f"{team.stack}/{REPOSITORY_SUFFIX}"


def lifecycle_policy(keep: int = KEEP_IMAGES, untagged_days: int = UNTAGGED_DAYS) -> dict[str, Any]:
    """Expire untagged images after ``untagged_days``, then everything beyond the last ``keep``.

    ECR evaluates rules by priority; a `tagStatus: any` rule must have the highest number.
    """
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {untagged_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the last {keep} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            },
        ]
    }


class RuntimeRepository(pulumi.ComponentResource):
    """Where the team's runtime image lives: private, scanned, immutable, KMS-encrypted."""

    repository_url: pulumi.Output[str]
    """`<account>.dkr.ecr.<region>.amazonaws.com/<team>-<env>/runtime` (push here, pin by digest)."""
    repository_arn: pulumi.Output[str]
    """ARN of the repository (scope push permissions of the deploy role to it)."""
    default_image: pulumi.Output[str]
    """`<repository>:dev`: what the workloads run when `mlops:image` is not set."""

    def __init__(
        self,
        name: str,
        *,
        team: Team,
        kms_key_arn: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:image:RuntimeRepository", name, None, opts)
        # The image every workload runs: a tag, once pushed, always names the same image.
        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=repository_name(team),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=kms_key_arn
                )
            ],
            # A prod repository holds the images running pods pull; it never goes with a stack.
            force_delete=not team.prod,
            tags=team.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=team.prod),
        )
        # Bounded storage without ever dropping the recent images a rollback needs.
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.default_image = repository.repository_url.apply(
            lambda url: f"{url}:{DEFAULT_IMAGE_TAG}"
        )
        self.register_outputs(
            {"repositoryUrl": self.repository_url, "repositoryArn": self.repository_arn}
        )
