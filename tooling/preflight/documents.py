"""Policy documents as AWS checks them when they are written.

Every IAM, trust and resource policy in the plan is parsed and held to the rules IAM, S3, KMS
and SNS apply on write ("IAM JSON policy element reference", "IAM and AWS STS quotas"): the
grammar (Version, Statement, Effect, one of Action/NotAction, Resource in identity policies
and never in trust policies, a Principal in resource policies, vendor-prefixed actions, known
condition operators, unique alphanumeric Sids), the size quotas, and KMS's policy lockout
safety check (a key policy must let a principal change the policy again). S3 lifecycle rules
get S3's own checks (transitions before expiration, 30 days before STANDARD_IA or ONEZONE_IA).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tooling.preflight.base import UNKNOWN, Finding, Planned

IDENTITY = "identity"
TRUST = "trust"
RESOURCE = "resource"

DOCUMENTS: dict[str, list[tuple[str, str]]] = {
    "aws:iam/policy:Policy": [("policy", IDENTITY)],
    "aws:iam/rolePolicy:RolePolicy": [("policy", IDENTITY)],
    "aws:iam/userPolicy:UserPolicy": [("policy", IDENTITY)],
    "aws:iam/groupPolicy:GroupPolicy": [("policy", IDENTITY)],
    "aws:iam/role:Role": [("assumeRolePolicy", TRUST), ("inlinePolicies[].policy", IDENTITY)],
    "aws:s3/bucketPolicy:BucketPolicy": [("policy", RESOURCE)],
    "aws:kms/key:Key": [("policy", RESOURCE)],
    "aws:kms/keyPolicy:KeyPolicy": [("policy", RESOURCE)],
    "aws:sns/topic:Topic": [("policy", RESOURCE)],
    "aws:sns/topicPolicy:TopicPolicy": [("policy", RESOURCE)],
    "aws:ecr/repositoryPolicy:RepositoryPolicy": [("policy", RESOURCE)],
    "aws:secretsmanager/secretPolicy:SecretPolicy": [("policy", RESOURCE)],
}
"""Per resource type, where its policy documents are and what kind each is."""
KEY_POLICY_TYPES = ("aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy")
"""A key's policy on the key itself, or set apart once the principals it names exist."""

MANAGED_POLICY_MAX = 6_144
"""Characters of a managed policy, whitespace not counted (IAM quota)."""
TRUST_POLICY_MAX = 2_048
"""Characters of a role trust policy (IAM's default quota; it can be raised to 4,096)."""
INLINE_ROLE_POLICIES_MAX = 10_240
"""Characters of all of a role's inline policies together, whitespace not counted."""
BUCKET_POLICY_MAX = 20 * 1024
KEY_POLICY_MAX = 32 * 1024

STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource"}
    | {"NotResource", "Condition"}
)
CONDITION_OPERATORS = frozenset(
    {
        *(f"String{s}" for s in ("Equals", "NotEquals", "EqualsIgnoreCase", "NotEqualsIgnoreCase")),
        "StringLike",
        "StringNotLike",
        *(f"Numeric{s}" for s in ("Equals", "NotEquals", "LessThan", "LessThanEquals")),
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        *(f"Date{s}" for s in ("Equals", "NotEquals", "LessThan", "LessThanEquals")),
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        *(f"Arn{s}" for s in ("Equals", "Like", "NotEquals", "NotLike")),
        "Null",
    }
)
ACTION = re.compile(r"^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$")
SID = re.compile(r"^[A-Za-z0-9]*$")
IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
IA_MIN_DAYS = 30


def document_findings(resources: Sequence[Planned]) -> Iterator[Finding]:
    role_inline: dict[str, int] = {}
    roles = {str(r.outputs.get("name")): r for r in resources if r.type == "aws:iam/role:Role"}
    for resource in resources:
        for path, kind in DOCUMENTS.get(resource.type, []):
            for where, text in _texts(resource.inputs, path):
                for problem_path, value, message in document_problems(text, kind, resource.type):
                    shown = f"{where}{problem_path}"
                    yield Finding(resource.type, resource.name, shown, value, message)
                if kind == IDENTITY and resource.type == "aws:iam/rolePolicy:RolePolicy":
                    role = str(resource.inputs.get("role"))
                    role_inline[role] = role_inline.get(role, 0) + _size(text)
        if resource.type in KEY_POLICY_TYPES:
            yield from _lockout(resource)
        if resource.type == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
            yield from _lifecycle(resource)
    for role, size in role_inline.items():
        if size > INLINE_ROLE_POLICIES_MAX:
            owner = roles.get(role)
            yield Finding(
                "aws:iam/role:Role",
                owner.name if owner else role,
                "inline policies",
                f"{size} characters",
                f"at most {INLINE_ROLE_POLICIES_MAX} characters for all of a role's inline "
                "policies together, whitespace not counted (IAM quota): split them, or use "
                "managed policies",
            )


def _texts(props: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
    head, _, rest = path.partition("[].")
    if rest:
        for index, item in enumerate(props.get(head) or []):
            value = item.get(rest) if isinstance(item, Mapping) else None
            if isinstance(value, str) and value not in UNKNOWN:
                yield f"{head}[{index}].{rest}", value
        return
    value = props.get(path)
    if isinstance(value, Mapping):  # some inputs take the document as an object
        value = json.dumps(value)
    if isinstance(value, str) and value not in UNKNOWN:
        yield path, value


def _size(text: str) -> int:
    return len(re.sub(r"\s", "", text))


def document_problems(text: str, kind: str, type_: str = "") -> Iterator[tuple[str, Any, str]]:
    """(path inside the document, value, what is allowed) for each rule AWS applies on write."""
    if "[unknown]" in text or "[secret]" in text:
        return  # parts of it are computed during the update
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        yield "", text[:60], f"a JSON policy document ({error.msg} at character {error.pos})"
        return
    if not isinstance(document, Mapping):
        yield "", type(document).__name__, "a JSON object with Version and Statement"
        return
    yield from _size_problems(text, kind, type_)
    for key in document:
        if key not in ("Version", "Id", "Statement"):
            yield f" {key}", key, "Version, Id or Statement: IAM refuses other top-level keys"
    version = document.get("Version")
    if version is not None and version not in ("2012-10-17", "2008-10-17"):
        yield " Version", version, "2012-10-17 (or the old 2008-10-17)"
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        yield " Statement", statements, "a statement or a non-empty list of statements"
        return
    sids: dict[str, int] = {}
    for index, statement in enumerate(statements):
        where = f" Statement[{index}]"
        if not isinstance(statement, Mapping):
            yield where, statement, "a JSON object"
            continue
        yield from _statement(statement, kind, where)
        sid = statement.get("Sid")
        if isinstance(sid, str) and sid:
            if sid in sids:
                yield f"{where}.Sid", sid, f"unique in the policy (Statement[{sids[sid]}] has it)"
            sids.setdefault(sid, index)


def _size_problems(text: str, kind: str, type_: str) -> Iterator[tuple[str, Any, str]]:
    limits = {
        TRUST: (len(text), TRUST_POLICY_MAX, "a role trust policy (IAM's default quota)"),
        "aws:iam/policy:Policy": (
            _size(text),
            MANAGED_POLICY_MAX,
            "a managed policy, whitespace not counted (IAM quota)",
        ),
        "aws:s3/bucketPolicy:BucketPolicy": (len(text), BUCKET_POLICY_MAX, "a bucket policy"),
        "aws:kms/key:Key": (len(text), KEY_POLICY_MAX, "a key policy"),
        "aws:kms/keyPolicy:KeyPolicy": (len(text), KEY_POLICY_MAX, "a key policy"),
    }
    size, limit, what = limits.get(kind if kind == TRUST else type_, (0, 1, ""))
    if size > limit:
        yield "", f"{size} characters", f"at most {limit} characters for {what}"


def _statement(
    statement: Mapping[str, Any], kind: str, where: str
) -> Iterator[tuple[str, Any, str]]:
    for key in statement:
        if key not in STATEMENT_KEYS:
            yield (
                f"{where}.{key}",
                key,
                f"a statement element ({', '.join(sorted(STATEMENT_KEYS))})",
            )
    if statement.get("Effect") not in ("Allow", "Deny"):
        yield f"{where}.Effect", statement.get("Effect"), "Allow or Deny"
    sid = statement.get("Sid")
    if kind != RESOURCE and isinstance(sid, str) and not SID.match(sid):
        yield f"{where}.Sid", sid, "letters and digits only (IAM refuses other characters in a Sid)"
    has_action = [key for key in ("Action", "NotAction") if key in statement]
    if len(has_action) != 1:
        yield where, has_action, "exactly one of Action or NotAction"
    for key in has_action:
        for action in _as_list(statement[key]):
            if isinstance(action, str) and action not in UNKNOWN and not ACTION.match(action):
                yield (
                    f"{where}.{key}",
                    action,
                    "an action prefixed by its service, e.g. s3:GetObject (or '*')",
                )
    has_resource = [key for key in ("Resource", "NotResource") if key in statement]
    has_principal = [key for key in ("Principal", "NotPrincipal") if key in statement]
    if kind == IDENTITY:
        if len(has_resource) != 1:
            yield where, has_resource, "exactly one of Resource or NotResource (an identity policy)"
        if has_principal:
            yield (
                f"{where}.{has_principal[0]}",
                has_principal[0],
                (
                    "absent: an identity policy applies to whom it is attached, it names no Principal"
                ),
            )
    if kind == TRUST and has_resource:
        yield (
            f"{where}.{has_resource[0]}",
            has_resource[0],
            ("absent: a trust policy's resource is the role itself (IAM refuses Resource there)"),
        )
    if kind in (TRUST, RESOURCE) and len(has_principal) != 1:
        yield where, has_principal, "exactly one of Principal or NotPrincipal (a resource policy)"
    condition = statement.get("Condition")
    if condition is not None:
        if not isinstance(condition, Mapping):
            yield f"{where}.Condition", condition, "an object of condition operators"
        else:
            for operator in condition:
                base = str(operator).split(":", 1)[-1].removesuffix("IfExists")
                prefix = str(operator).split(":", 1)[0] if ":" in str(operator) else None
                if base not in CONDITION_OPERATORS or prefix not in (
                    None,
                    "ForAllValues",
                    "ForAnyValue",
                ):
                    yield (
                        f"{where}.Condition",
                        operator,
                        "a condition operator IAM knows (StringEquals, StringLike, ArnLike, Bool, "
                        "IpAddress, ...; IfExists and ForAllValues:/ForAnyValue: allowed)",
                    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _lockout(key: Planned) -> Iterator[Finding]:
    """KMS's policy lockout safety check: some principal must be allowed to change the policy
    again (kms:PutKeyPolicy), or CreateKey/PutKeyPolicy fails unless told to bypass it."""
    text = key.inputs.get("policy")
    if not isinstance(text, str) or text in UNKNOWN or "[unknown]" in text:
        return  # no policy: KMS's default key policy gives the account full access
    if key.inputs.get("bypassPolicyLockoutSafetyCheck") is True:
        return
    try:
        document = json.loads(text)
    except ValueError:
        return  # reported as malformed above
    statements = document.get("Statement") if isinstance(document, Mapping) else None
    for statement in _as_list(statements or []):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, Mapping) else principal
        actions = _as_list(statement.get("Action", []))
        if aws and any(a in ("*", "kms:*", "kms:PutKeyPolicy", "kms:Put*") for a in actions):
            return
    yield Finding(
        key.type,
        key.name,
        "policy",
        "no statement allows kms:PutKeyPolicy",
        "a key policy that lets a principal (the account's root, as KMS's default does) change "
        "it again: KMS refuses one that would lock everyone out (the policy lockout safety check)",
    )


def _lifecycle(resource: Planned) -> Iterator[Finding]:
    ids: dict[str, int] = {}
    for index, rule in enumerate(resource.inputs.get("rules") or []):
        where = f"rules[{index}]"
        rule_id = rule.get("id")
        if isinstance(rule_id, str) and rule_id not in UNKNOWN:
            if rule_id in ids:
                yield Finding(
                    resource.type,
                    resource.name,
                    f"{where}.id",
                    rule_id,
                    f"unique among the rules (rules[{ids[rule_id]}] has it)",
                )
            ids.setdefault(rule_id, index)
        expiration = (rule.get("expiration") or {}).get("days")
        for kind, key in (
            ("transitions", "days"),
            ("noncurrentVersionTransitions", "noncurrentDays"),
        ):
            for t, transition in enumerate(rule.get(kind) or []):
                days = transition.get(key)
                if not isinstance(days, int | float):
                    continue
                if transition.get("storageClass") in IA_CLASSES and days < IA_MIN_DAYS:
                    yield Finding(
                        resource.type,
                        resource.name,
                        f"{where}.{kind}[{t}].{key}",
                        days,
                        f"at least {IA_MIN_DAYS} for {transition.get('storageClass')} (S3 refuses "
                        "a transition to an infrequent-access class sooner)",
                    )
                if (
                    kind == "transitions"
                    and isinstance(expiration, int | float)
                    and expiration <= days
                ):
                    yield Finding(
                        resource.type,
                        resource.name,
                        f"{where}.expiration.days",
                        expiration,
                        f"more than the transition's {days} days (S3 refuses an expiration "
                        "that is not after every transition)",
                    )
