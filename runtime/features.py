"""Feast feature store of a team: definitions from the spec, apply, materialize, training sets."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast import ValueType as FeastValueType
from feast import types as feast_types
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from runtime import spec
from runtime.errors import ConfigurationError, DataCheckError
from runtime.feast_config import feast_repo_path, render_feature_store_yaml
from runtime.metrics import FEATURE_FRESHNESS, Dimension
from runtime.publish import publisher
from runtime.settings import Settings
from runtime.storage import offline_uri, parquet_schema, storage_options

_DTYPES = {
    spec.ValueType.int64: feast_types.Int64,
    spec.ValueType.int32: feast_types.Int32,
    spec.ValueType.float64: feast_types.Float64,
    spec.ValueType.float32: feast_types.Float32,
    spec.ValueType.string: feast_types.String,
    spec.ValueType.bool: feast_types.Bool,
}
_KEY_TYPES = {
    spec.ValueType.int64: FeastValueType.INT64,
    spec.ValueType.string: FeastValueType.STRING,
}
ENTITY_TIMESTAMP = "event_timestamp"
"""Timestamp column of the entity dataframe handed to Feast."""


@dataclass(frozen=True)
class Freshness:
    feature_view: str
    newest_value: datetime | None
    age_seconds: float | None


def feature_definitions(settings: Settings) -> list[Entity | FeatureView]:
    """Feast Entity and FeatureView objects (with their FileSources) for the team's spec."""
    declared = settings.feature_store
    entities = {e.name: _entity(e) for e in declared.entities}
    views: list[Entity | FeatureView] = []
    for view in declared.feature_views:
        unknown = [name for name in view.entities if name not in entities]
        if unknown:
            raise ConfigurationError(
                f"feature view {view.name!r} references unknown entit(ies) {unknown}; declared "
                f"entities are {sorted(entities)} (MLOPS_FEATURE_STORE)"
            )
        views.append(
            FeatureView(
                name=view.name,
                entities=[entities[name] for name in view.entities],
                ttl=view.ttl,
                schema=[Field(name=n, dtype=_DTYPES[t]) for n, t in view.features.items()],
                source=_source(settings, view),
                online=view.online,
            )
        )
    return [*entities.values(), *views]


def _entity(declared: spec.Entity) -> Entity:
    return Entity(
        name=declared.name,
        join_keys=[declared.join_key],
        value_type=_KEY_TYPES[declared.value_type],
        description=declared.description,
    )


def _source(settings: Settings, view: spec.FeatureView) -> FileSource:
    return FileSource(
        name=f"{view.name}_source",
        path=offline_uri(settings, view.source.path),
        timestamp_field=view.source.timestamp_field,
        created_timestamp_column=view.source.created_timestamp_field or "",
        s3_endpoint_override=settings.aws_endpoint_url or "",
    )


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore configured by ``render_feature_store_yaml(settings)``."""
    repo = feast_repo_path(settings)
    repo.mkdir(parents=True, exist_ok=True)
    config = repo / "feature_store.yaml"
    config.write_text(render_feature_store_yaml(settings), encoding="utf-8")
    with _quiet():
        return FeatureStore(repo_path=str(repo), fs_yaml_file=config)


def apply(settings: Settings, store: FeatureStore | None = None) -> FeatureStore:
    """Register the team's definitions in the Feast registry (online tables must already exist)."""
    definitions = feature_definitions(settings)
    check_sources(settings, settings.feature_store.feature_views)
    store = store or open_store(settings)
    with _quiet():
        store.apply(definitions)
    return store


def check_sources(settings: Settings, views: Sequence[spec.FeatureView]) -> None:
    """Each source exists and carries its timestamp, join keys and features with declared types."""
    keys = {e.name: e for e in settings.feature_store.entities}
    failures: list[str] = []
    for view in views:
        schema = parquet_schema(settings, view.source.path, f"feature view {view.name!r}")
        where = f"{view.name} ({offline_uri(settings, view.source.path)})"
        expected: dict[str, str] = {view.source.timestamp_field: "timestamp"}
        for name in view.entities:
            if name in keys:
                expected[keys[name].join_key] = str(keys[name].value_type)
        expected |= {name: str(kind) for name, kind in view.features.items()}
        for column, kind in expected.items():
            if column not in schema.names:
                failures.append(f"{where}: missing column {column!r}")
            elif not _compatible(schema.field(column).type, kind):
                failures.append(
                    f"{where}: column {column!r} is {schema.field(column).type}, expected {kind}"
                )
    if failures:
        raise DataCheckError("the feature sources", failures)


def _compatible(arrow: pa.DataType, kind: str) -> bool:
    if kind == "timestamp":
        return pa.types.is_timestamp(arrow)
    if kind in ("int64", "int32"):
        return pa.types.is_integer(arrow)
    if kind in ("float64", "float32"):
        return pa.types.is_floating(arrow) or pa.types.is_integer(arrow)
    if kind == "string":
        return pa.types.is_string(arrow) or pa.types.is_large_string(arrow)
    return pa.types.is_boolean(arrow)


def materialize(
    settings: Settings,
    end: datetime | None = None,
    console: Console | None = None,
    *,
    shard: int = 0,
) -> list[Freshness]:
    """Apply, then materialize the online views of share ``shard`` (of
    ``settings.materialize_shards``) up to ``end``; publishes FEATURE_FRESHNESS."""
    views = views_of_share(settings, shard)
    end = end or datetime.now(UTC)
    # Every share applies the same definitions: Feast's SQL registry leaves unchanged objects be.
    store = apply(settings)
    results: list[Freshness] = []
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} feature views"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress, publisher(settings) as metrics:
        task = progress.add_task("materializing", total=len(views))
        for view in views:
            progress.update(task, description=f"materializing {view.name}")
            with _quiet():
                store.materialize_incremental(end_date=end, feature_views=[view.name])
            fresh = _freshness(settings, view, end)
            results.append(fresh)
            if fresh.age_seconds is not None:
                metrics.publish(
                    FEATURE_FRESHNESS, fresh.age_seconds, {Dimension.feature_view: view.name}
                )
            progress.advance(task)
        progress.update(task, description="materialized")
    return results


def views_of_share(settings: Settings, shard: int) -> list[spec.FeatureView]:
    """The online views share ``shard`` materializes: each view in exactly one share, the views
    dealt round-robin in declared order so shares differ by at most one view."""
    shares = settings.materialize_shards
    if not 0 <= shard < shares:
        raise ConfigurationError(
            f"shard {shard} is not one of 0..{shares - 1} (MLOPS_MATERIALIZE_SHARDS)"
        )
    online = [v for v in settings.feature_store.feature_views if v.online]
    return online[shard::shares]


def _freshness(settings: Settings, view: spec.FeatureView, end: datetime) -> Freshness:
    uri = offline_uri(settings, view.source.path)
    stamps = pd.read_parquet(
        uri, columns=[view.source.timestamp_field], storage_options=storage_options(settings, uri)
    )[view.source.timestamp_field]
    stamps = pd.to_datetime(stamps, utc=True)
    stamps = stamps[stamps <= pd.Timestamp(end)]
    if stamps.empty:
        return Freshness(view.name, None, None)
    newest = stamps.max().to_pydatetime()
    return Freshness(view.name, newest, (end - newest).total_seconds())


def historical_features(
    store: FeatureStore, entity_df: pd.DataFrame, features: Sequence[str]
) -> pd.DataFrame:
    """Point-in-time join of ``features`` onto ``entity_df`` (its ``event_timestamp`` column)."""
    with _quiet():
        return store.get_historical_features(entity_df=entity_df, features=list(features)).to_df()


def views_of(settings: Settings, features: Sequence[str]) -> list[spec.FeatureView]:
    """The declared feature views that ``features`` (``view:feature``) come from."""
    declared = {v.name: v for v in settings.feature_store.feature_views}
    problems: list[str] = []
    used: dict[str, spec.FeatureView] = {}
    for ref in features:
        view_name, feature = ref.split(":", 1)
        view = declared.get(view_name)
        if view is None:
            problems.append(f"{ref}: no feature view {view_name!r} (declared: {sorted(declared)})")
        elif feature not in view.features:
            problems.append(f"{ref}: view {view_name!r} has no feature {feature!r}")
        else:
            used[view_name] = view
    if problems:
        raise ConfigurationError("unknown features: " + "; ".join(problems))
    return list(used.values())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # Feast prints banners and warnings to stdout; the CLI's own output stays readable.
    feast_logger = logging.getLogger("feast")
    level = feast_logger.level
    feast_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        feast_logger.setLevel(level)
