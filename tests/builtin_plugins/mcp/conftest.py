"""Fixtures for the ``mcp`` plugin's tests: the test MCP server (tests/fakes/mcp_server.py) as a process."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.fakes.mcp_server import RunningMCPServer, running_mcp_server


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[RunningMCPServer]:
    """One Streamable HTTP server for the module's tests (tests that change its tool list start their own)."""
    with running_mcp_server() as server:
        yield server

