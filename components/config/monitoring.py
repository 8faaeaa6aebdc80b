"""`mlops:monitoring`: who gets paged, and the thresholds that page them."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import EmailStr, Field, StrictInt

from components.config.base import ConfigModel, Cron, Environment, Presets, Secret
from runtime.spec import Identifier


class Drift(ConfigModel):
    schedule: Cron = "0 * * * *"
    """When the drift monitor runs."""
    psi_threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    """Alarm when an endpoint's largest feature PSI exceeds this."""
    feature_thresholds: dict[Identifier, Annotated[float, Field(gt=0, le=10)]] = {}
    """Per-feature PSI thresholds that get an alarm of their own."""


class MonitoringConfig(ConfigModel):
    __presets__: ClassVar[Presets] = {Environment.prod: {"noTrafficAlarm": True, "missedRuns": 1}}

    alert_emails: list[EmailStr] = []
    alert_webhooks: list[Secret] = []
    """HTTPS endpoints (e.g. a paging service's integration URL); secrets, they carry a key."""
    drift: Drift = Drift()
    missed_runs: Annotated[StrictInt, Field(ge=1, le=10)] = 2
    """Alarm when a pipeline has not succeeded within this many schedule periods (+1)."""
    no_traffic_alarm: bool = False
    """Alarm when a real-time endpoint gets no requests (prod default: on)."""
