"""The metric catalogue: what the runtime publishes and what the monitoring component alarms on.

One list, two readers. A metric name, unit or dimension is typed here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    count = "Count"
    milliseconds = "Milliseconds"
    seconds = "Seconds"
    none = "None"


class Dimension(StrEnum):
    endpoint = "Endpoint"
    variant = "Variant"
    feature = "Feature"
    pipeline = "Pipeline"
    feature_view = "FeatureView"
    decision = "Decision"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: Unit
    dimensions: tuple[Dimension, ...]
    description: str


PREDICTIONS = Metric(
    "Predictions", Unit.count, (Dimension.endpoint, Dimension.variant), "Requests answered"
)
PREDICTION_ERRORS = Metric(
    "PredictionErrors", Unit.count, (Dimension.endpoint, Dimension.variant), "Requests that failed"
)
PREDICTION_LATENCY = Metric(
    "PredictionLatency",
    Unit.milliseconds,
    (Dimension.endpoint, Dimension.variant),
    "Time to answer one request",
)
FEATURE_DRIFT = Metric(
    "FeatureDriftPSI",
    Unit.none,
    (Dimension.endpoint, Dimension.feature),
    "Population stability index of one feature, reference vs current window",
)
MAX_FEATURE_DRIFT = Metric(
    "MaxFeatureDriftPSI", Unit.none, (Dimension.endpoint,), "Largest feature PSI of the window"
)
PREDICTION_DRIFT = Metric(
    "PredictionDriftPSI", Unit.none, (Dimension.endpoint,), "PSI of the model's predictions"
)
TRAINING_RUNS_SUCCEEDED = Metric(
    "TrainingRunsSucceeded", Unit.count, (Dimension.pipeline,), "Runs that registered a version"
)
TRAINING_RUNS_FAILED = Metric(
    "TrainingRunsFailed", Unit.count, (Dimension.pipeline,), "Runs stopped by an error or a gate"
)
MODEL_QUALITY = Metric(
    "ModelQuality", Unit.none, (Dimension.pipeline,), "Gate metric of the latest trained model"
)
FAIRNESS_GAP = Metric(
    "FairnessGap",
    Unit.none,
    (Dimension.pipeline,),
    "Fairness difference across the protected attribute of the latest trained model",
)
MODEL_AGE = Metric(
    "ModelAge",
    Unit.seconds,
    (Dimension.pipeline,),
    "Age of the newest registered version of the pipeline's model (published by the drift monitor)",
)
FEATURE_FRESHNESS = Metric(
    "FeatureFreshness",
    Unit.seconds,
    (Dimension.feature_view,),
    "Age of the newest value materialized into the online store",
)
RETRAINS_TRIGGERED = Metric(
    "RetrainsTriggered",
    Unit.count,
    (Dimension.pipeline,),
    "Automated retrains started by a trigger (continuous training)",
)
RETRAIN_FAILURES = Metric(
    "RetrainFailures",
    Unit.count,
    (Dimension.pipeline,),
    "Automated retrains that ended without a candidate: an error, failed gates, or a crash "
    "(lease expired)",
)
RETRAIN_BUDGET_REMAINING = Metric(
    "RetrainBudgetRemaining",
    Unit.count,
    (Dimension.pipeline,),
    "Automated retrains the budget still allows in its window (published at every check)",
)
MODEL_HELD_SECONDS = Metric(
    "ModelHeldSeconds",
    Unit.seconds,
    (Dimension.pipeline,),
    "How long automated actions on the pipeline's model have been held (0: not held; "
    "published at every check)",
)
CONTINUOUS_TRAINING_DECISIONS = Metric(
    "ContinuousTrainingDecisions",
    Unit.count,
    (Dimension.pipeline, Dimension.decision),
    "Automated decisions of continuous training, by kind (triggered, skipped, trained, "
    "gated-out, canary-started, promoted, rolled-back, quarantined, ...): one per event",
)

CATALOGUE: tuple[Metric, ...] = (
    PREDICTIONS,
    PREDICTION_ERRORS,
    PREDICTION_LATENCY,
    FEATURE_DRIFT,
    MAX_FEATURE_DRIFT,
    PREDICTION_DRIFT,
    TRAINING_RUNS_SUCCEEDED,
    TRAINING_RUNS_FAILED,
    MODEL_QUALITY,
    FEATURE_FRESHNESS,
    FAIRNESS_GAP,
    MODEL_AGE,
    RETRAINS_TRIGGERED,
    RETRAIN_FAILURES,
    RETRAIN_BUDGET_REMAINING,
    MODEL_HELD_SECONDS,
    CONTINUOUS_TRAINING_DECISIONS,
)
BY_NAME = {metric.name: metric for metric in CATALOGUE}

VARIANT_CHAMPION = "champion"
VARIANT_CHALLENGER = "challenger"


def namespace(team: str) -> str:
    """The CloudWatch namespace of a team's metrics."""
    return f"MLOps/{team}"
