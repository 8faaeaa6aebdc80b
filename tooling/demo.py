"""`mlops demo`: the whole platform on one machine, on the embedded default.

demo data -> materialize (Feast) -> train (gates) -> register -> promote -> serve (a real
`mlops-runtime serve` process) -> normal, then drifted traffic over HTTP -> monitor -> where the
drift report and the MLflow data are. Everything lives under ``--home``; a re-run starts from
the same data, registers and promotes a new version, and monitors only its own traffic.

``loop=True`` (`mlops demo --loop`) closes the loop of continuous training on top: the drifted
traffic is measured window by window, new labelled data arrives from the shifted world,
`train --if-due` retrains because drift persisted, the server takes the challenger on its canary,
and the monitor promotes it once it has served enough requests.
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
TRAFFIC_SEED = 2024
LOOP_DRIFTED_WINDOWS = 2
"""Monitor windows of drifted traffic in the loop (after one of normal traffic)."""
LOOP_CANARY_WEIGHT = 50
CANARY_REQUESTS = 80
NEW_DATA_SEED = 8
"""Seed of the labelled data that arrives from the shifted world."""
LOOP_CONTINUOUS_TRAINING = {
    "triggers": {"drift": {"breaches": 2, "windows": 3}},
    "minRows": 100,
    "cooldown": "1h",
    "lease": "10m",
    "promotion": {"observe": "5s", "minRequests": 25},
}
"""Short windows and a quick canary: the demo's whole loop runs in about a minute."""
SWAP_SECONDS = 120
"""How long the loop waits for the server to load the challenger or follow a promotion."""
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
    promoted: str | None = None
    """With the loop: the version continuous training retrained and promoted."""
    started: datetime | None = None


def demo_settings(home: Path, port: int, *, loop: bool = False) -> Settings:
    """The fraud team on the embedded default under ``home``, serving ``scorer`` on ``port``;
    with ``loop``, its pipeline trains continuously and the endpoint runs a canary."""
    from runtime.demo_data import demo_settings as team_settings
    from runtime.spec import CanarySpec, ContinuousTraining, EndpointSpec

    # The demo is self-contained: MLOPS_* variables of the caller's shell must not leak in.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(ENV_PREFIX)}
    try:
        settings = team_settings(
            TEAM,
            home=home.resolve(),
            port=port,
            # The loop's monitor windows follow each other within seconds.
            prediction_log_flush_seconds=1.0 if loop else 5.0,
            endpoint=EndpointSpec(
                name=ENDPOINT,
                model=PIPELINE,
                canary=CanarySpec(weight=LOOP_CANARY_WEIGHT) if loop else None,
            ),
        )
    finally:
        os.environ.update(saved)
    if not loop:
        return settings
    ct = ContinuousTraining.model_validate(LOOP_CONTINUOUS_TRAINING)
    pipelines = [p.model_copy(update={"continuous_training": ct}) for p in settings.pipelines]
    return settings.model_copy(update={"pipelines": pipelines})


def run_demo(
    home: Path = DEFAULT_HOME, *, console: Console | None = None, loop: bool = False
) -> DemoResult:
    """Run every step; raises DemoError with the failing step's reason."""
    console = console or Console()
    started = time.monotonic()
    started_at = datetime.now(UTC)
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(home, _free_port(), loop=loop)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The registry exists before the server starts: two processes never both create it.
        registry.client(settings).search_experiments(max_results=1)
    promoted_version: str | None = None
    # The server starts now and loads the champion once there is one: its start overlaps training.
    with _server(settings) as server:
        step(
            "materialize features (Feast)",
            lambda: materialize(settings, console=Console(file=open(os.devnull, "w"))),  # noqa: SIM115
            lambda fresh: ", ".join(
                f"{f.feature_view} up to {f.newest_value:%Y-%m-%d}" for f in fresh
            ),
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
        step(
            "serve (mlops-runtime serve)",
            lambda: _wait_ready(server, lambda ready: ready.get("champion") == promoted.champion),
            lambda ready: (
                f"{server.base_url}, {ready.get('model')} v{ready.get('champion')} "
                f"({ready.get('backend')})"
            ),
        )
        sample = _sample_rows(settings, written)
        traffic_start = datetime.now(UTC)
        if loop:
            sent, result, promoted_version = _loop(settings, console, steps, step, server, sample)
        else:
            sent = _traffic(console, steps, server.base_url, sample)
    if not loop:
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
        promoted=promoted_version,
        started=started_at,
    )
    _summary(console, demo, settings)
    return demo


def _loop(
    settings: Settings,
    console: Console,
    steps: list[tuple[str, float, str]],
    step: Callable[..., Any],
    server: Server,
    sample: pd.DataFrame,
) -> tuple[int, Any, str]:
    """Continuous training, closed: drift persists -> retrain -> canary -> automatic promotion.

    Returns the requests sent, the drift monitor's last result and the version promoted."""
    from runtime import registry
    from runtime.continuous import run_if_due
    from runtime.spec import ContinuousTraining

    _forget_earlier_loops(settings)
    rng = np.random.default_rng(TRAFFIC_SEED)
    sent = 0
    windows = [("normal traffic", NORMAL_REQUESTS, False)] + [
        (f"drifted traffic ({i + 1})", DRIFTED_REQUESTS // LOOP_DRIFTED_WINDOWS, True)
        for i in range(LOOP_DRIFTED_WINDOWS)
    ]
    for index, (name, requests, drifted) in enumerate(windows, start=1):
        begun = datetime.now(UTC)
        answered = _send(console, steps, server.base_url, name, sample, requests, drifted, rng=rng)
        sent += sum(answered.values())
        step(
            f"monitor window {index}",
            lambda begun=begun, rows=requests * ROWS_PER_REQUEST: _window(settings, begun, rows),
            lambda r: (
                f"max feature PSI {r.max_feature_psi:.2f} on {r.rows} rows: "
                + ("drift" if r.drifted_features else "calm")
            ),
        )
    shifted = step(
        "new labelled data from the shifted world",
        lambda: _shifted_world(settings),
        lambda world: f"{world[1]} labelled events, features shifted as the traffic was",
    )[0]
    check = step(
        "mlops-runtime train --if-due",
        lambda: run_if_due(settings, PIPELINE),
        lambda c: c.summary,
    )
    if check.version is None:
        raise DemoError(f"train --if-due did not retrain: {check.summary}")
    step(
        f"canary: the server takes v{check.version} as challenger",
        lambda: _wait_ready(
            server, lambda ready: ready.get("challenger") == check.version, SWAP_SECONDS
        ),
        lambda ready: f"{LOOP_CANARY_WEIGHT}% of requests to v{ready.get('challenger')}",
    )
    canary_start = datetime.now(UTC)
    # The challenger serves its share for the observation time the promotion rule asks for.
    registered = registry.client(settings).get_model_version(PIPELINE, check.version)
    observe = ContinuousTraining.model_validate(LOOP_CONTINUOUS_TRAINING).promotion
    assert observe is not None
    remaining = (
        datetime.fromtimestamp(int(registered.creation_timestamp) / 1000, UTC)
        + observe.observe
        - canary_start
    ).total_seconds() + 1
    answered = _send(
        console,
        steps,
        server.base_url,
        f"canary traffic for {observe.observe.total_seconds():.0f}s",
        shifted,
        CANARY_REQUESTS,
        rng=rng,
        pace=max(0.0, remaining) / CANARY_REQUESTS,
    )
    sent += sum(answered.values())
    result = step(
        "monitor: canary analysis and promotion",
        lambda: _window(settings, canary_start, CANARY_REQUESTS * ROWS_PER_REQUEST, report=True),
        lambda r: r.canary.summary if r.canary else "no canary",
    )
    if result.canary is None or not result.canary.promoted:
        shown = result.canary.summary if result.canary else "no canary"
        raise DemoError(f"the canary was not promoted: {shown}")
    step(
        "serving follows the promotion",
        lambda: _wait_ready(
            server, lambda ready: ready.get("champion") == check.version, SWAP_SECONDS
        ),
        lambda ready: f"champion v{ready.get('champion')}",
    )
    return sent, result, check.version


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


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


@contextlib.contextmanager
def _server(settings: Settings) -> Iterator[Server]:
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
            yield Server(process, base_url, log_path)
        finally:
            _stop(process)


def _wait_ready(
    server: Server,
    wanted: Callable[[dict[str, Any]], bool],
    seconds: float = SERVER_START_SECONDS,
) -> dict[str, Any]:
    """The server's /ready answer once it is ready and ``wanted`` holds of it."""
    deadline = time.monotonic() + seconds
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text()[-2000:]
            raise DemoError(f"mlops-runtime serve exited with {server.process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            reply = httpx.get(f"{server.base_url}/ready", timeout=2)
            if reply.status_code == 200:
                answer = dict(reply.json())
                if wanted(answer):
                    return answer
        time.sleep(0.25)
    shown = f" (last answer: {answer})" if answer else ""
    raise DemoError(
        f"mlops-runtime serve was not there within {seconds:.0f}s{shown} ({server.log_path})"
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


def _view_path() -> str:
    from runtime.demo_data import TEAMS

    return TEAMS[TEAM].feature_store.feature_views[0].source.path


def _sample_rows(settings: Settings, written: dict[str, str]) -> pd.DataFrame:
    """Feature rows like the ones training saw: snapshots from the labelled events' period."""
    return _recent(pd.read_parquet(written[f"{_view_path()}part-0.parquet"]))


def _recent(snapshots: pd.DataFrame) -> pd.DataFrame:
    recent = snapshots[snapshots["event_ts"] >= snapshots["event_ts"].min() + timedelta(days=7)]
    return recent.reset_index(drop=True)


def _traffic(
    console: Console,
    steps: list[tuple[str, float, str]],
    base_url: str,
    sample: pd.DataFrame,
) -> int:
    rng = np.random.default_rng(TRAFFIC_SEED)
    sent = 0
    for name, requests, drifted in (
        ("normal traffic", NORMAL_REQUESTS, False),
        ("drifted traffic", DRIFTED_REQUESTS, True),
    ):
        answered = _send(console, steps, base_url, name, sample, requests, drifted, rng=rng)
        sent += sum(answered.values())
    return sent


def _send(
    console: Console,
    steps: list[tuple[str, float, str]],
    base_url: str,
    name: str,
    sample: pd.DataFrame,
    requests: int,
    drifted: bool = False,
    *,
    rng: np.random.Generator,
    pace: float = 0.0,
) -> dict[str, int]:
    """``requests`` requests of rows from ``sample`` (shifted if ``drifted``), ``pace`` seconds
    apart; how many each variant answered.

    Normal traffic begins with requests that send only the entity key (features from Feast)."""
    features = [c for c in sample.columns if c not in ("card_id", "event_ts")]
    answered: dict[str, int] = {}
    begun = time.monotonic()
    with (
        httpx.Client(base_url=base_url, timeout=30) as client,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task(name, total=requests)
        for index in range(requests):
            picked = sample.iloc[rng.integers(0, len(sample), ROWS_PER_REQUEST)]
            if name == "normal traffic" and index < ONLINE_REQUESTS:
                # Entity key only: the server fills the features from the online store.
                rows = [{"card_id": int(k)} for k in picked["card_id"]]
            else:
                rows = _rows(picked[features], drifted)
            answer = client.post("/predict", json={"rows": rows})
            if answer.status_code != 200:
                raise DemoError(
                    f"{name}: /predict answered {answer.status_code}: {answer.text[:300]}"
                )
            body = answer.json()
            variant = f"{body.get('variant', '?')} v{body.get('version', '?')}"
            answered[variant] = answered.get(variant, 0) + 1
            progress.advance(task)
            if pace:
                time.sleep(pace)
    took = time.monotonic() - begun
    detail = f"{requests} requests x {ROWS_PER_REQUEST} rows" + (
        f" (shifted: {', '.join([*DRIFT, 'share_foreign_7d'])})" if drifted else ""
    )
    if len(answered) > 1:
        detail += "; answered by " + ", ".join(f"{k}: {v}" for k, v in sorted(answered.items()))
    steps.append((name, took, detail))
    console.print(f"[green]✓[/] {name} [dim]({took:.1f}s)[/]  {detail}", highlight=False)
    return answered


def _forget_earlier_loops(settings: Settings) -> None:
    """A re-run's loop starts afresh: no cooldown, budget or evidence left from the last one."""
    from runtime import continuous, registry

    client = registry.client(settings)
    tags = client.get_registered_model(PIPELINE).tags or {}
    for key in tags:
        # The lease stays: its generations only ever grow.
        if key.startswith("mlops.ct.") and key != continuous.LEASE_TAG:
            client.delete_registered_model_tag(PIPELINE, key)


def _shift(frame: pd.DataFrame) -> pd.DataFrame:
    """The drifted world: amounts three times larger, more foreign transactions."""
    frame = frame.copy()
    for name, factor in DRIFT.items():
        frame[name] = (frame[name] * factor).round(2)
    frame["share_foreign_7d"] = (frame["share_foreign_7d"] + FOREIGN_SHIFT).clip(0, 1).round(3)
    return frame


def _rows(frame: pd.DataFrame, drifted: bool) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = (_shift(frame) if drifted else frame).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]


def _shifted_world(settings: Settings) -> tuple[pd.DataFrame, int]:
    """New labelled events from the drifted world, written over the offline store's data.

    Returns feature rows of that world (for the canary's traffic) and the labelled events."""
    from runtime.demo_data import generate
    from runtime.storage import write_parquet

    frames = generate(TEAM, seed=NEW_DATA_SEED, rows=DEMO_ROWS)
    path = f"{_view_path()}part-0.parquet"
    frames[path] = _shift(frames[path])
    for name, frame in frames.items():
        write_parquet(settings, frame, name)
    labels = sum(len(frame) for name, frame in frames.items() if name.startswith("labels/"))
    return _recent(frames[path]), labels


def _window(settings: Settings, since: datetime, rows: int, *, report: bool = False) -> Any:
    """One monitor run over the traffic sent since ``since``, once the server has logged it."""
    from runtime.monitor import monitor
    from runtime.prediction_log import log_root, read_prediction_log

    # The server flushes its prediction log every few seconds: wait for this window's rows.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logged = read_prediction_log(
            log_root(settings), since, None, settings=settings, expand_features=False
        )
        if len(logged) >= rows:
            break
        time.sleep(0.5)
    end = datetime.now(UTC)
    return monitor(settings, ENDPOINT, window=end - since, end=end, report=report)


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
    if demo.promoted is None:
        return
    from runtime import events

    console.print()
    console.print(
        f"[bold]Continuous training[/] retrained and promoted {demo.model} v{demo.promoted}; "
        "its decisions:",
        highlight=False,
    )
    for event in events.read(settings, demo.model, since=demo.started):
        version = f" v{event.version}" if event.version else ""
        console.print(
            f"  {event.at:%H:%M:%S}  {event.kind:<11}{version}  {event.summary}",
            highlight=False,
            markup=False,
        )
    console.print(
        f"  status       : mlops-runtime --env-file {demo.home / RUNTIME_ENV} status "
        f"{demo.model}   (the timeline: mlops-runtime history {demo.model})",
        highlight=False,
    )
