"""Alarms on what the callers of each real-time endpoint experience: latency, errors, traffic,
the canary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from components.config.monitoring import MonitoringConfig
from components.config.serving import RealtimeEndpoint
from components.monitoring.alarms.spec import (
    SENSITIVITY,
    AlarmSpec,
    Comparison,
    MissingData,
    Sensitivity,
    metric_query,
    window,
)
from components.team import Team
from runtime import metrics
from runtime.spec import format_duration

MIN_REQUESTS_FOR_ERROR_RATE = 10
"""Fewer requests than this in a period say nothing about an error rate (1 of 2 is not 50 %)."""
NO_TRAFFIC_WINDOW = timedelta(minutes=15)


def realtime_endpoints(endpoints: Sequence[object]) -> list[RealtimeEndpoint]:
    return [e for e in endpoints if isinstance(e, RealtimeEndpoint)]


def serving_alarms(
    *, team: Team, config: MonitoringConfig, endpoints: Sequence[RealtimeEndpoint]
) -> list[AlarmSpec]:
    s = SENSITIVITY[team.environment]
    alarms: list[AlarmSpec] = []
    t = team.name
    for e in endpoints:
        champion = {"endpoint": e.name, "variant": metrics.VARIANT_CHAMPION}
        alarms.append(
            AlarmSpec(
                key=f"serving-{e.name}-p99-latency",
                summary=f"Endpoint {e.name}: p99 latency above its SLO of {e.slo.p99_latency_ms} ms",
                runbook=(
                    "check the endpoint's CPU and replica count (HPA at max?), online store "
                    "latency and throttling, and whether a new model version is slower; scale "
                    "out or roll back (`mlops-runtime rollback "
                    f"{e.model}`)"
                ),
                comparison=Comparison.above,
                threshold=e.slo.p99_latency_ms,
                missing=MissingData.not_breaching,  # no requests, no latency: no-traffic watches
                evaluation_periods=s.evaluation_periods,
                datapoints=s.datapoints,
                queries=(
                    metric_query(
                        "latency", metrics.PREDICTION_LATENCY, t, s.period, "p99", **champion
                    ),
                ),
            )
        )
        alarms.append(
            _error_rate(
                key=f"serving-{e.name}-error-rate",
                summary=f"Endpoint {e.name}: error rate above its SLO of {e.slo.max_error_rate:.2%}",
                runbook=(
                    "read the serving pods' logs for the failing requests; if a model version "
                    f"change caused it, roll back (`mlops-runtime rollback {e.model}`)"
                ),
                threshold=e.slo.max_error_rate,
                team=t,
                s=s,
                dimensions=champion,
            )
        )
        if config.no_traffic_alarm:
            traffic = window(NO_TRAFFIC_WINDOW, every_period=True)
            alarms.append(
                AlarmSpec(
                    key=f"serving-{e.name}-no-traffic",
                    summary=f"Endpoint {e.name}: no requests for {format_duration(NO_TRAFFIC_WINDOW)}",
                    runbook=(
                        "check that the endpoint's pods are ready and its Service/Ingress routes "
                        "traffic, then ask the calling service whether it stopped calling"
                    ),
                    comparison=Comparison.below,
                    threshold=1,
                    missing=MissingData.breaching,  # no datapoint is exactly the symptom
                    evaluation_periods=traffic.evaluation_periods,
                    datapoints=traffic.datapoints,
                    queries=(
                        metric_query(
                            "requests", metrics.PREDICTIONS, t, traffic.period, "Sum", **champion
                        ),
                    ),
                )
            )
        if e.canary is not None:
            alarms.append(
                _error_rate(
                    key=f"serving-{e.name}-canary-error-rate",
                    summary=(
                        f"Endpoint {e.name}: canary ({e.canary.alias}, {e.canary.weight} % of "
                        f"requests) error rate above {e.slo.max_error_rate:.2%}"
                    ),
                    runbook=(
                        "the drift monitor's canary guard rolls the canary back; if it did not, "
                        f"move the `{e.canary.alias}` alias of {e.model} back to the champion "
                        "version and investigate the candidate's run"
                    ),
                    threshold=e.slo.max_error_rate,
                    team=t,
                    s=s,
                    dimensions={"endpoint": e.name, "variant": metrics.VARIANT_CHALLENGER},
                )
            )
    return alarms


def _error_rate(
    *,
    key: str,
    summary: str,
    runbook: str,
    threshold: float,
    team: str,
    s: Sensitivity,
    dimensions: Mapping[str, str],
) -> AlarmSpec:
    return AlarmSpec(
        key=key,
        summary=summary,
        runbook=runbook,
        comparison=Comparison.above,
        threshold=threshold,
        missing=MissingData.not_breaching,  # no requests: no error rate (no-traffic watches)
        evaluation_periods=s.evaluation_periods,
        datapoints=s.datapoints,
        queries=(
            metric_query("errors", metrics.PREDICTION_ERRORS, team, s.period, "Sum", **dimensions),
            metric_query("requests", metrics.PREDICTIONS, team, s.period, "Sum", **dimensions),
        ),
        expression=(
            f"IF(requests >= {MIN_REQUESTS_FOR_ERROR_RATE}, FILL(errors, 0) / requests, 0)"
        ),
    )
