"""`mlops cost`: a plan's monthly cost, line by line, and what a change does to it (`mlops diff`).

The pricing is the policy pack's (`policy.cost`): the budget rules and this command price the
same resources with the same assumptions, those the stack's cost model component carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from components.budget import COST_MODEL_TYPE
from components.config.cost import Usage
from policy.budget import NOT_PRICED_PACKAGES, BudgetCheck
from policy.cost import Estimate, Line, Priced, PriceError, estimate, load_prices, round_usd
from tooling.plan import Plan


@dataclass(frozen=True)
class StackCost:
    """A plan's estimate, and its budget check when the stack has a budget."""

    estimate: Estimate
    budget: BudgetCheck | None = None


def cost_model(plan: Plan) -> Mapping[str, Any]:
    """The properties of the plan's cost model component (empty without one)."""
    model = next((r for r in plan.resources if r.type == COST_MODEL_TYPE), None)
    return model.outputs if model else {}


def plan_cost(
    plan: Plan, *, region: str | None = None, usage: Mapping[str, Any] | None = None
) -> StackCost:
    """Price ``plan``: region and usage from its cost model component, or (a plan without one)
    ``region`` and ``usage`` (default: the default usage). PriceError for a region or SKU the
    table does not hold."""
    props = cost_model(plan)
    usage = props.get("usage") or usage or Usage().model_dump(by_alias=True, mode="json")
    where = props.get("region") or region
    if where is None:
        raise ValueError(f"{plan.stack}: no region to price in (no {COST_MODEL_TYPE} in the plan)")
    priced = [
        Priced(r.type, r.urn, r.outputs)
        for r in plan.resources
        if not r.read and not r.type.startswith(NOT_PRICED_PACKAGES)
    ]
    found = estimate(priced, load_prices(str(where)), usage)
    budget = None
    if props.get("monthlyUsd") is not None:
        budget = BudgetCheck(
            monthly_usd=float(props["monthlyUsd"]),
            warn_at_percent=int(props.get("warnAtPercent") or 80),
            high=found.high,
            unpriced=len(found.unpriced),
        )
    return StackCost(found, budget)


def usd(value: float) -> str:
    return f"${round_usd(value):,.2f}"


def span(low: float, high: float) -> str:
    return usd(low) if round_usd(low) == round_usd(high) else f"{usd(low)}..{usd(high)}"


def cost_table(stack: str, cost: StackCost) -> Table:
    found = cost.estimate
    table = Table(
        "resource",
        "SKU",
        "unit price",
        "quantity",
        "monthly",
        "low..high",
        "assumes",
        title=f"{stack}: monthly cost in {found.region} ({found.currency}, list prices of "
        f"{found.taken})",
        title_justify="left",
    )
    for line in sorted(found.lines, key=lambda item: (-item.monthly, -item.high, item.urn)):
        table.add_row(
            line.name,
            line.sku,
            f"${line.unit_price:.6g}/{line.unit}",
            f"{line.quantity:,.6g}",
            usd(line.monthly),
            span(line.low, line.high),
            ", ".join(line.assumptions) + (f" ({line.note})" if line.note else ""),
        )
    table.add_section()
    table.add_row(
        "[bold]total[/]", "", "", "", f"[bold]{usd(found.monthly)}[/]", span(found.low, found.high)
    )
    return table


def line_json(line: Line) -> dict[str, Any]:
    return {
        "urn": line.urn,
        "type": line.type,
        "sku": line.sku,
        "unitPrice": line.unit_price,
        "unit": line.unit,
        "quantity": line.quantity,
        "monthly": round_usd(line.monthly),
        "low": round_usd(line.low),
        "high": round_usd(line.high),
        "assumptions": list(line.assumptions),
        "note": line.note,
    }


def totals_json(found: Estimate) -> dict[str, float]:
    return {
        "monthly": round_usd(found.monthly),
        "low": round_usd(found.low),
        "high": round_usd(found.high),
    }


def budget_json(check: BudgetCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "monthlyUsd": check.monthly_usd,
        "warnAtPercent": check.warn_at_percent,
        "verdict": check.verdict.value,
        "message": check.message,
    }


def cost_json(stack: str, cost: StackCost) -> dict[str, Any]:
    found = cost.estimate
    return {
        "stack": stack,
        "region": found.region,
        "currency": found.currency,
        "pricesTaken": found.taken,
        "pricesSource": found.source,
        **totals_json(found),
        "lines": [line_json(line) for line in found.lines],
        "notPriced": [{"urn": u.urn, "type": u.type, "reason": u.reason} for u in found.unpriced],
        "noCharge": found.no_charge,
        "budget": budget_json(cost.budget),
    }


# -- what a change does to the cost (mlops diff) --------------------------------------------------


@dataclass(frozen=True)
class ResourceCostChange:
    urn: str
    type: str
    before: float
    after: float
    before_high: float
    after_high: float

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class CostChange:
    """A stack's monthly cost before and after a change (None: the stack is new or gone)."""

    before: Estimate | None
    after: Estimate | None
    budget: BudgetCheck | None
    """The budget check of the new side."""
    resources: tuple[ResourceCostChange, ...]
    """The resources whose cost changed, largest change first."""
    error: str | None = None

    @property
    def delta(self) -> float:
        return (self.after.monthly if self.after else 0) - (
            self.before.monthly if self.before else 0
        )

    @property
    def delta_high(self) -> float:
        return (self.after.high if self.after else 0) - (self.before.high if self.before else 0)


def _by_resource(found: Estimate | None) -> dict[str, tuple[str, float, float]]:
    totals: dict[str, tuple[str, float, float]] = {}
    for line in found.lines if found else []:
        _, monthly, high = totals.get(line.urn, (line.type, 0.0, 0.0))
        totals[line.urn] = (line.type, monthly + line.monthly, high + line.high)
    return totals


def diff_cost(before: Plan | None, after: Plan | None) -> CostChange:
    """What the change from ``before`` to ``after`` does to the monthly cost, both sides priced
    with today's table; a side without a cost model (older code) borrows the other's."""
    models = [cost_model(p) for p in (after, before) if p is not None]
    model = next((m for m in models if m), {})
    region, usage = model.get("region"), model.get("usage")
    try:
        return cost_change(
            plan_cost(before, region=region, usage=usage) if before else None,
            plan_cost(after, region=region, usage=usage) if after else None,
        )
    except (PriceError, ValueError) as error:
        return CostChange(None, None, None, (), error=str(error))


def cost_change(before: StackCost | None, after: StackCost | None) -> CostChange:
    """Per-resource differences (by URN) between two sides' estimates."""
    old = _by_resource(before.estimate if before else None)
    new = _by_resource(after.estimate if after else None)
    changed = []
    for urn in sorted(set(old) | set(new)):
        type_, was, was_high = old.get(urn, (new.get(urn, ("", 0, 0))[0], 0.0, 0.0))
        _, now, now_high = new.get(urn, (type_, 0.0, 0.0))
        if round_usd(was) != round_usd(now) or round_usd(was_high) != round_usd(now_high):
            changed.append(ResourceCostChange(urn, type_, was, now, was_high, now_high))
    changed.sort(key=lambda c: -max(abs(c.after - c.before), abs(c.after_high - c.before_high)))
    return CostChange(
        before=before.estimate if before else None,
        after=after.estimate if after else None,
        budget=after.budget if after else None,
        resources=tuple(changed),
    )


def cost_change_json(change: CostChange) -> dict[str, Any]:
    side = change.after or change.before
    return {
        "before": totals_json(change.before) if change.before else None,
        "after": totals_json(change.after) if change.after else None,
        "delta": round_usd(change.delta),
        "deltaHigh": round_usd(change.delta_high),
        "currency": side.currency if side else "USD",
        "resources": [
            {
                "urn": c.urn,
                "type": c.type,
                "before": round_usd(c.before),
                "after": round_usd(c.after),
                "beforeHigh": round_usd(c.before_high),
                "afterHigh": round_usd(c.after_high),
            }
            for c in change.resources
        ],
        "budget": budget_json(change.budget),
        "error": change.error,
    }


def signed(value: float) -> str:
    rounded = round_usd(value)
    return f"+{usd(rounded)}" if rounded > 0 else f"-{usd(-rounded)}" if rounded < 0 else "±$0.00"


def summary(change: CostChange) -> str:
    """`$120.00 → $340.50 (+$220.50)`, one cell of the PR comment's table."""
    if change.error:
        return "not priced"
    before = usd(change.before.monthly) if change.before else "—"
    after = usd(change.after.monthly) if change.after else "—"
    return f"{before} → {after} ({signed(change.delta)})"


def change_lines(change: CostChange) -> list[str]:
    """The lines that changed the cost, and the budget verdict."""
    if change.error:
        return [f"cost: not priced ({change.error})"]
    lines = [
        f"cost {c.name} ({c.type}): {usd(c.before)} → {usd(c.after)} ({signed(c.after - c.before)})"
        + (
            f", top of range {usd(c.before_high)} → {usd(c.after_high)}"
            if round_usd(c.before_high - c.before) or round_usd(c.after_high - c.after)
            else ""
        )
        for c in change.resources
    ]
    if change.budget:
        lines.append(f"budget ({change.budget.verdict}): {change.budget.message}")
    return lines
