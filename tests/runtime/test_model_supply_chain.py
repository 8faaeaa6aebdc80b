"""The attack on the model supply chain, played: a pod that is not the training job registers a
pickled model version and points `champion` at it. It fails at two independent layers.

1. IAM (the planned policies, evaluated by moto's IAM policy engine): of every role a team stack
   creates, only the training role may write under the artifact root; MLflow proxies no upload
   (`--no-serve-artifacts`), so no other pod can put model bytes where serving reads them.
2. The runtime: even with bytes in place (the attacker wrote them with someone's training
   credentials, or pointed the version elsewhere), serving refuses a model that runs code when
   loaded, or that lives outside the artifact root, and keeps serving the champion it had.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from runtime import model_trust, registry
from runtime.serving.holder import ModelHolder
from runtime.serving.model import RegistryModelSource
from tests.conftest import planned
from tests.runtime.conftest import Team
from tests.runtime.test_serve_support import fitted_model, register_demo_model, training_frame

MODEL = "fraud-model"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


# --- layer 1: who may write model artifacts (the planned IAM policies) --------------------------


def writers(stack: str, key: str) -> list[str]:
    """Roles whose planned policy lets them put (or delete) ``key`` in the artifact bucket."""
    plan = planned(stack)
    bucket = plan.one("aws:s3/bucket:Bucket", "registry-artifacts-bucket").outputs["arn"]
    found = []
    for policy in plan.of_type(ROLE_POLICY):
        engine = IAMPolicy(policy.inputs["policy"])
        for action in ("s3:PutObject", "s3:DeleteObject"):
            if engine.is_action_permitted(action, f"{bucket}/{key}") == PermissionResult.PERMITTED:
                found.append(f"{policy.inputs['role']} {action}")
    return found


def test_only_the_training_role_writes_model_artifacts(example_stack: str) -> None:
    team = example_stack.rsplit("-", 1)[0]
    artifact = "artifacts/fraud-model/models/m-1/artifacts/model.pkl"
    assert writers(example_stack, artifact) == [f"{example_stack}-training s3:PutObject"], team
    # Next to the artifact root is not inside it: nobody writes a model there either.
    assert not [w for w in writers(example_stack, "artifactsX/m.pkl") if "training" in w]


def test_the_tracking_server_proxies_no_upload(example_stack: str) -> None:
    plan = planned(example_stack)
    server = plan.one("kubernetes:apps/v1:Deployment", "registry-server")
    (container,) = [
        c for c in server.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow"
    ]
    assert "--no-serve-artifacts" in container["args"]
    assert "--serve-artifacts" not in container["args"]


# --- layer 2: what serving loads -----------------------------------------------------------------


class Planted:
    """Pickled, it runs code when loaded: it leaves a marker file (harmless, observable)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def register_pickle(team: Team, marker: Path, tmp_path: Path) -> str:
    """What an attacker with registry access does: a version whose model file is a pickle that
    runs code, under the team's artifact root, aliased champion."""
    import mlflow
    from mlflow.models import infer_signature

    client = registry.client(team.settings)
    folder = tmp_path / "planted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fitted_model()
        frame, _ = training_frame()
        mlflow.sklearn.save_model(
            model,
            str(folder),
            serialization_format="pickle",
            signature=infer_signature(frame, model.predict(frame)),
        )
    (folder / "model.pkl").write_bytes(pickle.dumps(Planted(marker)))
    experiment = registry.experiment_id(team.settings, client, MODEL)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(folder), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL).version
    client.set_registered_model_alias(MODEL, "champion", version)
    return str(version)


def test_serving_refuses_the_planted_pickle_and_keeps_its_champion(
    embedded: Team, tmp_path: Path
) -> None:
    legit = register_demo_model(embedded.settings, MODEL)
    holder = ModelHolder(RegistryModelSource(embedded.settings, MODEL, fast_path=False))
    holder.refresh()  # serving the trained champion
    marker = tmp_path / "code-ran"

    planted = register_pickle(embedded, marker, tmp_path)
    holder.refresh()  # the alias moved to the planted version

    slot = holder.slot("champion")
    assert slot.model is not None and slot.model.version == legit
    assert slot.error is not None
    assert slot.error.startswith(f"version {planted} (champion) failed to load: UntrustedModel")
    assert "runs code from the artifact" in slot.error
    assert not marker.exists(), "the planted pickle ran"


@pytest.fixture
def planted(embedded: Team, tmp_path: Path) -> tuple[Team, str, Path]:
    register_demo_model(embedded.settings, MODEL)
    marker = tmp_path / "code-ran"
    return embedded, register_pickle(embedded, marker, tmp_path), marker


def test_the_planted_pickle_is_refused_before_a_byte_is_unpickled(
    planted: tuple[Team, str, Path],
) -> None:
    team, version, marker = planted
    with pytest.raises(model_trust.UntrustedModel, match=r"sklearn \(pickle\) model"):
        RegistryModelSource(team.settings, MODEL).load(version)
    assert not marker.exists()


def test_an_endpoint_that_trusts_model_code_loads_it(
    planted: tuple[Team, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The opt-in is real, and so is the payload: trusted, the pickle runs."""
    team, version, marker = planted
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    RegistryModelSource(team.settings, MODEL, fast_path=False, trust_code=True).load(version)
    assert marker.exists()


def test_a_version_from_outside_the_artifact_root_is_refused(
    embedded: Team, tmp_path: Path
) -> None:
    import mlflow

    register_demo_model(embedded.settings, MODEL)
    client = registry.client(embedded.settings)
    elsewhere = tmp_path / "elsewhere"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(fitted_model(), str(elsewhere), serialization_format="skops")
    version = client.create_model_version(MODEL, elsewhere.as_uri()).version

    with pytest.raises(model_trust.UntrustedModel, match="outside the team's artifact root"):
        RegistryModelSource(embedded.settings, MODEL).load(str(version))


def test_a_skops_model_with_foreign_types_is_refused(tmp_path: Path) -> None:
    """skops builds only listed types: the list comes from the file, and must be sklearn's."""
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    folder = tmp_path / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow

        mlflow.sklearn.save_model(
            fitted_model(),
            str(folder),
            serialization_format="skops",
            skops_trusted_types=["sklearn.linear_model._logistic.LogisticRegression"],
        )
    (folder / "model.skops").write_bytes(skops.io.dumps(FunctionTransformer(func=os.system)))
    with pytest.raises(model_trust.UntrustedModel, match=r"not scikit-learn's \(posix.system"):
        model_trust.load_sklearn("the model", folder, trust_code=False)


def test_the_champion_is_served_with_its_provenance(embedded: Team) -> None:
    version = register_demo_model(embedded.settings, MODEL)
    client = registry.client(embedded.settings)
    for tag, value in {"mlops.data_fingerprint": "f00d", "mlops.code_version": "img@sha"}.items():
        client.set_model_version_tag(MODEL, version, tag, value)

    served = RegistryModelSource(embedded.settings, MODEL, fast_path=False).load(version)

    run_id = client.get_model_version(MODEL, version).run_id
    assert served.provenance == {
        "runId": run_id,
        "format": "sklearn (skops)",
        "codeVersion": "img@sha",
        "dataFingerprint": "f00d",
    }


def test_only_a_trusting_endpoint_opens_mlflows_own_gate() -> None:
    from runtime.settings import Settings, library_env
    from runtime.spec import EndpointSpec

    endpoint = EndpointSpec(name="scorer", model=MODEL)
    assert (
        library_env(Settings(endpoint=endpoint))["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    )
    trusting = endpoint.model_copy(update={"trust_model_code": True})
    assert library_env(Settings(endpoint=trusting))["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "true"


@pytest.mark.parametrize(
    ("flavors", "shown", "runs_code"),
    [
        pytest.param(
            {"sklearn": {"serialization_format": "skops"}}, "sklearn (skops)", False, id="skops"
        ),
        pytest.param(
            {"sklearn": {"serialization_format": "cloudpickle"}},
            "sklearn (cloudpickle)",
            True,
            id="cloudpickle",
        ),
        pytest.param({"sklearn": {}}, "sklearn (pickle)", True, id="mlflow-default-is-pickle"),
        pytest.param(
            {"python_function": {"python_model": "m.pkl"}},
            "python_function",
            True,
            id="custom-pyfunc",
        ),
        pytest.param(
            {"python_function": {"loader_module": "mlflow.onnx"}},
            "mlflow.onnx",
            True,
            id="other-flavor",
        ),
    ],
)
def test_model_formats(flavors: dict[str, Any], shown: str, runs_code: bool) -> None:
    found = model_trust.model_format(flavors)
    assert (str(found), found.runs_code) == (shown, runs_code)
