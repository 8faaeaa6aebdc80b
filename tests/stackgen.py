"""Generated stack configs: valid, realistic, with several of everything, from a seed.

The example stacks have one or two of each thing; a mistake that only shows with several (two
endpoints whose children collide, a node pool whose types mix architectures) needs more. The
same seed always gives the same config, so a failure is reproducible from its seed alone.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]

# Node pools a team really asks for: general CPU (x86 and Graviton), memory-heavy, GPU.
POOL_TYPES = (
    ("cpu", ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge"]),
    ("arm", ["m7g.2xlarge", "c7g.4xlarge"]),
    ("mem", ["r6i.4xlarge", "r6a.4xlarge"]),
    ("gpu", ["g5.xlarge", "g5.2xlarge"]),
    ("gpu-big", ["g6.12xlarge"]),
)
DATABASE_CLASSES = ("db.t4g.micro", "db.t4g.medium", "db.m7g.large", "db.r6g.large")
SCHEDULES = ("0 3 * * *", "*/30 * * * *", "15 */2 * * *", "0 1 * * 0", "@daily")
REGIONS = ("eu-west-1", "us-east-1", "eu-central-1", "us-west-2")


def generated_config(
    seed: int,
    *,
    environment: str = "dev",
    team: str = "gen",
    views: int = 3,
    pipelines: int = 3,
    realtime: int = 3,
    batch: int = 2,
    pools: int = 3,
) -> Config:
    """A valid `config:` mapping with ``views`` feature views, ``pipelines`` pipelines,
    ``realtime`` + ``batch`` endpoints and ``pools`` node pools, varied by ``seed``."""
    rng = random.Random(seed)
    prod = environment == "prod"
    entities = [
        {"name": "customer", "joinKey": "customer_id"},
        {"name": "item", "joinKey": "item_id"},
    ]
    feature_views = []
    for v in range(views):
        entity = entities[v % len(entities)]["name"]
        feature_views.append(
            {
                "name": f"{entity}_stats_{v}",
                "entities": [entity],
                "ttl": rng.choice(["1d", "7d", "30d"]),
                "source": {"path": f"{entity}_stats_{v}/", "timestampField": "event_ts"},
                "features": {f"f{v}_{k}": rng.choice(["int64", "float64"]) for k in range(3)},
            }
        )
    refs = [f"{fv['name']}:{feature}" for fv in feature_views for feature in fv["features"]]
    node_pools = []
    for p in range(pools):
        name, types = POOL_TYPES[(seed + p) % len(POOL_TYPES)]
        node_pools.append(
            {
                "name": f"{name}-{p}",
                "instanceTypes": types,
                "capacity": rng.choice(["spot", "onDemand"]),
                "maxNodes": rng.randint(1, 6),
            }
        )
    training = []
    for t in range(pipelines):
        pool = node_pools[t % len(node_pools)]
        gpu = 1 if pool["name"].startswith("gpu") else 0
        training.append(
            {
                "name": f"model-{t}",
                "schedule": rng.choice(SCHEDULES),
                "nodePool": pool["name"],
                "labels": {"path": f"labels/model_{t}/", "target": "label"},
                "features": rng.sample(refs, k=min(len(refs), 4)),
                "gates": {"metric": "roc_auc", "minimum": 0.7},
                "resources": {"cpu": "2", "memory": "8Gi", "gpu": gpu},
            }
        )
    endpoints: list[Config] = []
    for e in range(realtime):
        endpoint: Config = {
            "name": f"scorer-{e}",
            "model": f"model-{e % pipelines}",
            "replicas": {"min": 2 if prod else 1, "max": rng.randint(3, 10)},
            "resources": {"cpu": rng.choice(["250m", "500m", "1"]), "memory": "1Gi"},
        }
        if e % 3 == 1:
            endpoint["canary"] = {"alias": "challenger", "weight": rng.randint(5, 20)}
        elif e % 3 == 2:
            endpoint["shadow"] = True
        if e == 0:
            endpoint["ingress"] = {
                "host": f"scorer-{e}.{team}.ml.example.internal",
                "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/"
                "5f0c2b8e-8d3a-4c51-9f0e-2b7d6a1c4e93",
            }
        endpoints.append(endpoint)
    for b in range(batch):
        endpoints.append(
            {
                "name": f"batch-{b}",
                "mode": "batch",
                "model": f"model-{b % pipelines}",
                "schedule": rng.choice(SCHEDULES),
                "input": f"batch/input_{b}/",
                "output": f"predictions/batch_{b}/",
            }
        )
    config: Config = {
        "aws:region": rng.choice(REGIONS),
        "mlops:team": team,
        "mlops:environment": environment,
        "mlops:cluster": {"stackReference": f"acme/mlops-platform/{environment}"},
        "mlops:featureStore": {
            "entities": entities,
            "featureViews": feature_views,
            "materialization": {"schedule": "0 * * * *"},
        },
        "mlops:registry": {"database": {"instanceClass": rng.choice(DATABASE_CLASSES)}},
        "mlops:training": {
            "nodePools": node_pools,
            "pipelines": training,
            "quota": {"cpu": "64", "memory": "256Gi", "gpu": 8, "pods": 100},
        },
        "mlops:serving": {"endpoints": endpoints},
        "mlops:monitoring": {"alertEmails": [f"{team}-oncall@example.com"]},
    }
    if prod:
        config["mlops:image"] = "registry.example/gen/runtime@sha256:" + "ab" * 32
        # Prod's KMS keys need named administrators (#14).
        config["mlops:keyAdministrators"] = ["arn:aws:iam::123456789012:role/mlops-deploy"]
        # Prod endpoints with an ingress admit only the load balancer's subnets (#14).
        config["mlops:network"] = {
            "loadBalancerSubnetCidrs": ["10.30.96.0/24", "10.30.97.0/24", "10.30.98.0/24"]
        }
    return config


def write_stack(folder: Path, config: Config) -> Path:
    """``config`` as `<folder>/Pulumi.<team>-<env>.yaml`."""
    stack = f"{config['mlops:team']}-{config['mlops:environment']}"
    file = folder / f"Pulumi.{stack}.yaml"
    file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return file
