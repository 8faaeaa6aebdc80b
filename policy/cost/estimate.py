"""A stack's monthly cost from its resources' properties, the price table and usage assumptions.

Pure functions over (type token, properties), like the rules: `mlops cost` runs them over a
mock-engine plan, the budget rules over what CrossGuard hands a stack policy. Each type token
that costs money has a pricer; types that AWS does not charge for are counted as such; any other
type is listed as not priced, never silently zero.

Every line has a monthly estimate and a low-high range: node pools and autoscaled replicas from
their minimum to their maximum, request and transfer volumes from none to `peakFactor` times the
assumption. Usage the properties cannot tell (GB stored, requests, hours a pool runs) comes from
the stack's usage assumptions (`mlops:usage`), and each line names the ones it used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from policy.cost.prices import PriceError, PriceTable

NODE_POOL_LABEL = "mlops.dev/node-pool"
"""Pods selecting this label run on a team node pool, whose nodes are priced already."""
EKS_DEFAULT_DISK_GB = 20
HOURS_PER_WEEK = 168


@dataclass(frozen=True)
class Line:
    """One priced item of one resource."""

    urn: str
    type: str
    sku: str
    unit_price: float
    unit: str
    quantity: float
    """Units per month behind the estimate."""
    monthly: float
    low: float
    high: float
    assumptions: tuple[str, ...] = ()
    """The usage assumptions it used, as `name=value`."""
    note: str = ""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Unpriced:
    urn: str
    type: str
    reason: str

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class Estimate:
    region: str
    currency: str
    taken: str
    source: str
    lines: list[Line] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    no_charge: int = 0
    """Resources AWS does not charge for (IAM, security groups, most Kubernetes objects, ...)."""

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def low(self) -> float:
        return sum(line.low for line in self.lines)

    @property
    def high(self) -> float:
        return sum(line.high for line in self.lines)


@dataclass(frozen=True)
class Priced:
    """A resource as the estimator sees it."""

    type: str
    urn: str
    props: Mapping[str, Any]


class _Context:
    """What a pricer may use: prices, assumptions and the stack's other resources."""

    def __init__(
        self, resources: Sequence[Priced], table: PriceTable, usage: Mapping[str, Any]
    ) -> None:
        self.resources = resources
        self.table = table
        self.usage = usage
        self.hours = table.hours_per_month

    def assumed(self, name: str) -> tuple[float, str]:
        value = self.usage[name]
        shown = f"{value:g}" if isinstance(value, int | float) else value
        return float(value), f"{name}={shown}"

    def line(
        self,
        resource: Priced,
        sku: str,
        quantity: float,
        *,
        low: float | None = None,
        high: float | None = None,
        assumptions: Iterable[str] = (),
        note: str = "",
        factor: float = 1.0,
    ) -> Line:
        """A line for ``quantity`` units of ``sku`` (low/high quantities default to it);
        ``factor`` multiplies the unit price (a Multi-AZ standby, a spot discount)."""
        price = self.table.price(sku)
        unit = price.usd * factor
        return Line(
            urn=resource.urn,
            type=resource.type,
            sku=sku,
            unit_price=unit,
            unit=price.per,
            quantity=quantity,
            monthly=unit * quantity,
            low=unit * (quantity if low is None else low),
            high=unit * (quantity if high is None else high),
            assumptions=tuple(assumptions),
            note=note,
        )

    def traffic(self, resource: Priced, sku: str, name: str, scale: float = 1.0) -> Line:
        """A request or transfer volume: none at the low end, `peakFactor` x the assumption at
        the high end; ``scale`` converts the assumption to the price's unit."""
        value, used = self.assumed(name)
        peak, peak_used = self.assumed("peakFactor")
        quantity = value * scale
        return self.line(
            resource, sku, quantity, low=0, high=quantity * peak, assumptions=(used, peak_used)
        )


Pricer = Callable[[Priced, _Context], list[Line]]
PRICERS: dict[str, Pricer] = {}


def prices(*types: str) -> Callable[[Pricer], Pricer]:
    def register(fn: Pricer) -> Pricer:
        for type_ in types:
            PRICERS[type_] = fn
        return fn

    return register


NO_CHARGE_PREFIXES = (
    "aws:iam/",
    "aws:appautoscaling/",
    "aws:autoscaling/tag:",
    "aws:eks/accessEntry:",
    "aws:eks/accessPolicyAssociation:",
    "aws:eks/addon:",
    "aws:eks/podIdentityAssociation:",
    "aws:vpc/securityGroup",
)
NO_CHARGE_TYPES = frozenset(
    {
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/tag:Tag",
        "aws:kms/alias:Alias",
        "aws:kms/keyPolicy:KeyPolicy",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:cloudwatch/logGroup:LogGroup",
        # A SageMaker model or endpoint costs nothing by itself: the instances of its endpoint
        # configuration's variants do (listed as not priced: see its pricer).
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpoint:Endpoint",
    }
)
"""Types AWS does not charge for by themselves (a log group's cost is its ingestion, which the
workloads cause, not the group)."""
NO_CHARGE_S3_PREFIX = "aws:s3/bucket"
"""A bucket's configuration resources (policy, versioning, encryption, ...): the bucket is priced."""
KUBERNETES_POD_TYPES = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:batch/v1:CronJob",
        "kubernetes:batch/v1:Job",
        "kubernetes:core/v1:Pod",
        "kubernetes:core/v1:Service",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:networking.k8s.io/v1:Ingress",
    }
)
"""Kubernetes kinds that make something cost (pods, load balancers, volumes); others are free."""


def _no_charge(type_: str) -> bool:
    if type_ in NO_CHARGE_TYPES or type_.startswith(NO_CHARGE_PREFIXES):
        return True
    if type_.startswith(NO_CHARGE_S3_PREFIX) and type_ != "aws:s3/bucket:Bucket":
        return True
    return type_.startswith("kubernetes:") and type_ not in KUBERNETES_POD_TYPES


def estimate(resources: Iterable[Priced], table: PriceTable, usage: Mapping[str, Any]) -> Estimate:
    """Price every resource; what has no pricer (or no price in the table) is listed unpriced."""
    resources = list(resources)
    context = _Context(resources, table, usage)
    result = Estimate(table.region, table.currency, table.taken, table.source)
    for resource in resources:
        pricer = PRICERS.get(resource.type)
        if pricer is None:
            if _no_charge(resource.type):
                result.no_charge += 1
            else:
                result.unpriced.append(
                    Unpriced(resource.urn, resource.type, "no pricer for this type")
                )
            continue
        try:
            lines = pricer(resource, context)
        except PriceError as error:
            result.unpriced.append(Unpriced(resource.urn, resource.type, str(error)))
            continue
        if lines:
            result.lines += lines
        else:
            result.no_charge += 1
    return result


# -- helpers over properties ----------------------------------------------------------------------


def _get(props: Any, path: str, default: Any = None) -> Any:
    value = props
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return default if value is None else value


def _number(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


_SUFFIX = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: Any) -> float:
    """A Kubernetes quantity (`500m`, `2`, `512Mi`) as a plain number."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)


# -- compute: node groups, instances, pods on shared nodes ----------------------------------------


@prices("aws:eks/nodeGroup:NodeGroup")
def node_group(resource: Priced, c: _Context) -> list[Line]:
    """Nodes from the pool's minimum (cheapest type) to its maximum (dearest type, on-demand for
    spot: spot never costs more); the estimate runs `desiredSize` nodes plus the assumed hours."""
    props = resource.props
    types = list(_get(props, "instanceTypes", [])) or ["t3.medium"]  # the EKS default type
    spot = _get(props, "capacityType") == "SPOT"
    scaling = _get(props, "scalingConfig", {})
    low_nodes = _number(scaling.get("minSize"))
    high_nodes = _number(scaling.get("maxSize"), low_nodes)
    desired = _number(scaling.get("desiredSize"), low_nodes)
    extra, used = c.assumed("nodePoolHours")
    hours = min(desired * c.hours + extra, high_nodes * c.hours)
    hourly = {t: c.table.price(f"ec2/{t}").usd for t in types}
    factor = 1 - c.table.spot_discount if spot else 1.0
    first = types[0]
    compute = c.line(
        resource,
        f"ec2/{first}",
        hours,
        factor=factor,
        assumptions=(used,),
        note=("spot" if spot else "on-demand")
        + (f"; {len(types)} types, range over all" if len(types) > 1 else ""),
    )
    compute = _with_range(
        compute,
        low=low_nodes * c.hours * min(hourly.values()) * factor,
        high=high_nodes * c.hours * max(hourly.values()),
    )
    disk, volume_type = _node_disk(c, props)
    volumes = c.line(
        resource,
        f"ebs/{volume_type}",
        disk * hours / c.hours,
        low=disk * low_nodes,
        high=disk * high_nodes,
        assumptions=(used,),
        note=f"{disk:g} GB root volume per node",
    )
    return [compute, volumes]


def _node_disk(c: _Context, props: Mapping[str, Any]) -> tuple[float, str]:
    """(GB, EBS type) of a node's root volume: `diskSize`, or the launch template's first
    block device (found by id or name), or the EKS default."""
    if "diskSize" in props:
        return _number(props["diskSize"], EKS_DEFAULT_DISK_GB), "gp3"
    reference = _get(props, "launchTemplate", {})
    for other in c.resources:
        if other.type != "aws:ec2/launchTemplate:LaunchTemplate":
            continue
        keys = {_get(other.props, "id"), _get(other.props, "name")} - {None}
        if keys & {reference.get("id"), reference.get("name")}:
            for mapping in _get(other.props, "blockDeviceMappings", []):
                ebs = _get(mapping, "ebs", {})
                if "volumeSize" in ebs:
                    return _number(ebs["volumeSize"]), str(ebs.get("volumeType", "gp3"))
    return EKS_DEFAULT_DISK_GB, "gp3"


def _with_range(line: Line, *, low: float, high: float) -> Line:
    return Line(**{**line.__dict__, "low": low, "high": high})


@prices("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
def sagemaker_endpoint_configuration(resource: Priced, c: _Context) -> list[Line]:
    """SageMaker bills its hosting instances at its own (`ml.*`) rates, which the price table
    does not hold: listed as not priced, naming the instances, never counted as zero."""
    variants = [
        *(_get(resource.props, "productionVariants", []) or []),
        *(_get(resource.props, "shadowProductionVariants", []) or []),
    ]
    fleet = ", ".join(
        f"{_get(v, 'initialInstanceCount', 1)} x {_get(v, 'instanceType', '?')}" for v in variants
    )
    raise PriceError(
        f"SageMaker hosting ({fleet or 'no variants'}) has its own prices, not in the price table"
    )


@prices("aws:ec2/instance:Instance")
def ec2_instance(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, f"ec2/{_get(resource.props, 'instanceType')}", c.hours)]


def _pod_requests(template: Mapping[str, Any]) -> tuple[float, float, bool]:
    """(vCPU, GiB) a pod requests, and whether it runs on a team node pool."""
    spec = _get(template, "spec", {})
    cpu = memory = 0.0
    for container in spec.get("containers", []) or []:
        requests = _get(container, "resources.requests", {})
        cpu += quantity(requests.get("cpu", 0))
        memory += quantity(requests.get("memory", 0)) / 2**30
    on_pool = NODE_POOL_LABEL in (spec.get("nodeSelector") or {})
    return cpu, memory, on_pool


def _pod_hourly(c: _Context, cpu: float, memory: float) -> tuple[float, str, str]:
    """A pod's share of a shared node by its binding request, priced at the node's rate."""
    node_type = str(c.usage["sharedNodeType"])
    node = c.table.instance(node_type)
    share = max(cpu / node.vcpu, memory / node.memory_gib)
    return share, f"ec2/{node_type}", f"sharedNodeType={node_type}"


def _hpa_for(c: _Context, kind: str, name: str, namespace: str) -> Mapping[str, Any] | None:
    for other in c.resources:
        if other.type.startswith("kubernetes:autoscaling/") and other.type.endswith(
            ":HorizontalPodAutoscaler"
        ):
            target = _get(other.props, "spec.scaleTargetRef", {})
            if (
                target.get("kind") == kind
                and target.get("name") == name
                and _get(other.props, "metadata.namespace") == namespace
            ):
                return other.props
    return None


@prices("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
def replicated_pods(resource: Priced, c: _Context) -> list[Line]:
    """Replicas at their requests' share of a shared node; an HPA's min..max is the range."""
    props = resource.props
    cpu, memory, on_pool = _pod_requests(_get(props, "spec.template", {}))
    if on_pool:
        return []  # the node group's line prices these nodes
    kind = resource.type.rsplit(":", 1)[-1]
    hpa = _hpa_for(c, kind, _get(props, "metadata.name", ""), _get(props, "metadata.namespace", ""))
    share, sku, node_used = _pod_hourly(c, cpu, memory)
    if hpa is None:
        replicas = _number(_get(props, "spec.replicas"), 1)
        return [
            c.line(
                resource,
                sku,
                replicas * share * c.hours,
                factor=1,
                assumptions=(node_used,),
                note=f"{replicas:g} replica(s) x {share:.3f} of a node",
            )
        ]
    low = _number(_get(hpa, "spec.minReplicas"), 1)
    high = _number(_get(hpa, "spec.maxReplicas"), low)
    load, load_used = c.assumed("replicaLoadPercent")
    replicas = low + (high - low) * load / 100
    return [
        c.line(
            resource,
            sku,
            replicas * share * c.hours,
            low=low * share * c.hours,
            high=high * share * c.hours,
            assumptions=(node_used, load_used),
            note=f"HPA {low:g}..{high:g} replicas x {share:.3f} of a node",
        )
    ]


@functools.lru_cache(maxsize=1024)
def runs_per_month(schedule: str, hours_per_month: float) -> float:
    """How often a cron schedule fires in a month (counted over one week, scaled). Kept by
    schedule: a diff prices both sides of every stack, and teams share a few schedules."""
    start = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
    end = start + timedelta(hours=HOURS_PER_WEEK)
    runs = croniter(schedule, start - timedelta(seconds=1))
    count = 0
    while runs.get_next(datetime) < end:
        count += 1
    if count == 0:  # monthly or rarer schedules: count over a year
        runs = croniter(schedule, start - timedelta(seconds=1))
        year_end = start + timedelta(days=365)
        while runs.get_next(datetime) < year_end:
            count += 1
        return count * hours_per_month / (365 * 24)
    return count * hours_per_month / HOURS_PER_WEEK


@prices("kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job")
def job_pods(resource: Priced, c: _Context) -> list[Line]:
    """Each run's pods (one per completion of an Indexed Job) for the assumed run time, at
    their requests' share of a shared node."""
    props = resource.props
    cron = resource.type.endswith(":CronJob")
    job = _get(props, "spec.jobTemplate.spec" if cron else "spec", {})
    template = job.get("template") or {}
    cpu, memory, on_pool = _pod_requests(template)
    if on_pool:
        return []
    share, sku, node_used = _pod_hourly(c, cpu, memory)
    minutes, minutes_used = c.assumed("jobRunMinutes")
    runs = runs_per_month(str(_get(props, "spec.schedule")), c.hours) if cron else 1
    pods = int(job.get("completions") or 1)
    each = f" x {pods} pods" if pods > 1 else ""
    return [
        c.line(
            resource,
            sku,
            runs * pods * minutes / 60 * share,
            assumptions=(node_used, minutes_used),
            note=f"{runs:.0f} run(s){each} x {minutes:g} min x {share:.3f} of a node",
        )
    ]


# -- load balancers, network -----------------------------------------------------------------------


def _load_balancer(resource: Priced, c: _Context, kind: str, note: str = "") -> list[Line]:
    lcu, used = c.assumed("loadBalancerCapacityUnits")
    peak, peak_used = c.assumed("peakFactor")
    return [
        c.line(resource, f"elb/{kind}", c.hours, note=note),
        c.line(
            resource,
            f"elb/{kind}-lcu",
            lcu * c.hours,
            low=0,
            high=lcu * c.hours * peak,
            assumptions=(used, peak_used),
        ),
    ]


@prices("kubernetes:networking.k8s.io/v1:Ingress")
def ingress(resource: Priced, c: _Context) -> list[Line]:
    """An `alb` Ingress gets an Application Load Balancer from the AWS load balancer controller
    (one per Ingress; Ingresses sharing a `group.name` share one, priced on the first)."""
    props = resource.props
    annotations = _get(props, "metadata.annotations", {})
    ingress_class = _get(props, "spec.ingressClassName") or annotations.get(
        "kubernetes.io/ingress.class"
    )
    if ingress_class != "alb":
        return []
    group = annotations.get("alb.ingress.kubernetes.io/group.name")
    if group:
        first = next(
            r
            for r in c.resources
            if r.type == resource.type
            and _get(r.props, "metadata.annotations", {}).get(
                "alb.ingress.kubernetes.io/group.name"
            )
            == group
        )
        if first.urn != resource.urn:
            return []
    return _load_balancer(resource, c, "application", note=f"group {group}" if group else "")


@prices("kubernetes:core/v1:Service")
def service(resource: Priced, c: _Context) -> list[Line]:
    """A `LoadBalancer` Service gets a Network Load Balancer; other Services cost nothing."""
    if _get(resource.props, "spec.type") != "LoadBalancer":
        return []
    return _load_balancer(resource, c, "network")


@prices("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def load_balancer(resource: Priced, c: _Context) -> list[Line]:
    kind = _get(resource.props, "loadBalancerType", "application")
    if kind not in ("application", "network"):
        raise PriceError(f"no price for a {kind} load balancer")
    return _load_balancer(resource, c, kind)


@prices("aws:ec2/natGateway:NatGateway")
def nat_gateway(resource: Priced, c: _Context) -> list[Line]:
    """The gateway's hours, and the data it processes (assumed per gateway)."""
    lines = [c.line(resource, "vpc/nat-gateway", c.hours)]
    if _get(resource.props, "connectivityType", "public") == "public":
        lines.append(c.traffic(resource, "vpc/nat-gateway-data", "natDataGb"))
    return lines


@prices("aws:ec2/vpcEndpoint:VpcEndpoint")
def vpc_endpoint(resource: Priced, c: _Context) -> list[Line]:
    """An interface endpoint is charged per hour in each subnet (AZ) it has a network interface
    in; gateway endpoints (S3, DynamoDB) cost nothing."""
    if _get(resource.props, "vpcEndpointType", "Gateway") != "Interface":
        return []
    zones = max(len(_get(resource.props, "subnetIds", [])), 1)
    return [
        c.line(
            resource,
            "vpc/interface-endpoint",
            zones * c.hours,
            note=f"{zones} zone(s); data processed not counted",
        )
    ]


@prices("aws:ec2/eip:Eip")
def elastic_ip(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, "vpc/public-ipv4", c.hours, note="public IPv4 address")]


@prices("aws:eks/cluster:Cluster")
def eks_cluster(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, "eks/cluster", c.hours, note="control plane, standard support")]


# -- storage and data -----------------------------------------------------------------------------


@prices("aws:ebs/volume:Volume")
def ebs_volume(resource: Priced, c: _Context) -> list[Line]:
    kind = _get(resource.props, "type", "gp3")
    return [c.line(resource, f"ebs/{kind}", _number(_get(resource.props, "size")))]


@prices("kubernetes:core/v1:PersistentVolumeClaim")
def volume_claim(resource: Priced, c: _Context) -> list[Line]:
    size = quantity(_get(resource.props, "spec.resources.requests.storage", 0)) / 2**30
    return [c.line(resource, "ebs/gp3", size, note="EBS gp3 (the cluster's default class)")]


@prices("aws:rds/instance:Instance")
def rds_instance(resource: Priced, c: _Context) -> list[Line]:
    """Instance hours and storage, both twice for Multi-AZ (the standby); storage up to the
    autoscaling ceiling at the high end; the master password's secret when RDS manages it."""
    props = resource.props
    engine = _get(props, "engine", "postgres")
    if engine != "postgres":
        raise PriceError(f"the table prices RDS for PostgreSQL only, not {engine}")
    copies = 2 if props.get("multiAz") is True else 1
    note = "Multi-AZ: primary + standby" if copies == 2 else "single-AZ"
    storage = _number(_get(props, "allocatedStorage"), 20)
    ceiling = _number(_get(props, "maxAllocatedStorage"), storage) or storage
    storage_type = _get(props, "storageType", "gp3")
    lines = [
        c.line(resource, f"rds-postgres/{props.get('instanceClass')}", c.hours * copies, note=note),
        c.line(
            resource,
            f"rds/storage-{storage_type}",
            storage * copies,
            high=ceiling * copies,
            note=note + (f"; autoscaling to {ceiling:g} GB" if ceiling > storage else ""),
        ),
    ]
    if props.get("manageMasterUserPassword") is True:
        lines.append(c.line(resource, "secretsmanager/secret", 1, note="managed master password"))
    return lines


@prices("aws:dynamodb/table:Table")
def dynamodb_table(resource: Priced, c: _Context) -> list[Line]:
    """On demand: requests (none..peak) and storage; provisioned: capacity-hours from the
    table's units to the autoscaling maximum; continuous backups when PITR is on."""
    props = resource.props
    storage, storage_used = c.assumed("onlineStorageGb")
    lines = [c.line(resource, "dynamodb/storage", storage, assumptions=(storage_used,))]
    if _get(props, "billingMode", "PROVISIONED") == "PAY_PER_REQUEST":
        lines.append(c.traffic(resource, "dynamodb/read-request-units", "onlineReadsMillions"))
        lines.append(c.traffic(resource, "dynamodb/write-request-units", "onlineWritesMillions"))
    else:
        name = _get(props, "name", "")
        for kind, key in (("read", "readCapacity"), ("write", "writeCapacity")):
            units = _number(props.get(key), 1)
            dimension = f"dynamodb:table:{kind.capitalize()}CapacityUnits"
            ceiling = _autoscaling_max(c, f"table/{name}", dimension, units)
            lines.append(
                c.line(
                    resource,
                    f"dynamodb/{kind}-capacity-unit",
                    units * c.hours,
                    high=ceiling * c.hours,
                    note=f"{units:g}..{ceiling:g} units (autoscaling)",
                )
            )
    if _get(props, "pointInTimeRecovery.enabled") is True:
        lines.append(
            c.line(
                resource,
                "dynamodb/continuous-backup",
                storage,
                assumptions=(storage_used,),
                note="point-in-time recovery",
            )
        )
    return lines


def _autoscaling_max(c: _Context, resource_id: str, dimension: str, default: float) -> float:
    for other in c.resources:
        if (
            other.type == "aws:appautoscaling/target:Target"
            and _get(other.props, "resourceId") == resource_id
            and _get(other.props, "scalableDimension") == dimension
        ):
            return _number(_get(other.props, "maxCapacity"), default)
    return default


@prices("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def s3_bucket(resource: Priced, c: _Context) -> list[Line]:
    storage, used = c.assumed("bucketStorageGb")
    return [
        c.line(resource, "s3/standard-storage", storage, assumptions=(used,)),
        c.traffic(resource, "s3/put-requests", "bucketPutRequests", scale=1e-3),
        c.traffic(resource, "s3/get-requests", "bucketGetRequests", scale=1e-3),
    ]


@prices("aws:ecr/repository:Repository")
def ecr_repository(resource: Priced, c: _Context) -> list[Line]:
    storage, used = c.assumed("imageStorageGb")
    return [c.line(resource, "ecr/storage", storage, assumptions=(used,))]


@prices("aws:kms/key:Key")
def kms_key(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, "kms/key", 1, note="requests not counted")]


@prices("aws:secretsmanager/secret:Secret")
def secret(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, "secretsmanager/secret", 1)]


# -- monitoring -----------------------------------------------------------------------------------

HIGH_RESOLUTION_SECONDS = 60


@prices("aws:cloudwatch/metricAlarm:MetricAlarm")
def metric_alarm(resource: Priced, c: _Context) -> list[Line]:
    """One alarm metric per metric an alarm reads (a metric-math alarm reads several);
    high resolution below a 60-second period."""
    props = resource.props
    queries = props.get("metricQueries") or []
    metrics = [q for q in queries if isinstance(q, Mapping) and q.get("metric")]
    periods = [_number(_get(q, "metric.period"), 60) for q in metrics] or [
        _number(props.get("period"), 60)
    ]
    high = min(periods) < HIGH_RESOLUTION_SECONDS
    sku = "cloudwatch/alarm-high-resolution" if high else "cloudwatch/alarm-standard"
    count = max(len(metrics), 1)
    return [c.line(resource, sku, count, note=f"{count} metric(s)")]


@prices("aws:cloudwatch/dashboard:Dashboard")
def dashboard(resource: Priced, c: _Context) -> list[Line]:
    return [c.line(resource, "cloudwatch/dashboard", 1)]


@prices("aws:sns/topic:Topic")
def sns_topic(resource: Priced, c: _Context) -> list[Line]:
    return [c.traffic(resource, "sns/publish", "alertNotifications", scale=1e-6)]


@prices("aws:sns/topicSubscription:TopicSubscription")
def sns_subscription(resource: Priced, c: _Context) -> list[Line]:
    """Deliveries by protocol; SQS and Lambda deliveries cost nothing."""
    protocol = _get(resource.props, "protocol")
    if protocol == "email" or protocol == "email-json":
        return [c.traffic(resource, "sns/email", "alertNotifications", scale=1e-5)]
    if protocol in ("http", "https"):
        return [c.traffic(resource, "sns/https", "alertNotifications", scale=1e-6)]
    if protocol in ("sqs", "lambda", "firehose"):
        return []
    raise PriceError(f"no price for SNS deliveries over {protocol}")


def lines_by_resource(lines: Iterable[Line]) -> Iterator[tuple[str, list[Line]]]:
    """Lines grouped by resource URN, in order of first appearance."""
    groups: dict[str, list[Line]] = {}
    for line in lines:
        groups.setdefault(line.urn, []).append(line)
    yield from groups.items()


def round_usd(value: float) -> float:
    """Cents, rounded half up (how the table and JSON show money)."""
    return math.floor(value * 100 + 0.5) / 100
