"""Feast DynamoDB online store over tables the stack provisioned.

Feast's own store already skips CreateTable when a table exists, but it still reconciles tags
(removing the stack's tags that feature_store.yaml does not repeat) and deletes the tables of
removed feature views. Here the infrastructure owns the tables: apply only checks they exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from botocore.exceptions import ClientError
from feast import Entity, FeatureView
from feast.infra.online_stores.dynamodb import (
    DynamoDBOnlineStore,
    DynamoDBOnlineStoreConfig,
    _get_table_name,
)
from feast.repo_config import RepoConfig

from runtime.errors import ConfigurationError

_log = logging.getLogger(__name__)


class ProvisionedDynamoDBOnlineStoreConfig(DynamoDBOnlineStoreConfig):
    """DynamoDB online store config whose tables are created by the stack, never by Feast."""

    type: Literal["runtime.online_store.ProvisionedDynamoDBOnlineStore"] = (  # type: ignore[assignment]
        "runtime.online_store.ProvisionedDynamoDBOnlineStore"
    )


class ProvisionedDynamoDBOnlineStore(DynamoDBOnlineStore):
    """Reads and writes like Feast's DynamoDB store; never creates, tags or deletes a table."""

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        online_config = config.online_store
        client = self._get_dynamodb_client(
            online_config.region, online_config.endpoint_url, online_config.session_based_auth
        )
        missing = []
        for view in tables_to_keep:
            table = _get_table_name(online_config, config, view)
            try:
                client.describe_table(TableName=table)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                missing.append(table)
        if missing:
            raise ConfigurationError(
                f"the DynamoDB online table(s) {', '.join(sorted(missing))} do not exist in "
                f"{online_config.region}; the stack provisions one table per online feature view "
                "(named <project>.<feature_view>): add the feature view to the stack config and "
                "run `pulumi up` before materializing"
            )
        for view in tables_to_delete:
            _log.info(
                "feature view %s removed; its table %s is left to the stack",
                view.name,
                _get_table_name(online_config, config, view),
            )

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        _log.info("online tables belong to the stack; teardown leaves them in place")
