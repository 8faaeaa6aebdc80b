"""Fixtures of the tooling tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPOSITORY, STACKS


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The project's code, linked, with stack files of its own and a program that crashes for
    the stack `boom-dev` (a bug, not a config error)."""
    for name in ("components", "runtime", "tooling", "Pulumi.yaml", "pyproject.toml"):
        (tmp_path / name).symlink_to(REPOSITORY / name)
    (tmp_path / "program.py").symlink_to(REPOSITORY / "__main__.py")
    (tmp_path / "__main__.py").write_text(
        "import pulumi\n"
        'if pulumi.get_stack() == "boom-dev":\n'
        '    raise RuntimeError("a bug in the program")\n'
        'exec(compile(open("program.py").read(), "program.py", "exec"))\n'
    )
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    good = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    (stacks / "Pulumi.fraud-dev.yaml").write_text(yaml.safe_dump(good))
    good["config"]["mlops:team"] = "boom"
    (stacks / "Pulumi.boom-dev.yaml").write_text(yaml.safe_dump(good))
    broken = yaml.safe_load((STACKS / "Pulumi.fraud-prod.yaml").read_text())
    broken["config"]["mlops:serving"]["endpoints"][0]["replicas"]["min"] = 1
    (stacks / "Pulumi.fraud-prod.yaml").write_text(yaml.safe_dump(broken))
    return tmp_path
