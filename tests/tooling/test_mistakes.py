"""Realistic mistakes, generated: a valid stack with several of everything (tests/stackgen.py),
one value turned into what AWS or the Kubernetes API server would refuse. Each must be caught
by `mlops validate` or by the preflight of `mlops plan`, with a clear message, never a traceback.

Cases are drawn from a fixed seed: a failure names its case (`<mistake>-<seed>`) and comes back
the same on every run.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import aws_values
from components.config import ConfigError
from tests.stackgen import Config, generated_config, write_stack
from tooling.plan import plan_stack, validate_stack_file

SEED = 21
CASES_PER_MISTAKE = 2


def _typo(rng: random.Random, word: str) -> str:
    """A keyboard slip: a letter dropped, doubled or two swapped."""
    i = rng.randrange(1, len(word) - 1)
    return rng.choice(
        [
            word[:i] + word[i + 1 :],
            word[:i] + word[i] + word[i:],
            word[:i] + word[i + 1] + word[i] + word[i + 2 :],
        ]
    )


def _pool(config: Config, rng: random.Random) -> dict[str, Any]:
    pools: list[dict[str, Any]] = config["mlops:training"]["nodePools"]
    return rng.choice(pools)


def _endpoint(config: Config, rng: random.Random, mode: str = "realtime") -> dict[str, Any]:
    endpoints = [
        e for e in config["mlops:serving"]["endpoints"] if e.get("mode", "realtime") == mode
    ]
    return rng.choice(endpoints)


def instance_type_typo(config: Config, rng: random.Random) -> str:
    pool = _pool(config, rng)
    types = pool["instanceTypes"]
    index = rng.randrange(len(types))
    while (wrong := _typo(rng, types[index])) in aws_values.instance_types():
        pass
    types[index] = wrong
    return "mlops:training.nodePools"


def architectures_mixed(config: Config, rng: random.Random) -> str:
    pool = _pool(config, rng)
    first = aws_values.family(pool["instanceTypes"][0])
    assert first is not None
    other = {
        ("x86_64", None): "m7g.2xlarge",
        ("arm64", None): "m6i.2xlarge",
        ("x86_64", "nvidia"): "g5g.2xlarge",
    }[(first.architecture, first.accelerator)]
    pool["instanceTypes"].append(other)
    return "mlops:training.nodePools"


def gpu_and_cpu_in_one_pool(config: Config, rng: random.Random) -> str:
    pool = _pool(config, rng)
    first = aws_values.family(pool["instanceTypes"][0])
    assert first is not None
    pool["instanceTypes"].append("g5.xlarge" if first.accelerator is None else "m6i.xlarge")
    return "mlops:training.nodePools"


def region_typo(config: Config, rng: random.Random) -> str:
    while (wrong := _typo(rng, config["aws:region"])) in aws_values.regions():
        pass
    config["aws:region"] = wrong
    return "aws:region"


def database_class_rds_lacks(config: Config, rng: random.Random) -> str:
    config["mlops:registry"]["database"]["instanceClass"] = rng.choice(
        ["db.t4g.mediun", "db.m6i.micro", "db.g5.xlarge", "db.r6g.larg", "db.t3.nano2"]
    )
    return "mlops:registry.database.instanceClass"


def postgres_major_rds_lacks(config: Config, rng: random.Random) -> str:
    config["mlops:registry"]["database"]["engineVersion"] = rng.choice(["19", "12", "16.99.1"])
    return "mlops:registry.database.engineVersion"


def memory_in_gigabytes(config: Config, rng: random.Random) -> str:
    endpoint = _endpoint(config, rng)
    endpoint["resources"]["memory"] = rng.choice(["2GB", "1.5 Gi", "512MB", "2gi"])
    return "mlops:serving.endpoints"


def cpu_in_cores(config: Config, rng: random.Random) -> str:
    pipeline = rng.choice(config["mlops:training"]["pipelines"])
    pipeline["resources"]["cpu"] = rng.choice(["2 cores", "2c", "1,5", "-1"])
    return "mlops:training.pipelines"


def schedule_with_seconds(config: Config, rng: random.Random) -> str:
    endpoint = _endpoint(config, rng, mode="batch")
    endpoint["schedule"] = rng.choice(["0 0 3 * * *", "*/30 * * * * *", "CRON_TZ=UTC 0 3 * * *"])
    return "mlops:serving.endpoints"


def schedule_out_of_range(config: Config, rng: random.Random) -> str:
    pipeline = rng.choice(config["mlops:training"]["pipelines"])
    pipeline["schedule"] = rng.choice(["0 24 * * *", "61 * * * *", "0 3 32 * *", "0 3 * 13 *"])
    return "mlops:training.pipelines"


def endpoint_name_not_a_dns_label(config: Config, rng: random.Random) -> str:
    endpoint = _endpoint(config, rng)
    endpoint["name"] = rng.choice(["Scorer", "scorer_v2", "scorer.eu", "-scorer", "s" * 41])
    return "mlops:serving.endpoints"


def lifecycle_days_zero(config: Config, rng: random.Random) -> str:
    config["mlops:featureStore"]["offlineLifecycle"] = {
        rng.choice(["noncurrentVersionExpirationDays", "expirationDays"]): 0
    }
    return "mlops:featureStore.offlineLifecycle"


def tag_aws_refuses(config: Config, rng: random.Random) -> str:
    config["mlops:tags"] = rng.choice(
        [{"aws:owner": "ml"}, {"cost center!": "cc-1"}, {"k" * 129: "v"}, {"owner": "v" * 257}]
    )
    return "mlops:tags"


def more_pods_than_shares(config: Config, rng: random.Random) -> str:
    endpoint = _endpoint(config, rng, mode="batch")
    endpoint["completions"] = rng.randint(1, 6)
    endpoint["parallelism"] = endpoint["completions"] + rng.randint(1, 3)
    return "mlops:serving.endpoints"


def materialization_shares_feast_cannot_take(config: Config, rng: random.Random) -> str:
    store = config["mlops:featureStore"]
    online = sum(view.get("online", True) for view in store["featureViews"])
    materialization = store.setdefault("materialization", {})
    if rng.random() < 0.5:  # Feast's file registry: every share would rewrite it
        store["registry"] = {"type": "s3"}
        materialization["completions"] = rng.randint(2, 4)
    else:  # more shares than views to deal out
        store["registry"] = {"type": "sql"}
        materialization["completions"] = online + rng.randint(1, 3)
    return "mlops:featureStore.materialization"


MISTAKES: list[Callable[[Config, random.Random], str]] = [
    instance_type_typo,
    architectures_mixed,
    gpu_and_cpu_in_one_pool,
    region_typo,
    database_class_rds_lacks,
    postgres_major_rds_lacks,
    memory_in_gigabytes,
    cpu_in_cores,
    schedule_with_seconds,
    schedule_out_of_range,
    endpoint_name_not_a_dns_label,
    lifecycle_days_zero,
    tag_aws_refuses,
    more_pods_than_shares,
    materialization_shares_feast_cannot_take,
]


def _cases() -> list[Any]:
    rng = random.Random(SEED)
    return [
        pytest.param(mistake, seed, id=f"{mistake.__name__}-{seed}")
        for mistake in MISTAKES
        for seed in rng.sample(range(10_000), CASES_PER_MISTAKE)
    ]


@pytest.mark.parametrize(("mistake", "seed"), _cases())
def test_a_realistic_mistake_is_caught_with_a_clear_message(
    mistake: Callable[[Config, random.Random], str], seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    config = generated_config(seed, environment=rng.choice(["dev", "prod"]))
    broken = copy.deepcopy(config)
    key = mistake(broken, rng)
    file = write_stack(tmp_path, broken)

    try:
        validate_stack_file(file)
    except ConfigError as error:
        caught = error
    else:
        # Not a config problem: what the program makes of it must be refused by the preflight.
        with pytest.raises(ConfigError) as planned:
            plan_stack(file)
        caught = planned.value

    assert caught.issues
    for issue in caught.issues:
        assert issue.file == str(file)
        assert issue.message.startswith("should "), issue
        assert "Traceback" not in issue.message
    assert any(issue.path.startswith(key) for issue in caught.issues) or all(
        issue.path.startswith(("aws:", "kubernetes:")) for issue in caught.issues
    ), [str(issue) for issue in caught.issues]


@pytest.mark.parametrize(
    ("target", "wrong", "where"),
    [
        pytest.param(
            "components.storage.KMS_DELETION_WINDOW_DAYS",
            45,
            "deletionWindowInDays",
            id="kms-window",
        ),
        pytest.param("components.serving.HTTP_PORT", 80800, "containerPort", id="serving-port"),
        pytest.param(
            "components.serving.selector",
            lambda endpoint: {"app.kubernetes.io/name": f"{endpoint} endpoint"},
            "app.kubernetes.io/name",
            id="selector-label-value",
        ),
        pytest.param(
            "components.naming.cpu_limit", lambda request: "1.5cores", "limits.cpu", id="cpu-limit"
        ),
        pytest.param(
            "components.training.ami_type",
            lambda types: "AL2023_ARM_64_STANDARD",
            "amiType",
            id="ami-type",
        ),
    ],
)
def test_a_mistake_in_component_code_is_caught_by_the_preflight(
    target: str, wrong: Any, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same kinds of mistakes made in component code, over a stack with several of
    everything: validate cannot see them, the plan refuses them."""
    file = write_stack(tmp_path, generated_config(SEED, environment="prod"))
    validate_stack_file(file)
    monkeypatch.setattr(target, wrong)

    with pytest.raises(ConfigError) as caught:
        plan_stack(file)

    issues = caught.value.issues
    assert issues and all(issue.message.startswith("should ") for issue in issues)
    assert any(where in issue.path for issue in issues), [str(issue) for issue in issues]
