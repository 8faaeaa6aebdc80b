"""What the Kubernetes API server refuses that its OpenAPI schema does not say.

The schema (kubernetes-validate, tests/components/test_kubernetes_schema.py) knows types and
field names; the API server's validation (k8s.io/apimachinery's `validation` package and each
API group's `validation.go`, documented in "Object Names and IDs", "Labels and Selectors" and
"Resource Management for Pods and Containers") also refuses: names that are not DNS labels or
subdomains for their kind, label keys and values, annotations over 256 KiB, quantities that do
not parse, a request above its limit, container names twice in a pod, ports and port names out
of range, env var names, volume mounts of volumes the pod lacks, a CronJob's schedule and a
Deployment selector that does not select its own template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from croniter import croniter

from components.config.base import CRON_DESCRIPTORS
from tooling.preflight.base import UNKNOWN, Finding, Planned

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
QUALIFIED_NAME_MAX = 63
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_VALUE_MAX = 63
ANNOTATIONS_MAX_BYTES = 256 * 1024
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
IANA_SVC_NAME_MAX = 15
ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
CRONJOB_NAME_MAX = 52
"""The controller appends 11 characters to a CronJob's name for its Jobs (63 at most)."""

_LABEL_NAMES = ("Namespace",)
_DNS1035_NAMES = ("Service",)
_PATH_SEGMENT_NAMES = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6"}
_DECIMAL |= {"G": "1e9", "T": "1e12", "P": "1e15", "E": "1e18"}


def kubernetes_findings(resources: Sequence[Planned]) -> Iterator[Finding]:
    for resource in resources:
        if not resource.type.startswith("kubernetes:"):
            continue
        for path, value, message in object_problems(resource.inputs):
            yield Finding(resource.type, resource.name, path, value, message)


def object_problems(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(path, value, what is allowed) for each value of one manifest the API server refuses."""
    kind = str(obj.get("kind", ""))
    metadata = obj.get("metadata") or {}
    yield from _name(kind, metadata)
    yield from _walk_meta(obj, "")
    for path, pod in pod_specs(obj):
        yield from _pod(pod, path)
    spec = obj.get("spec") or {}
    if kind == "CronJob":
        yield from _schedule(spec.get("schedule"))
    if kind == "Service":
        yield from _service_ports(spec)
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        yield from _selector_selects_template(spec)
    if kind == "HorizontalPodAutoscaler":
        yield from _autoscaler(spec)
    if kind == "ResourceQuota":
        yield from _quantities(spec.get("hard"), "spec.hard")
    if kind == "LimitRange":
        for i, limit in enumerate(spec.get("limits") or []):
            for key in ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio"):
                yield from _quantities(limit.get(key), f"spec.limits[{i}].{key}")
    if kind == "PersistentVolumeClaim":
        resources = spec.get("resources") or {}
        for key in ("requests", "limits"):
            yield from _quantities(resources.get(key), f"spec.resources.{key}")


# -- names ----------------------------------------------------------------------------------------


def _name(kind: str, metadata: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    name = metadata.get("name")
    if _known(name):
        problem = name_problem(kind, str(name))
        if problem:
            yield "metadata.name", name, problem
    namespace = metadata.get("namespace")
    if _known(namespace):
        problem = dns1123_label_problem(str(namespace))
        if problem:
            yield "metadata.namespace", namespace, problem


def name_problem(kind: str, name: str) -> str | None:
    """What the API server requires of an object's name, by kind."""
    if kind in _LABEL_NAMES:
        return dns1123_label_problem(name)
    if kind in _DNS1035_NAMES:
        if len(name) > DNS1123_LABEL_MAX or not DNS1035_LABEL.match(name):
            return (
                f"a DNS-1035 label: at most {DNS1123_LABEL_MAX} lower-case letters, digits and "
                "'-', starting with a letter and ending with a letter or digit (a Service name "
                "becomes a DNS name)"
            )
        return None
    if kind in _PATH_SEGMENT_NAMES:
        if name in (".", "..") or "/" in name or "%" in name:
            return "a path segment: not '.' or '..', without '/' or '%'"
        return None
    problem = dns1123_subdomain_problem(name)
    if problem is None and kind == "CronJob" and len(name) > CRONJOB_NAME_MAX:
        problem = (
            f"at most {CRONJOB_NAME_MAX} characters for a CronJob (is {len(name)}): its Jobs are "
            "named after it with 11 more"
        )
    return problem


def dns1123_label_problem(name: str) -> str | None:
    if len(name) <= DNS1123_LABEL_MAX and DNS1123_LABEL.match(name):
        return None
    return (
        f"a DNS-1123 label: at most {DNS1123_LABEL_MAX} lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


def dns1123_subdomain_problem(name: str) -> str | None:
    if len(name) <= DNS1123_SUBDOMAIN_MAX and DNS1123_SUBDOMAIN.match(name):
        return None
    return (
        f"a DNS-1123 subdomain: at most {DNS1123_SUBDOMAIN_MAX} lower-case letters, digits, "
        "'-' and '.', starting and ending with a letter or digit"
    )


# -- labels and annotations -----------------------------------------------------------------------


def label_key_problem(key: str) -> str | None:
    """A qualified name: an optional DNS subdomain prefix and '/', then a name of 63 at most."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns1123_subdomain_problem(prefix)):
        return "a label key whose prefix (before '/') is a DNS-1123 subdomain of 253 at most"
    if len(name) > QUALIFIED_NAME_MAX or not QUALIFIED_NAME.match(name):
        return (
            f"a label key whose name (after any '/') is at most {QUALIFIED_NAME_MAX} letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) <= LABEL_VALUE_MAX and LABEL_VALUE.match(value):
        return None
    return (
        f"a label value: empty or at most {LABEL_VALUE_MAX} letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit"
    )


def _labels(labels: Any, path: str) -> Iterator[tuple[str, Any, str]]:
    if not isinstance(labels, Mapping):
        return
    for key, value in labels.items():
        problem = label_key_problem(str(key))
        if problem:
            yield f"{path}.{key}", key, problem
        if isinstance(value, str) and value not in UNKNOWN:
            problem = label_value_problem(value)
            if problem:
                yield f"{path}.{key}", value, problem


def _walk_meta(node: Any, path: str) -> Iterator[tuple[str, Any, str]]:
    """Every label map (labels, matchLabels, a Service's selector) and annotation map."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk_meta(item, f"{path}[{index}]")
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        flat_selector = key == "selector" and path == "spec" and _flat(value)
        if key in ("labels", "matchLabels", "nodeSelector") or flat_selector:
            yield from _labels(value, where)
        elif key == "annotations" and isinstance(value, Mapping):
            for name in value:
                problem = label_key_problem(str(name))
                if problem:
                    yield f"{where}.{name}", name, problem.replace("label key", "annotation key")
            size = sum(len(str(k)) + len(str(v)) for k, v in value.items())
            if size > ANNOTATIONS_MAX_BYTES:
                yield where, f"{size} bytes", f"at most {ANNOTATIONS_MAX_BYTES} bytes in all"
        else:
            yield from _walk_meta(value, where)


def _flat(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())


# -- pods -----------------------------------------------------------------------------------------


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, pod spec) of the pods an object runs: a Pod's, a workload's template, a CronJob's."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield "spec", spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield "spec.template.spec", ((spec.get("template") or {}).get("spec") or {})
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield "spec.jobTemplate.spec.template.spec", ((job.get("template") or {}).get("spec") or {})


def _pod(pod: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any, str]]:
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    seen: dict[str, str] = {}
    for group in ("initContainers", "containers"):
        for index, container in enumerate(pod.get(group) or []):
            where = f"{path}.{group}[{index}]"
            name = container.get("name")
            if _known(name):
                problem = dns1123_label_problem(str(name))
                if problem:
                    yield f"{where}.name", name, problem
                elif name in seen:
                    yield (
                        f"{where}.name",
                        name,
                        f"unique among the pod's containers ({seen[name]}.name has it too)",
                    )
                seen.setdefault(str(name), where)
            yield from _container(container, where, volumes)


def _container(
    container: Mapping[str, Any], path: str, volumes: set[Any]
) -> Iterator[tuple[str, Any, str]]:
    ports: set[str] = set()
    for index, port in enumerate(container.get("ports") or []):
        where = f"{path}.ports[{index}]"
        for key in ("containerPort", "hostPort"):
            yield from _port_number(port.get(key), f"{where}.{key}")
        name = port.get("name")
        if _known(name):
            problem = port_name_problem(str(name))
            if problem:
                yield f"{where}.name", name, problem
            elif name in ports:
                yield f"{where}.name", name, "unique among the container's ports"
            ports.add(str(name))
    for index, env in enumerate(container.get("env") or []):
        name = env.get("name")
        if _known(name) and not ENV_VAR_NAME.match(str(name)):
            yield (
                f"{path}.env[{index}].name",
                name,
                "an environment variable name every Kubernetes version accepts: letters, digits, "
                "'_', '-' and '.', not starting with a digit",
            )
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    yield from _quantities(requests, f"{path}.resources.requests")
    yield from _quantities(limits, f"{path}.resources.limits")
    for resource, request in requests.items():
        limit = limits.get(resource)
        low, high = quantity_value(request), quantity_value(limit)
        if low is not None and high is not None and low > high:
            yield (
                f"{path}.resources.requests.{resource}",
                request,
                f"at most the limit ({limit})",
            )
        if "/" in str(resource) and limit is not None and low is not None and low != high:
            # An extended resource (a GPU) is not overcommitted: request and limit are equal.
            yield f"{path}.resources.requests.{resource}", request, f"equal to its limit ({limit})"
    for resource, value in {**requests, **limits}.items():
        number = quantity_value(value)
        if "/" in str(resource) and number is not None and number != int(number):
            yield (
                f"{path}.resources.limits.{resource}",
                value,
                "a whole number (an extended resource)",
            )
    for index, mount in enumerate(container.get("volumeMounts") or []):
        name = mount.get("name")
        if _known(name) and name not in volumes:
            listed = ", ".join(sorted(map(str, volumes - {None}))) or "none"
            yield (
                f"{path}.volumeMounts[{index}].name",
                name,
                f"a volume of the pod ({listed})",
            )


def port_name_problem(name: str) -> str | None:
    if (
        len(name) <= IANA_SVC_NAME_MAX
        and IANA_SVC_NAME.match(name)
        and "--" not in name
        and re.search("[a-z]", name)
    ):
        return None
    return (
        f"a port name (IANA service name): at most {IANA_SVC_NAME_MAX} lower-case letters, "
        "digits and '-', with a letter, no '--', not starting or ending with '-'"
    )


def _port_number(value: Any, path: str) -> Iterator[tuple[str, Any, str]]:
    if isinstance(value, int | float) and not isinstance(value, bool) and not 1 <= value <= 65535:
        yield path, value, "a port number from 1 to 65535"


# -- quantities -----------------------------------------------------------------------------------


def quantity_value(value: Any) -> Decimal | None:
    """A Kubernetes quantity (`500m`, `2Gi`, `1e3`, a number) as a number; None if it is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = QUANTITY.match(str(value))
    if not match:
        return None
    suffix = match.group("suffix") or ""
    number = str(value)[: len(str(value)) - len(suffix)]
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return base * Decimal(f"1{suffix.lower()}")
    return base * Decimal(_DECIMAL[suffix])


def _quantities(values: Any, path: str) -> Iterator[tuple[str, Any, str]]:
    if not isinstance(values, Mapping):
        return
    for resource, value in values.items():
        if not _known(value):
            continue
        number = quantity_value(value)
        if number is None:
            yield (
                f"{path}.{resource}",
                value,
                "a quantity: a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, "
                "Ti, Pi, Ei or an exponent), e.g. '500m', '2' or '8Gi' (not '8GB')",
            )
        elif number < 0:
            yield f"{path}.{resource}", value, "a quantity of at least 0"


# -- kinds ----------------------------------------------------------------------------------------


def schedule_problem(schedule: str) -> str | None:
    """What the CronJob controller parses (robfig/cron's standard parser): five fields, or a
    descriptor; a time zone goes in spec.timeZone, never in the schedule."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "a schedule without TZ= or CRON_TZ= (set spec.timeZone instead)"
    if text in CRON_DESCRIPTORS or text.startswith("@every "):
        return None
    if len(text.split()) != 5 or not croniter.is_valid(text):
        return (
            "a cron schedule of 5 fields (minute hour day-of-month month day-of-week) or "
            f"{', '.join(CRON_DESCRIPTORS)}"
        )
    return None


def _schedule(schedule: Any) -> Iterator[tuple[str, Any, str]]:
    if isinstance(schedule, str) and _known(schedule):
        problem = schedule_problem(schedule)
        if problem:
            yield "spec.schedule", schedule, problem


def _service_ports(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    ports = spec.get("ports") or []
    names: set[str] = set()
    for index, port in enumerate(ports):
        where = f"spec.ports[{index}]"
        yield from _port_number(port.get("port"), f"{where}.port")
        target = port.get("targetPort")
        if isinstance(target, str) and _known(target):
            problem = port_name_problem(target)
            if problem:
                yield f"{where}.targetPort", target, problem
        else:
            yield from _port_number(target, f"{where}.targetPort")
        name = port.get("name")
        if len(ports) > 1 and not name:
            yield f"{where}.name", None, "set: a Service with several ports names each"
        elif _known(name):
            if name in names:
                yield f"{where}.name", name, "unique among the Service's ports"
            names.add(str(name))


def _selector_selects_template(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in selector.items() if labels.get(k) != v and _known(v)}
    if missing:
        yield (
            "spec.selector.matchLabels",
            selector,
            f"labels the pod template carries (it lacks {json.dumps(missing)}): the API server "
            "refuses a selector that does not select its own template",
        )


def _autoscaler(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    low, high = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(low, int | float) and low < 1:
        yield "spec.minReplicas", low, "at least 1"
    if isinstance(low, int | float) and isinstance(high, int | float) and high < low:
        yield "spec.maxReplicas", high, f"at least minReplicas ({low})"
    for index, metric in enumerate(spec.get("metrics") or []):
        for source in ("resource", "containerResource", "pods", "object", "external"):
            target = (metric.get(source) or {}).get("target") or {}
            where = f"spec.metrics[{index}].{source}.target"
            utilization = target.get("averageUtilization")
            if isinstance(utilization, int | float) and utilization < 1:
                yield f"{where}.averageUtilization", utilization, "at least 1 (percent)"
            for key in ("averageValue", "value"):
                yield from _quantities({key: target[key]} if key in target else None, where)


def _known(value: Any) -> bool:
    return value is not None and value not in UNKNOWN


# -- admission: LimitRange and ResourceQuota ------------------------------------------------------

WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
COMPUTE = ("cpu", "memory")


def admission_findings(resources: Sequence[Planned]) -> Iterator[Finding]:
    """What the LimitRanger and ResourceQuota admission plugins refuse in each namespace: a
    container over the LimitRange's max, a pod naming no CPU/memory the quota counts (and no
    default), a pod bigger than the quota, and the namespace's workloads at their peak (every
    endpoint at its autoscaler's maximum, every job once) beyond it."""
    objects = [r for r in resources if r.type.startswith("kubernetes:")]
    for namespace in sorted({ns for r in objects if (ns := _namespace(r)) is not None}):
        here = [r for r in objects if _namespace(r) == namespace]
        limit_ranges = [r for r in here if r.inputs.get("kind") == "LimitRange"]
        quotas = [r for r in here if r.inputs.get("kind") == "ResourceQuota"]
        if not limit_ranges and not quotas:
            continue
        items = [
            item
            for r in limit_ranges
            for item in (r.inputs.get("spec") or {}).get("limits") or []
            if item.get("type") == "Container"
        ]
        peaks = _autoscaler_maxima(here)
        totals: dict[str, Decimal] = {}
        for workload in (r for r in here if r.inputs.get("kind") in WORKLOADS):
            count = _peak_replicas(workload, peaks)
            for path, pod in pod_specs(workload.inputs):
                pod_total: dict[str, Decimal] = {}
                for index, container in enumerate(pod.get("containers") or []):
                    where = f"{path}.containers[{index}].resources"
                    requests, limits = _effective(container.get("resources") or {}, items)
                    yield from (
                        Finding(workload.type, workload.name, p, v, m)
                        for p, v, m in _limit_range(requests, limits, items, where)
                    )
                    for key, value in [
                        *((f"requests.{k}", v) for k, v in requests.items()),
                        *((f"limits.{k}", v) for k, v in limits.items()),
                    ]:
                        pod_total[key] = pod_total.get(key, Decimal(0)) + value
                    for quota in quotas:
                        yield from _unnamed(quota, requests, limits, workload, where)
                pod_total["pods"] = Decimal(1)
                for quota in quotas:
                    yield from _pod_over_quota(quota, pod_total, workload, path)
                for key, value in pod_total.items():
                    totals[key] = totals.get(key, Decimal(0)) + value * count
        for quota in quotas:
            yield from _peak_over_quota(quota, totals)


def _namespace(resource: Planned) -> str | None:
    namespace = (resource.inputs.get("metadata") or {}).get("namespace")
    return str(namespace) if _known(namespace) else None


def _autoscaler_maxima(objects: Sequence[Planned]) -> dict[tuple[str, str], int]:
    maxima: dict[tuple[str, str], int] = {}
    for r in objects:
        if r.inputs.get("kind") == "HorizontalPodAutoscaler":
            spec = r.inputs.get("spec") or {}
            target = spec.get("scaleTargetRef") or {}
            if isinstance(spec.get("maxReplicas"), int | float):
                maxima[(str(target.get("kind")), str(target.get("name")))] = int(
                    spec["maxReplicas"]
                )
    return maxima


def _peak_replicas(workload: Planned, maxima: dict[tuple[str, str], int]) -> int:
    kind = str(workload.inputs.get("kind"))
    name = str((workload.inputs.get("metadata") or {}).get("name"))
    spec = workload.inputs.get("spec") or {}
    if (kind, name) in maxima:
        return maxima[(kind, name)]
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    count = spec.get("parallelism" if kind in ("Job", "CronJob") else "replicas", 1)
    return int(count) if isinstance(count, int | float) else 1


def _effective(
    resources: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Requests and limits after the LimitRange's defaults (and a request defaulting to its
    limit), as the API server admits the container."""
    limits = {
        k: q
        for k, v in (resources.get("limits") or {}).items()
        if (q := quantity_value(v)) is not None
    }
    requests = {
        k: q
        for k, v in (resources.get("requests") or {}).items()
        if (q := quantity_value(v)) is not None
    }
    for item in items:
        for key, value in (item.get("default") or {}).items():
            if key not in limits and (q := quantity_value(value)) is not None:
                limits[key] = q
        for key, value in (item.get("defaultRequest") or {}).items():
            if key not in requests and (q := quantity_value(value)) is not None:
                requests[key] = q
    for key, value in limits.items():
        requests.setdefault(key, value)
    return requests, limits


def _limit_range(
    requests: Mapping[str, Decimal],
    limits: Mapping[str, Decimal],
    items: Sequence[Mapping[str, Any]],
    where: str,
) -> Iterator[tuple[str, Any, str]]:
    for item in items:
        for key, value in (item.get("max") or {}).items():
            bound = quantity_value(value)
            if bound is not None and key in limits and limits[key] > bound:
                yield (
                    f"{where}.limits.{key}",
                    _shown(key, limits[key]),
                    f"at most the namespace LimitRange's max for a container ({value})",
                )
        for key, value in (item.get("min") or {}).items():
            bound = quantity_value(value)
            if bound is not None and key in requests and requests[key] < bound:
                yield (
                    f"{where}.requests.{key}",
                    _shown(key, requests[key]),
                    f"at least the namespace LimitRange's min for a container ({value})",
                )


def _hard(quota: Planned) -> dict[str, Decimal]:
    hard = ((quota.inputs.get("spec") or {}).get("hard")) or {}
    return {k: q for k, v in hard.items() if (q := quantity_value(v)) is not None}


def _unnamed(
    quota: Planned,
    requests: Mapping[str, Decimal],
    limits: Mapping[str, Decimal],
    workload: Planned,
    where: str,
) -> Iterator[Finding]:
    for key in _hard(quota):
        kind, _, resource = key.rpartition(".")
        if resource not in COMPUTE or kind not in ("requests", "limits", ""):
            continue
        named = limits if kind == "limits" else requests
        if resource not in named:
            yield Finding(
                workload.type,
                workload.name,
                f"{where}.{kind or 'requests'}.{resource}",
                None,
                f"set: the namespace's ResourceQuota counts {key}, and the API server refuses a "
                "pod that does not say it (nor does a LimitRange default give it)",
            )


def _pod_over_quota(
    quota: Planned, pod: Mapping[str, Decimal], workload: Planned, path: str
) -> Iterator[Finding]:
    for key, bound in _hard(quota).items():
        used = pod.get(key) if "." in key else pod.get(f"requests.{key}")
        if used is not None and used > bound:
            yield Finding(
                workload.type,
                workload.name,
                path,
                f"{_shown(key, used)} {key}",
                f"a pod within the namespace's ResourceQuota ({key}: {_shown(key, bound)}): "
                "the API server refuses one that alone exceeds it",
            )


def _peak_over_quota(quota: Planned, totals: Mapping[str, Decimal]) -> Iterator[Finding]:
    for key, bound in _hard(quota).items():
        used = totals.get(key) if "." in key or key == "pods" else totals.get(f"requests.{key}")
        if used is not None and used > bound:
            yield Finding(
                quota.type,
                quota.name,
                f"spec.hard.{key}",
                _shown(key, bound),
                f"at least {_shown(key, used)}: what the namespace's workloads ask at their peak "
                "(every Deployment at its autoscaler's maximum, every job once); the pods past "
                "the quota would be refused",
            )


def _shown(key: str, value: Decimal) -> str:
    if key.endswith("memory") and value >= 2**30:
        return f"{value / 2**30:g}Gi"
    if key.endswith("memory") and value >= 2**20:
        return f"{value / 2**20:g}Mi"
    return f"{value.normalize():f}"
