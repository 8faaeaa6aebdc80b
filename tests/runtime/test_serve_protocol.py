"""The HTTP protocol's joined writes: an answer's head and body leave the server as one write."""

from __future__ import annotations

import asyncio

from runtime.serving.protocol import JoinedWrites
from tests.runtime.test_serve_support import run_alone


class Transport:
    """What the protocol writes to, recording each write."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.sent.append("closed")

    def is_closing(self) -> bool:
        return False


def test_the_writes_of_one_loop_step_leave_as_one_at_its_end() -> None:
    async def scenario() -> list[bytes | str]:
        transport = Transport()
        joined = JoinedWrites(transport, asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(b"{}")
        assert transport.sent == []  # still this step
        await asyncio.sleep(0)
        joined.write(b"next")
        await asyncio.sleep(0)
        return transport.sent

    assert run_alone(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_closing_sends_what_is_pending_first_and_the_rest_is_the_transports() -> None:
    async def scenario() -> tuple[list[bytes | str], bool]:
        transport = Transport()
        joined = JoinedWrites(transport, asyncio.get_running_loop())
        joined.write(b"an error answer")
        joined.close()
        await asyncio.sleep(0)  # the step's scheduled send finds nothing left
        return transport.sent, joined.is_closing()

    assert run_alone(scenario()) == ([b"an error answer", "closed"], False)
