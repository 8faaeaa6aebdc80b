"""Resource identity under test: an example stack's URNs change only on purpose."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import EXAMPLE_STACKS, PROGRAM, planned
from tooling.cli import app
from tooling.plan import Plan, plan_stack, platform_stacks, stack_file
from tooling.urns import compare, read_record, record_path

runner = CliRunner()
PLATFORM_STACKS = [f"platform/{p.stem.removeprefix('Pulumi.')}" for p in platform_stacks()]
BUCKET = "urn:pulumi:fraud-dev::mlops::mlops:registry:ModelRegistry$mlops:storage:SecureBucket$aws:s3/bucket:Bucket::registry-artifacts-bucket"


@pytest.mark.parametrize("stack", [*EXAMPLE_STACKS, *PLATFORM_STACKS])
def test_every_example_stack_keeps_its_recorded_urns(stack: str) -> None:
    record = record_path(stack_file(stack))
    found = compare(planned(stack), read_record(record), record)

    assert found.ok, found.report()


def _renamed(plan: Plan, urn: str, new_name: str, *, alias: bool = False) -> Plan:
    resources = []
    for r in plan.resources:
        if r.urn == urn:
            r = dataclasses.replace(
                r,
                urn=urn.rsplit("::", 1)[0] + f"::{new_name}",
                name=new_name,
                aliases=[urn] if alias else [],
            )
        resources.append(r)
    return dataclasses.replace(plan, resources=resources)


def test_a_renamed_bucket_without_an_alias_is_a_replacement() -> None:
    record = record_path(stack_file("fraud-dev"))
    renamed = _renamed(planned("fraud-dev"), BUCKET, "registry-artifacts")

    found = compare(renamed, read_record(record), record)

    assert not found.ok
    new = BUCKET.replace("::registry-artifacts-bucket", "::registry-artifacts")
    assert found.report().splitlines() == [
        "fraud-dev: 1 recorded resource(s) would be replaced on `pulumi up` (a delete and a "
        "create): no planned resource has their URN or keeps it as an alias",
        f"  - {BUCKET} (stateful: its data is lost)",
        f"    now planned as {new}",
        "    to keep it: aliases=[pulumi.Alias(name='registry-artifacts-bucket')] on "
        "'registry-artifacts'",
        "  or, if the replacement is meant: `mlops plan fraud-dev --record-urns` in the same "
        "commit, naming the stateful resources it replaces",
        "fraud-dev: 1 planned resource(s) not in stacks/urns/fraud-dev.txt; record them with "
        "`mlops plan fraud-dev --record-urns`:",
        f"  + {new}",
    ]


def test_an_alias_keeps_the_identity() -> None:
    record = record_path(stack_file("fraud-dev"))
    renamed = _renamed(planned("fraud-dev"), BUCKET, "registry-artifacts", alias=True)

    found = compare(renamed, read_record(record), record)

    assert found.gone == []
    assert found.kept == [(BUCKET, BUCKET.replace("-artifacts-bucket", "-artifacts"))]


RENAMED = 'FeatureStore(\n    "feature-store",\n    FeatureStoreArgs('
ALIASED = (
    'FeatureStore(\n    "feature-store",\n'
    '    opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="features")]),\n'
    "    args=FeatureStoreArgs("
)


def _program(tmp_path: Path, replacement: str) -> Path:
    original = PROGRAM.read_text()
    program = tmp_path / "__main__.py"
    program.write_text(
        original.replace('FeatureStore(\n    "features",\n    FeatureStoreArgs(', replacement)
    )
    assert program.read_text() != original
    return program


def test_a_component_renamed_in_the_program_replaces_its_tables_and_bucket(
    tmp_path: Path,
) -> None:
    """The mistake the record is for: a component's name changed in code, its children's URNs
    with it; on an existing stack, the online tables and the offline bucket are replaced."""
    record = record_path(stack_file("fraud-dev"))
    program = _program(tmp_path, RENAMED)

    found = compare(plan_stack("fraud-dev", program=program), read_record(record), record)

    stateful = sorted(g.urn.rsplit("::", 1)[-1] for g in found.gone if g.stateful)
    assert stateful == [
        "features-offline-bucket",
        "features-online-card_profile",
        "features-online-card_txn_stats",
    ]
    assert {g.alias_hint() for g in found.gone} == {
        "aliases=[pulumi.Alias(name='features')] on 'feature-store'",  # the component itself
        "aliases=[pulumi.Alias(name='features')] on 'feature-store' (a renamed component: its "
        "children named after it follow)",
    }


def test_the_renamed_component_keeps_every_child_with_one_alias(tmp_path: Path) -> None:
    record = record_path(stack_file("fraud-dev"))
    program = _program(tmp_path, ALIASED)

    found = compare(plan_stack("fraud-dev", program=program), read_record(record), record)

    assert found.gone == []
    assert ("features-offline-bucket", "feature-store-offline-bucket") in [
        (old.rsplit("::", 1)[-1], new.rsplit("::", 1)[-1]) for old, new in found.kept
    ]
    assert len(found.kept) == len(found.new)  # recorded again, the new names are the record


def test_record_urns_writes_what_the_test_compares(tmp_path: Path) -> None:
    copy = tmp_path / "Pulumi.fraud-dev.yaml"
    shutil.copy(stack_file("fraud-dev"), copy)

    result = runner.invoke(app, ["plan", str(copy), "--record-urns"])

    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path}/urns/fraud-dev.txt: " in result.stderr
    assert read_record(tmp_path / "urns" / "fraud-dev.txt") == read_record(
        record_path(stack_file("fraud-dev"))
    )
