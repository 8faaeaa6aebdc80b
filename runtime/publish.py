"""Publishing catalogue metrics to the configured sink: a JSON-lines file, CloudWatch, or nowhere.

Only metrics of ``runtime.metrics.CATALOGUE`` with exactly their declared dimensions can be
published, so what the runtime emits is what the monitoring component alarms on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.metrics import BY_NAME, Dimension, Metric
from runtime.settings import Settings

CLOUDWATCH_BATCH_SIZE = 1000
"""Most datums PutMetricData accepts in one call."""
METRICS_FILE = "metrics/metrics.jsonl"


class UnknownMetricError(ValueError):
    """A metric outside the catalogue, or with dimensions other than the declared ones."""


@dataclass(frozen=True)
class Datum:
    metric: Metric
    value: float
    dimensions: dict[str, str]
    timestamp: datetime


def datum(
    metric: Metric | str,
    value: float,
    dimensions: Mapping[Dimension | str, str],
    timestamp: datetime | None = None,
) -> Datum:
    """Validate one measurement against the catalogue."""
    name = metric if isinstance(metric, str) else metric.name
    declared = BY_NAME.get(name)
    if declared is None or (not isinstance(metric, str) and declared != metric):
        raise UnknownMetricError(f"metric {name!r} is not in the catalogue (runtime.metrics)")
    given = {str(key): str(val) for key, val in dimensions.items()}
    expected = {str(dim) for dim in declared.dimensions}
    if set(given) != expected:
        raise UnknownMetricError(
            f"metric {name!r} takes dimensions {sorted(expected)}, got {sorted(given)}"
        )
    if empty := [key for key, val in given.items() if not val]:
        raise UnknownMetricError(f"metric {name!r}: empty value for dimension(s) {empty}")
    return Datum(declared, float(value), given, timestamp or datetime.now(UTC))


class MetricsPublisher:
    """Buffers validated datums; ``flush`` sends them. Use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._buffer: list[Datum] = []

    def publish(
        self,
        metric: Metric | str,
        value: float,
        dimensions: Mapping[Dimension | str, str],
        timestamp: datetime | None = None,
    ) -> None:
        """Queue one measurement (validated now, so a bad call fails where it is made)."""
        self._buffer.append(datum(metric, value, dimensions, timestamp))

    def flush(self) -> None:
        """Send everything queued to the sink."""
        batch, self._buffer = self._buffer, []
        if batch:
            self._send(batch)

    def _send(self, batch: list[Datum]) -> None:
        raise NotImplementedError

    def __enter__(self) -> MetricsPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


class NullPublisher(MetricsPublisher):
    def _send(self, batch: list[Datum]) -> None:
        return None


class FilePublisher(MetricsPublisher):
    """JSON lines under ``home``: one object per datum, with the namespace it would go to."""

    @property
    def path(self) -> Path:
        return self._settings.home.resolve() / METRICS_FILE

    def _send(self, batch: list[Datum]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for item in batch:
                out.write(
                    json.dumps(
                        {
                            "namespace": self._settings.metrics_namespace,
                            "metric": item.metric.name,
                            "unit": str(item.metric.unit),
                            "value": item.value,
                            "dimensions": item.dimensions,
                            "timestamp": item.timestamp.isoformat(),
                        }
                    )
                    + "\n"
                )


class CloudWatchPublisher(MetricsPublisher):
    """boto3 ``put_metric_data`` in batches, to ``metrics_namespace``."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        super().__init__(settings)
        self._client = client

    def _cloudwatch(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "cloudwatch",
                region_name=self._settings.aws_region,
                endpoint_url=self._settings.aws_endpoint_url,
            )
        return self._client

    def _send(self, batch: list[Datum]) -> None:
        for start in range(0, len(batch), CLOUDWATCH_BATCH_SIZE):
            self._cloudwatch().put_metric_data(
                Namespace=self._settings.metrics_namespace,
                MetricData=[
                    {
                        "MetricName": item.metric.name,
                        "Dimensions": [
                            {"Name": key, "Value": val} for key, val in item.dimensions.items()
                        ],
                        "Timestamp": item.timestamp,
                        "Value": item.value,
                        "Unit": str(item.metric.unit),
                    }
                    for item in batch[start : start + CLOUDWATCH_BATCH_SIZE]
                ],
            )


def publisher(settings: Settings) -> MetricsPublisher:
    """The publisher for ``settings.metrics_sink``."""
    sinks: dict[str, type[MetricsPublisher]] = {
        "file": FilePublisher,
        "cloudwatch": CloudWatchPublisher,
        "none": NullPublisher,
    }
    return sinks[settings.metrics_sink](settings)
