"""How a diff reads: text for a terminal, markdown for one pull-request comment, json for tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tooling.cost import change_lines, cost_change_json, summary
from tooling.diff import Op, PropertyChange, ResourceChange, StackDiff, flatten

GITHUB_COMMENT_LIMIT = 65_535
MARKER = "<!-- mlops-diff -->"
"""Lets the workflow find and update its own comment."""
_SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.REPLACE: "+-", Op.DELETE: "-"}


def summary_counts(diff: StackDiff) -> dict[str, int]:
    return {op.value: diff.count(op) for op in Op}


def _value(value: Any, width: int = 120) -> str:
    text = (
        "(none)"
        if value is None
        else json.dumps(value, default=str)
        if not isinstance(value, str)
        else value
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def _change_lines(change: ResourceChange) -> list[str]:
    head = f"{_SYMBOL[change.op]} {change.type} {change.name}"
    if change.dangerous:
        head += f"  !! {change.op.upper()} OF A STATEFUL RESOURCE (data is lost)"
    if change.previous_urn:
        head += f"  (was {change.previous_urn.rsplit('::', 1)[-1]})"
    lines = [head]
    if change.replaced_by:
        lines.append(f"    replaced because of: {', '.join(change.replaced_by)}")
    lines += [line for p in change.properties for line in _property_lines(p)]
    return lines


def _property_lines(change: PropertyChange) -> list[str]:
    """`path: old => new`; for a JSON document (a policy, a dashboard, an env value) only
    the paths inside it that changed: cut to one width, two long documents look alike."""
    old, new = _document(change.old), _document(change.new)
    if old is None or new is None:
        return [f"    {change.path}: {_value(change.old)} => {_value(change.new)}"]
    before, after = dict(flatten(old)), dict(flatten(new))
    return [
        f"    {change.path}{'' if inner.startswith('[') else '.'}{inner}: "
        f"{_value(before.get(inner))} => {_value(after.get(inner))}"
        for inner in sorted(set(before) | set(after))
        if before.get(inner) != after.get(inner)
    ]


def _document(value: Any) -> Any:
    """The object or array a JSON-valued string holds, else None."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) and document else None


def text(diffs: Sequence[StackDiff]) -> str:
    out: list[str] = []
    for diff in diffs:
        counts = (
            ", ".join(f"{n} to {op}" for op, n in summary_counts(diff).items() if n) or "no changes"
        )
        if not diff.planned:
            counts += " (nothing it is built from changed)"
        out.append(f"== {diff.stack}: {(diff.error and 'ERROR') or counts}")
        if diff.error:
            out.append(diff.error)
        for change in diff.changes:
            out += _change_lines(change)
        out += [f"  policy: {v}" for v in diff.violations]
        if diff.cost:
            out.append(f"  monthly cost: {summary(diff.cost)}")
            out += [f"    {line}" for line in change_lines(diff.cost)]
    return "\n".join(out) + "\n"


def as_json(diffs: Sequence[StackDiff]) -> str:
    return (
        json.dumps(
            [
                {
                    "stack": d.stack,
                    "planned": d.planned,
                    "error": d.error,
                    "summary": summary_counts(d),
                    "violations": d.violations,
                    "cost": cost_change_json(d.cost) if d.cost else None,
                    "changes": [
                        {
                            "op": c.op.value,
                            "urn": c.urn,
                            "type": c.type,
                            "name": c.name,
                            "stateful": c.stateful,
                            "dangerous": c.dangerous,
                            "previousUrn": c.previous_urn,
                            "replacedBy": list(c.replaced_by),
                            "properties": [
                                {"path": p.path, "old": p.old, "new": p.new} for p in c.properties
                            ],
                        }
                        for c in d.changes
                    ],
                }
                for d in diffs
            ],
            indent=2,
            default=str,
        )
        + "\n"
    )


def markdown(diffs: Sequence[StackDiff], *, base: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """One comment: a summary table first, then each stack's changes in a collapsed section;
    sections are trimmed from the end when the whole would not fit in ``limit`` characters."""
    dangerous = [(d.stack, c) for d in diffs for c in d.dangerous]
    head = [MARKER, f"### Infrastructure diff against `{base}`", ""]
    if dangerous:
        head.append("> [!CAUTION]")
        head.append("> **Stateful resources would be replaced or deleted (their data is lost):**")
        head += [f"> - `{stack}`: {c.op} `{c.type}` **{c.name}**" for stack, c in dangerous]
        head.append("")
    head += [
        "| stack | create | update | replace | delete | policy | monthly cost | budget |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for d in diffs:
        counts = summary_counts(d)
        policy = (
            "error"
            if d.error
            else f"{len(d.violations)} violation(s)"
            if d.violations
            else "pass"
            if d.planned
            else "unchanged"
        )
        cost = summary(d.cost) if d.cost else "—"
        budget = d.cost.budget.verdict if d.cost and d.cost.budget else "—"
        budget = {"over": "over ❌", "warning": "warning ⚠️"}.get(budget, budget)
        head.append(
            f"| `{d.stack}` | {counts['create']} | {counts['update']} | "
            f"{counts['replace']}{' ⚠️' if d.dangerous else ''} | {counts['delete']} | {policy} | "
            f"{cost} | {budget} |"
        )
    head.append("")
    sections = [
        _section(d)
        for d in diffs
        if d.changes or d.error or d.violations or (d.cost and d.cost.resources)
    ]
    footer = (
        "\n_Planned offline by `mlops diff` under the mock engine (no cloud credentials used)._\n"
    )
    body = "\n".join(head)
    for index, section in enumerate(sections):
        note = (
            f"\n_… {len(sections) - index} more stack section(s) not shown (comment size limit); "
            f"run `mlops diff --base {base}` locally for everything._\n"
        )
        if len(body) + len(section) + len(note) + len(footer) > limit:
            room = limit - len(body) - len(note) - len(footer) - len("\n```\n</details>\n")
            if room > 500:
                body += section[:room].rsplit("\n", 1)[0] + "\n```\n</details>\n"
            return body + note + footer
        body += section
    return body + footer


def _section(diff: StackDiff) -> str:
    counts = (
        ", ".join(f"{n} to {op}" for op, n in summary_counts(diff).items() if n)
        or "no resource changes"
    )
    title = f"<b>{diff.stack}</b>: {'error' if diff.error else counts}"
    lines = [f"<details><summary>{title}</summary>", "", "```diff"]
    if diff.error:
        lines += [f"- {line}" for line in diff.error.splitlines()]
    for change in diff.changes:
        first, *rest = _change_lines(change)
        marker = {Op.CREATE: "+", Op.DELETE: "-", Op.REPLACE: "!", Op.UPDATE: "~"}[change.op]
        lines.append(f"{marker} {first.split(' ', 1)[1]}")
        lines += rest
    lines += [f"! policy: {v}" for v in diff.violations]
    if diff.cost:
        lines += [f"$ {line}" for line in change_lines(diff.cost)]
    lines += ["```", "</details>", ""]
    return "\n".join(lines) + "\n"
