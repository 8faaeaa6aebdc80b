"""The price refresh script against Price List API answers replayed by botocore's Stubber (which
checks every request against the real service model); no network.

The answers (`data/price_list_responses.json`) are in the API's `aws_v1` format: a paged answer,
a free tier before the paid one, a product of another usage type that must be skipped.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from policy.cost import load_prices
from policy.cost.prices import dumps
from tooling import price_list

RESPONSES = json.loads((Path(__file__).parent / "data" / "price_list_responses.json").read_text())
TODAY = datetime.date(2026, 12, 1)


def _table(region: str, skus: dict[str, float]) -> dict[str, Any]:
    return {
        "currency": "USD",
        "taken": "2020-01-01",
        "source": "by hand",
        "hoursPerMonth": 730,
        "spot": {"discount": 0.6, "note": ""},
        "instanceTypes": {"m6i.xlarge": {"vcpu": 4, "memoryGib": 16, "gpus": 0}},
        "regions": {region: {sku: {"usd": usd, "per": "x"} for sku, usd in skus.items()}},
    }


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    pricing = boto3.client(
        "pricing",
        region_name=price_list.PRICING_API_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(pricing) as stubber:
        yield pricing, stubber
        stubber.assert_no_pending_responses()


def _expect(stubber: Stubber, region: str, answers: list[dict[str, Any]]) -> None:
    """Queue each SKU's recorded pages, expecting the exact request the script must send."""
    for answer in answers:
        query = price_list.query_for(answer["sku"])
        filters = [
            {"Type": "TERM_MATCH", "Field": key, "Value": value}
            for key, value in {"regionCode": region, **query.filters}.items()
        ]
        token = None
        for page in answer["pages"]:
            expected = {
                "ServiceCode": answer["service"],
                "Filters": filters,
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
                **({"NextToken": token} if token else {}),
            }
            stubber.add_response("get_products", page, expected)
            token = page.get("NextToken")


def test_refresh_takes_each_skus_on_demand_price(client: tuple[Any, Stubber]) -> None:
    pricing, stubber = client
    old = {"dynamodb/storage": 0.283, "ec2/m6i.xlarge": 0.214, "rds-postgres/db.t4g.micro": 0.018}
    # The script asks for the SKUs in sorted order.
    _expect(stubber, "eu-west-1", sorted(RESPONSES, key=lambda a: a["sku"]))

    result = price_list.refresh(pricing, _table("eu-west-1", old), ["eu-west-1"], today=TODAY)

    assert result.missing == []
    assert result.changed == {
        "eu-west-1 ec2/m6i.xlarge": (0.214, 0.22),
        "eu-west-1 dynamodb/storage": (0.283, 0.29),  # the paid tier, not the free 25 GB
    }
    table = result.document
    assert (table["taken"], table["source"]) == ("2026-12-01", price_list.SOURCE)
    assert table["regions"]["eu-west-1"]["rds-postgres/db.t4g.micro"]["usd"] == 0.018


def test_a_new_region_starts_from_another_regions_skus(client: tuple[Any, Stubber]) -> None:
    pricing, stubber = client
    answer = next(a for a in RESPONSES if a["sku"] == "ec2/m6i.xlarge")
    _expect(stubber, "eu-west-1", [answer])

    result = price_list.refresh(
        pricing, _table("us-east-1", {"ec2/m6i.xlarge": 0.192}), ["eu-west-1"], today=TODAY
    )

    assert result.document["regions"]["eu-west-1"]["ec2/m6i.xlarge"]["usd"] == 0.22
    assert result.document["regions"]["us-east-1"]["ec2/m6i.xlarge"]["usd"] == 0.192


def test_an_unanswered_sku_leaves_the_file_alone(
    client: tuple[Any, Stubber], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pricing, stubber = client
    file = tmp_path / "prices.json"
    file.write_text(dumps(_table("eu-west-1", {"ec2/m6i.xlarge": 0.214})))
    before = file.read_text()
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    monkeypatch.setattr("boto3.client", lambda *args, **kwargs: pricing)

    assert price_list.main(["--region", "eu-west-1", "--file", str(file)]) == 1
    assert file.read_text() == before


def test_a_refreshed_file_loads(
    client: tuple[Any, Stubber], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pricing, stubber = client
    answer = next(a for a in RESPONSES if a["sku"] == "ec2/m6i.xlarge")
    _expect(stubber, "eu-west-1", [answer])
    file = tmp_path / "prices.json"
    file.write_text(dumps(_table("eu-west-1", {"ec2/m6i.xlarge": 0.214})))
    monkeypatch.setattr("boto3.client", lambda *args, **kwargs: pricing)

    assert price_list.main(["--region", "eu-west-1", "--file", str(file)]) == 0

    table = load_prices("eu-west-1", file)
    assert (table.price("ec2/m6i.xlarge").usd, table.taken) == (
        0.22,
        datetime.date.today().isoformat(),
    )


def test_every_shipped_sku_has_a_query() -> None:
    assert all(price_list.query_for(sku).service for sku in load_prices("eu-west-1").prices)
