"""`mlops rehearse STACK`: the stack's planned Kubernetes workloads, played on this machine.

The manifests come from the mock-engine plan (what `pulumi up` would apply). Podman plays the
serving Deployment(s) and the MLflow server with `podman kube play`; the training and
materialization CronJobs run once as pods from their job templates. A local moto server stands
in for AWS (the plan's buckets, tables and topic created in it) and the local PostgreSQL for
RDS. What must change for one host is changed in `translate.py`, in plain functions (unit-tested
without podman), and listed in SUBSTITUTIONS; everything else is exactly what the plan rendered.

`cloud.py` makes the stand-ins (moto, the database, the fake keys), `synthetic.py` the offline
sources, `podman.py` runs podman, `run.py` the rehearsal and its teardown, `state.py` records
what is up.
"""

from tooling.rehearse.cloud import (
    cloud_resources,
    create_cloud,
    database_name,
    drop_database,
    fresh_database,
    start_moto,
    write_credentials,
)
from tooling.rehearse.errors import (
    RehearsalError,
)
from tooling.rehearse.net import (
    free_port,
    http_status,
    port_in_use,
    wait_for,
)
from tooling.rehearse.podman import (
    CONTAINERS_CONF,
    TOOLS,
    Podman,
    ensure_tools,
)
from tooling.rehearse.run import (
    DEFAULT_ADMIN_DATABASE,
    Rehearsal,
    down,
)
from tooling.rehearse.state import (
    STATE_FILE,
    STATE_FOLDER,
    PlayedPod,
    State,
    iter_rows,
    state_dir,
)
from tooling.rehearse.synthetic import (
    SYNTHETIC_DAYS,
    SYNTHETIC_ENTITIES,
    SYNTHETIC_LABELS,
    SYNTHETIC_SEED,
    synthetic_sources,
    write_sources,
)
from tooling.rehearse.translate import (
    CREDENTIALS_MOUNT,
    CREDENTIALS_VOLUME,
    DROPPED_CONTAINER_FIELDS,
    DROPPED_POD_FIELDS,
    GPU,
    MAX_RESTARTS,
    MODEL_REGISTRY_COMPONENT,
    SERVING_COMPONENT,
    SERVING_PORT,
    SIDECAR,
    SUBSTITUTIONS,
    TRACKING_PORT,
    TRAINING_COMPONENT,
    StandIns,
    Workloads,
    container_names,
    job_pod,
    job_template,
    pod_name,
    rehearsal_deployment,
    rehearsal_pod_spec,
    substituted_env,
    workloads,
)

__all__ = [
    "CONTAINERS_CONF",
    "CREDENTIALS_MOUNT",
    "CREDENTIALS_VOLUME",
    "DEFAULT_ADMIN_DATABASE",
    "DROPPED_CONTAINER_FIELDS",
    "DROPPED_POD_FIELDS",
    "GPU",
    "MAX_RESTARTS",
    "MODEL_REGISTRY_COMPONENT",
    "SERVING_COMPONENT",
    "SERVING_PORT",
    "SIDECAR",
    "STATE_FILE",
    "STATE_FOLDER",
    "SUBSTITUTIONS",
    "SYNTHETIC_DAYS",
    "SYNTHETIC_ENTITIES",
    "SYNTHETIC_LABELS",
    "SYNTHETIC_SEED",
    "TOOLS",
    "TRACKING_PORT",
    "TRAINING_COMPONENT",
    "PlayedPod",
    "Podman",
    "Rehearsal",
    "RehearsalError",
    "StandIns",
    "State",
    "Workloads",
    "cloud_resources",
    "container_names",
    "create_cloud",
    "database_name",
    "down",
    "drop_database",
    "ensure_tools",
    "free_port",
    "fresh_database",
    "http_status",
    "iter_rows",
    "job_pod",
    "job_template",
    "pod_name",
    "port_in_use",
    "rehearsal_deployment",
    "rehearsal_pod_spec",
    "start_moto",
    "state_dir",
    "substituted_env",
    "synthetic_sources",
    "wait_for",
    "workloads",
    "write_credentials",
    "write_sources",
]
