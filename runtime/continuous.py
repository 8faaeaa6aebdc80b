"""Continuous training: is a retrain due, may it start, and the record of what happened.

The pull model: a pipeline with ``continuousTraining`` keeps its training CronJob, which runs
``mlops-runtime train --pipeline P --if-due`` on the pipeline's schedule (every 15 minutes, say).
Each run reads the triggers (age, drift and live quality of the monitor windows, new labels) and
the guardrails (hold, lease, pending canary, cooldown, budget, quarantine) from the registry,
and trains only when a trigger fired and no guardrail objects. No scheduler of our own, no
Kubernetes API call, no new permission: Kubernetes runs the job, MLflow keeps the state.

The state is registered-model tags, one per writer, so that no writer overwrites another's news:

- ``mlops.ct.state``: the retrains (start, end, trigger, outcome, version), written only by the
  holder of the lease;
- ``mlops.ct.lease``: the current lease (a hint, see below);
- ``mlops.ct.hold`` / ``mlops.ct.released``: a hold (a person's, or a quarantine after failed
  retrains) and when the last one was released;
- ``mlops.ct.windows.<endpoint>``: the endpoint's last monitor windows, written by its monitor;
- ``mlops.ct.skipped``: the last guardrail that stopped a fired trigger (one event per change);

and model-version tags: ``mlops.ct.trigger`` (why it was trained), ``mlops.ct.quarantined``.

The lease: MLflow has no compare-and-swap on tags, but creating an experiment whose name is taken
fails atomically in every store (SQLite, PostgreSQL, behind the tracking server). Lease
generation N is taken by creating the experiment ``mlops-ct-lease/<model>/<N>``, its holder and
expiry as tags: of two jobs racing for N exactly one succeeds. The experiment is deleted at once
(out of the UI's way; the name stays taken), and ``mlops.ct.lease`` records the holder and the
release. A job that dies keeps its lease until it expires (the pipeline's deadline, after which
Kubernetes would have stopped it anyway); the next check then counts that retrain as crashed.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from runtime import events, registry
from runtime.errors import ConfigurationError, GateFailure, RuntimeUserError
from runtime.events import Kind
from runtime.metrics import (
    MODEL_HELD_SECONDS,
    RETRAIN_BUDGET_REMAINING,
    RETRAIN_FAILURES,
    RETRAINS_TRIGGERED,
    Dimension,
)
from runtime.monitor_result import MonitorResult
from runtime.publish import publisher
from runtime.settings import Settings
from runtime.spec import (
    DEFAULT_GATE_METRIC,
    ContinuousTraining,
    PipelineSpec,
    format_duration,
)

STATE_TAG = "mlops.ct.state"
LEASE_TAG = "mlops.ct.lease"
HOLD_TAG = "mlops.ct.hold"
RELEASED_TAG = "mlops.ct.released"
SKIPPED_TAG = "mlops.ct.skipped"
WINDOWS_TAG = "mlops.ct.windows."
"""Prefix: `mlops.ct.windows.<endpoint>`."""
TRIGGER_TAG = "mlops.ct.trigger"
"""Model-version tag: why continuous training trained this version."""
QUARANTINED_TAG = "mlops.ct.quarantined"
"""Model-version tag: this version's canary failed; it is never promoted automatically."""
LEASE_EXPERIMENT = "mlops-ct-lease/{model}/{generation}"
DEFAULT_LEASE = timedelta(hours=6)
WINDOW_HISTORY = 48
"""Monitor windows kept per endpoint (the largest `windows` a trigger may ask for)."""
RETRAIN_HISTORY = 100
"""Retrains kept in the state (the events log keeps everything)."""
SETTLED_RETRAINS = 12
"""Retrains whose canary outcome is read back at each check (more than quarantineAfter's 10)."""
NEVER_SEEN_PROBES = 1000
"""Most lease generations probed past a stale hint (a guard against a broken store)."""


class Outcome(StrEnum):
    running = "running"
    registered = "registered"
    """A version was registered as challenger (its canary decides the rest)."""
    promoted = "promoted"
    canary_failed = "canary-failed"
    gated_out = "gated-out"
    failed = "failed"
    crashed = "crashed"


FAILED = {Outcome.gated_out, Outcome.failed, Outcome.crashed, Outcome.canary_failed}
"""Outcomes that count towards a quarantine: the retrain gave no healthy model."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    return format_duration(timedelta(seconds=seconds)) if seconds else "0s"


# --- what the registry holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """What one monitor run measured for an endpoint (the triggers' evidence)."""

    endpoint: str
    end: datetime
    champion: str
    """The champion version whose traffic was measured."""
    rows: int
    max_psi: float | None = None
    psi: dict[str, float] = field(default_factory=dict)
    """PSI of the features a drift trigger names."""
    quality: dict[str, float] = field(default_factory=dict)
    labelled: int = 0
    """Rows whose labels had arrived (live quality is measured on these)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "end": _iso(self.end),
            "champion": self.champion,
            "rows": self.rows,
            "maxPsi": self.max_psi,
            "psi": self.psi,
            "quality": self.quality,
            "labelled": self.labelled,
        }

    @classmethod
    def from_json(cls, endpoint: str, data: dict[str, Any]) -> Window:
        return cls(
            endpoint=endpoint,
            end=_time(data["end"]) or datetime.min.replace(tzinfo=UTC),
            champion=str(data.get("champion", "")),
            rows=int(data.get("rows", 0)),
            max_psi=data.get("maxPsi"),
            psi=dict(data.get("psi") or {}),
            quality=dict(data.get("quality") or {}),
            labelled=int(data.get("labelled", 0)),
        )


@dataclass(frozen=True)
class Hold:
    by: str
    reason: str
    since: datetime
    quarantine: bool = False
    """Set by continuous training itself after failed retrains (not by a person)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "reason": self.reason,
            "since": _iso(self.since),
            "quarantine": self.quarantine,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        return cls(
            by=str(data.get("by", "?")),
            reason=str(data.get("reason", "")),
            since=_time(data.get("since")) or datetime.now(UTC),
            quarantine=bool(data.get("quarantine", False)),
        )


@dataclass(frozen=True)
class Lease:
    generation: int
    holder: str
    acquired: datetime
    expires: datetime
    released: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.released is None and now < self.expires

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "holder": self.holder,
            "acquired": _iso(self.acquired),
            "expires": _iso(self.expires),
            "released": _iso(self.released),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        return cls(
            generation=int(data["generation"]),
            holder=str(data.get("holder", "?")),
            acquired=_time(data.get("acquired")) or datetime.min.replace(tzinfo=UTC),
            expires=_time(data.get("expires")) or datetime.min.replace(tzinfo=UTC),
            released=_time(data.get("released")),
        )


@dataclass(frozen=True)
class Retrain:
    generation: int
    started: datetime
    trigger: str
    reason: str
    finished: datetime | None = None
    outcome: Outcome = Outcome.running
    version: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "started": _iso(self.started),
            "trigger": self.trigger,
            "reason": self.reason,
            "finished": _iso(self.finished),
            "outcome": str(self.outcome),
            "version": self.version,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retrain:
        return cls(
            generation=int(data.get("generation", 0)),
            started=_time(data.get("started")) or datetime.min.replace(tzinfo=UTC),
            trigger=str(data.get("trigger", "")),
            reason=str(data.get("reason", "")),
            finished=_time(data.get("finished")),
            outcome=Outcome(data.get("outcome", Outcome.running)),
            version=data.get("version"),
            detail=str(data.get("detail", "")),
        )

    @property
    def ended(self) -> datetime:
        return self.finished or self.started


@dataclass
class ModelState:
    """Everything the registry says about a model's continuous training, read at once."""

    model: str
    registered: bool = False
    hold: Hold | None = None
    released: datetime | None = None
    lease: Lease | None = None
    retrains: list[Retrain] = field(default_factory=list)
    windows: dict[str, list[Window]] = field(default_factory=dict)
    last_skip: str | None = None
    champion: ModelVersion | None = None
    challenger: ModelVersion | None = None

    @property
    def last_retrain(self) -> Retrain | None:
        return self.retrains[-1] if self.retrains else None


def read_state(mlflow_client: MlflowClient, model: str) -> ModelState:
    """The model's continuous-training state (empty for a model not registered yet)."""
    state = ModelState(model)
    try:
        tags = dict(mlflow_client.get_registered_model(model).tags or {})
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        state.lease = current_lease(mlflow_client, model, None)
        return state
    state.registered = True
    state.hold = Hold.from_json(json.loads(tags[HOLD_TAG])) if HOLD_TAG in tags else None
    if RELEASED_TAG in tags:
        state.released = _time(json.loads(tags[RELEASED_TAG]).get("at"))
    hint = Lease.from_json(json.loads(tags[LEASE_TAG])) if LEASE_TAG in tags else None
    state.lease = current_lease(mlflow_client, model, hint)
    if STATE_TAG in tags:
        state.retrains = [Retrain.from_json(r) for r in json.loads(tags[STATE_TAG])["retrains"]]
    for key, value in tags.items():
        if key.startswith(WINDOWS_TAG):
            endpoint = key.removeprefix(WINDOWS_TAG)
            state.windows[endpoint] = [Window.from_json(endpoint, w) for w in json.loads(value)]
    if SKIPPED_TAG in tags:
        state.last_skip = json.loads(tags[SKIPPED_TAG]).get("guardrail")
    state.champion = registry.alias_version(mlflow_client, model, registry.CHAMPION)
    state.challenger = registry.alias_version(mlflow_client, model, registry.CHALLENGER)
    state.retrains = _settled_outcomes(mlflow_client, model, state.retrains)
    return state


def _settled_outcomes(
    mlflow_client: MlflowClient, model: str, retrains: list[Retrain]
) -> list[Retrain]:
    """A registered version's fate is decided later, by its canary: read it from the version
    (for the last few retrains: enough to count failures in a row up to any quarantineAfter)."""
    settled = []
    recent = len(retrains) - SETTLED_RETRAINS
    for index, retrain in enumerate(retrains):
        if index >= recent and retrain.outcome == Outcome.registered and retrain.version:
            tags = _version_tags(mlflow_client, model, retrain.version)
            if QUARANTINED_TAG in tags or registry.CANARY_ROLLED_BACK_TAG in tags:
                retrain = replace(retrain, outcome=Outcome.canary_failed)
            elif registry.PROMOTED_AT_TAG in tags:
                retrain = replace(retrain, outcome=Outcome.promoted)
        settled.append(retrain)
    return settled


def _version_tags(mlflow_client: MlflowClient, model: str, version: str) -> dict[str, str]:
    try:
        return dict(mlflow_client.get_model_version(model, version).tags or {})
    except MlflowException:
        return {}


def _ensure_registered(mlflow_client: MlflowClient, model: str) -> None:
    try:
        mlflow_client.create_registered_model(model)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _set_tag(mlflow_client: MlflowClient, model: str, key: str, value: Any) -> None:
    mlflow_client.set_registered_model_tag(model, key, json.dumps(value, separators=(",", ":")))


def _write_retrains(mlflow_client: MlflowClient, model: str, retrains: list[Retrain]) -> None:
    kept = retrains[-RETRAIN_HISTORY:]
    _set_tag(mlflow_client, model, STATE_TAG, {"retrains": [r.to_json() for r in kept]})


# --- the lease -----------------------------------------------------------------------------------


def _lease_name(model: str, generation: int) -> str:
    return LEASE_EXPERIMENT.format(model=model, generation=generation)


def current_lease(mlflow_client: MlflowClient, model: str, hint: Lease | None) -> Lease | None:
    """The newest lease of ``model``: the hint, unless a newer lease experiment exists."""
    newest = hint
    generation = hint.generation if hint else 0
    for _ in range(NEVER_SEEN_PROBES):
        found = mlflow_client.get_experiment_by_name(_lease_name(model, generation + 1))
        if found is None:
            break
        generation += 1
        tags = dict(found.tags or {})
        newest = Lease(
            generation=generation,
            holder=tags.get("holder", "?"),
            acquired=_time(tags.get("acquired")) or datetime.min.replace(tzinfo=UTC),
            expires=_time(tags.get("expires")) or datetime.min.replace(tzinfo=UTC),
        )
    return newest


def acquire_lease(
    settings: Settings,
    mlflow_client: MlflowClient,
    model: str,
    *,
    holder: str,
    duration: timedelta,
    now: datetime,
) -> Lease | None:
    """Take the next lease of ``model``; None when one is active or another job took it first."""
    _ensure_registered(mlflow_client, model)
    tags = dict(mlflow_client.get_registered_model(model).tags or {})
    hint = Lease.from_json(json.loads(tags[LEASE_TAG])) if LEASE_TAG in tags else None
    current = current_lease(mlflow_client, model, hint)
    if current is not None and current.active(now):
        return None
    lease = Lease(
        generation=(current.generation if current else 0) + 1,
        holder=holder,
        acquired=now,
        expires=now + duration,
    )
    try:
        experiment = mlflow_client.create_experiment(
            _lease_name(model, lease.generation),
            artifact_location=f"{registry.artifact_location(settings)}/ct-leases",
            tags={
                "holder": holder,
                "acquired": _iso(now) or "",
                "expires": _iso(lease.expires) or "",
            },
        )
    except MlflowException as error:
        if error.error_code == "RESOURCE_ALREADY_EXISTS":
            return None  # another job took this generation first
        raise
    # Out of the UI's way; a deleted experiment's name stays taken, which is all a lease needs.
    with contextlib.suppress(MlflowException):
        mlflow_client.delete_experiment(experiment)
    _set_tag(mlflow_client, model, LEASE_TAG, lease.to_json())
    return lease


def release_lease(mlflow_client: MlflowClient, model: str, lease: Lease, now: datetime) -> None:
    """Mark ``lease`` released, unless a newer lease replaced it (ours had expired)."""
    tags = dict(mlflow_client.get_registered_model(model).tags or {})
    hint = Lease.from_json(json.loads(tags[LEASE_TAG])) if LEASE_TAG in tags else None
    if hint is not None and hint.generation > lease.generation:
        return
    _set_tag(mlflow_client, model, LEASE_TAG, replace(lease, released=now).to_json())


def holder_id() -> str:
    """Who holds a lease: the pod (host) name and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- monitor windows -----------------------------------------------------------------------------


def record_window(
    mlflow_client: MlflowClient, pipeline: PipelineSpec, result: MonitorResult
) -> Window | None:
    """Keep what a monitor run measured, as evidence for the pipeline's triggers."""
    ct = pipeline.continuous_training
    if ct is None:
        return None
    drift = ct.triggers.drift
    named = {drift.feature} if drift and drift.feature else set()
    window = Window(
        endpoint=result.endpoint,
        end=result.end,
        champion=result.champion_version,
        rows=result.rows,
        max_psi=_finite(result.max_feature_psi),
        psi={
            c.column: v
            for c in result.features
            if c.column in named and (v := _finite(c.psi)) is not None
        },
        quality={k: v for k, q in result.quality.items() if (v := _finite(q)) is not None},
        labelled=result.labelled_rows,
    )
    key = WINDOWS_TAG + result.endpoint
    tags = dict(mlflow_client.get_registered_model(pipeline.model_name).tags or {})
    kept = json.loads(tags[key]) if key in tags else []
    kept = [*kept, window.to_json()][-WINDOW_HISTORY:]
    _set_tag(mlflow_client, pipeline.model_name, key, kept)
    return window


def _finite(value: float | None) -> float | None:
    import math

    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


# --- triggers and guardrails ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    trigger: str
    fired: bool
    detail: str


@dataclass(frozen=True)
class Guardrail:
    key: str
    """hold, quarantine, lease, canary, cooldown, budget."""
    message: str


@dataclass
class Assessment:
    """Whether a retrain of the pipeline's model is due now, and what stops it if so."""

    pipeline: PipelineSpec
    now: datetime
    state: ModelState
    verdicts: list[Verdict]
    guardrails: list[Guardrail]
    budget_remaining: int
    failures_in_a_row: int

    @property
    def model(self) -> str:
        return self.pipeline.model_name

    @property
    def fired(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.fired]

    @property
    def due(self) -> bool:
        return bool(self.fired) and not self.guardrails

    @property
    def held_seconds(self) -> float:
        hold = self.state.hold
        return max(0.0, (self.now - hold.since).total_seconds()) if hold else 0.0

    @property
    def should_quarantine(self) -> bool:
        ct = _ct(self.pipeline)
        return self.state.hold is None and self.failures_in_a_row >= ct.quarantine_after


def _ct(pipeline: PipelineSpec) -> ContinuousTraining:
    if pipeline.continuous_training is None:
        raise ConfigurationError(
            f"pipeline {pipeline.name!r} has no continuousTraining: `train --if-due` decides "
            "from its triggers (configure them, or run `train` without --if-due)"
        )
    return pipeline.continuous_training


def assess(
    settings: Settings,
    pipeline: PipelineSpec,
    *,
    now: datetime | None = None,
    mlflow_client: MlflowClient | None = None,
) -> Assessment:
    """Every trigger's verdict and every guardrail in the way, read from the registry."""
    ct = _ct(pipeline)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    mlflow_client = mlflow_client or registry.client(settings)
    state = read_state(mlflow_client, pipeline.model_name)
    since_release = [
        r for r in state.retrains if state.released is None or r.started >= state.released
    ]
    failures = 0
    for retrain in reversed(since_release):
        if retrain.outcome not in FAILED:
            break
        failures += 1
    window_start = now - ct.budget.per
    used = [r for r in state.retrains if r.started > window_start]
    assessment = Assessment(
        pipeline=pipeline,
        now=now,
        state=state,
        verdicts=_verdicts(settings, pipeline, ct, state, now),
        guardrails=[],
        budget_remaining=max(0, ct.budget.runs - len(used)),
        failures_in_a_row=failures,
    )
    assessment.guardrails = _guardrails(ct, assessment, used)
    return assessment


def _guardrails(ct: ContinuousTraining, a: Assessment, used: list[Retrain]) -> list[Guardrail]:
    state, now, model = a.state, a.now, a.model
    found = []
    if state.hold is not None:
        kind = "quarantine" if state.hold.quarantine else "hold"
        found.append(
            Guardrail(
                kind,
                f"held by {state.hold.by} since {_iso(state.hold.since)}: {state.hold.reason} "
                f"(`mlops-runtime release {model}` resumes)",
            )
        )
    elif a.should_quarantine:
        found.append(
            Guardrail(
                "quarantine",
                f"{a.failures_in_a_row} retrain(s) in a row gave no healthy model "
                f"(quarantineAfter: {ct.quarantine_after})",
            )
        )
    if state.lease is not None and state.lease.active(now):
        found.append(
            Guardrail(
                "lease",
                f"a retrain is in flight ({state.lease.holder}, lease {state.lease.generation} "
                f"until {_iso(state.lease.expires)})",
            )
        )
    champion, challenger = state.champion, state.challenger
    if challenger is not None and (champion is None or challenger.version != champion.version):
        rolled_back = registry.CANARY_ROLLED_BACK_TAG in (challenger.tags or {})
        if not rolled_back:
            where = "waits for promotion" if champion is None else "is on its canary"
            found.append(
                Guardrail(
                    "canary",
                    f"version {challenger.version} (challenger) {where}: the next retrain waits "
                    "until it is promoted or rolled back",
                )
            )
    last = state.last_retrain
    if last is not None and last.outcome != Outcome.running and now < last.ended + ct.cooldown:
        found.append(
            Guardrail(
                "cooldown",
                f"cooling down until {_iso(last.ended + ct.cooldown)} (the last retrain ended "
                f"{_ago(now, last.ended)} ago; cooldown {format_duration(ct.cooldown)})",
            )
        )
    if len(used) >= ct.budget.runs:
        frees = min(r.started for r in used) + ct.budget.per
        found.append(
            Guardrail(
                "budget",
                f"budget used: {len(used)} of {ct.budget.runs} retrain(s) in the last "
                f"{format_duration(ct.budget.per)}; the next one frees at {_iso(frees)}",
            )
        )
    return found


def _verdicts(
    settings: Settings,
    pipeline: PipelineSpec,
    ct: ContinuousTraining,
    state: ModelState,
    now: datetime,
) -> list[Verdict]:
    verdicts = []
    if state.champion is None and state.challenger is None:
        verdicts.append(
            Verdict("first-model", True, f"{pipeline.model_name} has no champion or challenger yet")
        )
    last = state.last_retrain
    # Evidence counts only when gathered after the last retrain started, on today's champion.
    since = last.started if last else None
    champion = str(state.champion.version) if state.champion is not None else None
    triggers = ct.triggers
    if triggers.schedule is not None:
        verdicts.append(_schedule(triggers.schedule.every, state, now))
    if triggers.drift is not None:
        verdicts.extend(_drift(ct, state, champion, since))
    if triggers.decay is not None:
        verdicts.extend(_decay(pipeline, ct, state, champion, since))
    if triggers.new_data is not None:
        verdicts.append(_new_data(settings, pipeline, triggers.new_data.min_rows, state))
    return verdicts


def _schedule(every: timedelta, state: ModelState, now: datetime) -> Verdict:
    """The champion's age: a retrain that failed leaves it as old as it was (cooldown, budget
    and quarantine pace the next attempts)."""
    if state.champion is None:
        return Verdict("schedule", False, "no champion yet")
    base = datetime.fromtimestamp(int(state.champion.creation_timestamp) / 1000, UTC)
    return Verdict(
        "schedule",
        now - base >= every,
        f"champion version {state.champion.version} was registered {_ago(now, base)} ago "
        f"(every {format_duration(every)})",
    )


def _evidence(
    state: ModelState,
    champion: str | None,
    since: datetime | None,
    usable: Callable[[Window], bool],
) -> dict[str, list[Window]]:
    return {
        endpoint: [
            w
            for w in windows
            if w.champion == champion and (since is None or w.end > since) and usable(w)
        ]
        for endpoint, windows in sorted(state.windows.items())
    }


def _no_evidence(
    endpoint: str, ct: ContinuousTraining, champion: str | None, since: datetime | None
) -> str:
    after = f" since the last retrain ({_iso(since)})" if since else ""
    return (
        f"{endpoint}: no window with >= {ct.min_rows} rows on champion version {champion}"
        f"{after} yet"
    )


def _drift(
    ct: ContinuousTraining, state: ModelState, champion: str | None, since: datetime | None
) -> list[Verdict]:
    drift = ct.triggers.drift
    assert drift is not None
    what = f"{drift.feature} PSI" if drift.feature else "max feature PSI"

    def value(w: Window) -> float | None:
        return w.psi.get(drift.feature) if drift.feature else w.max_psi

    # No verdict from a window with too few rows or nothing measured (NaN).
    evidence = _evidence(
        state, champion, since, lambda w: w.rows >= ct.min_rows and value(w) is not None
    )
    if not evidence:
        return [Verdict("drift", False, "no monitor window recorded yet")]
    verdicts = []
    for endpoint, windows in evidence.items():
        if not windows:
            verdicts.append(Verdict("drift", False, _no_evidence(endpoint, ct, champion, since)))
            continue
        last = windows[-drift.windows :]
        shown = ", ".join(f"{value(w):.2f}" for w in last) or "none"
        breaches = sum(1 for w in last if (value(w) or 0.0) >= drift.psi_threshold)
        verdicts.append(
            Verdict(
                "drift",
                breaches >= drift.breaches,
                f"{endpoint}: {what} >= {drift.psi_threshold:g} in {breaches} of the last "
                f"{len(last)} window(s) with >= {ct.min_rows} rows ({drift.breaches} of "
                f"{drift.windows} needed): {shown}",
            )
        )
    return verdicts


def _decay(
    pipeline: PipelineSpec,
    ct: ContinuousTraining,
    state: ModelState,
    champion: str | None,
    since: datetime | None,
) -> list[Verdict]:
    decay = ct.triggers.decay
    assert decay is not None
    metric = decay.metric or pipeline.gates.metric or DEFAULT_GATE_METRIC[pipeline.task]
    minimum = decay.minimum if decay.minimum is not None else pipeline.gates.minimum
    if minimum is None:
        return [Verdict("decay", False, "no minimum (set decay.minimum or gates.minimum)")]
    evidence = _evidence(
        state,
        champion,
        since,
        lambda w: (
            w.rows >= ct.min_rows and w.labelled >= decay.min_labelled_rows and metric in w.quality
        ),
    )
    if not evidence:
        return [Verdict("decay", False, "no monitor window with enough labelled rows yet")]
    verdicts = []
    for endpoint, windows in evidence.items():
        if not windows:
            verdicts.append(Verdict("decay", False, _no_evidence(endpoint, ct, champion, since)))
            continue
        last = windows[-decay.windows :]
        shown = ", ".join(f"{w.quality[metric]:.3f}" for w in last) or "none"
        breaches = sum(1 for w in last if w.quality[metric] < minimum)
        verdicts.append(
            Verdict(
                "decay",
                breaches >= decay.breaches,
                f"{endpoint}: live {metric} below {minimum:g} in {breaches} of the last "
                f"{len(last)} window(s) with >= {decay.min_labelled_rows} labelled rows "
                f"({decay.breaches} of {decay.windows} needed): {shown}",
            )
        )
    return verdicts


def _new_data(
    settings: Settings, pipeline: PipelineSpec, min_rows: int, state: ModelState
) -> Verdict:
    from runtime.storage import count_rows_after

    champion = state.champion
    if champion is None:
        return Verdict("newData", False, "no champion to compare with")
    tags = champion.tags or {}
    until = _time(tags.get(registry.DATA_UNTIL_TAG)) or datetime.fromtimestamp(
        int(champion.creation_timestamp) / 1000, UTC
    )
    rows = count_rows_after(settings, pipeline.labels.path, pipeline.labels.timestamp_field, until)
    return Verdict(
        "newData",
        rows >= min_rows,
        f"{rows} labelled row(s) newer than champion version {champion.version}'s training data "
        f"(up to {_iso(until)}; {min_rows} needed)",
    )


# --- the check: train --if-due -------------------------------------------------------------------


@dataclass
class Check:
    """What one `train --if-due` did."""

    assessment: Assessment
    started: Retrain | None = None
    """The retrain it ran (None: nothing was due, or a guardrail stopped it)."""
    stopped_by: Guardrail | None = None
    version: str | None = None
    quarantined: bool = False

    @property
    def summary(self) -> str:
        a = self.assessment
        if self.started is not None:
            done = self.started
            if done.outcome == Outcome.registered:
                return f"retrained ({done.trigger}): version {done.version} is the challenger"
            return f"retrained ({done.trigger}): {done.outcome}: {done.detail}"
        if self.stopped_by is not None:
            fired = "; ".join(v.detail for v in a.fired)
            return f"due ({fired}) but not started: {self.stopped_by.message}"
        return "not due: " + ("; ".join(v.detail for v in a.verdicts) or "no trigger")


Trainer = Callable[[Settings, str], Any]


def run_if_due(
    settings: Settings,
    pipeline_name: str,
    *,
    clock: Callable[[], datetime] | None = None,
    trainer: Trainer | None = None,
    holder: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Check:
    """`train --if-due`: retrain ``pipeline_name`` if a trigger fired and no guardrail objects.

    Raises what training raised (GateFailure, ...) after recording it, so the job fails visibly.
    ``say`` hears each trigger's verdict and the decision before training starts.
    """
    from runtime.train import find_pipeline, train

    clock = clock or (lambda: datetime.now(UTC))
    trainer = trainer or train
    pipeline = find_pipeline(settings, pipeline_name)
    ct = _ct(pipeline)
    model = pipeline.model_name
    mlflow_client = registry.client(settings)
    assessment = assess(settings, pipeline, now=clock(), mlflow_client=mlflow_client)
    check = Check(assessment)
    for verdict in assessment.verdicts:
        (say or _silent)(
            f"{verdict.trigger}: {'fired' if verdict.fired else 'quiet'}: {verdict.detail}"
        )
    if assessment.should_quarantine:
        check.quarantined = quarantine(settings, mlflow_client, assessment)
    _publish_check(settings, pipeline.name, assessment)
    if not assessment.fired:
        return check
    if assessment.guardrails:
        check.stopped_by = assessment.guardrails[0]
        _note_skip(settings, mlflow_client, assessment, check.stopped_by)
        return check
    lease = acquire_lease(
        settings,
        mlflow_client,
        model,
        holder=holder or holder_id(),
        duration=ct.lease or DEFAULT_LEASE,
        now=clock(),
    )
    if lease is None:
        check.stopped_by = Guardrail("lease", "another job took the lease first")
        return check
    failure: BaseException | None = None
    try:
        retrains = _settle_crashed(settings, pipeline.name, model, assessment.state.retrains, lease)
        fired = assessment.fired
        retrain = Retrain(
            generation=lease.generation,
            started=lease.acquired,
            trigger=fired[0].trigger,
            reason="; ".join(v.detail for v in fired),
        )
        _write_retrains(mlflow_client, model, [*retrains, retrain])
        with contextlib.suppress(MlflowException):
            mlflow_client.delete_registered_model_tag(model, SKIPPED_TAG)
        events.record(
            settings,
            model,
            Kind.triggered,
            f"retrain started by {retrain.trigger}: {retrain.reason}",
            at=retrain.started,
            triggers=[v.trigger for v in fired],
            lease=lease.generation,
            holder=lease.holder,
        )
        _publish(settings, pipeline.name, RETRAINS_TRIGGERED, 1)
        (say or _silent)(f"retraining ({retrain.trigger}), lease {lease.generation}")
        try:
            result = trainer(settings, pipeline.name)
        except GateFailure as error:
            failure = error
            retrain = replace(retrain, outcome=Outcome.gated_out, detail="; ".join(error.reasons))
        except RuntimeUserError as error:
            failure = error
            retrain = replace(retrain, outcome=Outcome.failed, detail=str(error)[:500])
        except Exception as error:
            failure = error
            retrain = replace(
                retrain,
                outcome=Outcome.failed,
                detail=f"{type(error).__name__}: {str(error)[:400]}",
            )
        else:
            version = str(result.version)
            retrain = replace(retrain, outcome=Outcome.registered, version=version)
            mlflow_client.set_model_version_tag(model, version, TRIGGER_TAG, retrain.reason[:5000])
            check.version = version
        retrain = replace(retrain, finished=clock())
        _write_retrains(mlflow_client, model, [*retrains, retrain])
        check.started = retrain
        _record_outcome(settings, pipeline.name, model, retrain)
    finally:
        release_lease(mlflow_client, model, lease, clock())
    if failure is not None:
        after = assess(settings, pipeline, now=clock(), mlflow_client=mlflow_client)
        if after.should_quarantine:
            check.quarantined = quarantine(settings, mlflow_client, after)
        raise failure
    return check


def _silent(line: str) -> None:
    return None


def _record_outcome(settings: Settings, pipeline: str, model: str, retrain: Retrain) -> None:
    if retrain.outcome == Outcome.registered:
        events.record(
            settings,
            model,
            Kind.trained,
            f"version {retrain.version} registered as challenger: its canary starts",
            version=retrain.version,
            at=retrain.finished,
            trigger=retrain.trigger,
        )
        return
    kind = Kind.gated_out if retrain.outcome == Outcome.gated_out else Kind.failed
    events.record(
        settings, model, kind, retrain.detail, at=retrain.finished, trigger=retrain.trigger
    )
    _publish(settings, pipeline, RETRAIN_FAILURES, 1)


def _settle_crashed(
    settings: Settings, pipeline: str, model: str, retrains: list[Retrain], lease: Lease
) -> list[Retrain]:
    """Retrains still `running` under an older lease died: their lease expired unreleased."""
    settled = []
    for retrain in retrains:
        if retrain.outcome == Outcome.running and retrain.generation < lease.generation:
            retrain = replace(
                retrain,
                outcome=Outcome.crashed,
                detail=f"no result before its lease expired (lease {retrain.generation})",
            )
            events.record(
                settings,
                model,
                Kind.crashed,
                f"the retrain started at {_iso(retrain.started)} ({retrain.trigger}) gave no "
                "result before its lease expired",
                at=lease.acquired,
            )
            _publish(settings, pipeline, RETRAIN_FAILURES, 1)
        settled.append(retrain)
    return settled


def _note_skip(
    settings: Settings, mlflow_client: MlflowClient, a: Assessment, guardrail: Guardrail
) -> None:
    """One `skipped` event each time the reason changes (a check every few minutes is no news)."""
    if a.state.last_skip == guardrail.key:
        return
    _ensure_registered(mlflow_client, a.model)
    _set_tag(mlflow_client, a.model, SKIPPED_TAG, {"guardrail": guardrail.key, "at": _iso(a.now)})
    events.record(
        settings,
        a.model,
        Kind.skipped,
        f"{', '.join(v.trigger for v in a.fired)} fired; not retrained: {guardrail.message}",
        at=a.now,
        guardrail=guardrail.key,
    )


def quarantine(settings: Settings, mlflow_client: MlflowClient, a: Assessment) -> bool:
    """Hold the model after `quarantineAfter` failed retrains in a row; a person releases it."""
    ct = _ct(a.pipeline)
    failed = [r for r in a.state.retrains if r.outcome in FAILED][-a.failures_in_a_row :]
    reasons = "; ".join(f"{r.outcome} ({_iso(r.started)})" for r in failed)
    hold = Hold(
        by="mlops (quarantine)",
        reason=f"{a.failures_in_a_row} retrain(s) in a row gave no healthy model "
        f"(quarantineAfter: {ct.quarantine_after}): {reasons}",
        since=a.now,
        quarantine=True,
    )
    _ensure_registered(mlflow_client, a.model)
    _set_tag(mlflow_client, a.model, HOLD_TAG, hold.to_json())
    a.state.hold = hold
    events.record(settings, a.model, Kind.held, hold.reason, by=hold.by, at=a.now, quarantine=True)
    return True


def _publish_check(settings: Settings, pipeline: str, a: Assessment) -> None:
    with publisher(settings) as sink:
        dims = {Dimension.pipeline: pipeline}
        sink.publish(RETRAIN_BUDGET_REMAINING, a.budget_remaining, dims)
        sink.publish(MODEL_HELD_SECONDS, a.held_seconds, dims)


def _publish(settings: Settings, pipeline: str, metric: Any, value: float) -> None:
    with publisher(settings) as sink:
        sink.publish(metric, value, {Dimension.pipeline: pipeline})


# --- a person's commands: hold, release, status, history ----------------------------------------


def whoami() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


def hold(
    settings: Settings,
    model: str,
    reason: str,
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> Hold:
    """Stop every automated action on ``model`` (retrain, promotion, rollback) until released."""
    mlflow_client = registry.client(settings)
    state = read_state(mlflow_client, model)
    if state.hold is not None and not state.hold.quarantine:
        return state.hold
    held = Hold(by=by or whoami(), reason=reason, since=now or datetime.now(UTC))
    _ensure_registered(mlflow_client, model)
    _set_tag(mlflow_client, model, HOLD_TAG, held.to_json())
    events.record(settings, model, Kind.held, reason, by=held.by, at=held.since)
    return held


def release(
    settings: Settings, model: str, *, by: str | None = None, now: datetime | None = None
) -> Hold | None:
    """Resume automated actions on ``model``; returns the hold released (None: was not held).

    Failed retrains before the release no longer count towards a quarantine."""
    mlflow_client = registry.client(settings)
    state = read_state(mlflow_client, model)
    if state.hold is None:
        return None
    now = now or datetime.now(UTC)
    who = by or whoami()
    _set_tag(mlflow_client, model, RELEASED_TAG, {"by": who, "at": _iso(now)})
    mlflow_client.delete_registered_model_tag(model, HOLD_TAG)
    events.record(
        settings,
        model,
        Kind.released,
        f"released (held by {state.hold.by} since {_iso(state.hold.since)}: {state.hold.reason})",
        by=who,
        at=now,
    )
    return state.hold


def is_held(mlflow_client: MlflowClient, model: str) -> Hold | None:
    """The hold on ``model``, if any (the monitor asks before it acts)."""
    try:
        tags = mlflow_client.get_registered_model(model).tags or {}
    except MlflowException:
        return None
    return Hold.from_json(json.loads(tags[HOLD_TAG])) if HOLD_TAG in tags else None


def pipeline_of(settings: Settings, model: str) -> PipelineSpec | None:
    return next((p for p in settings.pipelines if p.model_name == model), None)


def status_lines(settings: Settings, model: str) -> list[str]:
    """What `mlops-runtime status` prints: triggers, guardrails, budget, hold, lease, the last retrains."""
    mlflow_client = registry.client(settings)
    pipeline = pipeline_of(settings, model)
    if pipeline is None or pipeline.continuous_training is None:
        state = read_state(mlflow_client, model)
        lines = [
            f"{model}: no pipeline with continuousTraining trains it here (MLOPS_PIPELINES); "
            "what the registry holds:"
        ]
        now = datetime.now(UTC)
    else:
        a = assess(settings, pipeline, mlflow_client=mlflow_client)
        state, now = a.state, a.now
        ct = _ct(pipeline)
        if a.due:
            headline = "a retrain is due now"
        elif a.fired:
            headline = f"due, but not started: {a.guardrails[0].message}"
        else:
            headline = "not due"
        lines = [f"{model} (pipeline {pipeline.name}): {headline}", "triggers:"]
        lines += [
            f"  {v.trigger}: {'fired' if v.fired else 'quiet'}: {v.detail}" for v in a.verdicts
        ]
        lines.append("guardrails:" + ("" if a.guardrails else " none in the way"))
        lines += [f"  {g.key}: {g.message}" for g in a.guardrails]
        lines.append(
            f"budget: {a.budget_remaining} of {ct.budget.runs} retrain(s) left (per "
            f"{format_duration(ct.budget.per)}); failed in a row: {a.failures_in_a_row} "
            f"(quarantine at {ct.quarantine_after})"
        )
    champion = state.champion.version if state.champion is not None else "none"
    challenger = state.challenger.version if state.challenger is not None else "none"
    lines.append(f"champion: {champion}; challenger: {challenger}")
    if state.hold is not None:
        lines.append(
            f"held by {state.hold.by} for {_ago(now, state.hold.since)}: {state.hold.reason}"
        )
    if state.lease is not None:
        shown = (
            "released"
            if state.lease.released
            else (f"until {_iso(state.lease.expires)}" if state.lease.active(now) else "expired")
        )
        lines.append(f"lease {state.lease.generation}: {state.lease.holder}, {shown}")
    for retrain in state.retrains[-5:]:
        version = f" -> v{retrain.version}" if retrain.version else ""
        lines.append(
            f"retrain {_iso(retrain.started)} ({retrain.trigger}): {retrain.outcome}{version}"
        )
    return lines
