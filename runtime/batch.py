"""`mlops-runtime batch-predict`: score an entity list with the champion, write predictions.

The entity list (``settings.batch_input``) is parquet holding the entities' join keys and,
optionally, an ``event_timestamp`` (features as of that time; default: now) and features given
inline. Missing features are joined point-in-time from Feast's offline store. Predictions are
written with the model name and version under ``settings.batch_output_uri``, one folder per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.errors import ConfigurationError, DataCheckError, RegistryError
from runtime.features import ENTITY_TIMESTAMP
from runtime.registry import CHAMPION
from runtime.serving.model import RegistryModelSource, ServedModel
from runtime.settings import Settings
from runtime.storage import offline_uri, storage_options

LOCAL_OUTPUT = "batch-predictions"
"""Embedded default output root, under ``home``."""
OUTPUT_FILE = "predictions.parquet"
CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class BatchResult:
    rows: int
    model: str
    version: str
    output: str
    """URI of the predictions file written."""


def input_uri(settings: Settings) -> str:
    """The entity list: absolute (`s3://`, `/...`) or relative to the offline store."""
    if not settings.batch_input:
        raise ConfigurationError("no entity list to score: set MLOPS_BATCH_INPUT")
    given = settings.batch_input
    if given.startswith(("s3://", "/")):
        return given
    return offline_uri(settings, given)


def output_uri(settings: Settings, endpoint: str, run: datetime) -> str:
    root = (
        settings.batch_output_uri.rstrip("/")
        if settings.batch_output_uri
        else str(settings.home.resolve() / LOCAL_OUTPUT / endpoint)
    )
    return f"{root}/run={run:%Y%m%dT%H%M%SZ}/{OUTPUT_FILE}"


def batch_predict(
    settings: Settings, *, model: ServedModel | None = None, now: datetime | None = None
) -> BatchResult:
    """Score ``settings.batch_input`` with the endpoint's champion; returns where it went."""
    endpoint = settings.endpoint
    if endpoint is None:
        raise ConfigurationError("no endpoint: set MLOPS_ENDPOINT (its `model` is scored)")
    now = now or datetime.now(UTC)
    if model is None:
        source = RegistryModelSource(settings, endpoint.model, fast_path=False)
        version = source.version_of(CHAMPION)
        if version is None:
            raise RegistryError(
                f"model {endpoint.model!r} has no {CHAMPION!r} version to score with"
            )
        model = source.load(version)
    uri = input_uri(settings)
    try:
        entities = pd.read_parquet(uri, storage_options=storage_options(settings, uri))
    except (FileNotFoundError, OSError, ValueError) as error:
        raise DataCheckError(
            "the batch entity list", [f"cannot read parquet at {uri} ({str(error)[:200]})"]
        ) from None
    frame = _with_features(settings, model, entities, now)
    names = [f.name for f in model.features]
    parts = [
        model.predict(chunk[names].replace({np.nan: None}).to_dict("records"))
        for chunk in (frame.iloc[i : i + CHUNK_ROWS] for i in range(0, len(frame), CHUNK_ROWS))
    ]
    result = frame.copy()
    result["prediction"] = [p for part in parts for p in part.predictions]
    if model.classes is not None:
        result["score"] = [part.score(i) for part in parts for i in range(len(part.predictions))]
    result["model"] = model.name
    result["model_version"] = model.version
    result["scored_at"] = pd.Timestamp(now)
    destination = output_uri(settings, endpoint.name, now)
    if not destination.startswith("s3://"):
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(
        destination, index=False, storage_options=storage_options(settings, destination)
    )
    return BatchResult(len(result), model.name, model.version, destination)


def _with_features(
    settings: Settings, model: ServedModel, entities: pd.DataFrame, now: datetime
) -> pd.DataFrame:
    missing = [f.name for f in model.features if f.name not in entities.columns]
    if not missing:
        return entities
    unknown = [name for name in missing if name not in model.feature_refs]
    if unknown:
        raise DataCheckError(
            "the batch entity list",
            [f"column {name!r} is missing and no feature view serves it" for name in unknown],
        )
    from runtime.features import historical_features, open_store

    entity_df = entities.copy()
    if ENTITY_TIMESTAMP not in entity_df.columns:
        entity_df[ENTITY_TIMESTAMP] = pd.Timestamp(now)
    entity_df[ENTITY_TIMESTAMP] = pd.to_datetime(entity_df[ENTITY_TIMESTAMP], utc=True)
    keys = [c for c in entity_df.columns if c not in model.feature_refs]
    # Feast answers each (entity, time) once; duplicates in the list get the same values.
    unique = entity_df[keys].drop_duplicates()
    joined = historical_features(
        open_store(settings), unique, [model.feature_refs[name] for name in missing]
    )
    joined[ENTITY_TIMESTAMP] = pd.to_datetime(joined[ENTITY_TIMESTAMP], utc=True)
    return entity_df.merge(joined[[*keys, *missing]], on=keys, how="left")
