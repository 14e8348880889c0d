"""Fixtures for tests that need an LLM API: the fake server, a host, an HTTP session.

In a test module::

    from tests.fakes.fixtures import fake_llm, fake_host  # noqa: F401  (pytest fixtures)
    from tests.fakes.llm_script import Reply, Fail

    async def test_x(fake_llm, fake_host):
        fake_llm.enqueue(Reply(text_chunks=["hi"]))
        settings = ProviderSettings("anthropic", "claude-x", base_url=fake_llm.url, api_key="k")
        ...

or without pytest fixtures: ``async with start_fake_llm() as server: ...``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any, AsyncIterator

import aiohttp
import pytest_asyncio

from .llm_server import FakeLLMServer


@contextlib.asynccontextmanager
async def start_fake_llm(**kwargs: Any) -> AsyncIterator[FakeLLMServer]:
    """A running :class:`FakeLLMServer` on 127.0.0.1 (random port); ``.url`` is its base."""
    server = FakeLLMServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class FakeHost:
    """Just enough of :class:`exoclaw_hooks.Host` for provider plugins: ``http()`` and ``now()``."""

    def __init__(self, session: aiohttp.ClientSession | None = None):
        self.session = session
        self.settings = None
        self.store = None
        self.app = None

    def http(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise RuntimeError("FakeHost has no HTTP session")
        return self.session

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


@pytest_asyncio.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    async with start_fake_llm() as server:
        yield server


@pytest_asyncio.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def fake_host(http_session: aiohttp.ClientSession) -> FakeHost:
    return FakeHost(http_session)
