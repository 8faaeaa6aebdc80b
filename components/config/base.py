"""Building blocks of the stack config: the base model, environment presets, shared value types."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from croniter import croniter
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runtime.spec import SpecModel


class Environment(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


Presets = dict[Environment, dict[str, Any]]
"""Environment -> defaults (YAML keys) for a model's fields."""


class ConfigModel(SpecModel):
    """A concern of the stack config. Fields a preset names default per environment.

    ``__presets__`` maps an environment to defaults (YAML keys) applied under what the user
    wrote: dev is cheap, prod is safe. The environment comes from the validation context.
    """

    __presets__: ClassVar[Presets] = {}

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        environment = (info.context or {}).get("environment")
        preset = cls.__presets__.get(environment, {}) if environment else {}
        data = {**preset, **data}
        # An omitted sub-model is validated too, so that its own preset applies.
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data and name not in data and isinstance(field.default, SpecModel):
                data[key] = field.default.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return data


CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron(value: str) -> str:
    # Kubernetes parses 5 fields (or a descriptor); croniter also takes a 6th field of seconds.
    text = value.strip() if isinstance(value, str) else ""
    fields = text in CRON_DESCRIPTORS or len(text.split()) == 5
    if not fields or not croniter.is_valid(text):
        raise PydanticCustomError(
            "cron", "a cron schedule of 5 fields (minute hour day month weekday) or @hourly/@daily"
        )
    return text


Cron = Annotated[
    str, AfterValidator(_cron), WithJsonSchema({"type": "string", "examples": ["0 3 * * 0"]})
]

QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
Quantity = Annotated[str, Field(pattern=QUANTITY, examples=["500m", "2", "4Gi"])]
"""A Kubernetes resource quantity: `500m`, `2`, `512Mi`, `4Gi`."""

SECRET_PLACEHOLDER = "[secret]"


def _secret(value: Any, info: ValidationInfo) -> SecretStr:
    # {secure: <ciphertext>} is how Pulumi stores an encrypted value in the stack file.
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return SecretStr(SECRET_PLACEHOLDER)
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str) and (info.context or {}).get("decrypted"):
        return SecretStr(value)
    raise PydanticCustomError(
        "plaintext_secret",
        "a secret, stored encrypted: `pulumi config set --secret --path '{key}' <value>`",
        {"key": "<this key>"},
    )


Secret = Annotated[
    SecretStr,
    BeforeValidator(_secret),
    PlainSerializer(lambda v: {"secure": "..."}, return_type=dict),
    WithJsonSchema(
        {
            "type": "object",
            "properties": {"secure": {"type": "string"}},
            "required": ["secure"],
            "description": "An encrypted value: set it with `pulumi config set --secret`.",
        }
    ),
]

_AWS_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
RESERVED_TAGS = ("team", "environment", "managed-by")
"""Tags the stack sets on every resource itself (components.team.Team.tags)."""


def _tag_key(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise PydanticCustomError("tag", "a tag key not starting with 'aws:' (AWS reserves it)")
    if key in RESERVED_TAGS:
        raise PydanticCustomError(
            "tag",
            "a tag key of your own: team, environment and managed-by are reserved "
            "(the stack sets them on every resource)",
        )
    if not _AWS_TAG_KEY.match(key):
        raise PydanticCustomError("tag", "a tag key of 1-128 letters, digits, spaces and _.:/=+-@")
    return key


Tags = Annotated[
    dict[Annotated[str, AfterValidator(_tag_key)], Annotated[str, Field(max_length=256)]],
    Field(max_length=40),
]


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as error:
        raise ValueError(f"an IPv4 CIDR block such as 10.0.0.0/16 ({error})") from None
    return str(network)


Cidr = Annotated[str, AfterValidator(_cidr), Field(examples=["10.0.0.0/16"])]
"""An IPv4 network in CIDR notation, host bits zero."""

PRINCIPAL_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$"
"""An IAM role or user ARN: one principal, never a wildcard."""
PrincipalArn = Annotated[str, Field(pattern=PRINCIPAL_ARN)]
