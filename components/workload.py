"""How every runtime container runs: non-root, read-only root, no capabilities, bounded, env from
the contract. Components build pods from these pieces instead of repeating them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config.resources import ContainerResources
from components.team import DataPlane, Team
from runtime import metrics
from runtime.settings import env_var, render_env

RUNTIME_UID = 10001
"""The runtime image's non-root user (and group)."""
WORK_DIR = "/var/lib/mlops"
"""The only writable path of a runtime container (an emptyDir); MLOPS_HOME points here."""
GPU_RESOURCE = "nvidia.com/gpu"


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUNTIME_UID,
        run_as_group=RUNTIME_UID,
        fs_group=RUNTIME_UID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUNTIME_UID,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def resources(spec: ContainerResources) -> k8s.core.v1.ResourceRequirementsArgs:
    requests: dict[str, str] = {"cpu": spec.cpu, "memory": spec.memory}
    limits: dict[str, str] = {
        "cpu": spec.cpu_limit or naming.cpu_limit(spec.cpu),
        "memory": spec.memory,
    }
    if spec.gpu:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpu)
    return k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits)


def team_settings(team: Team) -> dict[str, Any]:
    """Runtime Settings every process of the team gets: who it runs for, where, metrics to CloudWatch."""
    return {
        "team": team.name,
        "environment": str(team.environment),
        "aws_region": team.region,
        "metrics_sink": "cloudwatch",
        "metrics_namespace": metrics.namespace(team.name),
        "code_version": team.image,
    }


def job_name_env(field: str) -> k8s.core.v1.EnvVarArgs:
    """The Settings ``field`` set to the name of the pod's Job (the same for every index and
    retry of one run), from the label Kubernetes puts on a Job's pods."""
    return k8s.core.v1.EnvVarArgs(
        name=env_var(field),
        value_from=k8s.core.v1.EnvVarSourceArgs(
            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                field_path="metadata.labels['batch.kubernetes.io/job-name']"
            )
        ),
    )


def env(**settings: Any) -> list[k8s.core.v1.EnvVarArgs]:
    """Container env for the given runtime Settings fields (the contract renders the names)."""
    rendered = render_env(home=WORK_DIR, **settings)
    return [
        k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in sorted(rendered.items())
    ]


def runtime_env(data_plane: DataPlane, team: Team, **fields: Any) -> list[k8s.core.v1.EnvVarArgs]:
    """Container env from the contract: the data plane's settings, the team's, then ``fields``."""
    return env(**{**data_plane.settings, **team_settings(team), **fields})


def scratch_volume() -> tuple[k8s.core.v1.VolumeArgs, k8s.core.v1.VolumeMountArgs]:
    """The writable work folder (and /tmp) of a read-only container."""
    return (
        k8s.core.v1.VolumeArgs(
            name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="2Gi")
        ),
        k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK_DIR),
    )


def runtime_container(
    name: str,
    *,
    image: pulumi.Input[str],
    args: Sequence[pulumi.Input[str]],
    env_vars: Sequence[k8s.core.v1.EnvVarArgs],
    spec: ContainerResources,
    extra_mounts: Sequence[k8s.core.v1.VolumeMountArgs] = (),
    **fields: Any,
) -> k8s.core.v1.ContainerArgs:
    """A container of the runtime image running `mlops-runtime <args>` under the house rules."""
    _, work = scratch_volume()
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        args=list(args),
        env=[*env_vars, k8s.core.v1.EnvVarArgs(name="TMPDIR", value=f"{WORK_DIR}/tmp")],
        resources=resources(spec),
        security_context=container_security_context(),
        volume_mounts=[work, *extra_mounts],
        **fields,
    )


def pod_spec(
    containers: Sequence[k8s.core.v1.ContainerArgs],
    *,
    service_account: pulumi.Input[str],
    volumes: Sequence[k8s.core.v1.VolumeArgs] = (),
    **fields: Any,
) -> k8s.core.v1.PodSpecArgs:
    scratch, _ = scratch_volume()
    return k8s.core.v1.PodSpecArgs(
        containers=list(containers),
        service_account_name=service_account,
        # The runtime never calls the Kubernetes API (tests/components/test_service_accounts.py).
        automount_service_account_token=False,
        security_context=pod_security_context(),
        volumes=[scratch, *volumes],
        **fields,
    )


def labels(team_labels: Mapping[str, str], component: str, name: str) -> dict[str, str]:
    return {**team_labels, "app.kubernetes.io/component": component, "app.kubernetes.io/name": name}


def name_of(
    obj: k8s.core.v1.ServiceAccount
    | k8s.core.v1.Service
    | k8s.apps.v1.Deployment
    | k8s.batch.v1.CronJob,
) -> pulumi.Output[str]:
    """A Kubernetes object's name, as an output (whoever uses it waits for the object)."""
    return obj.metadata.apply(lambda m: str(m.name))


JOB_HISTORY = 3
"""Finished Jobs kept per CronJob (each kind), for their logs."""
FINISHED_JOB_TTL = 86_400
"""Seconds a finished Job (and its pods' logs) stays before the cluster removes it."""
CRONJOB_STARTING_DEADLINE = 3600
"""A run missed by more than this (controller down, Forbid overlap) is skipped, not run late."""
SPOT_RECLAIM_IS_NOT_A_FAILURE = k8s.batch.v1.PodFailurePolicyArgs(
    rules=[
        k8s.batch.v1.PodFailurePolicyRuleArgs(
            action="Ignore",
            on_pod_conditions=[
                k8s.batch.v1.PodFailurePolicyOnPodConditionsPatternArgs(
                    type="DisruptionTarget", status="True"
                )
            ],
        )
    ]
)
"""A pod evicted by a node's disruption (a reclaimed spot node) costs the Job no retry."""


def cron_job(
    name: str,
    *,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    labels: Mapping[str, str],
    schedule: str,
    pod: k8s.core.v1.PodSpecArgs,
    retries: int,
    deadline_seconds: int,
    starting_deadline_seconds: int,
    opts: pulumi.ResourceOptions,
    pod_failure_policy: k8s.batch.v1.PodFailurePolicyArgs | None = None,
    completions: int = 1,
    parallelism: int | None = None,
) -> k8s.batch.v1.CronJob:
    """A CronJob under the house rules: UTC, one run at a time, bounded in retries and time.
    Above one completion its Job is Indexed: each pod gets its JOB_COMPLETION_INDEX, and
    ``retries`` count per index (a failing share is retried alone, the others keep theirs)."""
    indexed = completions > 1
    return k8s.batch.v1.CronJob(
        name,
        metadata=metadata,
        spec=k8s.batch.v1.CronJobSpecArgs(
            schedule=schedule,
            time_zone="Etc/UTC",
            concurrency_policy="Forbid",
            starting_deadline_seconds=starting_deadline_seconds,
            successful_jobs_history_limit=JOB_HISTORY,
            failed_jobs_history_limit=JOB_HISTORY,
            job_template=k8s.batch.v1.JobTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(labels)),
                spec=k8s.batch.v1.JobSpecArgs(
                    backoff_limit=None if indexed else retries,
                    completion_mode="Indexed" if indexed else None,
                    completions=completions if indexed else None,
                    parallelism=(parallelism or completions) if indexed else None,
                    backoff_limit_per_index=retries if indexed else None,
                    active_deadline_seconds=deadline_seconds,
                    ttl_seconds_after_finished=FINISHED_JOB_TTL,
                    pod_failure_policy=pod_failure_policy,
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(labels)), spec=pod
                    ),
                ),
            ),
        ),
        opts=opts,
    )
