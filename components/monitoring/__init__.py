"""`mlops:monitoring:Monitoring`: who gets paged, by which alarms on which real resources.

Alarms are planned as plain data first (``plan_alarms``, unit-tested without mocks), then created
directly, never inside ``apply``, so that a preview shows every one of them. Metric names, units,
dimensions and the namespace come from the runtime's catalogue (``runtime.metrics``); the only
names typed here are AWS's own (``AWS/RDS``, ``AWS/DynamoDB``).

`alarms/` has a module per kind of source (serving, drift, training, features, database, online
store) and `alarms/spec.py` what an alarm is; `notifications.py` the topic, `dashboard.py` the
dashboard, `drift_monitor.py` the drift monitor's CronJobs, `component.py` the component.
"""

from components.monitoring.alarms.database import (
    CONNECTIONS_FRACTION,
    FREE_STORAGE_FRACTION,
    RDS_DIMENSION,
    RDS_NAMESPACE,
    instance_memory_gib,
    postgres_max_connections,
)
from components.monitoring.alarms.drift import feature_drift_alarms
from components.monitoring.alarms.features import freshness_limit
from components.monitoring.alarms.online_store import DYNAMODB_DIMENSION, DYNAMODB_NAMESPACE
from components.monitoring.alarms.plan import AWS_NAMESPACES, plan_alarms
from components.monitoring.alarms.serving import (
    MIN_REQUESTS_FOR_ERROR_RATE,
    NO_TRAFFIC_WINDOW,
    realtime_endpoints,
)
from components.monitoring.alarms.spec import (
    DESCRIPTION_MAX,
    MAX_EVALUATION_RANGE,
    MAX_SHORT_PERIOD_RANGE,
    SENSITIVITY,
    AlarmSpec,
    Comparison,
    MetricQuery,
    MissingData,
    Sensitivity,
    Window,
    window,
    within_limits,
)
from components.monitoring.alarms.training import FAILED_RUN_PERIOD
from components.monitoring.component import Monitoring, MonitoringArgs
from components.monitoring.dashboard import DASHBOARD_NAME_MAX, dashboard_body
from components.monitoring.drift_monitor import (
    DRIFT_MONITOR_MAX_RUNTIME,
    DRIFT_MONITOR_RESOURCES,
    DRIFT_MONITOR_SERVICE_ACCOUNT,
    drift_monitor_policy,
)
from components.monitoring.notifications import CLOUDWATCH, TOPIC_NAME_MAX, topic_name

__all__ = [
    "AWS_NAMESPACES",
    "CLOUDWATCH",
    "CONNECTIONS_FRACTION",
    "DASHBOARD_NAME_MAX",
    "DESCRIPTION_MAX",
    "DRIFT_MONITOR_MAX_RUNTIME",
    "DRIFT_MONITOR_RESOURCES",
    "DRIFT_MONITOR_SERVICE_ACCOUNT",
    "DYNAMODB_DIMENSION",
    "DYNAMODB_NAMESPACE",
    "FAILED_RUN_PERIOD",
    "FREE_STORAGE_FRACTION",
    "MAX_EVALUATION_RANGE",
    "MAX_SHORT_PERIOD_RANGE",
    "MIN_REQUESTS_FOR_ERROR_RATE",
    "NO_TRAFFIC_WINDOW",
    "RDS_DIMENSION",
    "RDS_NAMESPACE",
    "SENSITIVITY",
    "TOPIC_NAME_MAX",
    "AlarmSpec",
    "Comparison",
    "MetricQuery",
    "MissingData",
    "Monitoring",
    "MonitoringArgs",
    "Sensitivity",
    "Window",
    "dashboard_body",
    "drift_monitor_policy",
    "feature_drift_alarms",
    "freshness_limit",
    "instance_memory_gib",
    "plan_alarms",
    "postgres_max_connections",
    "realtime_endpoints",
    "topic_name",
    "window",
    "within_limits",
]
