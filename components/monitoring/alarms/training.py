"""Alarms on training: a run that failed, and a schedule that stopped producing models."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from components import naming
from components.config.monitoring import MonitoringConfig
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
from runtime.spec import format_duration

FAILED_RUN_PERIOD = timedelta(hours=1)
"""A failed run keeps its alarm up this long, then the alarm returns to OK."""


def training_alarms(
    *,
    team: Team,
    config: MonitoringConfig,
    pipelines: Sequence[TrainingPipeline],
    served_models: Collection[str],
    drift: Window,
) -> list[AlarmSpec]:
    """`served_models`: the models of real-time endpoints, whose drift monitor reports their
    age every `drift` window."""
    alarms: list[AlarmSpec] = []
    t = team.name
    failed = window(FAILED_RUN_PERIOD, every_period=False)
    for p in pipelines:
        if p.continuous_training is not None:
            continue  # its job checks whether to retrain, and says how: alarms/continuous.py
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
                    metric_query(
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
        if missed.span < expected and p.model_name in served_models:
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
                        metric_query(
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
                    metric_query(
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
    return alarms
