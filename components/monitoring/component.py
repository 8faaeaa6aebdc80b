"""`mlops:monitoring:Monitoring`: the component that makes the topic, the alarms, the dashboard and
the drift monitors of a team's stack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.config.featurestore import FeatureStoreConfig
from components.config.monitoring import MonitoringConfig
from components.config.registry import Database
from components.config.resources import ContainerResources
from components.config.training import TrainingPipeline
from components.monitoring.alarms.plan import plan_alarms
from components.monitoring.alarms.serving import realtime_endpoints
from components.monitoring.alarms.spec import AlarmSpec
from components.monitoring.dashboard import DASHBOARD_NAME_MAX, dashboard_body
from components.monitoring.drift_monitor import DRIFT_MONITOR_RESOURCES, drift_monitors
from components.monitoring.notifications import CLOUDWATCH, alert_topic, notify_policy
from components.storage import KeyAccess
from components.team import ClusterInfo, DataPlane, Team


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team's Kubernetes namespace (the drift monitor runs there)."""
    data_plane: DataPlane
    config: MonitoringConfig
    endpoints: Sequence[object]
    """The serving endpoints (batch ones have no alarms here)."""
    pipelines: Sequence[TrainingPipeline]
    feature_store: FeatureStoreConfig
    database: Database
    topic_key_arn: pulumi.Input[str] | None = None
    """A customer-managed key for the topic whose policy lets cloudwatch.amazonaws.com use it;
    None: the component creates one."""
    drift_monitor_resources: ContainerResources = field(
        default_factory=lambda: DRIFT_MONITOR_RESOURCES
    )
    key_administrators: Sequence[str] = ()
    """Who administers the topic's own key (`mlops:keyAdministrators`; none: the account)."""
    training_role_name: pulumi.Input[str] | None = None
    training_role_arn: pulumi.Input[str] | None = None
    """The training role: with continuous training it tells the topic what it decided."""


class Monitoring(pulumi.ComponentResource):
    """Alarms on every endpoint, pipeline, feature view and data store, paging one topic."""

    topic_arn: pulumi.Output[str]
    """The SNS topic every alarm and the canary guard notify."""
    dashboard_name: pulumi.Output[str]
    """The team's CloudWatch dashboard."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Alarm key (e.g. `serving-scorer-p99-latency`) -> alarm."""
    drift_role_arn: pulumi.Output[str] | None
    """IRSA role of the drift monitors (None without a real-time endpoint)."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        team, data = args.team, args.data_plane
        endpoints = realtime_endpoints(args.endpoints)

        # The one topic every alarm and the canary guard page, with its key and subscriptions.
        alerts = alert_topic(
            name, team=team, config=args.config, key_arn=args.topic_key_arn, parent=self
        )
        topic = alerts.topic
        self.topic_arn = topic.arn

        # Alarms on the real dimensions: endpoint names, the database instance, table names.
        specs = plan_alarms(
            team=team,
            config=args.config,
            endpoints=endpoints,
            pipelines=args.pipelines,
            feature_store=args.feature_store,
            database=args.database,
            database_instance_id=data.database_instance_id,
            online_table_names=data.online_table_names,
        )
        self.alarms = {spec.key: self._alarm(name, spec, team, topic.arn, child) for spec in specs}

        # One page that shows the same metrics the alarms watch.
        body = dashboard_body(
            team=team,
            config=args.config,
            endpoints=endpoints,
            pipelines=args.pipelines,
            feature_store=args.feature_store,
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=team.physical("mlops", DASHBOARD_NAME_MAX),
            dashboard_body=json.dumps(body),
            opts=child,
        )
        self.dashboard_name = dashboard.dashboard_name

        publishers: list[pulumi.Input[str]] = []
        self.drift_role_arn = None
        if endpoints:
            drift_role = drift_monitors(
                name,
                team=team,
                cluster=args.cluster,
                namespace=args.namespace,
                data=data,
                drift=args.config.drift,
                endpoints=endpoints,
                pipelines=args.pipelines,
                resources=args.drift_monitor_resources,
                topic_arn=topic.arn,
                topic_key_arn=alerts.key_arn,
                parent=self,
            )
            publishers.append(drift_role)
            self.drift_role_arn = drift_role
        continuous = any(p.continuous_training is not None for p in args.pipelines)
        if continuous and args.training_role_name is not None:
            # Continuous training's decisions (triggered, skipped, trained, ...) as notices.
            aws.iam.RolePolicy(
                f"{name}-training-notify",
                role=args.training_role_name,
                policy=pulumi.Output.all(topic.arn, alerts.key_arn).apply(
                    lambda v: json.dumps(notify_policy(v[0], v[1]))
                ),
                opts=child,
            )
            if args.training_role_arn is not None:
                publishers.append(args.training_role_arn)
        if alerts.key is not None:
            # The topic's key: its administrators, the roles that publish, and CloudWatch alarms.
            KeyAccess(
                f"{name}-key-access",
                key_id=alerts.key.key_id,
                team=team,
                administrators=args.key_administrators,
                users=publishers,
                service_principals=[CLOUDWATCH],
                opts=child,
            )

        self.register_outputs(
            {
                "topicArn": self.topic_arn,
                "dashboardName": self.dashboard_name,
                "alarmNames": [a.name for a in self.alarms.values()],
            }
        )

    def _alarm(
        self,
        name: str,
        spec: AlarmSpec,
        team: Team,
        topic_arn: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> aws.cloudwatch.MetricAlarm:
        common: dict[str, Any] = dict(
            name=team.physical(spec.key, naming.ALARM_NAME_MAX),
            alarm_description=spec.description,
            comparison_operator=spec.comparison.value,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints,
            treat_missing_data=spec.missing.value,
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=team.tags,
            opts=opts,
        )
        if spec.expression is None:
            (query,) = spec.queries
            percentile = query.stat.startswith("p")
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                namespace=query.namespace,
                metric_name=query.metric,
                dimensions=dict(query.dimensions),
                period=query.period,
                statistic=None if percentile else query.stat,
                extended_statistic=query.stat if percentile else None,
                # Too few requests for a percentile: keep the state rather than guess.
                evaluate_low_sample_count_percentiles="ignore" if percentile else None,
                **common,
            )
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}",
            metric_queries=[
                *(
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id=q.id,
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace=q.namespace,
                            metric_name=q.metric,
                            dimensions=dict(q.dimensions),
                            period=q.period,
                            stat=q.stat,
                        ),
                        return_data=False,
                    )
                    for q in spec.queries
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="alarm",
                    expression=spec.expression,
                    label=spec.summary[:255],
                    return_data=True,
                ),
            ],
            **common,
        )
