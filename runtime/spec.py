"""What a team declares about its ML work, shared word for word by the stack config and the runtime.

The stack config (``components.config``) extends these models with infrastructure fields; the
runtime receives them through its settings (``runtime.settings``). One definition, two readers.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

_DURATION = re.compile(r"^(\d+)([smhdw])$")
MAX_DURATION = timedelta(days=3650)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""A name valid everywhere we use it: Kubernetes (RFC 1035 label), S3, IAM, CloudWatch."""
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A column / feature name: valid in Feast, pandas and SQL without quoting."""

SNAKE_NAME = r"^[a-z][a-z0-9_]*$"
"""A Feast name (feature view, project): lower-case snake_case."""
FEATURE_REF = r"^[a-z][a-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$"
"""`<feature_view>:<feature>`."""
RELATIVE_PATH = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$"
"""A path under the stack's own bucket or folder (the stack knows where that is)."""
DURATION = _DURATION.pattern


class SpecModel(BaseModel):
    """Base of every declared model: camelCase keys in YAML, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


def parse_duration(value: Any) -> timedelta:
    """`30d`, `12h`, `15m`, `90s`, `2w` (or a timedelta / number of seconds) -> timedelta."""
    try:
        if isinstance(value, timedelta):
            duration = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            duration = timedelta(seconds=value)
        elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
            duration = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        else:
            raise ValueError
        if duration > MAX_DURATION:
            raise ValueError
    except (ValueError, OverflowError):
        raise ValueError("a duration such as 90s, 15m, 12h, 30d or 2w, at most 3650d") from None
    return duration


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("a duration greater than zero")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION, "examples": ["30d", "12h"]}),
]
Name = Annotated[str, Field(min_length=2, max_length=40, pattern=DNS_LABEL)]
"""A resource name: lower-case letters, digits and '-', starting with a letter, 2-40 long."""
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER)]


class ValueType(StrEnum):
    int64 = "int64"
    int32 = "int32"
    float64 = "float64"
    float32 = "float32"
    string = "string"
    bool = "bool"


class Entity(SpecModel):
    name: Name
    """Entity name, referenced by feature views."""
    join_key: Identifier
    """Column that identifies the entity in sources and requests (e.g. `card_id`)."""
    value_type: Literal[ValueType.int64, ValueType.string] = ValueType.int64
    """Type of the join key."""
    description: str = ""


class FeatureSource(SpecModel):
    path: Annotated[str, Field(min_length=1, pattern=RELATIVE_PATH)]
    """Parquet file or folder, relative to the offline store (bucket prefix or local folder)."""
    timestamp_field: Identifier = "event_ts"
    """Event-time column used for point-in-time joins."""
    created_timestamp_field: Identifier | None = None
    """Optional ingestion-time column that breaks ties between rows of the same event time."""


class FeatureView(SpecModel):
    name: Annotated[str, Field(min_length=2, max_length=60, pattern=SNAKE_NAME)]
    """Feast feature view name (snake_case); also names the online table `<project>.<name>`."""
    entities: Annotated[list[Name], Field(min_length=1)]
    """Entities (by name) whose join keys index this view."""
    ttl: Duration = timedelta(days=1)
    """How far back a point-in-time join may look for a value."""
    source: FeatureSource
    features: Annotated[dict[Identifier, ValueType], Field(min_length=1)]
    """Feature name -> type."""
    online: bool = True
    """Materialize into the online store (needed for real-time serving)."""
    max_staleness: Duration | None = None
    """Alarm when the newest materialized value is older than this (default: 2 x schedule)."""


class FeatureStoreSpec(SpecModel):
    project: Annotated[str, Field(pattern=SNAKE_NAME, max_length=40)] | None = None
    """Feast project name (default: the team name with '-' as '_')."""
    entities: list[Entity] = []
    feature_views: list[FeatureView] = []


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


class EstimatorKind(StrEnum):
    logistic_regression = "logisticRegression"
    random_forest = "randomForest"
    hist_gradient_boosting = "histGradientBoosting"
    linear_regression = "linearRegression"


Scalar = str | int | float | bool | None


class Estimator(SpecModel):
    kind: EstimatorKind = EstimatorKind.hist_gradient_boosting
    params: dict[Identifier, Scalar] = {}
    """Keyword arguments of the scikit-learn estimator (e.g. `max_depth: 6`)."""


class LabelSource(SpecModel):
    path: Annotated[str, Field(min_length=1, pattern=RELATIVE_PATH)]
    """Parquet file or folder of labelled events, relative to the offline store."""
    target: Identifier = "label"
    """Label column."""
    timestamp_field: Identifier = "event_ts"
    """When the label's event happened: features are joined as of this time."""


class FairnessMetric(StrEnum):
    demographic_parity = "demographicParity"
    equalized_odds = "equalizedOdds"


GateMetric = Literal["roc_auc", "accuracy", "f1", "r2", "neg_rmse"]


class Gates(SpecModel):
    metric: GateMetric | None = None
    """Quality metric the gates use (default: roc_auc for classification, r2 for regression)."""
    minimum: Annotated[float, Field(ge=-1e9, le=1)] | None = None
    """The model is not a candidate unless `metric` reaches this on the held-out split."""
    max_fairness_gap: Annotated[float, Field(ge=0, le=1)] | None = None
    """Largest allowed fairness difference across the protected attribute."""
    max_regression: Annotated[float, Field(ge=0, le=1)] = 0.0
    """How much worse than the current champion (same metric) a challenger may be."""


class ValueRange(SpecModel):
    min: float | None = None
    """Smallest allowed value (inclusive); None = unbounded."""
    max: float | None = None
    """Largest allowed value (inclusive); None = unbounded."""


class DataChecks(SpecModel):
    """Checks on the label data and on the joined training set, run before anything is fitted."""

    min_rows: Annotated[StrictInt, Field(ge=1)] = 100
    """Fewest labelled rows a run accepts."""
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Largest share of missing values per feature after the point-in-time join."""
    ranges: dict[Identifier, ValueRange] = {}
    """Allowed value range per label column or feature (e.g. `amount: {min: 0}`)."""


DEFAULT_GATE_METRIC = {Task.classification: "roc_auc", Task.regression: "r2"}
TASK_METRICS = {
    Task.classification: ("roc_auc", "accuracy", "f1"),
    Task.regression: ("r2", "neg_rmse", "mae"),
}
"""The metrics training computes per task (gates and live quality use these names)."""


class ScheduleTrigger(SpecModel):
    every: Duration
    """Retrain when the champion was registered this long ago."""


class DriftTrigger(SpecModel):
    """Retrain when drift persists: an endpoint's monitor window measures the largest feature
    PSI (or `feature`'s) at or above `psiThreshold` in `breaches` of the last `windows` windows."""

    psi_threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    feature: Identifier | None = None
    """Judge this feature's PSI instead of the largest one (a feature of the pipeline)."""
    breaches: Annotated[StrictInt, Field(ge=1, le=48)] = 3
    """M of "M of the last N windows"."""
    windows: Annotated[StrictInt, Field(ge=1, le=48, validate_default=True)] = 4
    """N of "M of the last N windows": one breach in a calm series starts nothing."""

    @field_validator("windows")
    @classmethod
    def _enough_windows(cls, value: int, info: ValidationInfo) -> int:
        return _at_least_breaches(value, info)


class DecayTrigger(SpecModel):
    """Retrain when live quality (the metric on the monitor window's rows whose labels have
    arrived) is below `minimum` in `breaches` of the last `windows` windows."""

    metric: GateMetric | None = None
    """Live quality metric (default: the pipeline's gate metric)."""
    minimum: Annotated[float, Field(ge=-1e9, le=1)] | None = None
    """Below this, a window counts as decayed (default: the gate's `minimum`)."""
    breaches: Annotated[StrictInt, Field(ge=1, le=48)] = 2
    windows: Annotated[StrictInt, Field(ge=1, le=48, validate_default=True)] = 3
    min_labelled_rows: Annotated[StrictInt, Field(ge=1)] = 100
    """A window with fewer labelled rows gives no quality verdict."""

    @field_validator("windows")
    @classmethod
    def _enough_windows(cls, value: int, info: ValidationInfo) -> int:
        return _at_least_breaches(value, info)


def _at_least_breaches(value: int, info: ValidationInfo) -> int:
    breaches = info.data.get("breaches")
    if isinstance(breaches, int) and value < breaches:
        raise ValueError(
            f"at least `breaches` ({breaches}): breaches are counted among the last `windows` "
            "monitor windows"
        )
    return value


class NewDataTrigger(SpecModel):
    min_rows: Annotated[StrictInt, Field(ge=1)] = 1000
    """Retrain when this many labelled rows newer than the champion's training data arrived."""


class Triggers(SpecModel):
    """What starts a retrain; each is off unless given."""

    schedule: ScheduleTrigger | None = None
    drift: DriftTrigger | None = None
    decay: DecayTrigger | None = None
    new_data: NewDataTrigger | None = None

    @property
    def enabled(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class RetrainBudget(SpecModel):
    runs: Annotated[StrictInt, Field(ge=1, le=1000)] = 5
    """Most automated retrains started within `per`."""
    per: Duration = timedelta(days=7)


class AutoPromotion(SpecModel):
    """A challenger that served its canary share long enough, with enough requests, and is not
    worse than the champion (SLO; live quality within the gates' `maxRegression` where labels
    arrived) is promoted by the drift monitor. Too little data means wait, never promote."""

    observe: Duration = timedelta(hours=2)
    """How long the challenger serves its canary share before it may be promoted."""
    min_requests: Annotated[StrictInt, Field(ge=1)] = 500
    """Fewest challenger requests over its canary; fewer: wait."""
    min_labelled_rows: Annotated[StrictInt, Field(ge=1)] = 100
    """With `liveLabels`, fewest labelled rows per variant to compare quality; fewer: wait."""


class ContinuousTraining(SpecModel):
    """Automated retraining and promotion with guardrails. The pipeline's `schedule` becomes how
    often its training job checks whether a retrain is due (`mlops-runtime train --if-due`)."""

    triggers: Triggers = Triggers()
    live_labels: Annotated[str, Field(min_length=1, pattern=RELATIVE_PATH)] | None = None
    """Parquet of arrived labels (`request_id` + the target), relative to the offline store: the
    drift monitor measures live quality on it (the decay trigger and auto-promotion use it)."""
    min_rows: Annotated[StrictInt, Field(ge=30)] = 500
    """A monitor window with fewer rows gives no verdict (no decision from a handful of requests)."""
    cooldown: Duration = timedelta(hours=6)
    """No automated retrain starts within this time of the previous one's start."""
    budget: RetrainBudget = RetrainBudget()
    lease: Duration | None = None
    """How long a started retrain holds the model; a crashed run's lease expires after it
    (default: the pipeline's `deadline`, else 6h)."""
    quarantine_after: Annotated[StrictInt, Field(ge=1, le=10)] = 3
    """Failed retrains in a row (error, gates, canary rolled back) after which the model is held
    until `mlops-runtime release`."""
    max_held: Duration = timedelta(days=3)
    """Alarm when the model is held longer than this."""
    promotion: AutoPromotion | None = None
    """Promote a healthy canary automatically; None: promote by hand (`mlops-runtime promote`)."""


class PipelineSpec(SpecModel):
    name: Name
    """Pipeline name; also the registered model name unless `model` is set."""
    model: Name | None = None
    """Registered model name in MLflow (default: the pipeline name)."""
    task: Task = Task.classification
    estimator: Estimator = Estimator()
    labels: LabelSource
    features: Annotated[
        list[Annotated[str, Field(pattern=FEATURE_REF)]],
        Field(min_length=1),
    ]
    """Features as `<feature_view>:<feature>`."""
    nullable_features: list[Identifier] = []
    """Features (by name) a prediction request may leave missing (null, NaN, an empty CSV cell):
    the model imputes them as in training. Every other feature must be a finite number."""
    protected_attribute: Identifier | None = None
    """Column of the label data across which fairness is measured (never used as a feature)."""
    fairness_metric: FairnessMetric = FairnessMetric.demographic_parity
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.2
    seed: StrictInt = 42
    gates: Gates = Gates()
    checks: DataChecks = DataChecks()
    continuous_training: ContinuousTraining | None = None
    """Retrain on drift, decay, new data or age, and promote a healthy canary, with guardrails
    (None: train on `schedule`, promote by hand)."""

    @field_validator("nullable_features")
    @classmethod
    def _nullable_are_features(cls, value: list[str], info: ValidationInfo) -> list[str]:
        names = [ref.split(":", 1)[1] for ref in info.data.get("features", [])]
        unknown = [name for name in value if name not in names]
        if unknown and names:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} is not a feature of this pipeline "
                f"(its features: {', '.join(names)})"
            )
        return value

    @property
    def model_name(self) -> str:
        return self.model or self.name


class CanarySpec(SpecModel):
    alias: Literal["challenger"] = "challenger"
    """Registry alias served to the canary share."""
    weight: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    """Percent of requests answered by the canary."""


class SloSpec(SpecModel):
    p99_latency_ms: Annotated[float, Field(gt=0, le=60_000)] = 200
    max_error_rate: Annotated[float, Field(gt=0, lt=1)] = 0.01


class EndpointSpec(SpecModel):
    """What the serving runtime needs to know about its endpoint."""

    name: Name
    model: Name
    """Registered model served (its `champion` alias)."""
    canary: CanarySpec | None = None
    shadow: bool = False
    """Score the challenger on every request too, but answer with the champion."""
    slo: SloSpec = SloSpec()
    trust_model_code: bool = False
    """Load model formats that run code when loaded (pickled scikit-learn, custom pyfunc).
    Off: scikit-learn models saved with skops only (what the team's pipelines log)."""


class DatabaseRoleSpec(SpecModel):
    """A login role of the registry database and the one database it owns (the bootstrap Job
    makes both; `runtime.database_roles`)."""

    role: Annotated[str, Field(pattern=SNAKE_NAME, max_length=63)]
    """The PostgreSQL role (the login name of the workloads of this purpose)."""
    database: Annotated[str, Field(pattern=SNAKE_NAME, max_length=63)]
    """The database it owns; PUBLIC may not connect to it."""
