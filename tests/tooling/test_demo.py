"""`mlops demo`: the whole platform on the embedded default, end to end (a real server process)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.settings import Settings
from tooling.cli import app
from tooling.demo import DRIFT, ENDPOINT, demo_settings, server_env

DRIFTED = {*DRIFT, "share_foreign_7d"}


def test_server_env_is_the_contract_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_METRICS_SINK", "cloudwatch")  # a stray setting must not leak in
    settings = demo_settings(tmp_path / "home", 18080)
    env = server_env(settings)
    assert env["MLOPS_HOME"] == str((tmp_path / "home").resolve())
    assert env["MLOPS_PORT"] == "18080"
    assert "MLOPS_METRICS_SINK" not in env
    for name in list(env):
        if not name.startswith("MLOPS_"):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    served = Settings()
    assert served.endpoint is not None and served.endpoint.name == ENDPOINT
    assert served.pipelines == settings.pipelines


@pytest.mark.slow
def test_demo_end_to_end_shows_the_drift(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--home", str(home)])
    assert result.exit_code == 0, result.output

    report = Path(re.search(r"drift report : (\S+\.html)", result.output).group(1))  # type: ignore[union-attr]
    assert report.exists() and report.is_relative_to(home.resolve() / "reports" / ENDPOINT)
    page = report.read_text()
    verdicts = dict(
        re.findall(r"<tr><td>([a-z_0-9]+)</td>.*?class='verdict'[^>]*>(\w+)</span>", page)
    )
    assert {name for name, verdict in verdicts.items() if verdict == "drift"} == DRIFTED
    assert verdicts["txn_count_7d"] != "drift"
    metrics = [
        json.loads(line) for line in (home / "metrics" / "metrics.jsonl").read_text().splitlines()
    ]
    psi = {
        m["dimensions"]["Feature"]: m["value"] for m in metrics if m["metric"] == "FeatureDriftPSI"
    }
    assert {name for name, value in psi.items() if value >= 0.2} == DRIFTED
    assert "mlflow ui --backend-store-uri sqlite:///" in result.output
    assert (home / "mlflow.db").exists()
