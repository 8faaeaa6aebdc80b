"""The Pulumi program: read the stack config once, validate it, build the team's platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as engine_config

from components.cluster import ClusterReference
from components.config import ConfigError, LoadedStack, parse_stack_config
from components.namespace import TeamNamespace
from components.team import Team


def load() -> LoadedStack:
    """The stack's config as the engine hands it over, validated; every problem at once."""
    values: dict[str, Any] = {**engine_config.get_config_env(), **engine_config.CONFIG.get()}
    raw = {key: _decode(value) for key, value in values.items()}
    secret = frozenset(key for key in raw if engine_config.is_config_secret(key))
    stack = pulumi.get_stack()
    file = Path("stacks") / f"Pulumi.{stack}.yaml"
    try:
        return parse_stack_config(raw, file=file, stack=stack, decrypted_keys=secret)
    except ConfigError as error:
        # A user's mistake: a clean list of problems, no traceback, nothing registered.
        raise pulumi.RunError(
            f"{len(error.issues)} problem(s) in the stack config:\n{error}"
        ) from None


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


loaded = load()
config = loaded.config
team = Team.of(config, loaded.region)

cluster = ClusterReference("cluster", config.cluster).info
namespace = TeamNamespace("team", team=team, cluster=cluster, quota=config.training.quota)

# --- data plane: feature store and model registry (components/featurestore.py, registry.py) ---

# --- compute: training and serving (components/training.py, components/serving.py) ---

# --- monitoring (components/monitoring.py) ---

pulumi.export("team", team.name)
pulumi.export("environment", str(team.environment))
pulumi.export("namespace", namespace.name)
