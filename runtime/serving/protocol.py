"""uvicorn's HTTP protocol (httptools), with each answer sent in one write.

uvicorn writes an answer's status line and headers, then its body, as two writes: two system
calls and two TCP segments, each waking the client. For an answer of a few hundred bytes the
two writes were a fifth of the server's sampled time per request, and the client's extra
wake-up costs the machine more. Here a connection's writes made in one event-loop step are joined and sent at
the end of the step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a transport that joins the writes of one loop step."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]


class JoinedWrites:
    """A connection's transport whose writes of one event-loop step leave as one.

    The first write of a step schedules the send for the end of the step; later writes of the
    step join it. Closing sends what is pending first. Everything else is the transport's own.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
