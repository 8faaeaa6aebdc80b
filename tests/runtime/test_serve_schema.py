"""Schemathesis against the serving OpenAPI (derived from the served model): never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from runtime.prediction_log import PredictionLogWriter
from runtime.serving import create_app
from tests.runtime.test_serve_support import FakeOnline, FakeSource, endpoint_settings, wait_for


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    home = tmp_path_factory.mktemp("schema") / "home"
    serving = endpoint_settings(home, canary={"weight": 30})
    app = create_app(
        serving,
        model_source=FakeSource(aliases={"champion": "1", "challenger": "2"}, onnx=True),
        prediction_log=PredictionLogWriter(serving),
        online_features=FakeOnline(),  # type: ignore[arg-type]
        poll_seconds=0.05,
    )
    with TestClient(app) as client:
        wait_for(lambda: client.get("/ready").json().get("challenger") == "2")
        schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
        # Calls go to the running app in-process.
        schema.app = app
        yield schema


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def no_5xx(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (case.path, case.body, response.text)

        no_5xx()
        checked.append(operation.label)

    assert {"POST /predict", "POST /invocations", "GET /ready", "GET /ping"} <= set(checked)


def test_the_schema_describes_the_served_model(tmp_path: Path) -> None:
    serving = endpoint_settings(tmp_path / "home")
    source = FakeSource()
    source.gate.clear()  # the model loads only once the "before" schema has been read
    with TestClient(
        create_app(
            serving,
            model_source=source,
            prediction_log=PredictionLogWriter(serving),
            poll_seconds=0.05,
        )
    ) as client:
        before = client.get("/openapi.json").json()
        source.gate.set()
        wait_for(lambda: client.get("/ready").status_code == 200)
        after = client.get("/openapi.json").json()

    body = after["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert before["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"] == {
        "schema": {"type": "object"}
    }
    assert body["schema"] == {"$ref": "#/components/schemas/FraudModelRequest"}
    assert "FraudModelRow" in after["components"]["schemas"]
