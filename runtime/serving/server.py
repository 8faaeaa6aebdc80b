"""`mlops-runtime serve`: the app under uvicorn, stopped gracefully on SIGTERM."""

from __future__ import annotations

from typing import Any

from runtime.serving.app import create_app
from runtime.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 40
"""In-flight requests and the prediction log flush fit in the pod's grace period (60 s - preStop)."""
DEFAULT_HOST = "0.0.0.0"


def serve(settings: Settings, *, host: str = DEFAULT_HOST, **app_options: Any) -> None:
    """Serve ``settings.endpoint`` on ``settings.port`` until SIGTERM/SIGINT."""
    import uvicorn

    app = create_app(settings, **app_options)
    config = uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # Proxies and the load balancer keep connections open; so should we.
        timeout_keep_alive=75,
    )
    uvicorn.Server(config).run()
