"""Helpers for the serving tests (no tests here): a fake model source, a registered demo model,
and a real `mlops-runtime serve` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from runtime.serving.model import Feature, ServedModel, SklearnPredictor, onnx_predictor
from runtime.settings import ENV_PREFIX, Settings, library_env, render_env
from runtime.spec import EndpointSpec, Entity, FeatureSource, FeatureStoreSpec, FeatureView

T = TypeVar("T")
FEATURES = ["txn_count_7d", "avg_amount_7d", "max_amount_7d", "share_foreign_7d"]
ROW = {"txn_count_7d": 3, "avg_amount_7d": 40.5, "max_amount_7d": 90.0, "share_foreign_7d": 0.2}
FEATURE_STORE = FeatureStoreSpec(
    entities=[Entity(name="card", join_key="card_id")],
    feature_views=[
        FeatureView(
            name="card_txn_stats",
            entities=["card"],
            source=FeatureSource(path="card_txn_stats/"),
            features=dict.fromkeys(FEATURES, "float64"),
        )
    ],
)


def training_frame(rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "txn_count_7d": rng.poisson(4, rows).astype(float),
            "avg_amount_7d": rng.lognormal(3.5, 0.5, rows),
            "max_amount_7d": rng.lognormal(4.5, 0.5, rows),
            "share_foreign_7d": rng.uniform(0, 1, rows),
        }
    )
    label = (frame["share_foreign_7d"] + rng.normal(0, 0.2, rows) > 0.6).astype(int).to_numpy()
    return frame, label


def fitted_model(seed: int = 0) -> LogisticRegression:
    frame, label = training_frame(seed=seed)
    return LogisticRegression(max_iter=500).fit(frame, label)


def served(
    version: str,
    *,
    seed: int = 0,
    onnx: bool = False,
    online: bool = True,
    nullable: tuple[str, ...] = (),
) -> ServedModel:
    """A small logistic regression as a served version (optionally on its ONNX fast path);
    ``nullable`` inputs are declared optional and imputed."""
    estimator: Any = fitted_model(seed)
    if nullable:
        frame, label = training_frame(seed=seed)
        estimator = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(
            frame, label
        )
    features = [Feature(name, "double", name not in nullable) for name in FEATURES]
    predictor: Any = SklearnPredictor(estimator, features)
    if onnx:
        predictor = onnx_predictor(estimator, features, [0, 1], training_frame(seed=seed)[0])
        assert predictor is not None
    return ServedModel(
        name="fraud-model",
        version=version,
        features=features,
        predict=predictor,
        classes=[0, 1],
        feature_refs={name: f"card_txn_stats:{name}" for name in FEATURES} if online else {},
        run_id=f"run-{version}",
        provenance={"runId": f"run-{version}", "format": "sklearn (skops)"},
    )


@dataclass
class FakeSource:
    """Aliases -> versions the test moves; ``load`` may be held or made to fail."""

    aliases: dict[str, str] = field(default_factory=lambda: {"champion": "1"})
    failing: set[str] = field(default_factory=set)
    gate: threading.Event = field(default_factory=threading.Event)
    onnx: bool = False
    nullable: tuple[str, ...] = ()
    loads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def version_of(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    def load(self, version: str) -> ServedModel:
        self.gate.wait(30)
        self.loads.append(version)
        if version in self.failing:
            raise OSError(f"artifact of version {version} is unreadable")
        return served(version, seed=int(version), onnx=self.onnx, nullable=self.nullable)


class FakeOnline:
    """Online values for cards 1..9 (a constant row), nothing for other ids."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def lookup(self, refs: list[str], entity_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(list(entity_rows))
        names = [ref.split(":", 1)[1] for ref in refs]
        return [
            {name: (ROW[name] if 0 < row["card_id"] < 10 else None) for name in names}
            for row in entity_rows
        ]


def endpoint_settings(home: Path, **endpoint: Any) -> Settings:
    return Settings(
        home=home,
        team="fraud",
        metrics_namespace="MLOps/fraud",
        feature_store=FEATURE_STORE,
        endpoint=EndpointSpec(name="scorer", model="fraud-model", **endpoint),
    )


def wait_for(condition: Any, timeout: float = 30.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# --- a model in a real MLflow registry, and a real server ---------------------------------------


def register_demo_model(settings: Settings, model: str = "fraud-model", seed: int = 0) -> str:
    """Log a small pipeline the way `train` does (skops, signature, example, reference, feature
    tags), register it and point ``champion`` at it; returns the version."""
    import tempfile
    import warnings

    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.pipeline import Pipeline

    from runtime import registry
    from runtime.train import REFERENCE_ARTIFACT

    os.environ.update(library_env(settings))
    client = registry.client(settings)
    frame, label = training_frame(seed=seed)
    pipeline = Pipeline([("estimator", LogisticRegression(max_iter=500))]).fit(frame, label)
    experiment = registry.experiment_id(settings, client, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment):
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "training_reference.parquet"
                reference = frame.head(200).copy()
                reference["prediction"] = pipeline.predict(reference)
                reference.to_parquet(path)
                mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
            example = frame.head(5)
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=infer_signature(example, pipeline.predict(example)),
                input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
                pip_requirements=["scikit-learn", "skops"],
            )
        version = mlflow.register_model(
            info.model_uri,
            model,
            tags={"mlops.features": ",".join(f"card_txn_stats:{n}" for n in FEATURES)},
        ).version
    client.set_registered_model_alias(model, "champion", version)
    return str(version)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """A process environment carrying exactly ``settings`` (as a pod would get it)."""
    # Feast points prometheus-client at a temp folder of this process when imported.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    fields = settings.model_dump(exclude_defaults=True)
    env |= {k: str(v) for k, v in render_env(**{n: getattr(settings, n) for n in fields}).items()}
    return env


def serve_command(*options: str) -> list[str]:
    """`mlops-runtime serve` on localhost with ``options``."""
    return [
        str(Path(sys.executable).parent / "mlops-runtime"),
        "serve",
        "--host",
        "127.0.0.1",
        *options,
    ]


@contextmanager
def running_server(
    env: dict[str, str], port: int, timeout: float = 120, command: list[str] | None = None
) -> Iterator[Any]:
    """`mlops-runtime serve` as a subprocess, ready; stopped with SIGTERM on exit."""
    process = subprocess.Popen(
        command or serve_command(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{process.stdout.read()}")  # type: ignore[union-attr]
            reason = "no answer"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if answer.status_code == 200:
                    break
                reason = answer.text
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not become ready: {reason}")
            time.sleep(0.25)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_alone(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine``'s result, on an event loop of its own: unlike ``asyncio.run``, this leaves
    the thread's event loop alone (Pulumi's mocks in later tests of the same process need it)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
