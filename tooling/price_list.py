"""Refresh the shipped price table (policy/cost/prices.json) from the AWS Price List API.

A maintainer's script, run by hand with AWS credentials (any account; the API is free):

    python -m tooling.price_list --region eu-west-1 [--region ...]

For each SKU the region's table holds (a new region starts from another region's SKUs), it asks
`pricing:GetProducts` for the product and takes its on-demand price. The file is written only
when every SKU was answered, with today's date; never run by the tests against the network.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.cost.prices import PRICES_FILE, dumps

PRICING_API_REGION = "us-east-1"
"""The Price List API answers from us-east-1 (and two other regions) for every region."""
SOURCE = (
    "AWS Price List API (pricing:GetProducts, on-demand terms), refreshed by tooling/price_list.py"
)


@dataclass(frozen=True)
class Query:
    """How to find one SKU's product: a service, attribute filters, and which usage type."""

    service: str
    filters: Mapping[str, str] = field(default_factory=dict)
    usage_type: str | None = None
    """The product's `usagetype` ends with this (usage types carry a region prefix)."""
    scale: float = 1.0
    """Multiplies the API's price per unit into the table's unit (per 1M requests, ...)."""


FLAT_QUERIES: dict[str, Query] = {
    "rds/storage-gp3": Query("AmazonRDS", usage_type="RDS:GP3-Storage"),
    "rds/storage-gp2": Query("AmazonRDS", usage_type="RDS:GP2-Storage"),
    "ebs/gp3": Query("AmazonEC2", usage_type="EBS:VolumeUsage.gp3"),
    "ebs/gp2": Query("AmazonEC2", usage_type="EBS:VolumeUsage.gp2"),
    "dynamodb/read-request-units": Query(
        "AmazonDynamoDB", usage_type="ReadRequestUnits", scale=1e6
    ),
    "dynamodb/write-request-units": Query(
        "AmazonDynamoDB", usage_type="WriteRequestUnits", scale=1e6
    ),
    "dynamodb/read-capacity-unit": Query("AmazonDynamoDB", usage_type="ReadCapacityUnit-Hrs"),
    "dynamodb/write-capacity-unit": Query("AmazonDynamoDB", usage_type="WriteCapacityUnit-Hrs"),
    "dynamodb/storage": Query("AmazonDynamoDB", usage_type="TimedStorage-ByteHrs"),
    "dynamodb/continuous-backup": Query("AmazonDynamoDB", usage_type="TimedPITRStorage-ByteHrs"),
    "s3/standard-storage": Query("AmazonS3", usage_type="TimedStorage-ByteHrs"),
    "s3/put-requests": Query("AmazonS3", usage_type="Requests-Tier1", scale=1e3),
    "s3/get-requests": Query("AmazonS3", usage_type="Requests-Tier2", scale=1e3),
    "kms/key": Query("awskms", usage_type="KMS-Keys"),
    "cloudwatch/alarm-standard": Query("AmazonCloudWatch", usage_type="CW:AlarmMonitorUsage"),
    "cloudwatch/alarm-high-resolution": Query(
        "AmazonCloudWatch", usage_type="CW:HighResAlarmMonitorUsage"
    ),
    "cloudwatch/dashboard": Query("AmazonCloudWatch", usage_type="DashboardsUsageHour-Basic"),
    "sns/publish": Query("AmazonSNS", usage_type="Requests-Tier1", scale=1e6),
    "sns/email": Query("AmazonSNS", usage_type="DeliveryAttempts-SMTP", scale=1e5),
    "sns/https": Query("AmazonSNS", usage_type="DeliveryAttempts-HTTP", scale=1e6),
    "ecr/storage": Query("AmazonECR", usage_type="TimedStorage-ByteHrs"),
    "eks/cluster": Query("AmazonEKS", usage_type="AmazonEKS-Hours:perCluster"),
    "vpc/nat-gateway": Query("AmazonEC2", usage_type="NatGateway-Hours"),
    "vpc/nat-gateway-data": Query("AmazonEC2", usage_type="NatGateway-Bytes"),
    "vpc/public-ipv4": Query("AmazonVPC", usage_type="PublicIPv4:InUseAddress"),
    "vpc/interface-endpoint": Query("AmazonVPC", usage_type="VpcEndpoint-Hours"),
    "elb/application": Query(
        "AWSELB", {"productFamily": "Load Balancer-Application"}, "LoadBalancerUsage"
    ),
    "elb/application-lcu": Query(
        "AWSELB", {"productFamily": "Load Balancer-Application"}, "LCUUsage"
    ),
    "elb/network": Query("AWSELB", {"productFamily": "Load Balancer-Network"}, "LoadBalancerUsage"),
    "elb/network-lcu": Query("AWSELB", {"productFamily": "Load Balancer-Network"}, "LCUUsage"),
    "secretsmanager/secret": Query("AWSSecretsManager", usage_type="AWSSecretsManager-Secrets"),
}


def query_for(sku: str) -> Query:
    """The Price List query that finds ``sku``; KeyError for a SKU no query is known for."""
    service, _, name = sku.partition("/")
    if service == "ec2":
        return Query(
            "AmazonEC2",
            {
                "instanceType": name,
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
                "licenseModel": "No License required",
            },
        )
    if service == "rds-postgres":
        return Query(
            "AmazonRDS",
            {
                "instanceType": name,
                "databaseEngine": "PostgreSQL",
                "deploymentOption": "Single-AZ",
            },
        )
    return FLAT_QUERIES[sku]


def on_demand_price(product: Mapping[str, Any]) -> float | None:
    """The first non-zero on-demand price of a Price List product (a free tier comes first)."""
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        dimensions = sorted(
            term.get("priceDimensions", {}).values(),
            key=lambda d: float(d.get("beginRange", "0") or 0),
        )
        for dimension in dimensions:
            usd = float(dimension.get("pricePerUnit", {}).get("USD", "0"))
            if usd > 0:
                return usd
    return None


def fetch_price(client: Any, region: str, query: Query) -> float | None:
    """The price ``query`` finds in ``region`` (None when the API has no such product)."""
    filters = [
        {"Type": "TERM_MATCH", "Field": key, "Value": value}
        for key, value in {"regionCode": region, **query.filters}.items()
    ]
    token: str | None = None
    while True:
        page = client.get_products(
            ServiceCode=query.service,
            Filters=filters,
            FormatVersion="aws_v1",
            MaxResults=100,
            **({"NextToken": token} if token else {}),
        )
        for text in page.get("PriceList", []):
            product = json.loads(text)
            usage_type = product.get("product", {}).get("attributes", {}).get("usagetype", "")
            if query.usage_type and not usage_type.endswith(query.usage_type):
                continue
            price = on_demand_price(product)
            if price is not None:
                return price * query.scale
        token = page.get("NextToken")
        if not token:
            return None


@dataclass
class Refresh:
    document: dict[str, Any]
    changed: dict[str, tuple[float, float]] = field(default_factory=dict)
    """`<region> <sku>` -> (old, new) price."""
    missing: list[str] = field(default_factory=list)


def refresh(
    client: Any, document: Mapping[str, Any], regions: Sequence[str], *, today: datetime.date
) -> Refresh:
    """A copy of ``document`` with every SKU of ``regions`` priced from the API."""
    updated = json.loads(json.dumps(document))
    result = Refresh(updated)
    template: dict[str, Any] = next(iter(updated["regions"].values()), {})
    for region in regions:
        prices = updated["regions"].setdefault(region, json.loads(json.dumps(template)))
        for sku, entry in sorted(prices.items()):
            try:
                price = fetch_price(client, region, query_for(sku))
            except KeyError:
                price = None
            if price is None:
                result.missing.append(f"{region} {sku}")
                continue
            if price != entry["usd"]:
                result.changed[f"{region} {sku}"] = (entry["usd"], price)
            entry["usd"] = round(price, 8)
    updated["taken"] = today.isoformat()
    updated["source"] = SOURCE
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.price_list", description=__doc__)
    parser.add_argument("--region", action="append", required=True, help="AWS region (repeat)")
    parser.add_argument("--file", type=Path, default=PRICES_FILE, help="The price table")
    args = parser.parse_args(argv)
    try:
        import boto3
    except ImportError:
        print("boto3 is needed: pip install -e '.[dev]'", file=sys.stderr)
        return 1
    client = boto3.client("pricing", region_name=PRICING_API_REGION)
    result = refresh(
        client, json.loads(args.file.read_text()), args.region, today=datetime.date.today()
    )
    for key, (old, new) in sorted(result.changed.items()):
        print(f"{key}: {old} -> {new}")
    if result.missing:
        print(
            f"{len(result.missing)} SKU(s) the API did not answer; {args.file} left as it was:",
            *result.missing,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    args.file.write_text(dumps(result.document))
    print(f"wrote {args.file}: {len(result.changed)} price(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
