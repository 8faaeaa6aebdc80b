"""Promotion and rollback: exact history, concurrency, clear errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runtime import registry
from runtime.errors import RegistryError
from runtime.settings import Settings
from runtime.train import train
from tests.runtime.conftest import Team


def champion(team: Team) -> str | None:
    found = registry.alias_version(
        registry.client(team.settings), team.pipeline.model_name, registry.CHAMPION
    )
    return str(found.version) if found else None


def test_promote_then_rollback_restores_the_exact_previous_version(embedded: Team) -> None:
    settings, model = embedded.settings, embedded.pipeline.model_name
    train(settings, "fraud-model")
    first = registry.promote(settings, model)
    train(settings, "fraud-model")

    second = registry.promote(settings, model)
    assert (first.champion, first.previous) == ("1", None)
    assert (second.champion, second.previous) == ("2", "1")
    assert registry.alias_version(MlflowClient(), model, registry.CHALLENGER) is None

    back = registry.rollback(settings, model)

    assert (back.champion, back.previous) == ("1", "2")
    assert champion(embedded) == "1"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(settings, model)
    assert champion(embedded) == "1"


def test_promote_without_challenger_is_a_clear_error(embedded: Team) -> None:
    with pytest.raises(RegistryError, match="no registered model 'fraud-model'"):
        registry.promote(embedded.settings, "fraud-model")
    train(embedded.settings, "fraud-model")
    registry.promote(embedded.settings, "fraud-model")

    with pytest.raises(RegistryError, match=r"no 'challenger' version to promote \(the champion"):
        registry.promote(embedded.settings, "fraud-model")
    assert champion(embedded) == "1"


def _concurrent_promotes(team: Team) -> None:
    settings, model = team.settings, team.pipeline.model_name
    train(settings, "fraud-model")
    registry.promote(settings, model)
    train(settings, "fraud-model")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: registry.promote(settings, model), range(2)))

    assert champion(team) == "2"
    assert sorted(r.changed for r in results) == [False, True]
    assert registry.rollback(settings, model).champion == "1"


def test_concurrent_promotes_leave_the_champion_on_a_valid_version(embedded: Team) -> None:
    _concurrent_promotes(embedded)


@pytest.mark.postgres
@pytest.mark.moto
def test_concurrent_promotes_on_postgresql(production: Team) -> None:
    from tests.runtime.conftest import create_online_tables

    create_online_tables(production.settings)
    _concurrent_promotes(production)


def test_an_automated_promote_promotes_exactly_the_version_it_judged(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    client = registry.client(settings)
    client.create_registered_model("m")
    source = settings.home / "model"
    source.mkdir(parents=True)
    for _ in range(3):
        client.create_model_version("m", source=str(source))
    client.set_registered_model_alias("m", registry.CHAMPION, "1")
    # Judged version 2; a person pointed the challenger at 3 since.
    client.set_registered_model_alias("m", registry.CHALLENGER, "3")

    with pytest.raises(RegistryError, match="the challenger is version 3, not version 2 as judged"):
        registry.promote(settings, "m", expected="2")
    assert str(registry.alias_version(client, "m", registry.CHAMPION).version) == "1"
    assert registry.promote(settings, "m", expected="3").champion == "3"
