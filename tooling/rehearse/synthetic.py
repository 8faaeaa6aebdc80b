"""Synthetic offline sources and labels, shaped by the stack's own feature views and pipelines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runtime.spec import FeatureStoreSpec, PipelineSpec

if TYPE_CHECKING:
    import pandas as pd

SYNTHETIC_DAYS = 30
SYNTHETIC_ENTITIES = 200
SYNTHETIC_LABELS = 5000
SYNTHETIC_SEED = 7


def synthetic_sources(
    feature_store: FeatureStoreSpec,
    pipelines: Iterable[PipelineSpec],
    *,
    end: datetime,
    seed: int = SYNTHETIC_SEED,
) -> dict[str, pd.DataFrame]:
    """Offline sources and labels shaped by the stack's own specs: path under the offline root
    -> rows. Daily snapshots per entity; labels depend on the point-in-time feature values, so
    a pipeline's quality gate can pass, and not on the protected attribute, so fairness can."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = pd.date_range(end=pd.Timestamp(end), periods=SYNTHETIC_DAYS, freq="D", tz="UTC")
    keys = {e.name: e for e in feature_store.entities}
    ids = np.arange(1, SYNTHETIC_ENTITIES + 1)
    frames: dict[str, pd.DataFrame] = {}
    values: dict[str, np.ndarray] = {}
    """`<view>:<feature>` -> standardized value per (day, entity), for the labels."""
    for view in feature_store.feature_views:
        frame: dict[str, Any] = {}
        for name in view.entities:
            entity = keys[name]
            column = np.tile(ids, len(days))
            frame[entity.join_key] = (
                column.astype("int64") if entity.value_type == "int64" else column.astype(str)
            )
        frame[view.source.timestamp_field] = np.repeat(days, len(ids))
        for feature, kind in view.features.items():
            level = rng.normal(0, 1, len(ids)) + rng.normal(0, 0.3, (len(days), len(ids)))
            values[f"{view.name}:{feature}"] = level
            frame[feature] = _typed(level, str(kind), rng)
        frames[f"{view.source.path.rstrip('/')}/part-0.parquet"] = pd.DataFrame(frame)
    views = {v.name: v for v in feature_store.feature_views}
    for pipeline in pipelines:
        day = rng.integers(7, len(days), SYNTHETIC_LABELS)
        who = rng.integers(0, len(ids), SYNTHETIC_LABELS)
        score = np.zeros(SYNTHETIC_LABELS)
        for ref in pipeline.features:
            score += rng.uniform(0.5, 1.5) * rng.choice([-1, 1]) * values[ref][day, who]
        score /= max(len(pipeline.features), 1) ** 0.5
        labels: dict[str, Any] = {}
        for name in {e for ref in pipeline.features for e in views[ref.split(":")[0]].entities}:
            key = keys[name]
            labels[key.join_key] = (
                ids[who].astype("int64") if key.value_type == "int64" else ids[who].astype(str)
            )
        hours = pd.to_timedelta(rng.integers(1, 23, SYNTHETIC_LABELS), unit="h")
        labels[pipeline.labels.timestamp_field] = days[day] + hours
        if pipeline.task == "regression":
            labels[pipeline.labels.target] = 100 + 10 * score + rng.normal(0, 2, SYNTHETIC_LABELS)
        else:
            chance = 1 / (1 + np.exp(-(2.5 * score - 1.0)))
            labels[pipeline.labels.target] = (rng.uniform(size=SYNTHETIC_LABELS) < chance).astype(
                "int64"
            )
        if pipeline.protected_attribute:
            labels[pipeline.protected_attribute] = rng.choice(["a", "b"], SYNTHETIC_LABELS)
        path = pipeline.labels.path
        path = path if path.endswith(".parquet") else f"{path.rstrip('/')}/part-0.parquet"
        frames[path] = pd.DataFrame(labels)
    return frames


def _typed(level: Any, kind: str, rng: Any) -> Any:
    import numpy as np

    if kind in ("int64", "int32"):
        return np.round(np.exp(1.5 + 0.5 * level)).astype(kind).ravel()
    if kind in ("float64", "float32"):
        return np.round(50 * np.exp(0.4 * level), 3).astype(kind).ravel()
    if kind == "bool":
        return (level > 0).ravel()
    return np.where(level > 0, "high", "low").ravel()


def write_sources(
    frames: Mapping[str, pd.DataFrame], offline_uri: str, endpoint: str, region: str
) -> list[str]:
    """Write ``frames`` as parquet under ``offline_uri`` (`s3://bucket/prefix`) in moto."""
    import io

    import boto3

    bucket, _, prefix = offline_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    written = []
    for path, frame in frames.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        key = f"{prefix.rstrip('/')}/{path}".lstrip("/")
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        written.append(f"s3://{bucket}/{key}")
    return written
