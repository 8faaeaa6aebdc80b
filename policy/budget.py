"""Budgets as policy: a stack whose estimate can pass its `mlops:budget` fails; past the warning
share of it, a warning.

The stack's `mlops:cost:CostModel` component carries the budget, the region and the usage
assumptions (a stack policy sees resources, not config); the estimate is `policy.cost`'s, the
same `mlops cost` shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from policy.cost import Estimate, Priced, PriceError, estimate, load_prices

COST_MODEL_TYPE = "mlops:cost:CostModel"
NOT_PRICED_PACKAGES = ("pulumi:", "mlops:", "tls:")
"""Providers, stack references, the project's components and TLS keys made in the program (the
platform's webhook certificate): no cloud resource of their own."""


class _Resource(Protocol):
    type: str
    urn: str
    props: Mapping[str, Any]


class Verdict(StrEnum):
    within = "within"
    warning = "warning"
    over = "over"


@dataclass(frozen=True)
class BudgetCheck:
    monthly_usd: float
    warn_at_percent: int
    high: float
    """The top of the estimate's range."""
    unpriced: int
    """Resources the estimate could not price (the top of the range leaves them out)."""

    @property
    def verdict(self) -> Verdict:
        if self.high > self.monthly_usd:
            return Verdict.over
        if self.high > self.monthly_usd * self.warn_at_percent / 100:
            return Verdict.warning
        return Verdict.within

    @property
    def message(self) -> str:
        share = self.high / self.monthly_usd * 100
        text = {
            Verdict.over: "can cost up to ${high:,.2f} a month, over its budget of ${budget:,.2f} "
            "({share:.0f} %): lower the maximums (node pools, replicas, database storage) or "
            "raise mlops:budget.monthlyUsd",
            Verdict.warning: "can cost up to ${high:,.2f} a month, {share:.0f} % of its budget of "
            "${budget:,.2f} (warning past {warn} %)",
            Verdict.within: "can cost up to ${high:,.2f} a month, {share:.0f} % of its budget of "
            "${budget:,.2f}",
        }[self.verdict].format(
            high=self.high, budget=self.monthly_usd, share=share, warn=self.warn_at_percent
        )
        if self.unpriced:
            text += f"; {self.unpriced} resource(s) not priced (`mlops cost` lists them)"
        return text


def cost_model(resources: Iterable[_Resource]) -> _Resource | None:
    return next((r for r in resources if r.type == COST_MODEL_TYPE), None)


def stack_estimate(resources: Iterable[_Resource], model: _Resource) -> Estimate:
    """The estimate of the stack's resources with the region and usage its cost model carries."""
    priced = [
        Priced(r.type, r.urn, r.props)
        for r in resources
        if not r.type.startswith(NOT_PRICED_PACKAGES)
    ]
    return estimate(priced, load_prices(str(model.props["region"])), model.props["usage"])


def budget_check(resources: Iterable[_Resource]) -> tuple[str, BudgetCheck] | None:
    """(the cost model's URN, the check) for a stack with a budget; None without one."""
    resources = list(resources)
    model = cost_model(resources)
    if model is None or model.props.get("monthlyUsd") is None:
        return None
    found = stack_estimate(resources, model)
    return model.urn, BudgetCheck(
        monthly_usd=float(model.props["monthlyUsd"]),
        warn_at_percent=int(model.props.get("warnAtPercent") or 80),
        high=found.high,
        unpriced=len(found.unpriced),
    )


def findings(resources: Iterable[_Resource], verdict: Verdict) -> list[tuple[str, str]]:
    """(urn, message) when the stack's budget check comes out as ``verdict``."""
    try:
        checked = budget_check(resources)
    except PriceError as error:
        model = cost_model(resources)
        return [(model.urn if model else "", str(error))] if verdict is Verdict.over else []
    if checked is None or checked[1].verdict is not verdict:
        return []
    urn, check = checked
    return [(urn, check.message)]
