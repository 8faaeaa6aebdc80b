"""`mlops new-team`: a new team's stack files from sensible defaults, all or nothing."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError, Environment, parse_stack_config
from tooling.plan import PLATFORM_PROJECT


class ScaffoldError(Exception):
    """The stack files cannot be written (they exist, or the folder is not writable)."""


def team_config(
    team: str,
    environment: Environment,
    *,
    region: str,
    platform: str,
    alert_email: str,
    key_administrators: Sequence[str] = (),
) -> dict[str, Any]:
    """The `config:` of a new team's stack: one of each concern, ready to edit."""
    model = f"{team}-model"
    prod = environment == Environment.prod
    return {
        "aws:region": region,
        "mlops:team": team,
        "mlops:environment": str(environment),
        # Prod runs an image pinned by digest; the deploy workflow sets the pushed one.
        **({"mlops:image": undeployed_image(team, environment, region)} if prod else {}),
        **({"mlops:keyAdministrators": list(key_administrators)} if key_administrators else {}),
        "mlops:cluster": {"stackReference": platform.format(env=environment)},
        "mlops:featureStore": {
            "entities": [{"name": "customer", "joinKey": "customer_id"}],
            "featureViews": [
                {
                    "name": "customer_activity",
                    "entities": ["customer"],
                    "ttl": "30d",
                    "source": {"path": "customer_activity/", "timestampField": "event_ts"},
                    "features": {"events_7d": "int64", "spend_30d": "float64"},
                }
            ],
            "materialization": {"schedule": "0 * * * *"},
        },
        "mlops:training": {
            "nodePools": [
                {
                    "name": "cpu",
                    "instanceTypes": ["m6i.xlarge"],
                    "capacity": "spot",
                    "maxNodes": 4 if prod else 2,
                }
            ],
            "pipelines": [
                {
                    "name": model,
                    "schedule": "0 3 * * 1",
                    "nodePool": "cpu",
                    "labels": {"path": "labels/", "target": "label", "timestampField": "event_ts"},
                    "features": ["customer_activity:events_7d", "customer_activity:spend_30d"],
                    "gates": {"metric": "roc_auc", "minimum": 0.75},
                }
            ],
        },
        "mlops:serving": {
            "endpoints": [
                {
                    "name": "predict",
                    "model": model,
                    "replicas": {"min": 2, "max": 6} if prod else {"min": 1, "max": 2},
                }
            ],
        },
        "mlops:monitoring": {"alertEmails": [alert_email]},
    }


_OPTIONS = {
    "mlops:team": "the team name",
    "aws:region": "--region",
    "mlops:cluster": "--platform",
    "mlops:monitoring": "--alert-email",
    "mlops:keyAdministrators": "--key-admin",
}
"""Config keys new-team fills from its arguments; everything else it writes is fixed."""


def _as_options(error: ConfigError) -> str:
    """The problems as the arguments that caused them: no file was written to blame."""
    problems: dict[str, str] = {}
    for issue in error.issues:
        option = _OPTIONS.get(re.split(r"[.\[]", issue.path, maxsplit=1)[0], issue.path)
        problems.setdefault(option, f"{option}: {issue.problem}")
    # A bad team name also breaks the names made from it; the name is the one thing to fix.
    shown = [problems["the team name"]] if "the team name" in problems else problems.values()
    return "\n".join(shown) + "; nothing was written"


def undeployed_image(team: str, environment: Environment, region: str) -> str:
    """A digest reference to the stack's ECR repository that names no image yet (all zeros)."""
    return (
        f"<account>.dkr.ecr.{region}.amazonaws.com/{team}-{environment}/runtime@sha256:{'0' * 64}"
    )


def write_team(
    team: str,
    environments: Sequence[Environment],
    *,
    stacks_dir: Path,
    region: str,
    platform: str,
    alert_email: str,
    key_administrators: Sequence[str] = (),
) -> list[Path]:
    """Validate every file first, refuse to overwrite, then write them all (or none)."""
    documents: dict[Path, str] = {}
    for environment in dict.fromkeys(environments):
        file = stacks_dir / f"Pulumi.{team}-{environment}.yaml"
        config = team_config(
            team,
            environment,
            region=region,
            platform=platform,
            alert_email=alert_email,
            key_administrators=key_administrators,
        )
        try:
            parse_stack_config(config, file=file, stack=f"{team}-{environment}")
        except ConfigError as error:
            # Prod's image is pushed once the stack exists; until then validate refuses it.
            placeholder = undeployed_image(team, environment, region)
            left = [i for i in error.issues if (i.path, i.value) != ("mlops:image", placeholder)]
            if left:
                raise ScaffoldError(_as_options(ConfigError(left))) from None
        header = f"# {team} ({environment}): written by `mlops new-team`; edit freely, then `mlops validate`.\n"
        documents[file] = header + yaml.safe_dump({"config": config}, sort_keys=False, width=100)
    existing = [str(f) for f in documents if f.exists()]
    if existing:
        raise ScaffoldError(f"refusing to overwrite {', '.join(existing)}; nothing was written")
    if not stacks_dir.is_dir():
        raise ScaffoldError(f"{stacks_dir} is not a folder; nothing was written")
    written: list[Path] = []
    try:
        for file, text in documents.items():
            _write_new(file, text)
            written.append(file)
    except OSError as error:
        for file in written:
            file.unlink(missing_ok=True)
        raise ScaffoldError(
            f"could not write {error.filename}: {error.strerror}; nothing was written"
        ) from None
    return written


def platform_warnings(
    platform: str, environments: Sequence[Environment], *, region: str, platform_stacks: Path
) -> list[str]:
    """What is wrong with the platform stacks the new files reference, when they are this
    repository's (`<org>/mlops-platform/<stack>`): a stack that does not exist yet, or one in
    another region (a team stack runs in its cluster's region). Warnings: the files are still
    worth writing, the platform stack may come next."""
    warnings = []
    for environment in dict.fromkeys(environments):
        reference = platform.format(env=environment)
        _org, project, stack = reference.split("/")  # validated: <org>/<project>/<stack>
        if project != PLATFORM_PROJECT:
            continue  # another project's stack: nothing here to check it against
        file = platform_stacks / f"Pulumi.{stack}.yaml"
        if not file.is_file():
            warnings.append(
                f"{reference}: no platform stack {file.name} in {platform_stacks}; create it "
                f"(region {region}) before `pulumi up`, or pass --platform"
            )
            continue
        platform_region = (
            (yaml.safe_load(file.read_text()) or {}).get("config", {}).get("aws:region")
        )
        if platform_region != region:
            warnings.append(
                f"{reference}: that cluster is in {platform_region}, the new stacks in {region}; "
                f"a team stack runs in its cluster's region: pass --platform with a platform "
                f"stack of {region}, or --region {platform_region}"
            )
    return warnings


def _write_new(file: Path, text: str) -> None:
    # Write beside the target, then link it in: never a half-written file, never an overwrite.
    fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.link(temporary, file)
    finally:
        os.unlink(temporary)
