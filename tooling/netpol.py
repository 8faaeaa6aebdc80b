"""Who may talk to whom under a set of NetworkPolicies: a small evaluator of their semantics.

It reads planned manifests (tooling.manifests) and answers `allowed(source, destination, port)`
the way the Kubernetes NetworkPolicy API defines it: a pod is isolated for a direction once a
policy of its namespace selects it for that direction; a connection needs the source's egress
AND the destination's ingress; a peer is a podSelector (the policy's own namespace), a
namespaceSelector, both (pods in those namespaces) or an ipBlock; ports by number, name (the
destination pod's container port) or range (endPort), TCP unless a protocol is given.

One conservative choice: an ipBlock matches pod addresses too. With the VPC CNI pods have VPC
addresses, and the CNI's policy agent matches them against ipBlocks, so a CIDR that covers pod
subnets admits those pods.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}


@dataclass(frozen=True)
class Pod:
    """A pod (or a workload's pod template) at an address."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: str
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    """Named container ports: name -> (number, protocol)."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class External:
    """An address outside the cluster's pods (a load balancer, a database, an AWS API)."""

    name: str
    ip: str

    def __str__(self) -> str:
        return f"{self.name} ({self.ip})"


Peer = Pod | External


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    spec: Mapping[str, Any]

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> Policy:
        metadata = manifest.get("metadata") or {}
        return cls(str(metadata.get("namespace")), str(metadata.get("name")), manifest["spec"])

    def types(self) -> set[str]:
        """policyTypes, defaulted as the API server does: Ingress, plus Egress if it has rules."""
        given = self.spec.get("policyTypes")
        if given:
            return set(given)
        return {"Ingress", "Egress"} if self.spec.get("egress") else {"Ingress"}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector over labels: matchLabels and matchExpressions, ANDed; {} selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


class Cluster:
    """Namespaces (with labels) and NetworkPolicies: enough to decide any connection."""

    def __init__(
        self, policies: Iterable[Policy], namespaces: Mapping[str, Mapping[str, str]]
    ) -> None:
        self.policies = list(policies)
        self.namespaces = {
            name: {**labels, NAMESPACE_NAME_LABEL: name} for name, labels in namespaces.items()
        }

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        return self.namespaces.get(name, {NAMESPACE_NAME_LABEL: name})

    def _peer_matches(self, peer: Mapping[str, Any], policy: Policy, other: Peer) -> bool:
        block = peer.get("ipBlock")
        if block is not None:
            address = ipaddress.ip_address(other.ip)
            if address not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(address in ipaddress.ip_network(c) for c in block.get("except") or [])
        if not isinstance(other, Pod):
            return False  # selectors pick pods only
        pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
        if namespaces is None:
            in_scope = other.namespace == policy.namespace
        else:
            in_scope = selects(namespaces, self.namespace_labels(other.namespace))
        return in_scope and (pods is None or selects(pods, other.labels))

    @staticmethod
    def _port_matches(
        ports: Sequence[Mapping[str, Any]] | None, destination: Peer, port: int, protocol: str
    ) -> bool:
        if not ports:
            return True
        for item in ports:
            if item.get("protocol", "TCP") != protocol:
                continue
            wanted = item.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str) and not wanted.isdigit():
                named = destination.ports.get(wanted) if isinstance(destination, Pod) else None
                if named == (port, protocol):
                    return True
                continue
            low = int(wanted)
            high = int(item.get("endPort") or low)
            if low <= port <= high:
                return True
        return False

    def _direction_allows(
        self, pod: Pod, other: Peer, destination: Peer, port: int, protocol: str, direction: str
    ) -> tuple[bool, list[str]]:
        """(allowed, the policies that allow it) for ``pod``'s side of the connection."""
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        selecting = [
            p
            for p in self.policies
            if p.namespace == pod.namespace
            and direction in p.types()
            and selects(p.spec.get("podSelector"), pod.labels)
        ]
        if not selecting:
            return True, ["(not isolated)"]
        allowing = [
            p.name
            for p in selecting
            for rule in p.spec.get(key) or []
            if (
                not rule.get(peers_key)
                or any(self._peer_matches(peer, p, other) for peer in rule[peers_key])
            )
            and self._port_matches(rule.get("ports"), destination, port, protocol)
        ]
        return bool(allowing), allowing

    def allowed(self, source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
        """Whether ``source`` may open a connection to ``destination`` on ``port``."""
        return self.explain(source, destination, port, protocol)[0]

    def explain(
        self, source: Peer, destination: Peer, port: int, protocol: str = "TCP"
    ) -> tuple[bool, str]:
        """(allowed, why): the policies that allow each side, or the side that denies."""
        why = []
        if isinstance(source, Pod):
            ok, by = self._direction_allows(
                source, destination, destination, port, protocol, "Egress"
            )
            if not ok:
                return False, f"egress of {source} denied"
            why.append(f"egress: {', '.join(sorted(set(by)))}")
        if isinstance(destination, Pod):
            ok, by = self._direction_allows(
                destination, source, destination, port, protocol, "Ingress"
            )
            if not ok:
                return False, f"ingress of {destination} denied"
            why.append(f"ingress: {', '.join(sorted(set(by)))}")
        return True, "; ".join(why)


def _at(manifest: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any] | None:
    value: Any = manifest
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value if isinstance(value, Mapping) else None


def workload_pods(manifests: Iterable[Mapping[str, Any]], addresses: Iterator[str]) -> list[Pod]:
    """One pod per workload manifest (its template's labels and named ports), each at the next
    address of ``addresses``."""
    pods = []
    for manifest in manifests:
        path = POD_TEMPLATE_PATHS.get(str(manifest.get("kind")))
        template = None if path is None else _at(manifest, path)
        if template is None:
            continue
        metadata = manifest.get("metadata") or {}
        spec = template.get("spec") or {}
        ports = {
            port["name"]: (int(port["containerPort"]), port.get("protocol", "TCP"))
            for container in spec.get("containers") or []
            for port in container.get("ports") or []
            if port.get("name")
        }
        pods.append(
            Pod(
                name=f"{manifest['kind']}/{metadata.get('name')}",
                namespace=str(metadata.get("namespace")),
                labels=dict((template.get("metadata") or {}).get("labels") or {}),
                ip=next(addresses),
                ports=ports,
            )
        )
    return pods


def policies_of(manifests: Iterable[Mapping[str, Any]]) -> list[Policy]:
    return [Policy.of(m) for m in manifests if m.get("kind") == "NetworkPolicy"]


def namespaces_of(manifests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        str(m["metadata"]["name"]): dict(m["metadata"].get("labels") or {})
        for m in manifests
        if m.get("kind") == "Namespace"
    }
