"""What a failed rehearsal raises."""

from __future__ import annotations


class RehearsalError(RuntimeError):
    """A step failed; the message says which and where its logs are."""
