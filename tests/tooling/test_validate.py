"""`mlops validate`: every broken config gets the file, the key path, the value and what is allowed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import PLATFORM_STACKS, STACKS
from tooling.cli import app

runner = CliRunner()
Config = dict[str, Any]


def base_config(stack: str = "fraud-dev") -> Config:
    return yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


def write_stack(folder: Path, config: Config, stack: str = "fraud-dev") -> Path:
    file = folder / f"Pulumi.{stack}.yaml"
    file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return file


def validate(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["validate", *args])
    problems = [
        line.removeprefix("✗ ") for line in result.stderr.splitlines() if line.startswith("✗ ")
    ]
    return result.exit_code, problems


def _set(path: str, value: Any) -> Callable[[Config], None]:
    """A mutation: set `key.sub[0].leaf` (a config key, then a dotted path) to ``value``."""

    def mutate(config: Config) -> None:
        key, _, rest = path.partition("/")
        if not rest:
            config[key] = value
            return
        node: Any = config[key]
        parts = [
            int(p) if p.isdigit() else p for p in rest.replace("[", ".").replace("]", "").split(".")
        ]
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    return mutate


def _delete(key: str) -> Callable[[Config], None]:
    return lambda config: config.pop(key)


def _second_endpoint(**overrides: Any) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        endpoint = copy.deepcopy(config["mlops:serving"]["endpoints"][0])
        endpoint.update({"name": "scorer-eu", **overrides})
        config["mlops:serving"]["endpoints"].append(endpoint)

    return mutate


def _second_view(**overrides: Any) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        views = config["mlops:featureStore"]["featureViews"]
        views.append({**copy.deepcopy(views[0]), **overrides})

    return mutate


def _second_pipeline(**overrides: Any) -> Callable[[Config], None]:
    def mutate(config: Config) -> None:
        pipelines = config["mlops:training"]["pipelines"]
        pipelines.append({**copy.deepcopy(pipelines[0]), **overrides})

    return mutate


F = "stacks/Pulumi.fraud-dev.yaml"
CASES = [
    pytest.param(
        _set("mlops:servng", {}),
        [
            f"{F}: mlops:servng: should be a known key (mlops:team, mlops:environment, mlops:cluster, mlops:featureStore, mlops:registry, mlops:training, mlops:serving, mlops:monitoring, mlops:network, mlops:keyAdministrators, mlops:tags, mlops:budget, mlops:usage, mlops:image); did you mean mlops:serving?"
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        _set("mlops:registry", {"database": {"replica": 2}}),
        [
            f"{F}: mlops:registry.database.replica: should be a known key (backupRetentionDays, deletionProtection, engineVersion, instanceClass, maxStorageGb, multiAz, performanceInsights, storageGb) (got 2)"
        ],
        id="unknown-nested-key",
    ),
    pytest.param(
        _set("mlops:registry", {"database": {"storageGb": "big"}}),
        [f"{F}: mlops:registry.database.storageGb: should be a valid integer (got 'big')"],
        id="wrong-type",
    ),
    pytest.param(
        _set("mlops:environment", "qa"),
        [f"{F}: mlops:environment: should be 'dev', 'staging' or 'prod' (got 'qa')"],
        id="bad-enum",
    ),
    pytest.param(
        _set("mlops:serving/endpoints[0].canary.weight", 80),
        [
            f"{F}: mlops:serving.endpoints[0].canary.weight: should be less than or equal to 50 (got 80)"
        ],
        id="out-of-range",
    ),
    pytest.param(
        _second_endpoint(replicas={"min": 3, "max": 2}),
        [
            f"{F}: mlops:serving.endpoints[1].replicas.max: should be at least replicas.min (3) (got 2)"
        ],
        id="max-below-min",
    ),
    pytest.param(
        _set("mlops:serving/endpoints[0].model", "fraud-modle"),
        [
            f"{F}: mlops:serving.endpoints[0].model: should be a model a training pipeline produces or listed in mlops:serving.externalModels (one of 'fraud-model') (got 'fraud-modle')"
        ],
        id="endpoint-names-unknown-model",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].nodePool", "gpus"),
        [
            f"{F}: mlops:training.pipelines[0].nodePool: should be a node pool declared in mlops:training.nodePools (one of 'gpu') (got 'gpus')"
        ],
        id="pipeline-names-unknown-pool",
    ),
    pytest.param(
        _second_endpoint(name="scorer"),
        [f"{F}: mlops:serving.endpoints[1].name: should be unique within the list (got 'scorer')"],
        id="duplicate-endpoint-name",
    ),
    pytest.param(
        _set("mlops:monitoring", {"alertWebhooks": ["https://events.example/key-123"]}),
        [
            f"{F}: mlops:monitoring.alertWebhooks[0]: should be a secret, stored encrypted: `pulumi config set --secret --path 'mlops:monitoring.alertWebhooks[0]' <value>` (got '<plaintext, not shown>')"
        ],
        id="plaintext-secret",
    ),
    pytest.param(
        _delete("mlops:cluster"),
        [f"{F}: mlops:cluster: should be set"],
        id="missing-required-key",
    ),
    pytest.param(
        _set("mlops:team", "payments"),
        [
            f"{F}: mlops:team: should be the stack is named 'fraud-dev'; a stack is named <team>-<environment> (got 'payments')"
        ],
        id="stack-name-mismatch",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].schedule", "0 25 * * *"),
        [
            f"{F}: mlops:training.pipelines[0].schedule: should be a cron schedule of 5 fields (minute hour day month weekday) or @hourly/@daily (got '0 25 * * *')"
        ],
        id="bad-cron",
    ),
    pytest.param(
        _set("mlops:serving/endpoints[0].name", "Scorer_1"),
        [
            f"{F}: mlops:serving.endpoints[0].name: should be lower-case letters, digits and '-', starting with a letter, not ending with '-', e.g. 'fraud-model' (got 'Scorer_1')"
        ],
        id="invalid-kubernetes-name",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].features[1]", "card_txn_stats:avg_amt_7d"),
        [
            f"{F}: mlops:training.pipelines[0].features[1]: should be a feature of view 'card_txn_stats' (one of 'avg_amount_7d', 'distinct_merchants_7d', 'max_amount_7d', 'txn_count_7d') (got 'card_txn_stats:avg_amt_7d')"
        ],
        id="unknown-feature",
    ),
    pytest.param(
        _set("mlops:featureStore/featureViews[0].ttl", "30days"),
        [
            f"{F}: mlops:featureStore.featureViews[0].ttl: should be a duration such as 90s, 15m, 12h, 30d or 2w, at most 3650d (got '30days')"
        ],
        id="bad-duration",
    ),
    pytest.param(
        _set("mlops:cluster", {"stackRef": "acme/platform/dev"}),
        [
            f"{F}: mlops:cluster: should be either {{stackReference: <org>/<project>/<stack>}} or the cluster's values (name, kubeconfig, oidcProviderArn, oidcProviderUrl, vpcId, privateSubnetIds, nodeSecurityGroupId) (got {{'stackRef': 'acme/platform/dev'}})"
        ],
        id="bad-cluster-union",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].resources.gpu", 2),
        [
            f"{F}: mlops:training.pipelines[0].resources.gpu: should be at most 1: no instance type of node pool 'gpu' has more GPUs (got 2)"
        ],
        id="more-gpus-than-a-node-has",
    ),
    pytest.param(
        _set(
            "mlops:monitoring",
            {
                "alertEmails": ["a@acme.example"],
                "drift": {"featureThresholds": {"avg_amount": 0.1}},
            },
        ),
        [
            f"{F}: mlops:monitoring.drift.featureThresholds.avg_amount: should be keyed by a feature a real-time endpoint's model uses (one of 'avg_amount_7d', 'card_age_days', 'credit_limit', 'distinct_merchants_7d', 'is_premium', 'max_amount_7d', 'txn_count_7d') (got 0.1)"
        ],
        id="drift-threshold-for-an-unserved-feature",
    ),
    pytest.param(
        _set("mlops:monitoring/alertEmails[0]", "fraud-oncall"),
        [
            f"{F}: mlops:monitoring.alertEmails[0]: should be an email address such as ml-oncall@example.com: An email address must have an @-sign. (got 'fraud-oncall')"
        ],
        id="not-an-email",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].resources.memory", "8GB"),
        [
            f"{F}: mlops:training.pipelines[0].resources.memory: should be a Kubernetes quantity: a number and an optional unit m, k, M, G, T, Ki, Mi, Gi or Ti, e.g. '500m', '2' or '8Gi' (not '8GB') (got '8GB')"
        ],
        id="memory-in-gb",
    ),
    pytest.param(
        _set(
            "mlops:featureStore/featureViews[0].source.path", "s3://acme-features/card_txn_stats/"
        ),
        [
            f"{F}: mlops:featureStore.featureViews[0].source.path: should be a path relative to the stack's own bucket, e.g. 'card_txn_stats/' (no s3://<bucket>/ and no leading '/': the stack knows its bucket) (got 's3://acme-features/card_txn_stats/')"
        ],
        id="s3-url-for-a-path",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].features[0]", "Card_txn_stats:txn_count_7d"),
        [
            f"{F}: mlops:training.pipelines[0].features[0]: should be <feature_view>:<feature>, the view's name in lower-case, e.g. 'card_txn_stats:txn_count_7d' (got 'Card_txn_stats:txn_count_7d')"
        ],
        id="upper-case-feature-reference",
    ),
    pytest.param(
        _second_view(name="card_txn_stats", features={"merchant_risk": "float64"}),
        [
            f"{F}: mlops:featureStore.featureViews[2].name: should be unique within the list (got 'card_txn_stats')"
        ],
        id="duplicate-view-reported-once",
    ),
    pytest.param(
        _second_pipeline(),
        [
            f"{F}: mlops:training.pipelines[1].name: should be unique within the list (got 'fraud-model')"
        ],
        id="duplicate-pipeline-reported-once",
    ),
    pytest.param(
        _second_pipeline(name="fraud-model-v2", model="fraud-model"),
        [
            f"{F}: mlops:training.pipelines[1].model: should be a model no other pipeline registers (pipeline 'fraud-model' registers it) (got 'fraud-model')"
        ],
        id="two-pipelines-one-model",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].estimator.params", {"max_iterz": 100}),
        [
            f"{F}: mlops:training.pipelines[0].estimator.params.max_iterz: should be a parameter of HistGradientBoostingClassifier; did you mean 'max_iter'? (got 100)"
        ],
        id="unknown-estimator-parameter",
    ),
    pytest.param(
        _set(
            "mlops:training/pipelines[0].estimator.params", {"max_iter": "lots", "max_depth": True}
        ),
        [
            f"{F}: mlops:training.pipelines[0].estimator.params.max_iter: should be an int in the range [1, inf) (got 'lots')",
            f"{F}: mlops:training.pipelines[0].estimator.params.max_depth: should be an int in the range [1, inf) or None (got True)",
        ],
        id="estimator-parameter-of-the-wrong-type",
    ),
    pytest.param(
        lambda c: c["mlops:training"]["pipelines"][0].update(
            task="regression", estimator={"kind": "logisticRegression"}
        ),
        [
            f"{F}: mlops:training.pipelines[0].estimator.kind: should be an estimator for regression (one of 'histGradientBoosting', 'linearRegression', 'randomForest') (got 'logisticRegression')"
        ],
        id="estimator-that-cannot-do-the-task",
    ),
    pytest.param(
        _set("mlops:serving/endpoints[0].replicas.min", True),
        [f"{F}: mlops:serving.endpoints[0].replicas.min: should be a valid integer (got True)"],
        id="bool-is-not-a-count",
    ),
    pytest.param(
        _set("mlops:tags", {"cost-center": "cc-1", "team": "fraud-ml", "managed-by": "me"}),
        [
            f"{F}: mlops:tags.team: should be a tag key of your own: team, environment and managed-by are reserved (the stack sets them on every resource) (got 'team')",
            f"{F}: mlops:tags.managed-by: should be a tag key of your own: team, environment and managed-by are reserved (the stack sets them on every resource) (got 'managed-by')",
        ],
        id="reserved-tag-keys",
    ),
    pytest.param(
        _set("mlops:training/pipelines[0].continuousTraining", {}),
        [
            f"{F}: mlops:training.pipelines[0].continuousTraining.triggers: should be at least one trigger (schedule, drift, decay or newData): without one nothing is ever retrained (got {{}})"
        ],
        id="continuous-training-without-a-trigger",
    ),
    pytest.param(
        _set(
            "mlops:training/pipelines[0].continuousTraining",
            {"triggers": {"drift": {"breaches": 5}}, "cooldown": "soon"},
        ),
        [
            f"{F}: mlops:training.pipelines[0].continuousTraining.triggers.drift.windows: should be at least `breaches` (5): breaches are counted among the last `windows` monitor windows (got 4)",
            f"{F}: mlops:training.pipelines[0].continuousTraining.cooldown: should be a duration such as 90s, 15m, 12h, 30d or 2w, at most 3650d (got 'soon')",
        ],
        id="m-of-n-with-m-above-n",
    ),
    pytest.param(
        _set(
            "mlops:training/pipelines[0].continuousTraining",
            {
                "triggers": {"drift": {"feature": "amount"}, "decay": {"metric": "r2"}},
                "lease": "1h",
            },
        ),
        [
            f"{F}: mlops:training.pipelines[0].continuousTraining.triggers.drift.feature: should be a feature of the pipeline (one of 'avg_amount_7d', 'card_age_days', 'credit_limit', 'distinct_merchants_7d', 'is_premium', 'max_amount_7d', 'txn_count_7d') (got 'amount')",
            f"{F}: mlops:training.pipelines[0].continuousTraining.triggers.decay.metric: should be a classification metric (one of 'accuracy', 'f1', 'roc_auc') (got 'r2')",
            f"{F}: mlops:training.pipelines[0].continuousTraining.liveLabels: should be the path of arrived labels (request_id and the target, parquet) when the decay trigger is on: live quality is measured on them",
            f"{F}: mlops:training.pipelines[0].continuousTraining.lease: should be at least the pipeline's deadline (6h): a running retrain must not lose its lease (got '1h')",
        ],
        id="continuous-training-cross-checks",
    ),
    pytest.param(
        lambda config: (
            _set(
                "mlops:training/pipelines[0].continuousTraining",
                {"triggers": {"drift": {}}, "promotion": {"minRequests": 50}},
            )(config),
            config["mlops:serving"]["endpoints"][0].pop("canary"),
        ),
        [
            f"{F}: mlops:training.pipelines[0].continuousTraining.promotion: should be set only when a real-time endpoint serving 'fraud-model' has a canary: the canary is what gets promoted (got {{'observe': '30m', 'minRequests': 50}})"
        ],
        id="auto-promotion-without-a-canary",
    ),
    pytest.param(
        lambda config: (
            _set("mlops:training/pipelines[0].continuousTraining", {"triggers": {"drift": {}}})(
                config
            ),
            config["mlops:serving"].update(endpoints=[]),
        ),
        [
            f"{F}: mlops:training.pipelines[0].continuousTraining.triggers.drift: should be on only when a real-time endpoint in mlops:serving serves 'fraud-model': the drift monitor measures its traffic window by window (got {{}})"
        ],
        id="drift-trigger-without-an-endpoint",
    ),
    pytest.param(
        _set("aws:region", "europe"),
        [
            f"{F}: aws:region: should be an AWS region such as eu-west-1 (one of the 46 in botocore's partitions) (got 'europe')"
        ],
        id="bad-region",
    ),
    pytest.param(
        _set("aws:region", "eu-wset-1"),
        [
            f"{F}: aws:region: should be an AWS region such as eu-west-1 (one of the 46 in botocore's partitions); did you mean 'eu-west-1'? (got 'eu-wset-1')"
        ],
        id="misspelled-region",
    ),
    pytest.param(
        _set("mlops:training/nodePools[0].instanceTypes", ["g5.xlarge", "g5.2xlarg"]),
        [
            f"{F}: mlops:training.nodePools[0].instanceTypes[1]: should be an EC2 instance type (the 1437 of botocore's EC2 model); did you mean 'g5.2xlarge'? (got 'g5.2xlarg')"
        ],
        id="instance-type-ec2-does-not-have",
    ),
    pytest.param(
        _set("mlops:training/nodePools[0].instanceTypes", ["g5.xlarge", "g5g.xlarge"]),
        [
            f"{F}: mlops:training.nodePools[0].instanceTypes[1]: should be of one CPU architecture with the group's other types (g5.xlarge is x86_64, g5g.xlarge is arm64): a node group runs one AMI; put them in two node pools (got 'g5g.xlarge')"
        ],
        id="node-pool-mixing-architectures",
    ),
    pytest.param(
        _set("mlops:training/nodePools[0].instanceTypes", ["g5.xlarge", "m6i.xlarge"]),
        [
            f"{F}: mlops:training.nodePools[0].instanceTypes[1]: should be of one kind of accelerator with the group's other types (g5.xlarge: NVIDIA GPUs, m6i.xlarge: no accelerator): one AMI serves the group and pods asking for a GPU would land on nodes without one; put them in two node pools (got 'm6i.xlarge')"
        ],
        id="node-pool-mixing-gpu-and-cpu",
    ),
    pytest.param(
        _set("mlops:registry", {"database": {"instanceClass": "db.t4g.mediun"}}),
        [
            f"{F}: mlops:registry.database.instanceClass: should be a size of db.t4g (2xlarge, large, medium, micro, nano, small, xlarge); did you mean 'db.t4g.medium'? (got 'db.t4g.mediun')",
        ],
        id="rds-class-size-ec2-does-not-have",
    ),
    pytest.param(
        _set(
            "mlops:registry", {"database": {"instanceClass": "db.g5.xlarge", "engineVersion": "19"}}
        ),
        [
            f"{F}: mlops:registry.database.engineVersion: should be a PostgreSQL major version RDS offers (13, 14, 15, 16, 17, 18) (the table in components/aws_tables.json, 2026-12-01; `python -m tooling.refresh_aws_tables` refreshes it) (got '19')",
            f"{F}: mlops:registry.database.instanceClass: should be an RDS for PostgreSQL instance class of family db.t3, db.t4g, db.m5, db.m6g, db.m6gd, db.m6i, db.m6id, db.m7g, db.m7i, db.m8g, db.r5, db.r6g, db.r6gd, db.r6i, db.r6id, db.r7g, db.r7i, db.r8g (the table in components/aws_tables.json, 2026-12-01; `python -m tooling.refresh_aws_tables` refreshes it); did you mean 'db.r5.xlarge'? (got 'db.g5.xlarge')",
        ],
        id="rds-family-and-major-not-offered",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_a_broken_config_is_reported_exactly(
    mutate: Callable[[Config], None],
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config()
    mutate(config)
    write_stack(tmp_path / "stacks", config)

    code, problems = validate("--stacks-dir", "stacks")

    assert (code, problems) == (1, expected)


def test_every_problem_of_every_file_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config("fraud-prod")
    config["mlops:serving"]["endpoints"][0]["replicas"] = {"min": 1, "max": 4}
    config["mlops:registry"]["database"]["backupRetentionDays"] = 3
    config["mlops:training"]["pipelines"][0]["nodePool"] = "tpu"
    write_stack(tmp_path / "stacks", config, "fraud-prod")
    (tmp_path / "stacks" / "Pulumi.fraud-dev.yaml").write_text("config:\n  mlops:team: [fraud\n")

    code, problems = validate("--stacks-dir", "stacks")

    assert code == 1
    assert problems == [
        "stacks/Pulumi.fraud-dev.yaml: line 3, column 1: should be valid YAML (expected ',' or ']', but got '<stream end>')",
        "stacks/Pulumi.fraud-prod.yaml: mlops:training.pipelines[0].nodePool: should be a node pool declared in mlops:training.nodePools (one of 'cpu', 'gpu') (got 'tpu')",
        "stacks/Pulumi.fraud-prod.yaml: mlops:serving.endpoints[0].replicas.min: should be at least 2 in prod (an endpoint must survive the loss of a node) (got 1)",
        "stacks/Pulumi.fraud-prod.yaml: mlops:registry.database.backupRetentionDays: should be at least 7 in prod (got 3)",
    ]


def test_prod_refuses_to_turn_safety_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config("fraud-prod")
    config["mlops:registry"]["database"].update(deletionProtection=False, multiAz=False)
    config["mlops:featureStore"]["pointInTimeRecovery"] = False
    config["mlops:monitoring"] = {}
    write_stack(tmp_path / "stacks", config, "fraud-prod")

    code, problems = validate("--stacks-dir", "stacks")

    f = "stacks/Pulumi.fraud-prod.yaml"
    assert (code, problems) == (
        1,
        [
            f"{f}: mlops:registry.database.deletionProtection: should be true in prod (got False)",
            f"{f}: mlops:registry.database.multiAz: should be true in prod (got False)",
            f"{f}: mlops:featureStore.pointInTimeRecovery: should be true in prod (got False)",
            f"{f}: mlops:monitoring.alertEmails: should be at least one alert email or webhook in prod: somebody must be paged (got [])",
        ],
    )


@pytest.mark.parametrize(
    "output", ["artifacts/", "artifacts", "artifacts/scores", "prediction-logs/x/"]
)
def test_a_batch_output_may_not_write_where_models_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    """A batch role writes its output prefix: over the artifact root it could plant a model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config("recommendations-dev")
    (index,) = [
        i for i, e in enumerate(config["mlops:serving"]["endpoints"]) if e.get("mode") == "batch"
    ]
    config["mlops:serving"]["endpoints"][index]["output"] = output
    write_stack(tmp_path / "stacks", config, "recommendations-dev")

    code, problems = validate("--stacks-dir", "stacks")

    assert (code, problems) == (
        1,
        [
            f"stacks/Pulumi.recommendations-dev.yaml: mlops:serving.endpoints[{index}].output: "
            "should be a prefix outside artifacts/ and prediction-logs/ (the model registry's "
            "artifacts, which only training writes, and the prediction logs), e.g. "
            f"'predictions/' (got {output!r})"
        ],
    )


def test_a_public_prod_endpoint_needs_an_authenticator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config("fraud-prod")
    config["mlops:serving"]["endpoints"][0]["ingress"]["public"] = True
    write_stack(tmp_path / "stacks", config, "fraud-prod")

    code, problems = validate("--stacks-dir", "stacks")

    assert (code, problems) == (
        1,
        [
            "stacks/Pulumi.fraud-prod.yaml: mlops:serving.endpoints[0].ingress.authentication: "
            "should be an authenticator for a public endpoint in prod, {kind: oidc, ...} or "
            "{kind: cognito, ...} (or public: false: an internal load balancer)"
        ],
    )


def test_a_prod_ingress_needs_the_load_balancer_subnets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    config = base_config("fraud-prod")
    del config["mlops:network"]["loadBalancerSubnetCidrs"]
    write_stack(tmp_path / "stacks", config, "fraud-prod")

    code, problems = validate("--stacks-dir", "stacks")

    assert (code, problems) == (
        1,
        [
            "stacks/Pulumi.fraud-prod.yaml: mlops:network.loadBalancerSubnetCidrs: should be the "
            "load balancer's subnets in prod, where no pod runs (the endpoint(s) scorer have an "
            "ingress; the VPC-wide default would admit every pod of the VPC to them), e.g. "
            "[10.30.96.0/24, 10.30.97.0/24, 10.30.98.0/24] (got [])"
        ],
    )


def test_every_example_stack_is_valid() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    platform = list(PLATFORM_STACKS.glob("Pulumi.*.yaml"))
    assert platform and result.stdout.count("✓") == len(list(STACKS.glob("Pulumi.*.yaml"))) + len(
        platform
    )
    assert "✓ platform/stacks/Pulumi.prod.yaml" in result.stdout


def test_a_missing_stack_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    code, problems = validate(str(tmp_path / "Pulumi.nobody-dev.yaml"))
    assert code == 1
    assert problems == [f"{tmp_path}/Pulumi.nobody-dev.yaml: -: should exist"]


def test_a_key_given_twice_at_any_depth_is_an_error_with_both_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stacks").mkdir()
    text = (STACKS / "Pulumi.fraud-dev.yaml").read_text()
    # A nested key given twice, and a bad merge: a second `mlops:serving:` block.
    text = text.replace(
        "        replicas: {min: 1, max: 2}\n",
        "        replicas: {min: 1, max: 2}\n        replicas: {min: 2, max: 4}\n",
    )
    text += "  mlops:serving:\n    endpoints: []\n"
    (tmp_path / "stacks" / "Pulumi.fraud-dev.yaml").write_text(text)

    code, problems = validate("--stacks-dir", "stacks")

    lines = text.splitlines()
    nested = [i + 1 for i, line in enumerate(lines) if line.startswith("        replicas:")]
    serving = [i + 1 for i, line in enumerate(lines) if line == "  mlops:serving:"]
    assert (code, problems) == (
        1,
        [
            f"{F}: mlops:serving.endpoints[0].replicas: should be given once (again on line {nested[1]}, first on line {nested[0]})",
            f"{F}: mlops:serving: should be given once (again on line {serving[1]}, first on line {serving[0]})",
        ],
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            b"config:\n  mlops:team: fraud\n  mlops:environment: d\xe9v\n",
            "line 3: should be UTF-8 text (byte 0xe9 is not)",
            id="not-utf-8",
        ),
        pytest.param(
            None, "-: should be a stack file Pulumi.<stack>.yaml, not a folder", id="folder"
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_an_error_not_a_traceback(
    content: bytes | None, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "stacks"
    target.mkdir()
    if content is not None:
        target = target / "Pulumi.fraud-dev.yaml"
        target.write_bytes(content)

    code, problems = validate(str(target.relative_to(tmp_path)))

    assert (code, problems) == (1, [f"{target.relative_to(tmp_path)}: {expected}"])


def test_every_pattern_of_the_schema_is_explained_with_an_example() -> None:
    from components.config import StackConfig
    from components.config.loading import PATTERN_HELP

    def patterns(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
            return found.union(*map(patterns, node.values()))
        if isinstance(node, list):
            return set().union(*map(patterns, node))
        return set()

    unexplained = patterns(StackConfig.model_json_schema(by_alias=True)) - set(PATTERN_HELP)
    assert unexplained == set()
