"""Alarms on SageMaker endpoints' own metrics (`AWS/SageMaker`), per production variant, bound to
the real endpoint and variant names. The latency and 5XX alarms also roll a blue/green
deployment of the endpoint back (components/sagemaker.py)."""

from __future__ import annotations

from collections.abc import Sequence

from components.config.monitoring import MonitoringConfig
from components.config.serving import RealtimeEndpoint
from components.monitoring.alarms.serving import MIN_REQUESTS_FOR_ERROR_RATE, NO_TRAFFIC_WINDOW
from components.monitoring.alarms.spec import (
    SENSITIVITY,
    AlarmSpec,
    Comparison,
    MetricQuery,
    MissingData,
    window,
)
from components.sagemaker import endpoint_name, weights
from components.team import Team
from runtime.spec import format_duration

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
MAX_CLIENT_ERROR_RATE = 0.1
"""4XX answers (requests the model refuses) above this share mean callers and model disagree."""
MICROSECONDS_PER_MS = 1000
"""ModelLatency is in microseconds."""


def sagemaker_endpoints(endpoints: Sequence[RealtimeEndpoint]) -> list[RealtimeEndpoint]:
    return [e for e in endpoints if e.on_sagemaker]


def rollback_keys(endpoint: RealtimeEndpoint) -> list[str]:
    """The alarms that roll a deployment of ``endpoint`` back: latency and server errors of each
    production variant."""
    return [
        f"sagemaker-{endpoint.name}-{variant}-{kind}"
        for variant in weights(endpoint)
        for kind in ("model-latency", "5xx-rate")
    ]


def sagemaker_alarms(
    *, team: Team, config: MonitoringConfig, endpoints: Sequence[RealtimeEndpoint]
) -> list[AlarmSpec]:
    s = SENSITIVITY[team.environment]
    alarms: list[AlarmSpec] = []
    for e in sagemaker_endpoints(endpoints):
        name = endpoint_name(team, e.name)
        for variant in weights(e):
            dims = {"EndpointName": name, "VariantName": variant}
            key = f"sagemaker-{e.name}-{variant}"

            def query(
                id: str, metric: str, stat: str, period: int = s.period, dims: dict = dims
            ) -> MetricQuery:
                return MetricQuery(id, SAGEMAKER_NAMESPACE, metric, dims, stat, period)

            alarms.append(
                AlarmSpec(
                    key=f"{key}-model-latency",
                    summary=(
                        f"SageMaker endpoint {name}, variant {variant}: p99 model latency above "
                        f"the SLO of {e.slo.p99_latency_ms} ms"
                    ),
                    runbook=(
                        "a deployment in progress rolls back on this alarm; otherwise check the "
                        "variant's instance count (autoscaler at maxCount?) and CPU, the online "
                        f"store, and whether the {variant} version is slower "
                        f"(`mlops-runtime rollback {e.model}`)"
                    ),
                    comparison=Comparison.above,
                    threshold=e.slo.p99_latency_ms * MICROSECONDS_PER_MS,
                    missing=MissingData.not_breaching,
                    evaluation_periods=s.evaluation_periods,
                    datapoints=s.datapoints,
                    queries=(query("latency", "ModelLatency", "p99"),),
                )
            )
            for code, threshold, runbook in (
                (
                    "5xx",
                    e.slo.max_error_rate,
                    "a deployment in progress rolls back on this alarm; otherwise read the "
                    f"endpoint's log group (/aws/sagemaker/Endpoints/{name}) and roll the "
                    f"model back (`mlops-runtime rollback {e.model}`)",
                ),
                (
                    "4xx",
                    MAX_CLIENT_ERROR_RATE,
                    "callers send what the model refuses (422: fields, 415: content type, 413: "
                    "size): compare the callers' requests with the model's signature in the "
                    "endpoint's log group",
                ),
            ):
                alarms.append(
                    AlarmSpec(
                        key=f"{key}-{code}-rate",
                        summary=(
                            f"SageMaker endpoint {name}, variant {variant}: {code.upper()} answers "
                            f"above {threshold:.2%} of invocations"
                        ),
                        runbook=runbook,
                        comparison=Comparison.above,
                        threshold=threshold,
                        missing=MissingData.not_breaching,
                        evaluation_periods=s.evaluation_periods,
                        datapoints=s.datapoints,
                        queries=(
                            query("errors", f"Invocation{code.upper()}Errors", "Sum"),
                            query("requests", "Invocations", "Sum"),
                        ),
                        expression=(
                            f"IF(requests >= {MIN_REQUESTS_FOR_ERROR_RATE}, "
                            "FILL(errors, 0) / requests, 0)"
                        ),
                    )
                )
            if config.no_traffic_alarm:
                traffic = window(NO_TRAFFIC_WINDOW, every_period=True)
                alarms.append(
                    AlarmSpec(
                        key=f"{key}-no-invocations",
                        summary=(
                            f"SageMaker endpoint {name}, variant {variant}: no invocations for "
                            f"{format_duration(NO_TRAFFIC_WINDOW)}"
                        ),
                        runbook=(
                            "check the endpoint is InService and the variant's weight, then ask "
                            "the calling service whether it stopped calling"
                        ),
                        comparison=Comparison.below,
                        threshold=1,
                        missing=MissingData.breaching,
                        evaluation_periods=traffic.evaluation_periods,
                        datapoints=traffic.datapoints,
                        queries=(query("requests", "Invocations", "Sum", traffic.period),),
                    )
                )
    return alarms
