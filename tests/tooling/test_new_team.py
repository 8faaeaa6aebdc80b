from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from components.config import ConfigError, load_stack_file
from tooling.cli import app
from tooling.plan import plan_stack

runner = CliRunner()


ADMIN = "arn:aws:iam::123456789012:role/mlops-deploy"


def test_new_team_writes_stacks_that_validate_and_plan(stack_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "new-team",
            "payments",
            "--env",
            "dev",
            "--env",
            "prod",
            "--key-admin",
            ADMIN,
            "--stacks-dir",
            str(stack_dir),
        ],
    )

    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in stack_dir.iterdir())
    assert files == ["Pulumi.payments-dev.yaml", "Pulumi.payments-prod.yaml"]
    # Prod's image is pushed once the stack exists: until then validate says how to set it.
    prod_file = stack_dir / "Pulumi.payments-prod.yaml"
    with pytest.raises(ConfigError) as refused:
        load_stack_file(prod_file)
    [(path, message)] = [(issue.path, issue.message) for issue in refused.value.issues]
    assert (path, message) == (
        "mlops:image",
        "should be the digest of a pushed image, not the all-zero placeholder `mlops new-team` "
        "writes: `IMAGE=$(mlops image build --push <repository>)` prints it (<repository>: the "
        'stack output imageRepository), then `pulumi config set mlops:image "$IMAGE"`',
    )
    pushed = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-prod/runtime@sha256:{'e' * 64}"
    prod_file.write_text(
        prod_file.read_text()
        .replace(f"@sha256:{'0' * 64}", f"@sha256:{'e' * 64}")
        .replace("<account>", "123456789012")
    )
    prod = load_stack_file(prod_file).config
    assert prod.image == pushed
    assert (prod.team, prod.environment, prod.serving.endpoints[0].replicas.min) == (
        "payments",
        "prod",
        2,
    )
    assert prod.registry.database.deletion_protection and prod.monitoring.alert_emails
    assert prod.key_administrators == [ADMIN]
    assert plan_stack(stack_dir / "Pulumi.payments-dev.yaml").resources


def test_prod_needs_a_key_administrator(stack_dir: Path) -> None:
    result = runner.invoke(
        app, ["new-team", "payments", "--env", "prod", "--stacks-dir", str(stack_dir)]
    )

    assert result.exit_code == 1
    assert (
        "--key-admin: should be the IAM roles that administer the team's KMS keys in prod"
        in " ".join(result.output.split())
    )
    assert not list(stack_dir.iterdir())


def test_new_team_refuses_to_overwrite_and_writes_nothing(stack_dir: Path) -> None:
    existing = stack_dir / "Pulumi.payments-prod.yaml"
    existing.write_text("config: {}\n")

    result = runner.invoke(
        app,
        [
            "new-team",
            "payments",
            "--env",
            "dev",
            "--env",
            "prod",
            "--key-admin",
            ADMIN,
            "--stacks-dir",
            str(stack_dir),
        ],
    )

    assert result.exit_code == 1
    assert f"refusing to overwrite {existing}; nothing was written" in result.stderr
    assert existing.read_text() == "config: {}\n"
    assert not (stack_dir / "Pulumi.payments-dev.yaml").exists()


NAME_RULE = "should be 2-20 lower-case letters, digits and '-', starting with a letter"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["Payments_X", "--env", "dev", "--env", "prod"],
            [f"the team name: {NAME_RULE} (got 'Payments_X'); nothing was written"],
            id="upper-case-and-underscore",
        ),
        pytest.param(
            ["a-team-name-much-too-long"],
            [f"the team name: {NAME_RULE} (got 'a-team-name-much-too-long'); nothing was written"],
            id="too-long",
        ),
        pytest.param(
            ["payments", "--region", "europe", "--alert-email", "oncall"],
            [
                "--region: should be an AWS region such as eu-west-1 (one of the 46 in botocore's partitions) (got 'europe')",
                "--alert-email: should be an email address such as ml-oncall@example.com: An email address must have an @-sign. (got 'oncall'); nothing was written",
            ],
            id="bad-options",
        ),
    ],
)
def test_new_team_blames_its_arguments_not_a_file_it_never_wrote(
    args: list[str], expected: list[str], stack_dir: Path
) -> None:
    result = runner.invoke(app, ["new-team", *args, "--stacks-dir", str(stack_dir)])

    assert (result.exit_code, result.stderr.splitlines()) == (1, [f"✗ {e}" for e in expected])
    assert list(stack_dir.iterdir()) == []


def _new_team_beside(stack_dir: Path, platform_regions: dict[str, str], *args: str) -> Result:
    """`mlops new-team search ARGS` in a repository whose platform stacks are in these regions."""
    platform_stacks = stack_dir.parent / "platform" / "stacks"
    platform_stacks.mkdir(parents=True)
    for stack, region in platform_regions.items():
        (platform_stacks / f"Pulumi.{stack}.yaml").write_text(f"config:\n  aws:region: {region}\n")
    return runner.invoke(app, ["new-team", "search", *args, "--stacks-dir", str(stack_dir)])


def test_new_team_warns_about_a_platform_stack_missing_or_in_another_region(
    stack_dir: Path,
) -> None:
    result = _new_team_beside(
        stack_dir,
        {"dev": "eu-west-1"},
        *("--env", "dev", "--env", "prod", "--region", "us-east-1", "--key-admin", ADMIN),
    )

    # Written all the same (the platform stack may come next), with what to do about it.
    assert result.exit_code == 0, result.output
    assert len(list(stack_dir.glob("Pulumi.search-*.yaml"))) == 2
    assert (
        "acme/mlops-platform/dev: that cluster is in eu-west-1, the new stacks in us-east-1"
        in result.output
    )
    assert "acme/mlops-platform/prod: no platform stack Pulumi.prod.yaml in" in result.output


def test_new_team_on_an_existing_platform_stack_of_its_region_warns_nothing(
    stack_dir: Path,
) -> None:
    result = _new_team_beside(
        stack_dir,
        {"us-dev": "us-east-1"},
        *("--region", "us-east-1", "--platform", "acme/mlops-platform/us-{env}"),
    )

    assert result.exit_code == 0, result.output
    assert "!" not in result.output
