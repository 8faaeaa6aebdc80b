"""The platform project under the mock engine: what `pulumi up` on platform/dev and platform/prod
would create; its network, IAM, KMS and log group replayed through the AWS APIs (moto); its
exports fed to a team stack, which then plans and passes the policy pack."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from components.config import load_stack_file
from components.config.cluster import STACK_REFERENCE_OUTPUTS, StackReferenceCluster
from components.keys import KEY_ADMIN_ACTIONS
from components.platform import catalog
from components.platform.config import load_platform_file
from policy.rules import check_plan
from tests.conftest import PLATFORM_STACKS, planned
from tooling.plan import Plan, PlannedResource, example_stacks, plan_stack, platform_stacks

# Every example platform stack (a cluster per environment and region).
STACKS = [f"platform/{file.name[len('Pulumi.') : -len('.yaml')]}" for file in platform_stacks()]
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"


def loaded(stack: str):
    return load_platform_file(PLATFORM_STACKS / f"Pulumi.{stack.split('/')[1]}.yaml")


def by_id(plan: Plan) -> dict[str, PlannedResource]:
    return {r.id: r for r in plan.resources if r.id}


@pytest.mark.parametrize("stack", STACKS)
def test_platform_exports_exactly_what_team_stacks_read(stack: str) -> None:
    plan = planned(stack)

    assert set(plan.outputs) == set(STACK_REFERENCE_OUTPUTS)
    assert plan.outputs["kubeconfig"] == "[secret]"
    ids = by_id(plan)
    assert ids[plan.outputs["vpcId"]].type == "aws:ec2/vpc:Vpc"
    private = [ids[s] for s in plan.outputs["privateSubnetIds"]]
    assert {s.type for s in private} == {SUBNET}
    # No load balancer lands among the pods (team NetworkPolicies admit the ALB by CIDR).
    assert not any("kubernetes.io/role/internal-elb" in s.inputs["tags"] for s in private)
    (cluster,) = plan.of_type(CLUSTER)
    assert plan.outputs["clusterName"] == cluster.inputs["name"]
    assert plan.outputs["oidcProviderUrl"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    (oidc,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert plan.outputs["oidcProviderArn"] == oidc.outputs["arn"]
    assert oidc.inputs["url"] == plan.outputs["oidcProviderUrl"]
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_exported_node_security_group_is_on_the_system_nodes(stack: str) -> None:
    plan = planned(stack)
    (template,) = plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    (group,) = plan.of_type(NODE_GROUP)

    assert template.inputs["vpcSecurityGroupIds"] == [plan.outputs["nodeSecurityGroupId"]]
    assert group.inputs["launchTemplate"]["id"] == template.id
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    (device,) = template.inputs["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] == "true"
    config = loaded(stack).config
    assert (
        group.inputs["scalingConfig"]["minSize"]
        == config.system_nodes.min_size
        >= (2 if stack.endswith("prod") else 1)
    )
    assert group.inputs["capacityType"] == "ON_DEMAND"
    assert group.inputs["amiType"].startswith("AL2023_")
    assert set(group.inputs["subnetIds"]) == set(plan.outputs["privateSubnetIds"])
    # A deploy never resets what the autoscaler decided.
    assert group.ignore_changes == ["scalingConfig.desiredSize"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_network_spans_the_zones_with_nat_as_the_environment_wants(stack: str) -> None:
    plan, config = planned(stack), loaded(stack)
    ids = by_id(plan)
    subnets = plan.of_type(SUBNET)
    zones = {s.inputs["availabilityZone"] for s in subnets}
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")

    assert sorted(zones) == config.zones and len(zones) == (3 if stack.endswith("prod") else 2)
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == sorted(s.cidr for s in config.subnets)
    public = [s for s in subnets if "kubernetes.io/role/elb" in s.inputs["tags"]]
    assert len(public) == len(zones)
    assert all(s.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1" for s in public)
    assert all(
        s.inputs["tags"][f"kubernetes.io/cluster/{config.config.cluster_name}"] == "shared"
        for s in subnets
    )
    assert len(nats) == (len(zones) if config.config.network.nat_gateway_per_zone else 1)
    assert {ids[n.inputs["subnetId"]].urn for n in nats} <= {s.urn for s in public}

    # Every private subnet's default route leaves through a NAT (its own zone's, when per zone).
    associations = {
        a.inputs["subnetId"]: a.inputs["routeTableId"]
        for a in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    defaults = {r.inputs["routeTableId"]: r.inputs for r in plan.of_type(ROUTE)}
    for subnet in subnets:
        route = defaults[associations[subnet.id]]
        assert route["destinationCidrBlock"] == "0.0.0.0/0"
        if subnet in public:
            assert ids[route["gatewayId"]].type == "aws:ec2/internetGateway:InternetGateway"
        else:
            nat = ids[route["natGatewayId"]]
            if config.config.network.nat_gateway_per_zone:
                assert (
                    ids[nat.inputs["subnetId"]].inputs["availabilityZone"]
                    == subnet.inputs["availabilityZone"]
                )
    # S3 and DynamoDB stay off NAT: gateway endpoints on every private route table.
    private_tables = {associations[s.id] for s in subnets if s not in public}
    endpoints = plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert sorted(e.inputs["serviceName"] for e in endpoints) == [
        f"com.amazonaws.{config.region}.dynamodb",
        f"com.amazonaws.{config.region}.s3",
    ]
    assert all(set(e.inputs["routeTableIds"]) == private_tables for e in endpoints)


@pytest.mark.parametrize("stack", STACKS)
def test_the_cluster_is_private_encrypted_logged_and_access_is_in_config(stack: str) -> None:
    plan, config = planned(stack), loaded(stack).config
    (cluster,) = plan.of_type(CLUSTER)
    (key,) = plan.of_type("aws:kms/key:Key")
    (logs,) = plan.of_type("aws:cloudwatch/logGroup:LogGroup")

    assert cluster.inputs["version"] == config.cluster.kubernetes_version
    assert cluster.inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert cluster.inputs["encryptionConfig"] == {
        "provider": {"keyArn": key.outputs["arn"]},
        "resources": ["secrets"],
    }
    assert key.inputs["enableKeyRotation"] is True and key.protect is stack.endswith("prod")
    # The key's policy is a resource of its own, in place before the cluster encrypts with it.
    assert "policy" not in key.inputs
    (key_policy,) = plan.of_type("aws:kms/keyPolicy:KeyPolicy")
    assert key_policy.inputs["keyId"] == key.outputs["keyId"]
    assert key_policy.urn in cluster.dependencies
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    if stack.endswith("prod"):
        assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
        assert cluster.protect and cluster.inputs["deletionProtection"] is True
    else:
        assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert logs.inputs["name"] == f"/aws/eks/{config.cluster_name}/cluster"
    assert logs.inputs["retentionInDays"] == config.cluster.log_retention_days
    assert logs.urn in cluster.dependencies
    assert sorted(cluster.inputs["enabledClusterLogTypes"]) == sorted(config.cluster.log_types)

    entries = plan.of_type("aws:eks/accessEntry:AccessEntry")
    associations = plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    wanted = {
        *((arn, "AmazonEKSClusterAdminPolicy") for arn in config.cluster.access.admins),
        *((arn, "AmazonEKSAdminPolicy") for arn in config.cluster.access.deployers),
        *((arn, "AmazonEKSViewPolicy") for arn in config.cluster.access.viewers),
    }
    assert {e.inputs["principalArn"] for e in entries} == {arn for arn, _ in wanted}
    assert {
        (a.inputs["principalArn"], a.inputs["policyArn"].rsplit("/", 1)[-1]) for a in associations
    } == wanted
    assert all(a.inputs["accessScope"] == {"type": "cluster"} for a in associations)


@pytest.mark.parametrize("stack", STACKS)
def test_the_secrets_key_is_administered_by_name_and_used_by_the_cluster_role_alone(
    stack: str,
) -> None:
    plan, config = planned(stack), loaded(stack).config
    (key_policy,) = plan.of_type("aws:kms/keyPolicy:KeyPolicy")
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r.name == "cluster-role"]
    by_sid = {s["Sid"]: s for s in json.loads(key_policy.inputs["policy"])["Statement"]}

    assert set(by_sid) == {"KeyAdministrators", "ClusterEnvelopeEncryption"}
    administrators = by_sid["KeyAdministrators"]
    if stack.endswith("prod"):
        assert config.key_administrators  # required in prod
    assert administrators["Principal"] == {
        "AWS": sorted(config.key_administrators) or ["arn:aws:iam::123456789012:root"]
    }
    assert administrators["Action"] == list(KEY_ADMIN_ACTIONS)  # manage, never use
    assert by_sid["ClusterEnvelopeEncryption"] == {
        "Sid": "ClusterEnvelopeEncryption",
        "Effect": "Allow",
        "Principal": {"AWS": role.outputs["arn"]},
        "Action": [
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:ListGrants",
        ],
        "Resource": "*",
    }
    assert role.urn in key_policy.dependencies  # KMS refuses a principal that does not exist


@pytest.mark.parametrize("stack", STACKS)
def test_addons_are_pinned_and_ordered_around_the_nodes(stack: str) -> None:
    plan, config = planned(stack), loaded(stack).config
    addons = {a.inputs["addonName"]: a for a in plan.of_type(ADDON)}
    (nodes,) = plan.of_type(NODE_GROUP)

    assert {name: a.inputs["addonVersion"] for name, a in addons.items()} == {
        catalog.ADDONS[key].name: getattr(config.addons, field)
        for key, field in [
            ("vpcCni", "vpc_cni"),
            ("coredns", "coredns"),
            ("kubeProxy", "kube_proxy"),
            ("podIdentityAgent", "pod_identity_agent"),
            ("ebsCsiDriver", "ebs_csi_driver"),
        ]
    }
    assert json.loads(addons["vpc-cni"].inputs["configurationValues"]) == {
        "enableNetworkPolicy": "true",
        # Security groups for pods: a team's database admits only its database clients' group.
        "env": {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"},
    }
    # Networking before the nodes; Deployments (CoreDNS, EBS CSI controller) after them.
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert addons[name].urn in nodes.dependencies
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert nodes.urn in addons[name].dependencies
    # The EBS CSI driver has its own role, assumable only by its service account.
    roles = {r.outputs["arn"]: r for r in plan.of_type("aws:iam/role:Role")}
    trust = json.loads(
        roles[addons["aws-ebs-csi-driver"].inputs["serviceAccountRoleArn"]].inputs[
            "assumeRolePolicy"
        ]
    )
    (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
    issuer = plan.outputs["oidcProviderUrl"].removeprefix("https://")
    assert condition[f"{issuer}:sub"] == "system:serviceaccount:kube-system:ebs-csi-controller-sa"


@pytest.mark.parametrize("stack", STACKS)
def test_platform_stack_passes_the_policy_pack(stack: str) -> None:
    assert check_plan(planned(stack)) == []


# -- a team stack on the planned platform --------------------------------------------------------


def test_every_example_team_stack_references_an_example_platform_stack_of_its_region() -> None:
    platforms = {
        f"acme/mlops-platform/{file.name[len('Pulumi.') : -len('.yaml')]}": load_platform_file(file)
        for file in platform_stacks()
    }
    referenced = set()
    for file in example_stacks():
        loaded_team = load_stack_file(file)
        cluster = loaded_team.config.cluster
        if not isinstance(cluster, StackReferenceCluster):
            continue  # an explicitly given cluster (forecasting-prod shows that form)
        assert cluster.stack_reference in platforms, f"{file.name}: no such platform stack"
        assert platforms[cluster.stack_reference].region == loaded_team.region, file.name
        referenced.add(cluster.stack_reference)
    assert referenced == set(platforms), "an example platform stack no team stack uses"


def test_a_team_stack_plans_on_the_planned_platform_exports() -> None:
    platform = planned("platform/prod")
    asked: list[str] = []

    def platform_stack(reference: str) -> dict[str, Any]:
        asked.append(reference)
        return platform.revealed_outputs

    team = plan_stack("fraud-prod", stack_outputs=platform_stack)

    assert asked == ["acme/mlops-platform/prod"]
    assert check_plan(team) == []
    # The team's resources land on the platform's network and trust its OIDC provider.
    (subnets,) = team.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == platform.outputs["privateSubnetIds"]
    # The database admits the team's database clients, which keep the platform's node group.
    (policy,) = team.of_type("kubernetes:vpc.amazonaws.com/v1beta1:SecurityGroupPolicy")
    assert (
        policy.inputs["spec"]["securityGroups"]["groupIds"][1]
        == (platform.outputs["nodeSecurityGroupId"])
    )
    (rule,) = [
        r
        for r in team.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.endswith("db-from-clients")
    ]
    assert rule.inputs["referencedSecurityGroupId"] != platform.outputs["nodeSecurityGroupId"]
    trusts = [json.loads(r.inputs["assumeRolePolicy"]) for r in team.of_type("aws:iam/role:Role")]
    federated = {
        s["Principal"]["Federated"]
        for t in trusts
        for s in t["Statement"]
        if "Federated" in s.get("Principal", {})
    }
    assert federated == {platform.outputs["oidcProviderArn"]}
    groups = team.of_type(NODE_GROUP)
    assert groups and {g.inputs["clusterName"] for g in groups} == {platform.outputs["clusterName"]}


# -- replayed through the AWS APIs (moto) --------------------------------------------------------


def _client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _tags(resource: PlannedResource, kind: str) -> list[dict[str, Any]]:
    tags = [{"Key": k, "Value": v} for k, v in resource.inputs.get("tags", {}).items()]
    return [{"ResourceType": kind, "Tags": tags}]


@pytest.mark.moto
@pytest.mark.parametrize("stack", STACKS)
def test_the_planned_network_replays_through_the_ec2_api(stack: str, aws_endpoint: str) -> None:
    plan, config = planned(stack), loaded(stack)
    ec2 = _client("ec2", aws_endpoint, config.region)
    real: dict[str, str] = {}  # planned id -> the id EC2 gave

    def ref(value: str) -> str:
        return real[value]

    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    real[vpc.id] = ec2.create_vpc(
        CidrBlock=vpc.inputs["cidrBlock"], TagSpecifications=_tags(vpc, "vpc")
    )["Vpc"]["VpcId"]
    for attribute in ("enableDnsHostnames", "enableDnsSupport"):
        ec2.modify_vpc_attribute(
            VpcId=real[vpc.id],
            **{attribute[0].upper() + attribute[1:]: {"Value": vpc.inputs[attribute]}},
        )
    (gateway,) = plan.of_type("aws:ec2/internetGateway:InternetGateway")
    real[gateway.id] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(
        InternetGatewayId=real[gateway.id], VpcId=ref(gateway.inputs["vpcId"])
    )
    for subnet in plan.of_type(SUBNET):
        real[subnet.id] = ec2.create_subnet(
            VpcId=ref(subnet.inputs["vpcId"]),
            CidrBlock=subnet.inputs["cidrBlock"],
            AvailabilityZone=subnet.inputs["availabilityZone"],
            TagSpecifications=_tags(subnet, "subnet"),
        )["Subnet"]["SubnetId"]
    for address in plan.of_type("aws:ec2/eip:Eip"):
        real[address.id] = ec2.allocate_address(Domain=address.inputs["domain"])["AllocationId"]
    for nat in plan.of_type("aws:ec2/natGateway:NatGateway"):
        real[nat.id] = ec2.create_nat_gateway(
            SubnetId=ref(nat.inputs["subnetId"]),
            AllocationId=ref(nat.inputs["allocationId"]),
            ConnectivityType=nat.inputs["connectivityType"],
        )["NatGateway"]["NatGatewayId"]
    for table in plan.of_type(ROUTE_TABLE):
        real[table.id] = ec2.create_route_table(VpcId=ref(table.inputs["vpcId"]))["RouteTable"][
            "RouteTableId"
        ]
    for route in plan.of_type(ROUTE):
        target = (
            {"GatewayId": ref(route.inputs["gatewayId"])}
            if "gatewayId" in route.inputs
            else {"NatGatewayId": ref(route.inputs["natGatewayId"])}
        )
        ec2.create_route(
            RouteTableId=ref(route.inputs["routeTableId"]),
            DestinationCidrBlock=route.inputs["destinationCidrBlock"],
            **target,
        )
    for association in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        ec2.associate_route_table(
            RouteTableId=ref(association.inputs["routeTableId"]),
            SubnetId=ref(association.inputs["subnetId"]),
        )
    for endpoint in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        ec2.create_vpc_endpoint(
            VpcId=ref(endpoint.inputs["vpcId"]),
            ServiceName=endpoint.inputs["serviceName"],
            VpcEndpointType=endpoint.inputs["vpcEndpointType"],
            RouteTableIds=[ref(t) for t in endpoint.inputs["routeTableIds"]],
        )
    (template,) = plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    metadata = template.inputs["metadataOptions"]
    (device,) = template.inputs["blockDeviceMappings"]
    ec2.create_launch_template(
        LaunchTemplateName=f"{config.config.cluster_name}-system",
        LaunchTemplateData={
            "MetadataOptions": {
                "HttpEndpoint": metadata["httpEndpoint"],
                "HttpTokens": metadata["httpTokens"],
                "HttpPutResponseHopLimit": int(metadata["httpPutResponseHopLimit"]),
                "InstanceMetadataTags": metadata["instanceMetadataTags"],
            },
            "BlockDeviceMappings": [
                {
                    "DeviceName": device["deviceName"],
                    "Ebs": {
                        "VolumeSize": int(device["ebs"]["volumeSize"]),
                        "VolumeType": device["ebs"]["volumeType"],
                        "Encrypted": device["ebs"]["encrypted"] == "true",
                        "DeleteOnTermination": device["ebs"]["deleteOnTermination"] == "true",
                    },
                }
            ],
        },
    )

    # What EC2 now holds routes as planned: private subnets reach S3 and DynamoDB by endpoint.
    vpc_id = real[vpc.id]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "RouteTables"
    ]
    private_ids = {real[s] for s in plan.outputs["privateSubnetIds"]}
    private_tables = [
        t for t in tables if {a.get("SubnetId") for a in t["Associations"]} & private_ids
    ]
    assert len(private_tables) == len(private_ids)
    for table in private_tables:
        targets = {
            r.get("DestinationCidrBlock") or r.get("DestinationPrefixListId"): r
            for r in table["Routes"]
        }
        assert targets["0.0.0.0/0"].get("NatGatewayId")
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "VpcEndpoints"
    ]
    assert sorted(e["ServiceName"].rsplit(".", 1)[-1] for e in endpoints) == ["dynamodb", "s3"]
    assert all(
        set(e["RouteTableIds"]) == {t["RouteTableId"] for t in private_tables} for e in endpoints
    )
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == sorted(s.cidr for s in config.subnets)


@pytest.mark.moto
@pytest.mark.parametrize("stack", STACKS)
def test_planned_iam_kms_and_logs_replay_through_their_apis(stack: str, aws_endpoint: str) -> None:
    plan, config = planned(stack), loaded(stack)
    iam = _client("iam", aws_endpoint, config.region)
    kms = _client("kms", aws_endpoint, config.region)
    logs = _client("logs", aws_endpoint, config.region)
    prefix = f"{stack.replace('/', '-')}-"

    roles = {r.outputs["name"]: r for r in plan.of_type("aws:iam/role:Role")}
    for name, role in roles.items():
        iam.create_role(
            RoleName=prefix + name, AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"]
        )
    for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        iam.put_role_policy(
            RoleName=prefix + policy.inputs["role"],
            PolicyName=policy.name,
            PolicyDocument=policy.inputs["policy"],
        )
    (oidc,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    created = iam.create_open_id_connect_provider(
        Url=oidc.inputs["url"], ClientIDList=oidc.inputs["clientIdLists"]
    )["OpenIDConnectProviderArn"]
    assert created.rsplit("/", 3)[1:] == plan.outputs["oidcProviderArn"].rsplit("/", 3)[1:]

    (key,) = plan.of_type("aws:kms/key:Key")
    key_id = kms.create_key(Description=key.inputs["description"])["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    (key_policy,) = plan.of_type("aws:kms/keyPolicy:KeyPolicy")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=key_policy.inputs["policy"])
    stored = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert json.loads(stored) == json.loads(key_policy.inputs["policy"])

    (group,) = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    logs.create_log_group(logGroupName=group.inputs["name"], tags=group.inputs["tags"])
    logs.put_retention_policy(
        logGroupName=group.inputs["name"], retentionInDays=int(group.inputs["retentionInDays"])
    )
    (stored,) = logs.describe_log_groups(logGroupNamePrefix=group.inputs["name"])["logGroups"]
    assert stored["retentionInDays"] == config.config.cluster.log_retention_days


def test_mlops_plan_shows_the_platform_tree() -> None:
    from typer.testing import CliRunner

    from tooling.cli import app

    result = CliRunner().invoke(app, ["plan", "platform/prod"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert f"prod · {len(planned('platform/prod').resources)} resources" in result.stdout
    for line in (
        "mlops:platform:Network network",
        "aws:eks/cluster:Cluster cluster-eks",
        "aws:eks/addon:Addon cluster-vpc-cni",
        "aws:ec2/natGateway:NatGateway network-nat-c",
    ):
        assert line in result.stdout
