"""Plan many stacks fast: worker processes that import Pulumi and the program's code once.

A plan costs a few hundred milliseconds once Python is warm, but a fresh process spends seconds
importing Pulumi, the providers and the validation's scikit-learn. So each worker is one Python
process in a tree (a commit's code, or the working tree), planning stack after stack with that
tree's own `tooling.plan.plan_stack`, each in a fresh context (the SDK keeps its engine state in
context variables; see `tooling.plan`). Workers take stacks from their tree's queue as they
finish, so a slow stack does not hold the others back; there are as many workers as jobs (by
default, the cores), shared between the trees by how much each has left to plan. A tree of this
process's own code with only a few stacks to plan (a config change to one stack) is planned right
here instead: a worker's imports would cost more than the plans; there, the config checks answer
from the plan cache what they asked scikit-learn and botocore before (PlanCache.answers).

What a worker runs is only `plan_stack(file)` and `Plan.preview_json()` of the tree it plans,
the API every commit of this project has, so the base side of a diff needs nothing newer.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from components.config import ConfigError
from tooling.plan import Plan, Planned, plan_stack
from tooling.plan_cache import SHARED_INPUTS, PlanCache, plan_key, working_blobs
from tooling.project import Workspace

SPAWN_AFTER = 3
"""A tree gets another worker only while each of its workers has at least this many stacks
left: a worker's imports cost about as much as planning a few stacks."""

OWN_CODE = Path(__file__).resolve().parent.parent
"""The repository this process's program code comes from."""

ANSWERS_ENV = "MLOPS_PLAN_ANSWERS"
"""The plan cache's folder, for a worker to keep the config checks' answers in (see _WORKER)."""

_WORKER = r"""
import json, os, sys, traceback
from pathlib import Path

results = os.fdopen(os.dup(1), "w")  # the answers; whatever the program prints goes to stderr
os.dup2(2, 1)
import contextlib
from components.config import ConfigError
from tooling.plan import plan_stack

# The config checks' answers kept in the plan cache, where this tree's code keeps them.
answers = contextlib.nullcontext()
if os.environ.get(ANSWERS_ENV):
    try:
        from tooling.plan_cache import PlanCache
        answers = PlanCache(Path(os.environ[ANSWERS_ENV])).answers()
    except (ImportError, AttributeError):  # a commit from before they were kept
        pass
with answers:
    for line in sys.stdin:
        stack = line.strip()
        folder, _, name = stack.rpartition("/")
        file = Path(folder or ".") / "stacks" / f"Pulumi.{name}.yaml"
        if not file.exists():
            answer = {"missing": True}
        else:
            try:
                answer = {"plan": plan_stack(file).preview_json()}
            except ConfigError as error:
                answer = {"error": str(error)}
            except Exception:
                answer = {"failed": traceback.format_exc()}
        results.write(json.dumps(answer, default=str) + "\n")
        results.flush()
""".replace("ANSWERS_ENV", repr(ANSWERS_ENV))


class PlanningError(RuntimeError):
    """A stack's program crashed (not a config error: those are answers), or a worker died."""


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def stack_names(stacks: Sequence[str]) -> list[str]:
    """Each stack once, in the order given."""
    return list(dict.fromkeys(stacks))


class _Worker:
    """One Python process planning stacks of one tree, one at a time, on request."""

    def __init__(self, folder: Path, answers: Path | None = None) -> None:
        self.folder = folder
        self._log = tempfile.TemporaryFile(mode="w+", prefix="mlops-worker-")  # noqa: SIM115
        env = dict(os.environ, **({ANSWERS_ENV: str(answers.resolve())} if answers else {}))
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def plan(self, stack: str) -> Planned:
        stdin, stdout = self._pipes()
        with contextlib.suppress(BrokenPipeError):  # it died: no answer, below, says so
            stdin.write(f"{stack}\n")
            stdin.flush()
        line = stdout.readline()
        if not line:
            raise PlanningError(
                f"planning {stack} in {self.folder}: the worker died:\n{self._tail()}"
            )
        answer: dict[str, Any] = json.loads(line)
        if "failed" in answer:
            raise PlanningError(f"planning {stack} in {self.folder} failed:\n{answer['failed']}")
        if answer.get("missing"):
            return None
        if "error" in answer:
            return str(answer["error"])
        return Plan.from_preview_json(stack, answer["plan"])

    def close(self) -> None:
        stdin, _ = self._pipes()
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None  # both are PIPE
        return stdin, stdout

    def _tail(self) -> str:
        self._process.wait()
        self._log.seek(0)
        return self._log.read()[-2000:].strip()


@dataclass(frozen=True)
class Tree:
    """What a side is planned with: the working tree of the repository at ``root``, or its
    commit ``commit`` (any git revision)."""

    root: Path
    commit: str | None = None

    def blobs(self, tops: Sequence[str]) -> dict[str, str]:
        """Blob ids of the files at or under ``tops`` (paths relative to the root)."""
        if self.commit is None:
            return working_blobs(self.root, tuple(tops))
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-z", self.commit, "--", *tops],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        found: dict[str, str] = {}
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            _, kind, blob = meta.split()
            if kind == "blob":
                found[path] = blob
        return found

    @contextmanager
    def checkout(self, *, stacks_only: bool = False) -> Iterator[Path]:
        """A folder with the tree's files: the root itself, or a copy of the commit's tree (with
        ``stacks_only``, of its projects' stack files and Pulumi.yaml alone)."""
        if self.commit is None:
            yield self.root
            return
        with tempfile.TemporaryDirectory(prefix="mlops-base-") as folder:
            paths = list(STACK_FILES) if stacks_only else []
            archive = subprocess.run(
                ["git", "archive", self.commit, "--", *paths],
                cwd=self.root,
                check=True,
                capture_output=True,
            ).stdout
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(folder, filter="data")
            yield Path(folder)


STACK_FILES = (":(glob)**/Pulumi.yaml", ":(glob)**/stacks/**")
"""What a light checkout copies: each project's manifest and stack files."""


def _has_own_code(tree: Tree, stacks: Sequence[str]) -> bool:
    """Whether the commit ``tree`` plans ``stacks`` exactly as this process's code does: its
    repository is this code's and, stack files aside, the files that decide a plan are the same
    as in the working tree (the tool's own included)."""
    if tree.commit is None or not tree.root.resolve() == OWN_CODE == Path.cwd().resolve():
        return False
    tops = [top for top in input_tops(stacks) if top.rpartition("/")[2] != "stacks"]
    tops.append("tooling")
    return tree.blobs(tops) == working_blobs(tree.root, tuple(tops))


def input_tops(stacks: Sequence[str]) -> list[str]:
    """The files and folders whose content decides these stacks' plans (see tooling.plan_cache)."""
    folders = sorted({stack.rpartition("/")[0] for stack in stacks})
    own = [
        f"{folder}/{name}" if folder else name
        for folder in folders
        for name in ("__main__.py", "Pulumi.yaml", "stacks")
    ]
    return list(dict.fromkeys([*own, *(top.rstrip("/") for top in SHARED_INPUTS)]))


def plan_stacks(
    work: Mapping[Tree, Sequence[str]],
    *,
    jobs: int | None = None,
    cache: PlanCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[Tree, dict[str, Planned]]:
    """Plan each tree's stacks (`fraud-dev`, `platform/dev`) with that tree's own code: answers
    from ``cache`` where it has them, the rest in worker processes (``jobs`` at once; default:
    one per core), stored in ``cache``. A commit is copied out of git only when one of its
    stacks must be planned. ``progress`` is told each stack as its answer is there. Raises
    PlanningError when a program crashes."""
    answers: dict[Tree, dict[str, Planned]] = {}
    todo: dict[Tree, list[str]] = {}
    keys: dict[tuple[Tree, str], str] = {}
    for tree, stacks in work.items():
        answers[tree] = {}
        names = stack_names(stacks)
        blobs = tree.blobs(input_tops(names))
        for stack in names:
            key = plan_key(blobs, stack)
            if key is None:
                answers[tree][stack] = None  # no such stack file there
                continue
            hit, planned = cache.get(key, stack) if cache else (False, None)
            if hit:
                answers[tree][stack] = planned
                if progress:
                    progress(stack)
                continue
            todo.setdefault(tree, []).append(stack)
            keys[tree, stack] = key
    if todo:
        # A commit with this process's code and few stacks to plan (a config change): only its
        # stack files are copied out, and its stacks planned here with this code.
        light = [t for t in todo if len(todo[t]) < SPAWN_AFTER and _has_own_code(t, todo[t])]
        with contextlib.ExitStack() as checkouts:
            if cache is not None:
                checkouts.enter_context(cache.answers())
            folders = {
                tree: checkouts.enter_context(tree.checkout(stacks_only=tree in light))
                for tree in todo
            }
            planned_in = plan_trees(
                {folders[tree]: todo[tree] for tree in todo if tree not in light},
                jobs=jobs,
                progress=progress,
                answers=cache.folder if cache is not None else None,
            )
            for tree in light:
                planned_in[folders[tree]] = {}
                for stack in todo[tree]:
                    planned_in[folders[tree]][stack] = _plan_here(stack, folders[tree])
                    if progress:
                        progress(stack)
        for tree, stacks in todo.items():
            for stack in stacks:
                answer = planned_in[folders[tree]][stack]
                answers[tree][stack] = answer
                if cache is not None:
                    cache.put(keys[tree, stack], answer)
        if cache is not None:
            cache.prune()
    return {tree: {s: answers[tree][s] for s in stack_names(work[tree])} for tree in work}


@dataclass
class _Tree:
    folder: Path
    queue: deque[str]
    workers: int = 0


def plan_trees(
    work: Mapping[Path, Sequence[str]],
    *,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    answers: Path | None = None,
) -> dict[Path, dict[str, Planned]]:
    """Plan each folder's stacks (`fraud-dev`, `platform/dev`) with that folder's own code, in
    up to ``jobs`` worker processes at once (default: one per core); ``progress`` is told each
    stack once planned; the workers keep the config checks' answers in the plan cache folder
    ``answers``, if given. Raises PlanningError when a program crashes."""
    trees = [_Tree(folder, deque(stack_names(stacks))) for folder, stacks in work.items()]
    results: dict[Path, dict[str, Planned]] = {tree.folder: {} for tree in trees}
    failures: list[PlanningError] = []
    lock = threading.Lock()

    def next_tree() -> _Tree | None:
        """The tree a free slot should start a worker in, if any is worth one."""
        waiting = [t for t in trees if t.queue and not failures]
        unserved = [t for t in waiting if t.workers == 0]
        if unserved:
            return max(unserved, key=lambda t: len(t.queue))
        worth = [t for t in waiting if len(t.queue) >= SPAWN_AFTER * (t.workers + 1)]
        return max(worth, key=lambda t: len(t.queue) / (t.workers + 1), default=None)

    def slot() -> None:
        while True:
            with lock:
                tree = next_tree()
                if tree is None:
                    return
                tree.workers += 1
            worker = _Worker(tree.folder, answers)
            try:
                while True:
                    with lock:
                        if not tree.queue or failures:
                            break
                        stack = tree.queue.popleft()
                    planned = worker.plan(stack)
                    with lock:
                        results[tree.folder][stack] = planned
                        if progress:
                            progress(stack)
            except PlanningError as error:
                with lock:
                    failures.append(error)
            finally:
                worker.close()
                with lock:
                    tree.workers -= 1

    # The worker threads start first, so the stacks planned here overlap with theirs.
    here = [t for t in trees if _plans_here(t)]
    trees = [t for t in trees if t not in here]
    total = sum(len(tree.queue) for tree in trees)
    threads = [
        threading.Thread(target=slot, name=f"mlops-plan-{i}", daemon=True)
        for i in range(min(jobs or default_jobs(), total))
    ]
    for thread in threads:
        thread.start()
    try:
        for tree in here:
            for stack in tree.queue:
                results[tree.folder][stack] = _plan_here(stack)
    except PlanningError as error:
        with lock:
            failures.append(error)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def _plans_here(tree: _Tree) -> bool:
    """Whether this process plans ``tree`` itself: its own code, run from its root (so the paths
    in a config error read as a worker's would), with fewer stacks than pay for a worker."""
    folder = tree.folder.resolve()
    return folder == OWN_CODE == Path.cwd().resolve() and len(tree.queue) < SPAWN_AFTER


def _plan_here(stack: str, root: Path | None = None) -> Planned:
    """What a worker answers for ``stack`` (see _WORKER), planned in this process: the stack
    file of the working folder, or of ``root`` (a light checkout) with this process's code."""
    folder, _, name = stack.rpartition("/")
    file = Path(folder or ".") / "stacks" / f"Pulumi.{name}.yaml"
    if root is not None:
        file = root / file
    if not file.exists():
        return None
    try:
        # What the program prints must not mix with this command's own output.
        with contextlib.redirect_stdout(sys.stderr):
            if root is None:
                plan = plan_stack(file)
            else:
                program = OWN_CODE / folder / "__main__.py"
                plan = plan_stack(file, program=program, workspace=Workspace(root))
            preview = plan.preview_json()
    except ConfigError as error:
        # Paths as a worker, run in the checkout, names them.
        return str(error) if root is None else str(error).replace(f"{root}/", "")
    except Exception:
        raise PlanningError(
            f"planning {stack} in {OWN_CODE} failed:\n{traceback.format_exc()}"
        ) from None
    # The same round trip as a worker's answer, so both give equal plans.
    return Plan.from_preview_json(stack, json.loads(json.dumps(preview, default=str)))
