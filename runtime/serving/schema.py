"""Request and response models derived from a served model's MLflow signature (pydantic)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from runtime.serving.model import Feature, ServedModel
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
        self.join_keys = online_join_keys(model, feature_store)
        """Inputs that can be looked up online -> the join keys that look them up."""
        self.refs = {name: model.feature_refs[name] for name in self.join_keys}
        """Input name -> `<view>:<feature>` for inputs that can be looked up online."""
        keys = {key: kind for keys in self.join_keys.values() for key, kind in keys}
        fields: dict[str, Any] = {}
        for feature in model.features:
            kind = _TYPES.get(feature.kind, Any)
            if feature.name in self.join_keys:
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
        self.feature_names = [f.name for f in model.features]


MAX_ROWS = 10_000
"""Most rows one request may carry."""


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


def feature_types(features: list[Feature]) -> dict[str, Any]:
    return {f.name: _TYPES.get(f.kind, Any) for f in features}


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
