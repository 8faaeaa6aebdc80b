"""How a pod logs in to the registry database (MLflow's, and Feast's SQL registry if chosen).

Least privilege (#14): the RDS-managed master secret is read by one pod only, the database
bootstrap Job (`components/registry.py`), which makes a login role per purpose, each owning its
own database (`runtime/database_roles.py`). Every other pod logs in as its purpose's role with
RDS IAM authentication: no password exists for these roles. A native sidecar of the runtime image
(`credentials_sidecar`) signs an IAM token (`rds.generate_db_auth_token`, a SigV4 presign with the
pod's IRSA credentials, no API call) and writes it as a libpq password file into a memory-backed
volume; the MLflow (or Feast) container points `PGPASSFILE` at it and connects with a URI that
names only host, database and role. Tokens live 15 minutes and libpq reads the file at every new
connection, so the sidecar rewrites it every 5; an open connection outlives its token. The
pod's IAM role carries `rds-db:connect` on exactly `dbuser:<DbiResourceId>/<role>`.

IAM authentication over a per-role password secret: nothing to generate, store, rotate or
leak; the grant is one IAM statement the policy pack can read; and RDS refuses a password for a
member of `rds_iam`. Its limits fit here: RDS advises it for fewer than ~200 new connections a
second (MLflow and Feast keep pools), and it requires TLS, which the parameter group forces.
Chosen over the Secrets Store CSI driver because it needs no cluster add-on and no custom
resource, and the runtime image already ships boto3.

Pods that log in wear `DATABASE_CLIENT_LABEL`: the NetworkPolicy `database` and the
SecurityGroupPolicy that gives them the database client security group select that label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workload
from components.config.resources import ContainerResources
from components.team import DatabaseAccess, Team
from runtime.spec import DatabaseRoleSpec

CREDENTIALS_DIR = "/var/run/mlops-db"
PGPASS_FILE = f"{CREDENTIALS_DIR}/pgpass"
CREDENTIALS_RESOURCES = ContainerResources(cpu="10m", memory="64Mi", cpu_limit="100m")


DATABASE_CLIENT_LABEL = {"mlops.dev/database-client": "true"}
"""On every pod that logs in to the registry database (and on no other)."""
TOKEN_REFRESH_SECONDS = 300
"""An RDS IAM token is valid for 15 minutes: write a fresh one every 5."""

# Signs an RDS IAM token for the pod's role and keeps a libpq password file up to date
# (REFRESH_SECONDS 0 = write once).
CREDENTIALS_SCRIPT = r"""
import os, time
import boto3

def escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")

client = boto3.client("rds", region_name=os.environ["DB_REGION"])
path = os.environ["PGPASSFILE"]
host, port, user = os.environ["DB_HOST"], os.environ["DB_PORT"], os.environ["DB_USER"]
while True:
    token = client.generate_db_auth_token(DBHostname=host, Port=int(port), DBUsername=user)
    line = ":".join([host, port, "*", escape(user), escape(token)])
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(line + "\n")
    os.replace(path + ".tmp", path)
    refresh = int(os.environ.get("REFRESH_SECONDS", "0"))
    if refresh <= 0:
        break
    time.sleep(refresh)
"""


def credentials_volume() -> k8s.core.v1.VolumeArgs:
    """Memory-backed: the password file never touches a node's disk."""
    return k8s.core.v1.VolumeArgs(
        name="db-credentials",
        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi"),
    )


def credentials_mount(read_only: bool = True) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(
        name="db-credentials", mount_path=CREDENTIALS_DIR, read_only=read_only
    )


def credentials_env() -> list[k8s.core.v1.EnvVarArgs]:
    """What a container that connects to the database needs to find the password file."""
    return [k8s.core.v1.EnvVarArgs(name="PGPASSFILE", value=PGPASS_FILE)]


def credentials_sidecar(
    access: DatabaseAccess, image: pulumi.Input[str]
) -> k8s.core.v1.ContainerArgs:
    """A native sidecar (init container, restartPolicy Always) that keeps PGPASSFILE's token fresh.

    The pod's main containers start once the file exists (startup probe), so they never race it.
    """
    return workload.runtime_container(
        "db-credentials",
        image=image,
        args=["-c", CREDENTIALS_SCRIPT],
        command=["python"],
        env_vars=[
            *credentials_env(),
            k8s.core.v1.EnvVarArgs(name="DB_HOST", value=access.host),
            k8s.core.v1.EnvVarArgs(name="DB_PORT", value=access.port.apply(str)),
            k8s.core.v1.EnvVarArgs(name="DB_USER", value=access.username),
            k8s.core.v1.EnvVarArgs(name="DB_REGION", value=access.region),
            k8s.core.v1.EnvVarArgs(name="REFRESH_SECONDS", value=str(TOKEN_REFRESH_SECONDS)),
        ],
        spec=CREDENTIALS_RESOURCES,
        extra_mounts=[credentials_mount(read_only=False)],
        restart_policy="Always",
        startup_probe=k8s.core.v1.ProbeArgs(
            exec_=k8s.core.v1.ExecActionArgs(command=["test", "-s", PGPASS_FILE]),
            period_seconds=2,
            failure_threshold=60,
        ),
    )


@dataclass(frozen=True)
class DatabaseLogin:
    """What a pod needs to log in to the registry database; empty without database access.

    Every pod that opens a SQL Feast registry (materialize, train, serve, batch-predict) takes
    these pieces from `database_login`, and so does the MLflow server: they cannot drift apart.
    """

    env: tuple[k8s.core.v1.EnvVarArgs, ...] = ()
    """For the container that connects: where the password file is (PGPASSFILE)."""
    mounts: tuple[k8s.core.v1.VolumeMountArgs, ...] = ()
    """For the container that connects: the password file's folder, read-only."""
    volumes: tuple[k8s.core.v1.VolumeArgs, ...] = ()
    sidecar: k8s.core.v1.ContainerArgs | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """For the pod template: `DATABASE_CLIENT_LABEL` (its network and security group policies)."""

    @property
    def init_containers(self) -> list[k8s.core.v1.ContainerArgs] | None:
        """For `pod_spec(init_containers=...)`: the sidecar, or None (no field at all)."""
        return [self.sidecar] if self.sidecar is not None else None


def database_login(access: DatabaseAccess | None, image: pulumi.Input[str]) -> DatabaseLogin:
    """The env, mount, memory-backed volume and credentials sidecar of a pod that uses ``access``."""
    if access is None:
        return DatabaseLogin()
    return DatabaseLogin(
        env=tuple(credentials_env()),
        mounts=(credentials_mount(),),
        volumes=(credentials_volume(),),
        sidecar=credentials_sidecar(access, image),
        labels=dict(DATABASE_CLIENT_LABEL),
    )


def login_grant(access: DatabaseAccess | None) -> dict[str, pulumi.Input[str] | None]:
    """The `rds-db:connect` resource of ``access`` as the policy builders' keyword argument."""
    return {"feast_registry_connect_arn": access.connect_arn if access else None}


BOOTSTRAP_NAME = "database-bootstrap"
"""The Job, its service account and its role: the one identity that reads the master secret."""
BOOTSTRAP_RESOURCES = ContainerResources(cpu="50m", memory="256Mi", cpu_limit="500m")
BOOTSTRAP_RETRIES = 6
"""A fresh instance may refuse connections a little while after RDS reports it available."""
BOOTSTRAP_DEADLINE_SECONDS = 900


def bootstrap_job(
    name: str,
    *,
    team: Team,
    namespace: pulumi.Input[str],
    service_account: pulumi.Input[str],
    admin_uri: pulumi.Input[str],
    master_secret_arn: pulumi.Input[str],
    roles: Sequence[DatabaseRoleSpec],
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    """The Job that makes the database's roles (`mlops-runtime database-bootstrap`).

    A Job with its own service account, not an init container of the MLflow pod: IRSA grants an
    IAM role to a service account, i.e. to every container of a pod, so an init container that
    read the master secret would put it within reach of the MLflow server. Pulumi waits for the
    Job to complete (the MLflow server depends on it); changed roles replace it, and it runs again
    (idempotent). No TTL: a Job the cluster deleted would be re-created on the next refresh.
    """
    labels = {
        **workload.labels(team.labels, "model-registry", BOOTSTRAP_NAME),
        **DATABASE_CLIENT_LABEL,
    }
    container = workload.runtime_container(
        "bootstrap",
        image=team.image,
        args=["database-bootstrap"],
        env_vars=workload.env(
            **workload.team_settings(team),
            database_admin_uri=admin_uri,
            database_master_secret_arn=master_secret_arn,
            database_roles=list(roles),
            database_iam_auth=True,
        ),
        spec=BOOTSTRAP_RESOURCES,
    )
    return k8s.batch.v1.Job(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=BOOTSTRAP_NAME, namespace=namespace, labels=labels
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=BOOTSTRAP_RETRIES,
            active_deadline_seconds=BOOTSTRAP_DEADLINE_SECONDS,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                spec=workload.pod_spec(
                    [container], service_account=service_account, restart_policy="Never"
                ),
            ),
        ),
        # A Job's template is immutable: a new one replaces it, under the same name.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
    )
