"""Cross-field rules: what no single field can check. Each rule yields every problem it finds."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from components import aws_values, naming
from components.config.base import Environment
from components.config.featurestore import FeatureStoreConfig, SqlRegistry
from components.config.monitoring import MonitoringConfig
from components.config.network import NetworkConfig
from components.config.registry import RegistryConfig
from components.config.serving import (
    RESERVED_PREFIXES,
    BatchEndpoint,
    RealtimeEndpoint,
    Replicas,
    ServingConfig,
)
from components.config.training import TrainingConfig
from runtime import estimators
from runtime.spec import DEFAULT_GATE_METRIC, TASK_METRICS, format_duration

NOT_SET: Any = type("NotSet", (), {"__repr__": lambda self: "<not set>"})()
"""The value of a Problem about a key that is missing (the message says what to set)."""


@dataclass(frozen=True)
class Problem:
    path: str
    """Key path, e.g. `mlops:serving.endpoints[1].replicas.max`."""
    value: Any
    message: str
    """What is allowed."""


@dataclass
class Concerns:
    """The concerns that validated; a rule skips when one it needs did not."""

    team: str | None = None
    environment: Environment | None = None
    feature_store: FeatureStoreConfig | None = None
    registry: RegistryConfig | None = None
    training: TrainingConfig | None = None
    serving: ServingConfig | None = None
    monitoring: MonitoringConfig | None = None
    network: NetworkConfig | None = None
    stack: str | None = None
    """The stack name from the file name, when known."""
    image: str | None = None
    image_given: bool = True
    """False when `mlops:image` is left out (dev then runs the stack's own repository's `:dev`)."""
    key_administrators: list[str] | None = None

    @property
    def prod(self) -> bool:
        return self.environment == Environment.prod


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)
Rule = Callable[[Concerns], Iterable[Problem]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def check(concerns: Concerns) -> list[Problem]:
    """Every problem every rule finds."""
    return [problem for fn in RULES for problem in fn(concerns)]


def _duplicates(key: str, names: list[str]) -> Iterator[Problem]:
    counts = Counter(names)
    for index, name in enumerate(names):
        if counts[name] > 1 and names.index(name) != index:
            yield Problem(f"{key}[{index}].name", name, "unique within the list")


def _declared(items: Iterable[T]) -> dict[str, T | None]:
    """Name -> item; None for a name declared twice. `unique_names` reports that once, and
    references to it are not checked against either copy (that would only repeat it)."""
    declared: dict[str, T | None] = {}
    for item in items:
        declared[item.name] = None if item.name in declared else item
    return declared


@rule
def stack_name_matches(c: Concerns) -> Iterator[Problem]:
    if c.stack and c.team and c.environment and c.stack != f"{c.team}-{c.environment}":
        yield Problem(
            "mlops:team",
            c.team,
            f"the stack is named {c.stack!r}; a stack is named <team>-<environment>",
        )


@rule
def unique_names(c: Concerns) -> Iterator[Problem]:
    if c.feature_store:
        yield from _duplicates(
            "mlops:featureStore.entities", [e.name for e in c.feature_store.entities]
        )
        yield from _duplicates(
            "mlops:featureStore.featureViews", [v.name for v in c.feature_store.feature_views]
        )
    if c.training:
        yield from _duplicates("mlops:training.nodePools", [p.name for p in c.training.node_pools])
        yield from _duplicates("mlops:training.pipelines", [p.name for p in c.training.pipelines])
        registers: dict[str, str] = {}
        for index, pipeline in enumerate(c.training.pipelines):
            other = registers.setdefault(pipeline.model_name, pipeline.name)
            if other != pipeline.name:  # the same pipeline twice is reported as a name
                yield Problem(
                    f"mlops:training.pipelines[{index}].model",
                    pipeline.model_name,
                    f"a model no other pipeline registers (pipeline {other!r} registers it)",
                )
    if c.serving:
        yield from _duplicates("mlops:serving.endpoints", [e.name for e in c.serving.endpoints])


@rule
def feature_views_name_entities(c: Concerns) -> Iterator[Problem]:
    if not c.feature_store:
        return
    entities = {e.name for e in c.feature_store.entities}
    for i, view in enumerate(c.feature_store.feature_views):
        for j, entity in enumerate(view.entities):
            if entity not in entities:
                yield Problem(
                    f"mlops:featureStore.featureViews[{i}].entities[{j}]",
                    entity,
                    f"an entity declared in mlops:featureStore.entities ({_one_of(entities)})",
                )


@rule
def pipelines_use_known_features_and_pools(c: Concerns) -> Iterator[Problem]:
    if not c.training:
        return
    pools = _declared(c.training.node_pools)
    for i, pipeline in enumerate(c.training.pipelines):
        path = f"mlops:training.pipelines[{i}]"
        pool = pools.get(pipeline.node_pool)
        if pipeline.node_pool not in pools:
            yield Problem(
                f"{path}.nodePool",
                pipeline.node_pool,
                f"a node pool declared in mlops:training.nodePools ({_one_of(pools)})",
            )
        elif pool and pipeline.resources.gpu:
            most = max(naming.gpus_per_instance(t) for t in pool.instance_types)
            if most == 0:
                yield Problem(
                    f"{path}.resources.gpu",
                    pipeline.resources.gpu,
                    f"0: node pool {pool.name!r} has no GPU instance types",
                )
            elif pipeline.resources.gpu > most:
                yield Problem(
                    f"{path}.resources.gpu",
                    pipeline.resources.gpu,
                    f"at most {most}: no instance type of node pool {pool.name!r} has more GPUs",
                )
        if c.feature_store is None:
            continue
        views = _declared(c.feature_store.feature_views)
        for j, ref in enumerate(pipeline.features):
            view_name, feature = ref.split(":", 1)
            view = views.get(view_name)
            if view_name not in views:
                yield Problem(
                    f"{path}.features[{j}]",
                    ref,
                    f"<featureView>:<feature> with a declared view ({_one_of(views)})",
                )
            elif view and feature not in view.features:
                yield Problem(
                    f"{path}.features[{j}]",
                    ref,
                    f"a feature of view {view_name!r} ({_one_of(view.features)})",
                )


@rule
def estimators_fit_their_pipelines(c: Concerns) -> Iterator[Problem]:
    if not c.training:
        return
    for i, pipeline in enumerate(c.training.pipelines):
        path = f"mlops:training.pipelines[{i}].estimator"
        kind, task = pipeline.estimator.kind, pipeline.task
        if (kind, task) not in estimators.ESTIMATORS:
            able = _one_of(estimators.kinds_for(task))
            yield Problem(f"{path}.kind", str(kind), f"an estimator for {task} ({able})")
            continue
        for name, allowed in estimators.parameter_problems(kind, task, pipeline.estimator.params):
            yield Problem(f"{path}.params.{name}", pipeline.estimator.params[name], allowed)


@rule
def parallelism_within_completions(c: Concerns) -> Iterator[Problem]:
    jobs: list[tuple[str, int, int | None]] = [
        (f"mlops:serving.endpoints[{i}]", endpoint.completions, endpoint.parallelism)
        for i, endpoint in enumerate(c.serving.endpoints if c.serving else [])
        if isinstance(endpoint, BatchEndpoint)
    ]
    if c.feature_store:
        run = c.feature_store.materialization
        jobs.append(("mlops:featureStore.materialization", run.completions, run.parallelism))
    for path, completions, parallelism in jobs:
        if parallelism is not None and parallelism > completions:
            yield Problem(
                f"{path}.parallelism",
                parallelism,
                f"at most completions ({completions}): one pod per share at most",
            )


@rule
def materialization_shares_fit_feast(c: Concerns) -> Iterator[Problem]:
    if not c.feature_store or c.feature_store.materialization.completions == 1:
        return
    store, path = c.feature_store, "mlops:featureStore.materialization.completions"
    shares = store.materialization.completions
    if not isinstance(store.registry, SqlRegistry):
        # Feast's file registry is one object that every materialization rewrites.
        yield Problem(path, shares, "1 unless registry.type is sql (shares update one registry)")
    views = sum(view.online for view in store.feature_views)
    if shares > views:
        yield Problem(
            path, shares, f"at most the online feature views ({views}): a view is one share's"
        )


@rule
def endpoints_serve_known_models(c: Concerns) -> Iterator[Problem]:
    if not c.serving or not c.training:
        return
    produced = {p.model_name: p for p in c.training.pipelines}
    known = set(produced) | set(c.serving.external_models)
    for i, endpoint in enumerate(c.serving.endpoints):
        path = f"mlops:serving.endpoints[{i}]"
        if endpoint.model not in known:
            yield Problem(
                f"{path}.model",
                endpoint.model,
                f"a model a training pipeline produces or listed in mlops:serving.externalModels ({_one_of(known)})",
            )
        pipeline = produced.get(endpoint.model)
        if isinstance(endpoint, RealtimeEndpoint) and pipeline and c.feature_store:
            offline_only = {v.name for v in c.feature_store.feature_views if not v.online}
            for ref in pipeline.features:
                if ref.split(":", 1)[0] in offline_only:
                    yield Problem(
                        f"{path}.model",
                        endpoint.model,
                        f"a model whose features are online; {ref!r} is in an offline-only view",
                    )
                    break


@rule
def drift_thresholds_name_served_features(c: Concerns) -> Iterator[Problem]:
    if not (c.monitoring and c.serving and c.training):
        return
    served = {e.model for e in c.serving.endpoints if isinstance(e, RealtimeEndpoint)}
    features = {
        ref.split(":", 1)[1]
        for p in c.training.pipelines
        if p.model_name in served
        for ref in p.features
    }
    for name, threshold in c.monitoring.drift.feature_thresholds.items():
        if name not in features:
            yield Problem(
                f"mlops:monitoring.drift.featureThresholds.{name}",
                threshold,
                f"keyed by a feature a real-time endpoint's model uses ({_one_of(features)})",
            )


@rule
def continuous_training_can_work(c: Concerns) -> Iterator[Problem]:
    """Continuous training needs a trigger, the data its triggers judge, and a canary to promote."""
    if not c.training:
        return
    endpoints = (
        [e for e in c.serving.endpoints if isinstance(e, RealtimeEndpoint)] if c.serving else []
    )
    known = {p.model_name for p in c.training.pipelines} | set(
        c.serving.external_models if c.serving else []
    )
    # An endpoint naming an unknown model is reported once, by endpoints_serve_known_models.
    judge_serving = c.serving is not None and all(e.model in known for e in endpoints)
    for i, pipeline in enumerate(c.training.pipelines):
        ct = pipeline.continuous_training
        if ct is None:
            continue
        path = f"mlops:training.pipelines[{i}].continuousTraining"
        model = pipeline.model_name
        triggers = ct.triggers
        if not triggers.enabled:
            yield Problem(
                f"{path}.triggers",
                {},
                "at least one trigger (schedule, drift, decay or newData): without one nothing "
                "is ever retrained",
            )
        served = [e for e in endpoints if e.model == model]
        for name in ("drift", "decay"):
            if getattr(triggers, name) is not None and judge_serving and not served:
                yield Problem(
                    f"{path}.triggers.{name}",
                    getattr(triggers, name).model_dump(by_alias=True, exclude_defaults=True),
                    f"on only when a real-time endpoint in mlops:serving serves {model!r}: the "
                    "drift monitor measures its traffic window by window",
                )
        names = [ref.split(":", 1)[1] for ref in pipeline.features]
        if triggers.drift and triggers.drift.feature and triggers.drift.feature not in names:
            yield Problem(
                f"{path}.triggers.drift.feature",
                triggers.drift.feature,
                f"a feature of the pipeline ({_one_of(names)})",
            )
        if decay := triggers.decay:
            metric = decay.metric or pipeline.gates.metric or DEFAULT_GATE_METRIC[pipeline.task]
            if metric not in TASK_METRICS[pipeline.task]:
                yield Problem(
                    f"{path}.triggers.decay.metric",
                    metric,
                    f"a {pipeline.task} metric ({_one_of(TASK_METRICS[pipeline.task])})",
                )
            if decay.minimum is None and pipeline.gates.minimum is None:
                yield Problem(
                    f"{path}.triggers.decay.minimum",
                    NOT_SET,
                    "set (or the pipeline's gates.minimum): decay is live quality below a minimum",
                )
            if ct.live_labels is None:
                yield Problem(
                    f"{path}.liveLabels",
                    NOT_SET,
                    "the path of arrived labels (request_id and the target, parquet) when the "
                    "decay trigger is on: live quality is measured on them",
                )
        if ct.promotion is not None and judge_serving and not any(e.canary for e in served):
            yield Problem(
                f"{path}.promotion",
                ct.promotion.model_dump(by_alias=True, exclude_defaults=True),
                f"set only when a real-time endpoint serving {model!r} has a canary: the "
                "canary is what gets promoted",
            )
        if ct.lease is not None and ct.lease < pipeline.deadline:
            yield Problem(
                f"{path}.lease",
                format_duration(ct.lease),
                f"at least the pipeline's deadline ({format_duration(pipeline.deadline)}): a "
                "running retrain must not lose its lease",
            )


@rule
def aws_offers_the_values(c: Concerns) -> Iterator[Problem]:
    """Instance types EC2 has, one architecture and accelerator per node pool (one AMI runs a
    node group), an instance class and an engine version RDS offers for PostgreSQL."""
    if c.training:
        for i, pool in enumerate(c.training.node_pools):
            for finding in aws_values.node_group_problems(pool.instance_types):
                where = "" if finding.index is None else f"[{finding.index}]"
                yield Problem(
                    f"mlops:training.nodePools[{i}].instanceTypes{where}",
                    finding.value,
                    finding.message,
                )
    if c.registry:
        db = c.registry.database
        version = aws_values.rds_engine_version_problem(db.engine_version)
        if version:
            yield Problem("mlops:registry.database.engineVersion", db.engine_version, version)
        problem = aws_values.rds_instance_class_problem(db.instance_class, db.engine_version)
        if problem:
            yield Problem("mlops:registry.database.instanceClass", db.instance_class, problem)


@rule
def ranges_are_ordered(c: Concerns) -> Iterator[Problem]:
    if c.serving:
        for i, endpoint in enumerate(c.serving.endpoints):
            if isinstance(endpoint, RealtimeEndpoint):
                if endpoint.replicas.max < endpoint.replicas.min:
                    yield Problem(
                        f"mlops:serving.endpoints[{i}].replicas.max",
                        endpoint.replicas.max,
                        f"at least replicas.min ({endpoint.replicas.min})",
                    )
                if endpoint.canary and endpoint.shadow:
                    yield Problem(
                        f"mlops:serving.endpoints[{i}].shadow",
                        True,
                        "false when a canary is set: an endpoint runs a canary or a shadow, not both",
                    )
    if c.training:
        for i, pool in enumerate(c.training.node_pools):
            if pool.max_nodes < pool.min_nodes:
                yield Problem(
                    f"mlops:training.nodePools[{i}].maxNodes",
                    pool.max_nodes,
                    f"at least minNodes ({pool.min_nodes})",
                )
    if c.registry:
        db = c.registry.database
        if db.max_storage_gb is not None and db.max_storage_gb < db.storage_gb:
            yield Problem(
                "mlops:registry.database.maxStorageGb",
                db.max_storage_gb,
                f"at least storageGb ({db.storage_gb})",
            )
    if c.feature_store and c.feature_store.online_capacity.billing == "provisioned":
        cap = c.feature_store.online_capacity
        for low, high in (
            ("readCapacity", "maxReadCapacity"),
            ("writeCapacity", "maxWriteCapacity"),
        ):
            if getattr(cap, _snake(high)) < getattr(cap, _snake(low)):
                yield Problem(
                    f"mlops:featureStore.onlineCapacity.{high}",
                    getattr(cap, _snake(high)),
                    f"at least {low} ({getattr(cap, _snake(low))})",
                )


@rule
def prod_is_safe(c: Concerns) -> Iterator[Problem]:
    if not c.prod:
        return
    if c.serving:
        for i, endpoint in enumerate(c.serving.endpoints):
            if isinstance(endpoint, RealtimeEndpoint) and endpoint.replicas.min < 2:
                yield Problem(
                    f"mlops:serving.endpoints[{i}].replicas.min",
                    endpoint.replicas.min,
                    "at least 2 in prod (an endpoint must survive the loss of a node)",
                )
    if c.registry:
        db = c.registry.database
        if db.backup_retention_days < 7:
            yield Problem(
                "mlops:registry.database.backupRetentionDays",
                db.backup_retention_days,
                "at least 7 in prod",
            )
        if not db.deletion_protection:
            yield Problem("mlops:registry.database.deletionProtection", False, "true in prod")
        if not db.multi_az:
            yield Problem("mlops:registry.database.multiAz", False, "true in prod")
    if c.feature_store and not c.feature_store.point_in_time_recovery:
        yield Problem("mlops:featureStore.pointInTimeRecovery", False, "true in prod")
    if c.monitoring and not (c.monitoring.alert_emails or c.monitoring.alert_webhooks):
        yield Problem(
            "mlops:monitoring.alertEmails",
            [],
            "at least one alert email or webhook in prod: somebody must be paged",
        )


@rule
def batch_outputs_stay_out_of_the_registry(c: Concerns) -> Iterator[Problem]:
    """A batch role may write its output prefix; that prefix must hold no model."""
    if not c.serving:
        return
    for i, endpoint in enumerate(c.serving.endpoints):
        if not isinstance(endpoint, BatchEndpoint):
            continue
        if (endpoint.output.rstrip("/") + "/").startswith(RESERVED_PREFIXES):
            yield Problem(
                f"mlops:serving.endpoints[{i}].output",
                endpoint.output,
                f"a prefix outside {' and '.join(RESERVED_PREFIXES)} (the model registry's "
                "artifacts, which only training writes, and the prediction logs), "
                "e.g. 'predictions/'",
            )


@rule
def prod_keys_have_administrators(c: Concerns) -> Iterator[Problem]:
    """Without named administrators a key's policy falls back to the whole account."""
    if c.prod and c.key_administrators == []:
        yield Problem(
            "mlops:keyAdministrators",
            [],
            "the IAM roles that administer the team's KMS keys in prod, including the one that "
            "runs `pulumi up`, e.g. [arn:aws:iam::123456789012:role/mlops-deploy]",
        )


@rule
def prod_public_endpoints_authenticate(c: Concerns) -> Iterator[Problem]:
    """An internet-facing endpoint in prod answers only requests the ALB has authenticated."""
    if not (c.prod and c.serving):
        return
    for i, e in enumerate(c.serving.endpoints):
        ingress = e.ingress if isinstance(e, RealtimeEndpoint) else None
        if ingress is not None and ingress.public and ingress.authentication is None:
            yield Problem(
                f"mlops:serving.endpoints[{i}].ingress.authentication",
                NOT_SET,
                "an authenticator for a public endpoint in prod, {kind: oidc, ...} or "
                "{kind: cognito, ...} (or public: false: an internal load balancer)",
            )


@rule
def prod_load_balancer_subnets_are_named(c: Concerns) -> Iterator[Problem]:
    """The VPC-wide default would let any pod of the VPC past the endpoint's NetworkPolicy."""
    if not (c.prod and c.serving and c.network) or c.network.load_balancer_subnet_cidrs:
        return
    exposed = [
        e.name
        for e in c.serving.endpoints
        if isinstance(e, RealtimeEndpoint) and e.ingress is not None
    ]
    if exposed:
        yield Problem(
            "mlops:network.loadBalancerSubnetCidrs",
            [],
            f"the load balancer's subnets in prod, where no pod runs (the endpoint(s) "
            f"{', '.join(exposed)} have an ingress; the VPC-wide default would admit every pod "
            "of the VPC to them), e.g. [10.30.96.0/24, 10.30.97.0/24, 10.30.98.0/24]",
        )


@rule
def sagemaker_load_balancer_subnets_are_named(c: Concerns) -> Iterator[Problem]:
    """SageMaker variants reach MLflow through an internal NLB, whose subnets MLflow's
    NetworkPolicy admits: the VPC-wide default would admit every pod of the VPC (any team's) to
    the registry, so the subnets are named in every environment."""
    if not (c.serving and c.network) or c.network.load_balancer_subnet_cidrs:
        return
    on_sagemaker = [
        e.name for e in c.serving.endpoints if isinstance(e, RealtimeEndpoint) and e.on_sagemaker
    ]
    if on_sagemaker and not (
        c.prod
        and any(
            isinstance(e, RealtimeEndpoint) and e.ingress is not None for e in c.serving.endpoints
        )
    ):
        yield Problem(
            "mlops:network.loadBalancerSubnetCidrs",
            [],
            f"the load balancer's subnets, where no pod runs (the SageMaker endpoint(s) "
            f"{', '.join(on_sagemaker)} reach MLflow through an internal load balancer, which "
            "MLflow admits by these subnets; the VPC-wide default would admit every pod of the "
            "VPC to the registry), e.g. [10.30.96.0/24, 10.30.97.0/24, 10.30.98.0/24]",
        )


IMAGE_BY_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
"""`<repository>@sha256:<64 hex>`: the one image, whatever happens to tags later."""


PLACEHOLDER_DIGEST = "@sha256:" + "0" * 64
"""What `mlops new-team` writes for prod until an image is pushed: names no image."""


@rule
def image_is_pinned(c: Concerns) -> Iterator[Problem]:
    if c.prod and not c.image_given:
        yield Problem(
            "mlops:image",
            NOT_SET,
            "set in prod, to the stack's repository pinned by digest, <repository>@sha256:<64 hex "
            "digits> (`mlops image build --push <repository>` prints it; <repository>: the stack "
            "output imageRepository)",
        )
    if c.image is None:
        return
    if c.image.endswith(PLACEHOLDER_DIGEST):
        yield Problem(
            "mlops:image",
            c.image,
            "the digest of a pushed image, not the all-zero placeholder `mlops new-team` writes: "
            "`IMAGE=$(mlops image build --push <repository>)` prints it (<repository>: the "
            'stack output imageRepository), then `pulumi config set mlops:image "$IMAGE"`',
        )
    elif "@" in c.image and not IMAGE_BY_DIGEST.match(c.image):
        yield Problem(
            "mlops:image",
            c.image,
            "<repository>@sha256:<64 lower-case hex digits> (a digest as the registry prints it)",
        )
    elif c.prod and "@" not in c.image:
        yield Problem(
            "mlops:image",
            c.image,
            "pinned by digest in prod, <repository>@sha256:<64 hex digits> "
            "(`mlops image build --push <repository>` prints it): a tag can be moved to another image",
        )


KUBERNETES_ONLY = ("replicas", "resources", "targetCpuPercent", "ingress")
"""Settings of a real-time endpoint that only its Kubernetes backend reads."""


def _kubernetes_defaults(environment: Environment | None) -> dict[str, Any]:
    """What a real-time endpoint's Kubernetes-only settings are when left out (with presets)."""
    context = {"environment": environment}
    return {
        "replicas": Replicas.model_validate({}, context=context),
        "resources": RealtimeEndpoint.model_fields["resources"].default,
        "targetCpuPercent": RealtimeEndpoint.model_fields["target_cpu_percent"].default,
        "ingress": None,
    }


@rule
def backends_get_their_own_settings(c: Concerns) -> Iterator[Problem]:
    """`sagemaker:` only on `backend: sagemaker`; replicas, resources, targetCpuPercent and
    ingress only on Kubernetes; on SageMaker, instances SageMaker hosts, counts in order."""
    if not c.serving:
        return
    defaults = _kubernetes_defaults(c.environment)
    for i, e in enumerate(c.serving.endpoints):
        if not isinstance(e, RealtimeEndpoint):
            continue
        path = f"mlops:serving.endpoints[{i}]"
        if not e.on_sagemaker:
            if e.sagemaker is not None:
                yield Problem(
                    f"{path}.sagemaker",
                    e.sagemaker.model_dump(by_alias=True, exclude_defaults=True),
                    "left out on a Kubernetes endpoint (or set backend: sagemaker)",
                )
            continue
        for key in KUBERNETES_ONLY:
            value = getattr(e, _snake(key))
            if value != defaults[key]:
                shown = (
                    value.model_dump(by_alias=True, exclude_defaults=True)
                    if hasattr(value, "model_dump")
                    else value
                )
                yield Problem(
                    f"{path}.{key}",
                    shown,
                    "left out on a SageMaker endpoint (Kubernetes only; SageMaker's capacity is "
                    "sagemaker.instances)",
                )
        capacity = e.sagemaker_settings.instances
        problem = aws_values.sagemaker_instance_type_problem(capacity.instance_type)
        if problem:
            yield Problem(
                f"{path}.sagemaker.instances.instanceType", capacity.instance_type, problem
            )
        if capacity.max_count < capacity.min_count:
            yield Problem(
                f"{path}.sagemaker.instances.maxCount",
                capacity.max_count,
                f"at least minCount ({capacity.min_count})",
            )
        elif not capacity.min_count <= capacity.initial_count <= capacity.max_count:
            yield Problem(
                f"{path}.sagemaker.instances.initialCount",
                capacity.initial_count,
                f"between minCount and maxCount ({capacity.min_count}-{capacity.max_count})",
            )
        if c.prod:
            for key in ("initialCount", "minCount"):
                if getattr(capacity, _snake(key)) < 2:
                    yield Problem(
                        f"{path}.sagemaker.instances.{key}",
                        getattr(capacity, _snake(key)),
                        "at least 2 in prod (SageMaker spreads a variant's instances over "
                        "zones: one instance is one zone)",
                    )
        if c.feature_store and isinstance(c.feature_store.registry, SqlRegistry):
            yield Problem(
                f"{path}.backend",
                e.backend,
                "kubernetes while mlops:featureStore.registry is {type: sql}: a SageMaker "
                "variant cannot run the sidecar that logs in to the registry database (or keep "
                "the Feast registry in S3, the default)",
            )


def _one_of(names: Iterable[str]) -> str:
    names = sorted(names)
    return "one of " + ", ".join(map(repr, names)) if names else "none are declared"


def _snake(key: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key)
