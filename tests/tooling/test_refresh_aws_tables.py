"""The AWS table refresh against EC2 and RDS answers replayed by botocore's Stubber (which checks
every request against the real service model); no network."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tooling import refresh_aws_tables

TODAY = datetime.date(2026, 12, 1)


def _type(name: str, arch: list[str], **extra: Any) -> dict[str, Any]:
    return {"InstanceType": name, "ProcessorInfo": {"SupportedArchitectures": arch}, **extra}


NVIDIA = {"GpuInfo": {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 4}]}}
EC2_PAGES = [
    {
        "InstanceTypes": [
            _type("m6i.large", ["x86_64"]),
            _type("t2.micro", ["i386", "x86_64"]),
            _type("m7g.large", ["arm64"]),
        ],
        "NextToken": "page-2",
    },
    {
        "InstanceTypes": [
            _type("g5.12xlarge", ["x86_64"], **NVIDIA),
            _type("inf2.xlarge", ["x86_64"], NeuronInfo={"NeuronDevices": []}),
        ]
    },
]
ENGINE_VERSIONS = {
    "DBEngineVersions": [
        {"Engine": "postgres", "EngineVersion": "16.10", "DBParameterGroupFamily": "postgres16"},
        {"Engine": "postgres", "EngineVersion": "16.9", "DBParameterGroupFamily": "postgres16"},
        {"Engine": "postgres", "EngineVersion": "17.6", "DBParameterGroupFamily": "postgres17"},
        {
            "Engine": "postgres",
            "EngineVersion": "12.22",
            "DBParameterGroupFamily": "postgres12",
            "Status": "deprecated",
        },
    ]
}
ORDERABLE = {
    "OrderableDBInstanceOptions": [
        {"Engine": "postgres", "EngineVersion": "16.10", "DBInstanceClass": "db.t4g.micro"},
        {"Engine": "postgres", "EngineVersion": "17.6", "DBInstanceClass": "db.t4g.micro"},
        {"Engine": "postgres", "EngineVersion": "17.6", "DBInstanceClass": "db.m8g.large"},
    ]
}


@pytest.fixture
def clients() -> tuple[Any, Any, Stubber, Stubber]:
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    rds = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    ec2_stub, rds_stub = Stubber(ec2), Stubber(rds)
    ec2_stub.add_response("describe_instance_types", EC2_PAGES[0], {})
    ec2_stub.add_response("describe_instance_types", EC2_PAGES[1], {"NextToken": "page-2"})
    rds_stub.add_response("describe_db_engine_versions", ENGINE_VERSIONS, {"Engine": "postgres"})
    rds_stub.add_response(
        "describe_orderable_db_instance_options", ORDERABLE, {"Engine": "postgres"}
    )
    return ec2, rds, ec2_stub, rds_stub


def test_the_table_is_what_ec2_and_rds_answer(clients: tuple[Any, Any, Stubber, Stubber]) -> None:
    ec2, rds, ec2_stub, rds_stub = clients
    with ec2_stub, rds_stub:
        table = refresh_aws_tables.refresh(ec2, rds, today=TODAY)
    ec2_stub.assert_no_pending_responses()
    rds_stub.assert_no_pending_responses()

    assert table["ec2"]["families"] == {
        "g5": {"architecture": "x86_64", "accelerator": "nvidia"},
        "inf2": {"architecture": "x86_64", "accelerator": "neuron"},
        "m6i": {"architecture": "x86_64", "accelerator": None},
        "m7g": {"architecture": "arm64", "accelerator": None},
        "t2": {"architecture": "x86_64", "accelerator": None},
    }
    assert table["ec2"]["nvidiaGpus"] == {"g5.12xlarge": 4}
    assert table["ec2"]["taken"] == table["rds"]["taken"] == "2026-12-01"
    assert table["rds"]["majors"] == {
        "16": {"parameterGroupFamily": "postgres16", "versions": ["16.9", "16.10"]},
        "17": {"parameterGroupFamily": "postgres17", "versions": ["17.6"]},
    }
    assert table["rds"]["instanceClasses"] == {
        "db.m8g.large": ["17"],
        "db.t4g.micro": ["16", "17"],
    }


def test_a_refreshed_table_checks_exact_classes_and_versions(
    clients: tuple[Any, Any, Stubber, Stubber], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components import aws_values

    ec2, rds, ec2_stub, rds_stub = clients
    with ec2_stub, rds_stub:
        table = refresh_aws_tables.refresh(ec2, rds, today=TODAY)
    monkeypatch.setattr(aws_values, "tables", lambda: json.loads(refresh_aws_tables.dumps(table)))

    assert aws_values.rds_instance_class_problem("db.t4g.micro", "16.10") is None
    assert aws_values.rds_instance_class_problem("db.m8g.large", "16") == (
        "an instance class RDS offers for PostgreSQL 16 (this one: 17) (the table in "
        "components/aws_tables.json, 2026-12-01; `python -m tooling.refresh_aws_tables` refreshes it)"
    )
    assert aws_values.rds_engine_version_problem("16.10") is None
    assert aws_values.rds_engine_version_problem("16.11") == (
        "a PostgreSQL 16 version RDS offers (e.g. 16.10) (the table in components/aws_tables.json, "
        "2026-12-01; `python -m tooling.refresh_aws_tables` refreshes it); did you mean '16.10'?"
    )


def test_an_api_that_answers_nothing_leaves_the_file_alone(tmp_path: Path) -> None:
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    rds = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(ec2) as ec2_stub, Stubber(rds) as rds_stub:
        ec2_stub.add_response("describe_instance_types", {"InstanceTypes": []}, {})
        rds_stub.add_response(
            "describe_db_engine_versions", ENGINE_VERSIONS, {"Engine": "postgres"}
        )
        rds_stub.add_response(
            "describe_orderable_db_instance_options", ORDERABLE, {"Engine": "postgres"}
        )
        with pytest.raises(RuntimeError, match="answered nothing"):
            refresh_aws_tables.refresh(ec2, rds, today=TODAY)


def test_the_shipped_ec2_table_is_what_the_script_makes_of_its_source() -> None:
    """The shipped EC2 part was made by ec2_table from DescribeInstanceTypes answers recorded in
    moto; made again from the installed moto's recording, every shipped entry is the same."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("moto")
    if spec is None or spec.origin is None:
        pytest.skip("moto is not installed")
    recording = Path(spec.origin).parent / "ec2" / "resources" / "instance_types.json.gz"
    if not recording.exists():
        pytest.skip("this moto ships no recording")
    items = json.loads(gzip.decompress(recording.read_bytes())).values()
    shipped = json.loads(refresh_aws_tables.TABLES_FILE.read_text())["ec2"]
    made = refresh_aws_tables.ec2_table(items, taken=shipped["taken"])

    for part in ("families", "nvidiaGpus"):
        differ = {k: v for k, v in shipped[part].items() if k in made[part] and made[part][k] != v}
        assert differ == {}, part
