"""The NetworkPolicy evaluator against the API's semantics, one rule at a time."""

from __future__ import annotations

from typing import Any

import pytest

from tooling.netpol import Cluster, External, Pod, Policy, selects, workload_pods

WEB = Pod("web", "team", {"app": "web"}, "10.0.0.10", {"http": (8080, "TCP")})
DB = Pod("db", "team", {"app": "db"}, "10.0.0.11")
OUTSIDER = Pod("x", "other", {"app": "web"}, "10.0.1.10")
LB = External("lb", "10.0.200.5")


def cluster(*specs: dict[str, Any], namespace: str = "team") -> Cluster:
    policies = [Policy(namespace, f"p{i}", spec) for i, spec in enumerate(specs)]
    return Cluster(policies, {"team": {"tier": "apps"}, "other": {"tier": "apps"}})


def test_no_policy_allows_everything() -> None:
    assert cluster().allowed(OUTSIDER, WEB, 1234)


def test_a_selecting_policy_isolates_for_its_types_only() -> None:
    deny_in = cluster({"podSelector": {}})  # policyTypes defaults to Ingress
    assert not deny_in.allowed(OUTSIDER, WEB, 8080)
    assert deny_in.allowed(WEB, OUTSIDER, 8080)
    deny_both = cluster({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert not deny_both.allowed(WEB, OUTSIDER, 8080)
    assert not deny_both.allowed(WEB, DB, 5432)


def test_a_connection_needs_both_egress_and_ingress() -> None:
    c = cluster(
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    )
    assert not c.allowed(WEB, DB, 5432)  # web may not send
    c.policies.append(
        Policy("team", "out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})
    )
    assert c.allowed(WEB, DB, 5432)


@pytest.mark.parametrize(
    ("peer", "source", "allowed"),
    [
        pytest.param({"podSelector": {"matchLabels": {"app": "web"}}}, WEB, True, id="pod-here"),
        pytest.param(
            {"podSelector": {"matchLabels": {"app": "web"}}}, OUTSIDER, False, id="pod-elsewhere"
        ),
        pytest.param(
            {"namespaceSelector": {"matchLabels": {"tier": "apps"}}}, OUTSIDER, True, id="ns"
        ),
        pytest.param(
            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}},
            OUTSIDER,
            False,
            id="ns-and-pod",
        ),
        pytest.param({"ipBlock": {"cidr": "10.0.200.0/24"}}, LB, True, id="ip"),
        pytest.param(
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.200.0/24"]}},
            LB,
            False,
            id="except",
        ),
        pytest.param({"ipBlock": {"cidr": "10.0.0.0/16"}}, OUTSIDER, True, id="ip-matches-pods"),
        pytest.param({"podSelector": {}}, LB, False, id="selectors-pick-pods-only"),
    ],
)
def test_peers(peer: dict[str, Any], source: Pod | External, allowed: bool) -> None:
    c = cluster({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [peer]}]})
    assert c.allowed(source, DB, 5432) is allowed


@pytest.mark.parametrize(
    ("ports", "port", "protocol", "allowed"),
    [
        pytest.param([{"port": 8080}], 8080, "TCP", True, id="number"),
        pytest.param([{"port": 8080}], 8080, "UDP", False, id="tcp-by-default"),
        pytest.param([{"port": "http"}], 8080, "TCP", True, id="named"),
        pytest.param([{"port": "http"}], 8081, "TCP", False, id="named-other"),
        pytest.param([{"port": 8000, "endPort": 8100}], 8080, "TCP", True, id="range"),
        pytest.param([{"protocol": "TCP"}], 1, "TCP", True, id="any-port"),
        pytest.param(None, 1, "SCTP", True, id="no-ports"),
    ],
)
def test_ports(ports: list[dict[str, Any]] | None, port: int, protocol: str, allowed: bool) -> None:
    rule: dict[str, Any] = {"from": [{"podSelector": {}}]}
    if ports is not None:
        rule["ports"] = ports
    c = cluster({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [rule]})
    assert c.allowed(DB, WEB, port, protocol) is allowed


@pytest.mark.parametrize(
    ("expression", "matched"),
    [
        pytest.param({"key": "app", "operator": "In", "values": ["web", "db"]}, True, id="in"),
        pytest.param({"key": "app", "operator": "NotIn", "values": ["web"]}, False, id="not-in"),
        pytest.param({"key": "app", "operator": "Exists"}, True, id="exists"),
        pytest.param({"key": "tier", "operator": "DoesNotExist"}, True, id="does-not-exist"),
        pytest.param({"key": "tier", "operator": "In", "values": ["x"]}, False, id="in-missing"),
    ],
)
def test_match_expressions(expression: dict[str, Any], matched: bool) -> None:
    assert selects({"matchExpressions": [expression]}, {"app": "web"}) is matched


def test_explain_names_the_allowing_policies() -> None:
    c = cluster({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    assert c.explain(DB, WEB, 8080) == (True, "egress: (not isolated); ingress: p0")
    assert c.explain(OUTSIDER, WEB, 8080) == (False, "ingress of team/web denied")


def test_workload_pods_read_templates() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
            }
        },
    }
    cronjob = {
        "kind": "CronJob",
        "metadata": {"name": "job", "namespace": "team"},
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}},
    }
    service = {"kind": "Service", "metadata": {"name": "web"}}
    pods = workload_pods([deployment, cronjob, service], iter(["10.0.0.1", "10.0.0.2"]))
    assert pods == [
        Pod("Deployment/web", "team", {"app": "web"}, "10.0.0.1", {"http": (8080, "TCP")}),
        Pod("CronJob/job", "team", {"a": "b"}, "10.0.0.2", {}),
    ]
