"""The rules of `policy.rules` as CrossGuard policies: thin adapters, no checks of their own.

`policy/__main__.py` serves them as a policy pack; tests build them and call their validate
callbacks to prove each wraps the same pure function as `check_plan`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policy.rules import (
    RESOURCE_RULES,
    STACK_RULES,
    UNKNOWN,
    Context,
    Resource,
    ResourceRule,
    StackRule,
)

PACK_NAME = "mlops-security"
SECRET_SHOWN = "[secret]"
"""How a secret reads to a rule; the same text a mock-engine plan shows."""


def plain(value: Any) -> Any:
    """CrossGuard's props (proxies raising on unknown values) as plain dicts and lists.

    An unknown value becomes `UNKNOWN`, a secret `[secret]`: what a mock-engine plan shows.
    """
    if isinstance(value, Secret):
        return SECRET_SHOWN
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_item(value, i) for i in range(len(value))]
    return value


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def stack_name() -> str:
    """The stack being previewed (the pack's runtime is configured from PULUMI_STACK)."""
    try:
        return pulumi.get_stack()
    except Exception:  # not configured: outside an engine run
        return os.environ.get("PULUMI_STACK", "")


def resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        ctx = Context(stack=stack_name(), protect=bool(args.opts.protect))
        for message in rule.check(args.resource_type, plain(args.props), ctx):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(
                type=r.resource_type,
                urn=r.urn,
                props=plain(r.props),
                protect=bool(r.opts.protect),
                dependencies=tuple(d.urn for d in r.dependencies),
                property_dependencies={
                    key: tuple(d.urn for d in deps) for key, deps in r.property_dependencies.items()
                },
            )
            for r in args.resources
        ]
        for urn, message in rule.check(resources, stack_name()):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY
        if rule.advisory
        else EnforcementLevel.MANDATORY,
    )


def policies() -> list[Policy]:
    """One CrossGuard policy per rule, in the order of `policy.rules`."""
    return [resource_policy(r) for r in RESOURCE_RULES] + [stack_policy(r) for r in STACK_RULES]
