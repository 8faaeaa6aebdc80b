"""`mlops image build`: the command lines it runs (no engine needed) and the Containerfile's shape."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPOSITORY
from tooling import image
from tooling.image import Engine, ImageError

PODMAN = Engine("podman", "/usr/bin/podman")
DOCKER = Engine("docker", "/usr/bin/docker")


def test_mirror_comes_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert image.debian_mirror([tmp_path]) == "http://mirror.example/debian"


def test_mirror_comes_from_one_line_sources_else_the_default(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert image.debian_mirror([listing]) == "http://mirror.example/debian"
    assert image.debian_mirror([tmp_path / "missing"]) == image.DEFAULT_MIRROR


def test_debootstrap_makes_a_minimal_bookworm_with_python() -> None:
    assert image.debootstrap_command(Path("/b"), "http://m/debian") == [
        "debootstrap",
        "--variant=minbase",
        "--include=python3,python3-venv,ca-certificates",
        "bookworm",
        "/b",
        "http://m/debian",
    ]


def _pairs(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == flag]


def test_podman_build_has_the_sandbox_flags_and_oci_labels() -> None:
    command = image.build_command(
        PODMAN,
        base_image="localhost/base",
        tag="t:1",
        revision="abc",
        version="0.1.0",
        context=REPOSITORY,
    )
    assert command[:2] == ["/usr/bin/podman", "build"]
    assert _pairs(command, "--build-arg") == [
        "BASE_IMAGE=localhost/base",
        "REVISION=abc",
        "VERSION=0.1.0",
        f"SOURCE={image.SOURCE}",
    ]
    assert _pairs(command, "--ulimit") == list(image.ULIMITS)
    assert _pairs(command, "--runtime") == ["runc"]
    assert _pairs(command, "--network") == ["host"]
    assert command[-1] == str(REPOSITORY)
    assert _pairs(command, "-f") == [str(REPOSITORY / "Containerfile")]


def test_docker_build_has_no_podman_only_flags() -> None:
    command = image.build_command(
        DOCKER,
        base_image="python:3.11-slim",
        tag="t",
        revision="r",
        version="v",
        context=REPOSITORY,
        sandbox=False,
    )
    assert "--runtime" not in command
    assert "-v" not in command
    assert "--ulimit" not in command


def test_push_refuses_a_reference_with_a_tag() -> None:
    with pytest.raises(ImageError, match="without a tag"):
        image.push(PODMAN, "t:1", "registry.example/team/runtime:1")


def test_push_returns_the_registry_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "c" * 64
    seen: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        Path(command[command.index("--digestfile") + 1]).write_text(digest)
        return subprocess.CompletedProcess(command, 0, "", "")

    reference = image.push(PODMAN, "localhost/rt:dev", "r.example:5000/team/runtime", run=run)
    assert reference == f"r.example:5000/team/runtime@{digest}"
    assert seen[0][-2:] == ["localhost/rt:dev", "r.example:5000/team/runtime:dev"]


def test_containerfile_is_multi_stage_non_root_and_labelled() -> None:
    text = (REPOSITORY / image.CONTAINERFILE).read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${BASE_IMAGE}"] * 3  # requirements, builder, final
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["mlops-runtime"]' in text
    for label in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{label}=" in text
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert "COPY --from=builder /opt/mlops /opt/mlops" in final
    assert not re.search(r"\b(gcc|build-essential|pulumi)\b", final)


def test_build_context_holds_the_runtime_only() -> None:
    ignore = (REPOSITORY / ".containerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!runtime/"]


def test_make_base_trims_documentation_but_follows_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not the base's")
    seen: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        if kwargs.get("stdin") is not None:
            kwargs["stdin"].read()  # what `podman import -` reads: the tar stream
        if command[0] == "debootstrap":
            root = Path(command[-2])
            (root / "usr/share/doc/python3").mkdir(parents=True)
            (root / "usr/share/doc/python3/copyright").write_text("x")
            (root / "usr/share/doc/linked").symlink_to(outside)
            (root / "usr/bin").mkdir(parents=True)
            (root / "usr/bin/python3").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    assert image.make_base(PODMAN, "localhost/base", mirror="http://m/debian", run=run, log=str)
    assert seen[0][:2] == ["debootstrap", "--variant=minbase"]
    assert seen[1] == ["/usr/bin/podman", "import", "-", "localhost/base"]
    assert (outside / "keep").exists()
