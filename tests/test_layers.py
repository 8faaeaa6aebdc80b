"""The layers of DESIGN.md hold: no import cycle, no import against the direction of the layers.

The contracts live in pyproject.toml (`[tool.importlinter]`); import-linter walks the import
graph of components/, runtime/, tooling/ and policy/ (TYPE_CHECKING imports included).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "runtime", "tooling", "policy")
CONTRACTS = {
    "runtime runs without the IaC half": ("runtime/spec.py", "import pulumi"),
    "components never reach up into the CLI or the policy pack": (
        "components/naming.py",
        "import tooling.plan",
    ),
    "the policy pack stands alone (pure functions over resource properties)": (
        "policy/rules/registry.py",
        "import components.naming",
    ),
    "no import cycle in any package": ("components/team.py", "import components.serving"),
}
"""Each contract, and an import that breaks it."""

LIGHT_CHECK = """
import sys
import {modules}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(",".join(heavy))
"""


def test_imports_follow_the_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(no_cache=True, no_logo=True) == 0  # the report above names each chain


def test_every_contract_catches_the_import_that_breaks_it(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for path, line in CONTRACTS.values():
        with (tmp_path / path).open("a") as module:
            module.write(f"\n{line}\n")

    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    broken = {
        line.removesuffix(" BROKEN") for line in run.stdout.splitlines() if line.endswith(" BROKEN")
    }
    assert broken == set(CONTRACTS)


def test_the_contract_stays_light_for_the_iac_half() -> None:
    """Settings, specs, metrics and the Feast config import no data-science or Pulumi library."""
    modules = "runtime, runtime.settings, runtime.spec, runtime.metrics, runtime.feast_config"
    forbidden = {"feast", "mlflow", "sklearn", "pandas", "pulumi"}
    found = subprocess.run(
        [sys.executable, "-c", LIGHT_CHECK.format(modules=modules, forbidden=forbidden)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    assert found == ""
