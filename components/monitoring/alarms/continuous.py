"""Alarms on continuous training: a retrain that failed, a budget used up, a model held too
long, and a check that stopped running."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from components import naming
from components.config.monitoring import MonitoringConfig
from components.config.training import TrainingPipeline
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

FAILED_RETRAIN_PERIOD = timedelta(hours=1)
"""A failed retrain keeps its alarm up this long, then the alarm returns to OK."""


def continuous_training_alarms(
    *, team: Team, config: MonitoringConfig, pipelines: Sequence[TrainingPipeline]
) -> list[AlarmSpec]:
    """Four alarms per continuously trained pipeline, on what `train --if-due` publishes."""
    alarms: list[AlarmSpec] = []
    t = team.name
    failed = window(FAILED_RETRAIN_PERIOD, every_period=False)
    for p in pipelines:
        ct = p.continuous_training
        if ct is None:
            continue
        check = naming.schedule_period(p.schedule)
        # Every check publishes the budget and the hold: one check's period is one datapoint.
        each_check = window(check, every_period=False)
        history = (
            f"`mlops-runtime status {p.model_name}` and `mlops-runtime history {p.model_name}`"
        )
        alarms += [
            AlarmSpec(
                key=f"training-{p.name}-retrain-failed",
                summary=f"Pipeline {p.name}: an automated retrain failed (error, gates or crash)",
                runbook=(
                    f"{history} say which trigger started it and how it ended; read the Job's "
                    "logs; the champion keeps serving, and after "
                    f"{ct.quarantine_after} failures in a row the model is held"
                ),
                comparison=Comparison.at_least,
                threshold=1,
                missing=MissingData.not_breaching,  # published only when a retrain fails
                evaluation_periods=failed.evaluation_periods,
                datapoints=failed.datapoints,
                queries=(
                    metric_query(
                        "failed", metrics.RETRAIN_FAILURES, t, failed.period, "Sum", pipeline=p.name
                    ),
                ),
            ),
            AlarmSpec(
                key=f"training-{p.name}-retrain-budget-exhausted",
                summary=(
                    f"Pipeline {p.name}: the retrain budget ({ct.budget.runs} per "
                    f"{format_duration(ct.budget.per)}) is used up; no automated retrain until "
                    "it frees"
                ),
                runbook=(
                    f"{history} show what kept triggering (drift that retraining does not fix?); "
                    "hold the model or retrain by hand with "
                    f"`mlops-runtime train --pipeline {p.name}`"
                ),
                comparison=Comparison.below,
                threshold=1,
                missing=MissingData.ignore,  # a missing check has its own alarm
                evaluation_periods=each_check.evaluation_periods,
                datapoints=each_check.datapoints,
                queries=(
                    metric_query(
                        "remaining",
                        metrics.RETRAIN_BUDGET_REMAINING,
                        t,
                        each_check.period,
                        "Minimum",
                        pipeline=p.name,
                    ),
                ),
            ),
            AlarmSpec(
                key=f"training-{p.name}-held-too-long",
                summary=(
                    f"Pipeline {p.name}: automated actions on {p.model_name} held for more than "
                    f"{format_duration(ct.max_held)}"
                ),
                runbook=(
                    f"{history} say who held it and why (a person, or a quarantine after failed "
                    f"retrains); resolve it and `mlops-runtime release {p.model_name}`"
                ),
                comparison=Comparison.above,
                threshold=ct.max_held.total_seconds(),
                missing=MissingData.ignore,
                evaluation_periods=each_check.evaluation_periods,
                datapoints=each_check.datapoints,
                queries=(
                    metric_query(
                        "held",
                        metrics.MODEL_HELD_SECONDS,
                        t,
                        each_check.period,
                        "Maximum",
                        pipeline=p.name,
                    ),
                ),
            ),
            missed_check(team, p, config),
        ]
    return alarms


def missed_check(team: Team, p: TrainingPipeline, config: MonitoringConfig) -> AlarmSpec:
    """With continuous training the job runs to check, not to train: it is missed when no check
    published anything (a retrain is due only when a trigger says so)."""
    expected = (config.missed_runs + 1) * naming.schedule_period(p.schedule)
    missed = window(expected, every_period=True)
    return AlarmSpec(
        key=f"training-{p.name}-missed-run",
        summary=(
            f"Pipeline {p.name}: no continuous-training check within "
            f"{format_duration(missed.span)} ({config.missed_runs + 1} x the period of "
            f"`{p.schedule}`)"
        ),
        runbook=(
            "check the training CronJob (suspended? schedule?), its last Jobs and the node pool "
            f"(spot capacity, GPU quota); run a check by hand with "
            f"`mlops-runtime train --pipeline {p.name} --if-due`"
        ),
        comparison=Comparison.below,
        threshold=1,
        missing=MissingData.breaching,  # nothing published is exactly the symptom
        evaluation_periods=missed.evaluation_periods,
        datapoints=missed.datapoints,
        queries=(
            metric_query(
                "checks",
                metrics.RETRAIN_BUDGET_REMAINING,
                team.name,
                missed.period,
                "SampleCount",
                pipeline=p.name,
            ),
        ),
    )
