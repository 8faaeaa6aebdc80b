"""`serve` routes, canary/shadow, hot reload, readiness and request validation (fake model source)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from runtime.errors import ConfigurationError
from runtime.prediction_log import PredictionLogWriter, read_prediction_log
from runtime.serving import create_app
from runtime.serving.batcher import MicroBatcher
from runtime.serving.model import Scored
from runtime.settings import Settings
from tests.runtime.test_serve_support import (
    FEATURES,
    ROW,
    FakeOnline,
    FakeSource,
    endpoint_settings,
    fitted_model,
    run_alone,
    served,
    wait_for,
)


def _client(
    settings: Settings, source: FakeSource, online: FakeOnline | None = None, **options: Any
) -> TestClient:
    app = create_app(
        settings,
        model_source=source,
        prediction_log=PredictionLogWriter(settings, flush_interval=0.2),
        online_features=online or FakeOnline(),  # type: ignore[arg-type]
        poll_seconds=options.pop("poll_seconds", 0.05),
        **options,
    )
    return TestClient(app)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return endpoint_settings(tmp_path / "home")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with _client(settings, FakeSource()) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        yield client


def _log(settings: Settings) -> Any:
    now = datetime.now(UTC)
    return read_prediction_log(
        str(settings.home / "prediction-log"), now - timedelta(hours=1), now + timedelta(hours=1)
    )


# --- routes -----------------------------------------------------------------------------------------


def test_predict_answers_with_labels_probabilities_and_the_version(client: TestClient) -> None:
    expected = fitted_model(seed=1).predict_proba(pd.DataFrame([ROW]))[0]

    response = client.post("/predict", json={"rows": [ROW]}, headers={"x-request-id": "abc"})

    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == "abc"
    assert (body["model"], body["version"], body["variant"]) == ("fraud-model", "1", "champion")
    assert body["classes"] == [0, 1]
    assert body["probabilities"][0] == pytest.approx(list(expected))
    assert body["predictions"] == [int(expected.argmax())]
    assert response.headers["x-model-version"] == "1"
    assert response.headers["x-model-variant"] == "champion"


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        pytest.param("application/json", {"instances": [ROW, ROW]}, id="instances"),
        pytest.param("application/json", {"dataframe_records": [ROW, ROW]}, id="records"),
        pytest.param(
            "application/json",
            {"dataframe_split": {"columns": FEATURES, "data": [list(ROW.values())] * 2}},
            id="split",
        ),
        pytest.param(
            "application/json", {"inputs": {k: [v, v] for k, v in ROW.items()}}, id="inputs"
        ),
        pytest.param(
            "text/csv",
            ",".join(FEATURES) + "\n" + ("\n".join([",".join(map(str, ROW.values()))] * 2)),
            id="csv-header",
        ),
        pytest.param("text/csv", "\n".join([",".join(map(str, ROW.values()))] * 2), id="csv"),
    ],
)
def test_invocations_speaks_the_sagemaker_formats(
    client: TestClient, content_type: str, payload: Any
) -> None:
    single = client.post("/predict", json={"rows": [ROW]}).json()
    content = payload if isinstance(payload, str) else json.dumps(payload)

    response = client.post("/invocations", content=content, headers={"content-type": content_type})

    assert response.status_code == 200, response.text
    assert response.json()["probabilities"] == [single["probabilities"][0]] * 2


def test_invocations_rejects_other_content_types(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b"x", headers={"content-type": "application/x-npy"}
    )
    assert response.status_code == 415


def test_ping_health_ready_metrics_and_docs(client: TestClient) -> None:
    client.post("/predict", json={"rows": [ROW]})

    assert client.get("/ping").status_code == 200
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "ready": True,
        "endpoint": "scorer",
        "model": "fraud-model",
        "champion": "1",
        "backend": "sklearn",
        "provenance": {"champion": {"runId": "run-1", "format": "sklearn (skops)"}},
    }
    metrics = client.get("/metrics").text
    assert 'mlops_predictions_total{endpoint="scorer",variant="champion"} 1.0' in metrics
    assert "mlops_prediction_latency_seconds_bucket" in metrics
    # No page that needs a CDN: the schema is served, the viewers are not.
    assert [client.get(page).status_code for page in ("/docs", "/redoc")] == [404, 404]
    schema = client.get("/openapi.json").json()
    request = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    name = request["schema"]["$ref"].rsplit("/", 1)[1]
    rows = schema["components"]["schemas"][name]["properties"]["rows"]
    row = schema["components"]["schemas"][rows["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(row["properties"]) == {*FEATURES, "card_id"}


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        pytest.param(b"{not json", [("json_invalid", ["body"])], id="malformed-json"),
        pytest.param(
            json.dumps({"rows": [{**ROW, "avg_amount_7d": "lots"}]}).encode(),
            [("float_parsing", ["body", "rows", 0, "avg_amount_7d"])],
            id="wrong-type",
        ),
        pytest.param(
            json.dumps({"rows": [{k: v for k, v in ROW.items() if k != "txn_count_7d"}]}).encode(),
            [("missing", ["body", "rows", 0, "txn_count_7d"])],
            id="missing-feature-no-key",
        ),
        pytest.param(
            json.dumps({"rows": []}).encode(), [("too_short", ["body", "rows"])], id="no-rows"
        ),
        pytest.param(
            json.dumps({"rows": [ROW], "extra": 1}).encode(),
            [("extra_forbidden", ["body", "extra"])],
            id="unknown-key",
        ),
        pytest.param(
            json.dumps({"rows": [{"card_id": 99}]}).encode(),
            [("online_value_missing", ["body", "rows", 0])],
            id="unknown-entity",
        ),
    ],
)
def test_bad_requests_get_field_level_422(
    client: TestClient, content: bytes, errors: list[tuple[str, list[Any]]]
) -> None:
    response = client.post("/predict", content=content)

    assert response.status_code == 422
    assert [(e["type"], e["loc"]) for e in response.json()["detail"]] == errors


def _json_with(literal: str, key: str = "rows") -> str:
    """Two rows; the second's avg_amount_7d is the raw JSON ``literal``."""
    bad = json.dumps({**ROW, "avg_amount_7d": "@"}).replace('"@"', literal)
    return f'{{"{key}": [{json.dumps(ROW)}, {bad}]}}'


def _csv_with(cell: str) -> str:
    """Header and two rows; the second's avg_amount_7d cell is ``cell``."""
    line = [str(ROW[n]) for n in FEATURES]
    bad = [cell if n == "avg_amount_7d" else str(ROW[n]) for n in FEATURES]
    return "\n".join([",".join(FEATURES), ",".join(line), ",".join(bad)])


_NON_FINITE = [
    pytest.param("/predict", "application/json", _json_with("NaN"), id="json-nan"),
    pytest.param("/predict", "application/json", _json_with("-Infinity"), id="json-infinity"),
    pytest.param("/predict", "application/json", _json_with("1e309"), id="json-overflow"),
    pytest.param("/predict", "application/json", _json_with("null"), id="json-null"),
    pytest.param(
        "/invocations", "application/json", _json_with("NaN", "instances"), id="sagemaker-nan"
    ),
    pytest.param("/invocations", "text/csv", _csv_with("nan"), id="csv-nan"),
    pytest.param("/invocations", "text/csv", _csv_with("inf"), id="csv-inf"),
    pytest.param("/invocations", "text/csv", _csv_with(""), id="csv-empty-cell"),
]


@pytest.mark.parametrize(("route", "content_type", "body"), _NON_FINITE)
def test_non_finite_values_are_a_422_naming_row_and_field(
    client: TestClient, settings: Settings, route: str, content_type: str, body: str
) -> None:
    response = client.post(route, content=body, headers={"content-type": content_type})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "avg_amount_7d"]
    assert _log(settings).empty


@pytest.mark.parametrize(("route", "content_type", "body"), _NON_FINITE)
def test_a_nullable_feature_takes_non_finite_values_as_missing(
    settings: Settings, route: str, content_type: str, body: str
) -> None:
    with _client(settings, FakeSource(nullable=("avg_amount_7d",))) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        response = client.post(route, content=body, headers={"content-type": content_type})
    wait_for(lambda: len(_log(settings)) == 2)

    assert response.status_code == 200, response.text
    assert list(_log(settings)["avg_amount_7d"].isna()) == [False, True]


def test_finite_extremes_are_numbers(client: TestClient) -> None:
    response = client.post(
        "/predict", content=_json_with("1e308"), headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_predict_takes_json_only(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/predict", content=json.dumps({"rows": [ROW]}), headers={"content-type": content_type}
    )

    assert response.status_code == 415
    assert response.json()["detail"] == (
        f"content type {content_type.split(';')[0]!r} is not supported: send application/json"
    )


def test_missing_features_are_looked_up_online_by_entity_key(settings: Settings) -> None:
    online = FakeOnline()
    with _client(settings, FakeSource(), online) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        inline = client.post("/predict", json={"rows": [ROW]}).json()

        looked_up = client.post(
            "/predict", json={"rows": [{"card_id": 3}, {**ROW, "card_id": 4}]}
        ).json()

    assert looked_up["probabilities"] == [inline["probabilities"][0]] * 2
    # Only the row that left features out was looked up.
    assert online.calls == [[{"card_id": 3}]]


# --- readiness and loading ------------------------------------------------------------------------


def test_not_ready_until_the_champion_is_loaded(settings: Settings) -> None:
    source = FakeSource()
    source.gate.clear()
    with _client(settings, source) as client:
        assert client.get("/ready").status_code == 503
        assert client.get("/ping").status_code == 503
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"rows": [ROW]}).status_code == 503

        source.gate.set()
        wait_for(lambda: client.get("/ready").status_code == 200)
        assert client.post("/predict", json={"rows": [ROW]}).status_code == 200


def test_a_model_that_cannot_load_leaves_the_endpoint_unready_not_crashed(
    settings: Settings,
) -> None:
    source = FakeSource(failing={"1"})
    with _client(settings, source) as client:
        wait_for(lambda: source.loads == ["1"])
        wait_for(lambda: "failed to load" in client.get("/ready").json()["reason"])
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
        # A fixed version under the alias is picked up without a restart.
        source.aliases["champion"] = "2"
        wait_for(lambda: client.get("/ready").status_code == 200)


def test_no_endpoint_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MLOPS_ENDPOINT"):
        create_app(Settings(home=tmp_path))


def test_alias_change_is_picked_up_without_restart(settings: Settings) -> None:
    source = FakeSource()
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        assert client.post("/predict", json={"rows": [ROW]}).json()["version"] == "1"

        source.aliases["champion"] = "2"

        wait_for(lambda: client.post("/predict", json={"rows": [ROW]}).json()["version"] == "2")
        assert client.get("/ready").json()["champion"] == "2"


# --- canary and shadow ------------------------------------------------------------------------------


def test_canary_sends_its_share_to_the_challenger(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home", canary={"weight": 20})
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ready").json().get("challenger") == "2")
        variants = [
            client.post("/predict", json={"rows": [ROW]}).json()["variant"] for _ in range(2000)
        ]
        again = {
            client.post("/predict", json={"rows": [ROW]}, headers={"x-request-id": "r-7"}).json()[
                "variant"
            ]
            for _ in range(5)
        }

    share = variants.count("challenger") / len(variants)
    # Binomial(2000, 0.2): three standard deviations are about 0.027.
    assert 0.17 <= share <= 0.23
    assert len(again) == 1
    log = _log(settings)
    assert set(log.groupby("variant")["model_version"].unique().map(tuple)) == {("1",), ("2",)}


def test_shadow_scores_both_and_answers_with_the_champion(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home", shadow=True)
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ready").json().get("challenger") == "2")
        answers = [client.post("/predict", json={"rows": [ROW]}).json() for _ in range(20)]

    assert {(a["variant"], a["version"]) for a in answers} == {("champion", "1")}
    log = _log(settings)
    assert len(log) == 40
    by_request = log.groupby("request_id")
    assert set(by_request.size()) == {2}
    shadow = log[log["shadow"]]
    assert set(shadow["variant"]) == {"challenger"} and set(shadow["model_version"]) == {"2"}
    assert set(log[~log["shadow"]]["model_version"]) == {"1"}


def test_invocations_answer_csv_when_the_caller_accepts_only_csv(client: TestClient) -> None:
    line = ",".join(str(ROW[name]) for name in FEATURES)
    csv_in = {"content-type": "text/csv"}
    as_csv = client.post(
        "/invocations", content=f"{line}\n{line}\n", headers=csv_in | {"accept": "text/csv"}
    )
    either = client.post(
        "/invocations", content=line, headers=csv_in | {"accept": "application/json, text/csv"}
    )
    refused = client.post(
        "/invocations", content=line, headers=csv_in | {"accept": "application/xml"}
    )

    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.splitlines()
    assert len(lines) == 2 and all(len(line.split(",")) == 3 for line in lines)
    assert either.headers["content-type"] == "application/json"
    assert refused.status_code == 406 and "application/json or text/csv" in refused.json()["detail"]


# --- one alias per process (a SageMaker variant) -----------------------------------------------------


def _published(settings: Settings, metric: str) -> list[dict[str, Any]]:
    lines = (settings.home / "metrics" / "metrics.jsonl").read_text().splitlines()
    return [p for p in map(json.loads, lines) if p["metric"] == metric]


def test_a_challenger_variant_serves_the_challenger_and_follows_its_alias(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home").model_copy(update={"serve_alias": "challenger"})
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        ready = client.get("/ready").json()
        first = [client.post("/invocations", json={"rows": [ROW]}).json() for _ in range(5)]
        # Hot reload: the alias moves in the registry, the variant follows without a restart.
        source.aliases["challenger"] = "3"
        wait_for(lambda: client.post("/predict", json={"rows": [ROW]}).json()["version"] == "3")
        moved = client.get("/ready").json()

    assert (ready["variant"], ready["challenger"]) == ("challenger", "2")
    assert "champion" not in ready and "mode" not in ready
    assert moved["challenger"] == "3"
    assert {(a["variant"], a["version"]) for a in first} == {("challenger", "2")}
    assert "1" not in source.loads  # the champion is not this process's business
    log = _log(settings)
    assert set(log["variant"]) == {"challenger"} and not log["shadow"].any()
    assert {p["dimensions"]["Variant"] for p in _published(settings, "Predictions")} == {
        "challenger"
    }


def _answered(client: TestClient) -> tuple[str, str]:
    answer = client.post("/invocations", json={"rows": [ROW]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-model-variant"] == answer.json()["variant"]
    return answer.json()["variant"], answer.json()["version"]


def test_a_challenger_variant_serves_the_champion_until_a_challenger_exists(
    tmp_path: Path,
) -> None:
    # A canary's weighted challenger variant (the process splits nothing: SageMaker does).
    settings = endpoint_settings(tmp_path / "home").model_copy(update={"serve_alias": "challenger"})
    source = FakeSource(aliases={"champion": "1"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        ping = client.get("/ping").json()
        before = [_answered(client) for _ in range(3)]

        source.aliases["challenger"] = "2"
        wait_for(lambda: _answered(client) == ("challenger", "2"))
        with_challenger = [_answered(client) for _ in range(3)]
        assert client.get("/ping").json()["variant"] == "challenger"

        del source.aliases["challenger"]
        wait_for(lambda: _answered(client) == ("champion", "1"))
        after = [_answered(client) for _ in range(3)]
        assert client.get("/ping").status_code == 200

    assert (ping["variant"], ping["champion"]) == ("champion", "1") and "challenger" not in ping
    assert "champion answers meanwhile" in ping["notServed"]["challenger"]
    assert set(before) == set(after) == {("champion", "1")}
    assert set(with_challenger) == {("challenger", "2")}
    # The log and the metrics attribute each answer to the variant that gave it.
    log = _log(settings)
    assert not log["shadow"].any()
    assert set(log.groupby("variant")["model_version"].unique().map(tuple).items()) == {
        ("champion", ("1",)),
        ("challenger", ("2",)),
    }
    assert {p["dimensions"]["Variant"] for p in _published(settings, "Predictions")} == {
        "champion",
        "challenger",
    }


def test_a_challenger_variant_relabels_a_promoted_version_without_loading_it_again(
    tmp_path: Path,
) -> None:
    settings = endpoint_settings(tmp_path / "home").model_copy(update={"serve_alias": "challenger"})
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        assert _answered(client) == ("challenger", "2")
        # Promotion: the champion moves to the challenger's version, the challenger alias goes.
        source.aliases["champion"] = "2"
        del source.aliases["challenger"]
        wait_for(lambda: _answered(client) == ("champion", "2"))

    assert source.loads == ["2"]


def test_a_challenger_variant_is_not_ready_while_neither_alias_points_anywhere(
    tmp_path: Path,
) -> None:
    settings = endpoint_settings(tmp_path / "home").model_copy(update={"serve_alias": "challenger"})
    source = FakeSource(aliases={})
    with _client(settings, source) as client:
        wait_for(lambda: "nor does 'champion'" in client.get("/ping").json().get("reason", ""))
        assert client.get("/ping").status_code == 503
        assert client.post("/invocations", json={"rows": [ROW]}).status_code == 503
        source.aliases["champion"] = "1"
        wait_for(lambda: client.get("/ping").status_code == 200)
        assert _answered(client) == ("champion", "1")


def test_a_shadow_variant_without_a_challenger_answers_but_logs_and_counts_nothing(
    tmp_path: Path,
) -> None:
    settings = endpoint_settings(tmp_path / "home", shadow=True).model_copy(
        update={"serve_alias": "challenger"}
    )
    source = FakeSource(aliases={"champion": "1"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        ping = client.get("/ping").json()
        assert {_answered(client) for _ in range(3)} == {("champion", "1")}
        source.aliases["challenger"] = "2"
        wait_for(lambda: _answered(client) == ("challenger", "2"))

    assert (ping["variant"], ping["mode"]) == ("champion", "shadow")
    # SageMaker discarded the champion's answers; the champion's own variant logged them.
    log = _log(settings)
    assert log["shadow"].all() and set(zip(log["variant"], log["model_version"], strict=True)) == {
        ("challenger", "2")
    }
    assert {p["dimensions"]["Variant"] for p in _published(settings, "Predictions")} == {
        "challenger"
    }


def test_a_pod_with_a_canary_but_no_challenger_loads_the_champion_once(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home", canary={"weight": 50})
    source = FakeSource(aliases={"champion": "1"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        ready = client.get("/ready").json()
        answers = {
            client.post("/predict", json={"rows": [ROW]}).json()["variant"] for _ in range(20)
        }

    # The pod's split sends everything to the champion: no fallback inside the challenger slot.
    assert source.loads == ["1"] and ready["challenger"] is None and answers == {"champion"}


def test_a_shadow_variant_logs_its_rows_as_shadow_and_scores_only_its_alias(
    tmp_path: Path,
) -> None:
    settings = endpoint_settings(tmp_path / "home", shadow=True).model_copy(
        update={"serve_alias": "challenger"}
    )
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        assert client.get("/ready").json()["mode"] == "shadow"
        answers = [client.post("/invocations", json={"rows": [ROW]}).json() for _ in range(4)]

    assert {(a["variant"], a["version"]) for a in answers} == {("challenger", "2")}
    log = _log(settings)
    assert len(log) == 4 and log["shadow"].all() and set(log["variant"]) == {"challenger"}


def test_a_champion_variant_of_a_shadow_endpoint_does_not_score_the_challenger(
    tmp_path: Path,
) -> None:
    settings = endpoint_settings(tmp_path / "home", shadow=True).model_copy(
        update={"serve_alias": "champion"}
    )
    source = FakeSource(aliases={"champion": "1", "challenger": "2"})
    with _client(settings, source) as client:
        wait_for(lambda: client.get("/ping").status_code == 200)
        for _ in range(3):
            client.post("/invocations", json={"rows": [ROW]})

    assert source.loads == ["1"]
    log = _log(settings)
    assert len(log) == 3 and not log["shadow"].any() and set(log["variant"]) == {"champion"}


def test_one_alias_with_a_canary_to_split_is_a_configuration_error(tmp_path: Path) -> None:
    settings = endpoint_settings(tmp_path / "home", canary={"weight": 10}).model_copy(
        update={"serve_alias": "champion"}
    )
    with pytest.raises(ConfigurationError, match="variant weights"):
        create_app(settings)


# --- prediction log and metrics ---------------------------------------------------------------------


def test_every_answered_row_is_logged_and_counted(settings: Settings) -> None:
    with _client(settings, FakeSource()) as client:
        wait_for(lambda: client.get("/ready").status_code == 200)
        ids = [client.post("/predict", json={"rows": [ROW]}).json()["request_id"] for _ in range(5)]
        client.post("/predict", json={"rows": [ROW, {**ROW, "share_foreign_7d": 0.9}]})
    # Leaving the client ran the shutdown: the log and the metrics are flushed.

    log = _log(settings)
    assert len(log) == 7
    assert set(ids) < set(log["request_id"])
    assert list(log.columns[:10]) == [
        "request_id",
        "timestamp",
        "endpoint",
        "model",
        "model_version",
        "variant",
        "shadow",
        "prediction",
        "score",
        "latency_ms",
    ]
    assert log["share_foreign_7d"].iloc[-1] == 0.9
    assert (log["latency_ms"] > 0).all() and log["score"].between(0, 1).all()
    lines = (settings.home / "metrics" / "metrics.jsonl").read_text().splitlines()
    published = [json.loads(line) for line in lines]
    counts = [p for p in published if p["metric"] == "Predictions"]
    assert counts == [
        {
            "namespace": "MLOps/fraud",
            "metric": "Predictions",
            "unit": "Count",
            "value": 6.0,
            "dimensions": {"Endpoint": "scorer", "Variant": "champion"},
            "timestamp": counts[0]["timestamp"],
        }
    ]
    assert len([p for p in published if p["metric"] == "PredictionLatency"]) == 6


# --- micro-batching ---------------------------------------------------------------------------------


def test_concurrent_requests_are_scored_in_batches(settings: Settings) -> None:
    source = FakeSource(onnx=True)
    app = create_app(
        settings,
        model_source=source,
        prediction_log=PredictionLogWriter(settings),
        online_features=FakeOnline(),  # type: ignore[arg-type]
        poll_seconds=0.05,
    )

    async def run() -> tuple[list[dict[str, Any]], Any]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
                for _ in range(1500):
                    if (await http.get("/ready")).status_code == 200:
                        break
                    await asyncio.sleep(0.02)
                answers = await asyncio.gather(
                    *(http.post("/predict", json={"rows": [ROW]}) for _ in range(64))
                )
                prepared = app.state.serving.prepared["champion"]
                return [a.json() for a in answers], prepared

    answers, prepared = run_alone(run())

    assert {a["version"] for a in answers} == {"1"}
    assert len({json.dumps(a["probabilities"]) for a in answers}) == 1
    assert prepared.model.backend == "onnx"
    assert prepared.batcher.rows == 64
    assert prepared.batcher.batches < 64


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    def predict(rows: Any) -> Scored:
        if any(row["x"] < 0 for row in rows):
            raise ValueError("negative")
        return Scored([row["x"] for row in rows])

    async def run() -> list[Any]:
        batcher = MicroBatcher(predict)
        results = await asyncio.gather(
            batcher.submit([{"x": 1}]),
            batcher.submit([{"x": -1}]),
            batcher.submit([{"x": 2}, {"x": 3}]),
            return_exceptions=True,
        )
        await batcher.close()
        return results

    first, failed, third = run_alone(run())

    assert first.predictions == [1] and third.predictions == [2, 3]
    assert isinstance(failed, ValueError)


def test_onnx_fast_path_matches_sklearn() -> None:
    fast, reference = served("1", onnx=True), served("1")
    rows = [ROW, {**ROW, "share_foreign_7d": 0.95}, {**ROW, "avg_amount_7d": 900.0}]

    assert fast.backend == "onnx"
    assert fast.predict(rows).predictions == reference.predict(rows).predictions
    assert np.allclose(
        fast.predict(rows).probabilities, reference.predict(rows).probabilities, atol=1e-5
    )
