"""The price table shipped with the pack (`prices.json`): list prices per region and SKU."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
REFRESH_HINT = "`python -m tooling.price_list --region {region}` adds or refreshes it"


class PriceError(Exception):
    """The table cannot price what was asked (a region or SKU it does not hold)."""


@dataclass(frozen=True)
class Price:
    sku: str
    """`<service>/<what>`, e.g. `ec2/m6i.xlarge`, `dynamodb/storage`."""
    usd: float
    per: str
    """The unit the price is per: `hour`, `GB-month`, `1M requests`, ..."""


@dataclass(frozen=True)
class InstanceType:
    vcpu: float
    memory_gib: float
    gpus: int


@dataclass(frozen=True)
class PriceTable:
    """One region's prices, with the table's provenance."""

    region: str
    currency: str
    taken: str
    """The date the prices were taken (YYYY-MM-DD)."""
    source: str
    hours_per_month: float
    spot_discount: float
    """Spot nodes cost on-demand x (1 - spot_discount)."""
    prices: Mapping[str, Price]
    instance_types: Mapping[str, InstanceType]

    def price(self, sku: str) -> Price:
        """The price of ``sku``; PriceError naming the SKU, the region and the fix if absent."""
        found = self.prices.get(sku)
        if found is None:
            raise PriceError(
                f"no price for {sku} in {self.region} ({PRICES_FILE.name}, taken {self.taken}); "
                + REFRESH_HINT.format(region=self.region)
            )
        return found

    def instance(self, name: str) -> InstanceType:
        found = self.instance_types.get(name)
        if found is None:
            raise PriceError(
                f"no vCPU/memory figures for instance type {name} ({PRICES_FILE.name}); "
                + REFRESH_HINT.format(region=self.region)
            )
        return found


@functools.cache
def _document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_prices(region: str, path: Path = PRICES_FILE) -> PriceTable:
    """The table for ``region``; PriceError (naming the regions there are) if it has none."""
    document = _document(path)
    regions = document["regions"]
    if region not in regions:
        raise PriceError(
            f"no prices for region {region} in {path.name} (it has {', '.join(sorted(regions))}); "
            + REFRESH_HINT.format(region=region)
        )
    return PriceTable(
        region=region,
        currency=document["currency"],
        taken=document["taken"],
        source=document["source"],
        hours_per_month=document["hoursPerMonth"],
        spot_discount=document["spot"]["discount"],
        prices={
            sku: Price(sku, float(entry["usd"]), entry["per"])
            for sku, entry in regions[region].items()
        },
        instance_types={
            name: InstanceType(float(spec["vcpu"]), float(spec["memoryGib"]), int(spec["gpus"]))
            for name, spec in document["instanceTypes"].items()
        },
    )


def dumps(document: Mapping[str, Any]) -> str:
    """The table as the file keeps it: one SKU or instance type per line, sorted (small diffs)."""

    def block(entries: Mapping[str, Any], indent: str) -> str:
        rows = [
            f"{indent}{json.dumps(key)}: {json.dumps(value)}"
            for key, value in sorted(entries.items())
        ]
        return "{\n" + ",\n".join(rows) + "\n" + indent[:-2] + "}"

    head = {k: v for k, v in document.items() if k not in ("instanceTypes", "regions")}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    lines.append(f'  "instanceTypes": {block(document["instanceTypes"], "    ")}')
    regions = [
        f"    {json.dumps(region)}: {block(prices, '      ')}"
        for region, prices in sorted(document["regions"].items())
    ]
    lines.append('  "regions": {\n' + ",\n".join(regions) + "\n  }")
    return "{\n" + ",\n".join(lines) + "\n}\n"
