"""Every alarm of a team's stack, planned from its config and the real resource names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.config.featurestore import FeatureStoreConfig
from components.config.monitoring import MonitoringConfig
from components.config.registry import Database
from components.config.serving import RealtimeEndpoint
from components.config.training import TrainingPipeline
from components.monitoring.alarms.continuous import continuous_training_alarms
from components.monitoring.alarms.database import RDS_NAMESPACE, database_alarms
from components.monitoring.alarms.drift import drift_alarms, drift_window
from components.monitoring.alarms.features import feature_alarms
from components.monitoring.alarms.online_store import DYNAMODB_NAMESPACE, online_store_alarms
from components.monitoring.alarms.sagemaker import SAGEMAKER_NAMESPACE, sagemaker_alarms
from components.monitoring.alarms.serving import serving_alarms
from components.monitoring.alarms.spec import AlarmSpec, within_limits
from components.monitoring.alarms.training import training_alarms
from components.team import Team

# AWS's own metrics for the resources the data plane runs on.
AWS_NAMESPACES = (RDS_NAMESPACE, DYNAMODB_NAMESPACE, SAGEMAKER_NAMESPACE)


def plan_alarms(
    *,
    team: Team,
    config: MonitoringConfig,
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
    feature_store: FeatureStoreConfig,
    database: Database,
    database_instance_id: pulumi.Input[str],
    online_table_names: Mapping[str, pulumi.Input[str]],
) -> list[AlarmSpec]:
    """Every alarm of a team's stack, in a stable order."""
    alarms = [
        *serving_alarms(team=team, config=config, endpoints=endpoints),
        *sagemaker_alarms(team=team, config=config, endpoints=endpoints),
        *drift_alarms(team=team, config=config, endpoints=endpoints, pipelines=pipelines),
        *training_alarms(
            team=team,
            config=config,
            pipelines=pipelines,
            served_models={e.model for e in endpoints},
            drift=drift_window(config),
        ),
        *continuous_training_alarms(team=team, config=config, pipelines=pipelines),
        *feature_alarms(team=team, feature_store=feature_store),
        *database_alarms(team=team, database=database, database_instance_id=database_instance_id),
        *online_store_alarms(team=team, online_table_names=online_table_names),
    ]
    for alarm in alarms:  # a planning mistake, caught before any engine sees it
        for query in alarm.queries:
            if not within_limits(query.period, alarm.evaluation_periods):
                raise ValueError(f"alarm {alarm.key}: evaluation range beyond CloudWatch's limit")
    return alarms
