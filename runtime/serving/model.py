"""A registered model version made ready to answer requests, and where versions come from.

Loading a version reads its MLflow signature (the request schema), the scikit-learn flavor (so a
classifier answers with probabilities, which pyfunc does not give) and tries a native fast path:
the model converted to ONNX, kept only if it gives the same predictions as scikit-learn on the
training reference sample logged with the run.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from runtime.settings import Settings

ONNX_PROBABILITY_TOLERANCE = 1e-4
"""Largest difference of a class probability between ONNX and scikit-learn a fast path may have."""
VERIFY_ROWS = 2000
MATRIX_INPUT = "features"
"""Name of the single ONNX input of a model converted as one feature matrix."""
FEATURES_TAG = "mlops.features"
"""Model-version tag (set by `train`): the `<view>:<feature>` references of its inputs."""
_NUMERIC = {"double", "float", "long", "integer", "boolean"}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    """MLflow column type: double, float, long, integer, boolean, string."""
    required: bool = True
    """False when the model's signature declares the input optional (it may be missing)."""


@dataclass
class Scored:
    """Predictions of a batch of rows, in row order."""

    predictions: list[Any]
    probabilities: list[list[float]] | None = None

    def score(self, index: int) -> float | None:
        """Probability of the positive (last) class for a row; None for regressors."""
        if self.probabilities is None:
            return None
        return self.probabilities[index][-1]


class Predictor(Protocol):
    kind: str

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Scored:
        """Score rows as requests give them (a request's few rows)."""
        ...

    def frame(self, frame: pd.DataFrame) -> Scored:
        """Score a frame with a column per input (a batch job's chunk), as ``__call__`` would
        score its rows."""
        ...


@dataclass
class ServedModel:
    """One loaded model version."""

    name: str
    version: str
    features: list[Feature]
    predict: Predictor
    classes: list[Any] | None = None
    """Class labels of a classifier (the order of ``probabilities``), None for a regressor."""
    feature_refs: dict[str, str] = field(default_factory=dict)
    """Input name -> `<view>:<feature>` in the feature store (for online lookups)."""
    run_id: str | None = None
    load_seconds: float = 0.0
    provenance: dict[str, str] = field(default_factory=dict)
    """Run, code version, data fingerprint, ... of the version (shown by `/ready`)."""

    @property
    def backend(self) -> str:
        return self.predict.kind


class ModelSource(Protocol):
    """Where served versions come from (the MLflow registry; tests pass a fake)."""

    def version_of(self, alias: str) -> str | None:
        """The version ``alias`` points to now, None when it points nowhere."""
        ...

    def load(self, version: str) -> ServedModel: ...


# --- predictors -----------------------------------------------------------------------------------


class SklearnPredictor:
    kind = "sklearn"

    def __init__(self, model: Any, features: list[Feature]) -> None:
        self._model = model
        self._columns = [f.name for f in features]
        self._proba = hasattr(model, "predict_proba") and hasattr(model, "classes_")

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Scored:
        return self._score(pd.DataFrame.from_records(list(rows), columns=self._columns))

    def frame(self, frame: pd.DataFrame) -> Scored:
        return self._score(frame[self._columns])

    def _score(self, frame: pd.DataFrame) -> Scored:
        """``frame`` holds the inputs, in the model's order."""
        if self._proba:
            probabilities = self._model.predict_proba(frame)
            labels = np.asarray(self._model.classes_)[probabilities.argmax(axis=1)]
            return Scored(labels.tolist(), probabilities.tolist())
        return Scored(np.asarray(self._model.predict(frame)).tolist())


class PyfuncPredictor:
    kind = "pyfunc"

    def __init__(self, model: Any, features: list[Feature]) -> None:
        self._model = model
        self._columns = [f.name for f in features]

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Scored:
        return self._score(pd.DataFrame.from_records(list(rows), columns=self._columns))

    def frame(self, frame: pd.DataFrame) -> Scored:
        return self._score(frame[self._columns])

    def _score(self, frame: pd.DataFrame) -> Scored:
        return Scored(np.asarray(self._model.predict(frame)).ravel().tolist())


class OnnxPredictor:
    """The scikit-learn pipeline converted by skl2onnx, run by onnxruntime on one thread."""

    kind = "onnx"

    def __init__(self, session: Any, features: list[Feature], classes: list[Any] | None) -> None:
        self._session = session
        self._names = [f.name for f in features]
        self._classes = classes
        inputs = [i.name for i in session.get_inputs()]
        # One matrix input (a bare estimator) or one column per input (a ColumnTransformer).
        self._matrix = inputs[0] if inputs == [MATRIX_INPUT] else None
        outputs = [o.name for o in session.get_outputs()]
        self._outputs = outputs if classes is not None else outputs[:1]

    def arrays(self, rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
        if self._matrix is not None:
            return {
                self._matrix: np.array(
                    [[row[name] for name in self._names] for row in rows], dtype=np.float32
                )
            }
        return {
            name: np.array([row[name] for row in rows], dtype=np.float32).reshape(-1, 1)
            for name in self._names
        }

    def run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        result = self._session.run(self._outputs, feed)
        return result[0].ravel(), (result[1] if len(result) > 1 else None)

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Scored:
        return self._scored(*self.run(self.arrays(rows)))

    def frame(self, frame: pd.DataFrame) -> Scored:
        # Missing values (None in a row, NaN or null in a frame) are NaN to the converted model.
        if self._matrix is not None:
            feed = {self._matrix: frame[self._names].to_numpy(dtype=np.float32, na_value=np.nan)}
        else:
            feed = {
                name: frame[name].to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
                for name in self._names
            }
        return self._scored(*self.run(feed))

    def _scored(self, labels: np.ndarray, probabilities: np.ndarray | None) -> Scored:
        if probabilities is None:
            return Scored(labels.astype(np.float64).tolist())
        return Scored(labels.tolist(), probabilities.astype(np.float64).tolist())


def onnx_predictor(
    model: Any, features: list[Feature], classes: list[Any] | None, sample: pd.DataFrame | None
) -> OnnxPredictor | None:
    """An ONNX fast path that agrees with ``model`` on ``sample``, or None (model stays sklearn)."""
    if sample is None or sample.empty or any(f.kind not in _NUMERIC for f in features):
        return None
    try:
        import onnxruntime
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        return None
    try:
        options = {"zipmap": False} if classes is not None else None
        opset = {"": 17, "ai.onnx.ml": 3}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                converted = convert_sklearn(
                    model,
                    initial_types=[(f.name, FloatTensorType([None, 1])) for f in features],
                    options=options,
                    target_opset=opset,
                )
            except Exception:
                converted = convert_sklearn(
                    model,
                    initial_types=[(MATRIX_INPUT, FloatTensorType([None, len(features)]))],
                    options=options,
                    target_opset=opset,
                )
        session_options = onnxruntime.SessionOptions()
        # Replicas scale out; a request should not fan out over the node's cores.
        session_options.intra_op_num_threads = 1
        session_options.inter_op_num_threads = 1
        session_options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            converted.SerializeToString(), session_options, providers=["CPUExecutionProvider"]
        )
        predictor = OnnxPredictor(session, features, classes)
        rows = sample[[f.name for f in features]].to_dict("records")
        fast, reference = predictor(rows), SklearnPredictor(model, features)(rows)
    except Exception as error:
        _log.info("no ONNX fast path (%s: %s)", type(error).__name__, str(error)[:200])
        return None
    if not _agree(fast, reference):
        _log.warning(
            "ONNX conversion disagrees with scikit-learn on the reference sample; not used"
        )
        return None
    return predictor


def _agree(fast: Scored, reference: Scored) -> bool:
    if fast.probabilities is not None and reference.probabilities is not None:
        gap = np.abs(np.asarray(fast.probabilities) - np.asarray(reference.probabilities)).max()
        return bool(gap <= ONNX_PROBABILITY_TOLERANCE) and fast.predictions == [
            p for p in reference.predictions
        ]
    if fast.probabilities is None and reference.probabilities is None:
        return bool(np.allclose(fast.predictions, reference.predictions, rtol=1e-4, atol=1e-4))
    return False


# --- the MLflow registry --------------------------------------------------------------------------


class RegistryModelSource:
    """Versions of ``model`` in the team's MLflow registry (`runtime.registry`).

    A version is loaded only from the team's artifact root and only in a format that runs no
    code (`runtime.model_trust`), unless ``trust_code`` (the endpoint's `trustModelCode`).
    """

    def __init__(
        self, settings: Settings, model: str, *, fast_path: bool = True, trust_code: bool = False
    ) -> None:
        self._settings = settings
        self._model = model
        self._fast_path = fast_path
        self._trust_code = trust_code
        self._client: Any = None

    def _mlflow(self) -> Any:
        if self._client is None:
            from runtime import registry

            self._client = registry.client(self._settings)
        return self._client

    def version_of(self, alias: str) -> str | None:
        from runtime import registry

        found = registry.alias_version(self._mlflow(), self._model, alias)
        return None if found is None else str(found.version)

    def load(self, version: str) -> ServedModel:
        import mlflow
        from mlflow.models import Model

        from runtime import model_trust, registry

        started = time.monotonic()
        client = self._mlflow()
        where = f"model {self._model!r} version {version}"
        registered = client.get_model_version(self._model, version)
        source = client.get_model_version_download_uri(self._model, version)
        model_trust.check_source(where, source, registry.artifact_location(self._settings))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = mlflow.artifacts.download_artifacts(artifact_uri=source)
            meta = Model.load(path)
            found = model_trust.model_format(meta.flavors)
            if found.runs_code and not self._trust_code:
                raise model_trust.refusal(where, found)
            if meta.signature is None or meta.signature.inputs is None:
                raise ValueError(f"{where} has no signature")
            features = [
                Feature(col.name, _type_name(col.type), col.required)
                for col in meta.signature.inputs.inputs
            ]
            if "sklearn" in meta.flavors:
                estimator = model_trust.load_sklearn(where, path, trust_code=self._trust_code)
                classes = (
                    np.asarray(estimator.classes_).tolist()
                    if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")
                    else None
                )
                predictor: Predictor = SklearnPredictor(estimator, features)
                if self._fast_path:
                    sample = _reference_sample(registered.run_id, path)
                    predictor = onnx_predictor(estimator, features, classes, sample) or predictor
            else:
                classes = None
                predictor = PyfuncPredictor(mlflow.pyfunc.load_model(path), features)
        refs = registered.tags.get(FEATURES_TAG, "")
        by_name = {ref.split(":", 1)[1]: ref for ref in refs.split(",") if ":" in ref}
        return ServedModel(
            name=self._model,
            version=str(version),
            features=features,
            predict=predictor,
            classes=classes,
            feature_refs={f.name: by_name[f.name] for f in features if f.name in by_name},
            run_id=registered.run_id,
            load_seconds=time.monotonic() - started,
            provenance=provenance(registered.run_id, registered.tags, found),
        )


PROVENANCE_TAGS = {
    "mlops.pipeline": "pipeline",
    "mlops.code_version": "codeVersion",
    "mlops.data_fingerprint": "dataFingerprint",
    "mlops.config_hash": "configHash",
    "mlops.feature_view_versions": "featureViewVersions",
}
"""Model-version tags `train` sets -> their key in `/ready`'s provenance."""


def provenance(run_id: str | None, tags: dict[str, str], found: Any) -> dict[str, str]:
    """Where a served version comes from: its run, and what `train` tagged it with. A version
    without them was not registered by the team's pipelines (and says so)."""
    shown = {"runId": run_id or "", "format": str(found)}
    shown |= {key: tags[tag] for tag, key in PROVENANCE_TAGS.items() if tag in tags}
    if "mlops.data_fingerprint" not in tags:
        shown["warning"] = "no training provenance: not registered by the team's pipelines"
    return shown


def _reference_sample(run_id: str | None, model_path: str) -> pd.DataFrame | None:
    """The training reference logged with the run, else the model's input example."""
    import mlflow

    from runtime.train import REFERENCE_ARTIFACT

    if run_id:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=REFERENCE_ARTIFACT
            )
            return pd.read_parquet(local).head(VERIFY_ROWS)
        except Exception:
            _log.info("no training reference for run %s; verifying on the input example", run_id)
    try:
        from mlflow.models import Model

        example = Model.load(model_path).load_input_example(model_path)
        return example if isinstance(example, pd.DataFrame) else None
    except Exception:
        return None


def _type_name(kind: Any) -> str:
    # ColSpec.type is a DataType enum (`double`, `long`, ...) or, for objects/arrays, a spec.
    return str(getattr(kind, "name", kind))
