"""Fixtures shared by the component tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """A moto server of the test module's own, on a free localhost port: the planned resources
    replayed through the AWS APIs."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
