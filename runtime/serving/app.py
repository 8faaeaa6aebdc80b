"""The serving app factory: routes, canary/shadow split, online features, prediction log, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import json
import logging
import math
import random
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from runtime.errors import ConfigurationError
from runtime.metrics import VARIANT_CHALLENGER, VARIANT_CHAMPION
from runtime.prediction_log import PredictionLogWriter, PredictionRecord
from runtime.serving.batcher import MAX_BATCH_ROWS, MicroBatcher
from runtime.serving.holder import POLL_SECONDS, ModelHolder
from runtime.serving.model import ModelSource, RegistryModelSource, Scored, ServedModel
from runtime.serving.online import OnlineFeatures
from runtime.serving.schema import (
    MAX_ROWS,
    ROW_LIST_KEYS,
    NotReadyResponse,
    PredictResponse,
    RowSchema,
)
from runtime.serving.telemetry import FLUSH_SECONDS, ServingTelemetry
from runtime.settings import Settings
from runtime.spec import EndpointSpec

REQUEST_ID_HEADER = "x-request-id"
EXCERPT_CHARS = 120
"""Longest excerpt of a request's input an error answer shows."""
_ANSWER = json.JSONEncoder(separators=(",", ":"))
"""Compact JSON for answers (one encoder: ``json.dumps`` with options makes one per call)."""
SMALL_BODY_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (a thread hand-off would cost more)."""
_log = logging.getLogger(__name__)


# --- domain errors, mapped to HTTP by one handler ---------------------------------------------------


class ServingError(Exception):
    """A request that cannot be answered; ``status_code`` is what the client gets."""

    status_code = 500

    def __init__(self, message: str, *, variant: str = VARIANT_CHAMPION) -> None:
        super().__init__(message)
        self.variant = variant


class NotReadyError(ServingError):
    status_code = 503


class UnsupportedMediaTypeError(ServingError):
    status_code = 415


class NotAcceptableError(ServingError):
    status_code = 406


class PayloadTooLargeError(ServingError):
    status_code = 413


class OnlineFeaturesUnavailableError(ServingError):
    status_code = 503


class PredictionFailedError(ServingError):
    status_code = 500


# --- per-version serving state ----------------------------------------------------------------------


@dataclass
class Prepared:
    """A loaded version with its request schema and its batcher."""

    model: ServedModel
    variant: str
    """The variant it answers as (in answers, the prediction log, metrics): the one it is
    prepared for, or the champion where a SageMaker challenger variant has no challenger yet."""
    schema: RowSchema
    max_rows: int
    executor: ThreadPoolExecutor | None
    _batcher: MicroBatcher | None = field(default=None, init=False)

    @cached_property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The headers that say which version answered (encoded once: the version and the
        variant a Prepared answers as never change)."""
        return [
            (b"x-model-version", self.model.version.encode()),
            (b"x-model-variant", self.variant.encode()),
        ]

    @property
    def batcher(self) -> MicroBatcher:
        # Created on the event loop, on first use.
        if self._batcher is None:
            fast = self.model.backend == "onnx"
            self._batcher = MicroBatcher(
                self.model.predict,
                max_rows=self.max_rows,
                executor=None if fast else self.executor,
            )
        return self._batcher


class Answer(Response):
    """A prediction's 200 answer, its headers given encoded: ``Response.__init__`` encodes and
    checks every header again on every request."""

    def __init__(self, body: bytes, media_type: bytes, headers: list[tuple[bytes, bytes]]):
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", media_type),
            *headers,
        ]


@dataclass
class ServingState:
    settings: Settings
    endpoint: EndpointSpec
    holder: ModelHolder
    log: PredictionLogWriter
    telemetry: ServingTelemetry
    online: OnlineFeatures
    executor: ThreadPoolExecutor
    max_rows: int
    prepared: dict[str, Prepared] = field(default_factory=dict)
    openapi_version: str | None = None

    @property
    def primary(self) -> str:
        """The variant that answers: the champion, or the alias this process alone serves."""
        return self.holder.primary

    @property
    def splits(self) -> bool:
        """This process splits (canary) or copies (shadow) the traffic itself; a SageMaker
        variant's process does not: SageMaker does, between variants."""
        return self.settings.serve_alias is None

    @property
    def logs_as_shadow(self) -> bool:
        """This process is a SageMaker shadow variant: SageMaker discards its answers, so its
        rows are logged as shadow rows (as the in-process shadow's are)."""
        return not self.splits and self.endpoint.shadow and self.primary == VARIANT_CHALLENGER

    def swap(self, variant: str, model: ServedModel | None, answers_as: str) -> None:
        """Serve ``model`` for ``variant``, answering as ``answers_as``, from the next request
        on; None stops serving it."""
        if model is None:
            self.prepared.pop(variant, None)
        else:
            self.prepared[variant] = Prepared(
                model,
                answers_as,
                RowSchema(model, self.settings.feature_store),
                self.max_rows,
                self.executor,
            )
        # Libraries and the model are long-lived: keep them out of the collector's full scans,
        # which would otherwise pause requests for tens of milliseconds. Unfrozen first, so the
        # version swapped out can be collected.
        gc.unfreeze()
        gc.collect()
        gc.freeze()


class ServingApp(FastAPI):
    """FastAPI, with the prediction routes answered ahead of its middleware and routing.

    A prediction is a few hundred microseconds of work; FastAPI's stack around a route (eight
    middleware layers, routing, the endpoint wrapper) was a third of that at 32 connections.
    The prediction routes are still FastAPI routes (the OpenAPI document describes them), and
    ahead of the stack they run the same handlers, with the app's handlers for the errors they
    raise; every other request, and a prediction route's other methods, go through the stack.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: dict[str, Any] = {}
        self._errors: dict[type[Exception], Any] = {}

    def answer_first(self, routes: dict[str, Any], errors: dict[type[Exception], Any]) -> None:
        """POST to a path of ``routes`` is answered by its handler; ``errors`` map the errors
        handlers raise to the handler that answers them."""
        self._first, self._errors = routes, errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self._first.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                request = Request(scope, receive)
                try:
                    response = await handler(request)
                except Exception as error:
                    answer = self._errors.get(type(error)) or next(
                        (h for kind, h in self._errors.items() if isinstance(error, kind)), None
                    )
                    if answer is None:
                        raise
                    response = await answer(request, error)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    model_source: ModelSource | None = None,
    prediction_log: PredictionLogWriter | None = None,
    online_features: OnlineFeatures | None = None,
    poll_seconds: float = POLL_SECONDS,
    metrics_seconds: float = FLUSH_SECONDS,
    max_batch_rows: int = MAX_BATCH_ROWS,
    fast_path: bool = True,
    shared_metrics: Path | None = None,
) -> FastAPI:
    """The serving app for ``settings.endpoint``; models load in the background after start."""
    endpoint = settings.endpoint
    if endpoint is None:
        raise ConfigurationError(
            "no endpoint to serve: set MLOPS_ENDPOINT (e.g. "
            '\'{"name": "scorer", "model": "fraud-model"}\')'
        )
    variants: tuple[str, ...] = (VARIANT_CHAMPION,)
    if settings.serve_alias is not None:
        # A SageMaker variant: one alias, resolved and hot-reloaded as any variant here; the
        # traffic split is SageMaker's (weights between variants, or a shadow variant).
        if endpoint.canary is not None:
            raise ConfigurationError(
                f"MLOPS_SERVE_ALIAS={settings.serve_alias} serves one alias, but endpoint "
                f"{endpoint.name!r} has a canary this process would split: with one alias per "
                "process the split is the load balancer's (SageMaker variant weights)"
            )
        variants = (settings.serve_alias,)
    elif endpoint.canary is not None or endpoint.shadow:
        variants += (VARIANT_CHALLENGER,)
    source = model_source or RegistryModelSource(
        settings, endpoint.model, fast_path=fast_path, trust_code=endpoint.trust_model_code
    )
    state = ServingState(
        settings=settings,
        endpoint=endpoint,
        holder=ModelHolder(
            source,
            variants=variants,
            poll_seconds=poll_seconds,
            on_swap=lambda variant, model, answers_as: state.swap(variant, model, answers_as),
        ),
        log=prediction_log or PredictionLogWriter(settings),
        telemetry=ServingTelemetry(settings, endpoint.name, shared=shared_metrics),
        online=online_features or OnlineFeatures(settings),
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict"),
        max_rows=max_batch_rows,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.log.start()
        state.telemetry.start(metrics_seconds)
        state.holder.start()
        if settings.serve_workers > 1:
            # Processes share the port and a process accepts once started: each starts when its
            # first load was tried, so no request of a ready pod meets a process still loading.
            await asyncio.get_running_loop().run_in_executor(None, state.holder.tried.wait)
        try:
            yield
        finally:
            state.holder.stop()
            for prepared in list(state.prepared.values()):
                await prepared.batcher.close()
            # Every logged prediction reaches the log (or the local spool) before exit.
            await run_in_threadpool(state.log.close)
            await run_in_threadpool(state.telemetry.close)
            state.executor.shutdown(wait=False)

    app = ServingApp(
        title=f"{endpoint.name} ({endpoint.model})",
        description="Model endpoint served by `mlops-runtime serve`. Request fields follow the "
        "served model's signature; inputs the feature store serves may be left out when the "
        "entity key is given.",
        version="1",
        lifespan=lifespan,
        # Swagger UI and ReDoc load from a CDN, blank inside a VPC or offline; the schema is local.
        docs_url=None,
        redoc_url=None,
    )
    app.state.serving = state

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Never echo the request back: a field's input is shown as a short excerpt.
        detail = [
            {**e, "input": excerpt(e["input"])} if "input" in e else e for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/health", tags=["probes"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers (models may still be loading)."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["probes"],
        responses={503: {"model": NotReadyResponse, "description": "no champion loaded yet"}},
    )
    async def ready() -> JSONResponse:
        """Readiness: the champion (or the alias this process serves) is loaded, and which
        versions answer."""
        return _readiness(state)

    @app.get(
        "/ping",
        tags=["sagemaker"],
        responses={503: {"model": NotReadyResponse, "description": "no champion loaded yet"}},
    )
    async def ping() -> JSONResponse:
        """SageMaker health check: 200 once the variant's alias is loaded."""
        return _readiness(state)

    @app.get("/metrics", tags=["probes"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        tags=["predictions"],
        response_model=PredictResponse,
        responses=_ERROR_RESPONSES,
        openapi_extra={"requestBody": {"required": True, "content": {}}},
    )
    async def predict(request: Request) -> Response:
        """Score rows: `{"rows": [{feature: value, ...}, ...]}`."""
        started = time.perf_counter()
        media = _media_type(request)
        if media not in ("application/json", ""):
            raise UnsupportedMediaTypeError(
                f"content type {media!r} is not supported: send application/json"
            )
        body = await _body(request, settings.max_request_bytes)
        return await _answer(
            state, request, started, lambda schema: _parse_rows(schema, body), len(body)
        )

    @app.post(
        "/invocations",
        tags=["sagemaker"],
        response_model=PredictResponse,
        responses=_ERROR_RESPONSES,
        openapi_extra={"requestBody": {"required": True, "content": {}}},
    )
    async def invocations(request: Request) -> Response:
        """SageMaker inference: JSON (`rows`, `instances`, `dataframe_records`,
        `dataframe_split`) or CSV (header optional, columns in signature order). The answer is
        JSON, or CSV when the caller accepts text/csv only (one line per row, no header: the
        prediction, then each class's probability in the model's class order)."""
        started = time.perf_counter()
        media = _media_type(request)
        if media not in ("application/json", "text/csv", ""):
            raise UnsupportedMediaTypeError(
                f"content type {media!r} is not supported: use application/json or text/csv"
            )
        answer = _answer_type(request)
        body = await _body(request, settings.max_request_bytes)
        return await _answer(
            state,
            request,
            started,
            lambda schema: _parse_invocation(schema, body, media),
            len(body),
            answer=answer,
        )

    def openapi() -> dict[str, Any]:
        answering = state.prepared.get(state.primary)
        version = answering.model.version if answering else None
        if app.openapi_schema is None or state.openapi_version != version:
            app.openapi_schema = _openapi(app, answering)
            state.openapi_version = version
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.answer_first(
        {"/predict": predict, "/invocations": invocations},
        {ServingError: serving_error, RequestValidationError: invalid_request},
    )
    return app


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "request body over the limit (MLOPS_MAX_REQUEST_BYTES)"},
    406: {"description": "no answer type in Accept that /invocations writes"},
    415: {"description": "unsupported content type"},
    503: {"description": "no model loaded yet, or online features unavailable"},
}


def _readiness(state: ServingState) -> JSONResponse:
    primary = state.primary
    answering = state.prepared.get(primary)
    if answering is None:
        reason = state.holder.slot(primary).error or f"the {primary} is loading"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)
    answers_as = answering.variant
    body: dict[str, Any] = {
        "ready": True,
        "endpoint": state.endpoint.name,
        "model": answering.model.name,
        answers_as: answering.model.version,
        "backend": answering.model.backend,
        "provenance": {answers_as: answering.model.provenance},
    }
    if not state.splits:
        # One alias, the variant of that name (SageMaker routes to it by its weight); the
        # champion while a challenger variant has no challenger yet.
        body["variant"] = answers_as
        if state.logs_as_shadow:
            body["mode"] = "shadow"
    elif VARIANT_CHALLENGER in state.holder.variants:
        challenger = state.prepared.get(VARIANT_CHALLENGER)
        body["challenger"] = challenger.model.version if challenger else None
        body["mode"] = "shadow" if state.endpoint.shadow else "canary"
        if challenger:
            body["provenance"][VARIANT_CHALLENGER] = challenger.model.provenance
    # A version an alias points to but that is not served (refused, failed): say why.
    problems = {
        variant: state.holder.slot(variant).error
        for variant in state.holder.variants
        if state.holder.slot(variant).error
    }
    if problems:
        body["notServed"] = problems
    return JSONResponse(body)


# --- parsing --------------------------------------------------------------------------------------


_NOT_NULLABLE = (
    "; NaN, infinities and missing values are refused unless the model's pipeline declares the "
    "feature in nullableFeatures"
)


def excerpt(value: Any) -> Any:
    """``value`` as an error may show it: a scalar as is (NaN and infinities as their JSON
    spelling), anything else as its JSON text cut to EXCERPT_CHARS characters."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 once it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(_too_large(int(declared), limit))
    chunks, size = [], 0
    # The messages themselves: ``request.stream()`` is an async generator, a few microseconds
    # more per request.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(_too_large(size, limit, more=True))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, *, more: bool = False) -> str:
    return (
        f"request body of {'more than ' if more else ''}{size} bytes is over the limit of "
        f"{limit} bytes ({limit / 1024 / 1024:.3g} MiB, MLOPS_MAX_REQUEST_BYTES); send at most "
        f"{MAX_ROWS} rows per request"
    )


def _too_many_rows(rows: Any) -> None:
    # Counted before validation: validating first would build an error holding every row.
    if isinstance(rows, list) and len(rows) > MAX_ROWS:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "rows"),
                    "msg": f"at most {MAX_ROWS} rows per request (got {len(rows)})",
                }
            ]
        )


def _answer_type(request: Request) -> str:
    """What /invocations answers with: the Accept header's first type we can write (SageMaker
    passes the caller's Accept through; none or `*/*` is JSON)."""
    accepted = [
        part.split(";", 1)[0].strip().lower()
        for part in request.headers.get("accept", "").split(",")
        if part.strip()
    ]
    for media in accepted or ["*/*"]:
        if media in ("application/json", "application/*", "*/*"):
            return "application/json"
        if media in ("text/csv", "text/*"):
            return "text/csv"
    raise NotAcceptableError(
        f"cannot answer as {', '.join(accepted)}: accept application/json or text/csv"
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _validation_error(error: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": e["type"],
                "loc": ("body", *e["loc"]),
                "msg": e["msg"] + (_NOT_NULLABLE if e["type"] == "finite_number" else ""),
                "input": e.get("input"),
            }
            for e in error.errors(include_url=False)
        ]
    )


def _parse_rows(schema: RowSchema, body: bytes) -> list[dict[str, Any]]:
    try:
        if len(body) <= SMALL_BODY_BYTES:
            parsed = schema.request.model_validate_json(body)
        else:
            payload = _json(body)
            if isinstance(payload, dict):
                _too_many_rows(payload.get("rows"))
            parsed = schema.request.model_validate(payload)
    except ValidationError as error:
        raise _validation_error(error) from None
    return [row.__dict__ for row in parsed.rows]


def _row_list(schema: RowSchema, body: bytes) -> list[dict[str, Any]] | None:
    """The rows of a JSON body that lists them under one key of ``ROW_LIST_KEYS``, parsed and
    validated in one pass; None for any other body, which the general path then reads (and
    says what is wrong with)."""
    try:
        parsed = schema.invocation.model_validate_json(body)
    except ValidationError:
        return None
    given = [rows for key in ROW_LIST_KEYS if (rows := getattr(parsed, key)) is not None]
    return [row.__dict__ for row in given[0]] if len(given) == 1 else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"invalid JSON: {error}"}]
        ) from None


def _parse_invocation(schema: RowSchema, body: bytes, media: str) -> list[dict[str, Any]]:
    if media != "text/csv" and len(body) <= SMALL_BODY_BYTES:
        rows = _row_list(schema, body)
        if rows is not None:
            return rows
    rows = _csv_rows(schema, body) if media == "text/csv" else _json_rows(_json(body))
    _too_many_rows(rows)
    try:
        parsed = schema.request.model_validate({"rows": rows})
    except ValidationError as error:
        raise _validation_error(error) from None
    return [row.__dict__ for row in parsed.rows]


def _json_rows(payload: Any) -> Any:
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict) or len(payload) != 1:
        raise RequestValidationError(
            [
                {
                    "type": "invalid_payload",
                    "loc": ("body",),
                    "msg": "an object with one key: rows, instances, dataframe_records, "
                    "dataframe_split or inputs",
                }
            ]
        )
    ((key, value),) = payload.items()
    if key in ("rows", "instances", "dataframe_records"):
        return value
    if key == "dataframe_split" and isinstance(value, dict):
        columns, data = value.get("columns"), value.get("data")
        if isinstance(columns, list) and isinstance(data, list):
            return [
                dict(zip(columns, row, strict=False)) if isinstance(row, list) else row
                for row in data
            ]
    if key == "inputs":
        if isinstance(value, dict):
            columns = list(value)
            values = [v if isinstance(v, list) else [v] for v in value.values()]
            return [dict(zip(columns, row, strict=False)) for row in zip(*values, strict=False)]
        return value
    raise RequestValidationError(
        [{"type": "invalid_payload", "loc": ("body", key), "msg": f"unsupported key {key!r}"}]
    )


def _csv_rows(schema: RowSchema, body: bytes) -> list[dict[str, Any]]:
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise RequestValidationError(
            [{"type": "csv_invalid", "loc": ("body",), "msg": f"invalid CSV: {error}"}]
        ) from None
    lines = [line for line in lines if line]
    _too_many_rows(lines[1:])
    columns = schema.feature_names
    if lines and set(lines[0]) & set(columns) and set(lines[0]) <= set(schema.row.model_fields):
        columns, lines = lines[0], lines[1:]
    # An empty cell is a missing value, as a key left out of a JSON row.
    return [
        {name: value for name, value in zip(columns, line, strict=False) if value != ""}
        for line in lines
    ]


# --- answering --------------------------------------------------------------------------------------


def _variant_for(state: ServingState, request_id: str) -> str:
    """The held variant that answers this request (its Prepared says which variant it answers
    as)."""
    canary = state.endpoint.canary
    if not state.splits:
        return state.primary
    if canary is None or state.endpoint.shadow or VARIANT_CHALLENGER not in state.prepared:
        return VARIANT_CHAMPION
    # Deterministic: the same request id always lands on the same variant.
    bucket = zlib.crc32(request_id.encode()) % 100
    return VARIANT_CHALLENGER if bucket < canary.weight else VARIANT_CHAMPION


async def _answer(
    state: ServingState,
    request: Request,
    started: float,
    parse: Any,
    size: int,
    *,
    answer: str = "application/json",
) -> Response:
    request_id = request.headers.get(REQUEST_ID_HEADER) or f"{random.getrandbits(128):032x}"
    slot = _variant_for(state, request_id)
    prepared = state.prepared.get(slot)
    if prepared is None:
        state.telemetry.observe(slot, 0.0, error=True)
        raise NotReadyError(state.holder.slot(slot).error or "the model is loading", variant=slot)
    variant = prepared.variant
    # A SageMaker shadow variant answering with the champion (no challenger yet): SageMaker
    # discards the answer, and the champion's own variant logs and counts the same request; a
    # pod without a challenger shadows nothing either.
    recorded = not (state.logs_as_shadow and variant != slot)
    if size <= SMALL_BODY_BYTES:
        rows = parse(prepared.schema)
    else:
        # A large body takes a while to parse: in a thread, so probes and small requests go on.
        rows = await run_in_threadpool(parse, prepared.schema)
    if prepared.schema.join_keys:
        await _fill_online(state, prepared.schema, rows)
    shadow = (
        state.prepared.get(VARIANT_CHALLENGER) if state.endpoint.shadow and state.splits else None
    )
    try:
        if shadow is not None:
            scored, shadow_scored = await asyncio.gather(
                prepared.batcher.submit(rows),
                _shadow_score(state, shadow, rows),
            )
        else:
            scored, shadow_scored = await prepared.batcher.submit(rows), None
    except Exception as error:
        if recorded:
            state.telemetry.observe(variant, _ms(started), error=True)
        _log.exception("prediction failed")
        raise PredictionFailedError(
            f"{prepared.model.name} version {prepared.model.version} failed to score: "
            f"{type(error).__name__}",
            variant=variant,
        ) from None
    latency = _ms(started)
    if recorded:
        state.telemetry.observe(variant, latency)
        _log_rows(
            state,
            request_id,
            variant,
            prepared.model,
            rows,
            scored,
            latency,
            shadow=state.logs_as_shadow,
        )
    if shadow is not None and shadow_scored is not None:
        _log_rows(
            state,
            request_id,
            VARIANT_CHALLENGER,
            shadow.model,
            rows,
            shadow_scored,
            latency,
            shadow=True,
        )
    model = prepared.model
    headers = [(b"x-request-id", request_id.encode("latin-1")), *prepared.headers]
    if answer == "text/csv":
        return Answer(_csv_answer(scored).encode(), b"text/csv; charset=utf-8", headers)
    body = {
        "request_id": request_id,
        "model": model.name,
        "version": model.version,
        "variant": variant,
        "predictions": scored.predictions,
        "probabilities": scored.probabilities,
        "classes": model.classes,
    }
    return Answer(_ANSWER.encode(body).encode(), b"application/json", headers)


def _csv_answer(scored: Scored) -> str:
    """One line per row (SageMaker's CSV answer: batch transform joins it to the input line by
    line): the prediction, then the probability of each class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for index, prediction in enumerate(scored.predictions):
        probabilities = scored.probabilities[index] if scored.probabilities else []
        writer.writerow([prediction, *probabilities])
    return out.getvalue()


async def _shadow_score(
    state: ServingState, shadow: Prepared, rows: Sequence[dict[str, Any]]
) -> Scored | None:
    started = time.perf_counter()
    try:
        scored = await shadow.batcher.submit(rows)
    except Exception:
        # The shadow never fails a request; its errors count against the challenger.
        state.telemetry.observe(VARIANT_CHALLENGER, _ms(started), error=True)
        _log.warning("shadow scoring failed", exc_info=True)
        return None
    state.telemetry.observe(VARIANT_CHALLENGER, _ms(started))
    return scored


def _log_rows(
    state: ServingState,
    request_id: str,
    variant: str,
    model: ServedModel,
    rows: Sequence[dict[str, Any]],
    scored: Scored,
    latency: float,
    *,
    shadow: bool,
) -> None:
    names = [f.name for f in model.features]
    for index, row in enumerate(rows):
        state.log.record(
            PredictionRecord(
                request_id=request_id if len(rows) == 1 else f"{request_id}/{index}",
                endpoint=state.endpoint.name,
                model=model.name,
                model_version=model.version,
                variant=variant,
                features={name: row.get(name) for name in names},
                prediction=scored.predictions[index],
                score=scored.score(index),
                latency_ms=latency,
                shadow=shadow,
            )
        )


async def _fill_online(state: ServingState, schema: RowSchema, rows: list[dict[str, Any]]) -> None:
    """Look up the inputs rows leave out; 422 for rows that give neither the value nor the key."""
    errors: list[dict[str, Any]] = []
    lookups: dict[int, list[str]] = {}
    for index, row in enumerate(rows):
        missing = []
        for name in schema.join_keys:
            if row.get(name) is not None:
                continue
            keys = [key for key, _ in schema.join_keys[name] if row.get(key) is None]
            if not keys:
                missing.append(name)
            elif name not in schema.nullable:
                errors.append(
                    {
                        "type": "missing",
                        "loc": ("body", "rows", index, name),
                        "msg": f"Field required (or give {', '.join(keys)} to look it up online)",
                        "input": None,
                    }
                )
        if missing:
            lookups[index] = missing
    if errors:
        raise RequestValidationError(errors)
    if not lookups:
        return
    refs = sorted({schema.refs[name] for names in lookups.values() for name in names})
    keys = sorted(
        {key for names in lookups.values() for n in names for key, _ in schema.join_keys[n]}
    )
    entity_rows = [{key: rows[i][key] for key in keys} for i in lookups]
    try:
        values = await run_in_threadpool(state.online.lookup, refs, entity_rows)
    except Exception as error:
        raise OnlineFeaturesUnavailableError(
            f"online feature store unavailable: {type(error).__name__}: {str(error)[:200]}"
        ) from None
    for (index, missing), found in zip(lookups.items(), values, strict=True):
        if all(found.get(name) is None for name in missing):
            errors.append(
                {
                    "type": "online_value_missing",
                    "loc": ("body", "rows", index),
                    "msg": "no online feature values for "
                    + ", ".join(f"{k}={rows[index][k]!r}" for k in keys),
                    "input": {k: rows[index][k] for k in keys},
                }
            )
            continue
        for name in missing:
            rows[index][name] = found.get(name)
    if errors:
        raise RequestValidationError(errors)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- OpenAPI from the served model's signature ------------------------------------------------------


def _openapi(app: FastAPI, champion: Prepared | None) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    if champion is None:
        request_schema: dict[str, Any] = {"type": "object"}
    else:
        generated = champion.schema.request.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        definitions = generated.pop("$defs", {})
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions)
        name = generated.get("title", "PredictRequest")
        components[name] = generated
        request_schema = {"$ref": f"#/components/schemas/{name}"}
    paths = document["paths"]
    paths["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": request_schema}},
    }
    paths["/invocations"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": request_schema},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
    answered = paths["/invocations"]["post"]["responses"]["200"].setdefault("content", {})
    answered["text/csv"] = {"schema": {"type": "string"}}
    return document
