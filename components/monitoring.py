"""`mlops:monitoring:Monitoring`: who gets paged, by which alarms on which real resources.

Alarms are planned as plain data first (``plan_alarms``, unit-tested without mocks), then created
directly, never inside ``apply``, so that a preview shows every one of them. Metric names, units,
dimensions and the namespace come from the runtime's catalogue (``runtime.metrics``); the only
names typed here are AWS's own (``AWS/RDS``, ``AWS/DynamoDB``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, naming, workload
from components.config import Environment
from components.config.featurestore import FeatureStoreConfig
from components.config.monitoring import MonitoringConfig
from components.config.registry import Database
from components.config.resources import ContainerResources
from components.config.serving import RealtimeEndpoint
from components.config.training import TrainingPipeline
from components.team import ClusterInfo, DataPlane, Team
from runtime import metrics
from runtime.metrics import Dimension, Metric
from runtime.spec import EndpointSpec, PipelineSpec, format_duration

# AWS's own metrics for the resources the data plane runs on.
RDS_NAMESPACE = "AWS/RDS"
RDS_DIMENSION = "DBInstanceIdentifier"
DYNAMODB_NAMESPACE = "AWS/DynamoDB"
DYNAMODB_DIMENSION = "TableName"
AWS_NAMESPACES = (RDS_NAMESPACE, DYNAMODB_NAMESPACE)

MAX_EVALUATION_RANGE = timedelta(days=7)
"""CloudWatch refuses an alarm whose period x evaluation periods exceeds 7 days..."""
MAX_SHORT_PERIOD_RANGE = timedelta(days=1)
"""...or 1 day when its period is shorter than an hour."""
TOPIC_NAME_MAX = 256
DASHBOARD_NAME_MAX = 255
DESCRIPTION_MAX = 1024

MIN_REQUESTS_FOR_ERROR_RATE = 10
"""Fewer requests than this in a period say nothing about an error rate (1 of 2 is not 50 %)."""
NO_TRAFFIC_WINDOW = timedelta(minutes=15)
FAILED_RUN_PERIOD = timedelta(hours=1)
"""A failed run keeps its alarm up this long, then the alarm returns to OK."""
FREE_STORAGE_FRACTION = 0.10
"""Alarm below this share of the allocated storage; storage autoscaling acts at 10 % of the
current (larger or equal) allocation first, so this fires only when autoscaling cannot help."""
CONNECTIONS_FRACTION = 0.80
"""Alarm above this share of PostgreSQL's default max_connections for the instance class."""
DRIFT_MONITOR_RESOURCES = ContainerResources(cpu="250m", memory="1Gi")
DRIFT_MONITOR_SERVICE_ACCOUNT = "drift-monitor"
DRIFT_MONITOR_MAX_RUNTIME = timedelta(hours=1)


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


_MEMORY_OF_LARGE_GIB = {"t": 8, "m": 8, "c": 4, "r": 16, "x": 32, "z": 16}
_FRACTION_OF_LARGE = {"micro": 0.125, "small": 0.25, "medium": 0.5, "large": 1.0, "xlarge": 2.0}


def instance_memory_gib(instance_class: str) -> float | None:
    """Memory of an RDS instance class (`db.r6g.xlarge` -> 32), None when unknown."""
    _, family, size = instance_class.split(".", 2)
    large = _MEMORY_OF_LARGE_GIB.get(family[:1])
    if large is None:
        return None
    if size in _FRACTION_OF_LARGE:
        return large * _FRACTION_OF_LARGE[size]
    if size.endswith("xlarge") and size.removesuffix("xlarge").isdigit():
        return large * 2 * int(size.removesuffix("xlarge"))
    return None


def postgres_max_connections(instance_class: str) -> int:
    """RDS PostgreSQL's default max_connections: LEAST(DBInstanceClassMemory / 9531392, 5000).

    DBInstanceClassMemory is what remains after the OS and RDS processes; ~85 % of the memory.
    """
    memory = instance_memory_gib(instance_class)
    if memory is None:
        return 100
    return min(int(memory * 2**30 * 0.85 / 9531392), 5000)


# --- plan ---------------------------------------------------------------------------------------


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


def _query(
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


def realtime_endpoints(endpoints: Sequence[object]) -> list[RealtimeEndpoint]:
    return [e for e in endpoints if isinstance(e, RealtimeEndpoint)]


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


def freshness_limit(max_staleness: timedelta | None, materialization_schedule: str) -> timedelta:
    """A feature view's staleness limit: its own, else two materialization periods."""
    return max_staleness or 2 * naming.schedule_period(materialization_schedule)


def plan_alarms(
    *,
    team: Team,
    config: MonitoringConfig,
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
    feature_store: FeatureStoreConfig,
    database: Database,
    database_instance_id: pulumi.Input[str],
    online_table_names: Mapping[str, pulumi.Input[str]],
) -> list[AlarmSpec]:
    """Every alarm of a team's stack, in a stable order."""
    s = SENSITIVITY[team.environment]
    alarms: list[AlarmSpec] = []
    t = team.name

    # Serving: what the callers of each real-time endpoint experience.
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
                    _query("latency", metrics.PREDICTION_LATENCY, t, s.period, "p99", **champion),
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
                        _query(
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

    # Drift: the drift monitor publishes once per run; a measurement holds until the next.
    drift = window(naming.schedule_period(config.drift.schedule), every_period=False)
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
                    _query(
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
                    _query(
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

    # Training: a run that failed, and a schedule that stopped producing models.
    failed = window(FAILED_RUN_PERIOD, every_period=False)
    for p in pipelines:
        alarms.append(
            AlarmSpec(
                key=f"training-{p.name}-failed-run",
                summary=f"Pipeline {p.name}: a training run failed (error or gate)",
                runbook=(
                    "read the failed Job's logs and the MLflow run: a data check or a quality/"
                    "fairness gate refused the model, or the run crashed; the champion keeps serving"
                ),
                comparison=Comparison.at_least,
                threshold=1,
                missing=MissingData.not_breaching,  # published only when a run fails
                evaluation_periods=failed.evaluation_periods,
                datapoints=failed.datapoints,
                queries=(
                    _query(
                        "failed",
                        metrics.TRAINING_RUNS_FAILED,
                        t,
                        failed.period,
                        "Sum",
                        pipeline=p.name,
                    ),
                ),
            )
        )
        expected = (config.missed_runs + 1) * naming.schedule_period(p.schedule)
        missed = window(expected, every_period=True)
        runbook = (
            "check the training CronJob (suspended? schedule?), its last Jobs and the "
            "node pool (spot capacity, GPU quota); run it by hand with "
            f"`mlops-runtime train --pipeline {p.name}`"
        )
        summary = (
            f"Pipeline {p.name}: no new model version within {format_duration(expected)} "
            f"({config.missed_runs + 1} x the period of `{p.schedule}`)"
        )
        if missed.span < expected and p.model_name in {e.model for e in endpoints}:
            # Longer than CloudWatch can look back: alarm on the age the drift monitor reports.
            alarms.append(
                AlarmSpec(
                    key=f"training-{p.name}-missed-run",
                    summary=summary,
                    runbook=runbook,
                    comparison=Comparison.above,
                    threshold=expected.total_seconds(),
                    missing=MissingData.breaching,  # no age reported: the monitor itself is down
                    evaluation_periods=drift.evaluation_periods,
                    datapoints=drift.datapoints,
                    queries=(
                        _query(
                            "age", metrics.MODEL_AGE, t, drift.period, "Maximum", pipeline=p.name
                        ),
                    ),
                )
            )
            continue
        capped = ", capped at CloudWatch's 7-day limit" if missed.span < expected else ""
        alarms.append(
            AlarmSpec(
                key=f"training-{p.name}-missed-run",
                summary=(
                    f"Pipeline {p.name}: no successful run within {format_duration(missed.span)} "
                    f"({config.missed_runs + 1} x the period of `{p.schedule}`"
                    f"{capped})"
                ),
                runbook=runbook,
                comparison=Comparison.below,
                threshold=1,
                missing=MissingData.breaching,  # nothing published is exactly the symptom
                evaluation_periods=missed.evaluation_periods,
                datapoints=missed.datapoints,
                queries=(
                    _query(
                        "succeeded",
                        metrics.TRAINING_RUNS_SUCCEEDED,
                        t,
                        missed.period,
                        "Sum",
                        pipeline=p.name,
                    ),
                ),
            )
        )

    # Features: the online store serves values no older than each view's limit.
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
                    _query(
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

    # Registry database: the real instance.
    rds = {RDS_DIMENSION: database_instance_id}
    storage_bytes = database.storage_gb * 2**30 * FREE_STORAGE_FRACTION
    connections = math.floor(
        postgres_max_connections(database.instance_class) * CONNECTIONS_FRACTION
    )
    for key, summary, runbook, metric, stat, comparison, threshold in (
        (
            "registry-db-cpu",
            f"Registry database: CPU above {s.database_cpu_percent:g} %",
            "look for long MLflow queries (Performance Insights) and runaway clients; "
            "scale the instance class (`mlops:registry.database.instanceClass`)",
            "CPUUtilization",
            "Average",
            Comparison.above,
            s.database_cpu_percent,
        ),
        (
            "registry-db-storage",
            f"Registry database: less than {FREE_STORAGE_FRACTION:.0%} of "
            f"{database.storage_gb} GB free",
            "storage autoscaling has reached its ceiling or cannot keep up; raise "
            "`mlops:registry.database.maxStorageGb` or prune old MLflow runs",
            "FreeStorageSpace",
            "Minimum",
            Comparison.below,
            storage_bytes,
        ),
        (
            "registry-db-connections",
            f"Registry database: more than {connections} connections "
            f"({CONNECTIONS_FRACTION:.0%} of max_connections for {database.instance_class})",
            "find the client holding connections (MLflow server replicas, training jobs); "
            "restart it or scale the instance class",
            "DatabaseConnections",
            "Maximum",
            Comparison.above,
            float(connections),
        ),
    ):
        alarms.append(
            AlarmSpec(
                key=key,
                summary=summary,
                runbook=runbook,
                comparison=comparison,
                threshold=threshold,
                missing=MissingData.missing,  # RDS reports every minute unless stopped
                evaluation_periods=s.evaluation_periods,
                datapoints=s.datapoints,
                queries=(MetricQuery("db", RDS_NAMESPACE, metric, rds, stat, max(s.period, 60)),),
            )
        )

    # Online store: DynamoDB reports throttling per table only as Read/WriteThrottleEvents
    # (ThrottledRequests carries an Operation dimension too, so a TableName-only alarm on it
    # would watch a metric that never exists).
    for view_name, table in sorted(online_table_names.items()):
        dims = {DYNAMODB_DIMENSION: table}
        alarms.append(
            AlarmSpec(
                key=f"online-{view_name}-throttles",
                summary=(
                    f"Online table of {view_name}: more than {s.throttled_requests:g} throttled "
                    "reads/writes per period"
                ),
                runbook=(
                    "check the table's consumed vs provisioned capacity and autoscaling limits "
                    "(`mlops:featureStore.onlineCapacity`), or a hot partition key; serving reads "
                    "fail while this lasts"
                ),
                comparison=Comparison.above,
                threshold=s.throttled_requests,
                missing=MissingData.not_breaching,  # published only when requests are throttled
                evaluation_periods=s.evaluation_periods,
                datapoints=s.datapoints,
                queries=(
                    MetricQuery(
                        "reads", DYNAMODB_NAMESPACE, "ReadThrottleEvents", dims, "Sum", s.period
                    ),
                    MetricQuery(
                        "writes", DYNAMODB_NAMESPACE, "WriteThrottleEvents", dims, "Sum", s.period
                    ),
                ),
                expression="FILL(reads, 0) + FILL(writes, 0)",
            )
        )
    for alarm in alarms:  # a planning mistake, caught before any engine sees it
        for query in alarm.queries:
            if not within_limits(query.period, alarm.evaluation_periods):
                raise ValueError(f"alarm {alarm.key}: evaluation range beyond CloudWatch's limit")
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
            _query("errors", metrics.PREDICTION_ERRORS, team, s.period, "Sum", **dimensions),
            _query("requests", metrics.PREDICTIONS, team, s.period, "Sum", **dimensions),
        ),
        expression=(
            f"IF(requests >= {MIN_REQUESTS_FOR_ERROR_RATE}, FILL(errors, 0) / requests, 0)"
        ),
    )


# --- dashboard ----------------------------------------------------------------------------------


def dashboard_body(
    *,
    team: Team,
    config: MonitoringConfig,
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
    feature_store: FeatureStoreConfig,
) -> dict[str, Any]:
    """The CloudWatch dashboard (body as a dict), every widget drawn from the metric catalogue."""
    ns = metrics.namespace(team.name)
    widgets: list[dict[str, Any]] = []
    row = 0

    def graph(
        title: str,
        lines: list[list[Any]],
        *,
        x: int,
        width: int = 8,
        stat: str = "Sum",
        period: int = 300,
        limits: Sequence[tuple[str, float]] = (),
    ) -> None:
        properties: dict[str, Any] = {
            "title": title,
            "view": "timeSeries",
            "region": team.region,
            "stat": stat,
            "period": period,
            "metrics": lines,
        }
        if limits:
            properties["annotations"] = {
                "horizontal": [{"label": label, "value": value} for label, value in limits]
            }
        widgets.append(
            {
                "type": "metric",
                "x": x,
                "y": row,
                "width": width,
                "height": 6,
                "properties": properties,
            }
        )

    def line(metric: Metric, stat: str | None = None, **dimensions: str) -> list[Any]:
        entry: list[Any] = [ns, metric.name]
        for key, value in dimensions.items():
            entry += [str(Dimension[key]), value]
        options = {
            "label": " ".join([metric.name, *dimensions.values(), *([stat] if stat else [])])
        }
        if stat:
            options["stat"] = stat
        return [*entry, options]

    widgets.append(
        {
            "type": "text",
            "x": 0,
            "y": row,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"# {team.name} ({team.environment}): MLOps\n"
                f"Metrics in `{ns}`; alarms page the `{topic_name(team)}` "
                "topic.",
            },
        }
    )
    row += 2
    for e in endpoints:
        variants = [metrics.VARIANT_CHAMPION] + (
            [metrics.VARIANT_CHALLENGER] if e.canary or e.shadow else []
        )
        graph(
            f"{e.name}: requests and errors",
            [
                line(m, endpoint=e.name, variant=v)
                for v in variants
                for m in (metrics.PREDICTIONS, metrics.PREDICTION_ERRORS)
            ],
            x=0,
        )
        graph(
            f"{e.name}: latency (ms)",
            [
                line(metrics.PREDICTION_LATENCY, stat, endpoint=e.name, variant=v)
                for v in variants
                for stat in ("p50", "p99")
            ],
            x=8,
            stat="p99",
            limits=[("p99 SLO", e.slo.p99_latency_ms)],
        )
        graph(
            f"{e.name}: drift (PSI)",
            [
                line(metrics.MAX_FEATURE_DRIFT, endpoint=e.name),
                line(metrics.PREDICTION_DRIFT, endpoint=e.name),
                *(
                    line(metrics.FEATURE_DRIFT, endpoint=e.name, feature=feature)
                    for _, feature, _ in feature_drift_alarms(
                        config.drift.feature_thresholds, [e], pipelines
                    )
                ),
            ],
            x=16,
            stat="Maximum",
            period=3600,
            limits=[("PSI threshold", config.drift.psi_threshold)],
        )
        row += 6
    for p in pipelines:
        graph(
            f"{p.name}: training runs",
            [
                line(metrics.TRAINING_RUNS_SUCCEEDED, pipeline=p.name),
                line(metrics.TRAINING_RUNS_FAILED, pipeline=p.name),
            ],
            x=0,
            width=12,
            period=86400,
        )
        graph(
            f"{p.name}: model quality and fairness",
            [
                line(metrics.MODEL_QUALITY, pipeline=p.name),
                line(metrics.FAIRNESS_GAP, pipeline=p.name),
            ],
            x=12,
            width=12,
            stat="Maximum",
            period=86400,
        )
        row += 6
    online = [v for v in feature_store.feature_views if v.online]
    if online:
        graph(
            "Feature freshness (s)",
            [line(metrics.FEATURE_FRESHNESS, feature_view=v.name) for v in online],
            x=0,
            width=24,
            stat="Maximum",
            period=3600,
            limits=[
                (
                    f"{v.name} limit",
                    freshness_limit(
                        v.max_staleness, feature_store.materialization.schedule
                    ).total_seconds(),
                )
                for v in online
            ],
        )
    return {"widgets": widgets}


# --- drift monitor permissions ------------------------------------------------------------------


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def drift_monitor_policy(
    *,
    partition: str,
    prediction_log_uris: Sequence[str],
    artifact_uri: str,
    metrics_namespace: str,
    topic_arn: str,
    topic_key_arn: str,
    data_key_arns: Sequence[str],
    region: str,
) -> dict[str, Any]:
    """Exactly what `mlops-runtime monitor` needs: read logs and models, read the endpoints'
    error counts (the canary guard), publish, notify."""
    prefixes: dict[str, list[str]] = {}
    for uri in [*prediction_log_uris, artifact_uri.rstrip("/") + "/"]:
        bucket, prefix = _bucket_and_prefix(uri)
        prefixes.setdefault(bucket, []).append(prefix)
    statements = [
        iam.statement(
            "ReadPredictionLogsAndModels",
            ["s3:GetObject"],
            [
                naming.s3_arn(f"s3://{bucket}/{prefix}*", partition)
                for bucket, listed in prefixes.items()
                for prefix in listed
            ],
        ),
        *(
            iam.statement(
                f"List{index}",
                ["s3:ListBucket"],
                [naming.s3_arn(f"s3://{bucket}", partition)],
                {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in listed]}},
            )
            for index, (bucket, listed) in enumerate(sorted(prefixes.items()), start=1)
        ),
        iam.statement(
            "PublishMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],  # PutMetricData has no resource; the namespace condition scopes it
            {"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
        ),
        # GetMetricStatistics has no resource-level permissions: scoped to the stack's region.
        iam.statement(
            "ReadCanaryErrorCounts",
            ["cloudwatch:GetMetricStatistics"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.statement("NotifyCanaryRollback", ["sns:Publish"], [topic_arn]),
        # Publishing into an encrypted topic encrypts with its key.
        iam.statement(
            "EncryptNotifications", ["kms:GenerateDataKey", "kms:Decrypt"], [topic_key_arn]
        ),
    ]
    if data_key_arns:
        statements.append(iam.statement("DecryptData", ["kms:Decrypt"], list(data_key_arns)))
    return iam.policy_document(*statements)


def topic_key_policy(account_id: str, partition: str) -> dict[str, Any]:
    """CloudWatch alarms may encrypt into the topic (the AWS-managed aws/sns key refuses them)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ],
    }


def topic_name(team: Team) -> str:
    return team.physical("alerts", TOPIC_NAME_MAX)


def _spec_of(model: Any, spec: type[Any]) -> Any:
    """The runtime's view of a config model: only the fields the runtime spec declares."""
    return spec.model_validate(model.model_dump(include=set(spec.model_fields)))


# --- component ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team's Kubernetes namespace (the drift monitor runs there)."""
    data_plane: DataPlane
    config: MonitoringConfig
    endpoints: Sequence[object]
    """The serving endpoints (batch ones have no alarms here)."""
    pipelines: Sequence[TrainingPipeline]
    feature_store: FeatureStoreConfig
    database: Database
    topic_key_arn: pulumi.Input[str] | None = None
    """A customer-managed key for the topic whose policy lets cloudwatch.amazonaws.com use it;
    None: the component creates one."""
    drift_monitor_resources: ContainerResources = field(
        default_factory=lambda: DRIFT_MONITOR_RESOURCES
    )


class Monitoring(pulumi.ComponentResource):
    """Alarms on every endpoint, pipeline, feature view and data store, paging one topic."""

    topic_arn: pulumi.Output[str]
    """The SNS topic every alarm and the canary guard notify."""
    dashboard_name: pulumi.Output[str]
    """The team's CloudWatch dashboard."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Alarm key (e.g. `serving-scorer-p99-latency`) -> alarm."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        team, data = args.team, args.data_plane
        endpoints = realtime_endpoints(args.endpoints)

        key_arn: pulumi.Input[str]
        if args.topic_key_arn is not None:
            key_arn = args.topic_key_arn
        else:
            # Alarms cannot publish into a topic under aws/sns: the topic gets a key they may use.
            caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
            partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
            key = aws.kms.Key(
                f"{name}-key",
                description=f"{team.stack} alert topic",
                enable_key_rotation=True,
                deletion_window_in_days=30 if team.prod else 7,
                policy=pulumi.Output.all(caller.account_id, partition.partition).apply(
                    lambda v: json.dumps(topic_key_policy(v[0], v[1]))
                ),
                tags=team.tags,
                opts=child,
            )
            key_arn = key.arn
        # The one place the team is paged from.
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=topic_name(team),
            kms_master_key_id=key_arn,
            tags=team.tags,
            opts=child,
        )
        self.topic_arn = topic.arn
        for email in args.config.alert_emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{email}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        # A webhook URL is a secret: it cannot name its subscription, so its position does.
        for number, webhook in enumerate(args.config.alert_webhooks, start=1):
            aws.sns.TopicSubscription(
                f"{name}-webhook-{number}",
                topic=topic.arn,
                protocol="https",
                endpoint=pulumi.Output.secret(webhook.get_secret_value()),
                endpoint_auto_confirms=True,
                opts=child,
            )

        # Alarms on the real dimensions: endpoint names, the database instance, table names.
        specs = plan_alarms(
            team=team,
            config=args.config,
            endpoints=endpoints,
            pipelines=args.pipelines,
            feature_store=args.feature_store,
            database=args.database,
            database_instance_id=data.database_instance_id,
            online_table_names=data.online_table_names,
        )
        self.alarms = {spec.key: self._alarm(name, spec, team, topic.arn, child) for spec in specs}

        # One page that shows the same metrics the alarms watch.
        body = dashboard_body(
            team=team,
            config=args.config,
            endpoints=endpoints,
            pipelines=args.pipelines,
            feature_store=args.feature_store,
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=team.physical("mlops", DASHBOARD_NAME_MAX),
            dashboard_body=json.dumps(body),
            opts=child,
        )
        self.dashboard_name = dashboard.dashboard_name

        if endpoints:
            self._drift_monitor(name, args, endpoints, topic.arn, key_arn)

        self.register_outputs(
            {
                "topicArn": self.topic_arn,
                "dashboardName": self.dashboard_name,
                "alarmNames": [a.name for a in self.alarms.values()],
            }
        )

    def _alarm(
        self,
        name: str,
        spec: AlarmSpec,
        team: Team,
        topic_arn: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> aws.cloudwatch.MetricAlarm:
        common: dict[str, Any] = dict(
            name=team.physical(spec.key, naming.ALARM_NAME_MAX),
            alarm_description=spec.description,
            comparison_operator=spec.comparison.value,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints,
            treat_missing_data=spec.missing.value,
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=team.tags,
            opts=opts,
        )
        if spec.expression is None:
            (query,) = spec.queries
            percentile = query.stat.startswith("p")
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                namespace=query.namespace,
                metric_name=query.metric,
                dimensions=dict(query.dimensions),
                period=query.period,
                statistic=None if percentile else query.stat,
                extended_statistic=query.stat if percentile else None,
                # Too few requests for a percentile: keep the state rather than guess.
                evaluate_low_sample_count_percentiles="ignore" if percentile else None,
                **common,
            )
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}",
            metric_queries=[
                *(
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id=q.id,
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace=q.namespace,
                            metric_name=q.metric,
                            dimensions=dict(q.dimensions),
                            period=q.period,
                            stat=q.stat,
                        ),
                        return_data=False,
                    )
                    for q in spec.queries
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="alarm",
                    expression=spec.expression,
                    label=spec.summary[:255],
                    return_data=True,
                ),
            ],
            **common,
        )

    def _drift_monitor(
        self,
        name: str,
        args: MonitoringArgs,
        endpoints: Sequence[RealtimeEndpoint],
        topic_arn: pulumi.Output[str],
        topic_key_arn: pulumi.Input[str],
    ) -> None:
        team, data = args.team, args.data_plane
        log_uris = {e.name: data.prediction_log_uri(e.name) for e in endpoints}
        # MLflow keeps model artifacts under artifact_uri (default: the whole artifact bucket).
        artifact_uri = data.settings.get("artifact_uri") or data.artifact_bucket.apply(
            lambda bucket: f"s3://{bucket}/"
        )
        policy = pulumi.Output.all(
            data.artifact_bucket_arn,
            pulumi.Output.all(*log_uris.values()),
            artifact_uri,
            topic_arn,
            topic_key_arn,
            data.kms_key_arns,
        ).apply(
            lambda v: json.dumps(
                drift_monitor_policy(
                    partition=naming.arn_partition(v[0]),
                    prediction_log_uris=v[1],
                    artifact_uri=v[2],
                    metrics_namespace=metrics.namespace(team.name),
                    topic_arn=v[3],
                    topic_key_arn=v[4],
                    data_key_arns=v[5],
                    region=team.region,
                )
            )
        )
        # Reads what the endpoints logged and the models' references; publishes drift; notifies.
        identity = iam.WorkloadIdentity(
            f"{name}-drift-identity",
            team=team,
            cluster=args.cluster,
            namespace=args.namespace,
            service_account=DRIFT_MONITOR_SERVICE_ACCOUNT,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        period = naming.schedule_period(args.config.drift.schedule)
        deadline = int(min(period, DRIFT_MONITOR_MAX_RUNTIME).total_seconds())
        for e in endpoints:
            served_by = {p.name for p in args.pipelines if p.model_name == e.model}
            settings = {
                **data.settings,
                **workload.team_settings(team),
                "endpoint": _spec_of(e, EndpointSpec),
                "pipelines": [
                    _spec_of(p, PipelineSpec) for p in args.pipelines if p.name in served_by
                ],
                "alert_topic_arn": topic_arn,
                "prediction_log_uri": log_uris[e.name],
            }
            labels = workload.labels(team.labels, "drift-monitor", e.name)
            container = workload.runtime_container(
                "monitor",
                image=team.image,
                args=[
                    "monitor",
                    "--endpoint",
                    e.name,
                    "--psi-threshold",
                    str(args.config.drift.psi_threshold),
                ],
                env_vars=workload.env(**settings),
                spec=args.drift_monitor_resources,
            )
            # Measures drift of one endpoint's traffic and guards its canary, on the schedule.
            workload.cron_job(
                f"{name}-drift-monitor-{e.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=naming.cronjob_name("drift", e.name),
                    namespace=args.namespace,
                    labels=labels,
                ),
                labels=labels,
                schedule=args.config.drift.schedule,
                pod=workload.pod_spec(
                    [container],
                    service_account=DRIFT_MONITOR_SERVICE_ACCOUNT,
                    restart_policy="Never",
                ),
                retries=1,
                deadline_seconds=deadline,
                starting_deadline_seconds=min(deadline, 600),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.cluster.provider, depends_on=[identity]
                ),
            )
