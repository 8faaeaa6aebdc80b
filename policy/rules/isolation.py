"""Teams on a shared cluster: each namespace closed by default, no API token nobody uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.properties import as_list, dig, known
from policy.rules.rbac import RBAC_BINDING_TYPES
from policy.rules.registry import Resource, stack_rule
from policy.rules.workloads import WORKLOAD_TYPES, pod_spec

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
BOTH_DIRECTIONS = frozenset({"Ingress", "Egress"})


def _selects_every_pod(selector: Any) -> bool:
    return selector is not None and not (
        dig(selector, "matchLabels") or dig(selector, "matchExpressions")
    )


def denies_everything(props: Mapping[str, Any]) -> bool:
    """A NetworkPolicy that selects every pod of its namespace for ingress and egress and
    allows nothing: what every other policy of the namespace then opens a flow in."""
    spec = props.get("spec")
    if not isinstance(spec, Mapping):
        return False
    return (
        _selects_every_pod(spec.get("podSelector"))
        and set(as_list(spec.get("policyTypes"))) >= BOTH_DIRECTIONS
        and not as_list(spec.get("ingress"))
        and not as_list(spec.get("egress"))
    )


@stack_rule(
    "k8s-namespace-default-deny",
    "Every namespace the stack creates denies all ingress and egress by default (a NetworkPolicy "
    "selecting every pod, with no rule); each flow is then opened by a policy of its own.",
)
def k8s_namespace_default_deny(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    closed = {
        dig(r.props, "metadata.namespace")
        for r in resources
        if r.type == NETWORK_POLICY and denies_everything(r.props)
    }
    if any(not known(namespace) for namespace in closed):
        return []  # a policy's namespace is not known yet: judged again at `pulumi up`
    return [
        (
            r.urn,
            f"namespace {name!r} has no default-deny NetworkPolicy: add one with podSelector {{}}, "
            "policyTypes [Ingress, Egress] and no rules, then a policy per flow its pods need",
        )
        for r in resources
        if r.type == NAMESPACE
        and known(name := dig(r.props, "metadata.name"))
        and name not in closed
    ]


def _bound_accounts(resources: Sequence[Resource]) -> set[tuple[Any, Any]]:
    """(namespace, name) of every service account an RBAC binding of the stack names."""
    return {
        (subject.get("namespace"), subject.get("name"))
        for r in resources
        if r.type in RBAC_BINDING_TYPES
        for subject in as_list(r.props.get("subjects"))
        if isinstance(subject, Mapping) and subject.get("kind") == "ServiceAccount"
    }


TOKEN_FIX = (
    "set automountServiceAccountToken: false (no RBAC binding of the stack gives {who} API "
    "rights, so nothing there calls the Kubernetes API; IRSA mounts its own token)"
)


@stack_rule(
    "k8s-no-unused-api-token",
    "Service accounts and pods mount no Kubernetes API token unless an RBAC binding of the "
    "stack gives the account rights to use it.",
)
def k8s_no_unused_api_token(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    bound = _bound_accounts(resources)
    found = []
    token_off = set()
    for r in resources:
        if r.type != SERVICE_ACCOUNT:
            continue
        account = (dig(r.props, "metadata.namespace"), dig(r.props, "metadata.name"))
        if not all(known(part) for part in account):
            continue
        if r.props.get("automountServiceAccountToken") is False:
            token_off.add(account)
        elif account not in bound:
            found.append((r.urn, TOKEN_FIX.format(who=f"service account {account[1]!r}")))
    for r in resources:
        if r.type not in WORKLOAD_TYPES:
            continue
        spec = pod_spec(r.type, r.props)
        automount = spec.get("automountServiceAccountToken")
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        account = (dig(r.props, "metadata.namespace"), name)
        if automount is False or not all(known(part) for part in account) or account in bound:
            continue
        if automount is None and account in token_off:
            continue  # the pod inherits the account's `false`
        found.append((r.urn, TOKEN_FIX.format(who=f"the pods' service account {name!r}")))
    return found
