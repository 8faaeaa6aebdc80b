"""The podman command line, with the limits and runtime this host needs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tooling.image import ULIMITS
from tooling.rehearse.errors import RehearsalError

CONTAINERS_CONF = f"""# Written by `mlops rehearse`: `podman kube play` takes its limits and runtime from here.
[containers]
default_ulimits = [{", ".join(f'"{u}"' for u in ULIMITS)}]

[engine]
runtime = "runc"
"""
TOOLS = {"podman": "podman", "runc": "runc", "catatonit": "catatonit"}
"""Command -> Debian package: kube play needs catatonit for its pause image."""


class Podman:
    """The podman command line with the rehearsal's containers.conf (CONTAINERS_CONF)."""

    def __init__(self, folder: Path) -> None:
        conf = folder / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> str:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and done.returncode:
            raise RehearsalError(f"podman {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, obj_docs: list[dict[str, Any]], file: Path) -> tuple[str, list[str]]:
        """Play the YAML; the pod's name and its containers' names as podman gave them."""
        file.write_text(yaml.safe_dump_all(obj_docs, sort_keys=False))
        output = self.run("kube", "play", "--network", "host", "--replace", str(file))
        pod_id = output.split("Pod:", 1)[1].split()[0]
        name = self.run("pod", "inspect", "--format", "{{.Name}}", pod_id).strip()
        listed = self.run(
            "ps", "--all", "--filter", f"pod={pod_id}", "--format", "{{.Names}} {{.IsInfra}}"
        )
        containers = [
            n for n, infra in (line.split() for line in listed.splitlines()) if infra != "true"
        ]
        return name, sorted(containers)

    def down(self, file: Path) -> None:
        self.run("kube", "down", str(file), check=False)

    def wait(self, container: str, timeout: float) -> int:
        try:
            return int(self.run("wait", container, timeout=timeout).strip().splitlines()[-1])
        except subprocess.TimeoutExpired as error:
            raise RehearsalError(f"{container} still running after {timeout:.0f}s") from error

    def logs(self, container: str, lines: int = 40) -> str:
        done = subprocess.run(
            ["podman", "logs", "--tail", str(lines), container],
            capture_output=True,
            text=True,
            env=self.env,
        )
        return (done.stdout + done.stderr).strip()


def ensure_tools() -> None:
    from tooling import image

    missing = image.missing_tools(TOOLS)
    if missing:
        image.install_tools([TOOLS[t] for t in missing])
