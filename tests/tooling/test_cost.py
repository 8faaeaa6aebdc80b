"""`mlops cost` over real plans: every example stack priced whole, assumptions from the stack
config over the environment's defaults, budgets, and clear messages for what cannot be priced."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.budget import COST_MODEL_TYPE
from components.config import Environment
from components.config.cost import Usage
from policy.budget import Verdict
from policy.cost import load_prices
from tests.conftest import EXAMPLE_STACKS, PLATFORM_STACKS, STACKS, planned
from tooling import cli
from tooling.cost import plan_cost
from tooling.plan import Plan, PlannedResource, plan_stack

runner = CliRunner()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """fraud-dev with its own usage figures and a budget of $50."""
    folder = tmp_path_factory.mktemp("stacks")
    document = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    document["config"]["mlops:usage"] = {"bucketStorageGb": 1000, "nodePoolHours": 0}
    document["config"]["mlops:budget"] = {"monthlyUsd": 50}
    file = folder / "Pulumi.fraud-dev.yaml"
    file.write_text(yaml.safe_dump(document))
    return plan_stack(file)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_example_stack_is_priced_whole(stack: str) -> None:
    found = plan_cost(planned(stack)).estimate

    # All but SageMaker's hosting instances, whose ml.* prices the table does not hold: those
    # are listed, naming the fleet, never counted as zero.
    hosting = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    assert [u for u in found.unpriced if u.type != hosting] == []
    for unpriced in found.unpriced:
        assert re.search(r"SageMaker hosting \(\d+ x ml\.[a-z0-9]+\.[a-z0-9]+", unpriced.reason)
    assert found.lines
    assert found.low <= found.monthly <= found.high
    assert (
        found.region
        == yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]["aws:region"]
    )


PLATFORM_STACK_NAMES = [
    f"platform/{file.name.removeprefix('Pulumi.').removesuffix('.yaml')}"
    for file in sorted(PLATFORM_STACKS.glob("Pulumi.*.yaml"))
]


@pytest.mark.parametrize("stack", PLATFORM_STACK_NAMES)
def test_every_platform_stack_is_priced_whole(stack: str) -> None:
    plan = planned(stack)
    found = plan_cost(plan).estimate

    assert found.unpriced == []
    priced = {(line.sku.split("/")[0], _name(line.urn)) for line in found.lines}
    # The control plane, every NAT gateway (hours and data) and the system nodes.
    assert ("eks", "cluster-eks") in priced
    nats = [r.name for r in plan.of_type("aws:ec2/natGateway:NatGateway")]
    assert nats and all(
        {line.sku for line in found.lines if _name(line.urn) == nat}
        >= {"vpc/nat-gateway", "vpc/nat-gateway-data"}
        for nat in nats
    )
    assert ("ec2", "cluster-system") in priced


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def test_a_platform_budget_is_checked_like_a_team_budget(tmp_path: Path) -> None:
    platform = tmp_path / "platform"
    shutil.copytree(PLATFORM_STACKS.parent, platform, ignore=shutil.ignore_patterns("urns"))
    file = platform / "stacks" / "Pulumi.prod.yaml"
    document = yaml.safe_load(file.read_text())
    document["config"]["platform:budget"] = {"monthlyUsd": 100}
    document["config"]["platform:usage"] = {"natDataGb": 10}
    file.write_text(yaml.safe_dump(document))

    plan = plan_stack(file)
    cost = plan_cost(plan)

    assert cost.budget is not None and cost.budget.verdict is Verdict.over
    nat_data = [line for line in cost.estimate.lines if line.sku == "vpc/nat-gateway-data"]
    assert nat_data and {line.assumptions for line in nat_data} == {
        ("natDataGb=10", "peakFactor=3")
    }


def test_the_environment_chooses_the_default_assumptions() -> None:
    dev = plan_cost(planned("fraud-dev")).estimate
    prod = plan_cost(planned("fraud-prod")).estimate

    def bucket_storage(found: object) -> set[tuple[float, tuple[str, ...]]]:
        return {
            (line.quantity, line.assumptions)
            for line in found.lines  # type: ignore[attr-defined]
            if line.sku == "s3/standard-storage"
        }

    assert bucket_storage(dev) == {(Usage().bucket_storage_gb, ("bucketStorageGb=10",))}
    prod_gb = Usage.model_validate({}, context={"environment": Environment.prod}).bucket_storage_gb
    assert bucket_storage(prod) == {(prod_gb, (f"bucketStorageGb={prod_gb:g}",))}


def test_assumptions_in_the_stack_config_override_the_defaults(tuned: Plan) -> None:
    found = plan_cost(tuned).estimate
    table = load_prices("eu-west-1")

    storage = [line for line in found.lines if line.sku == "s3/standard-storage"]
    buckets = tuned.of_type("aws:s3/bucket:Bucket")  # features, models and their access logs
    assert len(buckets) == 3
    assert [(line.quantity, line.assumptions) for line in storage] == [
        (1000, ("bucketStorageGb=1000",))
    ] * len(buckets)
    assert all(line.monthly == pytest.approx(1000 * 0.023) for line in storage)
    [pool] = [line for line in found.lines if line.sku.startswith("ec2/g5")]
    # nodePoolHours 0: a pool scaled to zero costs nothing in the estimate, its max at the top.
    assert (pool.monthly, pool.assumptions) == (0, ("nodePoolHours=0",))
    assert pool.high == pytest.approx(table.price("ec2/g5.xlarge").usd * 730)


def test_a_budget_below_the_range_fails_mlops_cost(
    tuned: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "plan_stack", lambda file: tuned)

    result = runner.invoke(cli.app, ["cost", "fraud-dev", "--json"])

    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["budget"]["verdict"] == "over"
    assert report["high"] > 50
    assert report["budget"]["message"].startswith(f"can cost up to ${report['high']:,.2f} a month")


def _with(plan: Plan, resource: PlannedResource) -> Plan:
    changed = copy.deepcopy(plan)
    changed.resources.append(resource)
    return changed


def test_an_unpriced_type_is_listed_never_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = PlannedResource(
        urn="urn:pulumi:fraud-dev::mlops::aws:sagemaker/notebookInstance:NotebookInstance::legacy",
        type="aws:sagemaker/notebookInstance:NotebookInstance",
        name="legacy",
        parent=None,
        custom=True,
        inputs={},
        outputs={},
    )
    monkeypatch.setattr(cli, "plan_stack", lambda file: _with(planned("fraud-dev"), endpoint))

    text = runner.invoke(cli.app, ["cost", "fraud-dev"])
    data = runner.invoke(cli.app, ["cost", "fraud-dev", "--json"])

    assert text.exit_code == 0, text.output
    assert (
        "not priced legacy (aws:sagemaker/notebookInstance:NotebookInstance): no pricer for this type"
        in (" ".join(text.stdout.split()))
    )
    [report] = json.loads(data.stdout)
    assert report["notPriced"] == [
        {"urn": endpoint.urn, "type": endpoint.type, "reason": "no pricer for this type"}
    ]


def test_a_region_without_prices_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = copy.deepcopy(planned("fraud-dev"))
    model = next(r for r in plan.resources if r.type == COST_MODEL_TYPE)
    model.outputs = {**model.outputs, "region": "ap-south-2"}
    monkeypatch.setattr(cli, "plan_stack", lambda file: plan)

    result = runner.invoke(cli.app, ["cost", "fraud-dev"])

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = " ".join(result.stderr.split())
    assert f"{Path('stacks/Pulumi.fraud-dev.yaml')}: no prices for region ap-south-2" in message
    assert "python -m tooling.price_list --region ap-south-2" in message
