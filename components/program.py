"""What both Pulumi programs (the team project's `__main__.py` and `platform/__main__.py`) do
first: read the stack's config once, as the engine hands it over, and turn a user's mistake into
a clean list of problems — no traceback, nothing registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import config as engine_config

from components.config import ConfigError

Loaded = TypeVar("Loaded")


@dataclass(frozen=True)
class EngineConfig:
    """Every config value of the stack, JSON-decoded, and which of them were secrets."""

    values: dict[str, Any]
    secret_keys: frozenset[str]
    stack: str
    file: Path
    """The stack file, relative to the project (`stackConfigDir: stacks`), for messages."""


def load_config(parse: Callable[[EngineConfig], Loaded]) -> Loaded:
    """The stack's config, validated by `parse`; a ConfigError stops the program cleanly."""
    try:
        return parse(_engine_config())
    except ConfigError as error:
        raise pulumi.RunError(
            f"{len(error.issues)} problem(s) in the stack config:\n{error}"
        ) from None


def _engine_config() -> EngineConfig:
    values: dict[str, Any] = {**engine_config.get_config_env(), **engine_config.CONFIG.get()}
    stack = pulumi.get_stack()
    return EngineConfig(
        values={key: _decode(value) for key, value in values.items()},
        secret_keys=frozenset(key for key in values if engine_config.is_config_secret(key)),
        stack=stack,
        file=Path("stacks") / f"Pulumi.{stack}.yaml",
    )


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
