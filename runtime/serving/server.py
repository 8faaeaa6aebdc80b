"""`mlops-runtime serve`: the app under uvicorn, stopped gracefully on SIGTERM.

With ``settings.serve_workers`` above one, that many processes share the port (uvicorn's
supervisor binds it, each worker accepts on it); each loads the model, logs its predictions and
counts its requests, and `/metrics` sums every worker's counts (Prometheus' multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runtime.serving.app import create_app
from runtime.settings import Settings

DEFAULT_HOST = "0.0.0.0"
WORKER_ENV = "MLOPS_SERVE_WORKER"
"""How a worker process learns its settings and the command line's app options (JSON, set by
`serve` for its workers; not a setting)."""
PROMETHEUS_FOLDER = "prometheus"
"""Under ``home``: the workers' shared metric files (Prometheus' multiprocess mode)."""
_log = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str = DEFAULT_HOST, **app_options: Any) -> None:
    """Serve ``settings.endpoint`` on ``settings.port`` until SIGTERM/SIGINT."""
    import uvicorn

    from runtime.registry import tracking_uri
    from runtime.serving.protocol import OneWriteProtocol

    _log.info(
        "serving endpoint %s on http://%s:%d (%d process%s); home %s; tracking URI %s; loading %s",
        settings.endpoint.name if settings.endpoint else None,
        host,
        settings.port,
        settings.serve_workers,
        "" if settings.serve_workers == 1 else "es",
        settings.home.resolve(),
        _redacted(tracking_uri(settings)),
        _aliases(settings),
    )
    options: dict[str, Any] = {
        "host": host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        # In-flight requests, then the prediction log's flush, inside the grace period.
        "timeout_graceful_shutdown": settings.shutdown_drain_seconds,
        # Proxies and the load balancer keep connections open; so should we.
        "timeout_keep_alive": 75,
        # The C parser and event loop (uvicorn[standard]), pure Python costs a third of a
        # prediction's time; an answer's head and body are sent in one write.
        "http": OneWriteProtocol,
        "loop": "uvloop",
        # Nothing reads the client's address, so no middleware rewrites it from forwarded
        # headers; and the answers need not name the server.
        "proxy_headers": False,
        "server_header": False,
    }
    workers = settings.serve_workers
    if workers == 1:
        uvicorn.Server(uvicorn.Config(create_app(settings, **app_options), **options)).run()
        return
    from uvicorn.supervisors import Multiprocess

    # Each worker builds its app from the same settings and options (an env file included).
    os.environ[WORKER_ENV] = json.dumps(
        {"settings": settings.model_dump(mode="json", by_alias=True), "options": app_options}
    )
    metrics = settings.home.resolve() / PROMETHEUS_FOLDER
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app() -> Any:
    """The app of one worker process (uvicorn calls this in each)."""
    from runtime.settings import library_env

    given = json.loads(os.environ[WORKER_ENV])
    settings = Settings.model_validate(given["settings"])
    os.environ.update(library_env(settings))
    logging.getLogger("runtime").setLevel(logging.INFO)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Set by `serve` before the workers started (so before prometheus-client was imported).
    shared = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return create_app(settings, shared_metrics=shared, **given["options"])


def _aliases(settings: Settings) -> str:
    endpoint = settings.endpoint
    if endpoint is None:
        return "nothing"
    if settings.serve_alias is not None:
        shadow = (
            " (a shadow variant)" if endpoint.shadow and settings.serve_alias != "champion" else ""
        )
        meanwhile = (
            " (the champion, as champion, until a challenger exists)"
            if settings.serve_alias == "challenger"
            else ""
        )
        return (
            f"models:/{endpoint.model}@{settings.serve_alias} as variant "
            f"{settings.serve_alias}{shadow}{meanwhile}"
        )
    shown = f"models:/{endpoint.model}@champion"
    if endpoint.canary is not None:
        shown += f" and @{endpoint.canary.alias} ({endpoint.canary.weight}% canary)"
    elif endpoint.shadow:
        shown += " and @challenger (shadow)"
    return shown


def _redacted(uri: str) -> str:
    """``uri`` without its password (a database URI carries one)."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
