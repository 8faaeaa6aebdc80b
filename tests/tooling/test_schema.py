from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import STACKS
from tooling.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def schema() -> dict:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_every_example_stack_file_satisfies_the_schema(schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for file in STACKS.glob("Pulumi.*.yaml"):
        errors = list(validator.iter_errors(yaml.safe_load(file.read_text())))
        assert errors == [], file


def test_the_schema_catches_what_an_editor_should_underline(schema: dict) -> None:
    document = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    document["config"]["mlops:serving"]["endpoints"][0]["replicas"]["mn"] = 1
    document["config"]["mlops:servng"] = {}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert sorted(list(e.absolute_path) for e in errors) == [
        ["config"],
        ["config", "mlops:serving", "endpoints", 0],
    ]
    assert any(e.message.startswith("'mlops:servng' is not valid") for e in errors)
