"""The plan cache: a key for everything that decides a plan, and a hit is the fresh plan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import aws_values
from runtime import estimators
from runtime.spec import EstimatorKind, Task
from tests.conftest import REPOSITORY
from tooling import plan_cache, planner
from tooling.plan_cache import PlanCache, blob_id, describe_environment, plan_key, working_blobs
from tooling.planner import Tree, input_tops, plan_stacks

ENVIRONMENT = {
    "python": "CPython 3.11.7",
    "tool": "0.1.0",
    "packages": ["pulumi==3.200.0", "pulumi-aws==7.1.0"],
    "pulumi_config": None,
}


def _key(stack: str = "fraud-dev", edit: tuple[str, str] | None = None, **environment) -> str:
    blobs = working_blobs(REPOSITORY, tuple(input_tops([stack, "platform/dev"])))
    blobs["README.md"] = blob_id(b"# mlops-stack\n")
    if edit is not None:
        path, content = edit
        blobs[path] = blob_id(content.encode())
    key = plan_key(blobs, stack, describe_environment(**{**ENVIRONMENT, **environment}))
    assert key is not None
    return key


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"edit": ("stacks/Pulumi.fraud-dev.yaml", "config: {}\n")}, id="stack-file"),
        pytest.param({"edit": ("components/serving.py", "# changed\n")}, id="a-component"),
        pytest.param({"edit": ("components/extra.py", "# new\n")}, id="a-new-module"),
        pytest.param({"edit": ("runtime/settings.py", "# changed\n")}, id="runtime-contract"),
        pytest.param({"edit": ("__main__.py", "# changed\n")}, id="program"),
        pytest.param({"edit": ("Pulumi.yaml", "name: mlops\n")}, id="project-file"),
        pytest.param({"edit": ("pyproject.toml", "[project]\n")}, id="pyproject"),
        pytest.param({"edit": ("tooling/mocks.py", "# changed\n")}, id="mock-engine"),
        pytest.param({"edit": ("tooling/plan.py", "# changed\n")}, id="recorder"),
        pytest.param({"tool": "0.2.0"}, id="tool-version"),
        pytest.param({"python": "CPython 3.12.1"}, id="python-version"),
        pytest.param({"packages": ["pulumi==3.201.0", "pulumi-aws==7.1.0"]}, id="pulumi-version"),
        pytest.param({"packages": ["pulumi==3.200.0", "pulumi-aws==7.2.0"]}, id="provider"),
        pytest.param({"pulumi_config": '{"aws:region": "us-east-1"}'}, id="PULUMI_CONFIG"),
    ],
)
def test_the_key_changes_with_every_input(change: dict) -> None:
    assert _key(**change) != _key()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("README.md", id="docs"),
        pytest.param("stacks/Pulumi.fraud-prod.yaml", id="another-stack"),
        pytest.param("platform/__main__.py", id="the-other-project"),
        pytest.param("tooling/cli.py", id="the-cli"),
        pytest.param("tests/tooling/test_diff.py", id="tests"),
    ],
)
def test_the_key_ignores_what_does_not_decide_the_plan(path: str) -> None:
    assert _key(edit=(path, "# changed\n")) == _key()


def test_a_platform_stack_is_keyed_by_the_platform_program() -> None:
    program = ("platform/__main__.py", "# changed\n")
    assert _key("platform/dev", edit=program) != _key("platform/dev")
    assert _key("platform/dev", edit=("__main__.py", "# changed\n")) == _key("platform/dev")
    # The workspace's Pulumi.yaml says where the platform project is.
    assert _key("platform/dev", edit=("Pulumi.yaml", "name: x\n")) != _key("platform/dev")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def test_a_commit_and_its_checkout_have_the_same_keys(tmp_path: Path) -> None:
    for name in ("__main__.py", "Pulumi.yaml", "pyproject.toml", "stacks", "platform"):
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    for name in ("components", "runtime"):
        shutil.copytree(REPOSITORY / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc"))
    (tmp_path / "tooling").mkdir()
    for name in ("plan.py", "mocks.py", "project.py"):
        shutil.copy2(REPOSITORY / "tooling" / name, tmp_path / "tooling" / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")

    stacks = ["fraud-dev", "platform/dev", "nobody-dev"]
    tops = input_tops(stacks)
    committed, checked_out = Tree(tmp_path, "HEAD").blobs(tops), Tree(tmp_path).blobs(tops)

    assert committed == checked_out and "components/serving.py" in committed
    assert [plan_key(committed, s) for s in stacks] == [plan_key(checked_out, s) for s in stacks]
    assert plan_key(committed, "nobody-dev") is None


def test_a_cache_hit_is_exactly_the_fresh_plan(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PlanCache(tmp_path / "cache")
    stacks = ["fraud-dev", "fraud-prod", "nobody-dev"]  # a plan, a config error, no such file

    fresh = plan_stacks({Tree(tree): stacks}, cache=cache)

    assert (cache.hits, cache.misses) == (0, 2)
    assert len(list(cache.folder.glob("*.json.gz"))) == 2

    def no_planning(*args: object, **kwargs: object) -> None:
        raise AssertionError("a warm cache plans nothing")

    monkeypatch.setattr(planner, "plan_trees", no_planning)
    cached = plan_stacks({Tree(tree): stacks}, cache=cache)

    assert (cache.hits, cache.misses) == (2, 2)
    assert cached == fresh
    answers = cached[Tree(tree)]
    assert isinstance(answers["fraud-prod"], str) and answers["nobody-dev"] is None
    assert answers["fraud-dev"] == fresh[Tree(tree)]["fraud-dev"]


def test_the_least_recently_used_go_and_an_entry_cut_short_is_a_miss(tmp_path: Path) -> None:
    cache = PlanCache(tmp_path / "cache", max_entries=1)
    cache.put("a", "an old config error")
    os.utime(cache.folder / "a.json.gz", (1, 1))
    cache.put("b", "a newer config error")
    cache.prune()
    assert [p.name for p in cache.folder.iterdir()] == ["b.json.gz"]
    (cache.folder / "b.json.gz").write_bytes(b"\x1f\x8b\x08")  # a crash while writing
    assert cache.get("b", "fraud-dev") == (False, None)
    assert cache.get("a", "fraud-dev") == (False, None)


def test_the_key_covers_every_file_a_plan_reads() -> None:
    """Plans the platform's and a team's stack in a fresh process, recording each file opened
    under the repository (modules through their sources): every one is an input of its key."""
    script = f"""
import json, sys
from pathlib import Path
root = Path({str(REPOSITORY)!r})
read = set()
def hook(event, args):
    if event == "open" and isinstance(args[0], str):
        path = Path(args[0]).resolve()
        if path.is_relative_to(root) and ".venv" not in path.parts:
            if path.parent.name == "__pycache__":
                path = path.parent.parent / (path.name.split(".")[0] + ".py")
            read.add(path.relative_to(root).as_posix())
from tooling.plan import plan_stack
sys.addaudithook(hook)
found = {{}}
for stack in sys.argv[1:]:
    read.clear()
    plan_stack(stack)
    found[stack] = sorted(read)
print(json.dumps(found))
"""
    run = subprocess.run(
        [sys.executable, "-c", script, "platform/dev", "fraud-dev"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(run.stdout.splitlines()[-1])

    assert "stacks/Pulumi.fraud-dev.yaml" in found["fraud-dev"]
    assert "platform/__main__.py" in found["platform/dev"]
    assert {
        stack: [path for path in read if not plan_cache.is_input(path, stack)]
        for stack, read in found.items()
    } == {"platform/dev": [], "fraud-dev": []}


def _checks(region: str) -> tuple[object, ...]:
    """What the config checks that ask scikit-learn and botocore answer for a few questions."""
    kind, task = EstimatorKind.hist_gradient_boosting, Task.classification
    return (
        list(estimators.parameter_problems(kind, task, {"max_iterz": 100, "max_depth": True})),
        list(estimators.parameter_problems(kind, task, {"max_iter": 100})),
        aws_values.instance_type_problem("m5.lage"),
        aws_values.shape("eks", "AMITypes"),
        aws_values.region_problem(region),
    )


def _cold() -> None:
    """The sources' functools caches emptied, as in a fresh process."""
    for cached in (aws_values.regions, aws_values.instance_types, aws_values.ami_types):
        cached.cache_clear()


def test_the_config_checks_answer_from_the_cache_as_their_sources_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cold()
    asked = _checks("eu-wets-1")
    cache = PlanCache(tmp_path / "cache")
    with cache.answers():
        _cold()
        assert _checks("eu-wets-1") == asked
    assert estimators.answers is None and aws_values.known is None  # only while inside

    def no_source(*args: object) -> None:
        raise AssertionError("asked scikit-learn or botocore again")

    monkeypatch.setattr(estimators, "_parameter_problems", no_source)
    monkeypatch.setattr(aws_values, "service_model", no_source)
    monkeypatch.setattr(aws_values, "_loader", no_source)
    with PlanCache(tmp_path / "cache").answers():  # another process, the same folder
        _cold()
        assert _checks("eu-wets-1") == asked
    _cold()


def test_the_config_checks_answers_are_kept_by_environment_and_by_the_code_that_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PlanCache(tmp_path / "cache")

    def stored() -> set[str]:
        with cache.answers():
            list(
                estimators.parameter_problems(
                    EstimatorKind.random_forest, Task.regression, {"n_jobs": 2}
                )
            )
        return {p.name for p in cache.folder.glob("answers-*.json")}

    first = stored()
    assert len(first) == 1 and stored() == first
    monkeypatch.setattr(plan_cache, "environment", lambda: "scikit-learn==0.0.1")
    other_environment = stored() - first
    changed = tmp_path / "estimators.py"
    changed.write_bytes(Path(estimators.__file__).read_bytes() + b"# changed\n")
    monkeypatch.setattr(estimators, "__file__", str(changed))
    other_code = stored() - first - other_environment
    assert len(other_environment) == 1 and len(other_code) == 1
