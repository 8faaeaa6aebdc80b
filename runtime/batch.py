"""`mlops-runtime batch-predict`: score an entity list with the champion, write predictions.

The entity list (``settings.batch_input``) is parquet holding the entities' join keys and,
optionally, an ``event_timestamp`` (features as of that time; default: now) and features given
inline. Missing features are joined point-in-time from Feast's offline store. Predictions are
written with the model name and version under ``settings.batch_output_uri``, one folder per run.

The list is streamed, never read whole: its files' row groups are the units of work, read
``CHUNK_ROWS`` at a time, scored and written as one part file per chunk, so memory stays bounded
by a chunk whatever the list's size. A run may be spread over the pods of a Kubernetes Indexed
Job (``settings.batch_shards`` completions; each pod's ``JOB_COMPLETION_INDEX`` is its shard):
the units, in a fixed order, are cut into that many contiguous shares of about equal rows, so
every unit is scored by exactly one index. Part names follow from the unit and chunk, and the
run folder from the Job's name (``settings.batch_run``), so a retried index rewrites the same
parts: nothing lost, nothing twice. Each index commits by writing ``_shard-<i>-of-<n>.json``
last; whichever index finds all of them writes ``_SUCCESS``. Readers take a run folder as a
parquet dataset (files starting with ``_`` are not data) once ``_SUCCESS`` is there.

The list is checked before anything is scored: entity keys and inline features present and of
their declared types. Rows whose entity key is null or unknown (no feature values as of their
time) are never scored on empty features: the run fails naming how many (``fail``, the default),
or leaves them out and reports how many (``skip``). Nothing is written unless the run succeeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import pandas as pd
import pyarrow.parquet as pq

from runtime.errors import ConfigurationError, DataCheckError, RegistryError
from runtime.features import ENTITY_TIMESTAMP
from runtime.registry import CHAMPION
from runtime.serving.model import RegistryModelSource, ServedModel
from runtime.settings import Settings
from runtime.storage import offline_uri, storage_options

LOCAL_OUTPUT = "batch-predictions"
"""Embedded default output root, under ``home``."""
CHUNK_ROWS = 100_000
"""Rows read, scored and written at a time: what bounds a run's memory."""
SUCCESS = "_SUCCESS"
_log = logging.getLogger(__name__)


UNKNOWN_ENTITIES = ("fail", "skip")
"""What a run does with rows whose entity key is null or unknown: fail, or leave them out."""
SHOWN_KEYS = 5
"""Unknown entity keys a message names (the count covers all of them)."""


@dataclass(frozen=True)
class BatchResult:
    rows: int
    model: str
    version: str
    output: str
    """URI of the run's folder of predictions (a parquet dataset)."""
    skipped: int = 0
    """Rows left out because their entity key was null or unknown (``unknown_entities="skip"``)."""
    shard: int = 0
    shards: int = 1
    complete: bool = True
    """Every shard of the run has committed (``_SUCCESS`` written)."""


@dataclass(frozen=True)
class Unit:
    """A row group of one of the list's files: what one index scores whole."""

    number: int
    """Position in the run's fixed order of units (names its output parts)."""
    path: str
    row_group: int
    rows: int


def shard_units(units: list[Unit], shards: int, index: int) -> list[Unit]:
    """The units of shard ``index`` of ``shards``: contiguous, about ``rows / shards`` rows each.
    Every unit falls in exactly one shard, whatever the count."""
    if not 0 <= index < shards:
        raise ConfigurationError(
            f"shard {index} is not one of 0..{shards - 1} (MLOPS_BATCH_SHARDS)"
        )
    total = sum(u.rows for u in units) or 1
    mine, start = [], 0
    for unit in units:
        # A unit belongs where its first row falls: floor(start * shards / total).
        if min(shards - 1, start * shards // total) == index:
            mine.append(unit)
        start += unit.rows
    return mine


def input_uri(settings: Settings) -> str:
    """The entity list: absolute (`s3://`, `/...`) or relative to the offline store."""
    if not settings.batch_input:
        raise ConfigurationError("no entity list to score: set MLOPS_BATCH_INPUT")
    given = settings.batch_input
    if given.startswith(("s3://", "/")):
        return given
    return offline_uri(settings, given)


def output_uri(settings: Settings, endpoint: str, run: datetime) -> str:
    """The run's folder: named by the Job (the same for every index and retry), else the time."""
    root = (
        settings.batch_output_uri.rstrip("/")
        if settings.batch_output_uri
        else str(settings.home.resolve() / LOCAL_OUTPUT / endpoint)
    )
    return f"{root}/run={settings.batch_run or f'{run:%Y%m%dT%H%M%SZ}'}"


def batch_predict(
    settings: Settings,
    *,
    model: ServedModel | None = None,
    now: datetime | None = None,
    unknown_entities: str = "fail",
    shard: int = 0,
) -> BatchResult:
    """Score shard ``shard`` of ``settings.batch_input`` with the endpoint's champion."""
    endpoint = settings.endpoint
    if endpoint is None:
        raise ConfigurationError("no endpoint: set MLOPS_ENDPOINT (its `model` is scored)")
    if unknown_entities not in UNKNOWN_ENTITIES:
        raise ConfigurationError(
            f"unknown entities: {unknown_entities!r} is not one of {', '.join(UNKNOWN_ENTITIES)}"
        )
    shards = settings.batch_shards
    uri = input_uri(settings)
    units = shard_units(list_units(settings, uri), shards, shard)
    now = now or datetime.now(UTC)
    if model is None:
        source = RegistryModelSource(
            settings, endpoint.model, fast_path=False, trust_code=endpoint.trust_model_code
        )
        version = source.version_of(CHAMPION)
        if version is None:
            raise RegistryError(
                f"model {endpoint.model!r} has no {CHAMPION!r} version to score with"
            )
        model = source.load(version)
    where = f"the batch entity list ({uri})"
    run = output_uri(settings, endpoint.name, now)
    fs, folder = fsspec.core.url_to_fs(run, **(storage_options(settings, run) or {}))
    written: list[str] = []
    rows = skipped = 0
    total = sum(u.rows for u in units)
    try:
        for unit in units:
            for number, chunk in enumerate(_chunks(settings, uri, unit)):
                scored, left_out = _score(settings, model, chunk, now, where, unknown_entities)
                part = f"{folder}/part-{unit.number:06d}-{number:04d}.parquet"
                fs.makedirs(folder, exist_ok=True)
                with fs.open(part, "wb") as out:
                    scored.to_parquet(out, index=False)
                written.append(part)
                rows, skipped = rows + len(scored), skipped + left_out
            _log.info("shard %d/%d: %d of %d rows scored", shard, shards, rows + skipped, total)
    except BaseException:
        # An index that fails leaves no parts behind: its retry writes them all again.
        for part in written:
            fs.rm(part)
        if written and not fs.ls(folder):
            fs.rmdir(folder)
        raise
    marker = {
        "rows": rows,
        "skipped": skipped,
        "model": model.name,
        "version": model.version,
        "parts": [p.rsplit("/", 1)[1] for p in written],
        "scored_at": now.isoformat(),
    }
    fs.makedirs(folder, exist_ok=True)
    fs.pipe(f"{folder}/_shard-{shard:05d}-of-{shards:05d}.json", json.dumps(marker).encode())
    complete = _commit_if_complete(fs, folder, shards)
    return BatchResult(rows, model.name, model.version, run, skipped, shard, shards, complete)


def list_units(settings: Settings, uri: str) -> list[Unit]:
    """The row groups of the list's parquet files (a file, or a folder's), in a fixed order;
    read from the files' footers only."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options(settings, uri) or {}))
    try:
        files = sorted(
            f
            for f in (fs.find(path) if fs.isdir(path) else [path])
            if not f.rsplit("/", 1)[-1].startswith(("_", "."))
        )
        units: list[Unit] = []
        for file in files:
            with fs.open(file, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                units.append(Unit(len(units), file, group, rows))
    except (FileNotFoundError, OSError, ValueError) as error:
        raise DataCheckError(
            "the batch entity list",
            [f"cannot read parquet at {uri} ({str(error)[:200]})"],
            outcome=NOTHING_WRITTEN,
        ) from None
    if not files:
        raise DataCheckError(
            "the batch entity list", [f"no parquet files at {uri}"], outcome=NOTHING_WRITTEN
        )
    return units


def _chunks(settings: Settings, uri: str, unit: Unit) -> Iterator[pd.DataFrame]:
    fs, _ = fsspec.core.url_to_fs(uri, **(storage_options(settings, uri) or {}))
    with fs.open(unit.path, "rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(
            batch_size=CHUNK_ROWS, row_groups=[unit.row_group]
        ):
            yield batch.to_pandas()


def _score(
    settings: Settings,
    model: ServedModel,
    entities: pd.DataFrame,
    now: datetime,
    where: str,
    unknown_entities: str,
) -> tuple[pd.DataFrame, int]:
    """A chunk's predictions, and how many of its rows were left out."""
    entities = _checked(settings, model, entities, where)
    frame, unknown = _with_features(settings, model, entities, now)
    skipped = int(unknown.sum())
    if skipped and unknown_entities == "fail":
        raise DataCheckError(
            where, [_unknown_report(settings, model, frame, unknown)], outcome=NOTHING_WRITTEN
        )
    frame = frame[~unknown].reset_index(drop=True)
    predicted = model.predict.frame(frame)
    result = frame.copy()
    result["prediction"] = predicted.predictions
    if model.classes is not None:
        # A classifier without probabilities has no score: the column is there, empty.
        probabilities = predicted.probabilities
        result["score"] = [row[-1] for row in probabilities] if probabilities else None
    result["model"] = model.name
    result["model_version"] = model.version
    result["scored_at"] = pd.Timestamp(now)
    return result, skipped


def _commit_if_complete(fs: Any, folder: str, shards: int) -> bool:
    """Write ``_SUCCESS`` once every shard has committed; True when it is there."""
    markers = [f"{folder}/_shard-{i:05d}-of-{shards:05d}.json" for i in range(shards)]
    if not all(fs.exists(m) for m in markers):
        return False
    totals = [json.loads(fs.cat(m)) for m in markers]
    summary = {
        "shards": shards,
        "rows": sum(t["rows"] for t in totals),
        "skipped": sum(t["skipped"] for t in totals),
        "versions": sorted({t["version"] for t in totals}),
    }
    fs.pipe(f"{folder}/{SUCCESS}", json.dumps(summary).encode())
    return True


NOTHING_WRITTEN = "Nothing was written."


def _entity_keys(settings: Settings, model: ServedModel, missing: list[str]) -> dict[str, str]:
    """Join key -> declared type, for the feature views that serve ``missing`` inputs."""
    entities = {e.name: e for e in settings.feature_store.entities}
    views = {v.name: v for v in settings.feature_store.feature_views}
    keys: dict[str, str] = {}
    for name in missing:
        view = views.get(model.feature_refs[name].split(":", 1)[0])
        for entity in view.entities if view else []:
            if entity in entities:
                keys[entities[entity].join_key] = str(entities[entity].value_type)
    return keys


def _checked(
    settings: Settings, model: ServedModel, entities: pd.DataFrame, where: str
) -> pd.DataFrame:
    """The entity list with its key columns in their declared types; every problem at once."""
    missing = [f.name for f in model.features if f.name not in entities.columns]
    failures = [
        f"column {name!r} is missing and no feature view serves it"
        for name in missing
        if name not in model.feature_refs
    ]
    served = [name for name in missing if name in model.feature_refs]
    keys = _entity_keys(settings, model, served)
    for key, kind in keys.items():
        if key not in entities.columns:
            failures.append(
                f"column {key!r} is missing: the entity key ({kind}) that looks up "
                + ", ".join(served)
            )
        elif not _fits(entities[key], kind):
            failures.append(
                f"column {key!r} is {entities[key].dtype}, expected {kind} (the entity key's type)"
            )
    for feature in model.features:
        if feature.name in entities.columns and not _fits(entities[feature.name], feature.kind):
            failures.append(
                f"column {feature.name!r} is {entities[feature.name].dtype}, expected "
                f"{_EXPECTED.get(feature.kind, feature.kind)} (the model's input type)"
            )
    if failures:
        raise DataCheckError(where, failures, outcome=NOTHING_WRITTEN)
    checked = entities.copy()
    for key, kind in keys.items():
        if kind == "int64":
            # Parquet integers with nulls arrive as floats; the key stays an integer.
            checked[key] = checked[key].astype("Int64")
    return checked


_EXPECTED = {
    "double": "a number",
    "float": "a number",
    "long": "an integer",
    "integer": "an integer",
    "int64": "an integer",
    "boolean": "a boolean",
    "string": "text",
}


def _fits(column: pd.Series, kind: str) -> bool:
    present = column.dropna()
    if kind in ("double", "float"):
        return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if kind in ("long", "integer", "int64"):
        if pd.api.types.is_integer_dtype(column):
            return True
        return pd.api.types.is_float_dtype(column) and bool((present % 1 == 0).all())
    if kind == "boolean":
        return pd.api.types.is_bool_dtype(column)
    if kind == "string":
        return pd.api.types.is_string_dtype(column) and all(isinstance(v, str) for v in present)
    return True


def _with_features(
    settings: Settings, model: ServedModel, entities: pd.DataFrame, now: datetime
) -> tuple[pd.DataFrame, pd.Series]:
    """The list with the missing inputs joined, and which rows have a null or unknown key."""
    missing = [f.name for f in model.features if f.name not in entities.columns]
    if not missing:
        return entities, pd.Series(False, index=entities.index)
    from runtime.features import historical_features, open_store

    keys = list(_entity_keys(settings, model, missing))
    entity_df = entities.copy()
    if ENTITY_TIMESTAMP not in entity_df.columns:
        entity_df[ENTITY_TIMESTAMP] = pd.Timestamp(now)
    entity_df[ENTITY_TIMESTAMP] = pd.to_datetime(entity_df[ENTITY_TIMESTAMP], utc=True)
    on = [*keys, ENTITY_TIMESTAMP]
    null_key = entity_df[keys].isna().any(axis=1)
    # Feast answers each (entity, time) once; duplicates in the list get the same values.
    unique = entity_df.loc[~null_key, on].drop_duplicates()
    joined = historical_features(
        open_store(settings), unique, [model.feature_refs[name] for name in missing]
    )
    joined[ENTITY_TIMESTAMP] = pd.to_datetime(joined[ENTITY_TIMESTAMP], utc=True)
    joined = joined.astype({key: entity_df[key].dtype for key in keys})
    frame = entity_df.merge(joined[[*on, *missing]], on=on, how="left")
    return frame, null_key.to_numpy() | frame[missing].isna().all(axis=1)


def _unknown_report(
    settings: Settings, model: ServedModel, frame: pd.DataFrame, unknown: pd.Series
) -> str:
    missing = [name for name in model.feature_refs if name in frame.columns]
    rows = frame.loc[unknown, list(_entity_keys(settings, model, missing))]
    shown = "; ".join(
        ", ".join(f"{key}={value}" for key, value in row.items())
        for row in rows.head(SHOWN_KEYS).to_dict("records")
    )
    return (
        f"{len(rows)} of {len(frame)} row(s) have a null or unknown entity key, so no feature "
        f"values as of their time (e.g. {shown}); fix the list, or leave those rows out with "
        "--unknown-entities skip"
    )
