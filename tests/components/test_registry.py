"""The ModelRegistry component: planning functions and every example stack's plan."""

from __future__ import annotations

import json

import boto3
import pytest

from components.config.registry import Database
from components.registry import (
    FEAST_ROLE,
    MLFLOW_ROLE,
    allowed_hosts,
    max_storage_gb,
    parameter_group_family,
    server_document,
    tracking_uri,
)
from tests.components._data_plane_helpers import (
    cluster_values,
    container,
    env_of,
    kms_key_arns,
    own_arns,
    role_policy,
    scoping_problems,
    stack_config,
)
from tests.conftest import planned
from tooling.plan import Plan

DB = "aws:rds/instance:Instance"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
SG = "aws:ec2/securityGroup:SecurityGroup"
SGP = "kubernetes:vpc.amazonaws.com/v1beta1:SecurityGroupPolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# -- planning functions, no mocks -------------------------------------------------------------


def test_tracking_uri_and_allowed_hosts_name_the_in_cluster_service() -> None:
    assert tracking_uri("mlflow", "ml-fraud") == "http://mlflow.ml-fraud.svc.cluster.local:5000"
    hosts = allowed_hosts("mlflow", "ml-fraud")
    assert "mlflow.ml-fraud.svc.cluster.local:5000" in hosts
    assert "mlflow.ml-fraud.svc.cluster.local" in hosts
    assert "mlflow:5000" in hosts
    assert "*" not in ",".join(hosts)


@pytest.mark.parametrize(
    ("database", "family", "ceiling"),
    [
        pytest.param(Database(), "postgres16", 80, id="default"),
        pytest.param(
            Database(engine_version="15.4", storage_gb=100, max_storage_gb=500),
            "postgres15",
            500,
            id="explicit",
        ),
    ],
)
def test_database_sizing(database: Database, family: str, ceiling: int) -> None:
    assert parameter_group_family(database.engine_version) == family
    assert max_storage_gb(database) == ceiling


def test_server_document_is_scoped() -> None:
    bucket = "arn:aws:s3:::fraud-dev-models-abc"
    connect = "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-X/mlflow"
    key = "arn:aws:kms:eu-west-1:123456789012:key/k"
    document = server_document(bucket, key, connect)
    assert scoping_problems(document, {bucket, connect, key}) == []
    assert {s["Sid"] for s in document["Statement"]} >= {
        "ReadArtifacts",
        "DatabaseLogin",
        "ArtifactKey",
    }
    # The server proxies no upload: it reads artifacts (for the UI), never writes them.
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert not {
        a for a in actions if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))
    }


# -- every example stack under the mock engine ---------------------------------------------------


def test_database_is_private_encrypted_and_keeps_no_password(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    db = config.registry.database
    instance = plan.one(DB, "registry-db")
    inputs = instance.inputs
    assert inputs["engine"] == "postgres"
    assert inputs["instanceClass"] == db.instance_class
    assert inputs["storageEncrypted"] is True
    assert inputs["publiclyAccessible"] is False
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert "password" not in inputs and "passwordWo" not in inputs
    assert inputs["allocatedStorage"] == db.storage_gb
    assert inputs["maxAllocatedStorage"] == max_storage_gb(db)
    assert inputs["backupRetentionPeriod"] == db.backup_retention_days
    assert inputs["performanceInsightsEnabled"] is db.performance_insights
    keys = kms_key_arns(plan)
    assert inputs.get("kmsKeyId") == (keys[0] if keys else None)

    params = plan.one("aws:rds/parameterGroup:ParameterGroup", "registry-db-params")
    assert inputs["parameterGroupName"] == params.outputs["name"]
    assert params.inputs["family"] == parameter_group_family(db.engine_version)
    assert {"name": "rds.force_ssl", "value": "1"} in [
        {k: p[k] for k in ("name", "value")} for p in params.inputs["parameters"]
    ]
    subnets = plan.one("aws:rds/subnetGroup:SubnetGroup", "registry-subnets")
    assert inputs["dbSubnetGroupName"] == subnets.outputs["name"]
    assert subnets.inputs["subnetIds"] == cluster_values(example_stack)["privateSubnetIds"]


def _group_id(plan: Plan, name: str) -> str:
    return str(plan.one(SG, name).outputs["arn"].rsplit("/", 1)[1])


def test_database_admits_only_its_clients_security_group(example_stack: str) -> None:
    """Not the node group's (every pod of every team wears it): the database-client group, which
    the SecurityGroupPolicy gives exactly the pods labelled as database clients."""
    plan = planned(example_stack)
    db_group, clients = _group_id(plan, "registry-db-sg"), _group_id(plan, "registry-db-clients-sg")
    assert plan.one(DB, "registry-db").inputs["vpcSecurityGroupIds"] == [db_group]
    registry = plan.one("mlops:registry:ModelRegistry", "registry").urn
    ingress = [r for r in plan.of_type(INGRESS) if r.parent == registry]
    (rule,) = ingress
    assert rule.inputs["securityGroupId"] == db_group
    assert rule.inputs["referencedSecurityGroupId"] == clients
    nodes = cluster_values(example_stack)["nodeSecurityGroupId"]
    assert rule.inputs["referencedSecurityGroupId"] != nodes
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (
        5432,
        5432,
        "tcp",
    )
    assert "cidrIpv4" not in rule.inputs
    # The clients' one way out of their own group: to the database (with a SageMaker endpoint
    # the registry's load balancer group has egress rules of its own).
    (egress,) = [
        r
        for r in plan.of_type(EGRESS)
        if r.parent == registry and r.inputs["securityGroupId"] == clients
    ]
    assert egress.inputs["referencedSecurityGroupId"] == db_group

    policy = plan.one(SGP, "registry-db-clients").inputs
    assert policy["apiVersion"] == "vpc.amazonaws.com/v1beta1"
    assert policy["metadata"]["namespace"] == f"ml-{stack_config(example_stack).team}"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"mlops.dev/database-client": "true"}},
        # The node group's too: the pods keep DNS, the AWS APIs, probes and their Services.
        "securityGroups": {"groupIds": [clients, nodes]},
    }


def test_security_groups_replayed_in_moto_admit_the_clients_not_the_nodes(
    example_stack: str, aws_endpoint: str
) -> None:
    """The planned groups and rules through the EC2 API (moto): who may open 5432."""
    plan = planned(example_stack)
    ec2 = boto3.client("ec2", endpoint_url=aws_endpoint, region_name="eu-west-1", **KEYS)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    real: dict[str, str] = {}
    nodes = cluster_values(example_stack)["nodeSecurityGroupId"]
    groups = [(nodes, "nodes"), *((_group_id(plan, r.name), r.name) for r in plan.of_type(SG))]
    for planned_id, name in groups:
        description = "nodes" if name == "nodes" else plan.one(SG, name).inputs["description"]
        real[planned_id] = ec2.create_security_group(
            GroupName=f"{example_stack}-{name}", Description=description, VpcId=vpc
        )["GroupId"]
    for rule in plan.of_type(INGRESS):
        i = rule.inputs
        ec2.authorize_security_group_ingress(
            GroupId=real[i["securityGroupId"]],
            IpPermissions=[
                {
                    "IpProtocol": i["ipProtocol"],
                    "FromPort": i["fromPort"],
                    "ToPort": i["toPort"],
                    "UserIdGroupPairs": [{"GroupId": real[i["referencedSecurityGroupId"]]}],
                }
            ],
        )
    (db,) = ec2.describe_security_groups(GroupIds=[real[_group_id(plan, "registry-db-sg")]])[
        "SecurityGroups"
    ]
    admitted = {
        (p["FromPort"], pair["GroupId"])
        for p in db["IpPermissions"]
        for pair in p.get("UserIdGroupPairs", [])
    }
    assert admitted == {(5432, real[_group_id(plan, "registry-db-clients-sg")])}
    assert not [p for p in db["IpPermissions"] if p.get("IpRanges")]
    assert real[nodes] not in {group for _, group in admitted}


def test_bootstrap_job_alone_reads_the_master_secret(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    instance = plan.one(DB, "registry-db")
    (master,) = instance.outputs["masterUserSecrets"]
    secret = master["secretArn"]
    readers = {
        r.name
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if secret in json.dumps(json.loads(r.inputs["policy"]))
    }
    assert readers == {"registry-bootstrap-identity-policy"}
    document = role_policy(plan, "registry-bootstrap-identity-policy")
    key = instance.inputs.get("masterUserSecretKmsKeyId")
    assert [(s["Action"], s["Resource"]) for s in document["Statement"]] == [
        (["secretsmanager:GetSecretValue"], [secret]),
        *([(["kms:Decrypt"], [key])] if key else []),
    ]
    # No workload's manifest names the master secret, but the bootstrap Job's.
    for resource in plan.resources:
        if resource.type.startswith("kubernetes:") and resource.name != "registry-bootstrap":
            assert secret not in json.dumps(resource.inputs), resource.name

    job = plan.one(JOB, "registry-bootstrap")
    pod = job.inputs["spec"]["template"]["spec"]
    sa = plan.one("kubernetes:core/v1:ServiceAccount", "registry-bootstrap-identity-sa")
    assert pod["serviceAccountName"] == sa.inputs["metadata"]["name"] == "database-bootstrap"
    assert pod["restartPolicy"] == "Never"
    (bootstrap,) = pod["containers"]
    assert bootstrap["args"] == ["database-bootstrap"]
    env = env_of(bootstrap)
    sql = config.feature_store.registry.type == "sql"
    roles = [MLFLOW_ROLE, *([FEAST_ROLE] if sql else [])]
    assert json.loads(env["MLOPS_DATABASE_ROLES"]) == [r.model_dump() for r in roles]
    assert env["MLOPS_DATABASE_MASTER_SECRET_ARN"] == secret
    assert env["MLOPS_DATABASE_ADMIN_URI"] == (
        f"postgresql://mlops@{instance.outputs['address']}:5432/mlops?sslmode=require"
    )
    assert "password" not in json.dumps(job.inputs).lower()
    # MLflow starts once its role exists.
    assert job.urn in plan.one(DEPLOYMENT, "registry-server").dependencies


def test_workloads_log_in_as_their_purpose_role(example_stack: str) -> None:
    """MLflow as `mlflow`, every Feast pod (SQL registry) as `feast`: `rds-db:connect` on
    exactly that database user, and no other database permission."""
    plan = planned(example_stack)
    instance = plan.one(DB, "registry-db").outputs
    users = instance["arn"].replace(":rds:", ":rds-db:").rsplit(":db:", 1)[0]
    user = f"{users}:dbuser:{instance['resourceId']}"
    for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        connects = [
            resource
            for s in document["Statement"]
            if "rds-db:connect" in s["Action"]
            for resource in s["Resource"]
        ]
        if policy.name == "registry-identity-policy":
            assert connects == [f"{user}/mlflow"]
        else:
            assert connects in ([], [f"{user}/feast"]), policy.name


def test_prod_database_is_safe_and_dev_is_cheap(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    instance = plan.one(DB, "registry-db")
    inputs = instance.inputs
    if config.environment == "prod":
        assert instance.protect
        assert inputs["multiAz"] is True
        assert inputs["deletionProtection"] is True
        assert inputs["backupRetentionPeriod"] >= 7
        assert inputs["skipFinalSnapshot"] is False
        assert inputs["finalSnapshotIdentifier"] == f"{inputs['identifier']}-final"
        assert plan.one("aws:s3/bucket:Bucket", "registry-artifacts-bucket").protect
        assert plan.one("kubernetes:policy/v1:PodDisruptionBudget", "registry-pdb")
    else:
        assert not instance.protect
        assert inputs["multiAz"] is False
        assert inputs["deletionProtection"] is False
        assert inputs["skipFinalSnapshot"] is True
        pdbs = plan.of_type("kubernetes:policy/v1:PodDisruptionBudget")
        assert "registry-pdb" not in {r.name for r in pdbs}


def test_tracking_server(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    namespace = f"ml-{config.team}"
    deployment = plan.one(DEPLOYMENT, "registry-server").inputs
    assert deployment["metadata"]["namespace"] == namespace
    assert deployment["spec"]["replicas"] == config.registry.server.replicas
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sa = plan.one("kubernetes:core/v1:ServiceAccount", "registry-identity-sa")
    assert pod["serviceAccountName"] == sa.inputs["metadata"]["name"]
    server = container(pod, "mlflow")
    assert server["command"] == ["mlflow"]
    args = server["args"]
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    assert f"mlflow.{namespace}.svc.cluster.local:5000" in hosts
    # No artifact proxy: clients go to S3 with their own roles (only training may write).
    assert "--no-serve-artifacts" in args and "--serve-artifacts" not in args
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    assert server["securityContext"]["runAsNonRoot"] is True
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert set(server["resources"]["limits"]) >= {"cpu", "memory"}
    env = env_of(server)
    instance = plan.one(DB, "registry-db").outputs
    # MLflow's own role and database, never the master user's.
    assert env["MLFLOW_BACKEND_STORE_URI"] == (
        f"postgresql+psycopg2://mlflow@{instance['address']}:5432/mlflow?sslmode=require"
    )
    assert deployment["spec"]["template"]["metadata"]["labels"]["mlops.dev/database-client"] == (
        "true"
    )
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    bucket = plan.outputs["artifactBucket"]
    assert env["MLFLOW_DEFAULT_ARTIFACT_ROOT"] == f"s3://{bucket}/artifacts"
    assert env["PGPASSFILE"].startswith("/var/run/")
    # The login reaches the pod only through the sidecar; nothing in the manifest is a password.
    sidecar = container(pod, "db-credentials")
    assert sidecar["restartPolicy"] == "Always"
    sidecar_env = env_of(sidecar)
    assert (sidecar_env["DB_USER"], sidecar_env["DB_HOST"]) == ("mlflow", instance["address"])
    assert "DB_SECRET_ARN" not in sidecar_env
    manifest = json.dumps(deployment).lower()
    assert instance["masterUserSecrets"][0]["secretArn"].lower() not in manifest
    assert "password=" not in manifest and '"password"' not in manifest
    (volume,) = [v for v in pod["volumes"] if v["name"] == "db-credentials"]
    assert volume["emptyDir"]["medium"] == "Memory"

    service = plan.one("kubernetes:core/v1:Service", "registry-service").inputs
    assert [p["port"] for p in service["spec"]["ports"]] == [5000]
    assert service["spec"]["type"] == "ClusterIP"
    assert plan.outputs["trackingUri"] == f"http://mlflow.{namespace}.svc.cluster.local:5000"
    assert plan.outputs["databaseEndpoint"] == f"{instance['address']}:5432"


def test_server_policy_is_scoped_to_this_stack(example_stack: str) -> None:
    plan = planned(example_stack)
    document = role_policy(plan, "registry-identity-policy")
    assert scoping_problems(document, own_arns(plan)) == []
    bucket_arn = plan.one("aws:s3/bucket:Bucket", "registry-artifacts-bucket").outputs["arn"]
    (artifacts,) = [s for s in document["Statement"] if s["Sid"] == "ReadArtifacts"]
    assert (artifacts["Action"], artifacts["Resource"]) == (
        ["s3:GetObject"],
        [f"{bucket_arn}/artifacts/*"],
    )


def test_batch_outputs_are_kept_out_of_the_artifact_root_and_the_logs() -> None:
    """The config refuses these prefixes for batch outputs: they are where models and logs are."""
    from components.config.serving import RESERVED_PREFIXES
    from components.registry import ARTIFACT_PREFIX

    plan = planned("fraud-dev")
    bucket = plan.outputs["artifactBucket"]
    (serve,) = [
        c
        for d in plan.of_type("kubernetes:apps/v1:Deployment")
        if d.name.startswith("endpoint-")
        for c in d.inputs["spec"]["template"]["spec"]["containers"]
    ]
    log_uri = env_of(serve)["MLOPS_PREDICTION_LOG_URI"].removeprefix(f"s3://{bucket}/")
    assert f"{ARTIFACT_PREFIX}/" in RESERVED_PREFIXES
    assert log_uri.startswith(RESERVED_PREFIXES)
