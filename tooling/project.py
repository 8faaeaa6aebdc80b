"""Which project `mlops` works on: found as Pulumi finds it, from the working folder up.

The folder `mlops` works on (a `Workspace`) holds the team project at its root and the platform
project in `platform/` (DESIGN.md). From anywhere inside it, the nearest `Pulumi.yaml` above the
working folder names a project; the platform's leads to the folder above it. Nothing here refers
to the tree the tool was installed from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_FILE = "Pulumi.yaml"
PROJECT = "mlops"
"""The team project's name (the root's Pulumi.yaml)."""
PLATFORM_PROJECT = "mlops-platform"
PLATFORM_FOLDER = "platform"
"""Where the platform project lives in a workspace; `platform/<stack>` names its stacks."""


class ProjectNotFound(Exception):
    """No Pulumi.yaml in a folder or any folder above it."""


@dataclass(frozen=True)
class Project:
    """A Pulumi project: the folder of its Pulumi.yaml, its name and where its stack files are."""

    name: str
    folder: Path
    stack_config_dir: str = "."
    """Pulumi.yaml's `stackConfigDir` (the stack files' folder, relative to the project)."""

    @property
    def program(self) -> Path:
        return self.folder / "__main__.py"

    @property
    def platform(self) -> bool:
        return self.name == PLATFORM_PROJECT

    @property
    def stacks(self) -> Path:
        return self.folder / self.stack_config_dir

    def stack_files(self) -> list[Path]:
        return sorted(self.stacks.glob("Pulumi.*.yaml"))

    def __str__(self) -> str:
        return f"{self.name} at {self.folder}"


def project_at(folder: Path) -> Project | None:
    """The project whose Pulumi.yaml is in ``folder``, if there is one."""
    manifest = folder / PROJECT_FILE
    if not manifest.is_file():
        return None
    document = yaml.safe_load(manifest.read_text()) or {}
    return Project(
        name=str(document.get("name") or PROJECT),
        folder=folder.resolve(),
        stack_config_dir=str(document.get("stackConfigDir") or "."),
    )


def nearest_project(start: Path) -> Project | None:
    """The project of the nearest Pulumi.yaml in ``start`` or a folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (project := project_at(folder)) is not None:
            return project
    return None


@dataclass(frozen=True)
class Workspace:
    """The folder `mlops` works on: the team project at its root, the platform in `platform/`."""

    root: Path

    @property
    def team(self) -> Project | None:
        project = project_at(self.root)
        return project if project and not project.platform else None

    @property
    def platform(self) -> Project | None:
        project = project_at(self.root / PLATFORM_FOLDER) or project_at(self.root)
        return project if project and project.platform else None

    def projects(self) -> Iterator[Project]:
        yield from (p for p in (self.team, self.platform) if p is not None)

    def stacks_of(self, folder: str = "") -> Path:
        """The stack files' folder of the project in ``folder`` (`""`: the team project)."""
        project = project_at(self.root / folder)
        return project.stacks if project else self.root / folder / "stacks"

    @property
    def stacks(self) -> Path:
        return self.stacks_of()

    def stack_files(self) -> list[Path]:
        """Every stack file: the platform's first (team stacks reference them), then the teams'."""
        platform, team = self.platform, self.team
        return [
            *(platform.stack_files() if platform else []),
            *(team.stack_files() if team else []),
        ]

    def __str__(self) -> str:
        return ", ".join(map(str, self.projects())) or f"no project at {self.root}"


def working_project(start: Path | None = None) -> Project:
    """The project of the nearest Pulumi.yaml in ``start`` (default: the working folder) or
    above it, as Pulumi finds it. Raises ProjectNotFound."""
    start = (start or Path.cwd()).resolve()
    project = nearest_project(start)
    if project is None:
        raise ProjectNotFound(
            f"no {PROJECT_FILE} in {start} or any folder above it: run mlops inside a Pulumi "
            "project, or point at one with -C/--cwd DIR"
        )
    return project


def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace of the working project (see working_project): its folder, or the folder
    above for the platform project in `platform/`. Raises ProjectNotFound."""
    project = working_project(start)
    if project.platform and project.folder.name == PLATFORM_FOLDER:
        return Workspace(project.folder.parent)
    return Workspace(project.folder)
