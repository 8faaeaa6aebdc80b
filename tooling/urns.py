"""The URN record: every resource's identity per example stack, changed only on purpose.

A URN is a resource's identity to the engine (stack, project, parent type chain, type, name). A
change of code that changes the URN of a resource an existing stack already has is, on
`pulumi up`, a delete and a create: for a bucket, a table or a database, data lost (or an update
that fails on a protected resource). `mlops diff` shows it in a pull request; the record makes it
a failing test too. `mlops plan STACK --record-urns` writes `<stacks folder>/urns/<stack>.txt`
(team stacks: `stacks/urns/`, platform stacks: `platform/stacks/urns/`), and
tests/tooling/test_urns.py fails when a plan's URNs differ from it: a URN gone without an alias
that keeps it, or a new one not recorded yet.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tooling.diff import STATEFUL_TYPES
from tooling.plan import Plan, PlannedResource, make_urn

RECORD_FOLDER = "urns"
HEADER = """\
# The URN of every resource `mlops plan {stack}` registers. A change that makes one of them
# disappear replaces that resource on `pulumi up` (a delete and a create) unless the resource
# keeps its old URN as an alias. Written by `mlops plan {stack} --record-urns`.
"""


def record_path(stack_file: Path) -> Path:
    """Where a stack's record lives: `urns/<stack>.txt` beside its stack file."""
    stack = stack_file.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    return stack_file.parent / RECORD_FOLDER / f"{stack}.txt"


def planned_urns(plan: Plan) -> list[str]:
    """The URNs `pulumi up` would create or own (reads are not the stack's to replace)."""
    return sorted(r.urn for r in plan.resources if not r.read)


def write_record(plan: Plan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER.format(stack=plan.stack), *planned_urns(plan)]
    path.write_text("\n".join(line.rstrip("\n") for line in lines) + "\n")


def read_record(path: Path) -> list[str]:
    """The recorded URNs ([] when there is no record yet)."""
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass(frozen=True)
class Gone:
    """A recorded URN no planned resource has, nor keeps as an alias: a replacement."""

    urn: str
    successor: PlannedResource | None
    """The planned resource that most likely took its place (same type), if any."""
    renamed: tuple[PlannedResource, str] | None = None
    """The topmost ancestor of the successor that was renamed, and its old name: aliasing it
    keeps this resource too (the engine moves a child named after its parent along)."""

    @property
    def type(self) -> str:
        return urn_type(self.urn)

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES

    def alias_hint(self) -> str:
        """The `aliases=` that keeps the old identity, as precisely as the URNs tell."""
        if self.successor is None:
            return "aliases=[pulumi.Alias(...)] with its old name and parent"
        if self.renamed is not None:
            ancestor, old_name = self.renamed
            return (
                f"aliases=[pulumi.Alias(name={old_name!r})] on {ancestor.name!r} (a renamed "
                "component: its children named after it follow)"
            )
        old_chain, old_name = _chain(self.urn), self.urn.rsplit("::", 1)[-1]
        new_chain, new_name = _chain(self.successor.urn), self.successor.name
        parts = []
        if old_name != new_name:
            parts.append(f"name={old_name!r}")
        if old_chain[:-1] != new_chain[:-1]:
            parent = " $ ".join(old_chain[:-1]) or "the stack"
            parts.append(f"parent=<its old parent, of type {parent}>")
        return f"aliases=[pulumi.Alias({', '.join(parts)})] on {self.successor.name!r}"


@dataclass
class RecordDiff:
    stack: str
    record: Path
    gone: list[Gone] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(old URN, new URN) pairs an alias keeps: no replacement."""

    @property
    def ok(self) -> bool:
        return not self.gone and not self.new

    def report(self) -> str:
        """What differs and what to do, for a test failure or the CLI."""
        rerecord = f"`mlops plan {self.stack} --record-urns`"
        lines: list[str] = []
        if self.gone:
            lines.append(
                f"{self.stack}: {len(self.gone)} recorded resource(s) would be replaced on "
                "`pulumi up` (a delete and a create): no planned resource has their URN or "
                "keeps it as an alias"
            )
            for gone in self.gone:
                data = " (stateful: its data is lost)" if gone.stateful else ""
                lines.append(f"  - {gone.urn}{data}")
                if gone.successor is not None:
                    lines.append(f"    now planned as {gone.successor.urn}")
                lines.append(f"    to keep it: {gone.alias_hint()}")
            lines.append(
                f"  or, if the replacement is meant: {rerecord} in the same commit, naming the "
                "stateful resources it replaces"
            )
        if self.new:
            lines.append(
                f"{self.stack}: {len(self.new)} planned resource(s) not in {self.record}; "
                f"record them with {rerecord}:"
            )
            lines += [f"  + {urn}" for urn in self.new]
        return "\n".join(lines)


def compare(plan: Plan, recorded: Iterable[str], record: Path) -> RecordDiff:
    """The plan's URNs against the record."""
    resources = [r for r in plan.resources if not r.read]
    planned = {r.urn: r for r in resources}
    kept_by = {old: r.urn for r in resources for old in identities(r, planned)[1:]}
    recorded = list(recorded)
    result = RecordDiff(plan.stack, record)
    result.new = sorted(set(planned) - set(recorded))
    candidates = [planned[urn] for urn in result.new]
    gone_urns = {urn for urn in recorded if urn not in planned and urn not in kept_by}
    for urn in recorded:
        if urn in planned:
            continue
        if urn in kept_by:
            result.kept.append((urn, kept_by[urn]))
            continue
        successor = _successor(urn, candidates)
        renamed = _renamed_ancestor(urn, successor, planned, gone_urns) if successor else None
        result.gone.append(Gone(urn, successor, renamed))
    return result


def identities(resource: PlannedResource, by_urn: dict[str, PlannedResource]) -> list[str]:
    """Every URN the engine matches the resource's old state by: its own, its aliases, and
    those its parent's give it. A child named after its parent (`<parent>-<role>`) follows a
    renamed parent with the old name as its prefix, as the engine computes it."""
    found = [resource.urn, *resource.aliases]
    parent = by_urn.get(resource.parent or "")
    if parent is None:
        return found
    stack, project = (
        resource.urn.split("::")[0].removeprefix("urn:pulumi:"),
        resource.urn.split("::")[1],
    )
    for parent_urn in identities(parent, by_urn)[1:]:
        name = resource.name
        if name.startswith(parent.name):
            name = parent_urn.rsplit("::", 1)[-1] + name[len(parent.name) :]
        found.append(make_urn(stack, project, parent_urn, resource.type, name))
    return found


def _renamed_ancestor(
    urn: str,
    successor: PlannedResource,
    planned: dict[str, PlannedResource],
    gone: set[str],
) -> tuple[PlannedResource, str] | None:
    """The topmost new ancestor of ``successor`` whose old URN (its name swapped for the prefix
    the gone child had) is gone too: the component that was renamed."""
    old_name = urn.rsplit("::", 1)[-1]
    ancestors = []
    parent = planned.get(successor.parent or "")
    while parent is not None:
        ancestors.append(parent)
        parent = planned.get(parent.parent or "")
    for ancestor in reversed(ancestors):
        if not successor.name.startswith(ancestor.name):
            continue
        suffix = successor.name[len(ancestor.name) :]
        if not old_name.endswith(suffix):
            continue
        previous = old_name[: len(old_name) - len(suffix)]
        if ancestor.urn.rsplit("::", 1)[0] + f"::{previous}" in gone:
            return ancestor, previous
    return None


def urn_type(urn: str) -> str:
    """The resource's own type token (the last of the URN's type chain)."""
    return _chain(urn)[-1]


def _chain(urn: str) -> list[str]:
    return urn.split("::")[2].split("$")


def _successor(urn: str, candidates: list[PlannedResource]) -> PlannedResource | None:
    """The new resource of the same type most like the gone one (same name, else closest)."""
    same_type = [r for r in candidates if r.type == urn_type(urn)]
    if not same_type:
        return None
    name = urn.rsplit("::", 1)[-1]
    for resource in same_type:
        if resource.name == name:
            return resource
    names = [r.name for r in same_type]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return same_type[names.index(close[0])] if close else None


def rerecord(plan: Plan, stack_file: Path) -> str:
    """Write the stack's record from ``plan``; what changed, stateful replacements first."""
    path = record_path(stack_file)
    change = compare(plan, read_record(path), path)
    write_record(plan, path)
    summary = (
        f"wrote {path}: {len(planned_urns(plan))} URNs (+{len(change.new)}, "
        f"-{len(change.gone) + len(change.kept)}, {len(change.kept)} of them kept by an alias)"
    )
    stateful = [gone.urn for gone in change.gone if gone.stateful]
    if stateful:
        summary += "\nreplaced on `pulumi up`, with their data (name them in the commit):"
        summary += "".join(f"\n  - {urn}" for urn in stateful)
    return summary
