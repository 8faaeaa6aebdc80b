"""Serving benchmark: `mlops-runtime serve` vs `mlflow models serve`, same model, same load.

A HistGradientBoosting classifier on 12 features is registered in an embedded MLflow registry
(SQLite + local artifacts, logged as `mlops-runtime train` logs models: skops, signature, input
example, training reference) and promoted to `champion`. Both servers serve that version; `wrk`
sends the same single-row JSON request to `/invocations` (the route both servers have) at the same
concurrency for the same duration, one server at a time. Results: req/s, p50, p99 and the ratios.

    python benchmarks/serving.py [--duration 30] [--connections 8] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
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


def register_model(home: Path) -> dict[str, str]:
    """Fit and register the benchmark model; returns the env both servers run with."""
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
    return {
        **library_env(settings),
        "MLFLOW_TRACKING_URI": registry.tracking_uri(settings),
        "MLOPS_HOME": str(home),
        "MLOPS_ENDPOINT": json.dumps({"name": "bench", "model": MODEL}),
        "MLOPS_METRICS_SINK": "file",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited early; see {log}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{command[0]} not ready in time; see {log}")


def stop(process: subprocess.Popen) -> None:
    # Each server was started in its own session: stop exactly that process group.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(url: str, body: str, connections: int, duration: int, threads: int) -> dict[str, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--ablation", action="store_true", help="also run serve without ONNX and without batching"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    env = {**os.environ, **register_model(work / "home")}
    # `mlflow models serve` execs `uvicorn` from PATH.
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    row = dict(
        zip(FEATURES, np.random.default_rng(1).normal(size=len(FEATURES)).round(4), strict=True)
    )
    body = json.dumps({"dataframe_records": [{k: float(v) for k, v in row.items()}]})
    servers = {
        "mlops-runtime serve": lambda port: [
            str(bin_dir / "mlops-runtime"),
            "serve",
            "--host",
            "127.0.0.1",
        ],
        "mlflow models serve": lambda port: [
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
    }
    if args.ablation:
        # What each part buys: the same server without the ONNX path, without batching.
        ours = servers["mlops-runtime serve"]
        servers["serve --no-fast-path"] = lambda port: [*ours(port), "--no-fast-path"]
        servers["serve --max-batch-rows 1"] = lambda port: [*ours(port), "--max-batch-rows", "1"]
    ready = {"mlflow models serve": "/ping"}
    results: dict[str, Any] = {}
    for name, command in servers.items():
        port = free_port()
        server_env = {**env, "MLOPS_PORT": str(port)}
        base = f"http://127.0.0.1:{port}"
        process = start(
            command(port), server_env, base + ready.get(name, "/ready"), work / f"{port}.log"
        )
        try:
            check = httpx.post(
                base + "/invocations", content=body, headers={"content-type": "application/json"}
            )
            check.raise_for_status()
            wrk(base + "/invocations", body, args.connections, 3, args.threads)  # warm-up
            results[name] = wrk(
                base + "/invocations", body, args.connections, args.duration, args.threads
            )
            results[name]["answer"] = check.json()
            if name != "mlflow models serve":
                results[name]["backend"] = httpx.get(base + "/ready").json()["backend"]
        finally:
            stop(process)
    ours, theirs = results["mlops-runtime serve"], results["mlflow models serve"]
    summary = {
        "connections": args.connections,
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "throughput_ratio": ours["requests_per_second"] / theirs["requests_per_second"],
        "p99_ratio": ours["p99_ms"] / theirs["p99_ms"],
        "p50_ratio": ours["p50_ms"] / theirs["p50_ms"],
    }
    print(f"{'server':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}")
    for name, result in results.items():
        print(
            f"{name:<28}{result['requests_per_second']:>10.0f}{result['p50_ms']:>10.2f}"
            f"{result['p99_ms']:>10.2f}{result['non_2xx']:>9}"
        )
    print(
        f"throughput x{summary['throughput_ratio']:.1f}, p99 x{summary['p99_ratio']:.3f} "
        f"(backend: {ours.get('backend')})"
    )
    if args.output:
        args.output.write_text(json.dumps({"results": results, "summary": summary}, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
