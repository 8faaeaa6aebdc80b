"""`mlops demo`: the whole platform on one machine, on the embedded default.

demo data -> materialize (Feast) -> train (gates) -> register -> promote -> serve (a real
`mlops-runtime serve` process) -> normal, then drifted traffic over HTTP -> monitor -> where the
drift report and the MLflow data are. Everything lives under ``--home``; a re-run starts from
the same data, registers and promotes a new version, and monitors only its own traffic.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from runtime.settings import ENV_PREFIX, Settings, env_var, library_env, render_env

DEFAULT_HOME = Path(".mlops/demo")
RUNTIME_ENV = "runtime.env"
"""Written into the demo's home: its settings, for `mlops-runtime --env-file`."""
TEAM = "fraud"
PIPELINE = "fraud-model"
ENDPOINT = "scorer"
DEMO_ROWS = 3000
NORMAL_REQUESTS = 120
DRIFTED_REQUESTS = 80
ONLINE_REQUESTS = 20
"""Requests that send only the entity key: the server reads the features from Feast online."""
ROWS_PER_REQUEST = 5
SERVER_START_SECONDS = 180
DRIFT = {"avg_amount_7d": 3.0, "max_amount_7d": 3.0}
"""Drifted traffic: these features multiplied, ``share_foreign_7d`` shifted up."""
FOREIGN_SHIFT = 0.35
T = TypeVar("T")


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@dataclass
class DemoResult:
    home: Path
    model: str
    version: str
    report: Path
    drifted_features: list[str]
    feature_psi: dict[str, float]
    prediction_psi: float | None
    tracking_uri: str
    requests: int
    seconds: float
    steps: list[tuple[str, float, str]] = field(default_factory=list)


def demo_settings(home: Path, port: int) -> Settings:
    """The fraud team on the embedded default under ``home``, serving ``scorer`` on ``port``."""
    from runtime.demo_data import demo_settings as team_settings
    from runtime.spec import EndpointSpec

    # The demo is self-contained: MLOPS_* variables of the caller's shell must not leak in.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(ENV_PREFIX)}
    try:
        return team_settings(
            TEAM,
            home=home.resolve(),
            port=port,
            endpoint=EndpointSpec(name=ENDPOINT, model=PIPELINE),
        )
    finally:
        os.environ.update(saved)


def run_demo(home: Path = DEFAULT_HOME, *, console: Console | None = None) -> DemoResult:
    """Run every step; raises DemoError with the failing step's reason."""
    console = console or Console()
    started = time.monotonic()
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(home, _free_port())
    write_runtime_env(settings, home / RUNTIME_ENV)
    # The runtime's libraries (MLflow, Feast) read their own env; derive it from the contract.
    os.environ.update(library_env(settings))
    _quiet_libraries()
    steps: list[tuple[str, float, str]] = []
    step = _stepper(console, steps)

    from runtime import registry
    from runtime.demo_data import write_demo_data
    from runtime.features import materialize
    from runtime.train import train

    written = step(
        "demo data", lambda: write_demo_data(settings, TEAM, rows=DEMO_ROWS), _count("files")
    )
    step(
        "materialize features (Feast)",
        lambda: materialize(settings, console=Console(file=open(os.devnull, "w"))),  # noqa: SIM115
        lambda fresh: ", ".join(f"{f.feature_view} up to {f.newest_value:%Y-%m-%d}" for f in fresh),
    )
    trained = step(
        "train, check gates, register",
        lambda: train(settings, PIPELINE),
        lambda r: (
            f"{r.model} v{r.version}: "
            + ", ".join(
                f"{k} {r.metrics[k]:.3f}" for k in ("roc_auc", "fairness_gap") if k in r.metrics
            )
        ),
    )
    promoted = step(
        "promote challenger to champion",
        lambda: registry.promote(settings, trained.model),
        lambda p: f"champion v{p.champion}" + (f" (was v{p.previous})" if p.previous else ""),
    )
    with _server(settings, console, step) as base_url:
        sample = _sample_rows(settings, written)
        traffic_start = datetime.now(UTC)
        sent = _traffic(console, steps, base_url, sample)
    result = step(
        "monitor drift",
        lambda: _monitor(settings, traffic_start),
        lambda r: (
            f"max feature PSI {r.max_feature_psi:.2f}; drifted: "
            + (", ".join(r.drifted_features) or "none")
        ),
    )
    if result.report is None:
        raise DemoError("monitor wrote no report")
    demo = DemoResult(
        home=home,
        model=trained.model,
        version=str(promoted.champion),
        report=result.report,
        drifted_features=result.drifted_features,
        feature_psi={c.column: c.psi for c in result.features},
        prediction_psi=None if result.prediction is None else result.prediction.psi,
        tracking_uri=registry.tracking_uri(settings),
        requests=sent,
        seconds=time.monotonic() - started,
        steps=steps,
    )
    _summary(console, demo, settings)
    return demo


def _stepper(console: Console, steps: list[tuple[str, float, str]]) -> Callable[..., Any]:
    def step(name: str, action: Callable[[], T], describe: Callable[[T], str] | None = None) -> T:
        begun = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            progress.add_task(name)
            try:
                with warnings.catch_warnings():
                    # Libraries imported along the way install their own warning filters.
                    warnings.simplefilter("ignore")
                    value = action()
            except DemoError:
                raise
            except Exception as error:
                console.print(f"[red]✗[/] {name}")
                raise DemoError(f"{name}: {error}") from error
        took = time.monotonic() - begun
        detail = describe(value) if describe else ""
        steps.append((name, took, detail))
        console.print(
            f"[green]✓[/] {name} [dim]({took:.1f}s)[/]" + (f"  {detail}" if detail else ""),
            highlight=False,
        )
        return value

    return step


def _count(what: str) -> Callable[[dict[str, str]], str]:
    return lambda written: f"{len(written)} {what} in the offline store"


def _quiet_libraries() -> None:
    # MLflow sets up its own logging and warnings when imported: import it, then quieten it.
    import mlflow  # noqa: F401

    logging.basicConfig(level=logging.WARNING)
    for name in ("mlflow", "feast", "alembic", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Settings) -> dict[str, str]:
    """This process's env with exactly ``settings`` as MLOPS_* (what a pod would get)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    fields = settings.model_dump(exclude_defaults=True)
    values = {name: getattr(settings, name) for name in fields}
    env |= {k: str(v) for k, v in render_env(**values).items()}
    return env


def write_runtime_env(settings: Settings, path: Path) -> None:
    """The demo's settings as a dotenv file for `mlops-runtime --env-file` (default port)."""
    lines = [
        "# The demo team's runtime settings: mlops-runtime --env-file <this file> serve|monitor|...",
        *(
            # Double-quoted with JSON escapes: what dotenv (and a shell) reads back unchanged.
            f"{name}={json.dumps(value, ensure_ascii=False)}"
            for name, value in server_env(settings).items()
            if name.startswith(ENV_PREFIX) and name != env_var("port")
        ),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _runtime_command() -> list[str]:
    script = Path(sys.executable).parent / "mlops-runtime"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from runtime.cli import main; main()"]


@contextlib.contextmanager
def _server(settings: Settings, console: Console, step: Callable[..., Any]) -> Iterator[str]:
    """`mlops-runtime serve` on the demo's port until the block ends (then SIGTERM: it flushes)."""
    log_path = settings.home / "serve.log"
    base_url = f"http://127.0.0.1:{settings.port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*_runtime_command(), "serve", "--host", "127.0.0.1", "--poll-seconds", "2"],
            env=server_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            step(
                "serve (mlops-runtime serve)",
                lambda: _wait_ready(process, base_url, log_path),
                lambda ready: (
                    f"{base_url}, {ready.get('model')} v{ready.get('champion')} "
                    f"({ready.get('backend')})"
                ),
            )
            yield base_url
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> dict:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text()[-2000:]
            raise DemoError(f"mlops-runtime serve exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{base_url}/ready", timeout=2)
            if answer.status_code == 200:
                return dict(answer.json())
        time.sleep(0.25)
    raise DemoError(
        f"mlops-runtime serve was not ready within {SERVER_START_SECONDS}s ({log_path})"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _sample_rows(settings: Settings, written: dict[str, str]) -> pd.DataFrame:
    """Feature rows like the ones training saw: snapshots from the labelled events' period."""
    from runtime.demo_data import TEAMS

    view = TEAMS[TEAM].feature_store.feature_views[0]
    snapshots = pd.read_parquet(written[f"{view.source.path}part-0.parquet"])
    recent = snapshots[snapshots["event_ts"] >= snapshots["event_ts"].min() + timedelta(days=7)]
    return recent.reset_index(drop=True)


def _traffic(
    console: Console,
    steps: list[tuple[str, float, str]],
    base_url: str,
    sample: pd.DataFrame,
) -> int:
    rng = np.random.default_rng(2024)
    features = [c for c in sample.columns if c not in ("card_id", "event_ts")]
    sent = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for name, requests, drifted in (
            ("normal traffic", NORMAL_REQUESTS, False),
            ("drifted traffic", DRIFTED_REQUESTS, True),
        ):
            begun = time.monotonic()
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress:
                task = progress.add_task(name, total=requests)
                for index in range(requests):
                    picked = sample.iloc[rng.integers(0, len(sample), ROWS_PER_REQUEST)]
                    if not drifted and index < ONLINE_REQUESTS:
                        # Entity key only: the server fills the features from the online store.
                        rows = [{"card_id": int(k)} for k in picked["card_id"]]
                    else:
                        rows = _rows(picked[features], drifted)
                    answer = client.post("/predict", json={"rows": rows})
                    if answer.status_code != 200:
                        raise DemoError(
                            f"{name}: /predict answered {answer.status_code}: {answer.text[:300]}"
                        )
                    sent += 1
                    progress.advance(task)
            took = time.monotonic() - begun
            detail = f"{requests} requests x {ROWS_PER_REQUEST} rows" + (
                f" (shifted: {', '.join([*DRIFT, 'share_foreign_7d'])})" if drifted else ""
            )
            steps.append((name, took, detail))
            console.print(f"[green]✓[/] {name} [dim]({took:.1f}s)[/]  {detail}", highlight=False)
    return sent


def _rows(frame: pd.DataFrame, drifted: bool) -> list[dict[str, Any]]:
    frame = frame.copy()
    if drifted:
        for name, factor in DRIFT.items():
            frame[name] = (frame[name] * factor).round(2)
        frame["share_foreign_7d"] = (frame["share_foreign_7d"] + FOREIGN_SHIFT).clip(0, 1).round(3)
    records: list[dict[str, Any]] = frame.to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def _monitor(settings: Settings, since: datetime) -> Any:
    from runtime.monitor import monitor

    # Only this run's traffic: earlier runs left their own in the log.
    window = datetime.now(UTC) - since + timedelta(seconds=1)
    return monitor(settings, ENDPOINT, window=window, end=datetime.now(UTC))


def _summary(console: Console, demo: DemoResult, settings: Settings) -> None:
    database = settings.home / "mlflow.db"
    console.print()
    console.print(f"[bold]Done in {demo.seconds:.0f}s.[/] Everything is under {demo.home}")
    console.print(f"  drift report : {demo.report}", highlight=False)
    console.print(
        f"  MLflow       : {demo.tracking_uri} (artifacts in {settings.home / 'mlartifacts'})",
        highlight=False,
    )
    console.print(
        f"  metrics      : {settings.home / 'metrics' / 'metrics.jsonl'}", highlight=False
    )
    console.print(f"  predictions  : {settings.home / 'prediction-log'}", highlight=False)
    console.print(
        "  MLflow UI    : " + f"mlflow ui --backend-store-uri sqlite:///{database} --port 5000",
        highlight=False,
    )
    console.print("                 then open http://127.0.0.1:5000", highlight=False)
    console.print(
        f"  serve it     : mlops-runtime --env-file {demo.home / RUNTIME_ENV} serve",
        highlight=False,
    )
