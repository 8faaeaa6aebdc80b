"""`mlops demo`: the whole platform on the embedded default, end to end (a real server process)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from runtime.settings import Settings
from tests.runtime.test_serve_support import free_port, running_server
from tooling.cli import app
from tooling.demo import DRIFT, ENDPOINT, RUNTIME_ENV, demo_settings, server_env

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
    assert f"mlops-runtime --env-file {home.resolve() / RUNTIME_ENV} serve" in result.output
    _serve_the_demo(home)


@pytest.mark.slow
def test_demo_loop_retrains_on_drift_and_promotes_the_canary(tmp_path: Path) -> None:
    from runtime import events, registry
    from tooling.demo import demo_settings

    home = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--loop", "--home", str(home)])
    assert result.exit_code == 0, result.output

    output = result.output
    for line in (
        "monitor window 1",
        "monitor window 3",
        "mlops-runtime train --if-due",
        "retrained (drift): version 2 is the challenger",
        "canary: the server takes v2 as challenger",
        "promoted version 2: ",
        "serving follows the promotion",
    ):
        assert line in output, line
    assert re.search(r"monitor window 1 .*: calm", output)
    assert re.search(r"monitor window 3 .*: drift", output)
    settings = demo_settings(home, 8080, loop=True)
    client = registry.client(settings)
    assert str(registry.alias_version(client, "fraud-model", registry.CHAMPION).version) == "2"
    assert [str(e.kind) for e in events.read(settings, "fraud-model")] == [
        "triggered",
        "trained",
        "canary-started",
        "promoted",
    ]
    report = Path(re.search(r"drift report : (\S+\.html)", output).group(1))  # type: ignore[union-attr]
    page = report.read_text()
    assert "<h2>Continuous training</h2>" in page and "<td>promoted</td>" in page
    seconds = float(re.search(r"Done in (\d+)s", output).group(1))  # type: ignore[union-attr]
    print(f"mlops demo --loop: {seconds:.0f}s")


def _serve_the_demo(home: Path) -> None:
    """The README's way to serve the demo's model, and the README's request."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["MLOPS_PORT"] = str(port)  # the process env wins over the file's default port
    command = [
        str(Path(sys.executable).parent / "mlops-runtime"),
        "--env-file",
        str(home / RUNTIME_ENV),
        "serve",
        "--host",
        "127.0.0.1",
    ]
    with running_server(env, port, timeout=300, command=command) as process:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict",
            headers={"content-type": "application/json"},
            content='{"rows": [{"card_id": 7}]}',
            timeout=60,
        )
        process.terminate()
        process.wait(timeout=60)
        log = process.stdout.read()

    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == "1"
    started = next(line for line in log.splitlines() if "serving endpoint scorer" in line)
    assert started.startswith("INFO:")
    assert f"http://127.0.0.1:{port}" in started
    assert f"home {home.resolve()}" in started
    assert f"tracking URI sqlite:///{home.resolve() / 'mlflow.db'}" in started
    assert "INFO:runtime.serving.holder:serving fraud-model version 1 as champion (" in log
