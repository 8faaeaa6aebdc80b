"""Kubernetes RBAC: no wildcards, no admin bindings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import as_list, dig
from policy.rules.registry import Context, resource_rule

RBAC_ROLE_TYPES = frozenset(
    {
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
    }
)
RBAC_BINDING_TYPES = frozenset(
    {
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    }
)
ADMIN_ROLES = frozenset({"cluster-admin", "admin"})


@resource_rule(
    "k8s-rbac-no-wildcards",
    "RBAC roles name their API groups, resources and verbs: no `*`.",
    *RBAC_ROLE_TYPES,
)
def k8s_rbac_no_wildcards(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, item in enumerate(as_list(props.get("rules"))):
        if not isinstance(item, Mapping):
            continue
        wild = [key for key in ("apiGroups", "resources", "verbs") if "*" in as_list(item.get(key))]
        if wild:
            found.append(f"rules[{i}] allows '*' in {', '.join(wild)}: list what the workload uses")
    return found


@resource_rule(
    "k8s-no-admin-binding",
    "No binding grants cluster-admin or admin (access entries grant people; workloads get roles).",
    *RBAC_BINDING_TYPES,
)
def k8s_no_admin_binding(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    role = dig(props, "roleRef.name")
    if role in ADMIN_ROLES:
        return [f"binds {role!r}: bind a role with the rules the subject needs"]
    return []
