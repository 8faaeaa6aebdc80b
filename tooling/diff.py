"""`mlops diff`: what a change would do to each stack, resource by resource, without a cloud.

Both sides are planned by the mock engine in worker processes (tooling.planner), the base side's
over a copy of the base commit's tree, so each side runs its own program and components.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tooling.cost import CostChange
from tooling.mocks import SECRET_SHOWN
from tooling.plan import Plan, Planned, PlannedResource, make_urn
from tooling.plan_cache import PlanCache
from tooling.planner import Tree, plan_stacks

STATEFUL_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:dynamodb/table:Table",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:secretsmanager/secret:Secret",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "kubernetes:core/v1:PersistentVolumeClaim",
    }
)
"""Resources whose replacement or deletion loses data."""

REPLACE_ON: dict[str, frozenset[str]] = {
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:dynamodb/table:Table": frozenset({"name", "hashKey", "rangeKey", "localSecondaryIndexes"}),
    "aws:rds/instance:Instance": frozenset(
        {
            "identifier",
            "identifierPrefix",
            "engine",
            "dbName",
            "username",
            "storageEncrypted",
            "kmsKeyId",
            "availabilityZone",
            "characterSetName",
        }
    ),
    "aws:kms/key:Key": frozenset({"keyUsage", "customerMasterKeySpec", "multiRegion"}),
    "aws:secretsmanager/secret:Secret": frozenset({"name", "namePrefix"}),
    "aws:ecr/repository:Repository": frozenset({"name"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    "aws:iam/policy:Policy": frozenset({"name", "namePrefix", "path"}),
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix", "fifoTopic"}),
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    "aws:eks/nodeGroup:NodeGroup": frozenset(
        {
            "nodeGroupName",
            "clusterName",
            "subnetIds",
            "instanceTypes",
            "capacityType",
            "diskSize",
            "amiType",
        }
    ),
    "aws:rds/subnetGroup:SubnetGroup": frozenset({"name"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "vpcId", "description"}),
}
"""Input properties whose change makes the provider replace the resource (not update it)."""
KUBERNETES_REPLACE_ON = frozenset({"metadata.name", "metadata.namespace"})
KUBERNETES_REPLACE_ON_SPEC = {
    "Deployment": frozenset({"spec.selector"}),
    "StatefulSet": frozenset({"spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"}),
    "Job": frozenset({"spec.template", "spec.selector"}),
    "PersistentVolumeClaim": frozenset({"spec.storageClassName", "spec.accessModes"}),
    "Service": frozenset({"spec.clusterIP"}),
}


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True)
class PropertyChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ResourceChange:
    op: Op
    urn: str
    type: str
    name: str
    properties: tuple[PropertyChange, ...] = ()
    replaced_by: tuple[str, ...] = ()
    """The properties that force the replacement."""
    previous_urn: str | None = None
    """Set when the resource was found under an alias (renamed, moved)."""

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES

    @property
    def dangerous(self) -> bool:
        """Replacing or deleting it loses data."""
        return self.stateful and self.op in (Op.REPLACE, Op.DELETE)


@dataclass
class StackDiff:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    error: str | None = None
    violations: list[str] = field(default_factory=list)
    """Policy violations of the new side."""
    cost: CostChange | None = None
    """The monthly cost before and after, and the new side's budget check."""
    planned: bool = True
    """False when nothing the stack is built from changed, so neither side was planned."""

    def count(self, op: Op) -> int:
        return sum(change.op == op for change in self.changes)

    @property
    def dangerous(self) -> list[ResourceChange]:
        return [change for change in self.changes if change.dangerous]


def diff_plans(stack: str, base: Plan | None, head: Plan | None) -> StackDiff:
    """Resource-by-resource difference from ``base`` to ``head`` (None: the stack is new/gone)."""
    old = {r.urn: r for r in (base.resources if base else []) if not r.read}
    new = [r for r in (head.resources if head else []) if not r.read]
    by_urn = {r.urn: r for r in new}
    result = StackDiff(stack)
    matched: set[str] = set()
    for resource in new:
        previous = next(
            (urn for urn in _identities(resource, by_urn) if urn in old and urn not in matched),
            None,
        )
        if previous is None:
            result.changes.append(
                ResourceChange(Op.CREATE, resource.urn, resource.type, resource.name)
            )
            continue
        matched.add(previous)
        change = _compare(old[previous], resource)
        if change:
            result.changes.append(change)
    for urn, resource in old.items():
        if urn not in matched:
            result.changes.append(ResourceChange(Op.DELETE, urn, resource.type, resource.name))
    order = {Op.REPLACE: 0, Op.DELETE: 1, Op.UPDATE: 2, Op.CREATE: 3}
    result.changes.sort(key=lambda c: (not c.dangerous, order[c.op], c.urn))
    return result


def _identities(resource: PlannedResource, by_urn: dict[str, PlannedResource]) -> list[str]:
    """Every URN the resource may have had: its own, its aliases, and those its parent's
    aliases give it (the engine moves children along with a renamed parent)."""
    identities = [resource.urn, *resource.aliases]
    parent = by_urn.get(resource.parent or "")
    if parent is not None:
        _, stack, project, *_ = resource.urn.replace("urn:pulumi:", "urn::", 1).split("::")
        for parent_urn in _identities(parent, by_urn)[1:]:
            identities.append(make_urn(stack, project, parent_urn, resource.type, resource.name))
    return identities


def _compare(old: PlannedResource, new: PlannedResource) -> ResourceChange | None:
    secret = set(old.secret_paths) | set(new.secret_paths)
    before, after = dict(flatten(old.inputs)), dict(flatten(new.inputs))
    properties = tuple(
        PropertyChange(
            path, _mask(path, before.get(path), secret), _mask(path, after.get(path), secret)
        )
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    )
    moved = old.urn != new.urn
    if not properties and not moved:
        return None
    triggers = tuple(
        sorted(
            {
                p.path
                for p in properties
                for key in _replace_keys(new.type)
                if p.path == key or p.path.startswith((f"{key}.", f"{key}["))
            }
        )
    )
    op = Op.REPLACE if triggers else Op.UPDATE
    return ResourceChange(
        op, new.urn, new.type, new.name, properties, triggers, old.urn if moved else None
    )


def _replace_keys(type_: str) -> frozenset[str]:
    if type_.startswith("kubernetes:"):
        kind = type_.rsplit(":", 1)[-1]
        return KUBERNETES_REPLACE_ON | KUBERNETES_REPLACE_ON_SPEC.get(kind, frozenset())
    return REPLACE_ON.get(type_, frozenset())


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(`a.b[0].c`, leaf) for every leaf of nested dicts and lists. A list of objects each with
    its own `name` (containers, env, volumes, ports) is keyed by it, `env[MLOPS_TEAM].value`, as
    Kubernetes merges them: one entry added does not shift every entry after it."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for key, item in zip(_list_keys(value), value, strict=True):
            yield from flatten(item, f"{path}[{key}]")
    else:
        yield path, value


def _list_keys(items: list[Any]) -> list[str]:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if all(isinstance(n, str) and n and not n.isdigit() for n in names) and len(set(names)) == len(
        names
    ):
        return [str(n) for n in names]
    return [str(i) for i in range(len(items))]


def _mask(path: str, value: Any, secret: set[str]) -> Any:
    top = path.split(".", 1)[0].split("[", 1)[0]
    return SECRET_SHOWN if top in secret and value is not None else value


# -- which stacks, and the base side -------------------------------------------------------------

CODE_PATHS = ("__main__.py", "Pulumi.yaml", "components/", "runtime/", "pyproject.toml")
"""A change here may change every team stack."""
PLATFORM = "platform"
PLATFORM_CODE_PATHS = (
    f"{PLATFORM}/__main__.py",
    f"{PLATFORM}/Pulumi.yaml",
    "components/",
    "pyproject.toml",
)
"""A change here may change every platform stack (`platform/<stack>`)."""
PLATFORM_ONLY = ("components/platform/",)
"""Code only the platform runs: a change here leaves team stacks alone."""


class GitError(Exception):
    """The base cannot be read (not a repository, unknown ref)."""


def _git(repo: Path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if run.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {run.stderr.strip()}")
    return run.stdout


def changed_stacks(base: str, repo: Path) -> list[str]:
    """Stacks whose file, or the code they are built by, differs between ``base`` and the tree:
    team stacks by name (`fraud-prod`), platform stacks as `platform/<stack>`."""
    changed = set(_git(repo, "diff", "--name-only", base, "--").split())
    changed |= set(_git(repo, "ls-files", "--others", "--exclude-standard").split())
    found: set[str] = set()
    for folder, code, prefix in (
        ("stacks/", CODE_PATHS, ""),
        (f"{PLATFORM}/stacks/", PLATFORM_CODE_PATHS, f"{PLATFORM}/"),
    ):
        base_stacks = {
            _stack_of(p) for p in _git(repo, "ls-tree", "--name-only", base, folder).split()
        }
        head_stacks = {_stack_of(p.name) for p in (repo / folder).glob("Pulumi.*.yaml")}
        every = {f"{prefix}{s}" for s in base_stacks | head_stacks if s}
        touched = [
            path
            for path in changed
            if path.startswith(code) and not (not prefix and path.startswith(PLATFORM_ONLY))
        ]
        if touched:
            found |= every
        else:
            found |= {
                f"{prefix}{s}" for p in changed if p.startswith(folder) and (s := _stack_of(p))
            }
    return sorted(found)


def _stacks_in(repo: Path) -> list[str]:
    """Every stack in the tree: team stacks, then platform stacks as `platform/<stack>`."""
    return [
        f"{prefix}{stack}"
        for prefix in ("", f"{PLATFORM}/")
        for file in sorted((repo / prefix / "stacks").glob("Pulumi.*.yaml"))
        if (stack := _stack_of(file.name))
    ]


def _stack_of(path: str) -> str | None:
    name = Path(path).name
    if name.startswith("Pulumi.") and name.endswith(".yaml"):
        return name.removeprefix("Pulumi.").removesuffix(".yaml")
    return None


def plan_sides(
    base: str,
    stacks: Sequence[str],
    repo: Path,
    *,
    jobs: int | None = None,
    cache: PlanCache | None = None,
) -> tuple[dict[str, Planned], dict[str, Planned]]:
    """Plan ``stacks`` as of commit ``base``, with that commit's own code, and in the working
    tree: both sides at once, in up to ``jobs`` processes (default: one per core), answers from
    ``cache`` where it has them."""
    old, new = Tree(repo, base), Tree(repo)
    planned = plan_stacks({old: stacks, new: stacks}, jobs=jobs, cache=cache)
    return planned[old], planned[new]


def diff_stacks(
    base: str,
    stacks: Sequence[str] = (),
    *,
    repo: Path,
    policy: Callable[[Plan], list[str]] | None = None,
    cost: Callable[[Plan | None, Plan | None], CostChange] | None = None,
    jobs: int | None = None,
    cache: PlanCache | None = None,
) -> list[StackDiff]:
    """Diff ``stacks`` (default: those the change touches) from ``base`` to the working tree,
    planning in up to ``jobs`` processes at once (default: one per core), plans from ``cache``
    where it has them."""
    _git(repo, "rev-parse", "--verify", f"{base}^{{commit}}")
    stacks = list(stacks) or changed_stacks(base, repo)
    if not stacks:
        return [StackDiff(stack, planned=False) for stack in _stacks_in(repo)]
    bases, heads = plan_sides(base, stacks, repo, jobs=jobs, cache=cache)
    diffs = []
    for stack in stacks:
        old, new = bases[stack], heads[stack]
        broken = isinstance(new, str)
        errors = []
        if isinstance(new, str):
            errors.append(new)
            new = None
        if isinstance(old, str):
            errors.append(f"the base ({base}) does not plan either:\n{old}")
            old = None
        # A head that does not plan deletes nothing: its problems are the whole answer.
        diff = StackDiff(stack) if broken else diff_plans(stack, old, new)
        diff.error = "\n".join(errors) or None
        if new is not None and policy is not None:
            diff.violations = policy(new)
        if cost is not None and not broken and (old is not None or new is not None):
            diff.cost = cost(old, new)
        diffs.append(diff)
    return diffs
