"""Monitoring: alarms bound to the real resources, a dashboard drawn from the metric catalogue,
the drift monitor; every planned alarm replayed through the CloudWatch API (moto)."""

from __future__ import annotations

import functools
import json
import os
from datetime import timedelta
from typing import Any

import boto3
import botocore.session
import pytest

from components import naming
from components.config import Environment, LoadedStack, load_stack_file
from components.config.serving import RealtimeEndpoint
from components.monitoring import (
    AWS_NAMESPACES,
    DYNAMODB_DIMENSION,
    RDS_DIMENSION,
    MissingData,
    Window,
    dashboard_body,
    feature_drift_alarms,
    freshness_limit,
    instance_memory_gib,
    postgres_max_connections,
    window,
    within_limits,
)
from components.team import Team
from runtime import metrics
from runtime.settings import Settings
from tests.conftest import STACKS, planned
from tooling.manifests import manifests as manifests_of
from tooling.manifests import schema_errors
from tooling.plan import Plan, PlannedResource

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
CRONJOB = "kubernetes:batch/v1:CronJob"
MONITORING = "mlops:monitoring:Monitoring"
EXAMPLES = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS.glob("*.yaml")
)


def plan_of(stack: str) -> Plan:
    """The real program's plan of an example stack (computed once per session)."""
    return planned(stack)


@functools.cache
def loaded(stack: str) -> LoadedStack:
    return load_stack_file(STACKS / f"Pulumi.{stack}.yaml")


def team_of(stack: str) -> Team:
    return Team.of(loaded(stack).config, loaded(stack).region)


def alarms(plan: Plan) -> dict[str, dict[str, Any]]:
    """Alarm key (the role after `monitoring-`) -> planned inputs."""
    return {r.name.removeprefix("monitoring-"): r.inputs for r in owned(plan, ALARM)}


def watched(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """(namespace, metric, dimensions, stat) of every metric an alarm reads."""
    if "metricQueries" not in alarm:
        stat = alarm.get("statistic") or alarm["extendedStatistic"]
        return [(alarm["namespace"], alarm["metricName"], alarm.get("dimensions", {}), stat)]
    return [
        (
            q["metric"]["namespace"],
            q["metric"]["metricName"],
            q["metric"]["dimensions"],
            q["metric"]["stat"],
        )
        for q in alarm["metricQueries"]
        if "metric" in q
    ]


def owned(plan: Plan, type_: str | None = None) -> list[PlannedResource]:
    """Resources under the Monitoring component (children and their children)."""
    (component,) = plan.of_type(MONITORING)
    parents: set[str] = {component.urn}
    while True:  # to a fixed point: registrations are recorded as they complete, in any order
        more = {r.urn for r in plan.resources if r.parent in parents} - parents
        if not more:
            break
        parents |= more
    found = [r for r in plan.resources if r.urn in parents - {component.urn}]
    return [r for r in found if type_ is None or r.type == type_]


def topic_arn(plan: Plan) -> str:
    (topic,) = owned(plan, TOPIC)
    return str(topic.outputs["arn"])


# --- planning arithmetic, no mocks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "every", "expected"),
    [
        pytest.param(timedelta(minutes=15), True, Window(900, 1, 1), id="short"),
        pytest.param(timedelta(seconds=90), True, Window(120, 1, 1), id="rounded-to-minutes"),
        pytest.param(timedelta(days=1), True, Window(86400, 1, 1), id="one-day"),
        pytest.param(timedelta(days=3), True, Window(3600, 72, 72), id="days-all-periods"),
        pytest.param(timedelta(days=3), False, Window(3600, 72, 1), id="days-any-period"),
        pytest.param(timedelta(days=14), True, Window(3600, 168, 168), id="capped-at-7-days"),
    ],
)
def test_window_fits_cloudwatch_limits(length: timedelta, every: bool, expected: Window) -> None:
    assert window(length, every_period=every) == expected
    assert within_limits(expected.period, expected.evaluation_periods)


def test_evaluation_limits() -> None:
    assert within_limits(300, 288)  # one day of 5-minute periods
    assert not within_limits(300, 289)
    assert within_limits(3600, 168)
    assert not within_limits(3600, 169)
    assert not within_limits(90, 1)


@pytest.mark.parametrize(
    ("instance_class", "memory", "connections"),
    [
        pytest.param("db.t4g.micro", 1, 95, id="t4g.micro"),
        pytest.param("db.t4g.medium", 4, 383, id="t4g.medium"),
        pytest.param("db.r6g.large", 16, 1532, id="r6g.large"),
        pytest.param("db.r6g.xlarge", 32, 3064, id="r6g.xlarge"),
        pytest.param("db.r6g.4xlarge", 128, 5000, id="capped"),
        pytest.param("db.q9.large", None, 100, id="unknown-family"),
    ],
)
def test_postgres_max_connections(
    instance_class: str, memory: float | None, connections: int
) -> None:
    assert instance_memory_gib(instance_class) == memory
    assert postgres_max_connections(instance_class) == connections


def test_freshness_limit_defaults_to_two_materialization_periods() -> None:
    assert freshness_limit(None, "*/30 * * * *") == timedelta(hours=1)
    assert freshness_limit(timedelta(hours=5), "*/30 * * * *") == timedelta(hours=5)


def test_feature_drift_alarms_follow_the_pipeline_of_the_endpoints_model() -> None:
    config = loaded("fraud-prod").config
    endpoints = [e for e in config.serving.endpoints if isinstance(e, RealtimeEndpoint)]
    found = feature_drift_alarms(
        {"avg_amount_7d": 0.1, "not_a_feature": 0.3}, endpoints, config.training.pipelines
    )
    assert found == [("scorer", "avg_amount_7d", 0.1)]


# --- the planned alarms of every example stack ----------------------------------------------------


@pytest.mark.parametrize("stack", EXAMPLES)
def test_each_realtime_endpoint_has_its_alarms(stack: str) -> None:
    config, team = loaded(stack).config, team_of(stack)
    planned = alarms(plan_of(stack))
    namespace = metrics.namespace(team.name)
    for e in config.serving.endpoints:
        if not isinstance(e, RealtimeEndpoint):
            assert not [key for key in planned if e.name in key]
            continue
        champion = {"Endpoint": e.name, "Variant": metrics.VARIANT_CHAMPION}
        latency = planned[f"serving-{e.name}-p99-latency"]
        assert watched(latency) == [(namespace, metrics.PREDICTION_LATENCY.name, champion, "p99")]
        assert latency["threshold"] == e.slo.p99_latency_ms

        errors = planned[f"serving-{e.name}-error-rate"]
        assert errors["threshold"] == e.slo.max_error_rate
        assert sorted(watched(errors)) == [
            (namespace, metrics.PREDICTION_ERRORS.name, champion, "Sum"),
            (namespace, metrics.PREDICTIONS.name, champion, "Sum"),
        ]
        expression = [q for q in errors["metricQueries"] if q.get("returnData")]
        assert [
            "errors" in q["expression"] and "requests" in q["expression"] for q in expression
        ] == [True]

        canary = planned.get(f"serving-{e.name}-canary-error-rate")
        if e.canary is None:
            assert canary is None
        else:
            assert canary is not None
            challenger = {"Endpoint": e.name, "Variant": metrics.VARIANT_CHALLENGER}
            assert {w[2]["Variant"] for w in watched(canary)} == {challenger["Variant"]}

        traffic = planned.get(f"serving-{e.name}-no-traffic")
        assert (traffic is not None) == config.monitoring.no_traffic_alarm
        if traffic:
            assert watched(traffic) == [(namespace, metrics.PREDICTIONS.name, champion, "Sum")]
            assert traffic["treatMissingData"] == MissingData.breaching

        drift = planned[f"drift-{e.name}"]
        assert watched(drift) == [
            (namespace, metrics.MAX_FEATURE_DRIFT.name, {"Endpoint": e.name}, "Maximum")
        ]
        assert drift["threshold"] == config.monitoring.drift.psi_threshold


def test_prod_pages_on_no_traffic_and_dev_does_not() -> None:
    assert "serving-scorer-no-traffic" in alarms(plan_of("fraud-prod"))
    assert "serving-scorer-no-traffic" not in alarms(plan_of("fraud-dev"))
    # prod pages after 3 bad minutes of 5; dev only after 15 minutes.
    prod = alarms(plan_of("fraud-prod"))["serving-scorer-p99-latency"]
    dev = alarms(plan_of("fraud-dev"))["serving-scorer-p99-latency"]
    assert (prod["period"], prod["evaluationPeriods"], prod["datapointsToAlarm"]) == (60, 5, 3)
    assert (dev["period"], dev["evaluationPeriods"], dev["datapointsToAlarm"]) == (300, 3, 3)


def test_configured_feature_thresholds_get_their_own_drift_alarm() -> None:
    planned = alarms(plan_of("fraud-prod"))
    alarm = planned["drift-scorer-avg_amount_7d"]
    assert watched(alarm) == [
        (
            "MLOps/fraud",
            metrics.FEATURE_DRIFT.name,
            {"Endpoint": "scorer", "Feature": "avg_amount_7d"},
            "Maximum",
        )
    ]
    assert alarm["threshold"] == 0.1
    assert not [key for key in alarms(plan_of("fraud-dev")) if key.startswith("drift-scorer-")]


@pytest.mark.parametrize("stack", EXAMPLES)
def test_each_pipeline_has_failed_and_missed_run_alarms(stack: str) -> None:
    config, team = loaded(stack).config, team_of(stack)
    planned = alarms(plan_of(stack))
    namespace = metrics.namespace(team.name)
    assert config.training.pipelines
    for p in config.training.pipelines:
        if p.continuous_training is not None:
            continue  # see test_continuous_training_alarms
        dims = {"Pipeline": p.name}
        failed = planned[f"training-{p.name}-failed-run"]
        assert watched(failed) == [(namespace, metrics.TRAINING_RUNS_FAILED.name, dims, "Sum")]
        assert (failed["comparisonOperator"], failed["threshold"]) == (
            "GreaterThanOrEqualToThreshold",
            1,
        )
        missed = planned[f"training-{p.name}-missed-run"]
        assert missed["treatMissingData"] == MissingData.breaching
        expected = (config.monitoring.missed_runs + 1) * naming.schedule_period(p.schedule)
        served = any(
            isinstance(e, RealtimeEndpoint) and e.model == p.model_name
            for e in config.serving.endpoints
        )
        if expected > timedelta(days=7) and served:
            # Beyond CloudWatch's look-back: the age of the newest version, from the drift monitor.
            assert watched(missed) == [(namespace, metrics.MODEL_AGE.name, dims, "Maximum")]
            assert missed["comparisonOperator"] == "GreaterThanThreshold"
            assert missed["threshold"] == expected.total_seconds()
            continue
        assert watched(missed) == [(namespace, metrics.TRAINING_RUNS_SUCCEEDED.name, dims, "Sum")]
        span = missed["period"] * missed["evaluationPeriods"]
        assert span == min(expected, timedelta(days=7)).total_seconds()
        assert missed["datapointsToAlarm"] == missed["evaluationPeriods"]


def test_continuous_training_alarms() -> None:
    """fraud-dev trains continuously: its job checks daily whether a retrain is due."""
    config, team = loaded("fraud-dev").config, team_of("fraud-dev")
    (p,) = config.training.pipelines
    ct = p.continuous_training
    assert ct is not None
    planned = alarms(plan_of("fraud-dev"))
    namespace, dims = metrics.namespace(team.name), {"Pipeline": p.name}

    # A plain failed run is not news of its own: the retrain that ran it says how it ended.
    assert f"training-{p.name}-failed-run" not in planned
    failed = planned[f"training-{p.name}-retrain-failed"]
    assert watched(failed) == [(namespace, metrics.RETRAIN_FAILURES.name, dims, "Sum")]
    assert (failed["comparisonOperator"], failed["threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert failed["treatMissingData"] == MissingData.not_breaching
    budget = planned[f"training-{p.name}-retrain-budget-exhausted"]
    assert watched(budget) == [(namespace, metrics.RETRAIN_BUDGET_REMAINING.name, dims, "Minimum")]
    assert (budget["comparisonOperator"], budget["threshold"]) == ("LessThanThreshold", 1)
    assert budget["period"] == naming.schedule_period(p.schedule).total_seconds()
    held = planned[f"training-{p.name}-held-too-long"]
    assert watched(held) == [(namespace, metrics.MODEL_HELD_SECONDS.name, dims, "Maximum")]
    assert (held["comparisonOperator"], held["threshold"]) == (
        "GreaterThanThreshold",
        ct.max_held.total_seconds(),
    )
    # The job runs to check, not to train: missed when no check reported anything.
    missed = planned[f"training-{p.name}-missed-run"]
    assert watched(missed) == [
        (namespace, metrics.RETRAIN_BUDGET_REMAINING.name, dims, "SampleCount")
    ]
    assert missed["treatMissingData"] == MissingData.breaching
    expected = (config.monitoring.missed_runs + 1) * naming.schedule_period(p.schedule)
    assert missed["period"] * missed["evaluationPeriods"] == expected.total_seconds()
    for alarm in (failed, budget, held, missed):
        assert f"mlops-runtime status {p.model_name}" in alarm["alarmDescription"] or (
            "--if-due" in alarm["alarmDescription"]
        )
    drawn = {
        line[1]
        for widget in _dashboard(plan_of("fraud-dev"))["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
    }
    assert {
        metrics.RETRAINS_TRIGGERED.name,
        metrics.RETRAIN_FAILURES.name,
        metrics.RETRAIN_BUDGET_REMAINING.name,
        metrics.MODEL_HELD_SECONDS.name,
    } <= drawn


@pytest.mark.parametrize("stack", EXAMPLES)
def test_each_online_feature_view_has_a_freshness_alarm(stack: str) -> None:
    config, team = loaded(stack).config, team_of(stack)
    planned = alarms(plan_of(stack))
    for view in config.feature_store.feature_views:
        alarm = planned.get(f"features-{view.name}-freshness")
        if not view.online:
            assert alarm is None
            continue
        assert alarm is not None
        assert watched(alarm) == [
            (
                metrics.namespace(team.name),
                metrics.FEATURE_FRESHNESS.name,
                {"FeatureView": view.name},
                "Maximum",
            )
        ]
        limit = view.max_staleness or 2 * naming.schedule_period(
            config.feature_store.materialization.schedule
        )
        assert alarm["threshold"] == limit.total_seconds()


def test_explicit_staleness_wins_over_the_default() -> None:
    planned = alarms(plan_of("fraud-prod"))
    assert planned["features-card_txn_stats-freshness"]["threshold"] == 2 * 3600
    assert planned["features-card_profile-freshness"]["threshold"] == 3600  # 2 x */30


def _instance_ids(plan: Plan) -> set[str]:
    return {str(r.outputs["identifier"]) for r in plan.of_type("aws:rds/instance:Instance")}


def _table_names(plan: Plan) -> set[str]:
    return {str(r.outputs["name"]) for r in plan.of_type("aws:dynamodb/table:Table")}


@pytest.mark.parametrize("stack", EXAMPLES)
def test_data_store_alarms_watch_the_real_instance_and_tables(stack: str) -> None:
    config = loaded(stack).config
    plan = plan_of(stack)
    planned = alarms(plan)
    instance = _instance_ids(plan)
    assert len(instance) == 1
    for key, metric in (
        ("registry-db-cpu", "CPUUtilization"),
        ("registry-db-storage", "FreeStorageSpace"),
        ("registry-db-connections", "DatabaseConnections"),
    ):
        ((namespace, name, dims, _),) = watched(planned[key])
        assert (namespace, name) == ("AWS/RDS", metric)
        assert {dims[RDS_DIMENSION]} == instance
    storage = planned["registry-db-storage"]["threshold"]
    assert storage == config.registry.database.storage_gb * 2**30 * 0.1

    online = [v.name for v in config.feature_store.feature_views if v.online]
    tables = {
        dims[DYNAMODB_DIMENSION]
        for key, alarm in planned.items()
        if key.startswith("online-")
        for _, _, dims, _ in watched(alarm)
    }
    expected = _table_names(plan)
    assert len(expected) == len(online)
    assert tables == expected
    assert sorted(k for k in planned if k.startswith("online-")) == sorted(
        f"online-{v}-throttles" for v in online
    )


@pytest.mark.parametrize("stack", EXAMPLES)
def test_every_alarm_reads_catalogued_metrics_and_pages_both_ways(stack: str) -> None:
    plan, team = plan_of(stack), team_of(stack)
    topic = topic_arn(plan)
    for key, alarm in alarms(plan).items():
        for namespace, name, dims, _ in watched(alarm):
            if namespace in AWS_NAMESPACES:
                continue
            assert namespace == metrics.namespace(team.name), key
            declared = metrics.BY_NAME[name]
            assert set(dims) == {str(d) for d in declared.dimensions}, key
        assert alarm["alarmActions"] == [topic], key
        assert alarm["okActions"] == [topic], key
        assert alarm["treatMissingData"] in set(MissingData), key
        assert ". Runbook: " in alarm["alarmDescription"], key
        assert alarm["name"].startswith(f"{team.stack}-") and len(alarm["name"]) <= 255
        periods = [alarm.get("period")] + [
            q["metric"]["period"] for q in alarm.get("metricQueries", []) if "metric" in q
        ]
        for period in filter(None, periods):
            assert within_limits(int(period), int(alarm["evaluationPeriods"])), key
    names = [a["name"] for a in alarms(plan).values()]
    assert len(names) == len(set(names))


# --- topic, dashboard, drift monitor --------------------------------------------------------------


@pytest.mark.parametrize("stack", EXAMPLES)
def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack: str) -> None:
    plan, config = plan_of(stack), loaded(stack).config
    (topic,) = owned(plan, TOPIC)
    (key,) = owned(plan, "aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    # Its policy comes once the publishing roles exist (KeyAccess): it names them and CloudWatch.
    (access,) = owned(plan, "aws:kms/keyPolicy:KeyPolicy")
    assert access.inputs["keyId"] == key.outputs["keyId"]
    statements = json.loads(access.inputs["policy"])["Statement"]
    assert {"Service": ["cloudwatch.amazonaws.com"]} in [s["Principal"] for s in statements]

    subscriptions = owned(plan, SUBSCRIPTION)
    emails = sorted(s.inputs["endpoint"] for s in subscriptions if s.inputs["protocol"] == "email")
    assert emails == sorted(config.monitoring.alert_emails)
    hooks = [s for s in subscriptions if s.inputs["protocol"] == "https"]
    assert len(hooks) == len(config.monitoring.alert_webhooks)
    assert all("endpoint" in s.secret_paths for s in hooks)
    assert plan.outputs["alertTopicArn"] == topic.outputs["arn"]


def _dashboard(plan: Plan) -> dict[str, Any]:
    (dashboard,) = owned(plan, DASHBOARD)
    return json.loads(dashboard.inputs["dashboardBody"])


@pytest.mark.parametrize("stack", EXAMPLES)
def test_dashboard_draws_only_catalogued_metrics(stack: str) -> None:
    plan, team, config = plan_of(stack), team_of(stack), loaded(stack).config
    body = _dashboard(plan)
    drawn: set[str] = set()
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == team.region
        for line in widget["properties"]["metrics"]:
            namespace, name, *rest = line
            pairs, _options = rest[:-1], rest[-1]
            assert namespace == metrics.namespace(team.name)
            declared = metrics.BY_NAME[name]
            assert set(pairs[0::2]) == {str(d) for d in declared.dimensions}
            drawn.add(name)
    realtime = [e for e in config.serving.endpoints if isinstance(e, RealtimeEndpoint)]
    assert (metrics.PREDICTION_LATENCY.name in drawn) == bool(realtime)
    assert metrics.TRAINING_RUNS_FAILED.name in drawn
    assert plan.outputs["dashboardName"] == f"{team.stack}-mlops"


@pytest.mark.parametrize("stack", EXAMPLES)
def test_drift_monitor_runs_per_realtime_endpoint_with_the_contract_env(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, config = plan_of(stack), loaded(stack).config
    realtime = [e for e in config.serving.endpoints if isinstance(e, RealtimeEndpoint)]
    jobs = {r.inputs["metadata"]["name"]: r.inputs for r in owned(plan, CRONJOB)}
    assert sorted(jobs) == sorted(f"drift-{e.name}" for e in realtime)
    for e in realtime:
        job = jobs[f"drift-{e.name}"]
        assert job["spec"]["schedule"] == config.monitoring.drift.schedule
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        threshold = str(config.monitoring.drift.psi_threshold)
        assert container["args"] == ["monitor", "--endpoint", e.name, "--psi-threshold", threshold]
        assert pod["serviceAccountName"] == "drift-monitor"
        # The runtime starts from exactly this env.
        for var in os.environ:
            if var.startswith("MLOPS_"):
                monkeypatch.delenv(var)
        for var in container["env"]:
            if var["name"].startswith("MLOPS_"):
                monkeypatch.setenv(var["name"], var["value"])
        settings = Settings()
        assert settings.endpoint is not None and settings.endpoint.name == e.name
        assert settings.alert_topic_arn == topic_arn(plan)
        assert settings.metrics_namespace == metrics.namespace(config.team)
        assert settings.metrics_sink == "cloudwatch"
        assert str(settings.prediction_log_uri).endswith(f"/prediction-logs/{e.name}/")
        continuous = any(
            p.continuous_training and p.model_name == e.model for p in config.training.pipelines
        )
        assert (settings.events_uri is not None) == continuous
        if continuous:
            assert settings.events_uri == f"s3://{plan.outputs['artifactBucket']}/ct-events/"
            assert [p.continuous_training for p in settings.pipelines] != [None]
    for obj in [r.inputs for r in owned(plan) if r.type.startswith("kubernetes:") and r.custom]:
        assert schema_errors(obj) == []


@pytest.mark.parametrize("stack", ["fraud-prod", "fraud-dev"])
def test_drift_monitor_may_do_exactly_its_job(stack: str) -> None:
    plan = plan_of(stack)
    (policy,) = [
        r
        for r in owned(plan, "aws:iam/rolePolicy:RolePolicy")
        if "training-notify" not in r.name  # the training role's, tested below
    ]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    data_keys = [
        str(r.outputs["arn"])
        for r in plan.of_type("aws:kms/key:Key")
        if r not in owned(plan, "aws:kms/key:Key")
    ]
    expected = {
        "ReadPredictionLogsAndModels": ["s3:GetObject"],
        "List1": ["s3:ListBucket"],
        "PublishMetrics": ["cloudwatch:PutMetricData"],
        "ReadCanaryErrorCounts": ["cloudwatch:GetMetricStatistics"],
        "NotifyCanaryRollback": ["sns:Publish"],
        "EncryptNotifications": ["kms:Decrypt", "kms:GenerateDataKey"],
    }
    if data_keys:  # prod encrypts its data with the team's key
        expected["DecryptData"] = ["kms:Decrypt"]
        assert statements["DecryptData"]["Resource"] == data_keys
    artifact_bucket = plan.outputs["artifactBucket"]
    continuous = [p for p in loaded(stack).config.training.pipelines if p.continuous_training]
    if continuous:  # it writes the decisions it takes (promote, roll back) to the event log
        expected["WriteContinuousTrainingEvents"] = ["s3:PutObject"]
        assert statements["WriteContinuousTrainingEvents"]["Resource"] == [
            f"arn:aws:s3:::{artifact_bucket}/ct-events/{p.model_name}/*" for p in continuous
        ]
    assert {sid: sorted(s["Action"]) for sid, s in statements.items()} == expected
    assert statements["PublishMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "MLOps/fraud"}
    }
    assert statements["ReadCanaryErrorCounts"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": loaded(stack).region}
    }
    assert statements["NotifyCanaryRollback"]["Resource"] == [topic_arn(plan)]
    (topic_key,) = owned(plan, "aws:kms/key:Key")
    assert statements["EncryptNotifications"]["Resource"] == [topic_key.outputs["arn"]]
    reads = statements["ReadPredictionLogsAndModels"]["Resource"]
    assert f"arn:aws:s3:::{artifact_bucket}/prediction-logs/scorer/*" in reads
    for p in continuous:  # and reads them back for the drift report's timeline
        assert f"arn:aws:s3:::{artifact_bucket}/ct-events/{p.model_name}/*" in reads
    assert all(
        r.startswith(f"arn:aws:s3:::{artifact_bucket}/")
        and r != f"arn:aws:s3:::{artifact_bucket}/*"
        for r in reads
    )
    assert statements["List1"]["Resource"] == [f"arn:aws:s3:::{artifact_bucket}"]


def test_batch_only_stacks_get_no_drift_monitor() -> None:
    plan = plan_of("recommendations-prod")
    assert owned(plan, CRONJOB) == []
    assert owned(plan, "mlops:identity:WorkloadIdentity") == []


def test_every_child_is_parented_to_the_component() -> None:
    plan = plan_of("fraud-prod")
    (component,) = plan.of_type(MONITORING)
    children = plan.children(component)
    assert {r.type for r in children} >= {ALARM, DASHBOARD, TOPIC, SUBSCRIPTION, CRONJOB}
    assert all(r.name.startswith("monitoring-") for r in children)
    k8s: list[PlannedResource] = [r for r in children if r.type.startswith("kubernetes:")]
    assert k8s and all(r.provider and "cluster-k8s" in r.provider for r in k8s)


# --- replay through the CloudWatch API ------------------------------------------------------------

_CLOUDWATCH = botocore.session.get_session().get_service_model("cloudwatch")
_PUT_ALARM = _CLOUDWATCH.operation_model("PutMetricAlarm").input_shape
# Planned input (Pulumi's camelCase) -> PutMetricAlarm parameter.
_ALARM_PARAMETERS = {
    "name": "AlarmName",
    "alarmDescription": "AlarmDescription",
    "alarmActions": "AlarmActions",
    "okActions": "OKActions",
    "comparisonOperator": "ComparisonOperator",
    "threshold": "Threshold",
    "evaluationPeriods": "EvaluationPeriods",
    "datapointsToAlarm": "DatapointsToAlarm",
    "treatMissingData": "TreatMissingData",
    "namespace": "Namespace",
    "metricName": "MetricName",
    "dimensions": "Dimensions",
    "period": "Period",
    "statistic": "Statistic",
    "extendedStatistic": "ExtendedStatistic",
    "evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile",
    "metricQueries": "Metrics",
    "tags": "Tags",
}


def _dimensions(value: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in sorted(value.items())]


def _query(query: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData"))}
    if "expression" in query:
        result |= {"Expression": query["expression"], "Label": query["label"]}
    if "metric" in query:
        metric = query["metric"]
        result["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": _dimensions(metric["dimensions"]),
            },
            "Period": int(metric["period"]),
            "Stat": metric["stat"],
        }
    return result


def put_metric_alarm_request(alarm: dict[str, Any]) -> dict[str, Any]:
    """The PutMetricAlarm call `pulumi up` would make for a planned alarm."""
    unknown = set(alarm) - set(_ALARM_PARAMETERS)
    assert not unknown, f"teach the replay these alarm inputs: {sorted(unknown)}"
    request: dict[str, Any] = {}
    for key, value in alarm.items():
        parameter = _ALARM_PARAMETERS[key]
        shape = _PUT_ALARM.members[parameter]
        if key == "dimensions":
            value = _dimensions(value)
        elif key == "metricQueries":
            value = [_query(q) for q in value]
        elif key == "tags":
            value = [{"Key": k, "Value": v} for k, v in value.items()]
        elif shape.type_name == "integer":
            assert value == int(value), (key, value)
            value = int(value)
        elif shape.type_name == "double":
            value = float(value)
        # botocore checks types, lengths and ranges, not enums: check those here.
        if getattr(shape, "enum", None):
            assert value in shape.enum, (parameter, value, shape.enum)
        request[parameter] = value
    return request


@pytest.mark.parametrize("stack", EXAMPLES)
def test_planned_alarms_and_dashboard_replay_through_the_cloudwatch_api(
    stack: str, aws_endpoint: str
) -> None:
    plan, team = plan_of(stack), team_of(stack)
    client = boto3.client(
        "cloudwatch",
        region_name=team.region,
        endpoint_url=aws_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    requests = [put_metric_alarm_request(alarm) for alarm in alarms(plan).values()]
    assert requests
    for request in requests:
        client.put_metric_alarm(**request)

    stored = {
        a["AlarmName"]: a
        for page in client.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{team.stack}-", AlarmTypes=["MetricAlarm"]
        )
        for a in page["MetricAlarms"]
    }
    assert sorted(stored) == sorted(r["AlarmName"] for r in requests)
    for request in requests:
        back = stored[request["AlarmName"]]
        assert back["Threshold"] == request["Threshold"]
        assert back["ComparisonOperator"] == request["ComparisonOperator"]
        assert back["AlarmActions"] == back["OKActions"] == request["AlarmActions"]
        assert back["TreatMissingData"] == request["TreatMissingData"]
        assert back["EvaluationPeriods"] == request["EvaluationPeriods"]
        assert back.get("DatapointsToAlarm") == request["DatapointsToAlarm"]
        if "Metrics" in request:
            assert back["Metrics"] == request["Metrics"]
        else:
            assert sorted(back["Dimensions"], key=lambda d: d["Name"]) == request["Dimensions"]
            assert back["MetricName"] == request["MetricName"]

    (dashboard,) = owned(plan, DASHBOARD)
    response = client.put_dashboard(
        DashboardName=dashboard.inputs["dashboardName"],
        DashboardBody=dashboard.inputs["dashboardBody"],
    )
    assert response["DashboardValidationMessages"] == []
    body = client.get_dashboard(DashboardName=dashboard.inputs["dashboardName"])["DashboardBody"]
    assert json.loads(body) == _dashboard(plan)


def test_environment_presets_are_covered() -> None:
    assert {team_of(s).environment for s in EXAMPLES} >= {Environment.dev, Environment.prod}


def test_dashboard_body_is_plain_data_drawn_from_the_config() -> None:
    config, team = loaded("fraud-prod").config, team_of("fraud-prod")
    endpoints = [e for e in config.serving.endpoints if isinstance(e, RealtimeEndpoint)]
    args = {
        "team": team,
        "config": config.monitoring,
        "endpoints": endpoints,
        "pipelines": config.training.pipelines,
        "feature_store": config.feature_store,
    }
    body = dashboard_body(**args)
    assert json.loads(json.dumps(body)) == body == dashboard_body(**args)
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert "scorer: latency (ms)" in titles
    assert "fraud-model: training runs" in titles
    empty = dashboard_body(**{**args, "endpoints": [], "pipelines": []})
    assert [w["type"] for w in empty["widgets"]] == ["text", "metric"]  # header, freshness


def test_the_monitor_of_a_model_with_live_labels_reads_them_and_nothing_else() -> None:
    from components.monitoring import drift_monitor_policy

    document = drift_monitor_policy(
        partition="aws",
        prediction_log_uris=["s3://models/prediction-logs/scorer/"],
        artifact_uri="s3://models/artifacts",
        metrics_namespace="MLOps/fraud",
        topic_arn="arn:aws:sns:eu-west-1:123456789012:fraud-dev-alerts",
        topic_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        data_key_arns=[],
        region="eu-west-1",
        events_uris=["s3://models/ct-events/fraud-model/"],
        live_labels_uris=["s3://features/offline/live-labels/"],
    )

    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["ReadPredictionLogsAndModels"]["Resource"] == [
        "arn:aws:s3:::models/prediction-logs/scorer/*",
        "arn:aws:s3:::models/artifacts/*",
        "arn:aws:s3:::models/ct-events/fraud-model/*",
        "arn:aws:s3:::features/offline/live-labels/*",
    ]
    listed = {tuple(s["Resource"]): s["Condition"]["StringLike"]["s3:prefix"] for s in
              document["Statement"] if s["Sid"].startswith("List")}  # fmt: skip
    assert listed == {
        ("arn:aws:s3:::features",): ["offline/live-labels/*"],
        ("arn:aws:s3:::models",): [
            "prediction-logs/scorer/*",
            "artifacts/*",
            "ct-events/fraud-model/*",
        ],
    }
    assert statements["WriteContinuousTrainingEvents"]["Resource"] == [
        "arn:aws:s3:::models/ct-events/fraud-model/*"
    ]


@pytest.mark.parametrize("stack", EXAMPLES)
def test_continuous_training_tells_the_topic_through_the_training_role(stack: str) -> None:
    plan, config = plan_of(stack), loaded(stack).config
    continuous = [p for p in config.training.pipelines if p.continuous_training is not None]
    notify = [
        r for r in owned(plan, "aws:iam/rolePolicy:RolePolicy") if "training-notify" in r.name
    ]
    training_env = {
        c["metadata"]["name"]: _env_of(c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])
        for c in manifests_of(plan)
        if c["kind"] == "CronJob" and c["metadata"]["name"].startswith("train-")
    }  # fmt: skip
    if not continuous:
        assert not notify
        assert not any("MLOPS_ALERT_TOPIC_ARN" in env for env in training_env.values())
        return
    # The training job of a continuously trained pipeline publishes into the team's topic...
    for p in config.training.pipelines:
        env = training_env[naming.cronjob_name("train", p.name)]
        if p.continuous_training is not None:
            assert env["MLOPS_ALERT_TOPIC_ARN"] == topic_arn(plan)
        else:
            assert "MLOPS_ALERT_TOPIC_ARN" not in env
    # ... with exactly that right on its role, and the topic's key names the role.
    (policy,) = notify
    (role,) = [
        r
        for r in plan.of_type("aws:iam/role:Role")
        if r.outputs["arn"] == plan.outputs["trainingRoleArn"]
    ]
    assert policy.inputs["role"] == role.outputs["name"]
    (topic_key,) = owned(plan, "aws:kms/key:Key")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert {sid: (sorted(s["Action"]), s["Resource"]) for sid, s in statements.items()} == {
        "NotifyTheTeam": (["sns:Publish"], [topic_arn(plan)]),
        "EncryptNotifications": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [topic_key.outputs["arn"]],
        ),
    }
    (access,) = owned(plan, "aws:kms/keyPolicy:KeyPolicy")
    assert role.outputs["arn"] in access.inputs["policy"]


def _env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}
