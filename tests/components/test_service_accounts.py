"""No Kubernetes API token where the Kubernetes API is not called: nowhere in a team stack.

IRSA does not need one: the EKS pod identity webhook mounts its own projected token (audience
sts.amazonaws.com) whatever `automountServiceAccountToken` says.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from tests.conftest import planned
from tooling.manifests import manifests
from tooling.netpol import POD_TEMPLATE_PATHS

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
KUBERNETES_API_TRACES = (
    "KUBERNETES_SERVICE_HOST",
    "/var/run/secrets/kubernetes.io",
    "load_incluster_config",
)


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get(obj["kind"])
        if path is None:
            continue
        template: Any = obj
        for part in path:
            template = template[part]
        found.append((f"{obj['kind']}/{obj['metadata']['name']}", template["spec"]))
    return found


def test_no_service_account_or_pod_mounts_an_api_token(example_stack: str) -> None:
    objects = manifests(planned(example_stack))
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    pods = pod_specs(objects)
    assert accounts and pods
    assert [
        a["metadata"]["name"]
        for a in accounts
        if a.get("automountServiceAccountToken") is not False
    ] == []
    assert [
        name for name, spec in pods if spec.get("automountServiceAccountToken") is not False
    ] == []
    # Nothing in a team stack grants API rights a token could use.
    assert not [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]


def test_the_runtime_never_calls_the_kubernetes_api() -> None:
    """No Kubernetes client imported, no in-cluster config or service account token read."""
    sources = sorted(RUNTIME.rglob("*.py"))
    assert sources
    for source in sources:
        text = source.read_text()
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "", None)]
            )
        }
        assert "kubernetes" not in imported, source
        assert not [trace for trace in KUBERNETES_API_TRACES if trace in text], source
