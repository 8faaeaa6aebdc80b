"""Continuous training: triggers and every guardrail, against the embedded registry (SQLite).

Training itself is replaced by a stand-in that registers a version (or fails as told): what is
under test is the decision around it. The PostgreSQL cases at the end repeat the race on the
production registry backend.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from runtime import continuous, events, registry
from runtime.cli import app
from runtime.continuous import Outcome, acquire_lease, assess, record_window, run_if_due
from runtime.drift import ColumnDrift
from runtime.errors import GateFailure, RuntimeUserError
from runtime.monitor_result import MonitorResult
from runtime.settings import Settings
from runtime.spec import PipelineSpec
from tests.runtime.conftest import REGION, use_env

MODEL = "fraud-model"
ENDPOINT = "scorer"
PIPELINE: dict[str, Any] = {
    "name": MODEL,
    "labels": {"path": "labels/fraud.parquet", "target": "is_fraud"},
    "features": ["card_txn_stats:avg_amount_7d", "card_txn_stats:txn_count_7d"],
    "gates": {"minimum": 0.7},
}


class Clock:
    """A clock the test moves; starts at the real time (MLflow stamps versions with it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Trainer:
    """Stands in for `runtime.train.train`: registers a challenger, or fails as told."""

    def __init__(self, *failures: BaseException | None) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self, settings: Settings, pipeline: str) -> Any:
        self.calls += 1
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        version = register(settings)
        registry.client(settings).set_registered_model_alias(
            model_of(settings), registry.CHALLENGER, version
        )
        return SimpleNamespace(version=version)


def gate_failure() -> GateFailure:
    return GateFailure(MODEL, ["roc_auc 0.55 is below the minimum 0.7"], "run-1")


def model_of(settings: Settings) -> str:
    return settings.pipelines[0].model_name


def register(settings: Settings, **tags: str) -> str:
    client = registry.client(settings)
    model = model_of(settings)
    continuous._ensure_registered(client, model)
    source = settings.home / "fake-model"
    source.mkdir(parents=True, exist_ok=True)
    return str(client.create_model_version(model, source=str(source), tags=tags).version)


def settings_with(home: Path, **ct: Any) -> Settings:
    pipeline = PipelineSpec.model_validate({**PIPELINE, "continuousTraining": ct})
    return Settings(home=home, team="fraud", pipelines=[pipeline])


@pytest.fixture
def home(tmp_path: Path, mlflow_template: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    shutil.copy(mlflow_template, folder / "mlflow.db")
    return folder


def with_champion(settings: Settings, **tags: str) -> str:
    version = register(settings, **tags)
    registry.client(settings).set_registered_model_alias(MODEL, registry.CHAMPION, version)
    return version


def window(
    settings: Settings, end: datetime, *, psi: float | None, rows: int = 500, **quality: float
) -> None:
    """What one monitor run of the endpoint leaves for the triggers."""
    client = registry.client(settings)
    champion = registry.alias_version(client, MODEL, registry.CHAMPION)
    result = MonitorResult(
        endpoint=ENDPOINT,
        model=MODEL,
        champion_version=str(champion.version) if champion else "",
        start=end - timedelta(hours=1),
        end=end,
        rows=rows,
        psi_threshold=0.2,
        features=[]
        if psi is None
        else [ColumnDrift("avg_amount_7d", "numeric", psi, 0.1, 0.5, 1000, rows)],
        quality=dict(quality),
        labelled_rows=rows if quality else 0,
    )
    record_window(client, settings.pipelines[0], result)


def metric_values(settings: Settings, name: str) -> list[float]:
    path = settings.home / "metrics" / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [item["value"] for item in lines if item["metric"] == name]


def kinds(settings: Settings) -> list[str]:
    return [str(e.kind) for e in events.read(settings, model_of(settings))]


DRIFT = {"triggers": {"drift": {"breaches": 3, "windows": 4}}, "minRows": 100}


# --- triggers ------------------------------------------------------------------------------------


def test_a_model_with_nothing_registered_gets_its_first_version(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "7d"}})
    trainer = Trainer()

    check = run_if_due(settings, MODEL, trainer=trainer, clock=Clock())

    assert check.started is not None and check.started.trigger == "first-model"
    assert (check.started.outcome, check.version, trainer.calls) == (Outcome.registered, "1", 1)
    assert kinds(settings) == ["triggered", "trained"]
    assert metric_values(settings, "RetrainsTriggered") == [1.0]
    tags = registry.client(settings).get_model_version(MODEL, "1").tags
    assert "no champion or challenger" in tags[continuous.TRIGGER_TAG]


def test_the_schedule_trigger_fires_when_the_champion_is_old_enough(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "7d"}})
    with_champion(settings)
    clock, trainer = Clock(), Trainer()

    quiet = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(days=7, minutes=1)
    due = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert quiet.started is None and quiet.summary.startswith("not due: champion version 1")
    assert due.started is not None and due.started.trigger == "schedule"


def test_drift_needs_m_of_the_last_n_windows_and_ignores_thin_or_unmeasured_ones(
    home: Path,
) -> None:
    settings = settings_with(home, **DRIFT)
    with_champion(settings)
    clock, trainer = Clock(), Trainer()
    # Flapping drift: high, low, high, low... never 3 of the last 4.
    for psi in (0.5, 0.05, 0.4, 0.1, 0.6, 0.02):
        window(settings, clock.advance(hours=1), psi=psi)
        assert run_if_due(settings, MODEL, trainer=trainer, clock=clock).started is None
    # A window with too few rows, or nothing measured (NaN), gives no verdict at all.
    window(settings, clock.advance(hours=1), psi=0.9, rows=20)
    window(settings, clock.advance(hours=1), psi=float("nan"))
    window(settings, clock.advance(hours=1), psi=None)
    quiet = assess(settings, settings.pipelines[0], now=clock())
    assert [v.fired for v in quiet.verdicts] == [False]
    assert (
        "in 2 of the last 4 window(s) with >= 100 rows (3 of 4 needed): 0.40, 0.10, 0.60, 0.02"
        in (quiet.verdicts[0].detail)
    )

    window(settings, clock.advance(hours=1), psi=0.3)
    assert run_if_due(settings, MODEL, trainer=trainer, clock=clock).started is None
    window(settings, clock.advance(hours=1), psi=0.45)
    check = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert check.started is not None and check.started.trigger == "drift"
    assert trainer.calls == 1
    assert "3 of the last 4" in check.started.reason


def test_drift_of_a_named_feature_and_evidence_from_before_the_last_retrain_does_not_count(
    home: Path,
) -> None:
    settings = settings_with(
        home,
        triggers={"drift": {"feature": "avg_amount_7d", "breaches": 2, "windows": 2}},
        minRows=100,
        cooldown="1h",
    )
    with_champion(settings)
    clock, trainer = Clock(), Trainer(gate_failure())
    for _ in range(2):
        window(settings, clock.advance(hours=1), psi=0.5)
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2)

    # The same drift continues, but only windows after the retrain are evidence for the next.
    after = assess(settings, settings.pipelines[0], now=clock())
    assert not after.fired
    window(settings, clock.advance(minutes=10), psi=0.5)
    window(settings, clock.advance(minutes=10), psi=0.5)
    assert [v.trigger for v in assess(settings, settings.pipelines[0], now=clock()).fired] == [
        "drift"
    ]


def test_decay_counts_windows_with_enough_labelled_rows(home: Path) -> None:
    settings = settings_with(
        home,
        triggers={"decay": {"breaches": 2, "windows": 3, "minLabelledRows": 100}},
        liveLabels="live/labels.parquet",
        minRows=100,
    )
    with_champion(settings)
    clock = Clock()
    window(settings, clock.advance(hours=1), psi=0.01, roc_auc=0.62)
    window(settings, clock.advance(hours=1), psi=0.01, rows=50, roc_auc=0.5)  # too few rows
    window(settings, clock.advance(hours=1), psi=0.01, roc_auc=0.81)
    assert not assess(settings, settings.pipelines[0], now=clock()).fired

    window(settings, clock.advance(hours=1), psi=0.01, roc_auc=0.66)
    fired = assess(settings, settings.pipelines[0], now=clock()).fired

    assert [v.trigger for v in fired] == ["decay"]
    assert "live roc_auc below 0.7 in 2 of the last 3" in fired[0].detail


def test_new_labelled_data_since_the_champion_was_trained(home: Path) -> None:
    settings = settings_with(home, triggers={"newData": {"minRows": 3}})
    with_champion(settings, **{registry.DATA_UNTIL_TAG: "2024-05-01T00:00:00+00:00"})
    labels = home / "offline" / "labels" / "fraud.parquet"
    labels.parent.mkdir(parents=True)
    stamps = pd.to_datetime(["2024-04-30", "2024-05-02", "2024-05-03"], utc=True)
    pd.DataFrame({"event_ts": stamps, "is_fraud": [0, 1, 0]}).to_parquet(labels)
    pipeline = settings.pipelines[0]

    two = assess(settings, pipeline).verdicts
    pd.DataFrame(
        {"event_ts": [*stamps, pd.Timestamp("2024-05-04", tz="UTC")], "is_fraud": [0, 1, 0, 1]}
    ).to_parquet(labels)
    three = assess(settings, pipeline).verdicts

    assert [(v.trigger, v.fired) for v in two] == [("newData", False)]
    assert "2 labelled row(s) newer than champion version 1's training data" in two[0].detail
    assert [(v.trigger, v.fired) for v in three] == [("newData", True)]


# --- guardrails ----------------------------------------------------------------------------------


def test_cooldown_after_each_retrain_and_one_skip_event_per_reason(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}}, cooldown="6h")
    with_champion(settings)
    clock, trainer = Clock(), Trainer(gate_failure())
    clock.advance(hours=2)
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    stopped = []
    for _ in range(3):
        clock.advance(hours=1, minutes=30)
        stopped.append(run_if_due(settings, MODEL, trainer=trainer, clock=clock))
    clock.advance(hours=2)
    again = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert [c.stopped_by.key for c in stopped if c.stopped_by] == ["cooldown"] * 3
    assert "cooling down until" in stopped[0].summary
    assert again.started is not None and trainer.calls == 2
    assert kinds(settings) == ["triggered", "gated-out", "skipped", "triggered", "trained"]
    assert metric_values(settings, "RetrainFailures") == [1.0]


def test_the_budget_caps_retrains_per_window(home: Path) -> None:
    settings = settings_with(
        home, triggers={"schedule": {"every": "1h"}}, cooldown="1h", budget={"runs": 2, "per": "1d"}
    )
    with_champion(settings)
    clock, trainer = Clock(), Trainer(gate_failure(), gate_failure(), gate_failure())
    started = []
    for _ in range(4):
        clock.advance(hours=2)
        try:
            check = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
        except GateFailure:
            started.append(True)
        else:
            started.append(False)
            assert check.stopped_by is not None and check.stopped_by.key == "budget"
            assert "budget used: 2 of 2 retrain(s) in the last 1d" in check.summary
    clock.advance(hours=19)  # the first retrain leaves the window, the second is still in it
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert started == [True, True, False, False]
    assert metric_values(settings, "RetrainBudgetRemaining") == [2.0, 1.0, 0.0, 0.0, 1.0]


def test_a_pending_canary_waits(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}}, cooldown="1h")
    with_champion(settings)
    clock, trainer = Clock(), Trainer()
    clock.advance(hours=2)
    run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2)

    waiting = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    # The canary failed: the monitor points `challenger` back at the champion.
    client = registry.client(settings)
    client.set_model_version_tag(MODEL, "2", registry.CANARY_ROLLED_BACK_TAG, "now")
    client.set_registered_model_alias(MODEL, registry.CHALLENGER, "1")
    freed = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert waiting.stopped_by is not None and waiting.stopped_by.key == "canary"
    assert "version 2 (challenger) is on its canary" in waiting.summary
    assert freed.started is not None and freed.version == "3"
    assert [r.outcome for r in freed.assessment.state.retrains] == [Outcome.canary_failed]


def test_hold_stops_retraining_until_released(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}})
    with_champion(settings)
    clock, trainer = Clock(), Trainer()
    clock.advance(hours=2)
    continuous.hold(settings, MODEL, "incident 42: labels are late", by="ana", now=clock())
    clock.advance(hours=1)

    held = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    continuous.release(settings, MODEL, by="ana", now=clock())
    resumed = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert held.stopped_by is not None and held.stopped_by.key == "hold"
    assert "held by ana" in held.summary and "incident 42" in held.summary
    assert metric_values(settings, "ModelHeldSeconds") == [pytest.approx(3600, abs=1), 0.0]
    assert resumed.started is not None and trainer.calls == 1
    assert kinds(settings) == ["held", "skipped", "released", "triggered", "trained"]


def test_repeated_failures_quarantine_the_model_and_release_forgives_them(home: Path) -> None:
    settings = settings_with(
        home, triggers={"schedule": {"every": "1h"}}, cooldown="1h", quarantineAfter=2
    )
    with_champion(settings)
    clock = Clock()
    trainer = Trainer(gate_failure(), RuntimeUserError("feature store unreachable"), gate_failure())
    clock.advance(hours=2)
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2)
    with pytest.raises(RuntimeUserError):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2)

    quarantined = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    state = continuous.read_state(registry.client(settings), MODEL)
    continuous.release(settings, MODEL, by="ana", now=clock())
    clock.advance(hours=2)
    with pytest.raises(GateFailure):  # one failure after the release: not yet a quarantine
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2)
    after = assess(settings, settings.pipelines[0], now=clock())

    assert quarantined.stopped_by is not None and quarantined.stopped_by.key == "quarantine"
    assert state.hold is not None and state.hold.quarantine
    assert "2 retrain(s) in a row gave no healthy model" in state.hold.reason
    assert trainer.calls == 3
    assert (after.failures_in_a_row, after.state.hold, after.due) == (1, None, True)
    assert "held" in kinds(settings) and "failed" in kinds(settings)


# --- the lease -----------------------------------------------------------------------------------


def test_a_lease_is_taken_once_and_a_crashed_holder_loses_it_at_expiry(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}}, lease="3h")
    with_champion(settings)
    client = registry.client(settings)
    clock, trainer = Clock(), Trainer()
    clock.advance(hours=2)
    # A job took the lease, wrote its retrain, and died before releasing anything.
    lease = acquire_lease(
        settings, client, MODEL, holder="train-abc", duration=timedelta(hours=3), now=clock()
    )
    assert lease is not None and lease.generation == 1
    assert (
        acquire_lease(
            settings, client, MODEL, holder="other", duration=timedelta(hours=3), now=clock()
        )
        is None
    )
    continuous._write_retrains(
        client, MODEL, [continuous.Retrain(1, clock(), "schedule", "champion is old")]
    )

    clock.advance(hours=1)
    blocked = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    clock.advance(hours=2, minutes=1)
    taken_over = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert blocked.stopped_by is not None and blocked.stopped_by.key == "lease"
    assert "train-abc" in blocked.summary
    assert taken_over.started is not None and taken_over.started.generation == 2
    outcomes = [r.outcome for r in continuous.read_state(client, MODEL).retrains]
    assert outcomes == [Outcome.crashed, Outcome.registered]
    assert "crashed" in kinds(settings)
    assert metric_values(settings, "RetrainFailures") == [1.0]
    # Leases are deleted experiments: nothing for a person browsing the UI.
    assert not [e for e in client.search_experiments() if e.name.startswith("mlops-ct-lease")]


def test_a_stale_lease_hint_is_not_trusted(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}})
    client = registry.client(settings)
    now = datetime.now(UTC)
    first = acquire_lease(settings, client, MODEL, holder="a", duration=timedelta(hours=1), now=now)
    assert first is not None
    # A holder that died between taking generation 2 and writing the hint.
    client.create_experiment(
        continuous._lease_name(MODEL, 2),
        tags={
            "holder": "b",
            "acquired": now.isoformat(),
            "expires": (now + timedelta(hours=1)).isoformat(),
        },
    )
    continuous.release_lease(client, MODEL, first, now)

    later = now + timedelta(minutes=5)
    assert (
        acquire_lease(settings, client, MODEL, holder="c", duration=timedelta(hours=1), now=later)
        is None
    )
    lease = acquire_lease(
        settings,
        client,
        MODEL,
        holder="c",
        duration=timedelta(hours=1),
        now=later + timedelta(hours=1),
    )
    assert lease is not None and lease.generation == 3


def concurrent_checks(settings: Settings, jobs: int) -> tuple[list[Any], Trainer]:
    """``jobs`` checks at once, each in its own thread, training slowly (a race for the lease)."""
    barrier = threading.Barrier(jobs)
    trainer = Trainer()
    slow = lambda s, p: (time.sleep(1.0), trainer(s, p))[1]  # noqa: E731
    results: list[Any] = []

    def job(index: int) -> None:
        barrier.wait()
        try:
            results.append(run_if_due(settings, MODEL, trainer=slow, holder=f"job-{index}"))
        except Exception as error:  # pragma: no cover - shown by the assertion below
            results.append(error)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, trainer


def test_concurrent_checks_start_one_retrain(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "7d"}})

    results, trainer = concurrent_checks(settings, 4)

    assert not [r for r in results if isinstance(r, Exception)]
    assert trainer.calls == 1
    assert sum(r.started is not None for r in results) == 1
    assert {r.stopped_by.key for r in results if r.started is None} <= {"lease", "canary"}


# --- a person's commands -------------------------------------------------------------------------


@pytest.fixture
def cli_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = settings_with(home, triggers={"schedule": {"every": "1h"}}, cooldown="1h")
    use_env(monkeypatch, settings)
    yield settings


def test_hold_release_status_history_commands(cli_env: Settings) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["train", "--pipeline", MODEL, "--if-due"])
    # The stand-in trainer is not used here: no feature store, so the real one fails cleanly.
    held = runner.invoke(app, ["hold", MODEL, "--reason", "investigating", "--by", "ana"])
    status = runner.invoke(app, ["status", MODEL])
    again = runner.invoke(app, ["hold", MODEL, "--reason", "twice", "--by", "bo"])
    released = runner.invoke(app, ["release", MODEL, "--by", "ana"])
    released_twice = runner.invoke(app, ["release", MODEL])
    history = runner.invoke(app, ["history", MODEL])
    as_json = runner.invoke(app, ["history", MODEL, "--json", "--since", "1d"])

    assert first.exit_code == 1 and "first-model: fired" in first.stderr
    assert "retraining (first-model), lease 1" in first.stderr
    assert held.exit_code == 0 and f"{MODEL}: held by ana" in held.stdout
    assert "guardrails:\n  hold: held by ana" in status.stdout
    assert "triggers:\n  first-model: fired" in status.stdout
    assert "held by ana" in again.stdout  # an existing hold stands
    assert (
        released.exit_code == 0 and "released (was held by ana: investigating)" in released.stdout
    )
    assert "not held; nothing to release" in released_twice.stdout
    lines = history.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["triggered", "failed", "held", "released"]
    assert "[ana]" in lines[2]
    assert [json.loads(line)["kind"] for line in as_json.stdout.splitlines()] == [
        "triggered",
        "failed",
        "held",
        "released",
    ]


def test_if_due_on_a_pipeline_without_continuous_training_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = PipelineSpec.model_validate(PIPELINE)
    use_env(monkeypatch, Settings(home=home, pipelines=[pipeline]))

    result = CliRunner().invoke(app, ["train", "--pipeline", MODEL, "--if-due"])

    assert result.exit_code == 1
    assert "pipeline 'fraud-model' has no continuousTraining" in result.stderr


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def postgres_settings(tmp_path: Path, postgres_database: str) -> Settings:
    pipeline = PipelineSpec.model_validate(
        {
            **PIPELINE,
            # One registry for the session: each test its own model.
            "model": f"fraud-{uuid.uuid4().hex[:8]}",
            "continuousTraining": {"triggers": {"schedule": {"every": "7d"}}},
        }
    )
    return Settings(
        home=tmp_path / "home", team="fraud", tracking_uri=postgres_database, pipelines=[pipeline]
    )


@pytest.fixture
def production_settings(postgres_settings: Settings, moto_endpoint: str) -> Settings:
    """As in the cluster: PostgreSQL registry, the event log in S3 (moto)."""
    import boto3

    bucket = f"ct-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(Bucket=bucket)
    return postgres_settings.model_copy(
        update={
            "aws_endpoint_url": moto_endpoint,
            "aws_region": REGION,
            "events_uri": f"s3://{bucket}/ct-events/",
        }
    )


@pytest.mark.postgres
def test_concurrent_checks_start_one_retrain_on_postgresql(postgres_settings: Settings) -> None:
    results, trainer = concurrent_checks(postgres_settings, 4)

    assert not [r for r in results if isinstance(r, Exception)]
    assert trainer.calls == 1
    assert sum(r.started is not None for r in results) == 1


@pytest.mark.postgres
@pytest.mark.moto
def test_guardrails_on_postgresql_and_s3(production_settings: Settings) -> None:
    settings = production_settings
    clock, trainer = Clock(), Trainer(gate_failure())
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    model = model_of(settings)
    cooling = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    continuous.hold(settings, model, "checking", by="ana", now=clock())
    clock.advance(days=2)
    held = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    continuous.release(settings, model, by="ana", now=clock())
    resumed = run_if_due(settings, MODEL, trainer=trainer, clock=clock)

    assert cooling.stopped_by is not None and cooling.stopped_by.key == "cooldown"
    assert held.stopped_by is not None and held.stopped_by.key == "hold"
    assert resumed.started is not None and resumed.version is not None
    assert kinds(settings) == [
        "triggered",
        "gated-out",
        "skipped",
        "held",
        "skipped",
        "released",
        "triggered",
        "trained",
    ]


# --- audit: every decision on every channel ---------------------------------------------------

DECISIONS = [
    "triggered",
    "gated-out",
    "skipped",
    "triggered",
    "trained",
    "canary-started",
    "promoted",
    "rolled-back",
    "quarantined",
]


def play_every_decision(settings: Settings) -> dict[str, str]:
    """A retrain gated out, a skip, a retrain whose canary starts and is promoted, then a
    challenger rolled back and quarantined: the decisions the issue lists, in that order."""
    from runtime import monitor
    from runtime.monitor_result import CanaryVerdict, ServedVersion, VariantHealth
    from runtime.spec import EndpointSpec

    model = model_of(settings)
    client = registry.client(settings)
    clock, trainer = Clock(), Trainer(gate_failure())
    first = register(settings)
    client.set_registered_model_alias(model, registry.CHAMPION, first)
    clock.advance(days=2)
    with pytest.raises(GateFailure):
        run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    skipped = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    assert skipped.stopped_by is not None and skipped.stopped_by.key == "cooldown"
    skip_tag = client.get_registered_model(model).tags[continuous.SKIPPED_TAG]
    clock.advance(hours=7)
    retrained = run_if_due(settings, MODEL, trainer=trainer, clock=clock)
    assert retrained.version is not None
    second = retrained.version
    endpoint = EndpointSpec(name=ENDPOINT, model=model, canary={"weight": 20})
    seen = MonitorResult(
        endpoint=ENDPOINT, model=model, champion_version=first, start=clock.now,
        end=clock.now, rows=200, psi_threshold=0.2,
        served=[ServedVersion("champion", first, 160, None),
                ServedVersion("challenger", second, 40, None)],
    )  # fmt: skip
    monitor._note_canary_started(settings, client, model, first, seen)
    monitor._note_canary_started(settings, client, model, first, seen)  # once per version
    challenger = client.get_model_version(model, second)
    decision = monitor.PromotionDecision(promote=True, evidence="40 requests")
    assert monitor._promote(settings, endpoint, challenger, decision)
    third = register(settings)
    client.set_registered_model_alias(model, registry.CHALLENGER, third)
    assert monitor._roll_back_canary(settings, model, third, ["p99 latency above the SLO"])
    monitor._notify(
        settings,
        endpoint,
        CanaryVerdict(
            champion=VariantHealth("champion", second, 100, 0, 12.0),
            challenger=VariantHealth("challenger", third, 30, 0, 480.0),
            breaches=["p99 latency above the SLO"],
            judged=True,
        ),
    )
    return {"first": first, "second": second, "third": third, "skip": skip_tag}


def assert_recorded_in_mlflow_and_metrics(settings: Settings, played: dict[str, str]) -> None:
    model = model_of(settings)
    client = registry.client(settings)
    # MLflow: the registered model's retrains (gated out, trained) and last skip; version tags.
    state = continuous.read_state(client, model)
    assert [r.outcome for r in state.retrains] == [Outcome.gated_out, Outcome.promoted]
    assert json.loads(played["skip"])["guardrail"] == "cooldown"
    second = client.get_model_version(model, played["second"]).tags
    assert {continuous.TRIGGER_TAG, "mlops.ct.canary_started", "mlops.ct.promoted_by"} <= set(
        second
    )
    third = client.get_model_version(model, played["third"]).tags
    assert {continuous.QUARANTINED_TAG, registry.CANARY_ROLLED_BACK_TAG} <= set(third)
    # Catalogue metrics: one ContinuousTrainingDecisions count per decision, by kind.
    path = settings.home / "metrics" / "metrics.jsonl"
    counted = [
        item["dimensions"]["Decision"]
        for item in map(json.loads, path.read_text().splitlines())
        if item["metric"] == "ContinuousTrainingDecisions"
    ]
    assert counted == DECISIONS


def test_every_decision_is_an_event_a_metric_and_an_mlflow_record(home: Path) -> None:
    settings = settings_with(home, triggers={"schedule": {"every": "1d"}})
    played = play_every_decision(settings)

    # The log sorts by time: the checks ran on a clock moved days ahead, the monitor's on today's.
    assert sorted(kinds(settings)) == sorted(DECISIONS)
    assert_recorded_in_mlflow_and_metrics(settings, played)


@pytest.mark.postgres
@pytest.mark.moto
def test_every_decision_is_also_a_notice_on_the_topic_on_postgresql_and_moto(
    production_settings: Settings, moto_endpoint: str
) -> None:
    import boto3

    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    settings = production_settings.model_copy(update={"alert_topic_arn": topic})
    settings = settings.model_copy(
        update={
            "pipelines": [
                settings.pipelines[0].model_copy(
                    update={
                        "continuous_training": PipelineSpec.model_validate(
                            {
                                **PIPELINE,
                                "continuousTraining": {"triggers": {"schedule": {"every": "1d"}}},
                            }
                        ).continuous_training
                    }
                )
            ]
        }
    )
    played = play_every_decision(settings)

    # The log sorts by time: the checks ran on a clock moved days ahead, the monitor's on today's.
    assert sorted(kinds(settings)) == sorted(DECISIONS)
    assert_recorded_in_mlflow_and_metrics(settings, played)
    notices = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        notices += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    told = sorted(n["kind"] for n in notices if "kind" in n)
    # Every decision a notice; the rollback and its quarantine share the monitor's notice.
    assert told == sorted(k for k in DECISIONS if k not in ("rolled-back", "quarantined"))
    (rollback,) = [n for n in notices if n["event"] == "canary-rollback"]
    assert rollback["decisions"] == ["rolled-back", "quarantined"]
    assert rollback["challenger_version"] == played["third"]
