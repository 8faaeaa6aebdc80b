"""`mlops-runtime` as a job runs it: env in, one-paragraph errors out, nothing half-registered."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from runtime import registry
from runtime.cli import app
from runtime.storage import write_parquet
from tests.runtime.conftest import Team

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def registered(team: Team) -> list[str]:
    client = registry.client(team.settings)
    return [str(v.version) for v in client.search_model_versions("name = 'fraud-model'")]


def test_materialize_train_promote_rollback(embedded: Team) -> None:
    assert run("materialize")[0] == 0
    code, output = run("train", "--pipeline", "fraud-model")
    assert (code, "registered fraud-model version 1 as challenger" in output) == (0, True)
    assert run("train", "--pipeline", "fraud-model")[0] == 0
    assert run("promote", "fraud-model") == (
        0,
        "fraud-model: champion is now version 2 (was None)\n",
    )
    assert MlflowClient().get_model_version_by_alias("fraud-model", "champion").version in (2, "2")


def _corrupt_labels(team: Team, change: str) -> None:
    labels = pd.read_parquet(team.uris["labels/fraud.parquet"])
    if change == "missing-column":
        labels = labels.drop(columns=["is_fraud"])
    elif change == "wrong-type":
        labels["event_ts"] = labels["event_ts"].astype(str)
    elif change == "empty":
        labels = labels.head(0)
    write_parquet(team.settings, labels, "labels/fraud.parquet")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param("missing-column", "column 'is_fraud' is missing", id="missing-column"),
        pytest.param(
            "wrong-type",
            "column 'event_ts' must be a timestamp column (parquet timestamp, not text or numbers)",
            id="wrong-type",
        ),
        pytest.param("empty", "no rows at all", id="empty-data"),
    ],
)
def test_bad_label_data_is_one_clear_message(embedded: Team, change: str, message: str) -> None:
    _corrupt_labels(embedded, change)

    code, output = run("train", "--pipeline", "fraud-model")

    assert code == 1
    assert output.startswith("error: data checks failed for the labels of pipeline 'fraud-model' (")
    assert output.rstrip().endswith("Nothing was registered.")
    assert "labels/fraud.parquet" in output
    assert message in output
    assert "Traceback" not in output
    assert registered(embedded) == []


def test_unknown_pipeline_is_one_clear_message(embedded: Team) -> None:
    code, output = run("train", "--pipeline", "churn")

    assert code == 1
    assert output == (
        "error: unknown pipeline 'churn': team 'fraud' declares fraud-model (MLOPS_PIPELINES)\n"
    )
    assert registered(embedded) == []


def test_missing_label_file_is_one_clear_message(embedded: Team) -> None:
    (embedded.settings.home / "offline" / "labels" / "fraud.parquet").unlink()

    code, output = run("train", "--pipeline", "fraud-model")

    assert code == 1
    assert "cannot read parquet at" in output and "labels/fraud.parquet" in output
    assert "Traceback" not in output


def test_failed_gate_exits_3_and_registers_nothing(
    embedded: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = embedded.pipeline.model_copy(
        update={"gates": embedded.pipeline.gates.model_copy(update={"minimum": 0.999})}
    )
    monkeypatch.setenv(
        "MLOPS_PIPELINES", f"[{pipeline.model_dump_json(by_alias=True, exclude_defaults=True)}]"
    )

    code, output = run("train", "--pipeline", "fraud-model")

    assert code == 3
    assert "failed its gates: roc_auc" in output and "no version was registered" in output
    assert registered(embedded) == []


def test_invalid_settings_name_the_variable(
    embedded: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_PIPELINES", '[{"name": "x"}]')

    code, output = run("train", "--pipeline", "x")

    assert (code, output) == (
        1,
        "error: invalid runtime settings: MLOPS_PIPELINES.0.name: String should have at least "
        "2 characters; MLOPS_PIPELINES.0.labels: Field required; MLOPS_PIPELINES.0.features: "
        "Field required\n",
    )


def test_rollback_without_history_is_one_clear_message(embedded: Team) -> None:
    code, output = run("rollback", "fraud-model")

    assert (code, output) == (1, "error: no registered model 'fraud-model' in the registry\n")


def test_promote_after_a_rollback_says_there_is_no_challenger(embedded: Team) -> None:
    for _ in range(2):
        assert run("train", "--pipeline", "fraud-model")[0] == 0
        assert run("promote", "fraud-model")[0] == 0
    assert run("rollback", "fraud-model")[0] == 0

    code, output = run("promote", "fraud-model")

    assert (code, output) == (
        1,
        "error: model 'fraud-model' has no 'challenger' version to promote (the champion is "
        "version 1); a training run sets that alias only when every gate passes "
        "(`mlops-runtime train --pipeline ...`)\n",
    )


def test_demo_data_command_writes_the_offline_store(embedded: Team) -> None:
    code, output = run("demo-data", "--team", "forecasting", "--rows", "200")

    assert code == 0
    assert (embedded.settings.home / "offline" / "labels" / "demand.parquet").exists()
    assert "store_sales_stats/part-0.parquet" in output
