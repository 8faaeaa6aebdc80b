"""The rule types and the registries every rule module adds to, and the runners over them.

A rule module registers its checks with `@resource_rule` / `@stack_rule` when it is imported;
`policy.rules` imports the modules in report order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Context:
    """What a resource rule may know beyond the resource's properties."""

    stack: str = ""
    """Stack name (`<team>-<env>`): the environment when the resource carries no tag."""
    protect: bool = False
    """The resource's `protect` option (CrossGuard: `args.opts.protect`; offline: the plan's)."""


@dataclass(frozen=True)
class Resource:
    """One resource as a stack rule sees it (CrossGuard's PolicyResource, or a planned one)."""

    type: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> URNs it depends on (CrossGuard knows them; a plan does not)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    message: str
    advisory: bool = False
    """A warning: reported, never fails a stack."""


ResourceCheck = Callable[[str, Mapping[str, Any], Context], list[str]]
StackCheck = Callable[[Sequence[Resource], str], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    types: frozenset[str]
    """Resource types it applies to; empty: the check itself decides (e.g. any `aws:` type)."""
    check: ResourceCheck

    def applies_to(self, type_: str) -> bool:
        return not self.types or type_ in self.types


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck
    advisory: bool = False
    """Warn instead of fail (CrossGuard's advisory enforcement)."""


RESOURCE_RULES: list[ResourceRule] = []
STACK_RULES: list[StackRule] = []


def resource_rule(
    name: str, description: str, *types: str
) -> Callable[[ResourceCheck], ResourceCheck]:
    def register(check: ResourceCheck) -> ResourceCheck:
        RESOURCE_RULES.append(ResourceRule(name, description, frozenset(types), check))
        return check

    return register


def stack_rule(
    name: str, description: str, *, advisory: bool = False
) -> Callable[[StackCheck], StackCheck]:
    def register(check: StackCheck) -> StackCheck:
        STACK_RULES.append(StackRule(name, description, check, advisory))
        return check

    return register


class _Planned(Protocol):
    urn: str
    type: str
    custom: bool
    read: bool
    protect: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]


class _Plan(Protocol):
    stack: str

    @property
    def resources(self) -> Sequence[_Planned]: ...


def check_resource(
    type_: str, props: Mapping[str, Any], ctx: Context | None = None, urn: str = ""
) -> list[Violation]:
    """Every resource rule over one resource's inputs."""
    ctx = ctx or Context()
    return [
        Violation(rule.name, urn, message)
        for rule in RESOURCE_RULES
        if rule.applies_to(type_)
        for message in rule.check(type_, props, ctx)
    ]


def check_stack(resources: Sequence[Resource], stack: str) -> list[Violation]:
    """Every stack rule over the stack's resources (their outputs)."""
    return [
        Violation(rule.name, urn, message, rule.advisory)
        for rule in STACK_RULES
        for urn, message in rule.check(resources, stack)
    ]


def check_plan(plan: _Plan) -> list[Violation]:
    """The whole pack over a mock-engine plan, as CrossGuard would run it in `pulumi preview`."""
    created = [r for r in plan.resources if r.custom and not r.read]
    violations = [
        violation
        for r in created
        for violation in check_resource(
            r.type, r.inputs, Context(stack=plan.stack, protect=r.protect), r.urn
        )
    ]
    # A stack policy sees components too (the cost model carries the budget).
    resources = [
        Resource(r.type, r.urn, r.outputs, r.protect, tuple(r.dependencies))
        for r in plan.resources
        if not r.read
    ]
    return violations + check_stack(resources, plan.stack)
