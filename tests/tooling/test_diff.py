"""`mlops diff` in a temporary git repository: each kind of change yields exactly its diff."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPOSITORY as ROOT
from tooling import diff_report, plan_cache, planner
from tooling.diff import Op, PropertyChange, ResourceChange, StackDiff, changed_stacks, flatten
from tooling.diff import diff_stacks as fresh_diff_stacks
from tooling.plan_cache import PlanCache

COPIED = (
    ".gitignore",
    "__main__.py",
    "Pulumi.yaml",
    "pyproject.toml",
    "components",
    "runtime",
    "tooling",
    "stacks",
    "platform",
)


def diff_stacks(base: str, stacks: list[str] | None = None, *, repo: Path, **options):
    """`mlops diff` through the copy's plan cache (kept while the copy lives: ignored by git):
    the base side, the same in every test, is planned once per stack."""
    cache = PlanCache(repo / plan_cache.FOLDER)
    return fresh_diff_stacks(base, stacks or [], repo=repo, cache=cache, **options)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project, committed once; each test edits the working tree."""
    folder = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, folder / name, ignore=shutil.ignore_patterns("__pycache__", ".mlops")
            )
        else:
            shutil.copy2(source, folder / name)
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", ".")
    _git(
        folder, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base"
    )
    yield folder


@pytest.fixture
def clean(repo: Path) -> Iterator[Path]:
    yield repo
    _git(repo, "checkout", "-q", "--", ".")
    _git(repo, "clean", "-qfd")


def _edit(repo: Path, stack: str, edit) -> None:
    file = repo / "stacks" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(file.read_text())
    edit(document["config"])
    file.write_text(yaml.safe_dump(document, sort_keys=False))


def _ops(diff: StackDiff) -> list[tuple[str, str, str]]:
    return [(c.op.value, c.type, c.name) for c in diff.changes]


def test_an_untouched_tree_says_no_changes_for_every_stack(clean: Path) -> None:
    assert changed_stacks("HEAD", clean) == []
    diffs = diff_stacks("HEAD", repo=clean)

    stacks = [
        f"{prefix}{p.name.split('.')[1]}"
        for prefix in ("", "platform/")
        for p in sorted((clean / prefix / "stacks").glob("Pulumi.*.yaml"))
    ]
    assert "fraud-dev" in stacks and "platform/dev" in stacks
    assert diffs == [StackDiff(stack, planned=False) for stack in stacks]
    assert diff_report.text(diffs).splitlines() == [
        f"== {stack}: no changes (nothing it is built from changed)" for stack in stacks
    ]


def test_a_changed_json_document_shows_only_the_paths_that_changed() -> None:
    def policy(resource: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
                        "Resource": [
                            "arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card_profile",
                            resource,
                        ],
                    }
                ],
            }
        )

    change = ResourceChange(
        Op.UPDATE,
        "urn:pulumi:fraud-dev::mlops::aws:iam/rolePolicy:RolePolicy::serving-policy",
        "aws:iam/rolePolicy:RolePolicy",
        "serving-policy",
        (
            PropertyChange(
                "policy",
                policy("arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card_txn_stats"),
                policy("arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.merchant_stats"),
            ),
            PropertyChange("name", "serving", "scoring"),
        ),
    )

    text = diff_report.text([StackDiff("fraud-dev", [change])])

    assert text.splitlines() == [
        "== fraud-dev: 1 to update",
        "~ aws:iam/rolePolicy:RolePolicy serving-policy",
        "    policy.Statement[0].Resource[1]: arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card_txn_stats => "
        "arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.merchant_stats",
        "    name: serving => scoring",
    ]
    assert text.count("policy.") == 1 and "```diff" in diff_report.markdown(
        [StackDiff("fraud-dev", [change])], base="main"
    )


def test_a_schedule_change_is_one_update(clean: Path) -> None:
    _edit(
        clean,
        "fraud-dev",
        lambda c: c["mlops:featureStore"].update(materialization={"schedule": "*/15 * * * *"}),
    )

    assert changed_stacks("HEAD", clean) == ["fraud-dev"]
    [diff] = diff_stacks("HEAD", repo=clean)

    # The job's schedule, and what is derived from it: freshness alarms at 2 x the period.
    assert _ops(diff) == [
        ("update", "kubernetes:batch/v1:CronJob", "features-materialize"),
        ("update", "aws:cloudwatch/dashboard:Dashboard", "monitoring-dashboard"),
        (
            "update",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "monitoring-features-card_profile-freshness",
        ),
        (
            "update",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "monitoring-features-card_txn_stats-freshness",
        ),
    ]
    assert diff.changes[0].properties == (
        PropertyChange("spec.jobTemplate.spec.activeDeadlineSeconds", 3600.0, 900.0),
        PropertyChange("spec.schedule", "0 * * * *", "*/15 * * * *"),
    )
    threshold = [p for p in diff.changes[2].properties if p.path == "threshold"]
    assert threshold == [PropertyChange("threshold", 7200.0, 1800.0)]


def test_a_diff_from_the_cache_is_the_fresh_diff(clean: Path) -> None:
    _edit(
        clean,
        "fraud-dev",
        lambda c: c["mlops:training"]["pipelines"][0].update(schedule="0 5 * * *"),
    )
    cache = PlanCache(clean / plan_cache.FOLDER)

    cached = fresh_diff_stacks("HEAD", repo=clean, cache=cache)
    again = fresh_diff_stacks("HEAD", repo=clean, cache=cache)

    assert cached == again == fresh_diff_stacks("HEAD", repo=clean, jobs=1)
    assert cache.hits >= 2 and [d.stack for d in cached] == ["fraud-dev"] and cached[0].changes


def test_a_config_change_plans_its_stack_once_its_base_from_the_cache(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PlanCache(clean / plan_cache.FOLDER)
    _edit(
        clean, "fraud-dev", lambda c: c["mlops:serving"]["endpoints"][0]["replicas"].update(max=5)
    )
    fresh_diff_stacks("HEAD", repo=clean, cache=cache)  # the base side is in the cache now
    _edit(
        clean, "fraud-dev", lambda c: c["mlops:serving"]["endpoints"][0]["replicas"].update(max=6)
    )
    planned: list[tuple[Path, list[str]]] = []
    plan_trees = planner.plan_trees

    def recorded(work: dict[Path, list[str]], **options: Any) -> Any:
        planned.extend((folder, list(stacks)) for folder, stacks in work.items())
        return plan_trees(work, **options)

    monkeypatch.setattr(planner, "plan_trees", recorded)
    diffs = fresh_diff_stacks("HEAD", repo=clean, cache=cache)

    assert planned == [(clean, ["fraud-dev"])]  # the working tree's, not the commit's copy
    assert [d.stack for d in diffs] == ["fraud-dev"]
    assert [(c.op, c.name) for c in diffs[0].changes] == [(Op.UPDATE, "endpoint-scorer-hpa")]


def test_a_config_change_on_a_commit_of_this_code_plans_both_sides_here_as_workers_would(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(
        clean, "fraud-dev", lambda c: c["mlops:serving"]["endpoints"][0]["replicas"].update(max=7)
    )
    platform = clean / "platform" / "stacks" / "Pulumi.dev.yaml"
    document = yaml.safe_load(platform.read_text())
    document["config"]["platform:tags"]["reviewed-by"] = "platform-team"
    platform.write_text(yaml.safe_dump(document, sort_keys=False))
    by_workers = fresh_diff_stacks("HEAD", repo=clean)  # run from elsewhere: workers plan both

    # Run from the repository, whose code this is (the copy's code is this process's code).
    monkeypatch.setattr(planner, "OWN_CODE", clean)
    monkeypatch.chdir(clean)

    def no_worker(folder: Path) -> None:
        raise AssertionError(f"a worker was started in {folder}")

    monkeypatch.setattr(planner, "_Worker", no_worker)
    here = fresh_diff_stacks("HEAD", repo=clean)

    assert [d.stack for d in here] == ["fraud-dev", "platform/dev"]
    assert here == by_workers
    assert [(c.op, c.name) for c in here[0].changes] == [(Op.UPDATE, "endpoint-scorer-hpa")]


def test_renaming_the_feast_project_replaces_the_tables_loudly(clean: Path) -> None:
    _edit(clean, "fraud-prod", lambda c: c["mlops:featureStore"].update(project="fraud_v2"))

    [diff] = diff_stacks("HEAD", repo=clean)

    tables = [c for c in diff.changes if c.type == "aws:dynamodb/table:Table"]
    assert [(c.op, c.name, c.replaced_by, c.dangerous) for c in tables] == [
        (Op.REPLACE, "features-online-card_profile", ("name",), True),
        (Op.REPLACE, "features-online-card_txn_stats", ("name",), True),
    ]
    assert diff.changes[: len(tables)] == tables  # dangerous changes come first
    comment = diff_report.markdown([diff], base="main")
    assert (
        "[!CAUTION]" in comment
        and "replace `aws:dynamodb/table:Table` **features-online-card_profile**" in comment
    )


def test_adding_and_removing_an_endpoint(clean: Path) -> None:
    def add(config: dict) -> None:
        endpoint = dict(config["mlops:serving"]["endpoints"][0], name="scorer-eu")
        config["mlops:serving"]["endpoints"].append(endpoint)

    _edit(clean, "fraud-dev", add)
    _edit(clean, "forecasting-dev", lambda c: c.pop("mlops:serving"))

    diffs = {d.stack: d for d in diff_stacks("HEAD", repo=clean)}

    assert sorted(diffs) == ["forecasting-dev", "fraud-dev"]
    added = diffs["fraud-dev"]
    # Beside its own resources: a dashboard row, and the drift monitor may read its log.
    assert [change for change in _ops(added) if change[0] != "create"] == [
        ("update", "aws:cloudwatch/dashboard:Dashboard", "monitoring-dashboard"),
        ("update", "aws:iam/rolePolicy:RolePolicy", "monitoring-drift-identity-policy"),
    ]
    assert ("create", "kubernetes:apps/v1:Deployment", "endpoint-scorer-eu-deployment") in _ops(
        added
    )
    removed = diffs["forecasting-dev"]
    assert ("delete", "kubernetes:apps/v1:Deployment", "endpoint-demand-api-deployment") in _ops(
        removed
    )
    assert not removed.dangerous


def test_reordering_and_cosmetic_edits_change_nothing(clean: Path) -> None:
    def reorder(config: dict) -> None:
        store = config["mlops:featureStore"]
        store["featureViews"].reverse()
        store["featureViews"][0]["features"] = dict(
            reversed(store["featureViews"][0]["features"].items())
        )
        config["mlops:training"]["nodePools"].reverse()

    _edit(clean, "fraud-prod", reorder)
    file = clean / "stacks" / "Pulumi.fraud-prod.yaml"
    file.write_text(
        "# reviewed by the platform team\n" + file.read_text().replace("config:\n", "config:   \n")
    )

    [diff] = diff_stacks("HEAD", repo=clean)

    assert diff.changes == []


def test_a_component_moved_to_a_new_type_keeps_its_resources_through_aliases(clean: Path) -> None:
    source = (clean / "components" / "namespace.py").read_text()
    renamed = source.replace(
        'super().__init__("mlops:team:TeamNamespace", name, None, opts)',
        'super().__init__("mlops:kubernetes:TeamNamespace", name, None, pulumi.ResourceOptions.merge(\n'
        '            opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="mlops:team:TeamNamespace")])))',
    )
    assert renamed != source
    (clean / "components" / "namespace.py").write_text(renamed)

    assert "fraud-dev" in changed_stacks("HEAD", clean)  # code changed: every stack
    [diff] = diff_stacks("HEAD", ["fraud-dev"], repo=clean)

    assert diff.changes and {c.op for c in diff.changes} == {Op.UPDATE}
    assert all(
        c.previous_urn and "mlops:team:TeamNamespace" in c.previous_urn for c in diff.changes
    )
    assert all(not c.properties for c in diff.changes)


def test_markdown_fits_one_github_comment_however_big_the_diff() -> None:
    huge = [
        StackDiff(
            f"team{i}-prod",
            [
                ResourceChange(
                    Op.UPDATE,
                    f"urn:pulumi:s::mlops::t::r{j}",
                    "aws:cloudwatch/metricAlarm:MetricAlarm",
                    f"alarm-{j}",
                    (PropertyChange("alarmDescription", "x" * 50, "y" * 50),),
                )
                for j in range(400)
            ],
        )
        for i in range(20)
    ]

    comment = diff_report.markdown(huge, base="main")

    assert len(comment) <= diff_report.GITHUB_COMMENT_LIMIT
    assert comment.startswith(diff_report.MARKER)
    assert comment.count("| `team") == 20  # the summary table is always whole
    assert "more stack section(s) not shown" in comment
    assert comment.count("<details>") == comment.count("</details>")


def test_a_code_change_that_breaks_a_policy_is_reported_on_every_stack(clean: Path) -> None:
    from tooling.cli import _policy_lines

    workload = clean / "components" / "workload.py"
    workload.write_text(
        workload.read_text().replace(
            "read_only_root_filesystem=True", "read_only_root_filesystem=False"
        )
    )

    diffs = diff_stacks("HEAD", ["fraud-dev"], repo=clean, policy=_policy_lines)

    [diff] = diffs
    # Updates in place, but a Job (the database bootstrap): its pod template is immutable.
    assert diff.changes and all(
        c.op == (Op.REPLACE if c.type == "kubernetes:batch/v1:Job" else Op.UPDATE)
        for c in diff.changes
    )
    assert diff.violations and all(
        v.startswith("k8s-read-only-root-filesystem on ") for v in diff.violations
    )
    assert "| `fraud-dev` |" in diff_report.markdown(diffs, base="main")
    assert f"{len(diff.violations)} violation(s)" in diff_report.markdown(diffs, base="main")


def test_a_bigger_database_shows_its_cost_delta_and_the_budget(clean: Path) -> None:
    from tooling.cost import diff_cost

    def grow(config: dict) -> None:
        config["mlops:registry"] = {"database": {"instanceClass": "db.t4g.medium"}}
        config["mlops:budget"] = {"monthlyUsd": 10_000}

    _edit(clean, "fraud-dev", grow)

    [diff] = diff_stacks("HEAD", ["fraud-dev"], repo=clean, cost=diff_cost)

    assert diff.cost is not None
    # eu-west-1 RDS for PostgreSQL: db.t4g.micro $0.018/h -> db.t4g.medium $0.072/h, 730 h
    assert [(c.name, round(c.after - c.before, 2)) for c in diff.cost.resources] == [
        ("registry-db", round((0.072 - 0.018) * 730, 2))
    ]
    assert round(diff.cost.delta, 2) == 39.42
    assert diff.cost.budget is not None and diff.cost.budget.monthly_usd == 10_000
    comment = diff_report.markdown([diff], base="main")
    row = next(line for line in comment.splitlines() if line.startswith("| `fraud-dev`"))
    assert row.endswith("(+$39.42) | within |")
    # the database's line: instance + 20 GB gp3 at $0.127 + $0.40 for the managed password
    before, after = 0.018 * 730 + 20 * 0.127 + 0.40, 0.072 * 730 + 20 * 0.127 + 0.40
    assert (
        f"$ cost registry-db (aws:rds/instance:Instance): ${before:.2f} → ${after:.2f} (+$39.42)"
        in comment
    )
    figures = json.loads(diff_report.as_json([diff]))[0]["cost"]
    assert (figures["delta"], figures["resources"][0]["after"]) == (39.42, round(after, 2))
    assert figures["budget"]["monthlyUsd"] == 10_000


def test_platform_stacks_are_diffed_on_their_own(clean: Path) -> None:
    file = clean / "platform" / "stacks" / "Pulumi.dev.yaml"
    document = yaml.safe_load(file.read_text())
    document["config"]["platform:systemNodes"] = {"maxSize": 5}
    file.write_text(yaml.safe_dump(document, sort_keys=False))

    assert changed_stacks("HEAD", clean) == ["platform/dev"]
    [diff] = diff_stacks("HEAD", repo=clean)

    assert diff.stack == "platform/dev" and not diff.error and not diff.violations
    assert _ops(diff) == [("update", "aws:eks/nodeGroup:NodeGroup", "cluster-system")]
    assert diff.changes[0].properties == (PropertyChange("scalingConfig.maxSize", 3, 5),)


def test_platform_code_changes_only_platform_stacks(clean: Path) -> None:
    network = clean / "components" / "platform" / "network.py"
    network.write_text(network.read_text() + "\n# a comment\n")
    every_platform_stack = sorted(
        f"platform/{file.name.removeprefix('Pulumi.').removesuffix('.yaml')}"
        for file in (clean / "platform" / "stacks").glob("Pulumi.*.yaml")
    )
    assert changed_stacks("HEAD", clean) == every_platform_stack
    assert len(every_platform_stack) >= 2

    iam = clean / "components" / "iam.py"
    iam.write_text(iam.read_text() + "\n# a comment\n")
    assert {"fraud-dev", "platform/prod"} <= set(changed_stacks("HEAD", clean))


def test_a_broken_config_shows_the_problems_validate_shows(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tooling.cli import app

    _edit(clean, "fraud-dev", lambda c: c["mlops:serving"]["endpoints"][0].update(model="nobody"))
    monkeypatch.chdir(clean)

    result = CliRunner().invoke(app, ["diff", "--base", "HEAD"])

    assert (result.exit_code, result.stdout.splitlines()) == (
        1,
        [
            "== fraud-dev: ERROR",
            "stacks/Pulumi.fraud-dev.yaml: mlops:serving.endpoints[0].model: should be a model a "
            "training pipeline produces or listed in mlops:serving.externalModels "
            "(one of 'fraud-model') (got 'nobody')",
        ],
    )


def test_named_list_entries_are_compared_by_name_not_position() -> None:
    env = [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    before = {"containers": [{"name": "serve", "env": env}], "args": ["x", "y"]}
    after = copy.deepcopy(before)
    after["containers"][0]["env"].insert(0, {"name": "A", "value": "1"})
    after["args"].insert(0, "w")

    old, new = dict(flatten(before)), dict(flatten(after))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    # One env entry added is one entry in the diff; plain lists still compare by position.
    assert changed == [
        "args[0]",
        "args[1]",
        "args[2]",
        "containers[serve].env[A].name",
        "containers[serve].env[A].value",
    ]
    duplicates = [{"name": "x", "v": 1}, {"name": "x", "v": 2}]
    assert dict(flatten({"l": duplicates})) == {
        "l[0].name": "x",
        "l[0].v": 1,
        "l[1].name": "x",
        "l[1].v": 2,
    }
