"""Reading resource properties: the helpers every rule module shares."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

UNKNOWN = "[unknown]"
"""A value computed by the provider and not known during preview."""

PROD = "prod"
ENVIRONMENT_LABEL = "mlops.dev/environment"


def known(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value == UNKNOWN)


def dig(props: Any, path: str) -> Any:
    """`props["a"]["b"]` for path `a.b`; None where a step is missing or not a mapping."""
    value = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_off(value: Any) -> bool:
    """Missing, or known and not true (a flag that must be on)."""
    return value is None or (known(value) and not is_true(value))


def stack_environment(stack: str) -> str:
    """`fraud-prod` -> `prod`; a platform stack `prod` -> `prod`."""
    return stack.rsplit("-", 1)[-1]


def resource_environment(props: Mapping[str, Any]) -> str:
    """The `environment` AWS tag, or the `mlops.dev/environment` Kubernetes label."""
    tag = dig(props, "tags.environment")
    if isinstance(tag, str) and known(tag):
        return tag
    label = dig(props, "metadata.labels")
    if isinstance(label, Mapping) and isinstance(label.get(ENVIRONMENT_LABEL), str):
        return str(label[ENVIRONMENT_LABEL])
    return ""


def is_prod(props: Mapping[str, Any], stack: str) -> bool:
    """Prod if the resource says so OR the stack name does: a tag cannot opt a prod stack out."""
    return PROD in (resource_environment(props), stack_environment(stack))


def policy_document(value: Any) -> Mapping[str, Any] | None:
    """An IAM/resource policy document from a JSON string or a mapping; None if unknown/unparsable."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and known(value):
        try:
            document = json.loads(value)
        except ValueError:
            return None
        return document if isinstance(document, Mapping) else None
    return None


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if document is None:
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]
