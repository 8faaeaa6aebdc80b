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


SECURITY_GROUP_POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "vpc.amazonaws.com/v1beta1"},
        "kind": {"const": "SecurityGroupPolicy"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["securityGroups"],
            "properties": {
                "podSelector": {"$ref": "#/$defs/selector"},
                "serviceAccountSelector": {"$ref": "#/$defs/selector"},
                "securityGroups": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["groupIds"],
                    "properties": {
                        "groupIds": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 5,
                            "items": {"type": "string", "pattern": "^sg-[0-9a-f]+$"},
                        }
                    },
                },
            },
        },
    },
    "$defs": {
        "selector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "matchExpressions": {"type": "array"},
            },
        }
    },
}
"""The SecurityGroupPolicy CRD of the VPC resource controller (aws/amazon-vpc-resource-
controller-k8s, `config/crd/bases/vpcresources.k8s.aws_securitygrouppolicies.yaml`): no
Kubernetes OpenAPI document has it, so its schema is kept here."""
CUSTOM_SCHEMAS = {
    ("vpc.amazonaws.com/v1beta1", "SecurityGroupPolicy"): SECURITY_GROUP_POLICY_SCHEMA
}


def schema_errors(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """How ``obj`` violates the Kubernetes OpenAPI schema (strict: unknown fields are errors)."""
    custom = CUSTOM_SCHEMAS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if custom is not None:
        import jsonschema

        return [
            f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {error.message} at "
            + (".".join(map(str, error.path)) or "(top)")
            for error in jsonschema.Draft202012Validator(custom).iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(map(str, error.path)) or "(top)"
        return [
            f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {error.message} at {where}"
        ]
    return []
