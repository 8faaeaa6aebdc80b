"""IAM: identity policies name their actions and resources; role trust policies are pinned."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.rules.properties import as_list, dig, policy_document, statements
from policy.rules.registry import Context, resource_rule

IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
_SERVICE_WILDCARD = re.compile(r"^(\*|[A-Za-z0-9-]+:\*)$")
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


def identity_documents(type_: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, document) of every identity policy a resource carries."""
    if type_ in IAM_POLICY_TYPES:
        return [("policy", props.get("policy"))]
    if type_ == IAM_ROLE:
        return [
            (f"inlinePolicies[{i}]", dig(p, "policy"))
            for i, p in enumerate(as_list(props.get("inlinePolicies")))
        ]
    return []


def _allow_statements(
    type_: str, props: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, raw in identity_documents(type_, props):
        for i, statement in enumerate(statements(policy_document(raw))):
            if statement.get("Effect") == "Allow":
                label = statement.get("Sid") or f"Statement[{i}]"
                yield f"{where} {label}", statement


@resource_rule(
    "iam-no-wildcard-actions",
    "IAM policies allow named actions, never `*` or `service:*`.",
    IAM_ROLE,
    *IAM_POLICY_TYPES,
)
def iam_no_wildcard_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for where, statement in _allow_statements(type_, props):
        wild = [
            a
            for a in as_list(statement.get("Action"))
            if isinstance(a, str) and _SERVICE_WILDCARD.match(a)
        ]
        if wild:
            found.append(
                f"{where} allows {', '.join(map(repr, wild))}: list the actions the workload calls"
            )
        if "NotAction" in statement:
            found.append(f"{where} allows NotAction (every other action): list allowed actions")
    return found


@resource_rule(
    "iam-no-wildcard-resources",
    "IAM policies name their resources; `*` only under a Condition.",
    IAM_ROLE,
    *IAM_POLICY_TYPES,
)
def iam_no_wildcard_resources(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for where, statement in _allow_statements(type_, props):
        if statement.get("Condition"):
            continue
        if "*" in as_list(statement.get("Resource")) or "NotResource" in statement:
            found.append(
                f"{where} allows on every resource ('*') without a Condition: name the ARNs, "
                "or scope it with a Condition (e.g. cloudwatch:namespace)"
            )
    return found


def _trust_statements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        s
        for s in statements(policy_document(props.get("assumeRolePolicy")))
        if s.get("Effect") == "Allow"
    ]


@resource_rule(
    "iam-irsa-trust-pins-subject",
    "Roles assumed through the cluster's OIDC provider (IRSA) pin the service account (`:sub`).",
    IAM_ROLE,
)
def iam_irsa_trust_pins_subject(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, statement in enumerate(_trust_statements(props)):
        if WEB_IDENTITY not in as_list(statement.get("Action")):
            continue
        pinned = False
        for operator in ("StringEquals", "StringLike"):
            block = dig(statement, f"Condition.{operator}")
            if not isinstance(block, Mapping):
                continue
            for key, value in block.items():
                values = [v for v in as_list(value) if isinstance(v, str)]
                if (
                    str(key).endswith(":sub")
                    and values
                    and not any("*" in v or "?" in v for v in values)
                ):
                    pinned = True
        if not pinned:
            found.append(
                f"trust statement {statement.get('Sid') or i} lets any identity of the OIDC "
                "provider assume the role: add Condition StringEquals "
                "{'<issuer>:sub': 'system:serviceaccount:<namespace>:<service account>'}"
            )
    return found


@resource_rule(
    "iam-trust-no-public-principal",
    "Role trust policies never trust every principal (`*`).",
    IAM_ROLE,
)
def iam_trust_no_public_principal(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, statement in enumerate(_trust_statements(props)):
        principal = statement.get("Principal")
        if principal == "*" or "*" in as_list(dig(principal, "AWS")):
            found.append(
                f"trust statement {statement.get('Sid') or i} trusts every principal ('*'): "
                "name the account, service or OIDC provider"
            )
    return found
