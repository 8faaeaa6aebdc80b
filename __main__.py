"""The Pulumi program: read the stack config once, validate it, build the team's platform."""

from __future__ import annotations

import pulumi

from components.budget import CostModel
from components.cluster import ClusterReference
from components.config import parse_stack_config
from components.config.featurestore import SqlRegistry
from components.config.serving import RealtimeEndpoint
from components.featurestore import FeatureStore, FeatureStoreArgs
from components.image import RuntimeRepository
from components.monitoring import Monitoring, MonitoringArgs
from components.monitoring.alarms.sagemaker import rollback_keys
from components.monitoring.notifications import expected_topic_arn
from components.namespace import TeamNamespace
from components.network import TeamNetwork, TeamNetworkArgs
from components.program import load_config
from components.registry import ModelRegistry, ModelRegistryArgs
from components.serving import ServingEndpoint, ServingEndpointArgs
from components.storage import DATA_KEY_SERVICES, AccessLogs, DataKey, KeyAccess, LoggedBucket
from components.team import DataPlane, Team
from components.training import TrainingCompute, TrainingComputeArgs

loaded = load_config(
    lambda engine: parse_stack_config(
        engine.values, file=engine.file, stack=engine.stack, decrypted_keys=engine.secret_keys
    )
)
config = loaded.config
team = Team.of(config, loaded.region)

cluster = ClusterReference("cluster", config.cluster).info
namespace = TeamNamespace("team", team=team, cluster=cluster, quota=config.training.quota)
# Teams share the cluster: the namespace is closed but for the flows its workloads need.
TeamNetwork(
    "network",
    TeamNetworkArgs(
        team=team,
        cluster=cluster,
        namespace=namespace.name,
        config=config.network,
        endpoints=config.serving.endpoints,
    ),
)

# --- data plane: feature store and model registry (components/featurestore.py, registry.py) ---
data_key = DataKey("data-key", team=team) if config.feature_store.customer_managed_key else None

# --- runtime image (components/image.py): every workload below runs `mlops:image`, or else
# the stack's own repository's `:dev`, never a public registry's ---
image_repository = RuntimeRepository(
    "image", team=team, kms_key_arn=data_key.arn if data_key else None
)
team = Team.of(config, loaded.region, default_image=image_repository.default_image)
pulumi.export("imageRepository", image_repository.repository_url)
pulumi.export("image", team.image)

registry = ModelRegistry(
    "registry",
    ModelRegistryArgs(
        config=config.registry,
        team=team,
        cluster=cluster,
        namespace=namespace.name,
        kms_key_arn=data_key.arn if data_key else None,
        feast_registry=isinstance(config.feature_store.registry, SqlRegistry),
        # SageMaker variants reach MLflow through an internal NLB (not the cluster's DNS).
        sagemaker_access=any(
            isinstance(e, RealtimeEndpoint) and e.on_sagemaker for e in config.serving.endpoints
        ),
    ),
)
feature_store = FeatureStore(
    "features",
    FeatureStoreArgs(
        config=config.feature_store,
        project=config.feast_project,
        team=team,
        cluster=cluster,
        namespace=namespace.name,
        kms_key_arn=data_key.arn if data_key else None,
        registry_database=registry.feast_database,
    ),
)
data_plane = DataPlane(
    offline_bucket=feature_store.offline_bucket,
    offline_bucket_arn=feature_store.offline_bucket_arn,
    online_table_arns=feature_store.online_table_arns,
    online_table_names=feature_store.online_table_names,
    artifact_bucket=registry.artifact_bucket,
    artifact_bucket_arn=registry.artifact_bucket_arn,
    kms_key_arns=pulumi.Output.all(*([data_key.arn] if data_key else [])).apply(list),
    database_instance_id=registry.database_instance_id,
    # Set only for a SQL Feast registry: then every pod that opens Feast needs the login.
    feast_registry_database=feature_store.registry_database,
    settings={
        **feature_store.settings,
        "tracking_uri": registry.tracking_uri,
        "artifact_uri": registry.artifact_uri,
    },
)
pulumi.export("offlineBucket", feature_store.offline_bucket)
pulumi.export("onlineTables", feature_store.online_table_names)
pulumi.export("featureRegistry", feature_store.registry_uri)
pulumi.export("artifactBucket", registry.artifact_bucket)
pulumi.export("featureReaderPolicy", feature_store.reader_policy)
pulumi.export("trackingUri", registry.tracking_uri)
pulumi.export("databaseEndpoint", registry.database_endpoint)

# --- compute: training and serving (components/training.py, components/serving.py) ---
training = TrainingCompute(
    "training",
    TrainingComputeArgs(
        team=team,
        cluster=cluster,
        namespace=namespace.name,
        data_plane=data_plane,
        training=config.training,
        # The monitoring component makes the topic; its name is known now.
        alert_topic_arn=expected_topic_arn(team),
    ),
)
# --- monitoring (components/monitoring/), before the endpoints: a SageMaker endpoint's
# deployments roll back on its alarms ---
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        team=team,
        cluster=cluster,
        namespace=namespace.name,
        data_plane=data_plane,
        config=config.monitoring,
        endpoints=config.serving.endpoints,
        pipelines=config.training.pipelines,
        feature_store=config.feature_store,
        database=config.registry.database,
        key_administrators=config.key_administrators,
        training_role_name=training.role_name,
        training_role_arn=training.role_arn,
    ),
)
pulumi.export("alertTopicArn", monitoring.topic_arn)
pulumi.export("dashboardName", monitoring.dashboard_name)

endpoints = {
    endpoint.name: ServingEndpoint(
        f"endpoint-{endpoint.name}",
        ServingEndpointArgs(
            team=team,
            cluster=cluster,
            namespace=namespace.name,
            data_plane=data_plane,
            endpoint=endpoint,
            repository_arn=image_repository.repository_arn,
            sagemaker_tracking_uri=registry.sagemaker_tracking_uri,
            registry_load_balancer_security_group_id=registry.sagemaker_security_group_id,
            rollback_alarms=[
                monitoring.alarms[key].name
                for key in (
                    rollback_keys(endpoint) if isinstance(endpoint, RealtimeEndpoint) else []
                )
                if key in monitoring.alarms
            ],
        ),
    )
    for endpoint in config.serving.endpoints  # sorted by name: the config is canonical
}
pulumi.export("trainingRoleArn", training.role_arn)
pulumi.export("nodeGroups", training.node_groups)
pulumi.export(
    "endpoints",
    {name: e.service_name for name, e in endpoints.items() if e.service_name is not None},
)


# --- who may use the data, and who did (components/storage.py) ---
if data_key is not None:
    # The data key: its administrators, and exactly the team's workload roles.
    KeyAccess(
        "data-key-access",
        key_id=data_key.key_id,
        team=team,
        administrators=config.key_administrators,
        users=[
            training.role_arn,
            registry.server_role_arn,
            registry.bootstrap_role_arn,
            feature_store.writer_role_arn,
            *(endpoint.role_arn for endpoint in endpoints.values()),
            *([monitoring.drift_role_arn] if monitoring.drift_role_arn is not None else []),
        ],
        services=DATA_KEY_SERVICES,
    )
# Every request to the data buckets, in a log bucket of the stack.
access_logs = AccessLogs(
    "access-logs",
    team=team,
    sources={
        "features": LoggedBucket(feature_store.offline_bucket, feature_store.offline_bucket_arn),
        "models": LoggedBucket(registry.artifact_bucket, registry.artifact_bucket_arn),
    },
)
pulumi.export("accessLogBucket", access_logs.bucket)

# --- cost (components/budget.py): the budget and usage assumptions, for the policy pack ---
CostModel("cost", region=loaded.region, budget=config.budget, usage=config.usage)

pulumi.export("team", team.name)
pulumi.export("environment", str(team.environment))
pulumi.export("namespace", namespace.name)
