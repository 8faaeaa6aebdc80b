"""From a stack file (or the engine's config) to a StackConfig, or to every problem at once."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from components import aws_values
from components.config import rules
from components.config.base import PRINCIPAL_ARN, QUANTITY
from components.config.cluster import (
    CLUSTER_NAME,
    OIDC_ISSUER,
    OIDC_PROVIDER_ARN,
    SECURITY_GROUP_ID,
    STACK_REFERENCE,
    SUBNET_ID,
    VPC_ID,
)
from components.config.network import NAMESPACE_NAME
from components.config.registry import ENGINE_VERSION, INSTANCE_CLASS
from components.config.serving import (
    ACM_CERTIFICATE_ARN,
    COGNITO_USER_POOL_ARN,
    HOST_NAME,
    HTTPS_URL,
    INGRESS_CLASS,
    SAGEMAKER_INSTANCE_TYPE,
)
from components.config.stack import IMAGE_REFERENCE, NAMESPACE, TEAM_PATTERN, StackConfig
from components.config.training import INSTANCE_TYPE
from runtime.spec import DNS_LABEL, DURATION, FEATURE_REF, IDENTIFIER, RELATIVE_PATH, SNAKE_NAME

REGION_KEY = "aws:region"
_STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.ya?ml$")


@dataclass(frozen=True)
class Issue:
    """One problem in one stack file."""

    file: str
    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.problem}"

    @property
    def problem(self) -> str:
        """What is wrong, without the file and the key: `should be ... (got ...)`."""
        got = "" if self.value is _MISSING else f" (got {_show(self.value)})"
        return f"{self.message}{got}"


class ConfigError(Exception):
    """A stack's config has problems; ``issues`` lists every one."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(map(str, self.issues)))


_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()
NO_VALUE: Any = _MISSING
"""The value of an Issue that has no value to show (a key not set, a resource twice)."""


@dataclass(frozen=True)
class LoadedStack:
    config: StackConfig
    region: str
    file: Path


def stack_name_of(file: Path) -> str | None:
    match = _STACK_FILE.match(file.name)
    return match.group("stack") if match else None


def load_stack_file(file: Path) -> LoadedStack:
    """Read and validate a `Pulumi.<stack>.yaml`. Raises ConfigError with every problem."""
    document = read_stack_document(file, NAMESPACE)
    return parse_stack_config(document, file=file, stack=stack_name_of(file))


def read_stack_document(file: Path, namespace: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file, or ConfigError saying why there is none."""
    document = read_yaml(file)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(
            [
                Issue(
                    str(file),
                    "config",
                    _MISSING,
                    f"should be a mapping `config:` holding the stack's {namespace}: keys",
                )
            ]
        )
    return document["config"]


def read_yaml(file: Path) -> Any:
    """A stack file's YAML document. Raises ConfigError when it cannot be read, is not UTF-8
    or not YAML, or gives a key twice (YAML would keep the last; Pulumi refuses it)."""
    shown = str(file)
    try:
        data = file.read_bytes()
        text = data.decode("utf-8-sig")  # Pulumi, too, reads UTF-8 and skips a byte-order mark
    except FileNotFoundError:
        raise ConfigError([Issue(shown, "-", _MISSING, "should exist")]) from None
    except IsADirectoryError:
        raise ConfigError(
            [
                Issue(
                    shown, "-", _MISSING, "should be a stack file Pulumi.<stack>.yaml, not a folder"
                )
            ]
        ) from None
    except OSError as error:
        raise ConfigError(
            [Issue(shown, "-", _MISSING, f"should be readable ({error.strerror})")]
        ) from None
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start : error.start + 1].hex()
        raise ConfigError(
            [Issue(shown, f"line {line}", _MISSING, f"should be UTF-8 text (byte 0x{byte} is not)")]
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        repeated = [
            Issue(
                shown,
                path,
                _MISSING,
                f"should be given once (again on line {again}, first on line {first})",
            )
            for path, first, again in _repeated_keys(node)
        ]
        if repeated:
            raise ConfigError(repeated)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(
            [Issue(shown, where, _MISSING, f"should be valid YAML ({problem})")]
        ) from None
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _repeated_keys(
    node: yaml.Node, path: tuple[str | int, ...] = (), seen: set[int] | None = None
) -> Iterator[tuple[str, int, int]]:
    """(key path, first line, repeating line) of each key given twice in one mapping."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias to a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, Any], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                line = key.start_mark.line + 1
                if (key.tag, key.value) in lines:
                    yield _document_path((*path, key.value)), lines[key.tag, key.value], line
                else:
                    lines[key.tag, key.value] = line
                yield from _repeated_keys(value, (*path, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _repeated_keys(item, (*path, index), seen)


def _document_path(parts: Sequence[str | int]) -> str:
    """`config`, `mlops:serving.endpoints[0].replicas`: keys under `config:` as a user names them."""
    if len(parts) > 1 and parts[0] == "config":
        parts = parts[1:]
    shown = ""
    for part in parts:
        shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else str(part))
    return shown


def parse_stack_config(
    raw: Mapping[str, Any],
    *,
    file: Path,
    stack: str | None,
    decrypted_keys: frozenset[str] = frozenset(),
) -> LoadedStack:
    """Validate the config values of one stack (`mlops:<key>` -> value) as a StackConfig.

    ``decrypted_keys`` are the keys whose secrets the engine has already decrypted (in the
    Pulumi program); in a stack file a secret must appear as `{secure: ...}`.
    """
    shown = str(file)
    values, issues = validate_namespace(
        raw, TEAM_NAMESPACE, file=shown, first=("team", "environment"), decrypted=decrypted_keys
    )
    concerns = rules.Concerns(
        stack=stack, **{k: v for k, v in values.items() if k in rules.Concerns.__dataclass_fields__}
    )
    concerns.image_given = f"{NAMESPACE}:image" in raw
    if f"{NAMESPACE}:keyAdministrators" not in raw:
        concerns.key_administrators = []  # left out: the default, which prod refuses
    issues += [
        Issue(
            shown,
            p.path,
            _MISSING if p.value is rules.NOT_SET else p.value,
            f"should be {p.message}",
        )
        for p in rules.check(concerns)
    ]
    if issues:
        raise ConfigError(issues)
    region = values.pop(REGION_KEY)
    return LoadedStack(canonical(StackConfig.model_validate(values)), region, file)


@dataclass(frozen=True)
class Namespace:
    """A config namespace of a project (`mlops:`, `platform:`) and the model it validates as."""

    name: str
    model: type[BaseModel]

    @functools.cached_property
    def keys(self) -> dict[str, str]:
        """`<key>` of `<namespace>:<key>` -> model field name."""
        return {(f.alias or name): name for name, f in self.model.model_fields.items()}

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        return self.model.model_json_schema(by_alias=True)

    def adapter(self, key: str) -> TypeAdapter[Any]:
        return _adapter(self.model, self.keys[key])

    def listing(self) -> str:
        return ", ".join(f"{self.name}:{key}" for key in self.keys)


TEAM_NAMESPACE = Namespace(NAMESPACE, StackConfig)


def validate_namespace(
    raw: Mapping[str, Any],
    namespace: Namespace,
    *,
    file: str,
    first: Sequence[str],
    decrypted: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], list[Issue]]:
    """Every key of ``namespace`` in ``raw`` validated on its own, with the issues found.

    ``first`` are validated before the rest; their `environment` chooses every other key's
    presets. The region (`aws:region`) is checked too and returned under its own key.
    """
    prefix = namespace.name
    issues: list[Issue] = []
    values: dict[str, Any] = {}
    for key in raw:
        space, _, name = key.partition(":")
        if space == prefix and name not in namespace.keys:
            close = difflib.get_close_matches(name, namespace.keys, n=1)
            hint = f"; did you mean {prefix}:{close[0]}?" if close else ""
            issues.append(
                Issue(file, key, _MISSING, f"should be a known key ({namespace.listing()}){hint}")
            )
    for key, field in namespace.keys.items():
        if namespace.model.model_fields[field].is_required() and f"{prefix}:{key}" not in raw:
            issues.append(Issue(file, f"{prefix}:{key}", _MISSING, "should be set"))

    region = raw.get(REGION_KEY)
    problem = (
        aws_values.region_problem(region)
        if isinstance(region, str)
        else "an AWS region such as eu-west-1"
    )
    if problem is None:
        values[REGION_KEY] = region
    else:
        issues.append(
            Issue(
                file, REGION_KEY, region if region is not None else _MISSING, f"should be {problem}"
            )
        )

    context: dict[str, Any] = {"region": values.get(REGION_KEY)}
    for key in first:
        if f"{prefix}:{key}" in raw:
            value = _validate_key(namespace, key, raw[f"{prefix}:{key}"], context, file, issues)
            if value is not None:
                values[key] = value
    context["environment"] = values.get("environment")
    for key, field in namespace.keys.items():
        full = f"{prefix}:{key}"
        if key in first or full not in raw:
            continue
        value = _validate_key(
            namespace, key, raw[full], {**context, "decrypted": full in decrypted}, file, issues
        )
        if value is not None:
            values[field] = value
    for field, info in namespace.model.model_fields.items():
        if (
            field not in values
            and not info.is_required()
            and f"{prefix}:{info.alias or field}" not in raw
        ):
            values[field] = _validate_key(
                namespace,
                info.alias or field,
                {} if _is_model(info.default) else info.default,
                context,
                file,
                issues,
            )
    return values, issues


def canonical(config: StackConfig) -> StackConfig:
    """The config with lists whose order means nothing sorted by name, so that reordering a
    stack file changes no resource. (Problems were reported against the file's own order.)"""

    def by_name(items: Sequence[Any]) -> list[Any]:
        return sorted(items, key=lambda item: item.name)

    store = config.feature_store
    views = [
        v.model_copy(update={"features": dict(sorted(v.features.items()))})
        for v in store.feature_views
    ]
    return config.model_copy(
        update={
            "feature_store": store.model_copy(
                update={"entities": by_name(store.entities), "feature_views": by_name(views)}
            ),
            "training": config.training.model_copy(
                update={
                    "node_pools": by_name(config.training.node_pools),
                    "pipelines": by_name(config.training.pipelines),
                }
            ),
            "serving": config.serving.model_copy(
                update={
                    "endpoints": by_name(config.serving.endpoints),
                    "external_models": sorted(config.serving.external_models),
                }
            ),
            "monitoring": config.monitoring.model_copy(
                update={"alert_emails": sorted(config.monitoring.alert_emails)}
            ),
        }
    )


def _is_model(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _validate_key(
    namespace: Namespace,
    key: str,
    raw: Any,
    context: dict[str, Any],
    file: str,
    issues: list[Issue],
) -> Any:
    wrapper = {key: raw}
    try:
        return namespace.adapter(key).validate_python(raw, context=context)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            loc = _clean_loc((key, *detail["loc"]), wrapper)
            issues.append(
                Issue(
                    file,
                    _path(loc, namespace.name),
                    _value(detail),
                    _expected(detail, loc, namespace),
                )
            )
        return None


@functools.cache
def _adapter(model: type[BaseModel], field: str) -> TypeAdapter[Any]:
    info = model.model_fields[field]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


def _clean_loc(loc: Sequence[Any], data: Any) -> list[Any]:
    """Drop the union tags pydantic puts in locations, keeping the keys a user wrote."""
    cleaned: list[Any] = []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(data, list) and isinstance(part, int):
            cleaned.append(part)
            data = data[part] if part < len(data) else None
        elif isinstance(data, dict) and part in data:
            cleaned.append(part)
            data = data[part]
        elif isinstance(data, dict) and (last or part == "[key]"):
            cleaned.append(part)
        # anything else is a tag naming a union member, not a key
    return cleaned


def _path(loc: Sequence[Any], namespace: str = NAMESPACE) -> str:
    path = namespace
    for position, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        else:
            path += (":" if position == 0 else ".") + str(part)
    return path


def _value(detail: Mapping[str, Any]) -> Any:
    if detail["type"] == "missing":
        return _MISSING
    if detail["type"] == "plaintext_secret":
        return "<plaintext, not shown>"
    value = detail.get("input")
    if isinstance(value, dict):
        return {k: ("..." if isinstance(v, dict | list) else v) for k, v in list(value.items())[:4]}
    return value


def _expected(detail: Mapping[str, Any], loc: Sequence[Any], namespace: Namespace) -> str:
    kind = detail["type"]
    message = detail["msg"]
    if kind == "missing":
        return "should be set"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], namespace.schema)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"should be a known key ({', '.join(allowed)}){hint}"
    if kind == "plaintext_secret":
        return "should be " + message.replace("<this key>", _path(loc, namespace.name))
    if message.startswith(_NOT_AN_EMAIL):
        return (
            f"should be an email address such as ml-oncall@example.com: {detail['ctx']['reason']}"
        )
    if kind.startswith("value_error") or kind in _CUSTOM_ERRORS:
        return "should be " + message.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and detail.get("ctx", {}).get("pattern") in PATTERN_HELP:
        return "should be " + PATTERN_HELP[detail["ctx"]["pattern"]]
    subject, should, rest = message.partition(" should ")
    return f"should {rest}" if should and " " not in subject else message


PATTERN_HELP = {
    DNS_LABEL: "lower-case letters, digits and '-', starting with a letter, not ending with '-', "
    "e.g. 'fraud-model'",
    IDENTIFIER: "letters, digits and '_', not starting with a digit, e.g. 'card_id'",
    TEAM_PATTERN: "2-20 lower-case letters, digits and '-', starting with a letter",
    SNAKE_NAME: "lower-case letters, digits and '_', starting with a letter, e.g. 'card_txn_stats'",
    FEATURE_REF: "<feature_view>:<feature>, the view's name in lower-case, "
    "e.g. 'card_txn_stats:txn_count_7d'",
    RELATIVE_PATH: "a path relative to the stack's own bucket, e.g. 'card_txn_stats/' "
    "(no s3://<bucket>/ and no leading '/': the stack knows its bucket)",
    DURATION: "a duration such as 90s, 15m, 12h, 30d or 2w",
    QUANTITY: "a Kubernetes quantity: a number and an optional unit m, k, M, G, T, Ki, Mi, Gi "
    "or Ti, e.g. '500m', '2' or '8Gi' (not '8GB')",
    INSTANCE_TYPE: "an EC2 instance type, e.g. 'm6i.xlarge' or 'g5.2xlarge'",
    SAGEMAKER_INSTANCE_TYPE: "a SageMaker instance type, ml.<family>.<size>, e.g. 'ml.m5.large' "
    "or 'ml.g5.xlarge'",
    INSTANCE_CLASS: "an RDS instance class, e.g. 'db.t4g.medium'",
    ENGINE_VERSION: "a PostgreSQL major version from 13, or major.minor, e.g. '16' or '16.4'",
    HOST_NAME: "a lower-case DNS host name, e.g. 'fraud-scorer.ml.acme.internal'",
    INGRESS_CLASS: "an IngressClass name, e.g. 'alb'",
    ACM_CERTIFICATE_ARN: "an ACM certificate ARN, "
    "e.g. 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789'",
    HTTPS_URL: "an https:// URL, e.g. 'https://login.acme.example/oauth2/token'",
    COGNITO_USER_POOL_ARN: "a Cognito user pool ARN, "
    "e.g. 'arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123'",
    PRINCIPAL_ARN: "one IAM role or user ARN, e.g. 'arn:aws:iam::123456789012:role/mlops-deploy'",
    NAMESPACE_NAME: "a Kubernetes namespace name: lower-case letters, digits and '-', "
    "e.g. 'monitoring'",
    STACK_REFERENCE: "<org>/<project>/<stack>, e.g. 'acme/mlops-platform/prod'",
    CLUSTER_NAME: "an EKS cluster name: letters, digits, '-' and '_', e.g. 'mlops-prod'",
    OIDC_PROVIDER_ARN: "an IAM OIDC provider ARN, "
    "e.g. 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123'",
    OIDC_ISSUER: "the cluster's OIDC issuer, "
    "e.g. 'https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123'",
    VPC_ID: "a VPC id, e.g. 'vpc-0a1b2c3d4e5f67890'",
    SUBNET_ID: "a subnet id, e.g. 'subnet-0a1b2c3d4e5f67890'",
    SECURITY_GROUP_ID: "a security group id, e.g. 'sg-0a1b2c3d4e5f67890'",
    IMAGE_REFERENCE: "an image reference without spaces, e.g. 'mlops-stack/runtime:0.1.0'",
}
"""What each pattern of the schema means, with an example: never answer with a bare regex."""


_NOT_AN_EMAIL = "value is not a valid email address"
"""How pydantic's EmailStr (email-validator) words its error; the reason follows."""

_CUSTOM_ERRORS = {"cron", "tag", "cluster", "billing", "registry_type", "endpoint_mode"}


def _allowed_keys(loc: Sequence[Any], schema: dict[str, Any]) -> list[str]:
    node: Any = schema
    for part in loc:
        node = _deref(node, schema)
        if isinstance(part, int):
            node = node.get("items", {})
            continue
        candidates = [node, *node.get("anyOf", []), *node.get("oneOf", [])]
        for candidate in candidates:
            candidate = _deref(candidate, schema)
            if part in candidate.get("properties", {}):
                node = candidate["properties"][part]
                break
        else:
            return []
    node = _deref(node, schema)
    keys: set[str] = set(node.get("properties", {}))
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        keys |= set(_deref(option, schema).get("properties", {}))
    return sorted(keys)


def _deref(node: Any, schema: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if (
        isinstance(node, dict)
        and len(node.get("anyOf", [])) == 2
        and {"type": "null"} in node["anyOf"]
    ):
        node = next(option for option in node["anyOf"] if option != {"type": "null"})
        return _deref(node, schema)
    return node


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
