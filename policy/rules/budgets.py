"""Budgets: the estimate of policy/cost against `mlops:budget` (policy/budget.py)."""

from __future__ import annotations

from collections.abc import Sequence

from policy import budget
from policy.rules.registry import Resource, stack_rule


@stack_rule(
    "budget-exceeded",
    "A stack's estimated monthly cost, at the top of its range, stays within its budget.",
)
def budget_exceeded(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    return budget.findings(resources, budget.Verdict.over)


@stack_rule(
    "budget-warning",
    "Warns when a stack's estimated monthly cost can pass its budget's warning share.",
    advisory=True,
)
def budget_warning(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    return budget.findings(resources, budget.Verdict.warning)
