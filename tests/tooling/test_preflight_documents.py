"""Policy documents and lifecycle rules as AWS checks them on write: each rule with a document
that breaks it, and a component whose key policy would lock the account out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import WORKSPACE, planned
from tooling.plan import PlanError, PlannedResource, plan_stack
from tooling.preflight.documents import (
    IDENTITY,
    RESOURCE,
    TRUST,
    document_findings,
    document_problems,
)

ROOT = {"AWS": "arn:aws:iam::123456789012:root"}


def _doc(*statements: dict[str, Any], **top: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements), **top})


def _problems(text: str, kind: str) -> list[tuple[str, Any]]:
    return [(path, value) for path, value, _ in document_problems(text, kind)]


READ = {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        pytest.param(_doc(READ), IDENTITY, [], id="valid-identity-policy"),
        pytest.param(
            "{'Version': '2012-10-17'}",
            IDENTITY,
            [("", "{'Version': '2012-10-17'}")],
            id="not-json",
        ),
        pytest.param(
            _doc(READ, Version="2012-10-18"), IDENTITY, [(" Version", "2012-10-18")], id="version"
        ),
        pytest.param(
            _doc({**READ, "Effect": "allow"}),
            IDENTITY,
            [(" Statement[0].Effect", "allow")],
            id="effect-case",
        ),
        pytest.param(
            _doc({**READ, "Action": "GetObject"}),
            IDENTITY,
            [(" Statement[0].Action", "GetObject")],
            id="action-without-its-service",
        ),
        pytest.param(
            _doc({k: v for k, v in READ.items() if k != "Resource"}),
            IDENTITY,
            [(" Statement[0]", [])],
            id="identity-policy-without-resource",
        ),
        pytest.param(
            _doc({**READ, "Principal": ROOT}),
            IDENTITY,
            [(" Statement[0].Principal", "Principal")],
            id="identity-policy-naming-a-principal",
        ),
        pytest.param(
            _doc({**READ, "Sid": "read-objects"}),
            IDENTITY,
            [(" Statement[0].Sid", "read-objects")],
            id="sid-with-a-dash",
        ),
        pytest.param(_doc(READ, READ), IDENTITY, [(" Statement[1].Sid", "Read")], id="sid-twice"),
        pytest.param(
            _doc({**READ, "Condition": {"StringEqualz": {"aws:RequestedRegion": "eu-west-1"}}}),
            IDENTITY,
            [(" Statement[0].Condition", "StringEqualz")],
            id="condition-operator-iam-lacks",
        ),
        pytest.param(
            _doc(
                {
                    **READ,
                    "Condition": {
                        "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": "team*"},
                        "Bool": {"aws:SecureTransport": "true"},
                    },
                }
            ),
            IDENTITY,
            [],
            id="condition-operators-with-prefix-and-suffix",
        ),
        pytest.param(
            _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Resource": "*",
                }
            ),
            TRUST,
            [(" Statement[0].Resource", "Resource")],
            id="trust-policy-with-a-resource",
        ),
        pytest.param(
            _doc({"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}),
            RESOURCE,
            [(" Statement[0]", [])],
            id="resource-policy-without-principal",
        ),
        pytest.param(
            _doc(READ, Statment=[]), IDENTITY, [(" Statment", "Statment")], id="top-level-typo"
        ),
    ],
)
def test_what_iam_refuses_on_write(text: str, kind: str, found: list[tuple[str, Any]]) -> None:
    assert _problems(text, kind) == found


def test_a_trust_policy_over_the_quota() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::123456789012:role/r{i:04d}" for i in range(60)]},
        "Action": "sts:AssumeRole",
    }
    [(path, _, message)] = document_problems(_doc(statement), TRUST)
    assert (path, message) == (
        "",
        "at most 2048 characters for a role trust policy (IAM's default quota)",
    )


def _key(policy: dict[str, Any] | str) -> PlannedResource:
    text = policy if isinstance(policy, str) else json.dumps(policy)
    return PlannedResource(
        urn="urn:pulumi:s::p::aws:kms/key:Key::k",
        type="aws:kms/key:Key",
        name="k",
        parent=None,
        custom=True,
        inputs={"policy": text},
        outputs={},
    )


def test_a_key_policy_nobody_may_change_again_is_refused() -> None:
    only_use = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Use",
                "Effect": "Allow",
                "Principal": ROOT,
                "Action": ["kms:Encrypt", "kms:Decrypt"],
                "Resource": "*",
            }
        ],
    }
    [finding] = document_findings([_key(only_use)])
    assert finding.path == "policy" and "policy lockout safety check" in finding.message

    only_use["Statement"].append(
        {
            "Sid": "Administer",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert list(document_findings([_key(only_use)])) == []


def test_lifecycle_rules_s3_refuses() -> None:
    lifecycle = PlannedResource(
        urn="urn:pulumi:s::p::aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration::l",
        type="aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        name="l",
        parent=None,
        custom=True,
        inputs={
            "rules": [
                {
                    "id": "tiering",
                    "status": "Enabled",
                    "transitions": [{"days": 14, "storageClass": "STANDARD_IA"}],
                    "expiration": {"days": 10},
                },
                {"id": "tiering", "status": "Enabled"},
            ]
        },
        outputs={},
    )
    found = [(f.path, f.value) for f in document_findings([lifecycle])]
    assert found == [
        ("rules[0].transitions[0].days", 14),
        ("rules[0].expiration.days", 10),
        ("rules[1].id", "tiering"),
    ]


def test_every_example_stack_writes_documents_aws_accepts(example_stack: str) -> None:
    created = [r for r in planned(example_stack).resources if r.custom and not r.read]
    assert list(document_findings(created)) == []


def test_a_key_policy_broken_in_component_code_stops_the_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The team's key policies without their administering statement: KMS would refuse them."""
    import components.storage as storage

    original = storage.key_policy

    def without_administration(**kwargs: Any) -> dict[str, Any]:
        policy: dict[str, Any] = original(**kwargs)
        kept = [s for s in policy["Statement"] if s.get("Sid") != "KeyAdministrators"]
        return {**policy, "Statement": kept}

    monkeypatch.setattr(storage, "key_policy", without_administration)

    with pytest.raises(PlanError) as caught:
        plan_stack("fraud-prod", workspace=WORKSPACE)

    assert any(
        "aws:kms/keyPolicy:KeyPolicy monitoring-key-access-policy: policy: should be a key policy "
        "that lets a principal" in str(issue)
        for issue in caught.value.issues
    ), [str(issue) for issue in caught.value.issues]
