"""The Kubernetes objects of a plan as plain manifests, and their validation against the API schema."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from tooling.mocks import SECRET_SHOWN
from tooling.plan import Plan, PlannedResource

KUBERNETES_VERSION = "1.33.0"
"""The EKS version whose OpenAPI schema every planned object must satisfy."""


def is_kubernetes_object(resource: PlannedResource) -> bool:
    return resource.custom and resource.type.startswith("kubernetes:") and not resource.read


def manifests(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object of the plan as `kubectl apply` would send it.

    pulumi-kubernetes puts `apiVersion` and `kind` in the inputs, so the inputs are the manifest.
    A field holding a secret (a Secret's data) is masked in the plan and left out here.
    """
    return [
        {key: value for key, value in r.inputs.items() if value != SECRET_SHOWN}
        for r in plan.resources
        if is_kubernetes_object(r)
    ]


def schema_errors(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """How ``obj`` violates the Kubernetes OpenAPI schema (strict: unknown fields are errors)."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(map(str, error.path)) or "(top)"
        return [
            f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {error.message} at {where}"
        ]
    return []
