"""`mlops:platform:Network`: the VPC every team's workloads run in."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.platform.base import Platform
from components.platform.layout import SubnetPlan

ANYWHERE = "0.0.0.0/0"
GATEWAY_ENDPOINT_SERVICES = ("s3", "dynamodb")
"""Reached through gateway endpoints: feature store and registry traffic stays off NAT (and free)."""


class Network(pulumi.ComponentResource):
    """VPC, public and private subnets per zone, internet gateway, NAT, routes, endpoints."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, in zone order: nodes, pods, databases."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets, in zone order: internet-facing load balancers and NAT."""

    def __init__(
        self,
        name: str,
        *,
        platform: Platform,
        cidr: str,
        subnets: Sequence[SubnetPlan],
        nat_per_zone: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # DNS hostnames: EKS nodes register by their private DNS name; endpoints need both.
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=platform.named("vpc"),
            opts=child,
        )
        # The default security group allows all traffic among its members: empty it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags=platform.named("default"), opts=child
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=platform.named("igw"), opts=child
        )

        public = [s for s in subnets if s.public]
        private = [s for s in subnets if not s.public]
        public_ids: dict[str, pulumi.Output[str]] = {}
        private_ids: dict[str, pulumi.Output[str]] = {}
        for plan in public:
            # Every load balancer goes here, internal ones too: no pod ever has an address here, so
            # a team's NetworkPolicy can admit the load balancer by CIDR without admitting pods.
            public_ids[plan.zone] = aws.ec2.Subnet(
                f"{name}-public-{plan.suffix}",
                vpc_id=vpc.id,
                cidr_block=plan.cidr,
                availability_zone=plan.zone,
                map_public_ip_on_launch=False,
                tags={
                    **platform.named(f"public-{plan.suffix}"),
                    "kubernetes.io/role/elb": "1",
                    "kubernetes.io/role/internal-elb": "1",
                    platform.cluster_tag: "shared",
                },
                opts=child,
            ).id
        for plan in private:
            # Nodes, pods and databases; no load balancer (see the public subnets).
            private_ids[plan.zone] = aws.ec2.Subnet(
                f"{name}-private-{plan.suffix}",
                vpc_id=vpc.id,
                cidr_block=plan.cidr,
                availability_zone=plan.zone,
                tags={
                    **platform.named(f"private-{plan.suffix}"),
                    platform.cluster_tag: "shared",
                },
                opts=child,
            ).id

        # Public subnets route to the internet through the gateway.
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=platform.named("public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=gateway.id,
            opts=child,
        )
        for plan in public:
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{plan.suffix}",
                route_table_id=public_routes.id,
                subnet_id=public_ids[plan.zone],
                opts=child,
            )

        # NAT: one per zone in prod (a zone's loss cuts off only that zone), else one shared.
        nat_zones = [p for p in public] if nat_per_zone else public[:1]
        nats: dict[str, pulumi.Output[str]] = {}
        for plan in nat_zones:
            address = aws.ec2.Eip(
                f"{name}-nat-{plan.suffix}",
                domain="vpc",
                tags=platform.named(f"nat-{plan.suffix}"),
                opts=child,
            )
            nats[plan.zone] = aws.ec2.NatGateway(
                f"{name}-nat-{plan.suffix}",
                allocation_id=address.id,
                subnet_id=public_ids[plan.zone],
                connectivity_type="public",
                tags=platform.named(f"nat-{plan.suffix}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
            ).id

        # Private subnets: a route table per zone, default route through its zone's NAT.
        private_tables = []
        for plan in private:
            table = aws.ec2.RouteTable(
                f"{name}-private-{plan.suffix}-rt",
                vpc_id=vpc.id,
                tags=platform.named(f"private-{plan.suffix}"),
                opts=child,
            )
            private_tables.append(table.id)
            aws.ec2.Route(
                f"{name}-private-{plan.suffix}-default",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nats.get(plan.zone, next(iter(nats.values()))),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{plan.suffix}",
                route_table_id=table.id,
                subnet_id=private_ids[plan.zone],
                opts=child,
            )

        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        for service in GATEWAY_ENDPOINT_SERVICES:
            # S3 and DynamoDB traffic from the private subnets bypasses NAT.
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region.region, f".{service}"),
                vpc_endpoint_type="Gateway",
                route_table_ids=private_tables,
                tags=platform.named(service),
                opts=child,
            )

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*private_ids.values()).apply(list)
        self.public_subnet_ids = pulumi.Output.all(*public_ids.values()).apply(list)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
            }
        )
