"""Many stacks planned in worker processes: the same plans as one at a time, whatever the order."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_STACKS, PLATFORM_STACKS, REPOSITORY, planned
from tooling import planner
from tooling.plan import Plan
from tooling.planner import PlanningError, plan_trees

EVERY_STACK = [
    *(f"platform/{p.name.split('.')[1]}" for p in sorted(PLATFORM_STACKS.glob("Pulumi.*.yaml"))),
    *EXAMPLE_STACKS,
]


def test_parallel_planning_gives_the_serial_plans_and_each_plan_stands_alone() -> None:
    serial = plan_trees({REPOSITORY: EVERY_STACK}, jobs=1)[REPOSITORY]
    parallel = plan_trees({REPOSITORY: EVERY_STACK}, jobs=2)[REPOSITORY]
    # The last stack one worker planned came after every other one, platform stacks included.
    last = EVERY_STACK[-1]
    alone = plan_trees({REPOSITORY: [last]}, jobs=1)[REPOSITORY]

    assert list(serial) != [] and set(serial) == set(EVERY_STACK)
    assert parallel == serial
    assert alone[last] == serial[last]
    # ... and what a worker answers is what `plan_stack` gives in this process.
    answer = serial[last]
    assert isinstance(answer, Plan) and answer.preview_json() == planned(last).preview_json()


def test_a_worker_answers_a_plan_a_config_error_or_no_such_stack(tree: Path) -> None:
    answers = plan_trees({tree: ["fraud-dev", "fraud-prod", "nobody-dev"]}, jobs=1)[tree]

    fresh = planned("fraud-dev")
    assert answers["fraud-dev"] == Plan.from_preview_json("fraud-dev", fresh.preview_json())
    assert answers["fraud-prod"] == (
        "stacks/Pulumi.fraud-prod.yaml: mlops:serving.endpoints[0].replicas.min: should be at "
        "least 2 in prod (an endpoint must survive the loss of a node) (got 1)"
    )
    assert answers["nobody-dev"] is None


def test_a_program_that_crashes_fails_the_planning_with_its_traceback(tree: Path) -> None:
    with pytest.raises(PlanningError, match=r"(?s)planning boom-dev in .* failed:.*a bug in"):
        plan_trees({tree: ["boom-dev"]}, jobs=1)


def test_a_stack_or_two_of_this_code_are_planned_here_as_a_worker_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stacks = ["fraud-dev", "platform/dev", "nobody-dev"]
    by_workers = plan_trees({REPOSITORY: stacks}, jobs=1)[REPOSITORY]

    def no_worker(*args: object) -> None:
        raise AssertionError("a worker was started")

    monkeypatch.chdir(REPOSITORY)
    monkeypatch.setattr(planner, "_Worker", no_worker)
    here = {s: plan_trees({REPOSITORY: [s]})[REPOSITORY][s] for s in stacks}
    assert here == by_workers
    assert isinstance(here["platform/dev"], Plan) and here["nobody-dev"] is None
    # A copy of the code, or more stacks than pay for a worker's imports, go to workers.
    assert not planner._plans_here(planner._Tree(REPOSITORY, deque(["a", "b", "c"])))


def test_workers_keep_the_config_checks_answers_where_this_process_finds_them(
    tmp_path: Path,
) -> None:
    from tooling.plan_cache import PlanCache

    folder = tmp_path / "cache"
    stacks = EXAMPLE_STACKS[: planner.SPAWN_AFTER]  # enough for a worker, not planned here
    plan_trees({REPOSITORY: stacks}, jobs=1, answers=folder)

    # What the workers asked scikit-learn is what this process now answers from the cache.
    [stored] = folder.glob("answers-*.json")
    with PlanCache(folder).answers():
        from runtime import estimators

        assert estimators.answers  # the pipelines' estimator parameters, asked by the workers
        kept = dict(estimators.answers)
    assert json.loads(stored.read_text())["estimators"] == kept
