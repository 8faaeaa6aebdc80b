"""Fixtures shared by every test folder: example stacks and their plans under the mock engine."""

from __future__ import annotations

import functools
from pathlib import Path

import prometheus_client.values  # noqa: F401  (see below)
import pytest

from tooling.plan import Plan, plan_stack
from tooling.project import Workspace

# Importing Feast sets PROMETHEUS_MULTIPROC_DIR for the whole process (feast.metrics), and a
# prometheus_client imported after that keeps every counter in shared files: the serving apps the
# tests build one after another would then count each other's requests. Imported first, above,
# prometheus_client keeps values in memory, as in a serving process.

REPOSITORY = Path(__file__).resolve().parent.parent
"""This checkout: the example stacks and the programs the tests plan (whatever the working folder)."""
WORKSPACE = Workspace(REPOSITORY)
STACKS = REPOSITORY / "stacks"
PLATFORM_STACKS = REPOSITORY / "platform" / "stacks"
PROGRAM = REPOSITORY / "__main__.py"

EXAMPLE_STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS.glob("Pulumi.*.yaml")
)


@functools.cache
def planned(stack: str) -> Plan:
    """The plan of an example stack, computed once per test session (plans are deterministic)."""
    return plan_stack(stack, workspace=WORKSPACE)


@pytest.fixture(params=EXAMPLE_STACKS)
def example_stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def example_plan(example_stack: str) -> Plan:
    return planned(example_stack)


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    """An empty `stacks/` folder for tests that write stack files."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    return folder
