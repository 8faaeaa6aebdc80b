"""KMS keys: rotation, and key policies that name who may use and manage a key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.properties import as_list, is_off, is_prod, known, policy_document, statements
from policy.rules.registry import Context, Resource, resource_rule, stack_rule


@resource_rule("kms-key-rotation", "Symmetric KMS keys rotate yearly.", "aws:kms/key:Key")
def kms_key_rotation(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and is_off(props.get("enableKeyRotation")):
        return ["set enableKeyRotation: true"]
    return []


KMS_KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
TEAM_NAMESPACE = "mlops:team:TeamNamespace"
"""The component every team stack has: the rule is about teams' keys."""
USE_ACTIONS = ("kms:encrypt", "kms:decrypt", "kms:reencrypt", "kms:generatedatakey", "kms:*", "*")
"""Actions (lower-case prefixes) that use a key rather than manage it."""
ADMIN_ACTION = "kms:putkeypolicy"


def _aws_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for p in as_list(principal.get("AWS"))]
    return []


def _grants(statement: Mapping[str, Any], wanted: str) -> bool:
    actions = [str(a).lower() for a in as_list(statement.get("Action"))]
    if wanted == "use":
        return any(a.startswith(USE_ACTIONS) or a in USE_ACTIONS for a in actions)
    return any(
        a in ("*", "kms:*", ADMIN_ACTION) or (a.endswith("*") and ADMIN_ACTION.startswith(a[:-1]))
        for a in actions
    )


def _account_wide(principal: str) -> bool:
    return principal == "*" or principal.endswith(":root") or principal.isdigit()


def key_policy_problems(
    document: Mapping[str, Any] | None, prod: bool, setting: str = "mlops:keyAdministrators"
) -> list[str]:
    """Why a key policy does not name who uses and who administers the key (empty: it does).
    ``setting``: the config key that names the administrators, for the message."""
    if document is None:
        return ["its key policy is not readable"]
    found = []
    administrators = set()
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principals = _aws_principals(statement)
        wide = [p for p in principals if _account_wide(p)]
        if wide and _grants(statement, "use") and not statement.get("Condition"):
            found.append(
                f"statement {statement.get('Sid') or '?'} lets {', '.join(wide)} use the key: "
                "every principal its IAM policies allow could; name the roles that use it"
            )
        if _grants(statement, "admin"):
            administrators |= {p for p in principals if not _account_wide(p)}
    if prod and not administrators:
        found.append(
            f"no named key administrator (a role or user with kms:PutKeyPolicy): set {setting}"
        )
    return found


def policy_of(key: Resource, resources: Sequence[Resource]) -> tuple[bool, Any]:
    """(found, document) of the key's policy: a KeyPolicy attached to it wins over the key's own."""
    ids = {key.props.get(k) for k in ("keyId", "id", "arn")}
    ids = {i for i in ids if isinstance(i, str) and known(i)}
    for r in resources:
        if r.type != KEY_POLICY:
            continue
        target = r.props.get("keyId")
        if (isinstance(target, str) and known(target) and target in ids) or (
            not known(target) and key.urn in r.dependencies
        ):
            return True, r.props.get("policy")
    own = key.props.get("policy")
    return own is not None, own


@stack_rule(
    "kms-key-policy-names-principals",
    "A team stack's KMS keys have a key policy that names who uses them and, in prod, who "
    "administers them; no account-wide use (the default policy's root delegation).",
)
def kms_key_policy_names_principals(
    resources: Sequence[Resource], stack: str
) -> list[tuple[str, str]]:
    if not any(r.type == TEAM_NAMESPACE for r in resources):
        return []  # a platform stack: its cluster's key has a rule of its own (rules/platform.py)
    return key_policy_findings(resources, stack, naming="the administrators and the team's roles")


def key_policy_findings(
    resources: Sequence[Resource],
    stack: str,
    *,
    naming: str,
    setting: str = "mlops:keyAdministrators",
) -> list[tuple[str, str]]:
    """(key URN, problem) for each KMS key of ``resources`` whose key policy is missing or does
    not name its principals; ``naming``: whom a key policy should name, for the message."""
    found = []
    for key in resources:
        if key.type != KMS_KEY:
            continue
        present, raw = policy_of(key, resources)
        if not present:
            found.append(
                (
                    key.urn,
                    "no key policy: the default one lets every principal of the account that its "
                    f"IAM policies allow use the key; attach a KeyPolicy naming {naming}",
                )
            )
        elif known(raw):
            found += [
                (key.urn, problem)
                for problem in key_policy_problems(
                    policy_document(raw), is_prod(key.props, stack), setting
                )
            ]
    return found
