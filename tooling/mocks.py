"""The project's mock engine: fills what AWS and Kubernetes would compute, like the real ones.

Used by `mlops plan` and by the tests. Outputs are realistic (ARNs with account and region,
endpoints, generated names) and deterministic (derived from the resource's type and name), so
two plans of the same config are identical. An invoke nobody mocked raises: a new data source
must be taught here, never silently return nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _ensure_event_loop

ACCOUNT_ID = "123456789012"
PARTITION = "aws"
SECRET_SHOWN = "[secret]"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
_ROOT = Path(__file__).resolve().parent.parent


class UnknownInvokeError(Exception):
    """The program called a data source the mock engine does not know."""


def make_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A resource's URN as the engine makes it: a child's type is qualified by its parent's
    whole type chain, except under the root stack."""
    if parent:
        qualified = parent.split("::")[2]
        if qualified != ROOT_STACK_TYPE:
            type_ = f"{qualified}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


@dataclass(frozen=True)
class Registration:
    """Where a resource was registered: what the engine knows when it refuses a second one."""

    type: str
    name: str
    parent: str
    """The parent's URN (the root stack's for a top-level resource)."""
    source: str
    """`file:line` of the code that constructed it (the SDK sends it), or '' if unknown."""

    def __str__(self) -> str:
        parent = self.parent.rsplit("::", 1)[-1] if self.parent else "the stack"
        where = f" at {self.source}" if self.source else ""
        return f"{self.type} {self.name!r} under {parent!r}{where}"


class DuplicateUrnError(Exception):
    """Two resources with one URN: the engine stops the update at the second registration."""

    def __init__(self, urn: str, first: Registration, second: Registration) -> None:
        self.urn, self.first, self.second = urn, first, second
        super().__init__(f"{urn}: {self.problem}")

    @property
    def problem(self) -> str:
        return (
            f"should be registered once, but {self.first} and {self.second} both have this "
            "URN (the engine stops the update: 'Duplicate resource URN ...; try giving it a "
            "unique name'); give one of them a unique name, e.g. prefixed with its parent's"
        )


def _source(request: Any) -> str:
    position = getattr(request, "sourcePosition", None)
    if position is None or not position.uri:
        return ""
    path = Path(unquote(urlparse(position.uri).path))
    shown = path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path
    return f"{shown}:{position.line}"


class EngineMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor with the engine's URNs and its refusal of a URN given twice
    (the SDK's own mock overwrites the first registration silently)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return make_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def _claim(self, request: Any) -> None:
        urn = self.make_urn(request.parent, request.type, request.name)
        here = Registration(request.type, request.name, request.parent, _source(request))
        first = self.registrations.setdefault(urn, here)
        if first is not here:
            raise DuplicateUrnError(urn, first, here)

    def RegisterResource(self, request: Any) -> Any:
        if request.type != ROOT_STACK_TYPE:
            self._claim(request)
        return super().RegisterResource(request)

    def ReadResource(self, request: Any) -> Any:
        self._claim(request)
        return super().ReadResource(request)


def isolate_run() -> None:
    """Call after `set_mocks`, in the run's own context: a run the engine refused leaves
    nothing behind for the next one (`mlops policy` plans every stack in one process)."""
    # The SDK's set of pending outputs is shared by every context unless set in this one: a
    # refused run's outputs, still failing, would be awaited by the next run.
    SETTINGS.outputs = set()
    loop = _ensure_event_loop()
    if getattr(loop.get_exception_handler(), "_quiet_refusals", False):
        return
    previous = loop.get_exception_handler()

    def handler(loop: Any, context: dict[str, Any]) -> None:
        # The refused registration's own outputs fail with it; nobody awaits them any more.
        if isinstance(context.get("exception"), DuplicateUrnError):
            return
        (previous or type(loop).default_exception_handler)(loop, context)

    handler._quiet_refusals = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


def _hex(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def autoname(name: str, type_: str) -> str:
    """The physical name Pulumi gives a resource without one: `<name>-<7 hex>`."""
    return f"{name}-{_hex(type_, name, length=7)}"


VPC_CIDR = "10.0.0.0/16"
"""The CIDR block of every VPC the mock engine is asked about (the platform's default)."""


def _vpc(region: str, vpc_id: str) -> dict[str, Any]:
    """`aws.ec2.getVpc` by id: any VPC the program names exists, with the default block."""
    return {
        "id": vpc_id,
        "arn": f"arn:{PARTITION}:ec2:{region}:{ACCOUNT_ID}:vpc/{vpc_id}",
        "cidrBlock": VPC_CIDR,
        "default": False,
        "state": "available",
        "enableDnsHostnames": True,
        "enableDnsSupport": True,
        "ownerId": ACCOUNT_ID,
        "tags": {},
    }


def platform_outputs(reference: str, region: str) -> dict[str, Any]:
    """What a platform stack `<org>/<project>/<stack>` exports (see components.config.cluster)."""
    cluster = f"{reference.rsplit('/', 1)[-1]}-eks"
    oidc_id = _hex(reference, length=32).upper()
    issuer = f"oidc.eks.{region}.amazonaws.com/id/{oidc_id}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": f"https://{_hex(reference, 'api', length=32).upper()}.gr7.{region}.eks.amazonaws.com",
                    "certificate-authority-data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t",
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
        "users": [
            {
                "name": cluster,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region],
                    }
                },
            }
        ],
    }
    return {
        "clusterName": cluster,
        "kubeconfig": json.dumps(kubeconfig),
        "oidcProviderArn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:oidc-provider/{issuer}",
        "oidcProviderUrl": f"https://{issuer}",
        "vpcId": f"vpc-{_hex(reference, 'vpc', length=17)}",
        "privateSubnetIds": [f"subnet-{_hex(reference, az, length=17)}" for az in "abc"],
        "nodeSecurityGroupId": f"sg-{_hex(reference, 'nodes', length=17)}",
    }


class PlatformMocks(pulumi.runtime.Mocks):
    """Mocks that behave like the AWS and Kubernetes providers and the Pulumi service."""

    def __init__(self, region: str, stack_outputs: Callable[[str], dict[str, Any]] | None = None):
        self.region = region
        self.stack_outputs = stack_outputs or (lambda ref: platform_outputs(ref, region))

    # -- invokes -------------------------------------------------------------------------------
    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        known: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/platform-ci",
                "userId": "AIDAEXAMPLEPLATFORMCI",
                "id": ACCOUNT_ID,
            },
            "aws:index/getRegion:getRegion": lambda: {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            },
            "aws:ec2/getVpc:getVpc": lambda: _vpc(self.region, str(args.args.get("id", ""))),
            "aws:index/getPartition:getPartition": lambda: {
                "partition": PARTITION,
                "dnsSuffix": "amazonaws.com",
                "id": PARTITION,
                "reverseDnsPrefix": "com.amazonaws",
            },
        }
        if args.token not in known:
            raise UnknownInvokeError(
                f"the mock engine has no answer for invoke {args.token!r}; teach tooling/mocks.py"
            )
        return known[args.token](), []  # the SDK iterates the check failures

    # -- resources -----------------------------------------------------------------------------
    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        type_, name = args.typ, args.name
        if type_ == "pulumi:pulumi:StackReference":
            reference = state.get("name") or name
            return reference, {
                "name": reference,
                "outputs": self.stack_outputs(reference),
                "secretOutputNames": ["kubeconfig"],
            }
        if type_.startswith("pulumi:providers:"):
            return _hex(type_, name, length=32), state
        if type_.startswith("kubernetes:"):
            return self._kubernetes(type_, name, state)
        if type_.startswith("aws:"):
            return self._aws(type_, name, state)
        if type_.startswith("tls:"):
            return _tls(type_, name, state)
        return f"{name}-id", state

    def _kubernetes(
        self, type_: str, name: str, state: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        metadata = dict(state.get("metadata") or {})
        metadata.setdefault("name", f"{name}-{_hex(type_, name)}")
        metadata.update(
            uid=_uuid(type_, name),
            resourceVersion="1",
            creationTimestamp="2025-01-01T00:00:00Z",
            generation=1,
        )
        state["metadata"] = metadata
        kind = type_.rsplit(":", 1)[-1]
        if kind == "Service":
            state["status"] = {"loadBalancer": {}}
            spec = dict(state.get("spec") or {})
            if spec.get("type") == "LoadBalancer":
                # What the AWS Load Balancer Controller reports: the NLB's DNS name.
                named = (metadata.get("annotations") or {}).get(
                    "service.beta.kubernetes.io/aws-load-balancer-name", name
                )
                host = f"{named}-{_hex(type_, name, length=16)}.elb.{self.region}.amazonaws.com"
                state["status"] = {"loadBalancer": {"ingress": [{"hostname": host}]}}
            spec.setdefault(
                "clusterIP",
                "10.100." + ".".join(str(int(_hex(type_, name, c, length=2), 16)) for c in "ab"),
            )
            state["spec"] = spec
        if kind == "Namespace":
            state["status"] = {"phase": "Active"}
        namespace = metadata.get("namespace")
        return (f"{namespace}/{metadata['name']}" if namespace else metadata["name"]), state

    def _aws(self, type_: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        region, account = self.region, ACCOUNT_ID
        module, _, kind = type_.removeprefix("aws:").partition("/")
        kind = kind.split(":", 1)[0]
        handler = _AWS.get((module, kind))
        if handler:
            return handler(self, name, type_, state)
        resource_id = state.get("name") or autoname(name, type_)
        state.setdefault(
            "arn", f"arn:{PARTITION}:{module}:{region}:{account}:{kind.lower()}/{resource_id}"
        )
        return str(resource_id), state


def _uuid(*parts: str) -> str:
    h = _hex(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


Handler = Callable[[PlatformMocks, str, str, dict[str, Any]], tuple[str, dict[str, Any]]]
_AWS: dict[tuple[str, str], Handler] = {}


def _handles(module: str, kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _AWS[(module, kind)] = fn
        return fn

    return register


@_handles("s3", "bucket")
def _bucket(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    bucket = state.get("bucket") or (state.get("bucketPrefix") or f"{name}-") + _hex(
        type_, name, length=7
    )
    state.update(
        bucket=bucket,
        arn=f"arn:{PARTITION}:s3:::{bucket}",
        region=m.region,
        bucketDomainName=f"{bucket}.s3.amazonaws.com",
        bucketRegionalDomainName=f"{bucket}.s3.{m.region}.amazonaws.com",
        hostedZoneId="Z1BKCTXD74EZPE",
    )
    return bucket, state


def _bucket_child(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    return str(state.get("bucket") or name), state


for _kind in (
    "bucketVersioning",
    "bucketServerSideEncryptionConfiguration",
    "bucketPublicAccessBlock",
    "bucketPolicy",
    "bucketLifecycleConfiguration",
    "bucketOwnershipControls",
    "bucketObject",
    "bucketObjectv2",
    "bucketNotification",
    "bucketLogging",
):
    _AWS[("s3", _kind)] = _bucket_child


@_handles("dynamodb", "table")
def _table(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    table = state.get("name") or autoname(name, type_)
    arn = f"arn:{PARTITION}:dynamodb:{m.region}:{ACCOUNT_ID}:table/{table}"
    state.update(name=table, arn=arn)
    if state.get("streamEnabled"):
        state["streamArn"] = f"{arn}/stream/2025-01-01T00:00:00.000"
    return table, state


@_handles("kms", "key")
def _kms_key(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    key_id = _uuid(type_, name)
    state.update(keyId=key_id, arn=f"arn:{PARTITION}:kms:{m.region}:{ACCOUNT_ID}:key/{key_id}")
    return key_id, state


@_handles("kms", "alias")
def _kms_alias(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    alias = state.get("name") or f"alias/{autoname(name, type_)}"
    state.update(name=alias, arn=f"arn:{PARTITION}:kms:{m.region}:{ACCOUNT_ID}:{alias}")
    return alias, state


@_handles("iam", "role")
def _role(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    role = state.get("name") or autoname(name, type_)
    path = state.get("path") or "/"
    state.update(
        name=role,
        arn=f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role{path}{role}",
        uniqueId="AROA" + _hex(type_, name, length=17).upper(),
    )
    return role, state


@_handles("iam", "policy")
def _policy(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    policy = state.get("name") or autoname(name, type_)
    path = state.get("path") or "/"
    arn = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:policy{path}{policy}"
    state.update(name=policy, arn=arn, policyId="ANPA" + _hex(type_, name, length=17).upper())
    return arn, state


@_handles("rds", "instance")
def _db(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    identifier = state.get("identifier") or autoname(name, type_)
    address = f"{identifier}.c{_hex(type_, name, length=11)}.{m.region}.rds.amazonaws.com"
    port = int(state.get("port") or 5432)  # the engine hands numbers over as floats
    resource_id = "db-" + _hex(type_, name, length=26).upper()
    state.update(
        identifier=identifier,
        address=address,
        endpoint=f"{address}:{port}",
        port=port,
        arn=f"arn:{PARTITION}:rds:{m.region}:{ACCOUNT_ID}:db:{identifier}",
        resourceId=resource_id,
        hostedZoneId="Z29XKXDKYMONMX",
    )
    if state.get("manageMasterUserPassword"):
        state["masterUserSecrets"] = [
            {
                "secretArn": f"arn:{PARTITION}:secretsmanager:{m.region}:{ACCOUNT_ID}:secret:rds!{resource_id.lower()}-{_hex(name, length=6)}",
                "secretStatus": "active",
                "kmsKeyId": state.get("masterUserSecretKmsKeyId")
                or f"arn:{PARTITION}:kms:{m.region}:{ACCOUNT_ID}:key/{_uuid('rds', name)}",
            }
        ]
    return identifier, state


@_handles("rds", "subnetGroup")
@_handles("rds", "parameterGroup")
def _rds_named(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    group = state.get("name") or autoname(name, type_)
    kind = "subgrp" if "subnet" in type_ else "pg"
    state.update(name=group, arn=f"arn:{PARTITION}:rds:{m.region}:{ACCOUNT_ID}:{kind}:{group}")
    return group, state


@_handles("ec2", "securityGroup")
def _security_group(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    group_id = f"sg-{_hex(type_, name, length=17)}"
    state.update(
        name=state.get("name") or autoname(name, type_),
        ownerId=ACCOUNT_ID,
        arn=f"arn:{PARTITION}:ec2:{m.region}:{ACCOUNT_ID}:security-group/{group_id}",
    )
    return group_id, state


@_handles("sns", "topic")
def _topic(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    topic = state.get("name") or autoname(name, type_)
    arn = f"arn:{PARTITION}:sns:{m.region}:{ACCOUNT_ID}:{topic}"
    state.update(name=topic, arn=arn, owner=ACCOUNT_ID)
    return arn, state


@_handles("sns", "topicSubscription")
def _subscription(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    arn = f"{state.get('topic')}:{_uuid(type_, name)}"
    state.update(arn=arn, ownerId=ACCOUNT_ID)
    return arn, state


@_handles("cloudwatch", "metricAlarm")
def _alarm(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    alarm = state.get("name") or autoname(name, type_)
    state.update(
        name=alarm, arn=f"arn:{PARTITION}:cloudwatch:{m.region}:{ACCOUNT_ID}:alarm:{alarm}"
    )
    return alarm, state


@_handles("cloudwatch", "dashboard")
def _dashboard(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    dashboard = state.get("dashboardName") or autoname(name, type_)
    state.update(
        dashboardName=dashboard,
        dashboardArn=f"arn:{PARTITION}:cloudwatch::{ACCOUNT_ID}:dashboard/{dashboard}",
    )
    return dashboard, state


@_handles("eks", "nodeGroup")
def _node_group(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    prefix = state.get("nodeGroupNamePrefix")
    group = state.get("nodeGroupName") or (
        f"{prefix}{_hex(type_, name, length=26)}" if prefix else autoname(name, type_)
    )
    cluster = state.get("clusterName", "cluster")
    uuid = _uuid(type_, name)
    state.update(
        nodeGroupName=group,
        status="ACTIVE",
        arn=f"arn:{PARTITION}:eks:{m.region}:{ACCOUNT_ID}:nodegroup/{cluster}/{group}/{uuid}",
        # EKS names the group's Auto Scaling group `eks-<group>-<uuid>`.
        resources=[{"autoscalingGroups": [{"name": f"eks-{group}-{uuid}"}]}],
    )
    return f"{cluster}:{group}", state


@_handles("autoscaling", "tag")
def _asg_tag(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    tag = state.get("tag") or {}
    return f"{state.get('autoscalingGroupName')},{tag.get('key')}", state


@_handles("ecr", "repository")
def _repository(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    repository = state.get("name") or autoname(name, type_)
    state.update(
        name=repository,
        registryId=ACCOUNT_ID,
        arn=f"arn:{PARTITION}:ecr:{m.region}:{ACCOUNT_ID}:repository/{repository}",
        repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{m.region}.amazonaws.com/{repository}",
    )
    return repository, state


@_handles("secretsmanager", "secret")
def _secret(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    secret = state.get("name") or autoname(name, type_)
    arn = f"arn:{PARTITION}:secretsmanager:{m.region}:{ACCOUNT_ID}:secret:{secret}-{_hex(name, length=6)}"
    state.update(name=secret, arn=arn)
    return arn, state


_SAGEMAKER_ARN_KINDS = {
    "model": "model",
    "endpointConfiguration": "endpoint-config",
    "endpoint": "endpoint",
}


@_handles("sagemaker", "model")
@_handles("sagemaker", "endpointConfiguration")
@_handles("sagemaker", "endpoint")
def _sagemaker(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    # Named by the provider when not given (models and configurations are immutable: each
    # change is a new one); ARNs in lower case, as SageMaker returns them.
    resource = state.get("name") or autoname(name, type_)
    kind = _SAGEMAKER_ARN_KINDS[type_.split("/", 1)[1].split(":", 1)[0]]
    state.update(
        name=resource,
        arn=f"arn:{PARTITION}:sagemaker:{m.region}:{ACCOUNT_ID}:{kind}/{resource.lower()}",
    )
    return resource, state


@_handles("appautoscaling", "target")
def _scalable_target(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    target_id = _hex(type_, name, length=32)
    state["arn"] = (
        f"arn:{PARTITION}:application-autoscaling:{m.region}:{ACCOUNT_ID}:scalable-target/{target_id}"
    )
    return str(state.get("resourceId") or target_id), state


@_handles("appautoscaling", "policy")
def _scaling_policy(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    policy = state.get("name") or autoname(name, type_)
    state.update(
        name=policy,
        arn=f"arn:{PARTITION}:autoscaling:{m.region}:{ACCOUNT_ID}:scalingPolicy:{_uuid(type_, name)}:resource/dynamodb/{state.get('resourceId')}:policyName/{policy}",
        alarmArns=[],
    )
    return policy, state


@_handles("vpc", "securityGroupIngressRule")
@_handles("vpc", "securityGroupEgressRule")
def _security_group_rule(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    rule_id = f"sgr-{_hex(type_, name, length=17)}"
    state.update(
        securityGroupRuleId=rule_id,
        arn=f"arn:{PARTITION}:ec2:{m.region}:{ACCOUNT_ID}:security-group-rule/{rule_id}",
    )
    return rule_id, state


# -- the platform: VPC and EKS ------------------------------------------------------------------

_EC2_IDS = {
    "vpc": "vpc",
    "subnet": "subnet",
    "internetGateway": "igw",
    "natGateway": "nat",
    "routeTable": "rtb",
    "routeTableAssociation": "rtbassoc",
    "vpcEndpoint": "vpce",
    "launchTemplate": "lt",
    "defaultSecurityGroup": "sg",
}


def _ec2(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    kind = type_.split("/", 1)[1].split(":", 1)[0]
    resource_id = f"{_EC2_IDS[kind]}-{_hex(type_, name, length=17)}"
    arn_kind = {
        "vpc": "vpc",
        "subnet": "subnet",
        "internetGateway": "internet-gateway",
        "natGateway": "natgateway",
        "routeTable": "route-table",
        "vpcEndpoint": "vpc-endpoint",
        "launchTemplate": "launch-template",
        "defaultSecurityGroup": "security-group",
    }.get(kind)
    if arn_kind:
        state["arn"] = f"arn:{PARTITION}:ec2:{m.region}:{ACCOUNT_ID}:{arn_kind}/{resource_id}"
    state.setdefault("ownerId", ACCOUNT_ID)
    if kind == "vpc":
        state.update(
            defaultSecurityGroupId=f"sg-{_hex(type_, name, 'default', length=17)}",
            mainRouteTableId=f"rtb-{_hex(type_, name, 'main', length=17)}",
            defaultNetworkAclId=f"acl-{_hex(type_, name, 'acl', length=17)}",
        )
    if kind == "subnet":
        state["availabilityZoneId"] = (
            f"{m.region[:3]}{m.region[-1]}-az{ord(str(state.get('availabilityZone', 'a'))[-1]) - 96}"
        )
    if kind == "natGateway":
        state.update(
            publicIp=_public_ip(type_, name),
            privateIp=f"10.0.{int(_hex(type_, name, length=2), 16)}.10",
            networkInterfaceId=f"eni-{_hex(type_, name, length=17)}",
        )
    if kind == "vpcEndpoint":
        state.update(
            prefixListId=f"pl-{_hex(type_, name, length=8)}",
            state="available",
            cidrBlocks=[],
        )
    if kind == "launchTemplate":
        state.update(
            latestVersion=1,
            defaultVersion=1,
            name=state.get("name")
            or (state.get("namePrefix") or f"{name}-") + _hex(type_, name, length=26),
        )
    return resource_id, state


def _public_ip(*parts: str) -> str:
    # 203.0.113.0/24 is TEST-NET-3: documentation addresses, never routed.
    return f"203.0.113.{int(_hex(*parts, length=2), 16) % 254 + 1}"


for _kind in _EC2_IDS:
    _AWS[("ec2", _kind)] = _ec2


@_handles("ec2", "eip")
def _eip(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    allocation = f"eipalloc-{_hex(type_, name, length=17)}"
    state.update(allocationId=allocation, publicIp=_public_ip(type_, name), domain="vpc")
    return allocation, state


@_handles("ec2", "route")
def _route(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    return (
        f"r-{state.get('routeTableId')}{_hex(state.get('destinationCidrBlock') or name, length=10)}",
        state,
    )


@_handles("cloudwatch", "logGroup")
def _log_group(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    group = state.get("name") or autoname(name, type_)
    state.update(name=group, arn=f"arn:{PARTITION}:logs:{m.region}:{ACCOUNT_ID}:log-group:{group}")
    return group, state


@_handles("eks", "cluster")
def _eks_cluster(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    cluster = state.get("name") or autoname(name, type_)
    # Derived from the cluster's name: two clusters of one account have two issuers.
    oidc_id = _hex(type_, cluster, "oidc", length=32).upper()
    vpc_config = dict(state.get("vpcConfig") or {})
    vpc_config.update(
        clusterSecurityGroupId=f"sg-{_hex(type_, cluster, 'cluster', length=17)}",
    )
    state.update(
        name=cluster,
        arn=f"arn:{PARTITION}:eks:{m.region}:{ACCOUNT_ID}:cluster/{cluster}",
        endpoint=f"https://{_hex(type_, cluster, 'api', length=32).upper()}.gr7.{m.region}.eks.amazonaws.com",
        certificateAuthority={"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
        identities=[
            {"oidcs": [{"issuer": f"https://oidc.eks.{m.region}.amazonaws.com/id/{oidc_id}"}]}
        ],
        platformVersion="eks.1",
        status="ACTIVE",
        clusterId=_uuid(type_, name),
        vpcConfig=vpc_config,
    )
    return cluster, state


@_handles("iam", "openIdConnectProvider")
def _oidc_provider(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    host = str(state.get("url", "")).removeprefix("https://")
    arn = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:oidc-provider/{host}"
    state.update(
        arn=arn,
        thumbprintLists=state.get("thumbprintLists")
        or ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )
    return arn, state


@_handles("eks", "accessEntry")
def _access_entry(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    cluster, principal = state.get("clusterName"), state.get("principalArn")
    kind, _, path = str(principal).rpartition(":")[2].partition("/")
    state.update(
        accessEntryArn=f"arn:{PARTITION}:eks:{m.region}:{ACCOUNT_ID}:access-entry/{cluster}/{kind}/{ACCOUNT_ID}/{path}/{_uuid(type_, name)}",
        userName=state.get("userName") or str(principal),
    )
    return f"{cluster}:{principal}", state


@_handles("eks", "accessPolicyAssociation")
def _access_policy(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    state["associatedAt"] = "2025-01-01T00:00:00Z"
    return f"{state.get('clusterName')}#{state.get('principalArn')}#{state.get('policyArn')}", state


@_handles("eks", "addon")
def _addon(
    m: PlatformMocks, name: str, type_: str, state: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    cluster, addon = state.get("clusterName"), state.get("addonName")
    state["arn"] = (
        f"arn:{PARTITION}:eks:{m.region}:{ACCOUNT_ID}:addon/{cluster}/{addon}/{_uuid(type_, name)}"
    )
    return f"{cluster}:{addon}", state


def _pem(label: str, *parts: str) -> str:
    body = hashlib.sha256("/".join(parts).encode()).hexdigest().encode()
    return f"-----BEGIN {label}-----\n{base64.b64encode(body).decode()}\n-----END {label}-----\n"


def _tls(type_: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Keys and certificates as the tls provider computes them: PEM text (not a real key)."""
    kind = type_.rsplit(":", 1)[-1]
    if kind == "PrivateKey":
        state.update(
            privateKeyPem=_pem("PRIVATE KEY", type_, name),
            privateKeyPemPkcs8=_pem("PRIVATE KEY", type_, name, "pkcs8"),
            publicKeyPem=_pem("PUBLIC KEY", type_, name),
            publicKeyFingerprintSha256=f"SHA256:{_hex(type_, name, length=43)}",
        )
    elif kind == "CertRequest":
        state["certRequestPem"] = _pem("CERTIFICATE REQUEST", type_, name)
    elif kind in ("SelfSignedCert", "LocallySignedCert"):
        state.update(
            certPem=_pem("CERTIFICATE", type_, name),
            validityStartTime="2025-01-01T00:00:00Z",
            validityEndTime="2035-01-01T00:00:00Z",
            readyForRenewal=False,
        )
    return _hex(type_, name, length=32), state
