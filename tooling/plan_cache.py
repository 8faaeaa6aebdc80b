"""The plan cache (`.mlops/plan-cache/`): a stack's plan, found again by what decided it.

A plan is a pure function of the program's code, the stack file and the tools that run them, so
each is stored under a key made of exactly those: the git blob ids of every file the program
imports or reads (the project's `__main__.py` and `Pulumi.yaml`, `components/`, `runtime/`, the
mock engine and recorder in `tooling/`, `pyproject.toml`), the stack file's path and blob id, and
the environment (the cache's format, the Python version, every installed distribution's version,
this tool's among them, and `PULUMI_CONFIG`). Blob ids are what git stores, so a commit's keys
come from `git ls-tree` without checking it out, and the working tree's from hashing its files
the same way: the base side of a pull request is a hit when its commit was planned before, on
any machine that shares the folder (CI restores it with actions/cache).

An entry holds a plan or a config error (both are answers); a crash is never stored. Beside the
entries, what the config checks asked scikit-learn and botocore (seconds of imports and parsing
for answers that rarely change) is kept by the question, so a stack planned anew in this process
after a config change does not ask them again (PlanCache.answers).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tooling.plan import Plan, Planned

FOLDER = Path(".mlops") / "plan-cache"
"""Where the cache is, in the workspace (the repository's root)."""
FORMAT = 1
"""The entries' shape; a new one makes every old entry a miss."""
MAX_ENTRIES = 2_000
"""Entries kept; the least recently used go first."""
TOOL = "mlops-stack"
ANSWER_FILES = 4
"""Stores of the config checks' answers kept (one per environment and version of the code that
asks; see PlanCache.answers); the least recently used go first."""

SHARED_INPUTS = (
    "components/",
    "runtime/",
    "tooling/plan.py",
    "tooling/mocks.py",
    "tooling/project.py",
    "pyproject.toml",
    "Pulumi.yaml",
)
"""What both projects' programs import or read, besides their own `__main__.py` and
`Pulumi.yaml` (the workspace's `Pulumi.yaml` says where the platform project is;
tests/tooling/test_plan_cache.py checks nothing else is read)."""
PROJECT_INPUTS = ("__main__.py", "Pulumi.yaml")


def stack_path(stack: str) -> str:
    """`fraud-dev` -> `stacks/Pulumi.fraud-dev.yaml`; `platform/dev` -> the platform's."""
    folder, _, name = stack.rpartition("/")
    return f"{folder}/stacks/Pulumi.{name}.yaml" if folder else f"stacks/Pulumi.{name}.yaml"


def is_input(path: str, stack: str) -> bool:
    """Whether the file at ``path`` (relative to the repository) may change ``stack``'s plan."""
    folder, _, _ = stack.rpartition("/")
    own = tuple(f"{folder}/{name}" if folder else name for name in PROJECT_INPUTS)
    return path == stack_path(stack) or path in own or path.startswith(SHARED_INPUTS)


@functools.cache
def environment() -> str:
    """What else decides a plan: the interpreter and every installed distribution, this tool's
    version among them; a JSON text."""
    packages = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions()
    )
    return describe_environment(
        python=f"{platform.python_implementation()} {sys.version}",
        tool=importlib.metadata.version(TOOL),
        packages=packages,
        pulumi_config=os.environ.get("PULUMI_CONFIG"),
    )


def describe_environment(
    *, python: str, tool: str, packages: list[str], pulumi_config: str | None
) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "python": python,
            "tool": tool,
            "packages": packages,
            "PULUMI_CONFIG": pulumi_config,
        },
        sort_keys=True,
    )


def plan_key(blobs: Mapping[str, str], stack: str, env: str | None = None) -> str | None:
    """The cache key of ``stack`` in a tree whose files have these blob ids (see blob_id), or
    None when the tree has no such stack file. ``env``: default, this process's environment."""
    if stack_path(stack) not in blobs:
        return None
    digest = hashlib.sha256((env if env is not None else environment()).encode())
    digest.update(f"\0{stack}\0".encode())
    for path in sorted(p for p in blobs if is_input(p, stack)):
        digest.update(f"{path}\0{blobs[path]}\n".encode())
    return digest.hexdigest()


def blob_id(content: bytes) -> str:
    """The id git gives a file with this content (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0%s" % (len(content), content), usedforsecurity=False).hexdigest()


def working_blobs(root: Path, tops: tuple[str, ...]) -> dict[str, str]:
    """Blob ids of the files at or under ``tops`` (relative paths) in the folder ``root``, as
    they are on disk (compiled Python left out)."""
    found: dict[str, str] = {}
    for top in tops:
        start = root / top
        if start.is_file():
            found[top] = blob_id(start.read_bytes())
            continue
        for folder, dirs, files in os.walk(start):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in files:
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(folder, name)
                found[path.relative_to(root).as_posix()] = blob_id(path.read_bytes())
    return found


class PlanCache:
    """Plans and config errors stored by key, one gzipped JSON file each; and what the config
    checks asked their sources (see answers)."""

    def __init__(self, folder: Path, *, max_entries: int = MAX_ENTRIES) -> None:
        self.folder = folder
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> Path:
        return self.folder / f"{key}.json.gz"

    def get(self, key: str, stack: str) -> tuple[bool, Planned]:
        """(True, the stored answer) on a hit; (False, None) on a miss."""
        file = self._file(key)
        try:
            entry: dict[str, Any] = json.loads(gzip.decompress(file.read_bytes()))
        except (OSError, EOFError, ValueError):  # absent, or cut short by a crash: a miss
            self.misses += 1
            return False, None
        os.utime(file)  # recently used
        self.hits += 1
        if "error" in entry:
            return True, str(entry["error"])
        return True, Plan.from_preview_json(stack, entry["plan"])

    def put(self, key: str, planned: Planned) -> None:
        if planned is None:
            return  # no stack file: nothing was planned, and the key says so already
        entry = {"error": planned} if isinstance(planned, str) else {"plan": planned.preview_json()}
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a reader never sees half an entry.
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as out:
            out.write(gzip.compress(json.dumps(entry, default=str).encode(), compresslevel=1))
        os.replace(out.name, self._file(key))

    @contextlib.contextmanager
    def answers(self) -> Iterator[None]:
        """While inside, the config checks of stacks planned in this process answer from this
        cache what they asked before: an estimator's parameters (runtime.estimators, which
        asks scikit-learn: seconds to import) and AWS's API shapes and regions
        (components.aws_values, which parses botocore's models: most of a second); what is
        asked anew is remembered. The answers are kept in one file per environment (every
        installed distribution's version, scikit-learn's and botocore's among them) and
        version of the modules that ask."""
        from components import aws_values
        from runtime import estimators

        modules = (estimators, aws_values)
        sources = "\0".join(blob_id(Path(m.__file__ or "").read_bytes()) for m in modules)
        key = hashlib.sha256(f"{environment()}\0{sources}".encode()).hexdigest()
        file = self.folder / f"answers-{key}.json"
        try:
            stored: dict[str, dict[str, Any]] = json.loads(file.read_bytes())
            os.utime(file)  # recently used
        except (OSError, ValueError):  # none yet, or cut short by a crash
            stored = {}
        estimators.answers = stored.setdefault("estimators", {})
        aws_values.known = stored.setdefault("aws", {})
        before = {part: len(found) for part, found in stored.items()}
        try:
            yield
        finally:
            estimators.answers = aws_values.known = None
            if any(len(found) > before[part] for part, found in stored.items()):
                self.folder.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(
                    "w", dir=self.folder, suffix=".tmp", delete=False
                ) as out:
                    json.dump(stored, out)
                os.replace(out.name, file)

    def prune(self) -> None:
        """Keep the ``max_entries`` most recently used entries."""
        entries: list[tuple[float, Path]] = []
        for entry in self.folder.glob("*.json.gz"):
            with contextlib.suppress(FileNotFoundError):  # another run pruned it
                entries.append((entry.stat().st_mtime, entry))
        for _, stale in sorted(entries, reverse=True)[self.max_entries :]:
            stale.unlink(missing_ok=True)
        answers: list[tuple[float, Path]] = []
        for file in self.folder.glob("answers-*.json"):
            with contextlib.suppress(FileNotFoundError):
                answers.append((file.stat().st_mtime, file))
        for _, stale in sorted(answers, reverse=True)[ANSWER_FILES:]:
            stale.unlink(missing_ok=True)
