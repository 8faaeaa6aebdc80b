"""Alarms on the drift the drift monitor measures, per endpoint and per configured feature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from components import naming
from components.config.monitoring import MonitoringConfig
from components.config.serving import RealtimeEndpoint
from components.config.training import TrainingPipeline
from components.monitoring.alarms.spec import (
    AlarmSpec,
    Comparison,
    MissingData,
    Window,
    metric_query,
    window,
)
from components.team import Team
from runtime import metrics


def feature_drift_alarms(
    thresholds: Mapping[str, float],
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
) -> list[tuple[str, str, float]]:
    """(endpoint, feature, threshold) for each configured feature an endpoint's model uses."""
    found: set[tuple[str, str, float]] = set()
    for endpoint in endpoints:
        for pipeline in pipelines:
            if pipeline.model_name != endpoint.model:
                continue
            for reference in pipeline.features:
                feature = reference.split(":", 1)[1]
                if feature in thresholds:
                    found.add((endpoint.name, feature, thresholds[feature]))
    return sorted(found)


def drift_window(config: MonitoringConfig) -> Window:
    """The drift monitor publishes once per run; a measurement holds until the next."""
    return window(naming.schedule_period(config.drift.schedule), every_period=False)


def drift_alarms(
    *,
    team: Team,
    config: MonitoringConfig,
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
) -> list[AlarmSpec]:
    alarms: list[AlarmSpec] = []
    t = team.name
    drift = drift_window(config)
    drift_runbook = (
        "open the drift report of the latest monitor run, compare the training data window with "
        "current traffic, and retrain (or fix the upstream feature) if the shift is real"
    )
    for e in endpoints:
        alarms.append(
            AlarmSpec(
                key=f"drift-{e.name}",
                summary=(
                    f"Endpoint {e.name}: largest feature PSI above {config.drift.psi_threshold}"
                ),
                runbook=drift_runbook,
                comparison=Comparison.above,
                threshold=config.drift.psi_threshold,
                missing=MissingData.ignore,
                evaluation_periods=drift.evaluation_periods,
                datapoints=drift.datapoints,
                queries=(
                    metric_query(
                        "psi",
                        metrics.MAX_FEATURE_DRIFT,
                        t,
                        drift.period,
                        "Maximum",
                        endpoint=e.name,
                    ),
                ),
            )
        )
    for endpoint, feature, threshold in feature_drift_alarms(
        config.drift.feature_thresholds, endpoints, pipelines
    ):
        alarms.append(
            AlarmSpec(
                key=f"drift-{endpoint}-{feature}",
                summary=f"Endpoint {endpoint}: PSI of feature {feature} above {threshold}",
                runbook=drift_runbook,
                comparison=Comparison.above,
                threshold=threshold,
                missing=MissingData.ignore,
                evaluation_periods=drift.evaluation_periods,
                datapoints=drift.datapoints,
                queries=(
                    metric_query(
                        "psi",
                        metrics.FEATURE_DRIFT,
                        t,
                        drift.period,
                        "Maximum",
                        endpoint=endpoint,
                        feature=feature,
                    ),
                ),
            )
        )
    return alarms
