"""The platform's typed config: the example stacks validate; bad input gets every problem at once,
with file, key path, value and what is allowed; nothing is planned."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.config import ConfigError
from components.platform import catalog
from components.platform.config import load_platform_file, parse_platform_config
from tests.conftest import PLATFORM_STACKS
from tooling.cli import app
from tooling.plan import plan_stack

FILE = Path("stacks/Pulumi.prod.yaml")


def example(stack: str) -> dict[str, Any]:
    return yaml.safe_load((PLATFORM_STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


def problems(config: dict[str, Any], stack: str = "prod") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(config, file=FILE, stack=stack)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_platform_stacks_are_valid(stack: str) -> None:
    loaded = load_platform_file(PLATFORM_STACKS / f"Pulumi.{stack}.yaml")

    assert loaded.config.cluster_name == f"mlops-{stack}"
    assert len(loaded.zones) == {"dev": 2, "prod": 3}[stack]
    assert loaded.config.network.nat_gateway_per_zone is (stack == "prod")
    assert loaded.config.cluster_autoscaler_image.endswith(
        catalog.CLUSTER_AUTOSCALER_TAGS[loaded.config.cluster.kubernetes_version]
    )


def test_overlapping_and_invalid_cidrs_are_reported_together() -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:network"] |= {
        "privateSubnetCidrs": ["10.30.0.0/19", "10.30.16.0/20", "10.30.64.0/20"],
        "publicSubnetCidrs": ["10.30.96.0/24", "10.31.0.0/24", "10.30.300.0/24"],
    }
    config["platform:cluster"]["serviceCidr"] = "10.30.128.0/17"

    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:network.publicSubnetCidrs[2]: should be an IPv4 CIDR block such as 10.0.0.0/16 (Octet 300 (> 255) not permitted in '10.30.300.0') (got '10.30.300.0/24')",
    ]
    config["platform:network"]["publicSubnetCidrs"][2] = "10.30.98.0/24"
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:cluster.serviceCidr: should be a block that does not overlap the VPC (10.30.0.0/16): Service and pod addresses would collide (got '10.30.128.0/17')",
        "stacks/Pulumi.prod.yaml: platform:network.publicSubnetCidrs[1]: should be inside the VPC's 10.30.0.0/16 (got '10.31.0.0/24')",
        "stacks/Pulumi.prod.yaml: platform:network.privateSubnetCidrs[1]: should be a block that does not overlap platform:network.privateSubnetCidrs[0] (10.30.0.0/19) (got '10.30.16.0/20')",
    ]


def test_too_few_zones_and_too_small_subnets_are_refused() -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:network"] |= {"zones": 2, "privateSubnetPrefix": 22}

    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:network.zones: should be at least 3 zones in prod (EKS needs subnets in two zones; prod must survive the loss of one) (got 2)",
        "stacks/Pulumi.prod.yaml: platform:network.privateSubnetPrefix: should be at most 20 (a /20 or larger: 4091 usable addresses; with the VPC CNI every pod takes one) (got 22)",
    ]


def test_a_vpc_too_small_for_its_subnets_is_refused() -> None:
    config = copy.deepcopy(example("dev"))
    config["platform:network"]["cidr"] = "10.20.0.0/18"

    assert problems(config, "dev") == [
        "stacks/Pulumi.prod.yaml: platform:network.cidr: should be large enough for the subnets: 2 private /19 and 2 public /24 subnets do not fit in 10.20.0.0/18 (use a larger VPC or smaller subnet prefixes) (got '10.20.0.0/18')",
    ]


def test_kubernetes_and_addon_versions_must_be_ones_eks_offers() -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:addons"] |= {"kubeProxy": "v1.32.9-eksbuild.2", "coredns": "1.12.4"}
    config["platform:services"] = {
        "clusterAutoscalerImage": f"{catalog.CLUSTER_AUTOSCALER_IMAGE}:v1.31.3"
    }

    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:addons.coredns: should be an EKS add-on version such as 'v1.12.4-eksbuild.1' (v<x.y.z>-eksbuild.<n>) (got '1.12.4')",
        "stacks/Pulumi.prod.yaml: platform:addons.kubeProxy: should be a kube-proxy version EKS offers for Kubernetes 1.33 (v1.33.x; latest: 'v1.33.5-eksbuild.2') (got 'v1.32.9-eksbuild.2')",
        "stacks/Pulumi.prod.yaml: platform:services.clusterAutoscalerImage: should be a Cluster Autoscaler release of the cluster's minor (v1.33.x, e.g. v1.33.1): each release supports one Kubernetes minor (got 'registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.3')",
    ]
    config["platform:cluster"]["kubernetesVersion"] = "1.19"
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:cluster.kubernetesVersion: should be a version EKS offers (1.28, 1.29, 1.30, 1.31, 1.32, 1.33, 1.34) (got '1.19')",
    ]


def test_vpc_cni_must_enforce_network_policy() -> None:
    config = copy.deepcopy(example("dev"))
    config["platform:addons"]["vpcCni"] = "v1.13.4-eksbuild.1"

    assert problems(config, "dev") == [
        "stacks/Pulumi.prod.yaml: platform:addons.vpcCni: should be v1.14 or later: team namespaces rely on NetworkPolicy enforcement (latest: 'v1.20.1-eksbuild.3') (got 'v1.13.4-eksbuild.1')",
    ]


def test_prod_refuses_an_open_api_endpoint_and_a_single_system_node() -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:cluster"]["endpoint"] = {"publicAccess": True}
    config["platform:cluster"]["logTypes"] = ["api"]
    config["platform:systemNodes"]["minSize"] = 1

    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:cluster.endpoint.publicAccess: should be false in prod, or limited with publicAccessCidrs (the API would be open to the internet) (got True)",
        "stacks/Pulumi.prod.yaml: platform:cluster.logTypes: should be including audit in prod (got ['api'])",
        "stacks/Pulumi.prod.yaml: platform:systemNodes.minSize: should be at least 2 in prod (cluster services must survive the loss of a node or a zone) (got 1)",
    ]
    config = copy.deepcopy(example("prod"))
    config["platform:cluster"]["endpoint"] = {
        "publicAccess": True,
        "publicAccessCidrs": ["0.0.0.0/0"],
    }
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:cluster.endpoint.publicAccessCidrs[0]: should be a block narrower than the whole internet in prod (got '0.0.0.0/0')",
    ]


def test_access_needs_an_admin_and_named_principals() -> None:
    config = copy.deepcopy(example("dev"))
    config["platform:cluster"]["access"] = {"admins": ["arn:aws:iam::123456789012:role/*"]}

    assert problems(config, "dev") == [
        "stacks/Pulumi.prod.yaml: platform:cluster.access.admins[0]: should be one IAM role or user ARN, e.g. 'arn:aws:iam::123456789012:role/mlops-deploy' (got 'arn:aws:iam::123456789012:role/*')",
    ]
    config["platform:cluster"]["access"] = {}
    assert problems(config, "dev") == [
        "stacks/Pulumi.prod.yaml: platform:cluster.access.admins: should be at least one admin or deployer ARN: the cluster creator gets no access of its own (got [])",
    ]


def test_unknown_keys_and_missing_ones_are_named() -> None:
    config = copy.deepcopy(example("dev"))
    config["platform:netwrok"] = config.pop("platform:network")
    del config["platform:addons"]
    config["platform:cluster"]["kubernetesVersoin"] = "1.33"

    assert problems(config, "dev") == [
        "stacks/Pulumi.prod.yaml: platform:netwrok: should be a known key (platform:environment, platform:network, platform:cluster, platform:addons, platform:systemNodes, platform:services, platform:keyAdministrators, platform:tags, platform:budget, platform:usage); did you mean platform:network?",
        "stacks/Pulumi.prod.yaml: platform:addons: should be set",
        "stacks/Pulumi.prod.yaml: platform:cluster.kubernetesVersoin: should be a known key (access, deletionProtection, endpoint, kubernetesVersion, logRetentionDays, logTypes, name, serviceCidr); did you mean 'kubernetesVersion'? (got '1.33')",
    ]


def test_a_broken_platform_stack_plans_nothing_and_says_why(tmp_path: Path) -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:network"]["zones"] = 1
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: mlops-platform\nruntime: python\n")
    file = stacks / "Pulumi.prod.yaml"
    file.write_text(yaml.safe_dump({"config": config}))

    with pytest.raises(ConfigError):
        plan_stack(file)
    result = CliRunner().invoke(app, ["plan", str(file)])
    assert result.exit_code == 1
    assert "platform:network.zones: should be at least 3 zones in prod" in result.stderr
    assert "Traceback" not in result.output


def test_system_nodes_run_on_what_their_ami_drives() -> None:
    config = copy.deepcopy(example("prod"))
    config["platform:systemNodes"] = {"instanceTypes": ["m7g.large"], "minSize": 2}
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:systemNodes.instanceTypes[0]: should be an x86_64 "
        "instance type with no accelerator: the group runs AL2023_x86_64_STANDARD (m7g.large is "
        "arm64 with no accelerator) (got 'm7g.large')",
    ]
    config["platform:systemNodes"]["instanceTypes"] = ["m6i.large", "m6i.larg"]
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:systemNodes.instanceTypes[1]: should be an EC2 instance "
        "type (the 1437 of botocore's EC2 model); did you mean 'm6i.large'? (got 'm6i.larg')",
    ]


def test_prod_names_the_administrators_of_the_secrets_key() -> None:
    config = copy.deepcopy(example("prod"))
    del config["platform:keyAdministrators"]
    config["platform:systemNodes"]["minSize"] = 1  # reported in the same run

    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:keyAdministrators: should be the IAM roles that administer the cluster's secrets key in prod, including the one that runs `pulumi up`, e.g. [arn:aws:iam::123456789012:role/platform-admin] (got [])",
        "stacks/Pulumi.prod.yaml: platform:systemNodes.minSize: should be at least 2 in prod (cluster services must survive the loss of a node or a zone) (got 1)",
    ]
    admin = "arn:aws:iam::123456789012:role/platform-admin"
    config = copy.deepcopy(example("prod"))
    config["platform:keyAdministrators"] = [admin, "arn:aws:iam::123456789012:root", admin]
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:keyAdministrators[1]: should be one IAM role or user ARN, e.g. 'arn:aws:iam::123456789012:role/mlops-deploy' (got 'arn:aws:iam::123456789012:root')",
    ]
    config["platform:keyAdministrators"] = [admin, admin]
    assert problems(config) == [
        "stacks/Pulumi.prod.yaml: platform:keyAdministrators[1]: should be listed once (got 'arn:aws:iam::123456789012:role/platform-admin')",
    ]


def test_dev_leaves_the_secrets_key_to_the_account_as_administrator() -> None:
    loaded = load_platform_file(PLATFORM_STACKS / "Pulumi.dev.yaml")
    assert loaded.config.key_administrators == []
