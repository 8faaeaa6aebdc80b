"""The preflight over planned resources: a mistake in component code is caught at `mlops plan`,
as AWS would refuse it, not at `pulumi up`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import planned
from tests.stackgen import generated_config, write_stack
from tooling import preflight
from tooling.cli import app
from tooling.plan import PlanError, PlannedResource, plan_stack, platform_stacks

runner = CliRunner()
PLATFORM = [f"platform/{p.stem.removeprefix('Pulumi.')}" for p in platform_stacks()]


def test_every_example_stack_passes(example_stack: str) -> None:
    assert preflight.check(planned(example_stack).resources) == []


@pytest.mark.parametrize("stack", PLATFORM)
def test_every_platform_stack_passes(stack: str) -> None:
    assert preflight.check(planned(stack).resources) == []


@pytest.mark.parametrize("seed", [3, 11])
def test_a_generated_stack_with_several_of_everything_passes(seed: int, tmp_path: Path) -> None:
    """plan_stack runs the preflight itself: planning is passing."""
    config = generated_config(seed, environment="prod" if seed % 2 else "dev")
    assert plan_stack(write_stack(tmp_path, config)).resources


def test_a_kms_window_broken_in_component_code_stops_the_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("components.storage.KMS_DELETION_WINDOW_DAYS", 3)

    with pytest.raises(PlanError) as caught:
        plan_stack("fraud-prod")

    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/Pulumi.fraud-prod.yaml: aws:kms/key:Key data-key-key: deletionWindowInDays: "
        "should be 7 to 30 (kms API, ScheduleKeyDeletionRequest.PendingWindowInDays) (got 3)"
    ]


def test_a_wrong_ami_for_gpu_nodes_stops_plan_and_policy_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("components.training.ami_type", lambda types: "AL2023_x86_64_STANDARD")

    for command in ("plan", "policy"):
        result = runner.invoke(app, [command, "fraud-dev"], env={"COLUMNS": "300"})

        assert result.exit_code == 1, result.output
        assert (
            "✗ stacks/Pulumi.fraud-dev.yaml: aws:eks/nodeGroup:NodeGroup training-pool-gpu: "
            "amiType: should be an AMI type for instances with NVIDIA GPUs (e.g. "
            "AL2023_x86_64_NVIDIA) (got 'AL2023_x86_64_STANDARD')"
        ) in result.stderr
        assert "Traceback" not in result.output


def _resource(
    type_: str, logical: str, inputs: dict[str, object], **outputs: object
) -> PlannedResource:
    return PlannedResource(
        urn=f"urn:pulumi:s::p::{type_}::{logical}",
        type=type_,
        name=logical,
        parent=None,
        custom=True,
        inputs=inputs,
        outputs={**inputs, **outputs},
    )


def test_a_parameter_group_of_another_major_is_refused() -> None:
    group = _resource(
        "aws:rds/parameterGroup:ParameterGroup",
        "registry-params",
        {"family": "postgres15"},
        name="pg-1",
    )
    database = _resource(
        "aws:rds/instance:Instance",
        "registry-db",
        {
            "engine": "postgres",
            "engineVersion": "16",
            "instanceClass": "db.t4g.micro",
            "parameterGroupName": "pg-1",
            "backupRetentionPeriod": 36,
        },
    )

    found = [(f.where, f.value, f.message) for f in preflight.check([group, database])]

    assert found == [
        (
            "aws:rds/instance:Instance registry-db: backupRetentionPeriod",
            36,
            "0 to 35 (rds API, CreateDBInstanceMessage.BackupRetentionPeriod)",
        ),
        (
            "aws:rds/instance:Instance registry-db: parameterGroupName",
            "pg-1",
            "a parameter group of family postgres16 (PostgreSQL 16); 'registry-params' is postgres15",
        ),
    ]


def test_values_known_only_during_the_update_are_not_judged() -> None:
    group = _resource(
        "aws:eks/nodeGroup:NodeGroup",
        "pool",
        {"instanceTypes": ["[unknown]"], "amiType": "[unknown]", "capacityType": "SPOT"},
    )
    assert preflight.check([group]) == []
