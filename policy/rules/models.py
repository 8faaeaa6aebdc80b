"""The model supply chain: one identity writes models, MLflow proxies no upload, and serving
trusting code-running model formats is said out loud."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.iam import IAM_POLICY_TYPES, IAM_ROLE, identity_documents
from policy.rules.properties import as_list, known, policy_document, statements
from policy.rules.registry import Context, Resource, resource_rule, stack_rule
from policy.rules.workloads import WORKLOAD_TYPES, containers, pod_spec

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
ROLE_TAG = "mlops.dev/role"
MODEL_BUCKET_ROLE = "models"
"""The `mlops.dev/role` tag of a model registry's artifact bucket (components/storage.py)."""
ARTIFACT_PREFIX = "artifacts/"
"""Where MLflow keeps model artifacts in that bucket (components/registry.py ARTIFACT_PREFIX)."""
PROBE_KEY = "artifacts/experiment/models/m-0/artifacts/model.pkl"
"""An object a model version consists of: whoever may put it may plant a model."""
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject")
ENDPOINT_ENV = "MLOPS_ENDPOINT"


def _matches(pattern: str, value: str, *, case: bool) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def allows(document: Mapping[str, Any] | None, action: str, resource: str) -> bool:
    """Whether an identity policy's Allow statements grant ``action`` on ``resource`` (Deny and
    conditions ignored: a writer under a condition is still a writer)."""
    for statement in statements(document):
        if statement.get("Effect") != "Allow" or "NotAction" in statement:
            continue
        if any(
            _matches(str(a), action, case=False) for a in as_list(statement.get("Action"))
        ) and any(
            _matches(str(r), resource, case=True) for r in as_list(statement.get("Resource"))
        ):
            return True
    return False


def _identity(r: Resource) -> str:
    if r.type == IAM_ROLE:
        return str(r.props.get("name") or r.urn.rsplit("::", 1)[-1])
    role = r.props.get("role")
    return str(role) if known(role) and role else f"policy {r.urn.rsplit('::', 1)[-1]}"


@stack_rule(
    "model-artifacts-one-writer",
    "At most one identity may write a model registry's artifacts (the training role): any other "
    "writer could plant a model that serving loads.",
)
def model_artifacts_one_writer(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in resources:
        arn = bucket.props.get("arn")
        tags = bucket.props.get("tags") or {}
        if bucket.type not in BUCKET_TYPES or not known(arn) or not isinstance(tags, Mapping):
            continue
        if tags.get(ROLE_TAG) != MODEL_BUCKET_ROLE:
            continue
        writers: dict[str, list[str]] = {}
        for r in resources:
            if r.type not in IAM_POLICY_TYPES and r.type != IAM_ROLE:
                continue
            for _, raw in identity_documents(r.type, r.props):
                document = policy_document(raw)
                if any(allows(document, a, f"{arn}/{PROBE_KEY}") for a in WRITE_ACTIONS):
                    writers.setdefault(_identity(r), []).append(r.urn)
        if len(writers) > 1:
            names = ", ".join(sorted(writers))
            found += [
                (
                    urn,
                    f"{len(writers)} identities may write model artifacts under "
                    f"{arn}/{ARTIFACT_PREFIX} ({names}): only the training role may; scope the "
                    "others to their own prefixes (prediction logs, batch outputs)",
                )
                for urns in writers.values()
                for urn in urns
            ]
    return found


def _mlflow_server(container: Mapping[str, Any]) -> bool:
    words = [str(w) for w in [*as_list(container.get("command")), *as_list(container.get("args"))]]
    return bool(words) and words[0].rsplit("/", 1)[-1] == "mlflow" and "server" in words[1:3]


def _env(container: Mapping[str, Any], name: str) -> Any:
    for item in as_list(container.get("env")):
        if isinstance(item, Mapping) and item.get("name") == name:
            return item.get("value")
    return None


@resource_rule(
    "mlflow-no-artifact-proxy",
    "MLflow tracking servers run with --no-serve-artifacts: no client uploads models through "
    "the server's role; clients read and write S3 with their own.",
    *WORKLOAD_TYPES,
)
def mlflow_no_artifact_proxy(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for label, container in containers(pod_spec(type_, props)):
        if not _mlflow_server(container):
            continue
        args = [str(a) for a in as_list(container.get("args"))]
        off = "--no-serve-artifacts" in args or str(
            _env(container, "MLFLOW_SERVE_ARTIFACTS")
        ).lower() in ("false", "0")
        if "--serve-artifacts" in args or not off:
            found.append(
                f"{label}: `mlflow server` proxies artifact uploads (the default): pass "
                "--no-serve-artifacts, so only identities allowed to write the bucket write models"
            )
    return found


@stack_rule(
    "serving-trusts-model-code",
    "Warns when an endpoint loads model formats that run code when loaded (trustModelCode).",
    advisory=True,
)
def serving_trusts_model_code(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for r in resources:
        if r.type not in WORKLOAD_TYPES:
            continue
        for label, container in containers(pod_spec(r.type, r.props)):
            raw = _env(container, ENDPOINT_ENV)
            try:
                endpoint = json.loads(raw) if isinstance(raw, str) and known(raw) else None
            except ValueError:
                endpoint = None
            if isinstance(endpoint, Mapping) and endpoint.get("trustModelCode") is True:
                found.append(
                    (
                        r.urn,
                        f"{label}: endpoint {endpoint.get('name')!r} loads pickled or custom "
                        "pyfunc models, which run code when loaded: whoever can register a "
                        "version runs code in its pods",
                    )
                )
    return found
