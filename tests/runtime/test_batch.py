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
