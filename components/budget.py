"""`mlops:cost:CostModel`: the stack's budget and usage assumptions, where the policy pack sees them.

It creates nothing in AWS. A CrossGuard stack policy sees the stack's resources but not its
config; this component carries the budget, the region and the usage assumptions as properties,
so the budget rules price the same resources with the same assumptions as `mlops cost`.
"""

from __future__ import annotations

import pulumi

from components.config.cost import Budget, Usage

COST_MODEL_TYPE = "mlops:cost:CostModel"


class CostModel(pulumi.ComponentResource):
    """The budget (if any), region and usage assumptions of one stack."""

    def __init__(
        self,
        name: str,
        *,
        region: str,
        budget: Budget | None,
        usage: Usage,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        properties = {
            "region": region,
            "monthlyUsd": budget.monthly_usd if budget else None,
            "warnAtPercent": budget.warn_at_percent if budget else None,
            "usage": usage.model_dump(by_alias=True, mode="json"),
        }
        super().__init__(COST_MODEL_TYPE, name, properties, opts)
        self.region: str = region
        """The region whose prices apply."""
        self.register_outputs(properties)
