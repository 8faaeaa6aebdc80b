"""What one monitor run found: drift per column, live quality, the canary verdict, model ages.

Its own module so that the monitor (which computes it) and the drift report (which renders it)
both import it, and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from runtime.drift import ColumnDrift
from runtime.events import Event

MIN_ROWS = 30
"""Fewest logged rows a drift measurement is published for."""
MIN_CANARY_REQUESTS = 20
"""Fewest challenger requests the canary guard judges (fewer: no verdict, no action)."""


@dataclass(frozen=True)
class VariantHealth:
    variant: str
    version: str | None
    requests: int
    """Requests answered (from the prediction log)."""
    errors: int | None
    """Failed requests (from the serving metrics); None when the sink cannot be read back."""
    p99_latency_ms: float | None

    @property
    def error_rate(self) -> float | None:
        if self.errors is None:
            return None
        total = self.requests + self.errors
        return self.errors / total if total else None


@dataclass
class CanaryVerdict:
    champion: VariantHealth
    challenger: VariantHealth
    breaches: list[str]
    """Why the challenger is worse than the champion beyond the SLO (empty: it is not)."""
    judged: bool
    """False when there was too little challenger traffic to judge."""
    rolled_back: bool = False
    notified: bool = False
    held_by: str | None = None
    """Who holds the model's automated actions (the guard measures but does not act)."""
    promotion: str | None = None
    """What automatic promotion decided (continuous training with `promotion`), in a sentence."""
    promoted: bool = False

    @property
    def summary(self) -> str:
        held = f" (held by {self.held_by})" if self.held_by else ""
        if self.rejected:
            action = "rolled back" if self.rolled_back else f"not rolled back{held}"
            return f"{action}: " + "; ".join(self.breaches)
        if self.promotion:
            return self.promotion
        if not self.judged:
            return (
                f"not judged: {self.challenger.requests} challenger request(s) in the window, "
                f"at least {MIN_CANARY_REQUESTS} needed"
            )
        return "within SLO" + held

    @property
    def rejected(self) -> bool:
        return bool(self.breaches)


@dataclass(frozen=True)
class ServedVersion:
    variant: str
    version: str
    rows: int
    """Rows it answered in the window (shadow rows not counted)."""
    registered: datetime | None
    """When the version was registered (None when the registry does not know it)."""


@dataclass
class ChallengerDrift:
    version: str
    rows: int
    features: list[ColumnDrift] = field(default_factory=list)
    """Empty when it answered too few rows to measure (fewer than MIN_ROWS)."""


@dataclass
class MonitorResult:
    endpoint: str
    model: str
    champion_version: str
    start: datetime
    end: datetime
    rows: int
    """Rows the champion answered in the window (its drift is measured on these alone)."""
    psi_threshold: float
    features: list[ColumnDrift] = field(default_factory=list)
    prediction: ColumnDrift | None = None
    pipeline: str | None = None
    """The pipeline that trains the model (None when the settings do not declare it)."""
    served: list[ServedVersion] = field(default_factory=list)
    """Versions that answered in the window, champion first."""
    challenger: ChallengerDrift | None = None
    """Drift of the rows the challenger answered, against its own training reference."""
    quality: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    canary: CanaryVerdict | None = None
    model_ages: dict[str, float] = field(default_factory=dict)
    """Pipeline -> seconds since its model's newest registered version."""
    timeline: list[Event] = field(default_factory=list)
    """The model's recent continuous-training decisions (with continuous training)."""
    report: Path | None = None
    published: list[str] = field(default_factory=list)
    """Metric names published this run."""

    @property
    def max_feature_psi(self) -> float | None:
        values = [c.psi for c in self.features if np.isfinite(c.psi)]
        return max(values) if values else None

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.features if c.drifted(self.psi_threshold)]

    @property
    def measured(self) -> bool:
        return self.rows >= MIN_ROWS
