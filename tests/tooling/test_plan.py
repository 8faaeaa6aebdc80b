"""`mlops plan` and the mock engine: the real program, offline, like the engine would run it."""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from typer.testing import CliRunner

from tests.conftest import PROGRAM, STACKS, planned
from tooling import mocks
from tooling.cli import app
from tooling.plan import Plan, _Recorder, engine_config

runner = CliRunner()


def test_plan_json_has_the_shape_of_pulumi_preview(example_stack: str) -> None:
    result = runner.invoke(app, ["plan", example_stack, "--json"])

    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)
    urns = [step["urn"] for step in preview["steps"]]
    assert len(urns) == len(set(urns))
    stack_urn = f"urn:pulumi:{example_stack}::mlops::pulumi:pulumi:Stack::mlops-{example_stack}"
    for step in preview["steps"]:
        assert step["op"] in ("create", "read")
        assert step["urn"].startswith(f"urn:pulumi:{example_stack}::mlops::")
        assert step["newState"]["parent"] in {*urns, stack_urn}
        assert {"type", "inputs", "outputs", "custom"} <= set(step["newState"])
    assert preview["changeSummary"]["create"] == sum(s["op"] == "create" for s in preview["steps"])


def test_plan_shows_a_resource_tree(example_stack: str) -> None:
    result = runner.invoke(app, ["plan", example_stack], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert f"{example_stack} · {len(planned(example_stack).resources)} resources" in result.stdout
    assert "mlops:team:TeamNamespace team" in result.stdout


def test_piped_output_is_not_cut_to_80_columns_and_counts_stay_integers() -> None:
    result = runner.invoke(app, ["plan", "fraud-dev"], env={"COLUMNS": None})

    assert result.exit_code == 0, result.output
    assert "StackReference cluster-platform (read)  name=acme/mlops-platform/dev\n" in result.stdout
    assert "endpoint-scorer-hpa  name=scorer, minReplicas=1, maxReplicas=2\n" in result.stdout


def test_whole_numbers_in_a_plan_are_integers(example_plan: Plan) -> None:
    def floats(value: Any) -> Iterator[float]:
        if isinstance(value, dict):
            for item in value.values():
                yield from floats(item)
        elif isinstance(value, list):
            for item in value:
                yield from floats(item)
        elif isinstance(value, float):
            yield value

    numbers = [n for r in example_plan.resources for n in floats([r.inputs, r.outputs])]
    assert [n for n in numbers if n.is_integer()] == []


def test_plan_of_a_broken_stack_reports_and_exits_1(tmp_path: Path) -> None:
    config = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    config["config"]["mlops:training"]["pipelines"][0]["nodePool"] = "tpu"
    file = tmp_path / "Pulumi.fraud-dev.yaml"
    file.write_text(yaml.safe_dump(config))

    result = runner.invoke(app, ["plan", str(file)])

    assert result.exit_code == 1
    assert "mlops:training.pipelines[0].nodePool: should be a node pool" in result.stderr
    assert "Traceback" not in result.output


def test_the_program_itself_stops_before_registering_anything(tmp_path: Path) -> None:
    """`pulumi up` runs __main__.py without the CLI's pre-check: it must refuse on its own."""
    config = yaml.safe_load((STACKS / "Pulumi.fraud-prod.yaml").read_text())
    config["config"]["mlops:serving"]["endpoints"][0]["replicas"]["min"] = 1
    config["config"]["mlops:registry"]["database"]["backupRetentionDays"] = 1
    file = tmp_path / "Pulumi.fraud-prod.yaml"
    file.write_text(yaml.safe_dump(config))

    def run() -> tuple[BaseException | None, _Recorder]:
        recorder = _Recorder(mocks.PlatformMocks("eu-west-1"))
        pulumi.runtime.set_mocks(
            recorder.mocks, project="mlops", stack="fraud-prod", preview=True, monitor=recorder
        )
        pulumi.runtime.set_all_config(*engine_config(file))
        try:
            _sync_await(run_pulumi_func(lambda: __import__("runpy").run_path(str(PROGRAM))))
        except BaseException as error:
            return error, recorder
        return None, recorder

    error, recorder = contextvars.Context().run(run)

    assert isinstance(error, pulumi.RunError)
    assert str(error).splitlines() == [
        "2 problem(s) in the stack config:",
        "stacks/Pulumi.fraud-prod.yaml: mlops:serving.endpoints[0].replicas.min: should be at least 2 in prod (an endpoint must survive the loss of a node) (got 1)",
        "stacks/Pulumi.fraud-prod.yaml: mlops:registry.database.backupRetentionDays: should be at least 7 in prod (got 1)",
    ]
    assert recorder.planned == []


def test_plans_are_deterministic() -> None:
    from tooling.plan import plan_stack

    first, second = plan_stack("fraud-prod"), plan_stack("fraud-prod")
    assert first.preview_json() == second.preview_json()


def test_secrets_never_reach_the_plan_in_plaintext() -> None:
    text = json.dumps(planned("forecasting-prod").preview_json())
    assert "encrypted-kubeconfig" not in text
    stack_ref = json.dumps(planned("fraud-prod").preview_json())
    assert '"kubeconfig": "[secret]"' in stack_ref
    assert ".gr7." not in stack_ref  # the platform's kubeconfig (its API server address) is secret


# -- the mock engine, without a program ---------------------------------------------------------


def _new(type_: str, logical: str, **inputs: object) -> tuple[str | None, dict]:
    engine = mocks.PlatformMocks("eu-west-1")
    return engine.new_resource(
        pulumi.runtime.MockResourceArgs(type_, logical, dict(inputs), "", None, True)
    )


def test_mocks_fill_computed_outputs_like_aws() -> None:
    bucket_id, bucket = _new("aws:s3/bucket:Bucket", "fraud-dev-features")
    assert (
        re.fullmatch(r"fraud-dev-features-[0-9a-f]{7}", bucket["bucket"])
        and bucket_id == bucket["bucket"]
    )
    assert bucket["arn"] == f"arn:aws:s3:::{bucket['bucket']}"

    _, table = _new("aws:dynamodb/table:Table", "t", name="fraud.card_profile")
    assert table["arn"] == "arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card_profile"

    _, db = _new(
        "aws:rds/instance:Instance",
        "db",
        identifier="fraud-dev-registry",
        manageMasterUserPassword=True,
    )
    assert re.fullmatch(
        r"fraud-dev-registry\.c[0-9a-f]{11}\.eu-west-1\.rds\.amazonaws\.com:5432", db["endpoint"]
    )
    assert db["masterUserSecrets"][0]["secretArn"].startswith(
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-"
    )

    _, role = _new("aws:iam/role:Role", "r", name="fraud-dev-serving")
    assert role["arn"] == "arn:aws:iam::123456789012:role/fraud-dev-serving"

    _, deployment = _new(
        "kubernetes:apps/v1:Deployment", "d", metadata={"name": "scorer", "namespace": "ml-fraud"}
    )
    assert deployment["metadata"]["uid"] and deployment["metadata"]["namespace"] == "ml-fraud"


def test_mocks_refuse_an_invoke_nobody_taught_them() -> None:
    engine = mocks.PlatformMocks("eu-west-1")
    with pytest.raises(mocks.UnknownInvokeError, match="aws:ec2/getSubnets:getSubnets"):
        engine.call(pulumi.runtime.MockCallArgs("aws:ec2/getSubnets:getSubnets", {}, ""))
    identity, _ = engine.call(
        pulumi.runtime.MockCallArgs("aws:index/getCallerIdentity:getCallerIdentity", {}, "")
    )
    assert identity["accountId"] == mocks.ACCOUNT_ID
    vpc, _ = engine.call(pulumi.runtime.MockCallArgs("aws:ec2/getVpc:getVpc", {"id": "vpc-1"}, ""))
    assert (vpc["id"], vpc["cidrBlock"]) == ("vpc-1", mocks.VPC_CIDR)


def test_a_stack_reference_is_read_during_preview_too() -> None:
    """The engine reads a StackReference in preview: an invoke fed its outputs gets an answer."""
    vpc_cidrs = [
        policy.inputs["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
        for policy in planned("fraud-dev").of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if policy.inputs["metadata"]["name"] == "database"
    ]
    assert vpc_cidrs == [mocks.VPC_CIDR]


def test_platform_outputs_are_what_a_team_stack_needs() -> None:
    from components.config.cluster import STACK_REFERENCE_OUTPUTS

    outputs = mocks.platform_outputs("acme/mlops-platform/prod", "eu-west-1")
    assert set(outputs) == set(STACK_REFERENCE_OUTPUTS)
    assert outputs["oidcProviderArn"].endswith(outputs["oidcProviderUrl"].removeprefix("https://"))


def test_a_plan_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    from tooling.plan import plan_stack

    plan_stack("fraud-dev")
    assert gc.isenabled() and gc.get_count()[0] < 700  # what the plan left was collected
    gc.disable()
    try:
        plan_stack("fraud-dev")
        assert not gc.isenabled()
    finally:
        gc.enable()
