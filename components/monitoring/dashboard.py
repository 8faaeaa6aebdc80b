"""The team's CloudWatch dashboard: the metrics the alarms watch, on one page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.config.featurestore import FeatureStoreConfig
from components.config.monitoring import MonitoringConfig
from components.config.serving import RealtimeEndpoint
from components.config.training import TrainingPipeline
from components.monitoring.alarms.drift import feature_drift_alarms
from components.monitoring.alarms.features import freshness_limit
from components.monitoring.notifications import topic_name
from components.team import Team
from runtime import metrics
from runtime.metrics import Dimension, Metric

DASHBOARD_NAME_MAX = 255


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
        if ct := p.continuous_training:
            graph(
                f"{p.name}: automated retrains",
                [
                    line(metrics.RETRAINS_TRIGGERED, pipeline=p.name),
                    line(metrics.RETRAIN_FAILURES, pipeline=p.name),
                ],
                x=0,
                width=8,
                period=86400,
            )
            graph(
                f"{p.name}: retrain budget left",
                [line(metrics.RETRAIN_BUDGET_REMAINING, pipeline=p.name)],
                x=8,
                width=8,
                stat="Minimum",
                period=3600,
                limits=[("budget", ct.budget.runs)],
            )
            graph(
                f"{p.name}: held (s)",
                [line(metrics.MODEL_HELD_SECONDS, pipeline=p.name)],
                x=16,
                width=8,
                stat="Maximum",
                period=3600,
                limits=[("maxHeld", ct.max_held.total_seconds())],
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
