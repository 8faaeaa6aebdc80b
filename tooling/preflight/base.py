"""What a preflight check sees of a planned resource, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Planned(Protocol):
    """A planned resource (tooling.plan.PlannedResource), as far as the checks read it."""

    urn: str
    type: str
    name: str
    custom: bool
    read: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One value of one planned resource that would be refused."""

    type: str
    name: str
    path: str
    """The property path inside the resource's inputs (`spec.template.spec.containers[0].name`)."""
    value: Any
    message: str
    """What is allowed, to follow "should be"."""

    @property
    def where(self) -> str:
        return f"{self.type} {self.name}: {self.path}"


UNKNOWN = frozenset({"[unknown]", "[secret]"})
"""A value computed during the update, or a secret: nothing to check yet."""
