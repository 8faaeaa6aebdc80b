"""`mlops image build`: the runtime image (Containerfile), built with podman or docker.

Where no registry is reachable, the base image is made from Debian packages: debootstrap a
minimal bookworm (its python3 is 3.11) from the mirror apt already uses, then import the folder
as an image. The command lines are plain functions (unit-tested); `build` runs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CONTAINERFILE = "Containerfile"
"""The project's build file, at its root (the build context)."""
DEFAULT_BASE_IMAGE = "python:3.11-slim"
"""What users build on (the Containerfile's default)."""
LOCAL_BASE_IMAGE = "localhost/mlops-base:bookworm"
"""The base `--make-base` makes from Debian packages."""
DEFAULT_TAG = "localhost/mlops-runtime:dev"
SOURCE = "https://github.com/acme/mlops-stack"
DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")
"""Bounded limits: the defaults (and crun) fail in sandboxes such as CI's."""
CA_CERTS = Path("/etc/ssl/certs")
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
BASE_TRIM = (
    "var/cache/apt/archives/*.deb",
    "var/lib/apt/lists/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
)
"""What a container never reads: package downloads, apt lists, documentation."""
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

Runner = Callable[..., subprocess.CompletedProcess[str]]


class ImageError(RuntimeError):
    """A build step failed or a tool is missing; the message says which and what to do."""


def _run(command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, check=False, **kwargs)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Engine:
    """A container engine command line: podman (here) or docker (where a user has one)."""

    name: str
    binary: str

    @property
    def podman(self) -> bool:
        return self.name == "podman"


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str
    """The image ID (digest of its config)."""
    digest: str
    """The manifest digest (what `repo@sha256:...` names once pushed)."""
    size: int
    """Bytes, as the engine reports it."""


def find_engine(
    preferred: str | None = None, *, which: Callable[[str], str | None] = shutil.which
) -> Engine:
    """podman if installed, else a docker whose daemon answers; ``preferred`` forces one."""
    names = [preferred] if preferred else ["podman", "docker"]
    for name in names:
        binary = which(name)
        if binary is None:
            continue
        if (
            name == "docker"
            and not preferred
            and _run([binary, "info"], capture_output=True).returncode
        ):
            continue  # a docker CLI without a daemon cannot build
        return Engine(name, binary)
    wanted = preferred or "podman (or docker with a running daemon)"
    raise ImageError(
        f"no container engine: install {wanted} (`mlops image build` installs podman with apt-get as root)"
    )


def missing_tools(
    tools: Iterable[str], *, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    return [tool for tool in tools if which(tool) is None]


def install_tools(packages: Sequence[str], *, run: Runner = _run) -> None:
    """apt-get install what is missing (as root on Debian); idempotent and quiet."""
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImageError(
            f"missing {', '.join(packages)}: install them (apt-get install {' '.join(packages)})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = run(command, capture_output=True, env=env)
        if done.returncode:
            raise ImageError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")


def debian_mirror(sources: Iterable[Path] = APT_SOURCES, suite: str = DEBIAN_SUITE) -> str:
    """The Debian mirror apt already uses for ``suite`` (one-line or deb822 sources)."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.list")) + sorted(source.glob("*.sources"))
        elif source.is_file():
            files.append(source)
    for file in files:
        for uri, suites in _apt_entries(file.read_text()):
            if suite in suites and "security" not in uri:
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _apt_entries(text: str) -> Iterable[tuple[str, list[str]]]:
    if "URIs:" in text or "Suites:" in text:  # deb822: stanzas separated by blank lines
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (key.strip(), value.strip())
                for key, _, value in (line.partition(":") for line in stanza.splitlines())
                if not key.startswith("#") and value
            )
            if "deb" in fields.get("Types", "").split():
                for uri in fields.get("URIs", "").split():
                    yield uri, fields.get("Suites", "").split()
        return
    for line in text.splitlines():
        parts = re.sub(r"\[[^]]*\]", "", line).split()
        if len(parts) >= 3 and parts[0] == "deb":
            yield parts[1], [parts[2]]


def debootstrap_command(root: Path, mirror: str, suite: str = DEBIAN_SUITE) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        suite,
        str(root),
        mirror,
    ]


def build_command(
    engine: Engine,
    *,
    base_image: str,
    tag: str,
    revision: str,
    version: str,
    context: Path,
    source: str = SOURCE,
    sandbox: bool = True,
) -> list[str]:
    """The build command line for the project at ``context`` (its Containerfile). ``sandbox``:
    runc, bounded ulimits, host network, host CA bundle (what podman needs on machines like
    CI's; harmless elsewhere)."""
    command = [engine.binary, "build", "-f", str(context / CONTAINERFILE), "-t", tag]
    for key, value in (
        ("BASE_IMAGE", base_image),
        ("REVISION", revision),
        ("VERSION", version),
        ("SOURCE", source),
    ):
        command += ["--build-arg", f"{key}={value}"]
    if sandbox:
        command += ["--network", "host"]
        for limit in ULIMITS:
            command += ["--ulimit", limit]
        if engine.podman:
            command += ["--runtime", "runc"]
            if (CA_CERTS / "ca-certificates.crt").exists():
                command += ["-v", f"{CA_CERTS}:{CA_CERTS}:ro"]
    return [*command, str(context)]


def image_exists(engine: Engine, name: str, *, run: Runner = _run) -> bool:
    return run([engine.binary, "image", "inspect", name], capture_output=True).returncode == 0


def inspect(engine: Engine, name: str, *, run: Runner = _run) -> BuiltImage:
    done = run([engine.binary, "image", "inspect", name], capture_output=True)
    if done.returncode:
        raise ImageError(f"no image {name!r}: {done.stderr.strip()}")
    data = json.loads(done.stdout)[0]
    image_id = str(data["Id"])
    image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    repo_digests = [d.split("@", 1)[1] for d in data.get("RepoDigests") or [] if "@" in d]
    digest = str(data.get("Digest") or (repo_digests[0] if repo_digests else image_id))
    return BuiltImage(tag=name, id=image_id, digest=digest, size=int(data.get("Size") or 0))


def make_base(
    engine: Engine,
    name: str = LOCAL_BASE_IMAGE,
    *,
    mirror: str | None = None,
    run: Runner = _run,
    log: Callable[[str], None] = print,
) -> str:
    """debootstrap a minimal Debian with python3 + venv, trim it, import it as ``name``."""
    if not engine.podman and shutil.which("podman") is None and shutil.which("docker") is None:
        raise ImageError("making a base image needs podman or docker")
    mirror = mirror or debian_mirror()
    with tempfile.TemporaryDirectory(prefix="mlops-base-") as folder:
        root = Path(folder) / "rootfs"
        log(f"debootstrap {DEBIAN_SUITE} from {mirror} (about a minute)")
        done = run(debootstrap_command(root, mirror), capture_output=True)
        if done.returncode:
            raise ImageError(f"debootstrap failed:\n{(done.stdout + done.stderr)[-2000:]}")
        for pattern in BASE_TRIM:
            for path in root.glob(pattern):
                # A symlink (even to a folder, maybe an absolute one) goes as a link only.
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        log(f"importing {root} as {name}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = run([engine.binary, "import", "-", name], stdin=tar.stdout, capture_output=True)
        if tar.stdout:
            tar.stdout.close()
        tar.wait()
        if tar.returncode or imported.returncode:
            raise ImageError(f"importing the base image failed: {imported.stderr.strip()}")
    return name


def git_revision(root: Path) -> str:
    done = _run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def project_version(root: Path) -> str:
    import tomllib

    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def build(
    engine: Engine,
    *,
    base_image: str,
    context: Path,
    tag: str = DEFAULT_TAG,
    sandbox: bool = True,
    run: Runner = _run,
) -> BuiltImage:
    """Build the runtime image of the project at ``context`` (output streams to the terminal)
    and return what was built."""
    if not (context / CONTAINERFILE).is_file():
        raise ImageError(f"no {CONTAINERFILE} in {context}: the project builds no runtime image")
    command = build_command(
        engine,
        base_image=base_image,
        tag=tag,
        revision=git_revision(context),
        version=project_version(context),
        context=context,
        sandbox=sandbox,
    )
    if run(command).returncode:
        raise ImageError(f"the image build failed: {' '.join(command)}")
    return inspect(engine, tag, run=run)


def push(engine: Engine, tag: str, repository: str, *, run: Runner = _run) -> str:
    """Push ``tag`` to ``repository`` (e.g. the team's ECR repo); returns `repository@sha256:...`.

    The digest is the registry's manifest digest: what `mlops:image` names in prod.
    """
    if "@" in repository or ":" in repository.rsplit("/", 1)[-1]:
        raise ImageError(f"{repository!r}: give the repository without a tag or digest")
    target = f"{repository}:{tag.rsplit('/', 1)[-1].partition(':')[2] or 'latest'}"
    with tempfile.TemporaryDirectory() as folder:
        if engine.podman:
            digest_file = Path(folder) / "digest"
            done = run([engine.binary, "push", "--digestfile", str(digest_file), tag, target])
            digest = digest_file.read_text().strip() if digest_file.exists() else ""
        else:
            run([engine.binary, "tag", tag, target])
            done = run([engine.binary, "push", target])
            found = run(
                [engine.binary, "image", "inspect", "--format", "{{json .RepoDigests}}", target],
                capture_output=True,
            )
            digests = json.loads(found.stdout or "[]")
            digest = next(
                (d.split("@", 1)[1] for d in digests if d.startswith(f"{repository}@")), ""
            )
    if done.returncode or not DIGEST.match(digest):
        raise ImageError(f"pushing {tag} to {target} failed (digest {digest!r})")
    return f"{repository}@{digest}"
