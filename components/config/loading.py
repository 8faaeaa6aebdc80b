"""From a stack file (or the engine's config) to a StackConfig, or to every problem at once."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from components.config import rules
from components.config.stack import CONFIG_KEYS, NAMESPACE, REQUIRED_KEYS, TEAM_PATTERN, StackConfig
from runtime.spec import DNS_LABEL, IDENTIFIER

REGION_KEY = "aws:region"
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.ya?ml$")


@dataclass(frozen=True)
class Issue:
    """One problem in one stack file."""

    file: str
    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        got = "" if self.value is _MISSING else f" (got {_show(self.value)})"
        return f"{self.file}: {self.path}: {self.message}{got}"


class ConfigError(Exception):
    """A stack's config has problems; ``issues`` lists every one."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(map(str, self.issues)))


_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


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
    shown = str(file)
    try:
        document = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise ConfigError([Issue(shown, "-", _MISSING, "should exist")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(
            [Issue(shown, where, _MISSING, f"should be valid YAML ({problem})")]
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(
            [
                Issue(
                    shown,
                    "config",
                    _MISSING,
                    "should be a mapping `config:` holding the stack's mlops: keys",
                )
            ]
        )
    return parse_stack_config(document["config"], file=file, stack=stack_name_of(file))


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
    issues: list[Issue] = []
    values: dict[str, Any] = {}

    for key in raw:
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE and name not in CONFIG_KEYS:
            close = difflib.get_close_matches(name, CONFIG_KEYS, n=1)
            hint = f"; did you mean mlops:{close[0]}?" if close else ""
            issues.append(Issue(shown, key, _MISSING, f"should be a known key ({_keys()}){hint}"))
    for key in REQUIRED_KEYS:
        if f"{NAMESPACE}:{key}" not in raw:
            issues.append(Issue(shown, f"{NAMESPACE}:{key}", _MISSING, "should be set"))

    region = raw.get(REGION_KEY)
    if not isinstance(region, str) or not _REGION.match(region):
        issues.append(
            Issue(
                shown,
                REGION_KEY,
                region if region is not None else _MISSING,
                "should be an AWS region such as eu-west-1",
            )
        )

    # team and environment first: the environment chooses the presets of every other key.
    context: dict[str, Any] = {}
    first = ("team", "environment")
    for key in first:
        if f"{NAMESPACE}:{key}" in raw:
            value = _validate_key(key, raw[f"{NAMESPACE}:{key}"], context, shown, issues)
            if value is not None:
                values[key] = value
    context["environment"] = values.get("environment")
    for key, field in CONFIG_KEYS.items():
        full = f"{NAMESPACE}:{key}"
        if key in first or full not in raw:
            continue
        value = _validate_key(
            key, raw[full], {**context, "decrypted": full in decrypted_keys}, shown, issues
        )
        if value is not None:
            values[field] = value
    for field, info in StackConfig.model_fields.items():
        if (
            field not in values
            and not info.is_required()
            and f"{NAMESPACE}:{info.alias or field}" not in raw
        ):
            values[field] = _validate_key(
                info.alias or field,
                {} if _is_model(info.default) else info.default,
                context,
                shown,
                issues,
            )

    concerns = rules.Concerns(
        stack=stack, **{k: v for k, v in values.items() if k in rules.Concerns.__dataclass_fields__}
    )
    issues += [
        Issue(shown, p.path, p.value, f"should be {p.message}") for p in rules.check(concerns)
    ]
    if issues:
        raise ConfigError(issues)
    return LoadedStack(canonical(StackConfig.model_validate(values)), region, file)  # type: ignore[arg-type]


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
    key: str, raw: Any, context: dict[str, Any], file: str, issues: list[Issue]
) -> Any:
    wrapper = {key: raw}
    try:
        return _adapter(key).validate_python(raw, context=context)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            loc = _clean_loc((key, *detail["loc"]), wrapper)
            issues.append(Issue(file, _path(loc), _value(detail), _expected(detail, loc)))
        return None


@functools.cache
def _adapter(key: str) -> TypeAdapter[Any]:
    info = StackConfig.model_fields[CONFIG_KEYS[key]]
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


def _path(loc: Sequence[Any]) -> str:
    path = NAMESPACE
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


def _expected(detail: Mapping[str, Any], loc: Sequence[Any]) -> str:
    kind = detail["type"]
    message = detail["msg"]
    if kind == "missing":
        return "should be set"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"should be a known key ({', '.join(allowed)}){hint}"
    if kind == "plaintext_secret":
        return "should be " + message.replace("<this key>", _path(loc))
    if kind.startswith("value_error") or kind in _CUSTOM_ERRORS:
        return "should be " + message.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and detail.get("ctx", {}).get("pattern") in PATTERN_HELP:
        return "should be " + PATTERN_HELP[detail["ctx"]["pattern"]]
    subject, should, rest = message.partition(" should ")
    return f"should {rest}" if should and " " not in subject else message


PATTERN_HELP = {
    DNS_LABEL: "lower-case letters, digits and '-', starting with a letter, not ending with '-'",
    IDENTIFIER: "letters, digits and '_', not starting with a digit",
    TEAM_PATTERN: "2-20 lower-case letters, digits and '-', starting with a letter",
}


_CUSTOM_ERRORS = {"cron", "tag", "cluster", "billing", "registry_type", "endpoint_mode"}


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    schema = _schema()
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


_SCHEMA: dict[str, Any] = {}


def _schema() -> dict[str, Any]:
    if not _SCHEMA:
        _SCHEMA.update(StackConfig.model_json_schema(by_alias=True))
    return _SCHEMA


def _keys() -> str:
    return ", ".join(f"mlops:{key}" for key in CONFIG_KEYS)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
