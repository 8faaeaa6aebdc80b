"""`mlops:serving`: real-time and batch endpoints, and models registered outside this stack."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, StrictInt, Tag, model_validator

from components.config.base import ConfigModel, Cron, Environment, Presets
from components.config.resources import ContainerResources
from runtime.spec import RELATIVE_PATH, EndpointSpec, Name

RESERVED_PREFIXES = ("artifacts/", "prediction-logs/")
"""Prefixes of the artifact bucket that no batch output may use: the model registry's artifacts
(only the training role writes there) and the real-time endpoints' prediction logs."""
HOST_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$"
INGRESS_CLASS = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class Replicas(ConfigModel):
    __presets__: ClassVar[Presets] = {Environment.prod: {"min": 2, "max": 6}}

    min: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    max: Annotated[StrictInt, Field(ge=1, le=500)] = 3


ACM_CERTIFICATE_ARN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$"
HTTPS_URL = r"^https://[^\s]+$"
COGNITO_USER_POOL_ARN = r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+$"


class OidcAuthentication(ConfigModel):
    """The ALB authenticates every request with an OpenID Connect provider first."""

    kind: Literal["oidc"]
    issuer: Annotated[str, Field(pattern=HTTPS_URL)]
    authorization_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]
    token_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]
    user_info_endpoint: Annotated[str, Field(pattern=HTTPS_URL)]
    secret_name: Annotated[str, Field(pattern=INGRESS_CLASS, max_length=253)]
    """Kubernetes Secret (in the team namespace) with clientID and clientSecret."""


class CognitoAuthentication(ConfigModel):
    """The ALB authenticates every request with a Cognito user pool first."""

    kind: Literal["cognito"]
    user_pool_arn: Annotated[str, Field(pattern=COGNITO_USER_POOL_ARN)]
    user_pool_client_id: Annotated[str, Field(min_length=1, max_length=128)]
    user_pool_domain: Annotated[str, Field(min_length=1, max_length=63)]


Authentication = Annotated[OidcAuthentication | CognitoAuthentication, Field(discriminator="kind")]


class Ingress(ConfigModel):
    host: Annotated[str, Field(pattern=HOST_NAME, max_length=253)]
    class_name: Annotated[str, Field(pattern=INGRESS_CLASS)] = "alb"
    certificate_arn: Annotated[str, Field(pattern=ACM_CERTIFICATE_ARN)]
    """ACM certificate for `host`: the load balancer serves HTTPS only (HTTP redirects to it)."""
    public: bool = False
    """Internet-facing; off: an internal load balancer, reachable only inside the VPC."""
    authentication: Authentication | None = None
    """Who may call it: the ALB signs users in (OIDC or Cognito) before any request reaches the
    pods. Required for a public endpoint in prod."""


SAGEMAKER_INSTANCE_TYPE = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
"""The `ml.` instance family pattern; `mlops validate` also checks the type against the list
SageMaker hosting offers (botocore's `ProductionVariantInstanceType`)."""


class SageMakerInstances(ConfigModel):
    """Each variant on its own instances, autoscaled between `minCount` and `maxCount`."""

    __presets__: ClassVar[Presets] = {
        Environment.prod: {"initialCount": 2, "minCount": 2, "maxCount": 6}
    }

    instance_type: Annotated[str, Field(pattern=SAGEMAKER_INSTANCE_TYPE)] = "ml.m5.large"
    initial_count: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    """Instances per variant when the endpoint is created (the autoscaler owns it afterwards)."""
    min_count: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    max_count: Annotated[StrictInt, Field(ge=1, le=100)] = 2
    target_invocations_per_instance: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1000
    """Invocations per instance per minute the autoscaler keeps each variant at
    (SageMakerVariantInvocationsPerInstance)."""


class SageMakerSettings(ConfigModel):
    """How a `backend: sagemaker` endpoint runs: each variant on its instances. No serverless:
    a serverless variant runs outside any VPC, so it cannot reach the registry it resolves its
    alias from."""

    instances: SageMakerInstances = SageMakerInstances()
    """Default: `ml.m5.large`, 1 to 2 instances (2 to 6 in prod)."""
    volume_size_gb: Annotated[StrictInt, Field(ge=1, le=512)] | None = None
    """ML storage volume per instance (default: what the type comes with)."""


class RealtimeEndpoint(EndpointSpec, ConfigModel):
    mode: Literal["realtime"] = "realtime"
    backend: Literal["kubernetes", "sagemaker"] = "kubernetes"
    """Where the endpoint runs: pods on the team's namespace, or a SageMaker endpoint (a
    variant per alias, `sagemaker:` settings)."""
    replicas: Replicas = Replicas()
    """Kubernetes only."""
    resources: ContainerResources = ContainerResources(cpu="500m", memory="1Gi")
    """Kubernetes only."""
    target_cpu_percent: Annotated[StrictInt, Field(ge=10, le=95)] = 70
    """Average CPU use the autoscaler keeps replicas at (Kubernetes only)."""
    ingress: Ingress | None = None
    """Kubernetes only."""
    sagemaker: SageMakerSettings | None = None
    """SageMaker only: the variants' instances."""

    @model_validator(mode="before")
    @classmethod
    def _sagemaker_by_default(cls, data: Any) -> Any:
        # On SageMaker without `sagemaker:`: its defaults, validated so that presets apply.
        if (
            isinstance(data, dict)
            and data.get("backend") == "sagemaker"
            and "sagemaker" not in data
        ):
            data = {**data, "sagemaker": {}}
        return data

    @property
    def on_sagemaker(self) -> bool:
        return self.backend == "sagemaker"

    @property
    def sagemaker_settings(self) -> SageMakerSettings:
        return self.sagemaker or SageMakerSettings()


class BatchEndpoint(ConfigModel):
    name: Name
    model: Name
    mode: Literal["batch"]
    schedule: Cron
    input: Annotated[str, Field(pattern=RELATIVE_PATH)]
    """Entity list (parquet), relative to the offline store."""
    output: Annotated[str, Field(pattern=RELATIVE_PATH)] = "predictions/"
    """Prefix, in the artifact bucket, that predictions are written under."""
    resources: ContainerResources = ContainerResources(cpu="1", memory="2Gi")
    trust_model_code: bool = False
    """Load model formats that run code when loaded (pickled scikit-learn, custom pyfunc).
    Off: scikit-learn models saved with skops only (what the team's pipelines log)."""
    completions: Annotated[int, Field(ge=1, le=1000)] = 1
    """Shares the entity list is scored in, one pod each (a Kubernetes Indexed Job above 1)."""
    parallelism: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Pods scoring at once (default: all of ``completions``); at most ``completions``."""


def _mode(value: Any) -> str | None:
    if isinstance(value, dict):
        mode = value.get("mode", "realtime")
        return mode if mode in ("realtime", "batch") else None
    return getattr(value, "mode", None)


Endpoint = Annotated[
    Annotated[RealtimeEndpoint, Tag("realtime")] | Annotated[BatchEndpoint, Tag("batch")],
    Discriminator(
        _mode, custom_error_type="endpoint_mode", custom_error_message="mode is realtime or batch"
    ),
]


class ServingConfig(ConfigModel):
    endpoints: list[Endpoint] = []
    external_models: list[Name] = []
    """Models registered outside this stack's pipelines that endpoints may serve."""
