"""The cost estimate: each priced type against a figure worked out by hand from the table's
eu-west-1 prices (written out below), the ranges of scaling resources, and what is not priced."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy.cost import PRICERS, PRICES_FILE, Priced, PriceError, estimate, load_prices
from policy.cost.estimate import quantity, runs_per_month
from policy.cost.prices import dumps

TABLE = load_prices("eu-west-1")
HOURS = 730
USAGE: dict[str, Any] = {
    "sharedNodeType": "m6i.xlarge",
    "nodePoolHours": 20,
    "replicaLoadPercent": 50,
    "jobRunMinutes": 12,
    "bucketStorageGb": 100,
    "bucketPutRequests": 20_000,
    "bucketGetRequests": 500_000,
    "onlineReadsMillions": 4,
    "onlineWritesMillions": 2,
    "onlineStorageGb": 10,
    "imageStorageGb": 8,
    "alertNotifications": 50_000,
    "natDataGb": 300,
    "loadBalancerCapacityUnits": 2,
    "peakFactor": 3,
}
# eu-west-1 list prices as the table holds them (USD).
M6I_XLARGE = 0.214  # per hour, 4 vCPU, 16 GiB
G5_XLARGE = 1.123
G5_2XLARGE = 1.353
EBS_GP3 = 0.088  # per GB-month


def priced(type_: str, props: dict[str, Any], *others: Priced) -> tuple[float, float, float]:
    """(monthly, low, high) of one resource, the stack holding it and ``others``."""
    resource = Priced(type_, f"urn:pulumi:s::p::{type_}::it", props)
    found = estimate([resource, *others], TABLE, USAGE)
    assert not found.unpriced, found.unpriced
    mine = [line for line in found.lines if line.urn == resource.urn]
    return (
        sum(line.monthly for line in mine),
        sum(line.low for line in mine),
        sum(line.high for line in mine),
    )


def test_rds_multi_az_doubles_instance_and_storage_and_ranges_to_the_storage_ceiling() -> None:
    props = {
        "engine": "postgres",
        "instanceClass": "db.r6g.large",
        "multiAz": True,
        "allocatedStorage": 100,
        "maxAllocatedStorage": 500,
        "storageType": "gp3",
        "manageMasterUserPassword": True,
    }
    # 0.25/h x 730 h x 2 + 0.127/GB x 100 GB x 2 + 0.40 (managed secret)
    assert priced("aws:rds/instance:Instance", props) == pytest.approx(
        (365.0 + 25.4 + 0.4, 365.0 + 25.4 + 0.4, 365.0 + 127.0 + 0.4)
    )
    single = {**props, "multiAz": False, "manageMasterUserPassword": False}
    assert priced("aws:rds/instance:Instance", single)[0] == pytest.approx(182.5 + 12.7)


def test_node_group_ranges_from_min_on_the_cheapest_to_max_on_the_dearest() -> None:
    props = {
        "instanceTypes": ["g5.xlarge", "g5.2xlarge"],
        "capacityType": "SPOT",
        "scalingConfig": {"minSize": 1, "maxSize": 4, "desiredSize": 1},
        "diskSize": 50,
    }
    spot = 1 - TABLE.spot_discount
    hours = 1 * HOURS + 20  # desired nodes all month + the assumed extra node-hours
    monthly = G5_XLARGE * spot * hours + EBS_GP3 * 50 * hours / HOURS
    low = G5_XLARGE * spot * 1 * HOURS + EBS_GP3 * 50 * 1
    high = G5_2XLARGE * 4 * HOURS + EBS_GP3 * 50 * 4  # spot never costs more than on-demand
    assert priced("aws:eks/nodeGroup:NodeGroup", props) == pytest.approx((monthly, low, high))


def test_node_group_scaled_to_zero_runs_only_the_assumed_hours() -> None:
    props = {
        "instanceTypes": ["m6i.xlarge"],
        "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 0, "maxSize": 2, "desiredSize": 0},
    }
    # 20 node-hours; the EKS default 20 GB disk for those hours; 0 .. 2 nodes all month
    assert priced("aws:eks/nodeGroup:NodeGroup", props) == pytest.approx(
        (
            M6I_XLARGE * 20 + EBS_GP3 * 20 * 20 / HOURS,
            0,
            M6I_XLARGE * 2 * HOURS + EBS_GP3 * 20 * 2,
        )
    )


def test_a_node_group_with_a_launch_template_pays_the_templates_root_volume() -> None:
    template = Priced(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "urn:lt",
        {
            "id": "lt-0abc",
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 100, "volumeType": "gp2"}}
            ],
        },
    )
    props = {
        "instanceTypes": ["m6i.xlarge"],
        "launchTemplate": {"id": "lt-0abc", "version": "1"},
        "scalingConfig": {"minSize": 2, "maxSize": 3, "desiredSize": 2},
    }
    hours = 2 * HOURS + 20
    assert priced("aws:eks/nodeGroup:NodeGroup", props, template) == pytest.approx(
        (
            M6I_XLARGE * hours + 0.11 * 100 * hours / HOURS,  # gp2 at $0.11/GB-month
            M6I_XLARGE * 2 * HOURS + 0.11 * 100 * 2,
            M6I_XLARGE * 3 * HOURS + 0.11 * 100 * 3,
        )
    )


def _deployment(cpu: str, memory: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "scorer", "namespace": "ml-fraud"},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                    **spec,
                }
            },
        },
    }


def test_pods_pay_their_binding_share_of_a_shared_node() -> None:
    # 1 vCPU of 4 is 0.25 of the node, 2 GiB of 16 only 0.125: CPU binds.
    deployment = _deployment("1", "2Gi", replicas=2)
    assert priced("kubernetes:apps/v1:Deployment", deployment)[0] == pytest.approx(
        2 * 0.25 * M6I_XLARGE * HOURS
    )
    # 500m is 0.125 of the node, 8Gi is 0.5: memory binds.
    assert priced("kubernetes:apps/v1:Deployment", _deployment("500m", "8Gi"))[0] == pytest.approx(
        0.5 * M6I_XLARGE * HOURS
    )


def test_an_hpa_sets_the_range_and_the_load_assumption_the_estimate() -> None:
    hpa = Priced(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "urn:hpa",
        {
            "metadata": {"name": "scorer", "namespace": "ml-fraud"},
            "spec": {
                "minReplicas": 2,
                "maxReplicas": 10,
                "scaleTargetRef": {"kind": "Deployment", "name": "scorer"},
            },
        },
    )
    per_replica = 0.25 * M6I_XLARGE * HOURS
    # replicaLoadPercent 50: halfway from 2 to 10 replicas is 6
    assert priced("kubernetes:apps/v1:Deployment", _deployment("1", "1Gi"), hpa) == pytest.approx(
        (6 * per_replica, 2 * per_replica, 10 * per_replica)
    )


def test_pods_on_a_team_node_pool_are_in_the_node_groups_line() -> None:
    on_pool = _deployment("4", "16Gi", nodeSelector={"mlops.dev/node-pool": "fraud.gpu"})
    found = estimate([Priced("kubernetes:apps/v1:Deployment", "urn:d", on_pool)], TABLE, USAGE)
    assert (found.lines, found.unpriced, found.no_charge) == ([], [], 1)


def test_a_cron_job_runs_its_schedule_for_the_assumed_minutes() -> None:
    job = {
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": _deployment("2", "1Gi")["spec"]["template"]}},
        }
    }
    runs = 24 * 7 * HOURS / 168  # hourly: 168 runs a week, scaled to a 730-hour month
    assert priced("kubernetes:batch/v1:CronJob", job)[0] == pytest.approx(
        runs * 12 / 60 * 0.5 * M6I_XLARGE
    )
    # An Indexed Job: each of its completions is a pod of its own for the run.
    job["spec"]["jobTemplate"]["spec"].update(completionMode="Indexed", completions=3)
    assert priced("kubernetes:batch/v1:CronJob", job)[0] == pytest.approx(
        3 * runs * 12 / 60 * 0.5 * M6I_XLARGE
    )


@pytest.mark.parametrize(
    ("schedule", "runs"),
    [
        pytest.param("*/30 * * * *", 48 * 7, id="every-half-hour"),
        pytest.param("0 3 * * 0", 1, id="weekly"),
        pytest.param("0 5 * * 1-5", 5, id="weekdays"),
    ],
)
def test_runs_per_month_counts_a_week_and_scales(schedule: str, runs: int) -> None:
    assert runs_per_month(schedule, HOURS) == pytest.approx(runs * HOURS / 168)


def test_a_monthly_schedule_is_counted_over_a_year() -> None:
    assert runs_per_month("0 0 1 * *", HOURS) == pytest.approx(12 * HOURS / (365 * 24))


def test_on_demand_table_requests_range_from_none_to_the_peak() -> None:
    props = {"billingMode": "PAY_PER_REQUEST", "pointInTimeRecovery": {"enabled": True}}
    storage, pitr = 0.283 * 10, 0.224 * 10
    requests = 4 * 0.1415 + 2 * 0.7075  # million reads and writes
    assert priced("aws:dynamodb/table:Table", props) == pytest.approx(
        (storage + pitr + requests, storage + pitr, storage + pitr + 3 * requests)
    )


def test_provisioned_table_ranges_to_its_autoscaling_maximum() -> None:
    props = {
        "name": "fraud.stats",
        "billingMode": "PROVISIONED",
        "readCapacity": 50,
        "writeCapacity": 10,
    }
    target = Priced(
        "aws:appautoscaling/target:Target",
        "urn:t",
        {
            "resourceId": "table/fraud.stats",
            "scalableDimension": "dynamodb:table:ReadCapacityUnits",
            "maxCapacity": 400,
        },
    )
    storage = 0.283 * 10
    read, write = 0.000147 * HOURS, 0.000735 * HOURS  # one unit for a month
    assert priced("aws:dynamodb/table:Table", props, target) == pytest.approx(
        (
            storage + 50 * read + 10 * write,
            storage + 50 * read + 10 * write,
            storage + 400 * read + 10 * write,
        )
    )


def test_bucket_storage_and_requests() -> None:
    storage = 0.023 * 100
    requests = 20 * 0.005 + 500 * 0.0004  # thousands of PUTs and GETs
    assert priced("aws:s3/bucket:Bucket", {}) == pytest.approx(
        (storage + requests, storage, storage + 3 * requests)
    )


@pytest.mark.parametrize(
    ("type_", "props", "monthly"),
    [
        pytest.param("aws:kms/key:Key", {}, 1.0, id="kms-key"),
        pytest.param("aws:ecr/repository:Repository", {}, 8 * 0.10, id="ecr-storage"),
        pytest.param("aws:cloudwatch/dashboard:Dashboard", {}, 3.0, id="dashboard"),
        pytest.param("aws:cloudwatch/metricAlarm:MetricAlarm", {"period": 300}, 0.10, id="alarm"),
        pytest.param(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            {"period": 10},
            0.30,
            id="alarm-high-resolution",
        ),
        pytest.param(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            {
                "metricQueries": [
                    {"id": "a", "metric": {"metricName": "X", "period": 60}},
                    {"id": "b", "metric": {"metricName": "Y", "period": 60}},
                    {"id": "c", "expression": "a/b"},
                ]
            },
            0.20,
            id="alarm-metric-math",
        ),
        pytest.param("aws:sns/topic:Topic", {}, 0.05 * 0.50, id="sns-publish"),
        pytest.param(
            "aws:sns/topicSubscription:TopicSubscription",
            {"protocol": "email"},
            0.5 * 2.00,  # 50k emails at $2 per 100k
            id="sns-email",
        ),
        pytest.param(
            "aws:sns/topicSubscription:TopicSubscription",
            {"protocol": "https"},
            0.05 * 0.60,
            id="sns-https",
        ),
        pytest.param("aws:eks/cluster:Cluster", {}, 0.10 * HOURS, id="eks-control-plane"),
        pytest.param(
            "aws:ec2/natGateway:NatGateway", {}, 0.048 * HOURS + 0.048 * 300, id="nat-gateway"
        ),
        pytest.param(
            "aws:ec2/natGateway:NatGateway",
            {"connectivityType": "private"},
            0.048 * HOURS,
            id="nat-gateway-private",
        ),
        pytest.param("aws:ec2/eip:Eip", {}, 0.005 * HOURS, id="public-ipv4"),
        pytest.param(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
            3 * 0.011 * HOURS,
            id="interface-endpoint",
        ),
        pytest.param(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            {"vpcEndpointType": "Gateway"},
            0,
            id="gateway-endpoint",
        ),
        pytest.param("aws:ebs/volume:Volume", {"size": 100, "type": "gp3"}, 8.8, id="ebs"),
        pytest.param(
            "kubernetes:core/v1:PersistentVolumeClaim",
            {"spec": {"resources": {"requests": {"storage": "50Gi"}}}},
            50 * EBS_GP3,
            id="volume-claim",
        ),
        pytest.param("aws:secretsmanager/secret:Secret", {}, 0.40, id="secret"),
        pytest.param(
            "aws:lb/loadBalancer:LoadBalancer",
            {"loadBalancerType": "network"},
            0.0252 * HOURS + 2 * 0.006 * HOURS,
            id="nlb",
        ),
        pytest.param(
            "kubernetes:networking.k8s.io/v1:Ingress",
            {"spec": {"ingressClassName": "alb"}},
            0.0252 * HOURS + 2 * 0.008 * HOURS,  # hours + 2 LCU all month
            id="alb-ingress",
        ),
        pytest.param(
            "kubernetes:core/v1:Service",
            {"spec": {"type": "LoadBalancer"}},
            0.0252 * HOURS + 2 * 0.006 * HOURS,
            id="load-balancer-service",
        ),
        pytest.param(
            "aws:ec2/instance:Instance", {"instanceType": "m6i.xlarge"}, 0.214 * HOURS, id="ec2"
        ),
    ],
)
def test_each_priced_type_against_a_hand_worked_price(
    type_: str, props: dict[str, Any], monthly: float
) -> None:
    assert priced(type_, props)[0] == pytest.approx(monthly)


def test_every_pricer_is_tested_above() -> None:
    tested = {
        "aws:rds/instance:Instance",
        "aws:eks/nodeGroup:NodeGroup",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:CronJob",
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:eks/cluster:Cluster",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ebs/volume:Volume",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "aws:secretsmanager/secret:Secret",
        "aws:lb/loadBalancer:LoadBalancer",
        "kubernetes:networking.k8s.io/v1:Ingress",
        "kubernetes:core/v1:Service",
        "aws:ec2/instance:Instance",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    }
    # Types sharing a pricer with a tested one.
    aliases = {
        "kubernetes:apps/v1:StatefulSet": "kubernetes:apps/v1:Deployment",
        "kubernetes:batch/v1:Job": "kubernetes:batch/v1:CronJob",
        "aws:alb/loadBalancer:LoadBalancer": "aws:lb/loadBalancer:LoadBalancer",
        "aws:s3/bucketV2:BucketV2": "aws:s3/bucket:Bucket",
    }
    assert {aliases.get(t, t) for t in PRICERS} == tested


def test_alb_ingresses_of_one_group_share_one_load_balancer() -> None:
    def ingress(name: str) -> Priced:
        props = {
            "metadata": {"annotations": {"alb.ingress.kubernetes.io/group.name": "ml"}},
            "spec": {"ingressClassName": "alb"},
        }
        return Priced("kubernetes:networking.k8s.io/v1:Ingress", f"urn:{name}", props)

    found = estimate([ingress("a"), ingress("b")], TABLE, USAGE)
    assert {line.urn for line in found.lines} == {"urn:a"}


def test_unknown_types_are_listed_not_priced_and_free_ones_counted() -> None:
    resources = [
        Priced("aws:sagemaker/notebookInstance:NotebookInstance", "urn:sm", {}),
        Priced("aws:sagemaker/endpoint:Endpoint", "urn:sm-endpoint", {}),
        Priced("aws:iam/role:Role", "urn:role", {}),
        Priced("aws:s3/bucketPolicy:BucketPolicy", "urn:policy", {}),
        Priced("kubernetes:core/v1:ConfigMap", "urn:cm", {}),
        Priced("kubernetes:core/v1:Service", "urn:svc", {"spec": {"type": "ClusterIP"}}),
    ]
    found = estimate(resources, TABLE, USAGE)

    assert [(u.urn, u.reason) for u in found.unpriced] == [("urn:sm", "no pricer for this type")]
    assert found.no_charge == 5
    assert found.lines == []


def test_sagemaker_hosting_is_listed_not_priced_naming_its_fleet() -> None:
    variant = {"variantName": "champion", "instanceType": "ml.m5.large", "initialInstanceCount": 2}
    shadow = {"variantName": "challenger", "instanceType": "ml.c5.xlarge"}
    props = {"productionVariants": [variant], "shadowProductionVariants": [shadow]}
    config = Priced("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "urn:c", props)

    found = estimate([config], TABLE, USAGE)

    assert found.lines == [] and found.no_charge == 0
    assert [(u.urn, u.reason) for u in found.unpriced] == [
        ("urn:c", "SageMaker hosting (2 x ml.m5.large, 1 x ml.c5.xlarge) has its own prices, "
         "not in the price table")
    ]  # fmt: skip


def test_a_sku_missing_from_the_table_is_listed_with_the_fix() -> None:
    props = {"instanceTypes": ["x2iedn.32xlarge"], "scalingConfig": {"minSize": 0, "maxSize": 1}}
    found = estimate([Priced("aws:eks/nodeGroup:NodeGroup", "urn:ng", props)], TABLE, USAGE)

    assert found.lines == []
    assert [u.reason for u in found.unpriced] == [
        "no price for ec2/x2iedn.32xlarge in eu-west-1 (prices.json, taken "
        f"{TABLE.taken}); `python -m tooling.price_list --region eu-west-1` adds or refreshes it"
    ]


def test_a_region_missing_from_the_table_is_a_clear_error() -> None:
    with pytest.raises(
        PriceError, match=r"no prices for region ap-south-2 in prices.json \(it has"
    ):
        load_prices("ap-south-2")


def test_every_region_prices_the_same_skus() -> None:
    document = json.loads(PRICES_FILE.read_text())
    skus = {region: set(prices) for region, prices in document["regions"].items()}
    assert len({frozenset(s) for s in skus.values()}) == 1, skus
    ec2 = {sku.removeprefix("ec2/") for sku in next(iter(skus.values())) if sku.startswith("ec2/")}
    assert ec2 == set(document["instanceTypes"])


def test_the_table_file_is_in_its_canonical_layout() -> None:
    text = PRICES_FILE.read_text()
    assert dumps(json.loads(text)) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("512Mi", 512 * 2**20), ("4Gi", 4 * 2**30), ("1.5", 1.5)],
)
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == value
