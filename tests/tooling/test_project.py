"""The CLI works on the project it stands in: the nearest Pulumi.yaml above the working folder
(or `-C DIR`), never the tree it was installed from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPOSITORY
from tooling.cli import app
from tooling.project import ProjectNotFound, Workspace, find_workspace

PROJECT_FILES = (
    "Pulumi.yaml",
    "__main__.py",
    "stacks",
    "platform/Pulumi.yaml",
    "platform/__main__.py",
    "platform/stacks",
)
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"

runner = CliRunner()


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's project files in tmp_path: fraud-dev's GPU pool grown to 7 nodes, a
    stack only the copy has. The working folder is restored afterwards (-C changes it)."""
    monkeypatch.chdir(REPOSITORY)
    folder = tmp_path / "copy"
    for name in PROJECT_FILES:
        source, target = REPOSITORY / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    fraud = folder / "stacks" / "Pulumi.fraud-dev.yaml"
    text = fraud.read_text()
    assert text.count("maxNodes: 1}") == 1
    fraud.write_text(text.replace("maxNodes: 1}", "maxNodes: 7}"))
    only_here = yaml.safe_load(text)
    only_here["config"]["mlops:team"] = "copied"
    (folder / "stacks" / "Pulumi.copied-dev.yaml").write_text(yaml.safe_dump(only_here))
    return folder


def _gpu_pool_max(result_stdout: str) -> int:
    steps = json.loads(result_stdout)["steps"]
    [gpu] = [
        s["newState"]["inputs"]
        for s in steps
        if s["newState"]["type"] == NODE_GROUP and s["urn"].endswith("-gpu")
    ]
    return int(gpu["scalingConfig"]["maxSize"])


@pytest.mark.parametrize(
    "start",
    [
        pytest.param("", id="root"),
        pytest.param("stacks", id="stack-folder"),
        pytest.param("platform", id="platform-project"),
        pytest.param("platform/stacks", id="platform-stack-folder"),
    ],
)
def test_the_workspace_is_found_from_any_folder_of_the_project(copy: Path, start: str) -> None:
    workspace = find_workspace(copy / start)

    assert workspace == Workspace(copy.resolve())
    assert [p.name for p in workspace.projects()] == ["mlops", "mlops-platform"]
    assert workspace.stacks == copy.resolve() / "stacks"
    assert workspace.stacks_of("platform") == copy.resolve() / "platform" / "stacks"


def test_no_project_above_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match=f"no Pulumi.yaml in {tmp_path} or any folder"):
        find_workspace(tmp_path)


def test_plan_with_cwd_option_plans_the_copy(copy: Path) -> None:
    result = runner.invoke(app, ["-C", str(copy), "plan", "fraud-dev", "--json"])

    assert result.exit_code == 0, result.output
    assert _gpu_pool_max(result.stdout) == 7  # the install tree says 1
    assert f"project: mlops at {copy.resolve()}" in result.stderr


def test_plan_from_a_folder_of_the_copy_plans_the_copy(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy / "stacks")

    result = runner.invoke(app, ["plan", "copied-dev", "--json"])

    assert result.exit_code == 0, result.output
    urns = [step["urn"] for step in json.loads(result.stdout)["steps"]]
    assert any("copied-dev" in urn for urn in urns)
    assert f"project: mlops at {copy.resolve()}" in result.stderr


def test_validate_lists_the_copys_stacks_and_says_which_projects(copy: Path) -> None:
    result = runner.invoke(app, ["-C", str(copy), "validate"])

    assert result.exit_code == 0, result.output
    assert "✓ stacks/Pulumi.copied-dev.yaml" in result.stdout
    assert "✓ platform/stacks/Pulumi.prod.yaml" in result.stdout
    assert result.stderr.splitlines()[0] == (  # in the order of the files (platform first)
        f"projects: mlops-platform at {copy.resolve() / 'platform'}, mlops at {copy.resolve()}"
    )


def test_a_platform_stack_is_named_from_the_root_and_from_inside_the_platform(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy)
    result = runner.invoke(app, ["validate", "platform/prod", "fraud-dev"])
    assert (result.exit_code, result.stdout.count("✓")) == (0, 2), result.output

    monkeypatch.chdir(copy / "platform")
    result = runner.invoke(app, ["validate", "platform/prod"])
    assert (result.exit_code, result.stdout) == (0, "✓ stacks/Pulumi.prod.yaml\n")
    # Inside platform/ a bare name is a stack of the platform project, as for `pulumi -s`.
    result = runner.invoke(app, ["validate", "prod"])
    assert (result.exit_code, result.stdout) == (0, "✓ stacks/Pulumi.prod.yaml\n")
    assert result.stderr == f"project: mlops-platform at {copy.resolve() / 'platform'}\n"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["validate"], id="validate"),
        pytest.param(["plan", "fraud-dev"], id="plan"),
        pytest.param(["policy"], id="policy"),
        pytest.param(["cost"], id="cost"),
        pytest.param(["diff", "--base", "HEAD"], id="diff"),
        pytest.param(["rehearse", "--down"], id="rehearse"),
    ],
)
def test_outside_any_project_is_a_clear_error(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPOSITORY)

    result = runner.invoke(app, ["-C", str(tmp_path), *command])

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"✗ no Pulumi.yaml in {tmp_path} or any folder above it: run mlops inside a Pulumi "
        "project, or point at one with -C/--cwd DIR"
    ]
