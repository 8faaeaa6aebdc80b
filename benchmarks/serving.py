"""Serving benchmark: `mlops-runtime serve` vs the servers a platform team would otherwise run.

One fitted model for every server: a HistGradientBoosting classifier on 12 features behind a
ColumnTransformer imputer. It is registered in an embedded MLflow registry (SQLite + local
artifacts, logged as `mlops-runtime train` logs models: skops, signature, input example,
training reference) and promoted to `champion`; the same fitted object is also saved with joblib
for the peers that load a file.

- `mlops-runtime serve` (one process: the default pod of one CPU), and the same with
  MLOPS_SERVE_WORKERS=2 (what a pod with `resources.cpu: "2"` runs);
- `mlflow models serve --env-manager local` (MLflow's own server);
- MLServer with mlserver-sklearn (what KServe runs for scikit-learn), adaptive batching on,
  `parallel_workers` 0 (inference on the event loop), 1 and 2;
- BentoML, a service with a batchable API (adaptive batching), `workers` 1 and 2.

MLServer and BentoML each run from a virtualenv of their own (they pin their own FastAPI,
uvicorn and pydantic), made on first use under ``--venvs`` with the same scikit-learn version as
ours, so the joblib file loads as it was fitted:

    python3 -m venv ~/.venvs/bench-mlserver && ~/.venvs/bench-mlserver/bin/pip install \
        mlserver mlserver-sklearn 'uvloop<0.22' scikit-learn==<ours>
    python3 -m venv ~/.venvs/bench-bentoml && ~/.venvs/bench-bentoml/bin/pip install \
        bentoml pandas scikit-learn==<ours>

`wrk` sends each server the same single-row request, in that server's own format (the same
feature values), for the same duration at each concurrency, one server at a time. Results per
concurrency: req/s, p50, p99, errors, and our ratios to the best peer (the peer configuration
with the most req/s at that concurrency).

    python benchmarks/serving.py [--duration 30] [--connections 8 32] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

MODEL = "bench-model"
FEATURES = [f"f{i:02d}" for i in range(12)]
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""
PEER_BATCH_ROWS = 64
"""Largest batch MLServer and BentoML form (ours: 256; at 32 connections no batch is larger)."""
MLSERVER_BATCH_SECONDS = 0.002
"""How long MLServer holds a batch open for more requests (its `max_batch_time`)."""
BENTOML_MAX_LATENCY_MS = 1000
"""BentoML's latency ceiling: its dispatcher sizes the wait from it and answers 503 past it."""
OURS = "mlops-runtime serve"
OURS_2CPU = "serve, 2 CPUs"
PEER_PACKAGES = {
    # MLServer 1.7's inference workers ask for the event loop before making one, which uvloop
    # 0.22 and later refuse (the workers die at start): the uvloop it was released with.
    "mlserver": ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
    "bentoml": ["bentoml", "pandas"],
}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
"""Every server's native thread pools at one thread, as `mlops-runtime serve` sets its own: with
an OpenMP pool per process, scikit-learn's predict spins on the cores the HTTP side needs (the
peers ran at a tenth of their speed without it)."""
BENTOML_SERVICE = '''
"""The benchmark model as a BentoML service: one batchable API (BentoML's adaptive batching)."""

import os

import bentoml
import joblib
import numpy as np
import pandas as pd

FEATURES = {features!r}


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")))
class Bench:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])
        self.classes = np.asarray(self.model.classes_)

    @bentoml.api(batchable=True, max_batch_size={batch}, max_latency_ms={latency})
    def predict(self, rows: list[dict[str, float]]) -> list[dict]:
        probabilities = self.model.predict_proba(pd.DataFrame.from_records(rows, columns=FEATURES))
        labels = self.classes[probabilities.argmax(axis=1)].tolist()
        return [
            {{"prediction": label, "probabilities": p}}
            for label, p in zip(labels, probabilities.tolist())
        ]
'''


@dataclass
class Server:
    """One server configuration under test."""

    name: str
    command: Callable[[int], list[str]]
    """The command line, given the port."""
    path: str
    """The route the request goes to."""
    body: str
    ready: str = "/ready"
    peer: bool = True
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    prepare: Callable[[int], None] | None = None
    """Writes the server's config for the port, before it starts."""


def register_model(home: Path) -> tuple[dict[str, str], Any]:
    """Fit and register the benchmark model; returns the env our server runs with, and the model."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from runtime import registry
    from runtime.settings import Settings, library_env
    from runtime.train import REFERENCE_ARTIFACT

    settings = Settings(home=home)
    os.environ.update(library_env(settings))
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20_000, len(FEATURES))), columns=FEATURES)
    y = (X.iloc[:, :4].sum(axis=1) + rng.normal(0, 1, len(X)) > 0).astype(int)
    model = Pipeline(
        [
            ("features", ColumnTransformer([("numeric", SimpleImputer(), FEATURES)])),
            ("estimator", HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        ]
    ).fit(X, y)
    client = registry.client(settings)
    experiment = registry.experiment_id(settings, client, MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment):
            reference = X.sample(2000, random_state=0)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "training_reference.parquet"
                reference.to_parquet(path)
                mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
            example = X.head(5)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            )
        version = mlflow.register_model(info.model_uri, MODEL).version
    client.set_registered_model_alias(MODEL, "champion", version)
    env = {
        **library_env(settings),
        "MLFLOW_TRACKING_URI": registry.tracking_uri(settings),
        "MLOPS_HOME": str(home),
        "MLOPS_ENDPOINT": json.dumps({"name": "bench", "model": MODEL}),
        "MLOPS_METRICS_SINK": "file",
    }
    return env, model


def peer_venv(root: Path, peer: str) -> Path:
    """The virtualenv of ``peer`` (made on first use), with our scikit-learn version."""
    import sklearn

    venv = root / f"bench-{peer}"
    if not (venv / "bin" / "python").exists():
        print(f"making {venv} ...", flush=True)
        # The system interpreter: ours may itself be a virtualenv's.
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    # Quick once satisfied; keeps an existing venv on our scikit-learn version.
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            *PEER_PACKAGES[peer],
            f"scikit-learn=={sklearn.__version__}",
        ],
        check=True,
    )
    return venv


class Ports:
    """Free local ports, from ``--ports`` LOW-HIGH if given (else any the system picks)."""

    def __init__(self, spec: str | None) -> None:
        if spec is None:
            self._range: list[int] | None = None
        else:
            low, high = (int(part) for part in spec.split("-"))
            self._range = list(range(low, high + 1))
            random.shuffle(self._range)

    def take(self) -> int:
        candidates = self._range if self._range is not None else [0]
        while candidates:
            port = candidates.pop() if self._range is not None else 0
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return sock.getsockname()[1]
        raise SystemExit("no free port left in --ports")


def start(
    command: list[str], env: dict[str, str], ready_url: str, log: Path, cwd: Path | None
) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited early; see {log}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{command[0]} not ready in time; see {log}")


def stop(process: subprocess.Popen) -> None:
    # Each server was started in its own session: stop exactly that process group.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(url: str, body: str, connections: int, duration: int, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=body))
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = {
        int(p): _ms(value, unit)
        for p, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests_per_second": rate,
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "raw": output,
    }


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# --- the servers ------------------------------------------------------------------------------


def ours(bin_dir: Path, row: dict[str, float], *, ablation: bool) -> list[Server]:
    body = json.dumps({"dataframe_records": [row]})

    def command(*extra: str) -> Callable[[int], list[str]]:
        return lambda port: [str(bin_dir / "mlops-runtime"), "serve", "--host", "127.0.0.1", *extra]

    servers = [
        Server(OURS, command(), "/invocations", body, peer=False),
        Server(
            OURS_2CPU, command(), "/invocations", body, peer=False, env={"MLOPS_SERVE_WORKERS": "2"}
        ),
    ]
    if ablation:
        # What each part buys: the same server without the ONNX path, without batching.
        servers += [
            Server(
                "serve --no-fast-path", command("--no-fast-path"), "/invocations", body, peer=False
            ),
            Server(
                "serve --max-batch-rows 1",
                command("--max-batch-rows", "1"),
                "/invocations",
                body,
                peer=False,
            ),
        ]
    return servers


def mlflow_server(bin_dir: Path, row: dict[str, float]) -> Server:
    return Server(
        "mlflow models serve",
        lambda port: [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL}@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        "/invocations",
        json.dumps({"dataframe_records": [row]}),
        ready="/ping",
        # MLflow's gate on loading skops models (ours loads them itself, runtime.model_trust);
        # the benchmark's model is its own.
        env={"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"},
    )


def mlserver(
    venv: Path, work: Path, model_file: Path, row: dict[str, float], workers: int, ports: Ports
) -> Server:
    """MLServer's scikit-learn runtime on the joblib file: V2 protocol, one input per column
    decoded as a pandas frame (the pipeline selects columns by name), asking for
    `predict_proba` (one model call; the label is its argmax)."""
    folder = work / f"mlserver-{workers}"
    (folder / "bench").mkdir(parents=True)
    (folder / "bench" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "bench",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model_file)},
                "max_batch_size": PEER_BATCH_ROWS,
                "max_batch_time": MLSERVER_BATCH_SECONDS,
            }
        )
    )

    def prepare(port: int) -> None:
        (folder / "settings.json").write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "http_port": port,
                    "grpc_port": ports.take(),
                    "metrics_port": ports.take(),
                    "parallel_workers": workers,
                    # No access log (its debug mode logs every request).
                    "debug": False,
                }
            )
        )

    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
            for name, value in row.items()
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    return Server(
        f"mlserver parallel_workers={workers}",
        lambda port: [str(venv / "bin" / "mlserver"), "start", str(folder)],
        "/v2/models/bench/infer",
        json.dumps(body),
        ready="/v2/models/bench/ready",
        cwd=folder,
        prepare=prepare,
    )


def bentoml(
    venv: Path, work: Path, model_file: Path, row: dict[str, float], workers: int
) -> Server:
    folder = work / "bentoml"
    folder.mkdir(exist_ok=True)
    (folder / "service.py").write_text(
        BENTOML_SERVICE.format(
            features=FEATURES, batch=PEER_BATCH_ROWS, latency=BENTOML_MAX_LATENCY_MS
        )
    )
    return Server(
        f"bentoml workers={workers}",
        lambda port: [
            str(venv / "bin" / "bentoml"),
            "serve",
            "service:Bench",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        "/predict",
        json.dumps({"rows": [row]}),
        ready="/readyz",
        cwd=folder,
        env={
            "BENCH_MODEL": str(model_file),
            "BENCH_WORKERS": str(workers),
            "BENTOML_HOME": str(work / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        },
    )


# --- the run ----------------------------------------------------------------------------------


def measure(
    server: Server, env: dict[str, str], work: Path, ports: Ports, args: argparse.Namespace
) -> dict[int, dict[str, Any]]:
    """Start ``server``, load it at each concurrency, stop it; results by connections."""
    port = ports.take()
    if server.prepare is not None:
        server.prepare(port)
    server_env = {**env, **ONE_THREAD, **server.env, "MLOPS_PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    log = work / f"{re.sub(r'[^a-z0-9]+', '-', server.name.lower())}.log"
    process = start(server.command(port), server_env, base + server.ready, log, server.cwd)
    try:
        check = httpx.post(
            base + server.path,
            content=server.body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        check.raise_for_status()
        answer = check.json()
        backend = None if server.peer else httpx.get(base + "/ready").json()["backend"]
        results: dict[int, dict[str, Any]] = {}
        for connections in args.connections:
            url = base + server.path
            wrk(url, server.body, connections, args.warmup, args.threads)
            result = wrk(url, server.body, connections, args.duration, args.threads)
            results[connections] = {**result, "answer": answer, "backend": backend}
            print(
                f"  {server.name:<32}{connections:>4} conns {result['requests_per_second']:>9.0f} "
                f"req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
                f"non-2xx {result['non_2xx']} {result['socket_errors']}",
                flush=True,
            )
        return results
    finally:
        stop(process)


def summarize(results: dict[str, dict[int, dict[str, Any]]], peers: set[str]) -> dict[str, Any]:
    """Per concurrency: the best peer and each of our rows' ratios to it."""
    summary: dict[str, Any] = {}
    for connections in sorted({c for by_conn in results.values() for c in by_conn}):
        row = {name: by_conn[connections] for name, by_conn in results.items()}
        measured = [name for name in peers if name in row]
        if not measured:
            continue
        best = max(measured, key=lambda name: row[name]["requests_per_second"])
        theirs = row[best]
        summary[str(connections)] = {
            "best_peer": best,
            **{
                name: {
                    "throughput_ratio": row[name]["requests_per_second"]
                    / theirs["requests_per_second"],
                    "p50_ratio": row[name]["p50_ms"] / theirs["p50_ms"],
                    "p99_ratio": row[name]["p99_ms"] / theirs["p99_ms"],
                }
                for name in row
                if name not in peers
            },
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each run")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--peers",
        default="mlflow,mlserver,bentoml",
        help="comma-separated: mlflow, mlserver, bentoml (empty: ours only)",
    )
    parser.add_argument(
        "--peer-workers", type=int, nargs="+", default=[1, 2], help="worker counts of the peers"
    )
    parser.add_argument(
        "--venvs",
        type=Path,
        default=Path.home() / ".venvs",
        help="where the peers' virtualenvs are (made on first use)",
    )
    parser.add_argument("--ports", help="LOW-HIGH: take the servers' ports from this range")
    parser.add_argument("--only", help="regex: run only the servers whose name matches")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--ablation", action="store_true", help="also run serve without ONNX and without batching"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    peers = {p.strip() for p in args.peers.split(",") if p.strip()}
    unknown = peers - {"mlflow", "mlserver", "bentoml"}
    if unknown:
        raise SystemExit(f"unknown peers: {', '.join(sorted(unknown))}")
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    ports = Ports(args.ports)
    registered, model = register_model(work / "home")
    env = {**os.environ, **registered}
    # `mlflow models serve` execs `uvicorn` from PATH.
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    model_file = work / "model.joblib"
    import joblib

    joblib.dump(model, model_file)
    row = {
        name: float(value)
        for name, value in zip(
            FEATURES, np.random.default_rng(1).normal(size=len(FEATURES)).round(4), strict=True
        )
    }
    servers = ours(bin_dir, row, ablation=args.ablation)
    if "mlflow" in peers:
        servers.append(mlflow_server(bin_dir, row))
    if "mlserver" in peers:
        venv = peer_venv(args.venvs, "mlserver")
        servers += [
            mlserver(venv, work, model_file, row, workers, ports)
            for workers in sorted({0, *args.peer_workers})
        ]
    if "bentoml" in peers:
        venv = peer_venv(args.venvs, "bentoml")
        servers += [bentoml(venv, work, model_file, row, workers) for workers in args.peer_workers]
    if args.only:
        servers = [s for s in servers if re.search(args.only, s.name)]
    results: dict[str, dict[int, dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    for server in servers:
        try:
            results[server.name] = measure(server, env, work, ports, args)
        except (RuntimeError, httpx.HTTPError, subprocess.CalledProcessError) as error:
            # One peer that does not start does not lose the others' figures.
            failed[server.name] = str(error)
            print(f"  {server.name}: FAILED: {error}", flush=True)
    peer_names = {s.name for s in servers if s.peer}
    summary = summarize(results, peer_names)
    print()
    print(f"{'server':<34}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for connections in args.connections:
        for name, by_conn in results.items():
            result = by_conn[connections]
            errors = result["non_2xx"] + _socket_errors(result["socket_errors"])
            print(
                f"{name:<34}{connections:>6}{result['requests_per_second']:>10.0f}"
                f"{result['p50_ms']:>9.2f}{result['p99_ms']:>9.2f}{errors:>8}"
            )
    for connections, ratios in summary.items():
        best = ratios["best_peer"]
        for name, ratio in ratios.items():
            if name == "best_peer":
                continue
            print(
                f"{connections} connections, {name} vs best peer ({best}): "
                f"throughput x{ratio['throughput_ratio']:.2f}, p99 x{ratio['p99_ratio']:.3f}"
            )
    if failed:
        print("failed: " + "; ".join(f"{name}: {why}" for name, why in failed.items()))
    if args.output:
        args.output.write_text(
            json.dumps(
                {
                    "results": results,
                    "summary": summary,
                    "failed": failed,
                    "duration_s": args.duration,
                    "cpus": os.cpu_count(),
                },
                indent=2,
            )
        )
    if failed:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def _socket_errors(text: str) -> int:
    return sum(int(n) for n in re.findall(r"\d+", text))


if __name__ == "__main__":
    main()
