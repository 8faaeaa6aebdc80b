"""`mlops-runtime serve`: the app under uvicorn, stopped gracefully on SIGTERM."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runtime.serving.app import create_app
from runtime.settings import Settings

DEFAULT_HOST = "0.0.0.0"
_log = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str = DEFAULT_HOST, **app_options: Any) -> None:
    """Serve ``settings.endpoint`` on ``settings.port`` until SIGTERM/SIGINT."""
    import uvicorn

    from runtime.registry import tracking_uri

    app = create_app(settings, **app_options)
    _log.info(
        "serving endpoint %s on http://%s:%d; home %s; tracking URI %s; loading %s",
        settings.endpoint.name if settings.endpoint else None,
        host,
        settings.port,
        settings.home.resolve(),
        _redacted(tracking_uri(settings)),
        _aliases(settings),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # In-flight requests, then the prediction log's flush, inside the grace period.
        timeout_graceful_shutdown=settings.shutdown_drain_seconds,
        # Proxies and the load balancer keep connections open; so should we.
        timeout_keep_alive=75,
    )
    uvicorn.Server(config).run()


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
