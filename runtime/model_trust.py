"""Which registered models a runtime process may load: none that runs code when loaded, unless told.

Loading a pickled (or cloudpickled) scikit-learn model, or a python_function model with its own
loader module, runs whatever code the artifact carries, inside a pod that reads the feature store
and holds the team's key. The team's pipelines log scikit-learn models with skops, which builds
objects of listed types only; here the types are taken from the file itself (never from the
model's MLmodel, which whoever wrote the artifact also wrote) and must be scikit-learn's.
An endpoint may opt in to code-running formats (`trustModelCode: true`).

A version must also come from the team's artifact root: a version registered with a source
elsewhere (another bucket, an https:// URL) is refused before anything is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKOPS = "skops"
TRUSTED_TYPE_PREFIXES = ("sklearn.",)
"""skops types a model may have beyond skops' own defaults: scikit-learn's classes."""
TRUSTED_TYPES = frozenset({"numpy.dtype"})
"""...and these exact ones (every fitted tree model has one)."""
TRUST_HINT = "set trustModelCode: true on the endpoint to load it anyway"


class UntrustedModel(ValueError):
    """A model version this process refuses to load; the message says why."""


@dataclass(frozen=True)
class ModelFormat:
    """How a model version is serialized, from its MLmodel file."""

    flavor: str
    """`sklearn`, or the loader of a python_function model (`python_function` when custom)."""
    serialization: str | None = None
    """The sklearn flavor's serialization format: skops, pickle or cloudpickle."""

    @property
    def runs_code(self) -> bool:
        """Loading it may run code from the artifact."""
        return not (self.flavor == "sklearn" and self.serialization == SKOPS)

    def __str__(self) -> str:
        return f"{self.flavor} ({self.serialization})" if self.serialization else self.flavor


def model_format(flavors: dict[str, Any]) -> ModelFormat:
    """The format of a model from its MLmodel flavors (`Model.load(path).flavors`)."""
    if "sklearn" in flavors:
        # MLflow's default for a model without the key is pickle.
        return ModelFormat("sklearn", str(flavors["sklearn"].get("serialization_format", "pickle")))
    pyfunc = flavors.get("python_function") or {}
    return ModelFormat(str(pyfunc.get("loader_module") or "python_function"))


def check_source(where: str, download_uri: str, artifact_root: str | None) -> None:
    """Refuse a version whose artifacts are not under the team's artifact root."""
    if not artifact_root:
        return
    root = artifact_root.rstrip("/") + "/"
    if not (download_uri.rstrip("/") + "/").startswith(root):
        raise UntrustedModel(
            f"{where} lives at {download_uri!r}, outside the team's artifact root {root!r}: "
            "only the team's training pipelines write there"
        )


def untrusted_types(types: list[str]) -> list[str]:
    """The skops types of ``types`` that are not scikit-learn's."""
    return sorted(
        t for t in types if t not in TRUSTED_TYPES and not t.startswith(TRUSTED_TYPE_PREFIXES)
    )


def load_sklearn(where: str, path: str | Path, *, trust_code: bool) -> Any:
    """The scikit-learn estimator of the MLflow model at ``path``, loaded without running code
    from the artifact unless ``trust_code``. Raises UntrustedModel."""
    from mlflow.models import Model

    meta = Model.load(str(path))
    found = model_format(meta.flavors)
    if found.flavor != "sklearn":
        raise UntrustedModel(f"{where} has no scikit-learn flavor ({found})")
    if found.serialization == SKOPS:
        import skops.io

        file = Path(path) / meta.flavors["sklearn"]["pickled_model"]
        types = skops.io.get_untrusted_types(file=file)
        refused = untrusted_types(types)
        if refused and not trust_code:
            raise UntrustedModel(
                f"{where} is a skops model with types that are not scikit-learn's "
                f"({', '.join(refused[:5])}): {TRUST_HINT}"
            )
        return skops.io.load(file, trusted=types)
    if not trust_code:
        raise refusal(where, found)
    import mlflow

    return mlflow.sklearn.load_model(str(path))


def refusal(where: str, found: ModelFormat) -> UntrustedModel:
    return UntrustedModel(
        f"{where} is a {found} model: loading it runs code from the artifact; "
        f"this process loads scikit-learn models saved with skops only ({TRUST_HINT})"
    )
