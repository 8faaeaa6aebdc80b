"""The typed stack config: the `mlops:` namespace of a `stacks/Pulumi.<team>-<env>.yaml`."""

from components.config.base import Environment
from components.config.loading import (
    NO_VALUE,
    ConfigError,
    Issue,
    LoadedStack,
    load_stack_file,
    parse_stack_config,
    read_stack_document,
    read_yaml,
    stack_name_of,
)
from components.config.stack import CONFIG_KEYS, NAMESPACE, StackConfig

__all__ = [
    "CONFIG_KEYS",
    "NAMESPACE",
    "NO_VALUE",
    "ConfigError",
    "Environment",
    "Issue",
    "LoadedStack",
    "StackConfig",
    "load_stack_file",
    "parse_stack_config",
    "read_stack_document",
    "read_yaml",
    "stack_name_of",
]
