"""A healthy serving host, on this machine: `mlops-runtime serve` on the embedded default with a
demo model, started by the suite as an unprivileged user, checked with testinfra's local backend.

    pytest tests/infra/test_serving_host.py

(The same checks against a rehearsed pod or a cluster's: tests/infra/test_rehearsal.py.)
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra

from tests.runtime.test_serve_support import (
    ROW,
    endpoint_settings,
    free_port,
    register_demo_model,
    running_server,
    settings_env,
)

SERVICE_USER = "nobody"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|API_?KEY|ACCESS_KEY", re.I)
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|://[^/\s:@]+:[^/\s@]+@")


@dataclass(frozen=True)
class Served:
    host: Any
    pid: int
    port: int
    home: Path
    python: str


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    if request.config.getoption("hosts", None):
        pytest.skip("checks this machine's own server; a pod is checked by test_rehearsal.py")
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("starting the server as another user needs root and setpriv")
    user = pwd.getpwnam(SERVICE_USER)
    # pytest's tmp folders are private to root; the service user must reach its home.
    root = Path(tempfile.mkdtemp(prefix="mlops-serving-host-"))
    root.chmod(0o755)
    home = root / "home"
    port = free_port()
    settings = endpoint_settings(home).model_copy(update={"port": port})
    register_demo_model(settings)
    for path in [home, *home.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    # What a pod gets: the contract's env, no cloud credentials.
    env = {k: v for k, v in settings_env(settings).items() if not k.startswith("AWS_")} | {
        "HOME": str(home)
    }
    command = [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        str(Path(sys.executable).parent / "mlops-runtime"),
        "serve",
        "--host",
        "127.0.0.1",
    ]
    try:
        with running_server(env, port, timeout=240, command=command) as process:
            yield Served(testinfra.get_host("local://"), process.pid, port, home, sys.executable)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_runs_as_a_non_root_user(served: Served) -> None:
    status = served.host.file(f"/proc/{served.pid}/status").content_string
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
    assert uids is not None
    assert set(uids.group(1).split()) == {str(pwd.getpwnam(SERVICE_USER).pw_uid)}
    assert "mlops-runtime serve" in served.host.process.get(pid=served.pid).args


def test_listens_on_its_port(served: Served) -> None:
    assert served.host.socket(f"tcp://127.0.0.1:{served.port}").is_listening


def test_ping_answers_and_predicts(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}"
    assert httpx.get(f"{base}/ping").status_code == 200
    answer = httpx.post(f"{base}/invocations", json={"instances": [ROW]})
    assert answer.status_code == 200
    assert answer.json()["version"] == "1"


def test_log_folder_is_writable_by_the_service_user(served: Served) -> None:
    folder = served.host.file(str(served.home))
    assert folder.is_directory
    assert folder.user == SERVICE_USER
    probe = served.host.run(
        "setpriv --reuid=%s --regid=%s --clear-groups sh -c %s",
        SERVICE_USER,
        "nogroup",
        f"mkdir -p {served.home}/prediction-log && touch {served.home}/prediction-log/.probe",
    )
    assert probe.rc == 0, probe.stderr


def test_runtime_package_is_importable(served: Served) -> None:
    result = served.host.run(
        "%s -c %s", served.python, "import runtime.serving, runtime.prediction_log"
    )
    assert result.rc == 0, result.stderr


def test_no_secrets_in_its_environment(served: Served) -> None:
    raw = served.host.file(f"/proc/{served.pid}/environ").content
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    assert env["MLOPS_PORT"] == str(served.port)
    assert not [name for name in env if SECRET_NAME.search(name)]
    assert not [name for name, value in env.items() if SECRET_VALUE.search(value)]
    assert json.loads(env["MLOPS_ENDPOINT"])["name"] == "scorer"
