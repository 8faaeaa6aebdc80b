"""`mlops plan`: run the real Pulumi program for one stack under the mock engine, record the result.

No cloud, no Pulumi CLI: the Python SDK's mock monitor stands in for the engine, the project's
mocks (tooling.mocks) for the providers. What the program registers is what `pulumi up` would
create, in the same order, with the same URNs, inputs and parents.
"""

from __future__ import annotations

import contextvars
import gc
import json
import runpy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import (
    NO_VALUE,
    ConfigError,
    Issue,
    load_stack_file,
    read_yaml,
    stack_name_of,
)
from components.platform.config import load_platform_file
from tooling import preflight
from tooling.mocks import (
    ROOT_STACK_TYPE,
    SECRET_SHOWN,
    DuplicateUrnError,
    EngineMonitor,
    PlatformMocks,
    isolate_run,
    make_urn,
)
from tooling.project import (
    PLATFORM_FOLDER,
    PROJECT,
    Project,
    ProjectNotFound,
    Workspace,
    find_workspace,
    nearest_project,
    working_project,
)
from tooling.project import PLATFORM_PROJECT as PLATFORM_PROJECT  # the name, for importers


def project_of(file: Path, workspace: Workspace | None = None) -> Project:
    """The project a stack file belongs to, as Pulumi finds it: the nearest Pulumi.yaml above
    it; a file outside any project is the working project's (``workspace``: the one the working
    folder is in). Raises ProjectNotFound."""
    found = nearest_project(file.parent)
    if found is None:
        found = (workspace or find_workspace()).team
    if found is None:
        raise ProjectNotFound(f"no team project to plan {file} with")
    return found


class PlanError(ConfigError):
    """What the engine, AWS or the Kubernetes API server would refuse in a stack's plan,
    reported like a config problem: the stack file, where, the value, what is allowed."""


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    """What the program passed, secrets replaced by `[secret]`."""
    outputs: dict[str, Any]
    """What the mock provider returned (inputs plus computed values), secrets masked."""
    secret_paths: list[str] = field(default_factory=list)
    """Top-level input keys that carried a secret."""
    read: bool = False
    """Read from existing state (a StackReference, a `get`), not created."""
    provider: str | None = None
    protect: bool = False
    dependencies: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    """URNs this resource had before (its explicit aliases)."""
    ignore_changes: list[str] = field(default_factory=list)
    """Input paths an update leaves alone (`ignore_changes`)."""
    id: str | None = None
    """The physical id the mock provider gave it (what other resources' inputs refer to)."""


@dataclass
class Plan:
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    """The stack's outputs, secrets masked."""
    revealed_outputs: dict[str, Any] = field(default_factory=dict, repr=False)
    """The outputs as a StackReference to this stack would read them, secrets included (never
    printed; what a test feeds a team stack's plan)."""

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> PlannedResource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_} named {name!r}")
        return found[0]

    def children(self, parent: PlannedResource) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    @classmethod
    def from_preview_json(cls, stack: str, data: dict[str, Any]) -> Plan:
        """The inverse of preview_json (how a plan crosses a process boundary)."""
        resources = [
            PlannedResource(
                urn=step["urn"],
                type=state["type"],
                name=step["urn"].rsplit("::", 1)[-1],
                parent=state.get("parent") or None,
                custom=state["custom"],
                inputs=state.get("inputs", {}),
                outputs=state.get("outputs", {}),
                secret_paths=state.get("secretInputs", []),
                read=step["op"] == "read",
                provider=state.get("provider") or None,
                protect=state.get("protect", False),
                dependencies=state.get("dependencies", []),
                aliases=state.get("aliases", []),
                ignore_changes=state.get("ignoreChanges", []),
                id=state.get("id") or None,
            )
            for step in data["steps"]
            for state in [step["newState"]]
        ]
        return cls(stack=stack, resources=resources, outputs=data.get("outputs", {}))

    def preview_json(self) -> dict[str, Any]:
        """The plan in the shape of `pulumi preview --json` (steps of op, urn, newState)."""
        steps = [
            {
                "op": "read" if r.read else "create",
                "urn": r.urn,
                "provider": r.provider or "",
                "newState": {
                    "urn": r.urn,
                    "id": r.id or "",
                    "custom": r.custom,
                    "type": r.type,
                    "inputs": r.inputs,
                    "outputs": r.outputs,
                    "parent": r.parent or "",
                    "protect": r.protect,
                    "provider": r.provider or "",
                    "dependencies": r.dependencies,
                    "aliases": r.aliases,
                    "ignoreChanges": r.ignore_changes,
                    "secretInputs": r.secret_paths,
                },
            }
            for r in self.resources
        ]
        summary = {
            "create": sum(not r.read for r in self.resources),
            "read": sum(r.read for r in self.resources),
        }
        return {
            "steps": steps,
            "outputs": self.outputs,
            "changeSummary": {k: v for k, v in summary.items() if v},
        }


Planned = Plan | str | None
"""What planning a stack file gives: its plan, its config error (every problem, as `mlops
validate` words them), or None where there is no such stack file."""


class _Recorder(EngineMonitor):
    """The mock engine's monitor, remembering everything a registration said."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.planned: list[PlannedResource] = []

    def _alias_urn(self, alias: Any, request: Any) -> str:
        if alias.urn:
            return str(alias.urn)
        spec = alias.spec
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return make_urn(
            spec.stack or pulumi.get_stack(),
            spec.project or pulumi.get_project(),
            parent,
            spec.type or request.type,
            spec.name or request.name,
        )

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != ROOT_STACK_TYPE:
            self._record(request, response.urn, request.object, custom=request.custom)
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        # The engine reads during preview too and answers with the id (a StackReference's is
        # known): without it the SDK makes the id unknown, and so every invoke fed its outputs.
        response.id = self.resources[response.urn].id or request.id
        self._record(request, response.urn, request.properties, custom=True, read=True)
        return response

    def _record(
        self, request: Any, urn: str, properties: Any, *, custom: bool, read: bool = False
    ) -> None:
        inputs = rpc.deserialize_properties(properties, keep_unknowns=True)
        registration = self.resources[urn]
        state = dict(registration.state)
        if "secretOutputNames" in state:  # a StackReference: its secret outputs stay secret
            state["outputs"] = {
                k: SECRET_SHOWN if k in state["secretOutputNames"] else v
                for k, v in state["outputs"].items()
            }
        self.planned.append(
            PlannedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=custom,
                read=read,
                inputs=_masked(inputs),
                outputs=_masked(state),
                secret_paths=sorted(k for k, v in inputs.items() if _has_secret(v)),
                provider=request.provider or None,
                protect=getattr(request, "protect", False),
                dependencies=sorted(getattr(request, "dependencies", [])),
                aliases=[self._alias_urn(a, request) for a in getattr(request, "aliases", [])],
                ignore_changes=list(getattr(request, "ignoreChanges", [])),
                id=registration.id or None,
            )
        )


def _has_secret(value: Any) -> bool:
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _masked(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return SECRET_SHOWN
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return "[unknown]"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire (a protobuf Struct) makes every number a double
    return value


def engine_config(stack_file: Path) -> tuple[dict[str, str], list[str]]:
    """The config the engine would hand the program: strings (objects as JSON), secret keys.

    Encrypted values cannot be decrypted offline; they become `[secret]`.
    """
    document = read_yaml(stack_file) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        plain, secret = _decrypt_offline(value)
        config[key] = plain if isinstance(plain, str) else json.dumps(plain)
        if secret:
            secret_keys.append(key)
    return config, secret_keys


def _decrypt_offline(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_SHOWN, True
    if isinstance(value, dict):
        pairs = {k: _decrypt_offline(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_decrypt_offline(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def stack_file(
    stack: str | Path, stacks_dir: Path | None = None, *, workspace: Workspace | None = None
) -> Path:
    """`fraud-dev`, `platform/prod` or a path -> the stack file (relative to the working folder
    where it can be). A name is looked up in ``stacks_dir``, else among the stacks of
    ``workspace``'s team project, else of the project the working folder is in (the platform's
    in `platform/`); `<folder>/<stack>` names a stack of the project in that folder of the
    workspace (`platform/prod`)."""
    path = Path(stack)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        folder, _, name = str(stack).rpartition("/")
        if folder:
            stacks_dir = (workspace or find_workspace()).stacks_of(folder)
        elif stacks_dir is None:
            stacks_dir = workspace.stacks if workspace else working_project().stacks
        path = stacks_dir / f"Pulumi.{name}.yaml"
    return shown_path(path)


def shown_path(path: Path) -> Path:
    """``path`` as a user would type it: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def validate_stack_file(file: Path) -> str:
    """Validate a stack file of either project (team or platform) and return its region.
    Raises ConfigError with every problem."""
    project = nearest_project(file.parent)
    if project is not None and project.platform:
        return load_platform_file(file).region
    return load_stack_file(file).region


def plan_stack(
    stack: str | Path,
    *,
    program: Path | None = None,
    stack_outputs: Callable[[str], dict[str, Any]] | None = None,
    workspace: Workspace | None = None,
) -> Plan:
    """Run the stack's project program (or ``program``) for ``stack`` under the mock engine.
    Raises ConfigError for a bad config. ``stack_outputs`` answers StackReferences (default:
    the mock engine's invented platform outputs). ``workspace``: where stack names are looked
    up (default: the one the working folder is in)."""
    file = stack_file(stack, workspace=workspace)
    project = project_of(file, workspace)
    region = validate_stack_file(file)  # every config problem at once, before anything registers
    name = stack_name_of(file) or file.stem
    # A fresh context: the SDK keeps its settings, config and root stack in context variables.
    with _garbage_collected_after():
        planned = contextvars.Context().run(
            _run, file, name, region, program or project.program, project.name, stack_outputs
        )
        # What AWS, the API server or the engine would refuse in what the program made of the
        # config (with the collector still off: it would go over the whole plan again and again).
        findings = preflight.check(planned.resources)
    if findings:
        raise PlanError(
            [Issue(str(file), f.where, f.value, f"should be {f.message}") for f in findings]
        )
    return planned


@contextmanager
def _garbage_collected_after() -> Iterator[None]:
    """The SDK leaves reference cycles at every step (closures, tasks, outputs): with Python's
    cyclic collector on, it runs over and over during a plan, over more live objects the bigger
    the plan, and takes more than half the plan's time. Off while planning, then one collection
    of the youngest generation, which holds everything the plan allocated (and only that)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect(0)
        gc.enable()


def _run(
    file: Path,
    stack: str,
    region: str,
    program: Path,
    project: str = PROJECT,
    stack_outputs: Callable[[str], dict[str, Any]] | None = None,
) -> Plan:
    mocks = PlatformMocks(region, stack_outputs)
    recorder = _Recorder(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=True, monitor=recorder)
    isolate_run()
    config, secret_keys = engine_config(file)
    pulumi.runtime.set_all_config(config, secret_keys)

    def run_program() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(run_program))
    except DuplicateUrnError as error:
        raise PlanError([Issue(str(file), error.urn, NO_VALUE, error.problem)]) from None
    root = pulumi.runtime.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    resolved = {key: _resolve(value) for key, value in exported.items()}
    outputs = {key: SECRET_SHOWN if secret else value for key, (value, secret) in resolved.items()}
    # Registrations race on the SDK's thread pool; parents first, then by URN, is a stable order.
    resources = sorted(recorder.planned, key=lambda r: (r.urn.split("::")[2].count("$"), r.urn))
    return Plan(
        stack=stack,
        resources=resources,
        outputs=_masked(outputs),
        revealed_outputs={key: value for key, (value, _) in resolved.items()},
    )


def _resolve(value: Any) -> tuple[Any, bool]:
    output = pulumi.Output.from_input(value)
    resolved = _sync_await(output.future(with_unknowns=True))
    return resolved, _sync_await(output.is_secret())


def example_stacks(workspace: Workspace | None = None) -> Iterator[Path]:
    """The team project's stack files (of ``workspace``; default: the working folder's)."""
    yield from sorted((workspace or find_workspace()).stacks.glob("Pulumi.*.yaml"))


def platform_stacks(workspace: Workspace | None = None) -> Iterator[Path]:
    """The platform project's stack files (of ``workspace``; default: the working folder's)."""
    yield from sorted(
        (workspace or find_workspace()).stacks_of(PLATFORM_FOLDER).glob("Pulumi.*.yaml")
    )
