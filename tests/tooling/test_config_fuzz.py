"""Property: whatever a user does to a valid config, the outcome is a config or a clean error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, StackConfig, parse_stack_config
from tests.tooling.test_validate import base_config

FILE = Path("stacks/Pulumi.fraud-prod.yaml")
BASES = {
    stack: base_config(stack) for stack in ("fraud-prod", "recommendations-prod", "forecasting-dev")
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "30d", "* * * * *", "prod", "a" * 300]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_configs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    stack = draw(st.sampled_from(sorted(BASES)))
    config = copy.deepcopy(BASES[stack])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(config)
        path = draw(st.sampled_from(paths))
        parent: Any = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            parent.pop(path[-1])
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return stack, config


# derandomize: the same examples every run, so a failure is reproducible (and not a flake).
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated_configs())
def test_a_mutated_config_is_valid_or_a_clean_error(case: tuple[str, dict[str, Any]]) -> None:
    stack, config = case
    try:
        loaded = parse_stack_config(config, file=FILE, stack=stack)
    except ConfigError as error:
        assert error.issues
        for issue in error.issues:
            assert issue.file == str(FILE)
            assert issue.path.startswith(("mlops:", "aws:region")), issue
            assert issue.message.startswith("should "), issue
    else:
        assert isinstance(loaded.config, StackConfig)
