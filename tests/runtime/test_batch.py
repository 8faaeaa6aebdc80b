"""`batch-predict`: an entity list scored by the champion, features joined from the offline store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime import registry
from runtime.batch import batch_predict
from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.spec import EndpointSpec
from runtime.train import train
from tests.runtime.conftest import Team, use_env
from tests.runtime.test_serve_support import register_demo_model


@pytest.mark.slow
def test_batch_predict_joins_features_and_writes_the_model_version(
    embedded: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = train(embedded.settings, "fraud-model")
    registry.promote(embedded.settings, result.model)
    entities = pd.DataFrame({"card_id": [1, 2, 3, 2]})
    home = embedded.settings.home
    entities.to_parquet(home / "offline" / "batch-cards.parquet")
    settings = embedded.settings.model_copy(
        update={
            "endpoint": EndpointSpec(name="nightly", model=result.model),
            "batch_input": "batch-cards.parquet",
        }
    )
    use_env(monkeypatch, settings)
    now = datetime.now(UTC).replace(microsecond=0)

    scored = batch_predict(settings, now=now)
    cli = CliRunner().invoke(app, ["batch-predict"])

    assert (scored.rows, scored.version) == (4, result.version)
    written = pd.read_parquet(scored.output)
    assert scored.output.startswith(str(home / "batch-predictions" / "nightly"))
    assert list(written["card_id"]) == [1, 2, 3, 2]
    assert set(written["model_version"]) == {result.version}
    assert written["score"].between(0, 1).all()
    assert written["avg_amount_7d"].notna().all()
    assert cli.exit_code == 0, cli.output
    assert f"scored 4 rows with {result.model} version {result.version}" in cli.output


def test_batch_predict_needs_an_input(tmp_path: Path) -> None:
    from runtime.settings import Settings

    settings = Settings(home=tmp_path, endpoint=EndpointSpec(name="nightly", model="m1"))
    with pytest.raises(ConfigurationError, match="MLOPS_BATCH_INPUT"):
        from runtime.batch import input_uri

        input_uri(settings)


@pytest.fixture
def nightly(embedded: Team, monkeypatch: pytest.MonkeyPatch) -> Team:
    """The fraud team with a champion and a batch endpoint scoring `batch-cards.parquet`."""
    from runtime.features import apply

    apply(embedded.settings)
    register_demo_model(embedded.settings)
    settings = embedded.settings.model_copy(
        update={
            "endpoint": EndpointSpec(name="nightly", model="fraud-model"),
            "batch_input": "batch-cards.parquet",
        }
    )
    use_env(monkeypatch, settings)
    return Team(settings, embedded.uris)


def _batch(team: Team, entities: pd.DataFrame, *options: str) -> tuple[int, str]:
    entities.to_parquet(team.settings.home / "offline" / "batch-cards.parquet")
    result = CliRunner().invoke(app, ["batch-predict", *options])
    assert "Traceback" not in result.output and "registered" not in result.output
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("entities", "problem"),
    [
        pytest.param(
            pd.DataFrame({"card": [1, 2]}),
            "column 'card_id' is missing: the entity key (int64) that looks up txn_count_7d,",
            id="no-entity-key",
        ),
        pytest.param(
            pd.DataFrame({"card_id": ["1", "2"]}),
            "column 'card_id' is object, expected int64 (the entity key's type)",
            id="text-entity-key",
        ),
        pytest.param(
            pd.DataFrame({"card_id": [1, 2], "avg_amount_7d": ["lots", "few"]}),
            "column 'avg_amount_7d' is object, expected a number (the model's input type)",
            id="text-feature",
        ),
    ],
)
def test_a_bad_entity_list_is_one_clear_message_and_nothing_is_written(
    nightly: Team, entities: pd.DataFrame, problem: str
) -> None:
    code, output = _batch(nightly, entities)

    assert code == 1
    assert output.startswith("error: data checks failed for the batch entity list (")
    assert "batch-cards.parquet" in output and problem in output
    assert output.endswith("Nothing was written.")
    assert not (nightly.settings.home / "batch-predictions").exists()


def test_unknown_and_null_entity_keys_fail_the_run_or_are_skipped(nightly: Team) -> None:
    entities = pd.DataFrame({"card_id": [1, 999_999, None, 2]}, dtype="Int64")

    failed = _batch(nightly, entities)
    skipped = _batch(nightly, entities, "--unknown-entities", "skip")

    assert failed[0] == 1
    assert (
        "2 of 4 row(s) have a null or unknown entity key, so no feature values as of their time "
        "(e.g. card_id=999999; card_id=None); fix the list, or leave those rows out with "
        "--unknown-entities skip. Nothing was written."
    ) in failed[1]
    assert skipped[0] == 0, skipped[1]
    assert "(2 row(s) with a null or unknown entity key left out)" in skipped[1]
    (written,) = (nightly.settings.home / "batch-predictions" / "nightly").glob("*/*.parquet")
    assert list(pd.read_parquet(written)["card_id"]) == [1, 2]
