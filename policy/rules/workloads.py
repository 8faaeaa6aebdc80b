"""Kubernetes workloads: pod and container security, pinned images."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from policy.rules.properties import UNKNOWN, as_list, dig, is_true
from policy.rules.registry import (
    RESOURCE_RULES,
    Context,
    ResourceCheck,
    ResourceRule,
    resource_rule,
)

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
WORKLOAD_TYPES = tuple(POD_SPEC_PATHS)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(type_: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = dig(props, POD_SPEC_PATHS[type_]) if type_ in POD_SPEC_PATHS else None
    return spec if isinstance(spec, Mapping) else {}


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in CONTAINER_LISTS:
        for i, container in enumerate(as_list(spec.get(kind))):
            if isinstance(container, Mapping):
                yield f"{kind[:-1]} {container.get('name') or i!r}", container


ContainerCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]
"""(pod spec, container) -> what to change, or None."""


def _per_container(check: ContainerCheck) -> ResourceCheck:
    """A workload check from one over (pod spec, container) -> problem or None."""

    def run(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
        spec = pod_spec(type_, props)
        return [
            f"{label}: {problem}"
            for label, container in containers(spec)
            if (problem := check(spec, container))
        ]

    return run


def _effective(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    value = dig(container, f"securityContext.{key}")
    return value if value is not None else dig(spec, f"securityContext.{key}")


def _workload_rule(name: str, description: str) -> Callable[[ContainerCheck], ContainerCheck]:
    def register(check: ContainerCheck) -> ContainerCheck:
        RESOURCE_RULES.append(
            ResourceRule(name, description, frozenset(WORKLOAD_TYPES), _per_container(check))
        )
        return check

    return register


@_workload_rule("k8s-run-as-non-root", "Containers run as a non-root user.")
def k8s_run_as_non_root(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if _effective(spec, container, "runAsUser") in (0, 0.0):
        return "runs as uid 0: set securityContext.runAsUser to a non-zero uid"
    if not is_true(_effective(spec, container, "runAsNonRoot")):
        return "set securityContext.runAsNonRoot: true (container or pod)"
    return None


@_workload_rule("k8s-read-only-root-filesystem", "Containers have a read-only root filesystem.")
def k8s_read_only_root_filesystem(
    spec: Mapping[str, Any], container: Mapping[str, Any]
) -> str | None:
    if not is_true(dig(container, "securityContext.readOnlyRootFilesystem")):
        return (
            "set securityContext.readOnlyRootFilesystem: true (mount an emptyDir where it writes)"
        )
    return None


@_workload_rule("k8s-resource-limits", "Containers set CPU and memory limits.")
def k8s_resource_limits(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    limits = dig(container, "resources.limits")
    limits = limits if isinstance(limits, Mapping) else {}
    missing = [r for r in ("cpu", "memory") if not limits.get(r)]
    if missing:
        return f"set resources.limits.{' and resources.limits.'.join(missing)}"
    return None


@_workload_rule("k8s-no-privileged", "Containers are not privileged.")
def k8s_no_privileged(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if is_true(dig(container, "securityContext.privileged")):
        return "privileged: remove securityContext.privileged (or set it false)"
    return None


@_workload_rule("k8s-no-privilege-escalation", "Containers set allowPrivilegeEscalation: false.")
def k8s_no_privilege_escalation(
    spec: Mapping[str, Any], container: Mapping[str, Any]
) -> str | None:
    if dig(container, "securityContext.allowPrivilegeEscalation") is not False:
        return "set securityContext.allowPrivilegeEscalation: false (the default is true)"
    return None


@_workload_rule("k8s-drop-all-capabilities", "Containers drop ALL Linux capabilities.")
def k8s_drop_all_capabilities(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if "ALL" not in as_list(dig(container, "securityContext.capabilities.drop")):
        return "set securityContext.capabilities.drop: [ALL] (add back only what it needs)"
    return None


_PLACEHOLDER_DIGEST = "@sha256:" + "0" * 64
"""Written by `mlops new-team` until an image is pushed: it names no image."""


def image_problem(image: Any) -> str | None:
    if image == UNKNOWN:
        return None
    if not isinstance(image, str) or not image:
        return "no image: set a pinned image"
    if image.endswith(_PLACEHOLDER_DIGEST):
        return (
            f"image {image!r} has the all-zero placeholder digest `mlops new-team` writes: push "
            "the image (`mlops image build --push <repository>`) and set mlops:image to the "
            "<repository>@sha256:<digest> it prints"
        )
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest): pin a version tag or @sha256 digest"
    if last.rsplit(":", 1)[-1] == "latest":
        return f"image {image!r} uses :latest: pin a version tag or @sha256 digest"
    return None


@_workload_rule("k8s-pinned-images", "Container images are pinned: no `:latest`, no missing tag.")
def k8s_pinned_images(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    return image_problem(container.get("image"))


@resource_rule("k8s-no-host-path", "Pods mount no hostPath volumes.", *WORKLOAD_TYPES)
def k8s_no_host_path(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    return [
        f"volume {volume.get('name')!r} mounts the node's {dig(volume, 'hostPath.path')!r}: "
        "use an emptyDir, a ConfigMap/Secret or a PersistentVolumeClaim"
        for volume in as_list(pod_spec(type_, props).get("volumes"))
        if isinstance(volume, Mapping) and volume.get("hostPath") is not None
    ]


@resource_rule(
    "k8s-no-host-namespaces",
    "Pods do not share the node's network, PID or IPC namespace.",
    *WORKLOAD_TYPES,
)
def k8s_no_host_namespaces(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    spec = pod_spec(type_, props)
    return [
        f"{key}: true shares the node's namespace: remove it"
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if is_true(spec.get(key))
    ]
