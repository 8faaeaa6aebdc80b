"""`mlops-runtime train`: data checks -> point-in-time training set -> fit -> evaluate -> gates
-> MLflow run, registered version and the ``challenger`` alias (only when every gate passes).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from runtime import features, model_trust, registry
from runtime.checks import check_labels, check_training_set
from runtime.errors import ConfigurationError, DataCheckError, GateFailure, RuntimeUserError
from runtime.estimators import ESTIMATORS, estimator_class
from runtime.metrics import (
    FAIRNESS_GAP,
    MODEL_QUALITY,
    TRAINING_RUNS_FAILED,
    TRAINING_RUNS_SUCCEEDED,
    Dimension,
)
from runtime.publish import publisher
from runtime.settings import Settings
from runtime.spec import (
    DEFAULT_GATE_METRIC,
    TASK_METRICS,
    EstimatorKind,
    FairnessMetric,
    PipelineSpec,
    Task,
    ValueType,
)
from runtime.storage import offline_uri, read_parquet

REFERENCE_ARTIFACT = "reference/training_reference.parquet"
"""Sample of training features + predictions a drift monitor compares live traffic with."""
MODEL_ARTIFACT = "model"
ROW_ID = "__row"
_SCALED = {EstimatorKind.logistic_regression, EstimatorKind.linear_regression}


@dataclass
class TrainResult:
    pipeline: str
    model: str
    run_id: str
    version: str | None
    metrics: dict[str, float]
    gate_metric: str
    champion_metric: float | None = None
    failed_gates: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed_gates


def find_pipeline(settings: Settings, name: str) -> PipelineSpec:
    """The declared pipeline called ``name``; an unknown name is a configuration error."""
    for pipeline in settings.pipelines:
        if pipeline.name == name:
            return pipeline
    known = ", ".join(p.name for p in settings.pipelines) or "none"
    raise ConfigurationError(
        f"unknown pipeline {name!r}: team {settings.team!r} declares {known} (MLOPS_PIPELINES)"
    )


def train(settings: Settings, pipeline_name: str) -> TrainResult:
    """Run one training pipeline end to end; raises GateFailure if a gate fails."""
    with publisher(settings) as metrics:
        dims = {Dimension.pipeline: pipeline_name}
        try:
            result = _train(settings, find_pipeline(settings, pipeline_name))
        except DataCheckError as error:
            metrics.publish(TRAINING_RUNS_FAILED, 1, dims)
            raise DataCheckError(
                error.where, error.failures, outcome="Nothing was registered."
            ) from None
        except RuntimeUserError:
            metrics.publish(TRAINING_RUNS_FAILED, 1, dims)
            raise
        metrics.publish(MODEL_QUALITY, result.metrics[result.gate_metric], dims)
        if "fairness_gap" in result.metrics:
            metrics.publish(FAIRNESS_GAP, result.metrics["fairness_gap"], dims)
        metrics.publish(TRAINING_RUNS_SUCCEEDED if result.passed else TRAINING_RUNS_FAILED, 1, dims)
    if not result.passed:
        raise GateFailure(result.model, result.failed_gates, result.run_id)
    return result


def training_set(settings: Settings, pipeline: PipelineSpec) -> pd.DataFrame:
    """Checked label data with each feature joined as of the label's time (Feast point-in-time).

    Columns: the join keys, the features, the target, the label timestamp and the protected
    attribute (if any); only the features are model inputs.
    """
    views = features.views_of(settings, pipeline.features)
    keys = _join_keys(settings, views)
    names = _feature_names(pipeline)
    labels_where = (
        f"the labels of pipeline {pipeline.name!r} ({offline_uri(settings, pipeline.labels.path)})"
    )
    labels = read_parquet(settings, pipeline.labels.path, labels_where)
    labels = check_labels(labels, pipeline, keys, labels_where)
    store = features.apply(settings)

    # Only keys and the label time go to Feast; target and protected attribute never become features.
    labels = labels.reset_index(drop=True)
    labels[ROW_ID] = np.arange(len(labels))
    entity_df = labels[[*keys, ROW_ID]].copy()
    entity_df[features.ENTITY_TIMESTAMP] = pd.to_datetime(
        labels[pipeline.labels.timestamp_field], utc=True
    )
    joined = features.historical_features(store, entity_df, pipeline.features)
    carried = [*keys, pipeline.labels.target, pipeline.labels.timestamp_field]
    if pipeline.protected_attribute:
        carried.append(pipeline.protected_attribute)
    frame = (
        joined[[ROW_ID, *names]]
        .merge(labels[[ROW_ID, *carried]], on=ROW_ID, validate="one_to_one")
        .sort_values(ROW_ID)
        .drop(columns=ROW_ID)
        .reset_index(drop=True)
    )
    return check_training_set(
        frame, pipeline, names, f"the training set of pipeline {pipeline.name!r}"
    )


def _feature_names(pipeline: PipelineSpec) -> list[str]:
    return [ref.split(":", 1)[1] for ref in pipeline.features]


def _train(settings: Settings, pipeline: PipelineSpec) -> TrainResult:
    gate_metric = _validate_pipeline(pipeline)
    views = features.views_of(settings, pipeline.features)
    names = _feature_names(pipeline)
    frame = training_set(settings, pipeline)
    numeric = [n for n in names if pd.api.types.is_numeric_dtype(frame[n])]
    frame[numeric] = frame[numeric].astype("float64")
    X = frame[names]
    y = frame[pipeline.labels.target]
    if pipeline.task == Task.classification:
        y = y.astype("int64")
    train_idx, test_idx = train_test_split(
        np.arange(len(frame)),
        test_size=pipeline.test_size,
        random_state=pipeline.seed,
        stratify=y if pipeline.task == Task.classification else None,
    )
    model = _build_model(pipeline, numeric, [n for n in names if n not in numeric])
    X_train, X_test = X.iloc[train_idx], X.iloc[test_idx]
    y_train, y_test = y.iloc[train_idx], y.iloc[test_idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(X_train, y_train)
        except (ValueError, TypeError) as error:
            raise ConfigurationError(
                f"pipeline {pipeline.name!r}: the {pipeline.estimator.kind} estimator rejected "
                f"its parameters {pipeline.estimator.params}: {error}"
            ) from None
    scores = _evaluate(model, pipeline.task, X_test, y_test)
    if pipeline.protected_attribute:
        scores |= _fairness(
            model, pipeline, X_test, y_test, frame[pipeline.protected_attribute].iloc[test_idx]
        )

    mlflow_client = registry.client(settings)
    champion_score = _champion_score(settings, mlflow_client, pipeline, gate_metric, X_test, y_test)
    failed = _gates(pipeline, gate_metric, scores, champion_score)
    return _log(
        settings,
        pipeline,
        mlflow_client,
        model=model,
        frame=frame,
        names=names,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        scores=scores,
        gate_metric=gate_metric,
        champion_score=champion_score,
        failed=failed,
        views=views,
    )


def _validate_pipeline(pipeline: PipelineSpec) -> str:
    problems = []
    if (pipeline.estimator.kind, pipeline.task) not in ESTIMATORS:
        problems.append(f"estimator {pipeline.estimator.kind} cannot do {pipeline.task}")
    gate_metric = pipeline.gates.metric or DEFAULT_GATE_METRIC[pipeline.task]
    if gate_metric not in TASK_METRICS[pipeline.task]:
        problems.append(
            f"gate metric {gate_metric!r} is not a {pipeline.task} metric "
            f"(use one of {', '.join(TASK_METRICS[pipeline.task])})"
        )
    names = [ref.split(":", 1)[1] for ref in pipeline.features]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"feature names {duplicates} appear in more than one view")
    if pipeline.protected_attribute and pipeline.protected_attribute in names:
        problems.append(
            f"the protected attribute {pipeline.protected_attribute!r} is listed as a feature"
        )
    if pipeline.gates.max_fairness_gap is not None and pipeline.task != Task.classification:
        problems.append("fairness gates need a classification task")
    if pipeline.gates.max_fairness_gap is not None and not pipeline.protected_attribute:
        problems.append("a fairness gate needs `protectedAttribute`")
    if problems:
        raise ConfigurationError(f"pipeline {pipeline.name!r}: " + "; ".join(problems))
    return gate_metric


def _join_keys(settings: Settings, views: list[Any]) -> dict[str, ValueType]:
    entities = {e.name: e for e in settings.feature_store.entities}
    return {
        entities[name].join_key: entities[name].value_type
        for view in views
        for name in view.entities
        if name in entities
    }


def _build_model(pipeline: PipelineSpec, numeric: list[str], categorical: list[str]) -> Pipeline:
    kind = pipeline.estimator.kind
    estimator = estimator_class(kind, pipeline.task)()
    params = dict(pipeline.estimator.params)
    if "random_state" in estimator.get_params():
        params.setdefault("random_state", pipeline.seed)
    if "n_jobs" in estimator.get_params():
        # Training pods get a CPU quota; sklearn would otherwise spawn one worker per host core.
        params.setdefault("n_jobs", 1)
    try:
        estimator.set_params(**params)
    except ValueError as error:
        raise ConfigurationError(
            f"pipeline {pipeline.name!r}: estimator {kind} does not take these parameters: {error}"
        ) from None
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if kind in _SCALED:
        numeric_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, Any, list[str]]] = [("numeric", Pipeline(numeric_steps), numeric)]
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline([("features", ColumnTransformer(transformers)), ("estimator", estimator)])


def _evaluate(model: Any, task: Task, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    predicted = model.predict(X)
    if task == Task.classification:
        proba = model.predict_proba(X)[:, 1]
        return {
            "roc_auc": float(roc_auc_score(y, proba)) if y.nunique() > 1 else float("nan"),
            "accuracy": float(accuracy_score(y, predicted)),
            "f1": float(f1_score(y, predicted, zero_division=0)),
        }
    rmse = float(root_mean_squared_error(y, predicted))
    return {
        "r2": float(r2_score(y, predicted)),
        "neg_rmse": -rmse,
        "rmse": rmse,
        "mae": float(mean_absolute_error(y, predicted)),
    }


def _fairness(
    model: Any, pipeline: PipelineSpec, X: pd.DataFrame, y: pd.Series, groups: pd.Series
) -> dict[str, float]:
    if pipeline.task != Task.classification:
        return {}
    predicted = model.predict(X)
    parity = float(demographic_parity_difference(y, predicted, sensitive_features=groups))
    odds = float(equalized_odds_difference(y, predicted, sensitive_features=groups))
    chosen = parity if pipeline.fairness_metric == FairnessMetric.demographic_parity else odds
    return {
        "demographic_parity_difference": parity,
        "equalized_odds_difference": odds,
        "fairness_gap": chosen,
    }


def _champion_score(
    settings: Settings,
    mlflow_client: Any,
    pipeline: PipelineSpec,
    metric: str,
    X: pd.DataFrame,
    y: pd.Series,
) -> float | None:
    champion = registry.alias_version(mlflow_client, pipeline.model_name, registry.CHAMPION)
    if champion is None:
        return None
    try:
        # Scoring the champion on this run's held-out split compares like with like.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The training pod writes models: it never runs code from one (runtime.model_trust).
            where = f"the champion of {pipeline.model_name!r}"
            source = mlflow_client.get_model_version_download_uri(
                pipeline.model_name, champion.version
            )
            model_trust.check_source(where, source, registry.artifact_location(settings))
            path = mlflow.artifacts.download_artifacts(artifact_uri=source)
            model = model_trust.load_sklearn(where, path, trust_code=False)
            return _evaluate(model, pipeline.task, X, y)[metric]
    except Exception:
        logging.getLogger(__name__).info("champion not scorable on this split; using its run")
    recorded = mlflow_client.get_run(champion.run_id).data.metrics.get(metric)
    return float(recorded) if recorded is not None else None


def _gates(
    pipeline: PipelineSpec, metric: str, scores: dict[str, float], champion: float | None
) -> list[str]:
    failed = []
    value = scores[metric]
    gates = pipeline.gates
    if np.isnan(value):
        failed.append(f"{metric} could not be computed on the held-out split")
    if gates.minimum is not None and not value >= gates.minimum:
        failed.append(f"{metric} {value:.4f} is below the minimum {gates.minimum}")
    if gates.max_fairness_gap is not None:
        gap = scores.get("fairness_gap", float("nan"))
        if not gap <= gates.max_fairness_gap:
            failed.append(
                f"{pipeline.fairness_metric} difference across {pipeline.protected_attribute!r} "
                f"is {gap:.4f}, above the maximum {gates.max_fairness_gap}"
            )
    if champion is not None and not value >= champion - gates.max_regression:
        failed.append(
            f"{metric} {value:.4f} is worse than the champion's {champion:.4f} by more than "
            f"{gates.max_regression}"
        )
    return failed


def _log(
    settings: Settings,
    pipeline: PipelineSpec,
    mlflow_client: Any,
    *,
    model: Pipeline,
    frame: pd.DataFrame,
    names: list[str],
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    y_train: pd.Series,
    scores: dict[str, float],
    gate_metric: str,
    champion_score: float | None,
    failed: list[str],
    views: list[Any],
) -> TrainResult:
    import skops.io

    provenance = _provenance(settings, pipeline, frame, names, views)
    experiment = registry.experiment_id(settings, mlflow_client, pipeline.name)
    example = X_test.head(5)
    signature = _declared_signature(
        infer_signature(example, model.predict(example)), pipeline.nullable_features
    )
    with warnings.catch_warnings(), _quiet_mlflow():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_params(
                {
                    "task": str(pipeline.task),
                    "estimator": str(pipeline.estimator.kind),
                    **{
                        f"estimator.{k}": v
                        for k, v in model.named_steps["estimator"].get_params().items()
                    },
                    "test_size": pipeline.test_size,
                    "seed": pipeline.seed,
                    "rows.train": len(X_train),
                    "rows.test": len(X_test),
                }
            )
            mlflow.log_metrics({k: v for k, v in scores.items() if not np.isnan(v)})
            if champion_score is not None:
                mlflow.log_metric(f"champion.{gate_metric}", champion_score)
            mlflow.set_tags(
                provenance
                | {
                    "mlops.gates": "failed" if failed else "passed",
                    "mlops.gate_metric": gate_metric,
                }
            )
            if failed:
                mlflow.set_tag("mlops.failed_gates", " | ".join(failed))
            mlflow.log_dict(pipeline.model_dump(mode="json", by_alias=True), "pipeline.json")
            mlflow.log_dict({"features": list(pipeline.features)}, "features.json")
            mlflow.log_dict(json.loads(json.dumps(scores, default=str)), "metrics.json")
            _log_reference(settings, pipeline, model, X_train, y_train)
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                signature=signature,
                input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                # skops refuses non-builtin types unless trusted; these are the ones we just fitted.
                skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
                # Declared, not inferred: inference re-imports the model in a subprocess (~8 s).
                pip_requirements=[
                    *mlflow.sklearn.get_default_pip_requirements(include_skops=True),
                    f"mlflow=={mlflow.__version__}",
                    f"pandas=={pd.__version__}",
                ],
            )
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                # MLflow prints registration banners; the CLI reports the outcome itself.
                version = (
                    None
                    if failed
                    else _register(
                        mlflow_client, pipeline, info.model_uri, provenance, run.info.run_id
                    )
                )
    return TrainResult(
        pipeline=pipeline.name,
        model=pipeline.model_name,
        run_id=run.info.run_id,
        version=version,
        metrics=scores,
        gate_metric=gate_metric,
        champion_metric=champion_score,
        failed_gates=failed,
    )


def _declared_signature(signature: Any, nullable: list[str]) -> Any:
    """The inferred signature with each input required unless the pipeline declares it nullable
    (inference would guess from whether the few example rows happen to hold a missing value)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec(column.type, column.name, required=column.name not in nullable)
            for column in signature.inputs.inputs
        ]
    )
    return ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)


def _register(
    mlflow_client: Any, pipeline: PipelineSpec, model_uri: str, tags: dict[str, str], run_id: str
) -> str:
    name = pipeline.model_name
    version = mlflow.register_model(model_uri, name, tags=tags | {"mlops.run_id": run_id}).version
    try:
        mlflow_client.set_registered_model_alias(name, registry.CHALLENGER, version)
    except Exception:
        # A version without its alias would look like a candidate nobody approved.
        mlflow_client.delete_model_version(name, version)
        raise
    return str(version)


def _log_reference(
    settings: Settings, pipeline: PipelineSpec, model: Any, X: pd.DataFrame, y: pd.Series
) -> None:
    sample = X.sample(n=min(len(X), settings.training_reference_rows), random_state=pipeline.seed)
    reference = sample.copy()
    reference["prediction"] = model.predict(sample)
    if pipeline.task == Task.classification:
        reference["score"] = model.predict_proba(sample)[:, 1]
    reference[pipeline.labels.target] = y.loc[sample.index].to_numpy()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(REFERENCE_ARTIFACT).name
        reference.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))


def _provenance(
    settings: Settings,
    pipeline: PipelineSpec,
    frame: pd.DataFrame,
    names: list[str],
    views: list[Any],
) -> dict[str, str]:
    data = hashlib.sha256()
    data.update(json.dumps(list(frame.columns)).encode())
    data.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    view_versions = {v.name: _digest(v.model_dump(mode="json", by_alias=True))[:12] for v in views}
    config = {
        "pipeline": pipeline.model_dump(mode="json", by_alias=True),
        "feature_views": [v.model_dump(mode="json", by_alias=True) for v in views],
    }
    return {
        "mlops.team": settings.team,
        "mlops.pipeline": pipeline.name,
        "mlops.data_fingerprint": data.hexdigest(),
        "mlops.config_hash": _digest(config),
        "mlops.code_version": settings.code_version or _package_version(),
        "mlops.features": ",".join(pipeline.features),
        "mlops.feature_view_versions": ",".join(f"{k}@{v}" for k, v in view_versions.items()),
        "mlops.seed": str(pipeline.seed),
        "mlops.rows": str(len(frame)),
        registry.DATA_UNTIL_TAG: _data_until(frame, pipeline.labels.timestamp_field),
    }


def _data_until(frame: pd.DataFrame, column: str) -> str:
    """The newest label time trained on: what `newData` counts arrivals after."""
    newest = pd.to_datetime(frame[column], utc=True).max()
    return "" if pd.isna(newest) else newest.isoformat()


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _package_version() -> str:
    try:
        return f"mlops-stack=={metadata.version('mlops-stack')}"
    except metadata.PackageNotFoundError:
        return "unknown"


class _quiet_mlflow:
    def __enter__(self) -> None:
        self._logger = logging.getLogger("mlflow")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)
