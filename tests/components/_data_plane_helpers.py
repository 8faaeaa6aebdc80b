"""Reading the data plane out of a plan: the config behind it, its resources, its IAM documents."""

from __future__ import annotations

import functools
import json
from typing import Any

from components.config import StackConfig, load_stack_file
from components.iam import db_user_arn
from tooling.plan import Plan, PlannedResource, stack_file

DB_ROLES = ("mlflow", "feast")
"""The registry database's login roles (components.registry MLFLOW_ROLE, FEAST_ROLE)."""
S3_CHILDREN = (
    "bucketVersioning",
    "bucketServerSideEncryptionConfiguration",
    "bucketPublicAccessBlock",
    "bucketOwnershipControls",
    "bucketPolicy",
    "bucketLifecycleConfiguration",
)


@functools.cache
def stack_config(stack: str) -> StackConfig:
    return load_stack_file(stack_file(stack)).config


def bucket_child(plan: Plan, kind: str, bucket: str) -> PlannedResource:
    """The `aws:s3/<kind>` resource that configures ``bucket`` (exactly one)."""
    found = [
        r
        for r in plan.resources
        if r.type == f"aws:s3/{kind}:{kind[0].upper()}{kind[1:]}" and r.inputs["bucket"] == bucket
    ]
    assert len(found) == 1, f"{len(found)} {kind} for bucket {bucket}"
    return found[0]


def data_key(plan: Plan) -> PlannedResource | None:
    """The team's data key (DataKey), if the stack has one."""
    found = [r for r in plan.of_type("aws:kms/key:Key") if r.name == "data-key-key"]
    return found[0] if found else None


def kms_key_arns(plan: Plan) -> list[str]:
    key = data_key(plan)
    return [key.outputs["arn"]] if key else []


def own_arns(plan: Plan) -> set[str]:
    """Every ARN the stack itself creates (buckets, tables, keys, secrets, roles)."""
    arns = {str(r.outputs["arn"]) for r in plan.resources if r.custom and "arn" in r.outputs}
    for db in plan.of_type("aws:rds/instance:Instance"):
        arns |= {s["secretArn"] for s in db.outputs.get("masterUserSecrets", [])}
        arns |= {s["kmsKeyId"] for s in db.outputs.get("masterUserSecrets", [])}
        arns |= {db_user_arn(db.outputs["arn"], db.outputs["resourceId"], r) for r in DB_ROLES}
    return arns


def scoping_problems(document: dict[str, Any], own: set[str]) -> list[str]:
    """Why ``document`` is not scoped to ``own`` ARNs (empty: it is)."""
    problems = []
    for st in document["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{st['Sid']}: wildcard action {action}")
        for resource in resources:
            if resource == "*":
                if not st.get("Condition"):
                    problems.append(f"{st['Sid']}: '*' resource without a condition")
            elif not any(resource == arn or resource.startswith(f"{arn}/") for arn in own):
                problems.append(f"{st['Sid']}: {resource} is not one of this stack's ARNs")
    return problems


def role_policy(plan: Plan, name: str) -> dict[str, Any]:
    return json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    every = [*pod.get("initContainers", []), *pod["containers"]]
    (found,) = [c for c in every if c["name"] == name]
    return found


def env_of(c: dict[str, Any]) -> dict[str, str]:
    # Values only: an entry from the downward API (valueFrom) has none until the pod runs.
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def cluster_values(stack: str) -> dict[str, Any]:
    """What the stack knows of its cluster: the platform stack's outputs or the explicit values."""
    from components.config.cluster import ExplicitCluster
    from tooling.mocks import platform_outputs

    loaded = load_stack_file(stack_file(stack))
    cluster = loaded.config.cluster
    if isinstance(cluster, ExplicitCluster):
        return {
            "privateSubnetIds": cluster.private_subnet_ids,
            "nodeSecurityGroupId": cluster.node_security_group_id,
        }
    return platform_outputs(cluster.stack_reference, loaded.region)
