"""Feast configuration rendered from the settings contract; imports neither Feast nor pulumi.

The IaC side calls ``render_feature_store_yaml`` to fill the Feast ConfigMap and
``online_table_name`` to name the DynamoDB tables it provisions; the runtime calls the same
functions, so both halves agree on every name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runtime.settings import Settings

ONLINE_TABLE_NAME_TEMPLATE = "{project}.{table_name}"
"""Feast's default DynamoDB table name template; the stack names its tables with it."""
PROVISIONED_DYNAMODB_STORE = "runtime.online_store.ProvisionedDynamoDBOnlineStore"
"""Feast online store type that uses tables the stack created and never creates or deletes any."""
REGISTRY_CACHE_TTL_SECONDS = 60
LOCAL_REGISTRY = "registry.db"
LOCAL_ONLINE_STORE = "online_store.db"


def feast_project(settings: Settings) -> str:
    """The Feast project: declared in the feature store spec, else the team name in snake_case."""
    return settings.feature_store.project or settings.team.replace("-", "_")


def online_table_name(settings: Settings, feature_view: str) -> str:
    """The DynamoDB table that holds ``feature_view``'s online values."""
    return ONLINE_TABLE_NAME_TEMPLATE.format(
        project=feast_project(settings), table_name=feature_view
    )


def feast_repo_path(settings: Settings) -> Path:
    """Local folder Feast runs in (holds feature_store.yaml and, embedded, its databases)."""
    return settings.home.resolve() / "feast"


def offline_root(settings: Settings) -> str:
    """Root of the offline store: ``offline_store_uri`` or a folder in ``home``."""
    if settings.offline_store_uri:
        return settings.offline_store_uri.rstrip("/")
    return str(settings.home.resolve() / "offline")


def feature_store_config(settings: Settings) -> dict[str, Any]:
    """The content of ``feature_store.yaml`` for ``settings`` as a plain dict."""
    return {
        "project": feast_project(settings),
        "provider": "aws" if settings.online_store == "dynamodb" else "local",
        "registry": _registry(settings),
        "online_store": _online_store(settings),
        "offline_store": {"type": "dask"},
        "entity_key_serialization_version": 3,
    }


def render_feature_store_yaml(settings: Settings) -> str:
    """``feature_store.yaml`` for ``settings`` (e.g. the data of the Feast ConfigMap)."""
    return yaml.safe_dump(feature_store_config(settings), sort_keys=False)


def _registry(settings: Settings) -> dict[str, Any]:
    uri = settings.feast_registry_uri
    if uri is None:
        return {"path": LOCAL_REGISTRY, "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS}
    if uri.startswith(("postgresql://", "postgresql+")):
        # psycopg2 is what the image ships; Feast would otherwise rewrite to psycopg (3).
        if uri.startswith("postgresql://"):
            uri = "postgresql+psycopg2://" + uri.removeprefix("postgresql://")
        return {
            "registry_type": "sql",
            "path": uri,
            "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS,
            "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
        }
    return {"path": uri, "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS}


def _online_store(settings: Settings) -> dict[str, Any]:
    if settings.online_store == "dynamodb":
        store: dict[str, Any] = {
            "type": PROVISIONED_DYNAMODB_STORE,
            "region": settings.aws_region,
            "table_name_template": ONLINE_TABLE_NAME_TEMPLATE,
        }
        if settings.aws_endpoint_url:
            store["endpoint_url"] = settings.aws_endpoint_url
        return store
    return {"type": "sqlite", "path": LOCAL_ONLINE_STORE}
