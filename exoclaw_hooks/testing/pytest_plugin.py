"""pytest fixtures for a plugin's tests, published through the ``pytest11`` entry point.

With Exoclaw installed they are simply there::

    async def test_audit(exoclaw_gateway, tmp_path):
        async with exoclaw_gateway(f'[audit]\\npath = "{tmp_path}/a.jsonl"', plugins=[AuditPlugin()]) as gw:
            assert (await gw.chat("hi")).done

* ``exoclaw_gateway`` — :func:`exoclaw_hooks.testing.gateway.run_gateway` (a real gateway on a random port).
* ``fake_host`` — a :class:`FakeHost` answering ``host.llm`` with ``scripted_provider``.
* ``scripted_provider`` — a fresh :class:`ScriptedProvider`.

Async tests need an asyncio runner plugin (pytest-asyncio or pytest-aiohttp).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from .host import FakeHost
from .provider import ScriptedProvider


@pytest.fixture
def scripted_provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def fake_host(scripted_provider: ScriptedProvider) -> FakeHost:
    return FakeHost(provider=scripted_provider)


@pytest.fixture
def exoclaw_gateway() -> Callable[..., Any]:
    from .gateway import run_gateway

    return run_gateway
