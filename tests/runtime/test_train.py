"""Training on embedded defaults: registration, reproducibility, estimators, gates, data checks."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from runtime import registry
from runtime.errors import ConfigurationError, DataCheckError, GateFailure
from runtime.serving.model import RegistryModelSource, ServedModel
from runtime.settings import Settings
from runtime.spec import Estimator, Gates, Task
from runtime.storage import write_parquet
from runtime.train import REFERENCE_ARTIFACT, train
from tests.runtime.conftest import Team


def load_challenger(settings: Settings, model: str) -> ServedModel:
    """The challenger as serving loads it (`runtime.model_trust` rules)."""
    source = RegistryModelSource(settings, model, fast_path=False)
    version = source.version_of("challenger")
    assert version is not None
    return source.load(version)


def versions(team: Team) -> list[str]:
    client = registry.client(team.settings)
    found = client.search_model_versions(f"name = '{team.pipeline.model_name}'")
    return sorted(str(v.version) for v in found)


def champion_of(team: Team) -> str | None:
    found = registry.alias_version(
        registry.client(team.settings), team.pipeline.model_name, registry.CHAMPION
    )
    return str(found.version) if found else None


@pytest.fixture
def with_champion(embedded: Team) -> Team:
    """The fraud team with version 1 trained and promoted to champion."""
    train(embedded.settings, embedded.pipeline.name)
    registry.promote(embedded.settings, embedded.pipeline.model_name)
    return embedded


def test_train_registers_a_loadable_challenger_with_provenance(embedded: Team) -> None:
    team = embedded.with_pipeline(nullable_features=["share_foreign_7d"])
    result = train(team.settings, "fraud-model")

    assert result.version == "1" and result.passed
    assert result.metrics["roc_auc"] > 0.6
    client = MlflowClient()
    version = client.get_model_version_by_alias("fraud-model", "challenger")
    assert str(version.version) == "1"
    run = client.get_run(result.run_id)
    assert {"mlops.data_fingerprint", "mlops.config_hash", "mlops.code_version"} <= set(
        run.data.tags
    )
    assert run.data.tags["mlops.features"].split(",") == list(embedded.pipeline.features)
    # What continuous training's newData trigger counts arrivals after.
    labels = pd.read_parquet(embedded.uris[embedded.pipeline.labels.path])
    newest = pd.to_datetime(labels["event_ts"], utc=True).max()
    assert version.tags["mlops.data_until"] == newest.isoformat()
    assert run.data.params["seed"] == "42"
    assert run.data.params["estimator.random_state"] == "42"
    assert "age_band" not in run.data.tags["mlops.features"]
    # Loadable by serving under its trust rules (skops, scikit-learn types, the artifact root).
    model = load_challenger(embedded.settings, "fraud-model")
    inputs = [feature.name for feature in model.features]
    assert inputs == ["txn_count_7d", "avg_amount_7d", "max_amount_7d", "share_foreign_7d"]
    # Declared, not guessed from the example rows: only the declared feature may be missing.
    required = {feature.name: feature.required for feature in model.features}
    assert [name for name, needed in required.items() if not needed] == ["share_foreign_7d"]
    assert len(model.predict([dict.fromkeys(inputs, 1.0)]).predictions) == 1
    assert model.provenance["runId"] == result.run_id
    assert model.provenance["dataFingerprint"] == run.data.tags["mlops.data_fingerprint"]
    reference = pd.read_parquet(
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=REFERENCE_ARTIFACT)
    )
    assert {*inputs, "prediction", "score", "is_fraud"} == set(reference.columns)


def test_same_data_config_and_seed_give_the_same_metrics(embedded: Team) -> None:
    first = train(embedded.settings, "fraud-model")
    second = train(embedded.settings, "fraud-model")

    assert first.metrics == second.metrics
    client = MlflowClient()
    tags = [client.get_run(r.run_id).data.tags for r in (first, second)]
    assert tags[0]["mlops.data_fingerprint"] == tags[1]["mlops.data_fingerprint"]
    assert tags[0]["mlops.config_hash"] == tags[1]["mlops.config_hash"]


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        pytest.param("logisticRegression", {"C": 0.5}, id="logistic-regression"),
        pytest.param("randomForest", {"n_estimators": 20, "max_depth": 4}, id="random-forest"),
    ],
)
def test_classifiers(embedded: Team, kind: str, params: dict) -> None:
    team = embedded.with_pipeline(estimator=Estimator(kind=kind, params=params))

    result = train(team.settings, "fraud-model")

    assert result.passed
    assert load_challenger(team.settings, "fraud-model").features


@pytest.mark.parametrize("kind", ["linearRegression", "histGradientBoosting"])
def test_regressors(embedded: Team, kind: str) -> None:
    # Regress the transaction amount: a different task on the same features.
    team = embedded.with_pipeline(
        task=Task.regression,
        estimator=Estimator(kind=kind),
        labels=embedded.pipeline.labels.model_copy(update={"target": "amount"}),
        protected_attribute=None,
        gates=Gates(metric="r2", minimum=-1e6),
    )

    result = train(team.settings, "fraud-model")

    assert {"r2", "neg_rmse", "mae"} <= set(result.metrics)
    assert load_challenger(team.settings, "fraud-model").features


def test_incompatible_estimator_is_a_configuration_error(embedded: Team) -> None:
    team = embedded.with_pipeline(estimator=Estimator(kind="linearRegression"))

    with pytest.raises(ConfigurationError, match="linearRegression cannot do classification"):
        train(team.settings, "fraud-model")
    assert versions(team) == []


def test_unknown_estimator_parameter_is_a_configuration_error(embedded: Team) -> None:
    team = embedded.with_pipeline(estimator=Estimator(kind="randomForest", params={"depth": 3}))

    with pytest.raises(ConfigurationError, match="does not take these parameters"):
        train(team.settings, "fraud-model")
    assert versions(team) == []


def test_failing_data_check_leaves_the_champion_untouched(with_champion: Team) -> None:
    labels = pd.read_parquet(with_champion.uris["labels/fraud.parquet"])
    labels.loc[:10, "amount"] = -5.0
    write_parquet(with_champion.settings, labels, "labels/fraud.parquet")

    with pytest.raises(DataCheckError, match=r"column 'amount' must be greater_than_or_equal_to"):
        train(with_champion.settings, "fraud-model")

    assert champion_of(with_champion) == "1"
    assert versions(with_champion) == ["1"]


def test_failing_quality_gate_leaves_the_champion_untouched(with_champion: Team) -> None:
    team = with_champion.with_pipeline(gates=Gates(minimum=0.999))

    with pytest.raises(GateFailure, match=r"roc_auc 0\.\d+ is below the minimum 0.999") as raised:
        train(team.settings, "fraud-model")

    assert champion_of(team) == "1"
    assert versions(team) == ["1"]
    assert registry.alias_version(MlflowClient(), "fraud-model", "challenger") is None
    assert MlflowClient().get_run(raised.value.run_id).data.tags["mlops.gates"] == "failed"


def test_failing_fairness_gate_leaves_the_champion_untouched(with_champion: Team) -> None:
    team = with_champion.with_pipeline(gates=Gates(max_fairness_gap=0.0001))

    with pytest.raises(GateFailure, match=r"demographicParity difference across 'age_band'"):
        train(team.settings, "fraud-model")

    assert champion_of(team) == "1"
    assert versions(team) == ["1"]


def test_worse_than_champion_fails_the_regression_gate(with_champion: Team) -> None:
    team = with_champion.with_pipeline(
        estimator=Estimator(kind="randomForest", params={"n_estimators": 1, "max_depth": 1})
    )

    with pytest.raises(GateFailure, match="worse than the champion's"):
        train(team.settings, "fraud-model")

    assert champion_of(team) == "1"


def test_nullable_features_must_be_features_of_the_pipeline(embedded: Team) -> None:
    with pytest.raises(ValidationError) as raised:
        embedded.pipeline.model_validate(
            {
                **embedded.pipeline.model_dump(by_alias=True),
                "nullableFeatures": ["share_foreign_7d", "age_band"],
            }
        )

    (error,) = raised.value.errors()
    assert error["loc"] == ("nullableFeatures",)
    assert error["msg"] == (
        "Value error, 'age_band' is not a feature of this pipeline (its features: "
        "txn_count_7d, avg_amount_7d, max_amount_7d, share_foreign_7d)"
    )
