"""The audit trail of continuous training: every automated decision, as an event.

An event is one JSON object under ``<events root>/<model>/`` (``MLOPS_EVENTS_URI``, next to the
prediction logs in the artifact bucket; a folder in ``home`` by default), named by its time so a
listing is the timeline. Objects are only ever created, never rewritten: concurrent jobs cannot
lose each other's events, and S3 needs no append. Every event is also a notice on the team's
alert topic and a count of the catalogue metric ContinuousTrainingDecisions (by kind).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from runtime.settings import Settings

LOCAL_FOLDER = "ct-events"
_log = logging.getLogger(__name__)


class Kind(StrEnum):
    triggered = "triggered"
    """A retrain started: which trigger, why."""
    skipped = "skipped"
    """A trigger fired but a guardrail stopped the retrain (hold, cooldown, budget, canary, lease)."""
    trained = "trained"
    """The retrain registered a version: the challenger, now on its canary."""
    gated_out = "gated-out"
    """The retrain's model failed its gates; nothing was registered."""
    canary_started = "canary-started"
    """The challenger answered its first canary requests (seen by the monitor)."""
    failed = "failed"
    """The retrain stopped with an error."""
    crashed = "crashed"
    """A retrain's lease expired without a result (the job died)."""
    promoted = "promoted"
    rolled_back = "rolled-back"
    quarantined = "quarantined"
    """A version whose canary failed: never promoted automatically."""
    held = "held"
    released = "released"


NOTIFY = frozenset(Kind)
"""Events the alert topic is told about: every decision (a skip only when its reason changes;
a canary rollback and its quarantine share the monitor's one `canary-rollback` notice)."""


@dataclass(frozen=True)
class Event:
    at: datetime
    model: str
    kind: Kind
    summary: str
    """One line for a person: what happened and why."""
    version: str | None = None
    by: str = "mlops"
    """Who decided: `mlops` (automated, with the job that did it) or the person who ran a command."""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "model": self.model,
            "kind": str(self.kind),
            "summary": self.summary,
            "version": self.version,
            "by": self.by,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            at=datetime.fromisoformat(data["at"]),
            model=data["model"],
            kind=Kind(data["kind"]),
            summary=data.get("summary", ""),
            version=data.get("version"),
            by=data.get("by", "mlops"),
            details=data.get("details") or {},
        )


def events_root(settings: Settings) -> str:
    """Where events go: ``settings.events_uri`` or a folder in ``home``."""
    if settings.events_uri:
        return settings.events_uri.rstrip("/")
    return str(settings.home.resolve() / LOCAL_FOLDER)


def record(
    settings: Settings,
    model: str,
    kind: Kind,
    summary: str,
    *,
    version: str | None = None,
    by: str = "mlops",
    at: datetime | None = None,
    notify: bool = True,
    **details: Any,
) -> Event:
    """Write one event (and tell the alert topic if it is one a person should see)."""
    event = Event(
        (at or datetime.now(UTC)).astimezone(UTC), model, kind, summary, version, by, details
    )
    root = events_root(settings)
    fs, base = _filesystem(settings, root)
    # Time first (a listing is the timeline), then when it was written (ties keep their order).
    name = f"{event.at:%Y%m%dT%H%M%S.%fZ}-{time.time_ns()}-{kind}-{uuid.uuid4().hex[:6]}.json"
    folder = f"{base}/{model}"
    if not root.startswith("s3://"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    with fs.open_output_stream(f"{folder}/{name}") as out:
        out.write(json.dumps(event.to_json(), default=str).encode())
    _count(settings, event)
    if notify and kind in NOTIFY:
        _notify(settings, event)
    return event


def _count(settings: Settings, event: Event) -> None:
    """Every decision is also a catalogue metric: ContinuousTrainingDecisions by kind."""
    from runtime.metrics import CONTINUOUS_TRAINING_DECISIONS, Dimension
    from runtime.publish import publisher

    pipeline = next(
        (p.name for p in settings.pipelines if p.model_name == event.model), event.model
    )
    try:
        with publisher(settings) as sink:
            sink.publish(
                CONTINUOUS_TRAINING_DECISIONS,
                1,
                {Dimension.pipeline: pipeline, Dimension.decision: str(event.kind)},
            )
    except Exception as error:  # the event is written; a metric lost is no reason to fail
        _log.error("%s %s: the decision metric failed: %s", event.model, event.kind, error)


def read(settings: Settings, model: str, *, since: datetime | None = None) -> list[Event]:
    """The events of ``model``, oldest first (``since``: only those at or after it)."""
    from pyarrow import fs as pafs

    fs, base = _filesystem(settings, events_root(settings))
    try:
        entries = fs.get_file_info(pafs.FileSelector(f"{base}/{model}", allow_not_found=True))
    except (FileNotFoundError, OSError):
        return []
    found = []
    for entry in sorted(entries, key=lambda e: e.base_name):
        if entry.type != pafs.FileType.File or not entry.base_name.endswith(".json"):
            continue
        with fs.open_input_stream(entry.path) as stream:
            try:
                event = Event.from_json(json.loads(stream.read()))
            except (ValueError, KeyError) as error:
                _log.warning("skipping unreadable event %s: %s", entry.path, error)
                continue
        if since is None or event.at >= since:
            found.append(event)
    return sorted(found, key=lambda e: e.at)


def _filesystem(settings: Settings, root: str) -> tuple[Any, str]:
    from pyarrow import fs as pafs

    if root.startswith("s3://"):
        endpoint = settings.aws_endpoint_url
        s3 = pafs.S3FileSystem(
            region=settings.aws_region,
            endpoint_override=endpoint,
            scheme="http" if endpoint and endpoint.startswith("http://") else "https",
        )
        return s3, root.removeprefix("s3://")
    return pafs.LocalFileSystem(), str(Path(root).resolve())


def _notify(settings: Settings, event: Event) -> bool:
    if not settings.alert_topic_arn:
        return False
    import boto3

    sns = boto3.client(
        "sns", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    subject = f"[{settings.team}] {event.model}: {event.kind}"
    body = {
        "event": f"continuous-training-{event.kind}",
        "team": settings.team,
        "environment": settings.environment,
        **event.to_json(),
    }
    try:
        sns.publish(
            TopicArn=settings.alert_topic_arn,
            Subject=subject[:100],
            Message=json.dumps(body, indent=2, default=str),
        )
    except Exception as error:
        _log.error("%s: the notification failed: %s", subject, str(error)[:200])
        return False
    return True
