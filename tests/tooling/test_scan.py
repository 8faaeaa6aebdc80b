"""`mlops scan`: the planned Kubernetes objects as manifests, checkov over them, the skip list.

The tests that run checkov need its virtualenv (`make scan-env`); without it they skip, unless
MLOPS_REQUIRE_CHECKOV is set (CI sets it: there they must run).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPOSITORY, WORKSPACE, planned
from tooling import cli
from tooling import scan as scanner
from tooling.manifests import is_kubernetes_object, schema_errors
from tooling.mocks import SECRET_SHOWN
from tooling.plan import Plan, PlannedResource, plan_stack

PROGRAM = scanner.checkov_program(REPOSITORY)
SKIPS = scanner.load_skips(REPOSITORY / scanner.SKIPS_FILE)
PLATFORM_STACK = "platform/dev"


def _needs_checkov() -> pytest.MarkDecorator:
    if PROGRAM is None and os.environ.get("MLOPS_REQUIRE_CHECKOV"):
        pytest.fail("MLOPS_REQUIRE_CHECKOV is set but checkov is not installed (make scan-env)")
    return pytest.mark.skipif(
        PROGRAM is None, reason="checkov is not installed: `make scan-env` (.venv-scan)"
    )


needs_checkov = _needs_checkov()


def _plan(stack: str) -> Plan:
    return planned(stack) if "/" not in stack else _platform_plan(stack)


@functools.cache
def _platform_plan(stack: str) -> Plan:
    # Named as `mlops scan` names it (plan_stack names a platform stack `dev`).
    return dataclasses.replace(plan_stack(stack, workspace=WORKSPACE), stack=stack)


# -- manifests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["fraud-prod", "fraud-dev", PLATFORM_STACK])
def test_manifests_are_valid_objects_and_round_trip_the_planned_inputs(
    stack: str, tmp_path: Path
) -> None:
    plan = _plan(stack)
    file, count = scanner.write_manifests(plan, tmp_path)
    assert file == tmp_path / f"{stack}.yaml"
    read = [obj for obj in yaml.safe_load_all(file.read_text()) if obj is not None]
    planned_objects = [r for r in plan.resources if is_kubernetes_object(r)]
    assert count == len(read) == len(planned_objects) > 0
    for obj, resource in zip(read, planned_objects, strict=True):
        assert list(obj)[:3] == ["apiVersion", "kind", "metadata"]
        # What the file holds is the resource's inputs, less what the plan masks as secret.
        assert obj == {k: v for k, v in resource.inputs.items() if v != SECRET_SHOWN}
        assert schema_errors(obj) == []
        assert obj["metadata"]["name"]


# -- the skip list --------------------------------------------------------------------------------


def test_every_skip_has_a_reason_and_a_checkov_kubernetes_id() -> None:
    assert SKIPS, "the skip list is empty: remove the file instead"
    for skip in SKIPS:
        assert scanner.CHECK_ID.match(skip.check)
        assert len(skip.reason.split()) >= 20, f"{skip.check}: say why, not only what"


@needs_checkov
def test_every_skip_names_a_real_checkov_check() -> None:
    assert PROGRAM is not None
    checks = scanner.kubernetes_checks(PROGRAM)
    assert len(checks) > 50  # the table was read
    assert [s.check for s in SKIPS if s.check not in checks] == []


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"check": "CKV_K8S_43"}, "reason should say why"),
        ({"check": "CKV_K8S_43", "reason": "by design"}, "reason should say why"),
        ({"check": "CKV_AWS_1", "reason": "a reason long enough to pass"}, "checkov Kubernetes id"),
        (
            {"check": "CKV_K8S_1", "reason": "a reason long enough to pass", "stack": ["x"]},
            "unknown",
        ),
        ({"check": "CKV_K8S_1", "reason": "a reason long enough to pass", "stacks": "x"}, "list"),
    ],
)
def test_a_malformed_skip_is_refused(
    entry: dict[str, object], problem: str, tmp_path: Path
) -> None:
    file = tmp_path / "skips.yaml"
    file.write_text(yaml.safe_dump({"skips": [entry]}))
    with pytest.raises(scanner.ScanError, match=problem):
        scanner.load_skips(file)


def test_a_skip_covers_only_its_check_stacks_and_resources() -> None:
    skip = scanner.Skip("CKV_K8S_43", "why", ("*-dev",), ("*.ml-*.*",))
    finding = scanner.Finding("fraud-dev", "Deployment.ml-fraud.scorer", "CKV_K8S_43", "t")
    assert skip.covers(finding)
    assert not skip.covers(finding.__class__("fraud-prod", finding.resource, "CKV_K8S_43", "t"))
    assert not skip.covers(finding.__class__("fraud-dev", finding.resource, "CKV_K8S_16", "t"))
    kube_system = "Deployment.kube-system.cluster-autoscaler"
    assert not skip.covers(finding.__class__("platform/us-dev", kube_system, "CKV_K8S_43", "t"))


# -- checkov over plans ---------------------------------------------------------------------------


def _privileged(plan: Plan) -> Plan:
    """The plan with its serving Deployment's containers privileged (a seeded violation)."""
    seeded = copy.deepcopy(plan)
    scorer = next(
        r
        for r in seeded.resources
        if r.type == "kubernetes:apps/v1:Deployment" and r.inputs["metadata"]["name"] == "scorer"
    )
    for container in scorer.inputs["spec"]["template"]["spec"]["containers"]:
        container["securityContext"]["privileged"] = True
        container["securityContext"]["allowPrivilegeEscalation"] = True
    return seeded


@needs_checkov
@pytest.mark.slow
def test_the_example_stacks_have_no_finding_outside_the_skip_list(tmp_path: Path) -> None:
    assert PROGRAM is not None
    plans = [planned("fraud-dev"), planned("fraud-prod"), _plan(PLATFORM_STACK)]
    report = scanner.scan(plans, root=REPOSITORY, folder=tmp_path, program=PROGRAM, skips=SKIPS)
    assert report.failed == []
    assert all(r.passed > 100 for r in report.results)
    # dev runs a tag of its repository (skipped by design); prod runs a digest and skips nothing.
    by_stack = {r.stack: r for r in report.results}
    assert {f.check for f in by_stack["fraud-dev"].skipped} >= {"CKV_K8S_43"}
    assert by_stack["fraud-prod"].skipped == []


@needs_checkov
@pytest.mark.slow
def test_a_privileged_deployment_is_reported_and_fails(tmp_path: Path) -> None:
    assert PROGRAM is not None
    seeded = _privileged(planned("fraud-prod"))
    report = scanner.scan([seeded], root=REPOSITORY, folder=tmp_path, program=PROGRAM, skips=SKIPS)
    found = {(f.stack, f.resource, f.check) for f in report.failed}
    assert ("fraud-prod", "Deployment.ml-fraud.scorer", "CKV_K8S_16") in found  # privileged
    assert ("fraud-prod", "Deployment.ml-fraud.scorer", "CKV_K8S_20") in found  # escalation


@needs_checkov
@pytest.mark.slow
def test_mlops_scan_exits_1_with_a_table_of_the_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = _privileged(planned("fraud-prod"))

    def fake_planned(files, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["progress"]("fraud-prod")
        yield Path("stacks/Pulumi.fraud-prod.yaml"), seeded

    monkeypatch.setattr(cli, "_planned", fake_planned)
    monkeypatch.chdir(REPOSITORY)
    result = CliRunner().invoke(cli.app, ["scan", "fraud-prod", "--output", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "planned 1/1 fraud-prod" in result.output
    assert "✗ fraud-prod" in result.output
    assert "Deployment.ml-fraud.scorer" in result.output and "CKV_K8S_16" in result.output
    assert "not on the skip list" in result.output


def test_mlops_scan_without_checkov_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scanner, "checkov_program", lambda root: None)
    monkeypatch.chdir(REPOSITORY)
    result = CliRunner().invoke(cli.app, ["scan", "fraud-dev"])
    assert result.exit_code == 1
    assert "make scan-env" in result.output


def test_a_scan_that_checked_nothing_fails(tmp_path: Path) -> None:
    """checkov skips what it cannot read (a hidden folder, say) silently: never a pass."""
    fake = tmp_path / "checkov"
    fake.write_text('#!/bin/sh\necho \'{"passed": 0, "failed": 0}\'\n')
    fake.chmod(0o755)
    plan = Plan("x-dev", [_object()], {})
    with pytest.raises(scanner.ScanError, match="no check on the objects of x-dev"):
        scanner.scan([plan], root=tmp_path, folder=tmp_path / "out", program=fake, skips=[])


def _object() -> PlannedResource:
    inputs = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    return PlannedResource("urn:x", "kubernetes:core/v1:Namespace", "x", None, True, inputs, {})
