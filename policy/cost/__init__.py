"""What a stack costs a month: the price table and the estimate over resource properties.

Part of the policy pack (the budget rules need it, and the pack stands alone); `mlops cost`
and `mlops diff` use the same functions over a mock-engine plan.
"""

from policy.cost.estimate import (
    PRICERS,
    Estimate,
    Line,
    Priced,
    Unpriced,
    estimate,
    lines_by_resource,
    round_usd,
)
from policy.cost.prices import PRICES_FILE, Price, PriceError, PriceTable, load_prices

__all__ = [
    "PRICERS",
    "PRICES_FILE",
    "Estimate",
    "Line",
    "Price",
    "PriceError",
    "PriceTable",
    "Priced",
    "Unpriced",
    "estimate",
    "lines_by_resource",
    "load_prices",
    "round_usd",
]
