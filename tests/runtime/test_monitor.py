"""`monitor` on the embedded default: drift metrics, the HTML report, and the canary guard.

The registry holds versions whose runs carry the training reference the way `train` logs it; the
prediction log is written with the serving side's own writer; SNS is a moto server.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime import registry
from runtime.cli import app
from runtime.demo_data import demo_settings
from runtime.metrics import (
    FEATURE_DRIFT,
    MAX_FEATURE_DRIFT,
    MODEL_AGE,
    PREDICTION_DRIFT,
    PREDICTION_ERRORS,
    PREDICTIONS,
    VARIANT_CHALLENGER,
    VARIANT_CHAMPION,
    Dimension,
)
from runtime.monitor import CANARY_ROLLED_BACK_TAG, VariantHealth, canary_breaches, monitor
from runtime.prediction_log import PredictionLogWriter, PredictionRecord
from runtime.publish import METRICS_FILE, publisher
from runtime.report import format_pvalue
from runtime.settings import Settings
from runtime.spec import EndpointSpec
from runtime.train import REFERENCE_ARTIFACT
from tests.runtime.conftest import REGION, Team, use_env

MODEL = "fraud-model"
ENDPOINT = "scorer"
FEATURES = ["txn_count_7d", "avg_amount_7d", "max_amount_7d", "share_foreign_7d"]
DRIFTED = {"avg_amount_7d", "share_foreign_7d"}


def features(rng: np.random.Generator, rows: int, *, drifted: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "txn_count_7d": rng.poisson(4, rows).astype(float),
            "avg_amount_7d": rng.lognormal(3.6, 0.5, rows),
            "max_amount_7d": rng.lognormal(4.5, 0.5, rows),
            "share_foreign_7d": rng.beta(2, 8, rows),
        }
    )
    if drifted:
        frame["avg_amount_7d"] *= 3
        frame["share_foreign_7d"] = np.clip(frame["share_foreign_7d"] + 0.4, 0, 1)
    return frame


def score(frame: pd.DataFrame) -> np.ndarray:
    return 1 / (1 + np.exp(-(frame["share_foreign_7d"] * 6 - 2)))


def register_version(settings: Settings, rng: np.random.Generator, model: str = MODEL) -> str:
    """A version whose run carries the training reference (features, prediction, score, label)."""
    client = registry.client(settings)
    reference = features(rng, 2000)
    reference["score"] = score(reference)
    reference["prediction"] = (reference["score"] > 0.5).astype(int)
    reference["is_fraud"] = (rng.uniform(size=len(reference)) < reference["score"]).astype(int)
    experiment = registry.experiment_id(settings, client, model)
    with mlflow.start_run(experiment_id=experiment) as run, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference.to_parquet(path)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(
        model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    return str(version.version)


def log_traffic(
    settings: Settings,
    rng: np.random.Generator,
    *,
    variant: str,
    version: str,
    requests: int,
    latency_ms: float,
    drifted: bool = False,
    at: datetime | None = None,
    model: str = MODEL,
) -> list[str]:
    """Write ``requests`` single-row predictions with the serving side's writer; their ids."""
    frame = features(rng, requests, drifted=drifted)
    scores = score(frame)
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    ids = [uuid.uuid4().hex for _ in range(requests)]
    writer = PredictionLogWriter(settings)
    for index, row in enumerate(frame.to_dict("records")):
        writer.record(
            PredictionRecord(
                request_id=ids[index],
                endpoint=ENDPOINT,
                model=model,
                model_version=version,
                variant=variant,
                features=row,
                prediction=int(scores[index] > 0.5),
                score=float(scores[index]),
                latency_ms=float(latency_ms * rng.uniform(0.8, 1.0)),
                timestamp=at + timedelta(milliseconds=index),
            )
        )
    writer.close()
    return ids


def serving_counts(settings: Settings, variant: str, answered: int, failed: int) -> None:
    """What serving's telemetry publishes per flush: requests and errors by variant."""
    dims = {Dimension.endpoint: ENDPOINT, Dimension.variant: variant}
    with publisher(settings) as sink:
        sink.publish(PREDICTIONS, answered, dims)
        sink.publish(PREDICTION_ERRORS, failed, dims)


def published(settings: Settings) -> list[dict]:
    path = settings.home / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def home(tmp_path: Path, mlflow_template: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    return home


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def plain(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The fraud team's endpoint, no canary; a champion with its reference."""
    settings = demo_settings("fraud", home=home, endpoint=EndpointSpec(name=ENDPOINT, model=MODEL))
    use_env(monkeypatch, settings)
    return settings


@pytest.fixture
def topic(moto_endpoint: str) -> Iterator[tuple[str, str]]:
    """An SNS topic with an SQS queue subscribed (to read what was sent): (topic ARN, queue URL)."""
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=arn,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    yield arn, queue
    sns.delete_topic(TopicArn=arn)
    sqs.delete_queue(QueueUrl=queue)


@pytest.fixture
def canary(
    home: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, topic: tuple[str, str]
) -> Settings:
    """An endpoint with a 20 % canary and a tight SLO, alerts to the moto topic."""
    settings = demo_settings(
        "fraud",
        home=home,
        aws_region=REGION,
        aws_endpoint_url=moto_endpoint,
        alert_topic_arn=topic[0],
        endpoint=EndpointSpec.model_validate(
            {
                "name": ENDPOINT,
                "model": MODEL,
                "canary": {"weight": 20},
                "slo": {"p99LatencyMs": 50, "maxErrorRate": 0.05},
            }
        ),
    )
    use_env(monkeypatch, settings)
    return settings


def champion_and_challenger(
    settings: Settings, rng: np.random.Generator, model: str = MODEL
) -> tuple[str, str]:
    client = registry.client(settings)
    champion = register_version(settings, rng, model)
    challenger = register_version(settings, rng, model)
    client.set_registered_model_alias(model, registry.CHAMPION, champion)
    client.set_registered_model_alias(model, registry.CHALLENGER, challenger)
    return champion, challenger


def messages(queue: str, moto_endpoint: str) -> list[dict]:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_drift_metrics_are_published_with_catalogue_names_and_dimensions(
    plain: Settings, rng: np.random.Generator
) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    log_traffic(plain, rng, variant=VARIANT_CHAMPION, version=version, requests=600, latency_ms=5)
    log_traffic(
        plain, rng, variant=VARIANT_CHAMPION, version=version, requests=900, latency_ms=5,
        drifted=True,
    )  # fmt: skip

    result = monitor(plain, ENDPOINT)

    assert result.rows == 1500
    assert set(result.drifted_features) == DRIFTED
    metrics = published(plain)
    feature_psi = {
        m["dimensions"]["Feature"]: m["value"] for m in metrics if m["metric"] == FEATURE_DRIFT.name
    }
    assert set(feature_psi) == set(FEATURES)
    assert {f for f, v in feature_psi.items() if v >= 0.2} == DRIFTED
    assert all(
        m["dimensions"] == {"Endpoint": ENDPOINT, "Feature": m["dimensions"]["Feature"]}
        for m in metrics
        if m["metric"] == FEATURE_DRIFT.name
    )
    (largest,) = [m for m in metrics if m["metric"] == MAX_FEATURE_DRIFT.name]
    assert largest["dimensions"] == {"Endpoint": ENDPOINT}
    assert largest["value"] == pytest.approx(max(feature_psi.values()))
    (prediction,) = [m for m in metrics if m["metric"] == PREDICTION_DRIFT.name]
    assert prediction["dimensions"] == {"Endpoint": ENDPOINT}
    assert prediction["value"] > 0.2  # the score follows share_foreign_7d
    (age,) = [m for m in metrics if m["metric"] == MODEL_AGE.name]
    assert age["dimensions"] == {"Pipeline": "fraud-model"} and 0 <= age["value"] < 600
    assert age["unit"] == "Seconds"
    assert all(m["namespace"] == "MLOps/fraud" for m in metrics)


def test_html_report_shows_every_feature_and_flags_the_drifted_ones(
    plain: Settings, rng: np.random.Generator
) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    log_traffic(
        plain, rng, variant=VARIANT_CHAMPION, version=version, requests=500, latency_ms=5,
        drifted=True,
    )  # fmt: skip

    result = monitor(plain, ENDPOINT)

    assert result.report is not None and result.report.exists()
    assert result.report.parent == plain.home.resolve() / "reports" / ENDPOINT
    page = result.report.read_text()
    assert page.count("data:image/png;base64,") == len(FEATURES) + 1  # + the predictions
    for name in FEATURES:
        assert f"<td>{name}</td>" in page
    for name in DRIFTED:
        assert f"{name}: PSI" in page and "(drift)" in page.split(f"{name}: PSI", 1)[1][:40]
    assert "txn_count_7d: PSI" in page and "(ok)" in page.split("txn_count_7d: PSI", 1)[1][:40]
    # A reader learns what the colours mean, what was served and what to do next.
    assert all(f">{label}</span> PSI" in page for label in ("ok", "watch", "drift"))
    shifted = page.split("<td>avg_amount_7d</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td class='num'>&lt;1e-16</td>" in shifted
    assert "Newest registered version" not in page
    assert f"<tr><td>champion</td><td>{version}</td><td class='num'>500</td>" in page
    assert "retrain on recent data with `mlops-runtime train --pipeline fraud-model`" in page


def test_a_canary_is_measured_apart_from_the_champion(
    canary: Settings, rng: np.random.Generator
) -> None:
    champion, challenger = champion_and_challenger(canary, rng)
    log_traffic(canary, rng, variant=VARIANT_CHAMPION, version=champion, requests=200, latency_ms=5)
    log_traffic(
        canary, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=150, latency_ms=5,
        drifted=True,
    )  # fmt: skip

    result = monitor(canary, ENDPOINT)

    assert result.rows == 200 and result.drifted_features == []
    assert result.challenger is not None
    assert (result.challenger.version, result.challenger.rows) == (challenger, 150)
    assert {c.column for c in result.challenger.features if c.drifted()} == DRIFTED
    assert [(s.variant, s.version, s.rows) for s in result.served] == [
        (VARIANT_CHAMPION, champion, 200),
        (VARIANT_CHALLENGER, challenger, 150),
    ]
    assert result.report is not None
    assert f"Challenger (version {challenger})" in result.report.read_text()


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0, "<1e-16"), (3e-20, "<1e-16"), (1e-16, "1e-16"), (0.04567, "0.0457"), (1.0, "1")],
)
def test_p_values_below_double_precision_are_not_zero(value: float, shown: str) -> None:
    assert format_pvalue(value) == shown


def test_too_little_traffic_publishes_no_drift_but_still_the_model_age(
    plain: Settings, rng: np.random.Generator
) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    log_traffic(plain, rng, variant=VARIANT_CHAMPION, version=version, requests=5, latency_ms=5)
    result = monitor(plain, ENDPOINT)
    assert not result.measured and result.features == []
    assert [m["metric"] for m in published(plain)] == [MODEL_AGE.name]
    assert result.report is not None and "Too little traffic" in result.report.read_text()


def test_records_outside_the_window_are_ignored(plain: Settings, rng: np.random.Generator) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    old = datetime.now(UTC) - timedelta(hours=3)
    log_traffic(
        plain, rng, variant=VARIANT_CHAMPION, version=version, requests=300, latency_ms=5, at=old
    )
    log_traffic(plain, rng, variant=VARIANT_CHAMPION, version=version, requests=200, latency_ms=5)
    assert monitor(plain, ENDPOINT, report=False).rows == 200
    assert monitor(plain, ENDPOINT, window=timedelta(hours=4), report=False).rows == 500


def test_quality_where_labels_have_arrived(
    plain: Settings, rng: np.random.Generator, tmp_path: Path
) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    ids = log_traffic(
        plain, rng, variant=VARIANT_CHAMPION, version=version, requests=200, latency_ms=5
    )
    labels = tmp_path / "labels.parquet"
    # Labels for half the requests so far; every one says "fraud".
    pd.DataFrame({"request_id": ids[:100], "is_fraud": 1}).to_parquet(labels)
    result = monitor(plain, ENDPOINT, labels=str(labels), report=False)
    assert result.labelled_rows == 100
    log = pd.read_parquet(next((plain.home / "prediction-log").rglob("*.parquet")))
    predicted = log.set_index("request_id").loc[ids[:100], "prediction"].map(json.loads)
    assert result.quality["accuracy"] == pytest.approx(float((predicted == 1).mean()))


def test_a_continuously_trained_model_keeps_each_window_as_trigger_evidence(
    home: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    from runtime import continuous
    from runtime.spec import ContinuousTraining

    base = demo_settings("fraud", home=home, endpoint=EndpointSpec(name=ENDPOINT, model=MODEL))
    ct = ContinuousTraining.model_validate(
        {
            "triggers": {"drift": {"feature": "avg_amount_7d"}, "decay": {}},
            "liveLabels": "live/labels.parquet",
        }
    )
    pipeline = base.pipelines[0].model_copy(update={"continuous_training": ct})
    settings = base.model_copy(update={"pipelines": [pipeline]})
    use_env(monkeypatch, settings)
    version = register_version(settings, rng)
    registry.client(settings).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    log_traffic(
        settings, rng, variant=VARIANT_CHAMPION, version=version, requests=300, latency_ms=5,
        drifted=True,
    )  # fmt: skip

    # No labels have arrived yet: no quality, and no failed monitor either.
    first = monitor(settings, ENDPOINT, report=False)
    ids = log_traffic(
        settings, rng, variant=VARIANT_CHAMPION, version=version, requests=200, latency_ms=5
    )
    live = home / "offline" / "live" / "labels.parquet"
    live.parent.mkdir(parents=True)
    pd.DataFrame({"request_id": ids, "is_fraud": [i % 2 for i in range(len(ids))]}).to_parquet(live)
    second = monitor(settings, ENDPOINT, report=False)

    state = continuous.read_state(registry.client(settings), MODEL)
    windows = state.windows[ENDPOINT]
    assert first.quality == {} and second.labelled_rows == 200
    assert [(w.champion, w.rows, w.labelled) for w in windows] == [
        (version, 300, 0),
        (version, 500, 200),
    ]
    assert windows[0].max_psi == pytest.approx(first.max_feature_psi, abs=1e-6)
    assert set(windows[0].psi) == {"avg_amount_7d"} and windows[0].psi["avg_amount_7d"] > 0.2
    assert set(windows[1].quality) == {"accuracy", "f1", "roc_auc"}


@pytest.mark.moto
@pytest.mark.parametrize(
    ("latency_ms", "failed"),
    [
        pytest.param(200.0, 0, id="latency"),
        pytest.param(5.0, 20, id="error-rate"),
    ],
)
def test_canary_guard_rolls_the_challenger_back_and_notifies(
    canary: Settings,
    rng: np.random.Generator,
    topic: tuple[str, str],
    moto_endpoint: str,
    latency_ms: float,
    failed: int,
) -> None:
    champion, challenger = champion_and_challenger(canary, rng)
    log_traffic(canary, rng, variant=VARIANT_CHAMPION, version=champion, requests=160, latency_ms=8)
    log_traffic(
        canary, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=40,
        latency_ms=latency_ms,
    )  # fmt: skip
    serving_counts(canary, VARIANT_CHAMPION, 160, 0)
    serving_counts(canary, VARIANT_CHALLENGER, 40, failed)

    result = monitor(canary, ENDPOINT, report=False)

    verdict = result.canary
    assert verdict is not None and verdict.judged and verdict.rolled_back and verdict.notified
    client = registry.client(canary)
    # Serving routes the canary share to the champion's version; the champion is untouched.
    assert str(registry.alias_version(client, MODEL, registry.CHALLENGER).version) == champion
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == champion
    assert CANARY_ROLLED_BACK_TAG in client.get_model_version(MODEL, challenger).tags
    (message,) = messages(topic[1], moto_endpoint)
    assert message["event"] == "canary-rollback"
    assert message["challenger_version"] == challenger
    assert message["champion_version"] == champion
    assert ("latency" if failed == 0 else "error rate") in message["reasons"][0]


@pytest.mark.moto
def test_canary_within_slo_is_left_alone(
    canary: Settings, rng: np.random.Generator, topic: tuple[str, str], moto_endpoint: str
) -> None:
    champion, challenger = champion_and_challenger(canary, rng)
    log_traffic(canary, rng, variant=VARIANT_CHAMPION, version=champion, requests=160, latency_ms=8)
    log_traffic(
        canary, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=40, latency_ms=30
    )
    serving_counts(canary, VARIANT_CHAMPION, 160, 1)
    serving_counts(canary, VARIANT_CHALLENGER, 40, 1)  # 2.4 % < 5 %

    verdict = monitor(canary, ENDPOINT, report=False).canary

    assert verdict is not None and verdict.judged and verdict.breaches == []
    assert not verdict.rolled_back
    client = registry.client(canary)
    assert str(registry.alias_version(client, MODEL, registry.CHALLENGER).version) == challenger
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == champion
    assert messages(topic[1], moto_endpoint) == []


@pytest.mark.moto
def test_slow_challenger_is_not_judged_on_a_handful_of_requests(
    canary: Settings, rng: np.random.Generator, topic: tuple[str, str], moto_endpoint: str
) -> None:
    champion, challenger = champion_and_challenger(canary, rng)
    log_traffic(canary, rng, variant=VARIANT_CHAMPION, version=champion, requests=100, latency_ms=8)
    log_traffic(
        canary, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=5, latency_ms=900
    )
    verdict = monitor(canary, ENDPOINT, report=False).canary
    assert verdict is not None and not verdict.judged and not verdict.rolled_back
    client = registry.client(canary)
    assert str(registry.alias_version(client, MODEL, registry.CHALLENGER).version) == challenger
    assert messages(topic[1], moto_endpoint) == []


def test_cli_prints_the_outcome_and_the_report(plain: Settings, rng: np.random.Generator) -> None:
    version = register_version(plain, rng)
    registry.client(plain).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    log_traffic(
        plain, rng, variant=VARIANT_CHAMPION, version=version, requests=300, latency_ms=5,
        drifted=True,
    )  # fmt: skip
    result = CliRunner().invoke(app, ["monitor", "--endpoint", ENDPOINT])
    assert result.exit_code == 0, result.output
    assert "drifted (PSI >= 0.2): avg_amount_7d, share_foreign_7d" in result.output
    assert "drift report: " in result.output
    report = Path(result.output.split("drift report: ", 1)[1].split()[0])
    assert report.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--endpoint", "other"], "is not the endpoint this job", id="wrong-endpoint"),
        pytest.param(["--endpoint", ENDPOINT, "--window", "soon"], "--window 'soon'", id="window"),
        pytest.param(["--endpoint", ENDPOINT], "has no 'champion' version", id="no-champion"),
    ],
)
def test_cli_reports_user_errors_without_a_traceback(
    plain: Settings, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["monitor", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.moto
@pytest.mark.postgres
def test_canary_guard_on_production_backends(
    production: Team, topic: tuple[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the cluster: PostgreSQL registry, S3 prediction log and artifacts, error counts read
    back from CloudWatch (what serving published), SNS."""
    bucket = str(production.settings.artifact_uri).removeprefix("s3://").split("/")[0]
    model = production.pipeline.model_name
    settings = production.settings.model_copy(
        update={
            "prediction_log_uri": f"s3://{bucket}/prediction-log/{ENDPOINT}",
            "alert_topic_arn": topic[0],
            "endpoint": EndpointSpec.model_validate(
                {"name": ENDPOINT, "model": model, "canary": {"weight": 20},
                 "slo": {"p99LatencyMs": 50, "maxErrorRate": 0.05}}
            ),
        }
    )  # fmt: skip
    use_env(monkeypatch, settings)
    rng = np.random.default_rng(5)
    champion, challenger = champion_and_challenger(settings, rng, model)
    log_traffic(
        settings, rng, variant=VARIANT_CHAMPION, version=champion, requests=100, latency_ms=8,
        model=model,
    )  # fmt: skip
    log_traffic(
        settings, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=30, latency_ms=9,
        model=model,
    )  # fmt: skip
    serving_counts(settings, VARIANT_CHAMPION, 100, 0)
    serving_counts(settings, VARIANT_CHALLENGER, 30, 6)  # 16.7 % > 5 %

    result = monitor(settings, ENDPOINT, report=False)

    assert result.rows == 100 and result.challenger is not None
    assert result.challenger.rows == 30
    verdict = result.canary
    assert verdict is not None and verdict.challenger.errors == 6 and verdict.rolled_back
    client = registry.client(settings)
    assert str(registry.alias_version(client, model, registry.CHALLENGER).version) == champion
    assert str(registry.alias_version(client, model, registry.CHAMPION).version) == champion
    (message,) = messages(topic[1], moto_endpoint)
    assert "error rate" in message["reasons"][0]
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name=REGION)
    names = {
        m["MetricName"]
        for m in cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"]
    }
    assert {FEATURE_DRIFT.name, MAX_FEATURE_DRIFT.name, MODEL_AGE.name} <= names


# --- automatic promotion (continuous training) --------------------------------------------------


def promoting(settings: Settings, monkeypatch: pytest.MonkeyPatch, **promotion: Any) -> Settings:
    """``settings`` with the fraud pipeline promoting its healthy canary automatically."""
    from runtime.spec import ContinuousTraining

    ct = ContinuousTraining.model_validate(
        {
            "triggers": {"drift": {}},
            "promotion": {"observe": "1m", "minRequests": 30, **promotion.pop("rule", {})},
            **promotion,
        }
    )
    pipeline = settings.pipelines[0].model_copy(update={"continuous_training": ct})
    changed = settings.model_copy(update={"pipelines": [pipeline]})
    use_env(monkeypatch, changed)
    return changed


def canary_traffic(
    settings: Settings, rng: np.random.Generator, *, challenger_latency_ms: float = 9
) -> tuple[str, str, list[str], list[str]]:
    """A champion and a freshly registered challenger, each with traffic since it was registered."""
    champion, challenger = champion_and_challenger(settings, rng)
    now = datetime.now(UTC)
    theirs = log_traffic(
        settings, rng, variant=VARIANT_CHAMPION, version=champion, requests=160, latency_ms=8,
        at=now,
    )  # fmt: skip
    mine = log_traffic(
        settings, rng, variant=VARIANT_CHALLENGER, version=challenger, requests=40,
        latency_ms=challenger_latency_ms, at=now,
    )  # fmt: skip
    return champion, challenger, theirs, mine


def later() -> datetime:
    """A monitor run 90 s from now: the canary has been observed for its minute."""
    return datetime.now(UTC) + timedelta(seconds=90)


@pytest.mark.moto
def test_a_healthy_canary_promotes_itself_after_its_observation_time(
    canary: Settings, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import events
    from runtime.monitor import PROMOTED_BY_TAG

    settings = promoting(canary, monkeypatch)
    champion, challenger, _, _ = canary_traffic(settings, rng)

    result = monitor(settings, ENDPOINT, end=later(), report=False)

    verdict = result.canary
    assert verdict is not None and verdict.promoted and not verdict.rolled_back
    assert verdict.summary.startswith(f"promoted version {challenger}: 40 requests over ")
    client = registry.client(settings)
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == challenger
    assert registry.alias_version(client, MODEL, registry.CHALLENGER) is None
    tags = client.get_model_version(MODEL, challenger).tags
    assert tags[registry.PREVIOUS_CHAMPION_TAG] == champion  # the same safe promote as the CLI
    assert "no live labels configured" in tags[PROMOTED_BY_TAG]
    # The monitor saw the canary answer (its first window of it), then promoted it.
    started, event = events.read(settings, MODEL)
    assert (started.kind, started.version) == ("canary-started", challenger)
    assert "mlops.ct.canary_started" in tags
    assert (event.kind, event.version, event.by) == (
        "promoted",
        challenger,
        "mlops (monitor of scorer)",
    )


@pytest.mark.moto
@pytest.mark.parametrize(
    ("rule", "waits_for"),
    [
        pytest.param(
            {"minRequests": 500}, "40 of 500 challenger requests on its canary", id="requests"
        ),
        pytest.param({"observe": "6h"}, r"on its canary for 9\ds of 6h", id="observation-time"),
    ],
)
def test_too_little_evidence_means_wait_never_promote(
    canary: Settings,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    rule: dict[str, Any],
    waits_for: str,
) -> None:
    settings = promoting(canary, monkeypatch, rule=rule)
    champion, challenger, _, _ = canary_traffic(settings, rng)

    verdict = monitor(settings, ENDPOINT, end=later(), report=False).canary

    assert verdict is not None and not verdict.promoted and not verdict.rolled_back
    assert re.fullmatch(f"promotion waits: {waits_for}", verdict.summary)
    client = registry.client(settings)
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == champion
    assert str(registry.alias_version(client, MODEL, registry.CHALLENGER).version) == challenger


@pytest.mark.moto
def test_live_quality_worse_than_the_champion_rolls_back_and_quarantines(
    canary: Settings, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import continuous, events

    settings = promoting(
        canary, monkeypatch, liveLabels="live/labels.parquet", rule={"minLabelledRows": 30}
    )
    champion, challenger, theirs, mine = canary_traffic(settings, rng)
    log = pd.concat(
        pd.read_parquet(path) for path in (settings.home / "prediction-log").rglob("*.parquet")
    )
    predicted = log.set_index("request_id")["prediction"].map(json.loads)
    labels = settings.home / "offline" / "live" / "labels.parquet"
    labels.parent.mkdir(parents=True)
    # The champion is right about every request, the challenger wrong about every one.
    pd.DataFrame(
        {
            "request_id": [*theirs, *mine],
            "is_fraud": [*predicted.loc[theirs], *(1 - predicted.loc[mine])],
        }
    ).to_parquet(labels)

    verdict = monitor(settings, ENDPOINT, end=later(), report=False).canary

    assert verdict is not None and verdict.rolled_back and not verdict.promoted
    assert "challenger live roc_auc" in verdict.breaches[0]
    assert "by more than maxRegression 0.02" in verdict.breaches[0]
    client = registry.client(settings)
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == champion
    assert continuous.QUARANTINED_TAG in client.get_model_version(MODEL, challenger).tags
    assert [e.kind for e in events.read(settings, MODEL)] == [
        "canary-started",
        "rolled-back",
        "quarantined",
    ]
    # Pointed at again by hand, it is still never promoted automatically.
    client.set_registered_model_alias(MODEL, registry.CHALLENGER, challenger)
    again = monitor(settings, ENDPOINT, end=later(), report=False).canary
    assert again is not None and not again.promoted
    assert "quarantined" in again.summary


@pytest.mark.moto
def test_too_few_labelled_rows_means_wait(
    canary: Settings, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = promoting(
        canary, monkeypatch, liveLabels="live/labels.parquet", rule={"minLabelledRows": 30}
    )
    _, _, theirs, mine = canary_traffic(settings, rng)
    labels = settings.home / "offline" / "live" / "labels.parquet"
    labels.parent.mkdir(parents=True)
    pd.DataFrame({"request_id": [*theirs[:50], *mine[:10]], "is_fraud": 1}).to_parquet(labels)

    verdict = monitor(settings, ENDPOINT, end=later(), report=False).canary

    assert verdict is not None and not verdict.promoted and not verdict.rolled_back
    assert verdict.summary == "promotion waits: challenger has 10 of 30 labelled rows"


@pytest.mark.moto
def test_a_hold_stops_promotion_and_rollback(
    canary: Settings,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    topic: tuple[str, str],
    moto_endpoint: str,
) -> None:
    from runtime import continuous

    settings = promoting(canary, monkeypatch)
    champion, challenger, _, _ = canary_traffic(settings, rng, challenger_latency_ms=200)
    continuous.hold(settings, MODEL, "INC-42", by="ana")

    breaching = monitor(settings, ENDPOINT, end=later(), report=False).canary
    client = registry.client(settings)
    client.delete_model_version_tag(MODEL, challenger, "mlops.ct.quarantined")
    healthy = register_version(settings, rng)
    client.set_registered_model_alias(MODEL, registry.CHALLENGER, healthy)
    log_traffic(
        settings, rng, variant=VARIANT_CHALLENGER, version=healthy, requests=40, latency_ms=9,
        at=datetime.now(UTC),
    )  # fmt: skip
    waiting = monitor(settings, ENDPOINT, end=later(), report=False).canary

    assert breaching is not None and breaching.breaches and not breaching.rolled_back
    assert breaching.summary.startswith("not rolled back (held by ana): challenger p99 latency")
    assert (
        waiting is not None
        and not waiting.promoted
        and waiting.summary == "within SLO (held by ana)"
    )
    assert str(registry.alias_version(client, MODEL, registry.CHAMPION).version) == champion
    assert str(registry.alias_version(client, MODEL, registry.CHALLENGER).version) == healthy
    # The hold is news; a rollback or promotion that did not happen is not.
    assert [m["event"] for m in messages(topic[1], moto_endpoint)] == ["continuous-training-held"]


@pytest.mark.moto
@pytest.mark.postgres
def test_automatic_promotion_on_production_backends(
    production: Team, topic: tuple[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL registry, S3 prediction log and event log, CloudWatch error counts, SNS."""
    from runtime import events

    bucket = str(production.settings.artifact_uri).removeprefix("s3://").split("/")[0]
    model = production.pipeline.model_name
    settings = production.settings.model_copy(
        update={
            "prediction_log_uri": f"s3://{bucket}/prediction-log/{ENDPOINT}",
            "events_uri": f"s3://{bucket}/ct-events/",
            # moto's CloudWatch outlives a test: error counts of other tests stay out.
            "metrics_namespace": f"MLOps/{bucket}",
            "alert_topic_arn": topic[0],
            "endpoint": EndpointSpec.model_validate(
                {"name": ENDPOINT, "model": model, "canary": {"weight": 20},
                 "slo": {"p99LatencyMs": 50, "maxErrorRate": 0.05}}
            ),
        }
    )  # fmt: skip
    settings = promoting(settings, monkeypatch)
    rng = np.random.default_rng(5)
    champion, challenger = champion_and_challenger(settings, rng, model)
    now = datetime.now(UTC)
    for variant, version, requests in (
        (VARIANT_CHAMPION, champion, 120),
        (VARIANT_CHALLENGER, challenger, 40),
    ):
        log_traffic(
            settings, rng, variant=variant, version=version, requests=requests, latency_ms=9,
            at=now, model=model,
        )  # fmt: skip
        serving_counts(settings, variant, requests, 0)

    verdict = monitor(settings, ENDPOINT, end=later(), report=False).canary

    assert verdict is not None and verdict.promoted, verdict
    client = registry.client(settings)
    assert str(registry.alias_version(client, model, registry.CHAMPION).version) == challenger
    started, event = events.read(settings, model)
    assert (started.kind, started.version) == ("canary-started", challenger)
    assert (event.kind, event.version) == ("promoted", challenger)
    told = [(m["event"], m["version"]) for m in messages(topic[1], moto_endpoint)]
    assert told == [
        ("continuous-training-canary-started", challenger),
        ("continuous-training-promoted", challenger),
    ]


@pytest.mark.parametrize(
    ("champion", "challenger", "expected"),
    [
        pytest.param((100, 0, 10.0), (40, 0, 12.0), [], id="healthy"),
        pytest.param((100, 0, 10.0), (40, 4, 12.0), ["error rate 9.09%"], id="errors"),
        pytest.param((100, 0, 10.0), (40, 0, 80.0), ["p99 latency 80.0 ms"], id="slow"),
        # Both break the SLO and the challenger is no worse: the endpoint's problem, not the canary's.
        pytest.param((100, 20, 90.0), (40, 4, 80.0), [], id="champion-as-bad"),
        # Error counts unknown (sink not readable): judged on latency alone.
        pytest.param((100, None, 10.0), (40, None, 80.0), ["p99 latency 80.0 ms"], id="no-counts"),
    ],
)
def test_canary_breaches_need_the_slo_broken_and_the_champion_beaten(
    champion: tuple, challenger: tuple, expected: list[str]
) -> None:
    endpoint = EndpointSpec.model_validate(
        {"name": ENDPOINT, "model": MODEL, "canary": {"weight": 10},
         "slo": {"p99LatencyMs": 50, "maxErrorRate": 0.05}}
    )  # fmt: skip
    health = [
        VariantHealth(variant, "1", requests, errors, p99)
        for variant, (requests, errors, p99) in (
            (VARIANT_CHAMPION, champion),
            (VARIANT_CHALLENGER, challenger),
        )
    ]
    found = canary_breaches(health[0], health[1], endpoint)
    assert len(found) == len(expected)
    for reason, fragment in zip(found, expected, strict=True):
        assert f"challenger {fragment}" in reason
