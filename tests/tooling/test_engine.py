"""The mock engine refuses what the Pulumi engine refuses: one URN registered twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.stackgen import generated_config, write_stack
from tooling.cli import app
from tooling.manifests import manifests, schema_errors
from tooling.plan import PlanError, Project, plan_stack

runner = CliRunner()

COLLIDING = """
import pulumi
import pulumi_aws as aws


class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("mlops:test:Box", name, None, opts)
        # The mistake: a child named without its parent's name.
        aws.s3.Bucket("data", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


Box("features")
Box("artifacts")
"""


@pytest.fixture
def colliding_program(tmp_path: Path) -> Path:
    program = tmp_path / "__main__.py"
    program.write_text(COLLIDING)
    return program


def test_a_urn_registered_twice_is_refused_naming_both(colliding_program: Path) -> None:
    with pytest.raises(PlanError) as caught:
        plan_stack("fraud-dev", program=colliding_program)

    [issue] = caught.value.issues
    assert issue.file == "stacks/Pulumi.fraud-dev.yaml"
    assert issue.path == "urn:pulumi:fraud-dev::mlops::mlops:test:Box$aws:s3/bucket:Bucket::data"
    # The two registrations race (the SDK registers asynchronously): either may come first.
    first, second = (
        f"aws:s3/bucket:Bucket 'data' under '{parent}' at {colliding_program}:10"
        for parent in ("features", "artifacts")
    )
    assert issue.message in {
        f"should be registered once, but {one} and {other} both have this URN (the engine stops "
        "the update: 'Duplicate resource URN ...; try giving it a unique name'); give one of them "
        "a unique name, e.g. prefixed with its parent's"
        for one, other in ((first, second), (second, first))
    }


@pytest.mark.parametrize("command", ["plan", "policy", "cost"])
def test_commands_report_a_duplicate_urn_without_a_traceback(
    command: str, colliding_program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Project, "program", property(lambda self: colliding_program))

    result = runner.invoke(app, [command, "fraud-dev"], env={"COLUMNS": "400"})

    assert result.exit_code == 1
    assert "✗ stacks/Pulumi.fraud-dev.yaml: urn:pulumi:fraud-dev::" in result.stderr
    assert "Duplicate resource URN" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_stack_with_several_of_everything_plans(environment: str, tmp_path: Path) -> None:
    """Three feature views, pipelines, node pools and real-time endpoints, two batch endpoints:
    no two children collide, and every Kubernetes object passes the API schema."""
    config = generated_config(21, environment=environment)
    planned = plan_stack(write_stack(tmp_path, config))

    urns = [r.urn for r in planned.resources]
    assert len(urns) == len(set(urns))
    for kind, count in [
        ("mlops:serving:ServingEndpoint", 5),
        ("aws:eks/nodeGroup:NodeGroup", 3),
        ("aws:dynamodb/table:Table", 3),
    ]:
        assert len(planned.of_type(kind)) == count, kind
    assert [e for obj in manifests(planned) for e in schema_errors(obj)] == []


def test_a_refused_run_leaves_nothing_behind(colliding_program: Path, tmp_path: Path) -> None:
    """`mlops policy` plans every stack in one process: the next plan is not the refused one's."""
    clean = tmp_path / "clean.py"
    clean.write_text(COLLIDING.replace('"data"', 'f"{name}-data"'))

    with pytest.raises(PlanError):
        plan_stack("fraud-dev", program=colliding_program)
    planned = plan_stack("fraud-dev", program=clean)

    assert sorted(r.name for r in planned.resources) == [
        "artifacts",
        "artifacts-data",
        "features",
        "features-data",
    ]
