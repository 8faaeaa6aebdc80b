"""The IaC <-> runtime contract: everything a runtime process needs, read from `MLOPS_*` env.

Components render pod env from this model (``env_var``), never by typing a variable name.
Every field has an embedded default, so a runtime process with no env at all runs on one
machine: MLflow on SQLite + a local artifact folder, Feast local provider, metrics to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.spec import DatabaseRoleSpec, EndpointSpec, FeatureStoreSpec, PipelineSpec

ENV_PREFIX = "MLOPS_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    team: str = "demo"
    """Team that owns this process (used in names and metric dimensions)."""
    environment: str = "dev"
    home: Path = Path(".mlops")
    """Local working folder: embedded databases, artifacts, Feast repo, spool, reports."""

    # AWS
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    """Custom AWS endpoint (a local emulator); None = the real AWS endpoints."""

    # Model registry (MLflow)
    tracking_uri: str | None = None
    """MLflow tracking/registry URI; None = SQLite in `home`."""
    artifact_uri: str | None = None
    """Where new experiments store artifacts (`s3://bucket/prefix`); None = a folder in `home`."""

    # Feature store (Feast)
    feature_store: FeatureStoreSpec = FeatureStoreSpec()
    """Entities and feature views (JSON in env)."""
    offline_store_uri: str | None = None
    """Root of offline sources (`s3://bucket/prefix`); None = a folder in `home`."""
    online_store: Literal["sqlite", "dynamodb"] = "sqlite"
    feast_registry_uri: str | None = None
    """Feast registry: `s3://...`, `postgresql://...`, or None = a file in `home`."""

    # Registry database bootstrap (the one Job that may read the master secret)
    database_admin_uri: str | None = None
    """libpq URI of the admin login (host, port, database; no password), for
    `mlops-runtime database-bootstrap`."""
    database_master_secret_arn: str | None = None
    """The RDS-managed master secret (JSON username, password); None: the URI logs in as is."""
    database_roles: list[DatabaseRoleSpec] = []
    """The login roles to make, each with the database it owns (JSON in env)."""
    database_iam_auth: bool = True
    """The roles log in with RDS IAM tokens only (members of `rds_iam`)."""

    # Training
    pipelines: list[PipelineSpec] = []
    """Training pipelines of the team (JSON in env)."""

    # Serving
    endpoint: EndpointSpec | None = None
    """The endpoint this process serves (JSON in env)."""
    serve_alias: Literal["champion", "challenger"] | None = None
    """Serve this one registry alias, as the variant of that name (a SageMaker production or
    shadow variant: SageMaker splits the traffic); `challenger` serves the champion, as the
    champion, while no challenger exists. None = the endpoint's champion, and its challenger
    for a canary or shadow, split by this process."""
    port: int = Field(default=8080, ge=1, le=65535)
    max_request_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)
    """Largest request body a serving process accepts (413 above it); SageMaker's real-time
    limit, 6 MiB, by default."""
    serve_workers: int = Field(default=1, ge=1, le=64)
    """Serving processes sharing the port, each with its own copy of the model: one per CPU
    the pod requests (a prediction is mostly Python, so a second core serves through a second
    process, not threads or model threads). Components derive it from the endpoint's CPU
    request."""
    shutdown_drain_seconds: int = Field(default=40, ge=1, le=600)
    """After SIGTERM, how long serving lets in-flight requests finish before it closes (then it
    flushes the prediction log and metrics): inside the platform's grace period with room for
    the flush (a Kubernetes pod: 60 s minus its preStop; SageMaker: SIGKILL 30 s after SIGTERM)."""
    prediction_log_uri: str | None = None
    """Where the prediction log goes (`s3://bucket/prefix`); None = a folder in `home`."""
    prediction_log_flush_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often serving writes its queued predictions to the log (one object per flush)."""
    batch_input: str | None = None
    """Entity list a batch endpoint scores: parquet file or folder, relative to the offline store
    (or an absolute `s3://` / local path)."""
    batch_output_uri: str | None = None
    """Prefix a batch endpoint writes predictions under (`s3://bucket/prefix/`); None = `home`."""
    materialize_shards: int = Field(default=1, ge=1)
    """Indexes of the materialization's Indexed Job: the online views go in this many shares."""
    batch_shards: int = Field(default=1, ge=1)
    """Indexes of the batch endpoint's Indexed Job: the list is scored in this many shares."""
    batch_run: str | None = None
    """Name of the scoring run, the same for each index and retry (the Job's name): its output
    folder. None = the time the run started."""

    # Continuous training
    events_uri: str | None = None
    """Where continuous-training events go (`s3://bucket/prefix`); None = a folder in `home`."""

    # Monitoring
    metrics_sink: Literal["file", "cloudwatch", "none"] = "file"
    metrics_namespace: str = "MLOps/demo"
    """CloudWatch namespace the team's metrics live in (IAM allows only this one)."""
    alert_topic_arn: str | None = None
    """SNS topic for notifications (e.g. an automatic rollback)."""

    # Provenance
    code_version: str | None = None
    """Version of the code that runs (image tag or git sha); None = the installed package version."""
    training_reference_rows: int = Field(default=2000, ge=10)
    """Rows of training features + predictions logged with each model for drift monitoring."""


def library_env(settings: Settings) -> dict[str, str]:
    """Env vars the third-party libraries read, derived from ``settings`` (set by the runtime itself).

    Only ``MLOPS_*`` variables cross the IaC <-> runtime boundary; MLflow, Feast and boto3 learn
    the emulator endpoint and region from these.
    """
    env = {
        "AWS_DEFAULT_REGION": settings.aws_region,
        # Models that run code when loaded: only for an endpoint that trusts them (the runtime
        # loads skops models itself, runtime.model_trust; MLflow's gate stays shut for the rest).
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": (
            "true" if settings.endpoint and settings.endpoint.trust_model_code else "false"
        ),
        # Jobs inside the team's VPC have no business calling home.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "FEAST_USAGE": "False",
    }
    if settings.aws_endpoint_url:
        env |= {
            "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": settings.aws_endpoint_url,
            "FEAST_S3_ENDPOINT_URL": settings.aws_endpoint_url,
        }
    return env


def env_var(field: str) -> str:
    """The environment variable that carries ``field`` (a Settings attribute name)."""
    if field not in Settings.model_fields:
        raise KeyError(f"Settings has no field {field!r}")
    return f"{ENV_PREFIX}{field.upper()}"


def render_env(**values: Any) -> dict[str, Any]:
    """Env var name -> value for the given Settings fields; values may be pulumi Outputs.

    Structured values (spec models, lists) are JSON-encoded with their YAML (camelCase) keys.
    """
    rendered: dict[str, Any] = {}
    for field, value in values.items():
        if value is None:
            continue
        rendered[env_var(field)] = _encode(value)
    return rendered


def _encode(value: Any) -> Any:
    import json

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True, exclude_defaults=True)
    if isinstance(value, list | tuple) and all(isinstance(v, BaseModel) for v in value):
        return json.dumps(
            [v.model_dump(mode="json", by_alias=True, exclude_defaults=True) for v in value]
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Path):
        return str(value)
    return value
