"""Request and response models derived from a served model's MLflow signature (pydantic)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, create_model

from runtime.serving.model import ServedModel
from runtime.spec import FeatureStoreSpec

_TYPES: dict[str, Any] = {
    "double": float,
    "float": float,
    "long": int,
    "integer": int,
    "boolean": StrictBool,
    "string": str,
}
_KEY_TYPES: dict[str, Any] = {"int64": int, "string": str}
_NUMBERS = {"double", "float", "long", "integer"}


class PredictResponse(BaseModel):
    """What every prediction route answers."""

    request_id: str
    model: str
    version: str
    """Registry version that answered."""
    variant: str
    """`champion` or `challenger` (canary share)."""
    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    """Per row, the probability of each of ``classes`` (classifiers only)."""
    classes: list[Any] | None = None


class NotReadyResponse(BaseModel):
    ready: bool = False
    reason: str


class RowSchema:
    """The row model of one served model, and which inputs may come from the online store."""

    def __init__(self, model: ServedModel, feature_store: FeatureStoreSpec) -> None:
        self.features = model.features
        self.nullable = {f.name for f in model.features if not f.required}
        """Inputs the model declares optional: missing values are scored as missing."""
        self.join_keys = online_join_keys(model, feature_store)
        """Inputs that can be looked up online -> the join keys that look them up."""
        self.refs = {name: model.feature_refs[name] for name in self.join_keys}
        """Input name -> `<view>:<feature>` for inputs that can be looked up online."""
        keys = {key: kind for keys in self.join_keys.values() for key, kind in keys}
        fields: dict[str, Any] = {}
        for feature in model.features:
            kind = _TYPES.get(feature.kind, Any)
            if kind is float:
                # One rule for JSON and CSV: NaN and infinities are not numbers a model can score.
                kind = Annotated[float, Field(allow_inf_nan=False)]
            if not feature.required:
                # Declared nullable: missing, empty, NaN and infinities all mean "no value".
                missing = _missing_if_not_finite if feature.kind in _NUMBERS else _missing_if_blank
                fields[feature.name] = (
                    Annotated[kind | None, BeforeValidator(missing)],
                    Field(default=None),
                )
            elif feature.name in self.join_keys:
                # Left out: looked up online by the entity key.
                fields[feature.name] = (kind | None, Field(default=None))
            else:
                fields[feature.name] = (kind, ...)
        for key, kind in keys.items():
            if key not in fields:
                fields[key] = (_KEY_TYPES[kind] | None, Field(default=None))
        self.row = create_model(
            f"{_title(model.name)}Row",
            __config__=ConfigDict(extra="ignore"),
            **fields,
        )
        self.request = create_model(
            f"{_title(model.name)}Request",
            __config__=ConfigDict(extra="forbid"),
            rows=(list[self.row], Field(min_length=1, max_length=MAX_ROWS)),  # type: ignore[name-defined]
        )
        rows = list[self.row] | None  # type: ignore[name-defined]
        self.invocation = create_model(
            f"{_title(model.name)}Invocation",
            __config__=ConfigDict(extra="forbid"),
            **{
                key: (rows, Field(default=None, min_length=1, max_length=MAX_ROWS))
                for key in ROW_LIST_KEYS
            },
        )
        """A SageMaker invocation whose rows are a list under one of ``ROW_LIST_KEYS``."""
        self.feature_names = [f.name for f in model.features]


MAX_ROWS = 10_000
"""Most rows one request may carry."""
ROW_LIST_KEYS = ("rows", "instances", "dataframe_records")
"""The keys under which an invocation's JSON gives its rows as a list of objects."""


def online_join_keys(
    model: ServedModel, feature_store: FeatureStoreSpec
) -> dict[str, list[tuple[str, str]]]:
    """Input name -> [(join key, key type)] for inputs an online feature view serves."""
    entities = {e.name: e for e in feature_store.entities}
    views = {v.name: v for v in feature_store.feature_views if v.online}
    found: dict[str, list[tuple[str, str]]] = {}
    for name, ref in model.feature_refs.items():
        view = views.get(ref.split(":", 1)[0])
        if view is None or not all(e in entities for e in view.entities):
            continue
        found[name] = [(entities[e].join_key, str(entities[e].value_type)) for e in view.entities]
    return found


def _missing_if_blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _missing_if_not_finite(value: Any) -> Any:
    number = _missing_if_blank(value)
    if isinstance(number, str):
        try:
            number = float(number)
        except ValueError:
            return value
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return value if number is not None else None


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
