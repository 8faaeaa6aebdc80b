"""The runtime never imports the IaC half, and its contract stays light for the IaC half."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
import {modules}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(",".join(heavy))
"""


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        pytest.param(
            "runtime.cli, runtime.train, runtime.features, runtime.registry, runtime.online_store",
            {"pulumi", "pulumi_aws", "pulumi_kubernetes", "components", "tooling"},
            id="runtime-without-iac",
        ),
        pytest.param(
            "runtime, runtime.settings, runtime.spec, runtime.metrics, runtime.feast_config",
            {"feast", "mlflow", "sklearn", "pandas", "pulumi"},
            id="contract-is-light",
        ),
    ],
)
def test_imports_stay_in_their_layer(modules: str, forbidden: set[str]) -> None:
    found = subprocess.run(
        [sys.executable, "-c", CHECK.format(modules=modules, forbidden=forbidden)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    assert found == ""
