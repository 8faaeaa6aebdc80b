"""The MLflow model registry of a team: where it lives, and champion/challenger promotion.

Promotion history is a chain of model-version tags: when version N becomes champion it records
the version it replaced (``mlops.previous_champion``). Rollback follows that link, so repeated
rollbacks walk back through history and no mutable "previous" pointer can get out of step.
Promote and rollback hold a per-model lock where the backend offers one (a PostgreSQL advisory
lock, a file lock next to SQLite); every alias write is itself a single atomic statement, so the
champion alias points to an existing version at every moment.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from runtime.errors import RegistryError
from runtime.settings import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "mlops.previous_champion"
"""Model-version tag: the champion version this one replaced when it was promoted."""
PROMOTED_AT_TAG = "mlops.promoted_at"
ROLLED_BACK_AT_TAG = "mlops.rolled_back_at"
CANARY_ROLLED_BACK_TAG = "mlops.canary_rolled_back_at"
"""Model-version tag: when the drift monitor rolled this version's canary back."""
CANARY_REASON_TAG = "mlops.canary_rollback_reason"
DATA_UNTIL_TAG = "mlops.data_until"
"""Model-version tag (training provenance): the newest label time the version was trained on."""
LOCAL_DATABASE = "mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"


def tracking_uri(settings: Settings) -> str:
    """MLflow tracking and registry URI: ``settings.tracking_uri`` or SQLite in ``home``."""
    if settings.tracking_uri and settings.tracking_uri.startswith("postgresql://"):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the image ships psycopg2.
        return "postgresql+psycopg2://" + settings.tracking_uri.removeprefix("postgresql://")
    if settings.tracking_uri:
        return settings.tracking_uri
    return f"sqlite:///{settings.home.resolve() / LOCAL_DATABASE}"


def artifact_location(settings: Settings) -> str:
    """Where new experiments keep artifacts: ``settings.artifact_uri`` or a folder in ``home``."""
    if settings.artifact_uri:
        return settings.artifact_uri.rstrip("/")
    return (settings.home.resolve() / LOCAL_ARTIFACTS).as_uri()


def client(settings: Settings) -> MlflowClient:
    """An MlflowClient on the team's registry; also points the fluent ``mlflow`` API at it."""
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        settings.home.resolve().mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(settings: Settings, mlflow_client: MlflowClient, pipeline: str) -> str:
    """The experiment of ``pipeline`` (``<team>-<pipeline>``), created with the artifact root."""
    name = f"{settings.team}-{pipeline}"
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(
            name, artifact_location=f"{artifact_location(settings)}/{name}"
        )
    except MlflowException:
        # Another run created it between our read and write.
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def alias_version(mlflow_client: MlflowClient, model: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points to, or None (also when the model is not registered)."""
    try:
        return mlflow_client.get_model_version_by_alias(model, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


@dataclass(frozen=True)
class Promotion:
    model: str
    champion: str
    """Version the champion alias points to now."""
    previous: str | None
    """Version it pointed to before (None: there was no champion)."""
    changed: bool = True


def promote(settings: Settings, model: str, *, expected: str | None = None) -> Promotion:
    """Make the ``challenger`` version the ``champion``, remembering the champion it replaces.

    ``expected``: promote only if the challenger is still this version (an automated promotion
    judged that one; a person may have moved the alias since)."""
    mlflow_client = client(settings)
    # What this call was asked to promote, read before waiting for a concurrent promote to end.
    wanted = alias_version(mlflow_client, model, CHALLENGER)
    with registry_lock(settings, model):
        _require_model(mlflow_client, model)
        challenger = alias_version(mlflow_client, model, CHALLENGER)
        champion = alias_version(mlflow_client, model, CHAMPION)
        if expected is not None and (challenger is None or str(challenger.version) != expected):
            now = "no challenger" if challenger is None else f"version {challenger.version}"
            raise RegistryError(
                f"model {model!r}: the challenger is {now}, not version {expected} as judged; "
                "nothing was promoted"
            )
        if challenger is None:
            if (
                wanted is not None
                and champion is not None
                and str(champion.version) == str(wanted.version)
            ):
                # A concurrent promote of the same challenger won: the same outcome, not an error.
                return Promotion(
                    model, str(champion.version), champion.tags.get(PREVIOUS_CHAMPION_TAG), False
                )
            serving = f" (the champion is version {champion.version})" if champion else ""
            raise RegistryError(
                f"model {model!r} has no {CHALLENGER!r} version to promote{serving}; a training "
                "run sets that alias only when every gate passes "
                "(`mlops-runtime train --pipeline ...`)"
            )
        previous = str(champion.version) if champion is not None else None
        candidate = str(challenger.version)
        if previous == candidate:
            mlflow_client.delete_registered_model_alias(model, CHALLENGER)
            return Promotion(model, previous, challenger.tags.get(PREVIOUS_CHAMPION_TAG), False)
        # The link is written before the alias moves, so a champion always knows its predecessor.
        if previous is not None:
            mlflow_client.set_model_version_tag(model, candidate, PREVIOUS_CHAMPION_TAG, previous)
        mlflow_client.set_model_version_tag(model, candidate, PROMOTED_AT_TAG, _now())
        mlflow_client.set_registered_model_alias(model, CHAMPION, candidate)
        with contextlib.suppress(MlflowException):
            mlflow_client.delete_registered_model_alias(model, CHALLENGER)
        return Promotion(model, candidate, previous)


def rollback(settings: Settings, model: str) -> Promotion:
    """Point ``champion`` back at the version the current champion replaced."""
    mlflow_client = client(settings)
    with registry_lock(settings, model):
        _require_model(mlflow_client, model)
        champion = alias_version(mlflow_client, model, CHAMPION)
        if champion is None:
            raise RegistryError(f"model {model!r} has no {CHAMPION!r} version to roll back")
        previous = champion.tags.get(PREVIOUS_CHAMPION_TAG)
        if not previous:
            raise RegistryError(
                f"model {model!r}: champion version {champion.version} was not promoted over "
                "another version, so there is nothing to roll back to"
            )
        try:
            mlflow_client.get_model_version(model, previous)
        except MlflowException:
            raise RegistryError(
                f"model {model!r}: the previous champion, version {previous}, no longer exists"
            ) from None
        mlflow_client.set_registered_model_alias(model, CHAMPION, previous)
        mlflow_client.set_model_version_tag(
            model, str(champion.version), ROLLED_BACK_AT_TAG, _now()
        )
        return Promotion(model, previous, str(champion.version))


def _require_model(mlflow_client: MlflowClient, model: str) -> None:
    try:
        mlflow_client.get_registered_model(model)
    except MlflowException:
        raise RegistryError(f"no registered model {model!r} in the registry") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def registry_lock(settings: Settings, model: str) -> Iterator[None]:
    """Serialize promotions of ``model``: advisory lock on PostgreSQL, file lock for SQLite.

    Other backends (an MLflow server over HTTP) have no lock; each alias write stays atomic.
    """
    uri = tracking_uri(settings)
    if uri.startswith("postgresql"):
        with _postgres_lock(uri, model):
            yield
    elif uri.startswith("sqlite:///"):
        with _file_lock(Path(uri.removeprefix("sqlite:///")).with_suffix(f".{model}.lock")):
            yield
    else:
        yield


@contextlib.contextmanager
def _postgres_lock(uri: str, model: str) -> Iterator[None]:
    import psycopg2

    rest = uri.split("://", 1)[1]
    key = int.from_bytes(hashlib.sha256(f"mlops:{model}".encode()).digest()[:8], signed=True)
    connection = psycopg2.connect(f"postgresql://{rest}")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
