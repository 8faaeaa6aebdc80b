"""The JSON Schema of a stack file, for editors (yaml-language-server, VS Code, IntelliJ)."""

from __future__ import annotations

from typing import Any

from components.config import CONFIG_KEYS, NAMESPACE, StackConfig


def stack_file_schema() -> dict[str, Any]:
    """A `Pulumi.<stack>.yaml` with its `mlops:` keys typed; other namespaces are left open."""
    model = StackConfig.model_json_schema(by_alias=True, mode="validation")
    definitions = model.pop("$defs", {})
    required = [f"{NAMESPACE}:{key}" for key in model.get("required", [])] + ["aws:region"]
    properties = {f"{NAMESPACE}:{key}": model["properties"][key] for key in CONFIG_KEYS}
    properties["aws:region"] = {"type": "string", "pattern": r"^[a-z]{2}(-gov)?-[a-z]+-\d$"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlops-stack stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": required,
                # Other namespaces (aws:, kubernetes:) are free; an unknown mlops: key is a typo.
                "propertyNames": {
                    "anyOf": [{"not": {"pattern": rf"^{NAMESPACE}:"}}, {"enum": list(properties)}]
                },
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "required": ["config"],
        "$defs": definitions,
    }
