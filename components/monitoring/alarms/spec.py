"""An alarm as plain data (`AlarmSpec`), CloudWatch's limits on it, and how fast each
environment pages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import pulumi

from components.config import Environment
from runtime import metrics
from runtime.metrics import Dimension, Metric

MAX_EVALUATION_RANGE = timedelta(days=7)
"""CloudWatch refuses an alarm whose period x evaluation periods exceeds 7 days..."""
MAX_SHORT_PERIOD_RANGE = timedelta(days=1)
"""...or 1 day when its period is shorter than an hour."""
DESCRIPTION_MAX = 1024


class Comparison(StrEnum):
    above = "GreaterThanThreshold"
    at_least = "GreaterThanOrEqualToThreshold"
    below = "LessThanThreshold"


class MissingData(StrEnum):
    """What a period without data means; every alarm says so on purpose."""

    breaching = "breaching"
    not_breaching = "notBreaching"
    ignore = "ignore"
    """Keep the current state: the last measurement holds until the next."""
    missing = "missing"


@dataclass(frozen=True)
class Sensitivity:
    """How fast an alarm on a continuous signal pages: `datapoints` of `evaluation_periods`."""

    period: int
    evaluation_periods: int
    datapoints: int
    database_cpu_percent: float
    throttled_requests: float
    """Throttle events per period tolerated on an online table."""


SENSITIVITY: Mapping[Environment, Sensitivity] = {
    Environment.prod: Sensitivity(60, 5, 3, database_cpu_percent=80, throttled_requests=0),
    Environment.staging: Sensitivity(300, 3, 2, database_cpu_percent=85, throttled_requests=5),
    Environment.dev: Sensitivity(300, 3, 3, database_cpu_percent=90, throttled_requests=25),
}
"""Prod pages on 3 bad minutes of 5; dev only after 15 bad minutes, and tolerates more."""


@dataclass(frozen=True)
class Window:
    period: int
    evaluation_periods: int
    datapoints: int

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=self.period * self.evaluation_periods)


def window(length: timedelta, *, every_period: bool) -> Window:
    """Periods that cover ``length`` within CloudWatch's evaluation limits.

    Up to a day: one period of ``length``. Longer: hourly periods, at most 7 days of them;
    ``every_period`` means all of them must breach ("nothing in the whole window"), else one.
    """
    seconds = max(60, math.ceil(length.total_seconds() / 60) * 60)
    if seconds <= MAX_SHORT_PERIOD_RANGE.total_seconds():
        return Window(seconds, 1, 1)
    hours = min(math.ceil(seconds / 3600), int(MAX_EVALUATION_RANGE.total_seconds() // 3600))
    return Window(3600, hours, hours if every_period else 1)


def within_limits(period: int, evaluation_periods: int) -> bool:
    """Whether CloudWatch accepts this evaluation range."""
    limit = MAX_EVALUATION_RANGE if period >= 3600 else MAX_SHORT_PERIOD_RANGE
    valid_period = period in (10, 20, 30) or period % 60 == 0
    return valid_period and period * evaluation_periods <= limit.total_seconds()


@dataclass(frozen=True)
class MetricQuery:
    id: str
    """Query id in metric math (lower-case first letter)."""
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str
    """`Sum`, `Maximum`, ... or a percentile such as `p99`."""
    period: int


@dataclass(frozen=True)
class AlarmSpec:
    key: str
    """Stable role of the alarm: names the Pulumi resource and the physical alarm."""
    summary: str
    runbook: str
    """What the person paged does first."""
    comparison: Comparison
    threshold: float
    missing: MissingData
    evaluation_periods: int
    datapoints: int
    queries: tuple[MetricQuery, ...]
    expression: str | None = None
    """Metric math over the queries' ids; None: the single query is the alarm's metric."""

    @property
    def description(self) -> str:
        return f"{self.summary}. Runbook: {self.runbook}"[:DESCRIPTION_MAX]


def metric_query(
    id: str,
    metric: Metric,
    team: str,
    period: int,
    stat: str,
    **dimensions: pulumi.Input[str],
) -> MetricQuery:
    declared = {str(d) for d in metric.dimensions}
    given = {str(Dimension[key]): value for key, value in dimensions.items()}
    if set(given) != declared:  # the runtime publishes exactly the declared dimensions
        raise ValueError(f"{metric.name} takes dimensions {sorted(declared)}, got {sorted(given)}")
    return MetricQuery(id, metrics.namespace(team), metric.name, given, stat, period)
