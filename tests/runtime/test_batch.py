"""`batch-predict`: an entity list scored by the champion, features joined from the offline store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime import batch as batch_module
from runtime import registry
from runtime.batch import Unit, batch_predict, shard_units
from runtime.cli import app
from runtime.errors import ConfigurationError
from runtime.settings import Settings
from runtime.spec import EndpointSpec
from runtime.train import train
from tests.runtime.conftest import Team, use_env
from tests.runtime.test_serve_support import register_demo_model, served, training_frame


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


def test_unknown_and_null_entity_keys_fail_the_run_or_are_skipped(
    nightly: Team, caplog: pytest.LogCaptureFixture
) -> None:
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
    # A run shows its progress, skipped rows counted as done.
    assert "shard 0/1: 4 of 4 rows scored" in caplog.text
    (written,) = (nightly.settings.home / "batch-predictions" / "nightly").glob("*/*.parquet")
    assert list(pd.read_parquet(written)["card_id"]) == [1, 2]


def _units(sizes: list[int]) -> list[Unit]:
    return [Unit(i, f"f{i // 3}.parquet", i % 3, rows) for i, rows in enumerate(sizes)]


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 40])
def test_the_shards_of_an_indexed_job_cover_every_unit_exactly_once(shards: int) -> None:
    rng = np.random.default_rng(shards)
    units = _units(list(rng.integers(0, 5000, 25)))
    taken = [u.number for i in range(shards) for u in shard_units(units, shards, i)]
    assert sorted(taken) == [u.number for u in units]
    if shards <= len(units):
        # Contiguous and about even: no share is more than one unit off the mean.
        biggest = max(u.rows for u in units)
        for i in range(shards):
            rows = sum(u.rows for u in shard_units(units, shards, i))
            assert abs(rows - sum(u.rows for u in units) / shards) <= biggest
    with pytest.raises(ConfigurationError, match="shard 40 is not one of 0"):
        shard_units(units, shards, 40)


@pytest.fixture
def inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A champion and an entity list of three files with every feature inline (no join)."""
    settings = Settings(
        home=tmp_path / "home",
        endpoint=EndpointSpec(name="nightly", model="fraud-model"),
        batch_input=str(tmp_path / "entities"),
        batch_run="nightly-29000000",
    )
    register_demo_model(settings)
    folder = tmp_path / "entities"
    folder.mkdir()
    frame, _ = training_frame(rows=900, seed=3)
    frame.insert(0, "card_id", range(900))
    for i, start in enumerate((0, 300, 600)):
        # Row groups of 100: nine units per file.
        frame.iloc[start : start + 300].to_parquet(folder / f"part-{i}.parquet", row_group_size=100)
    return settings


def test_an_indexed_run_scores_each_row_once_and_a_retried_index_changes_nothing(
    inline: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = batch_predict(inline)
    sharded = inline.model_copy(update={"batch_shards": 4, "batch_run": "nightly-29000001"})
    results = [batch_predict(sharded, shard=i) for i in (2, 0, 3)]
    waiting = Path(results[-1].output)
    assert not (waiting / "_SUCCESS").exists() and not results[-1].complete
    # Index 1 fails half-way (its pod dies); the Job retries it and it succeeds.
    calls = {"n": 0}
    real = batch_module._score

    def dies_on_the_second_chunk(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("node lost")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_module, "_score", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError, match="node lost"):
        batch_predict(sharded, shard=1)
    monkeypatch.setattr(batch_module, "_score", real)
    results.append(batch_predict(sharded, shard=1))
    again = batch_predict(sharded, shard=1)

    assert results[-1].complete and (waiting / "_SUCCESS").exists()
    assert again.rows == results[-1].rows
    expected = pd.read_parquet(whole.output).sort_values("card_id", ignore_index=True)
    got = pd.read_parquet(waiting).sort_values("card_id", ignore_index=True)
    assert list(got["card_id"]) == list(range(900))  # every row once: none lost, none twice
    pd.testing.assert_frame_equal(
        got.drop(columns="scored_at"), expected.drop(columns="scored_at"), check_dtype=False
    )
    assert sum(r.rows for r in results) == 900


@pytest.mark.parametrize("onnx", [False, True], ids=["sklearn", "onnx"])
def test_a_chunk_is_scored_as_serving_scores_its_rows(onnx: bool) -> None:
    # batch-predict scores a frame; serving, the rows of a request: one model, one answer.
    model = served("1", onnx=onnx, nullable=("avg_amount_7d",))
    frame, _ = training_frame(seed=4)
    frame = frame.head(200).copy()
    frame.loc[::7, "avg_amount_7d"] = np.nan  # a declared-nullable input left out
    rows = frame.replace({np.nan: None}).to_dict("records")

    chunk, request = model.predict.frame(frame), model.predict(rows)

    assert chunk.predictions == request.predictions
    np.testing.assert_allclose(chunk.probabilities, request.probabilities, rtol=1e-6)
