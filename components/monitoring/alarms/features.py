"""Alarms on features: the online store serves values no older than each view's limit."""

from __future__ import annotations

from datetime import timedelta

from components import naming
from components.config.featurestore import FeatureStoreConfig
from components.monitoring.alarms.spec import (
    AlarmSpec,
    Comparison,
    MissingData,
    metric_query,
    window,
)
from components.team import Team
from runtime import metrics
from runtime.spec import format_duration


def freshness_limit(max_staleness: timedelta | None, materialization_schedule: str) -> timedelta:
    """A feature view's staleness limit: its own, else two materialization periods."""
    return max_staleness or 2 * naming.schedule_period(materialization_schedule)


def feature_alarms(*, team: Team, feature_store: FeatureStoreConfig) -> list[AlarmSpec]:
    alarms: list[AlarmSpec] = []
    t = team.name
    for view in feature_store.feature_views:
        if not view.online:
            continue
        limit = freshness_limit(view.max_staleness, feature_store.materialization.schedule)
        stale = window(limit, every_period=True)
        alarms.append(
            AlarmSpec(
                key=f"features-{view.name}-freshness",
                summary=f"Feature view {view.name}: online values older than {format_duration(limit)}",
                runbook=(
                    "check the materialization CronJob's last Jobs and logs, then the offline "
                    f"source `{view.source.path}` for new rows; rerun `mlops-runtime materialize`"
                ),
                comparison=Comparison.above,
                threshold=limit.total_seconds(),
                missing=MissingData.breaching,  # no materialization reported: values age
                evaluation_periods=stale.evaluation_periods,
                datapoints=stale.datapoints,
                queries=(
                    metric_query(
                        "age",
                        metrics.FEATURE_FRESHNESS,
                        t,
                        stale.period,
                        "Maximum",
                        feature_view=view.name,
                    ),
                ),
            )
        )
    return alarms
