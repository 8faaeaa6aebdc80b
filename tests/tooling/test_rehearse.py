"""`mlops rehearse`: how planned workloads are rewritten for one host (no podman needed)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime.spec import EndpointSpec, FeatureStoreSpec, PipelineSpec
from tests.components._data_plane_helpers import env_of
from tests.conftest import planned
from tooling import rehearse
from tooling.cli import app
from tooling.manifests import schema_errors
from tooling.rehearse import (
    SERVING_PORT,
    StandIns,
    cloud_resources,
    container_names,
    job_pod,
    pod_name,
    rehearsal_deployment,
    substituted_env,
    synthetic_sources,
    workloads,
)

STAND_INS = StandIns(
    image="localhost/mlops-runtime:test",
    aws_endpoint="http://127.0.0.1:40000",
    database_uri="postgresql://postgres@127.0.0.1:5432/mlops_rehearsal_fraud_dev",
    credentials_dir="/tmp/rehearsal/aws",
)
ADDED = {
    "MLOPS_AWS_ENDPOINT_URL": STAND_INS.aws_endpoint,
    "AWS_SHARED_CREDENTIALS_FILE": "/var/run/mlops-rehearsal/credentials",
}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"])


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_the_plan_names_what_a_rehearsal_plays() -> None:
    played = workloads(planned("fraud-dev"))

    assert played.registry["metadata"]["name"] == "mlflow"
    assert [d["metadata"]["name"] for d in played.serving] == ["scorer"]
    assert [c["metadata"]["name"] for c in played.training] == ["train-fraud-model"]
    assert [c["metadata"]["name"] for c in played.materialization] == ["materialize-features"]
    assert [m["metadata"]["name"] for m in played.config_maps] == ["feast-config"]


def test_serving_keeps_the_planned_env_but_for_the_documented_stand_ins() -> None:
    planned_deployment = workloads(planned("fraud-dev")).serving[0]
    played = rehearsal_deployment(planned_deployment, STAND_INS)
    before = env_of(_pod(planned_deployment)["containers"][0])
    after = env_of(_pod(played)["containers"][0])

    assert after == {
        **before,
        "MLOPS_TRACKING_URI": "http://127.0.0.1:5000",
        **ADDED,
    }
    assert before["MLOPS_TRACKING_URI"].endswith(".svc.cluster.local:5000")


def test_serving_keeps_its_security_and_scratch_space_and_loses_placement() -> None:
    planned_deployment = workloads(planned("fraud-dev")).serving[0]
    played = rehearsal_deployment(planned_deployment, STAND_INS)
    before, after = _pod(planned_deployment), _pod(played)

    assert played["spec"]["replicas"] == 1
    assert "namespace" not in played["metadata"]
    assert after["securityContext"] == before["securityContext"]
    (container,) = after["containers"]
    assert container["securityContext"] == before["containers"][0]["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == 10001
    assert container["image"] == STAND_INS.image
    assert container["args"] == ["serve"]
    assert {"startupProbe", "readinessProbe", "livenessProbe"}.isdisjoint(container)
    assert after["hostNetwork"] is True
    for key in ("serviceAccountName", "topologySpreadConstraints", "nodeSelector"):
        assert key not in after
    work = next(v for v in after["volumes"] if v["name"] == "work")
    assert work == next(v for v in before["volumes"] if v["name"] == "work")
    credentials = next(m for m in container["volumeMounts"] if m["name"] == "rehearsal-aws")
    assert credentials["readOnly"] is True


def test_the_mlflow_server_uses_the_local_database_without_the_login_sidecar() -> None:
    registry = workloads(planned("fraud-dev")).registry
    played = rehearsal_deployment(registry, STAND_INS)
    pod = _pod(played)

    assert "initContainers" not in pod
    assert "db-credentials" not in {v["name"] for v in pod["volumes"]}
    (server,) = pod["containers"]
    env = env_of(server)
    assert env["MLFLOW_BACKEND_STORE_URI"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/mlops_rehearsal_fraud_dev"
    )
    assert env["MLFLOW_S3_ENDPOINT_URL"] == STAND_INS.aws_endpoint
    assert "PGPASSFILE" not in env
    assert env["MLFLOW_DEFAULT_ARTIFACT_ROOT"].startswith("s3://fraud-dev-models-")
    assert "db-credentials" not in {m["name"] for m in server["volumeMounts"]}
    assert server["command"] == ["mlflow"]


def test_a_job_runs_once_from_its_template_without_gpu_or_node_pool() -> None:
    cronjob = workloads(planned("fraud-dev")).training[0]
    pod = job_pod(cronjob, STAND_INS, name="rehearse-train")
    spec = _pod(pod)

    assert pod["kind"] == "Pod"
    assert spec["restartPolicy"] == "Never"
    assert "tolerations" not in spec and "nodeSelector" not in spec
    (container,) = spec["containers"]
    # fraud-dev trains continuously: a first check finds no model and trains one.
    assert container["args"] == ["train", "--pipeline", "fraud-model", "--if-due"]
    for values in container["resources"].values():
        assert "nvidia.com/gpu" not in values
    other = job_pod(cronjob, STAND_INS, name="x", args=["promote", "fraud-model"])
    assert _pod(other)["containers"][0]["args"] == ["promote", "fraud-model"]
    assert container_names(pod) == ["rehearse-train-train"]


def test_a_second_endpoint_listens_on_the_next_port() -> None:
    deployment = copy.deepcopy(workloads(planned("fraud-dev")).serving[0])
    played = rehearsal_deployment(deployment, STAND_INS, port=SERVING_PORT + 1)
    (container,) = _pod(played)["containers"]

    assert env_of(container)["MLOPS_PORT"] == "8081"
    assert "ports" not in container  # the host network has no port mappings
    assert pod_name(played) == "scorer-pod"
    assert container_names(played) == ["scorer-pod-serve"]


def test_a_sql_registry_uri_points_at_the_local_database() -> None:
    env = [
        {"name": "MLOPS_FEAST_REGISTRY_URI", "value": "postgresql://mlops@db.rds:5432/mlops"},
        {"name": "PGPASSFILE", "value": "/var/run/mlops-db/pgpass"},
    ]
    assert substituted_env(env, STAND_INS) == [
        {"name": "MLOPS_FEAST_REGISTRY_URI", "value": STAND_INS.database_uri},
        {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": STAND_INS.credentials_file},
        {"name": "MLOPS_AWS_ENDPOINT_URL", "value": STAND_INS.aws_endpoint},
    ]


def test_every_rehearsed_object_is_still_valid_kubernetes(example_stack: str) -> None:
    played = workloads(planned(example_stack))
    objects = [
        rehearsal_deployment(played.registry, STAND_INS),
        *(rehearsal_deployment(d, STAND_INS) for d in played.serving),
        *(job_pod(c, STAND_INS, name="rehearse") for c in played.training),
        *(job_pod(c, STAND_INS, name="rehearse") for c in played.materialization),
    ]
    for obj in objects:
        assert schema_errors(obj) == []
        for container in _containers(_pod(obj)):
            assert container["image"] == STAND_INS.image


def test_the_cloud_stand_in_gets_the_planned_buckets_tables_and_topic() -> None:
    buckets, tables, topics = cloud_resources(planned("fraud-dev"))

    assert any(b.startswith("fraud-dev-features-") for b in buckets)
    assert any(b.startswith("fraud-dev-models-") for b in buckets)
    assert sorted(t["TableName"] for t in tables) == ["fraud.card_profile", "fraud.card_txn_stats"]
    assert tables[0]["KeySchema"] == [{"AttributeName": "entity_id", "KeyType": "HASH"}]
    assert topics == ["fraud-dev-alerts"]


def test_synthetic_data_fits_the_stack_and_lets_training_pass_its_gates() -> None:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    env = env_of(
        _pod(job_pod(workloads(planned("fraud-dev")).training[0], STAND_INS, name="t"))[
            "containers"
        ][0]
    )
    store = FeatureStoreSpec.model_validate_json(env["MLOPS_FEATURE_STORE"])
    (pipeline,) = [PipelineSpec.model_validate(p) for p in json.loads(env["MLOPS_PIPELINES"])]
    end = datetime(2026, 1, 31, tzinfo=UTC)

    frames = synthetic_sources(store, [pipeline], end=end)

    assert sorted(frames) == [
        "card_profile/part-0.parquet",
        "card_txn_stats/part-0.parquet",
        "labels/transactions/part-0.parquet",
    ]
    stats = frames["card_txn_stats/part-0.parquet"]
    assert str(stats["txn_count_7d"].dtype) == "int64"
    assert str(stats["avg_amount_7d"].dtype) == "float64"
    assert stats["event_ts"].max() == end
    labels = frames["labels/transactions/part-0.parquet"]
    assert set(labels) == {"card_id", "event_ts", "is_fraud", "age_band"}
    assert 0.1 < labels["is_fraud"].mean() < 0.6
    # The signal is in the point-in-time feature values: a model finds it (training's gate).
    features = [f.split(":")[1] for f in pipeline.features]
    views = pd.concat(
        [
            frames[f"{v}/part-0.parquet"].set_index(["card_id", "event_ts"])
            for v in ("card_txn_stats", "card_profile")
        ],
        axis=1,
    ).reset_index()
    joined = labels.assign(day=labels["event_ts"].dt.floor("D")).merge(
        views, left_on=["card_id", "day"], right_on=["card_id", "event_ts"]
    )
    half = len(joined) // 2
    model = HistGradientBoostingClassifier(max_iter=50).fit(
        joined[features][:half], joined["is_fraud"][:half]
    )
    auc = roc_auc_score(
        joined["is_fraud"][half:], model.predict_proba(joined[features][half:])[:, 1]
    )
    assert auc > 0.8
    assert np.isclose(
        synthetic_sources(store, [pipeline], end=end)["labels/transactions/part-0.parquet"][
            "is_fraud"
        ].sum(),
        labels["is_fraud"].sum(),
    )


def test_state_round_trips(tmp_path: Path) -> None:
    state = rehearse.State(
        stack="fraud-dev",
        image="i",
        aws_endpoint="e",
        database="d",
        database_uri="u",
        admin_database_uri="a",
        credentials_dir="c",
        pods=[rehearse.PlayedPod("serving", "scorer-pod", ["scorer-pod-serve"], "f.yaml")],
    )
    state.save(tmp_path)

    assert rehearse.State.load(tmp_path) == state
    assert json.loads((tmp_path / "state.json").read_text())["substitutions"]
    assert list(rehearse.iter_rows(state)) == [("serving", "scorer-pod", "running", "")]


runner = CliRunner()


def test_rehearse_needs_a_stack_or_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: mlops\n")
    monkeypatch.chdir(tmp_path)  # a project without a rehearsal: its state folder is empty

    assert runner.invoke(app, ["rehearse"]).exit_code == 2
    down = runner.invoke(app, ["rehearse", "--down"])
    assert down.exit_code == 0
    assert "no rehearsal is up" in down.stderr


def test_the_loop_plays_the_endpoint_its_monitor_and_the_training_job_with_short_windows() -> None:
    from tooling.rehearse import loop

    played = workloads(planned("fraud-dev"))
    plan = loop.loop_plan(played)
    assert (plan.model, plan.endpoint, plan.port) == ("fraud-model", "scorer", SERVING_PORT)
    assert plan.training["metadata"]["name"] == "train-fraud-model"
    assert plan.monitor["metadata"]["name"] == "drift-scorer"

    pod = loop.loop_pod(
        plan.monitor, STAND_INS, name="m", args=loop.monitor_args(plan.monitor, 89.5)
    )
    (container,) = _pod(pod)["containers"]
    assert container["args"] == [
        "monitor", "--endpoint", "scorer", "--psi-threshold", "0.2", "--window", "90s"
    ]  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"]}
    rehearsed = {e["name"]: e["value"] for e in _pod(job_pod(plan.monitor, STAND_INS, name="m"))[
        "containers"][0]["env"]}  # fmt: skip
    # Only the pipeline's continuousTraining (the demo's short windows, merged in) and the
    # endpoint's latency SLO change.
    assert {k for k in env if env[k] != rehearsed[k]} == {"MLOPS_PIPELINES", "MLOPS_ENDPOINT"}
    endpoint = EndpointSpec.model_validate_json(env["MLOPS_ENDPOINT"])
    planned_endpoint = EndpointSpec.model_validate_json(rehearsed["MLOPS_ENDPOINT"])
    assert endpoint.slo.p99_latency_ms == loop.REHEARSAL_P99_LATENCY_MS
    assert endpoint.model_copy(update={"slo": planned_endpoint.slo}) == planned_endpoint
    (pipeline,) = json.loads(env["MLOPS_PIPELINES"])
    (before,) = json.loads(rehearsed["MLOPS_PIPELINES"])
    assert {k: v for k, v in pipeline.items() if k != "continuousTraining"} == {
        k: v for k, v in before.items() if k != "continuousTraining"
    }
    ct = PipelineSpec.model_validate(pipeline).continuous_training
    assert ct is not None and ct.triggers.drift is not None and ct.promotion is not None
    assert (ct.triggers.drift.breaches, ct.triggers.drift.windows, ct.min_rows) == (2, 3, 100)
    assert ct.triggers.schedule is not None  # the stack's own triggers stay
    assert ct.promotion.min_requests == 25 and ct.promotion.observe.total_seconds() == 60
    assert ct.cooldown.total_seconds() == 10
    assert not schema_errors(pod)
    assert loop.drifted([{"a": 2.0, "b": 3}]) == [{"a": 6.0, "b": 3}]


def test_the_loop_needs_a_canary_on_a_continuously_trained_model() -> None:
    from tooling.rehearse import RehearsalError, loop

    played = workloads(planned("fraud-dev"))
    for deployment in played.serving:
        for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            if entry["name"] == "MLOPS_ENDPOINT":
                entry["value"] = json.dumps(
                    {k: v for k, v in json.loads(entry["value"]).items() if k != "canary"}
                )
    with pytest.raises(RehearsalError, match="--loop needs an endpoint with a canary"):
        loop.loop_plan(played)
