"""KMS keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import is_off
from policy.rules.registry import Context, resource_rule


@resource_rule("kms-key-rotation", "Symmetric KMS keys rotate yearly.", "aws:kms/key:Key")
def kms_key_rotation(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and is_off(props.get("enableKeyRotation")):
        return ["set enableKeyRotation: true"]
    return []
