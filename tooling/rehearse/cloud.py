"""The cloud's stand-ins: the plan's buckets, tables and topics in a local moto server, a fresh
database in the local PostgreSQL, moto's fake keys for the pods."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tooling.plan import Plan
from tooling.rehearse.net import free_port, http_status, wait_for


def cloud_resources(plan: Plan) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """The buckets, DynamoDB tables (create_table arguments) and SNS topics the stack creates."""
    buckets = sorted(
        str(r.outputs["bucket"])
        for r in plan.resources
        if r.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2") and not r.read
    )
    tables = []
    for table in plan.of_type("aws:dynamodb/table:Table"):
        inputs = table.inputs
        tables.append(
            {
                "TableName": inputs["name"],
                "KeySchema": [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": a["name"], "AttributeType": a["type"]}
                    for a in inputs["attributes"]
                ],
                "BillingMode": "PAY_PER_REQUEST",
            }
        )
    topics = sorted(str(r.outputs["name"]) for r in plan.of_type("aws:sns/topic:Topic"))
    return buckets, tables, topics


def database_name(stack: str) -> str:
    return f"mlops_rehearsal_{stack.replace('-', '_')}"


def start_moto(folder: Path) -> tuple[int, str]:
    """A moto server in its own session (it outlives `--keep`); returns its pid and endpoint."""
    port = free_port()
    log = (folder / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_status(f"{endpoint}/moto-api/data.json") == 200, timeout=60, what="moto")
    return process.pid, endpoint


def create_cloud(plan: Plan, endpoint: str, region: str) -> list[str]:
    """Create the stack's buckets, tables and topics in moto; what was created, for the report."""
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, **keys)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **keys)
    sns = boto3.client("sns", endpoint_url=endpoint, region_name=region, **keys)
    buckets, tables, topics = cloud_resources(plan)
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket, **location)
    for table in tables:
        dynamodb.create_table(**table)
    for topic in topics:
        sns.create_topic(Name=topic)
    return [*(f"s3://{b}" for b in buckets), *(t["TableName"] for t in tables), *topics]


def fresh_database(admin_uri: str, name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(admin_uri)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def drop_database(admin_uri: str, name: str) -> None:
    import psycopg2

    try:
        connection = psycopg2.connect(admin_uri)
    except psycopg2.Error:
        return
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


def write_credentials(folder: Path) -> Path:
    """moto's fake keys, readable by the runtime user (UID 10001) through a read-only mount."""
    credentials = folder / "aws"
    credentials.mkdir(exist_ok=True)
    (credentials / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o755)
    (credentials / "credentials").chmod(0o644)
    return credentials
