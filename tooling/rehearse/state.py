"""The state of a rehearsal that is up (`state.json`): what `--down` and tests/infra read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tooling.project import Workspace, find_workspace
from tooling.rehearse.translate import SUBSTITUTIONS

STATE_FOLDER = Path(".mlops") / "rehearsal"
"""Where in the working project a rehearsal keeps its state (and the YAML it played)."""
STATE_FILE = "state.json"


def state_dir(workspace: Workspace | None = None) -> Path:
    """The rehearsal state folder of ``workspace`` (default: the working folder's project)."""
    return (workspace or find_workspace()).root / STATE_FOLDER


@dataclass
class PlayedPod:
    role: str
    """`mlflow`, `serving`, `demo-data`, `materialize`, `train`, `promote`; with `--loop` also
    `monitor` and `history`."""
    name: str
    """Pod name."""
    containers: list[str]
    yaml: str
    """The played YAML (for `podman kube down`)."""
    url: str | None = None
    exit_code: int | None = None
    detail: str = ""


@dataclass
class State:
    stack: str
    image: str
    aws_endpoint: str
    database: str
    database_uri: str
    admin_database_uri: str
    credentials_dir: str
    moto_pid: int | None = None
    pods: list[PlayedPod] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=lambda: list(SUBSTITUTIONS))
    loop: dict[str, Any] | None = None
    """With `--loop`: model, endpoint, versions, events URI, the steps and whether it finished."""

    def save(self, folder: Path) -> None:
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | None = None) -> State | None:
        file = (folder or state_dir()) / STATE_FILE
        if not file.exists():
            return None
        data = json.loads(file.read_text())
        data["pods"] = [PlayedPod(**p) for p in data.get("pods", [])]
        return cls(**data)

    def pods_of(self, role: str) -> list[PlayedPod]:
        return [p for p in self.pods if p.role == role]


def iter_rows(state: State) -> Iterator[tuple[str, str, str, str]]:
    """Role, pod, state, detail: what came up, for the report."""
    for pod in state.pods:
        if pod.exit_code is not None:
            status = "completed" if pod.exit_code == 0 else f"failed ({pod.exit_code})"
        else:
            status = "running"
        yield pod.role, pod.name, status, pod.detail or (pod.url or "")
