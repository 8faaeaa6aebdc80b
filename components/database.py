"""How a pod logs in to the registry database (MLflow's, and Feast's SQL registry if chosen).

The password never is in config, state or a manifest: RDS generates the master password and
keeps it in Secrets Manager (`manage_master_user_password`). A native sidecar of the runtime image
(`credentials_sidecar`) reads that secret through the pod's IRSA role and writes a libpq password
file into a memory-backed volume; the MLflow (or Feast) container points `PGPASSFILE` at it and
connects with a URI that names only host, database and user. The sidecar rewrites the file every
few minutes, so RDS's scheduled rotation of the secret needs no restart. Chosen over the Secrets
Store CSI driver because it needs no cluster add-on and no custom resource, and the runtime image
already ships boto3.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import workload
from components.config.resources import ContainerResources
from components.team import DatabaseAccess

CREDENTIALS_DIR = "/var/run/mlops-db"
PGPASS_FILE = f"{CREDENTIALS_DIR}/pgpass"
CREDENTIALS_REFRESH_SECONDS = 300
CREDENTIALS_RESOURCES = ContainerResources(cpu="10m", memory="64Mi", cpu_limit="100m")


# Reads the RDS-managed secret and keeps a libpq password file up to date (0 = write once).
CREDENTIALS_SCRIPT = r"""
import json, os, time
import boto3

def escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")

client = boto3.client("secretsmanager")
path = os.environ["PGPASSFILE"]
while True:
    secret = json.loads(client.get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])["SecretString"])
    line = ":".join([os.environ["DB_HOST"], os.environ["DB_PORT"], "*", escape(secret["username"]), escape(secret["password"])])
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
    """A native sidecar (init container, restartPolicy Always) that keeps PGPASSFILE current.

    The pod's main containers start once the file exists (startup probe), so they never race it.
    """
    return workload.runtime_container(
        "db-credentials",
        image=image,
        args=["-c", CREDENTIALS_SCRIPT],
        command=["python"],
        env_vars=[
            *credentials_env(),
            k8s.core.v1.EnvVarArgs(name="DB_SECRET_ARN", value=access.secret_arn),
            k8s.core.v1.EnvVarArgs(name="DB_HOST", value=access.host),
            k8s.core.v1.EnvVarArgs(name="DB_PORT", value=access.port.apply(str)),
            k8s.core.v1.EnvVarArgs(name="REFRESH_SECONDS", value=str(CREDENTIALS_REFRESH_SECONDS)),
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
    )


def login_secret(access: DatabaseAccess | None) -> dict[str, pulumi.Input[str] | None]:
    """The login secret's ARN and key of ``access`` as the policy builders' keyword arguments."""
    return {
        "feast_registry_secret_arn": access.secret_arn if access else None,
        "feast_registry_secret_kms_key_arn": access.secret_kms_key_arn if access else None,
    }
